"""A local HTTP stand-in for a third-party service (the seed's uuc lives on the internet).

Used by the demo and the integration tests: it listens on 127.0.0.1 (a free port, kept across
``down()``/``up()`` so the DataService's URL stays valid), answers ``GET``/``HEAD`` with ``status``
(200 by default), counts requests, and can be taken down (the port then refuses connections) or made
to answer an error status.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml


class StandIn:
    """``with StandIn() as s: s.url`` -- see the module docstring."""

    def __init__(self, path: str = "/duc", port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.path = path
        self.port = port or _free_port(host)
        self.status = 200
        self.requests = 0
        self.log: list[tuple[float, int]] = []
        """(time.monotonic() when answered, status) of every request: when a check was answered, for tests that
        order the rollout by it."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def check_cmd(self) -> str:
        """The seed's uuc checkCMD, pointed at this stand-in."""
        return f"curl --output /dev/null --silent --head --fail {self.url}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def up(self) -> StandIn:
        with self._lock:
            if self._server is not None:
                return self
            owner = self

            class Handler(BaseHTTPRequestHandler):
                def _answer(self) -> None:
                    owner.requests += 1
                    self.send_response(owner.status)
                    self.send_header("Content-Type", "text/plain")
                    body = b"" if self.command == "HEAD" else b"d3os stand-in\n"
                    self.send_header("Content-Length", str(len(b"d3os stand-in\n")))
                    self.end_headers()
                    if body:
                        self.wfile.write(body)
                    owner.log.append((time.monotonic(), owner.status))

                do_GET = _answer
                do_HEAD = _answer

                def log_message(self, format: str, *args: Any) -> None:
                    return

            ThreadingHTTPServer.allow_reuse_address = True
            server = ThreadingHTTPServer((self.host, self.port), Handler)
            server.daemon_threads = True
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, name="d3os-standin", daemon=True)
            self._thread.start()
        return self

    def down(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> StandIn:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def point_uuc_at(sample: dict[str, Any], standin: StandIn) -> dict[str, Any]:
    """A copy of the seed's sample whose uuc third party (url and checkCMD) targets ``standin``."""
    out = yaml.safe_load(yaml.safe_dump(sample, allow_unicode=True))
    third = out["spec"]["uuc"].setdefault("thirdParty", {}) or {}
    third["url"] = standin.url
    third["checkCMD"] = standin.check_cmd
    out["spec"]["uuc"]["thirdParty"] = third
    return dict(out)
