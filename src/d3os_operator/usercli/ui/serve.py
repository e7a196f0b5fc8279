"""Running the page's server: a socket bound on the loopback address (the port known before serving, so the
URL can be printed and the Host check set), uvicorn serving the guarded application on it (anyio's asyncio
backend, like the rest of d3os), in the foreground for ``d3os ui`` or on a thread for tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from typing import Any

from d3os_core.product import ProductDef

from .app import Settings, build
from .guard import TOKEN_QUERY, Guard, new_token

DEFAULT_ADDRESS = "127.0.0.1"


def _bind(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class UiServer:
    """The server of one ``d3os ui``: :attr:`url` is what to open (it carries the token)."""

    def __init__(self, config: Any, namespace: str, products: Sequence[ProductDef], *,
                 address: str = DEFAULT_ADDRESS, port: int = 0, token: str | None = None) -> None:
        import uvicorn

        self.socket = _bind(address, port)
        self.address = address
        self.port = int(self.socket.getsockname()[1])
        self.guard = Guard.for_address(token or new_token(), address, self.port)
        host = f"[{address}]" if ":" in address else address
        self.origin = f"http://{host}:{self.port}"
        self.url = f"{self.origin}/?{TOKEN_QUERY}={self.guard.token}"
        self.settings = Settings(config, namespace, products, self.guard)
        self.app = build(self.settings)
        closing = self.settings.closing

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:  # Ctrl-C: the live streams end first
                closing.set()
                super().handle_exit(sig, frame)

        self.server = Server(uvicorn.Config(
            self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, access_log=False,
            server_header=False))
        self._thread: threading.Thread | None = None

    def serve(self) -> None:
        """Serve until interrupted (Ctrl-C) or :meth:`stop`."""
        import anyio

        anyio.run(self.server.serve, [self.socket], backend="asyncio")

    def start(self) -> UiServer:
        """Serve on a thread of its own; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.serve, name="d3os-ui", daemon=True)
        self._thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError("the d3os ui server stopped while starting")
            threading.Event().wait(0.02)
        raise RuntimeError("the d3os ui server did not start in 10 s")

    def stop(self) -> None:
        self.settings.closing.set()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()

    def __enter__(self) -> UiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
