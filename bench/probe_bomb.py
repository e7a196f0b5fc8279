"""Memory of one HTTP probe against a decompression bomb (issue 12, finding 4).

A local server answers ``GET`` with a gzip body of about 299 KiB that inflates to 300 MiB
(``Content-Encoding: gzip``); a fresh process runs one probe against it and reports its peak RSS
before and after. ``--src DIR`` runs the probe code of another checkout (e.g. the old main) instead:

    python bench/probe_bomb.py                       # this checkout
    python bench/probe_bomb.py --src /work/main/src  # another one
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

INFLATED = 300 * 1024 * 1024


def bomb_file() -> Path:
    path = Path(tempfile.gettempdir()) / "d3os-probe-bomb-300MiB.gz"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with gzip.open(tmp, "wb", compresslevel=9) as f:
            block = b"\0" * (1024 * 1024)
            for _ in range(INFLATED // len(block)):
                f.write(block)
        tmp.rename(path)
    return path


def serve(body: bytes) -> int:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()

    def handle(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            with contextlib.suppress(OSError):  # the probe may stop reading and close
                conn.sendall(head + body)

    def loop() -> None:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return int(srv.getsockname()[1])


def probe(port: int) -> None:
    """Child process: one probe, RSS before and after (MiB, ru_maxrss)."""
    import anyio

    from d3os_core.types import HttpCheck
    from d3os_operator import probes

    def rss() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    check = HttpCheck(url=f"http://127.0.0.1:{port}/bomb", timeout_seconds=60)
    kwargs = {}
    if hasattr(probes, "DEFAULT_POLICY"):  # the policy refuses loopback unless allowed
        from d3os_core.probe_policy import ProbePolicy, parse_cidr

        kwargs["policy"] = ProbePolicy(allow=(parse_cidr("127.0.0.1/32"),))
    before = rss()
    t0 = time.monotonic()
    result = anyio.run(lambda: probes.run_check(check, **kwargs))
    print(json.dumps({"rss_before_mib": round(before, 1), "rss_after_mib": round(rss(), 1),
                      "seconds": round(time.monotonic() - t0, 2), "result": result.message}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", help="import d3os_core/d3os_operator from this directory")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        probe(args.child)
        return 0
    body = bomb_file().read_bytes()
    port = serve(body)
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = args.src + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, __file__, "--child", str(port)], env=env, capture_output=True, text=True)
    src = args.src or "this checkout"
    print(f"gzip body: {len(body) / 1024:.0f} KiB, inflates to {INFLATED // 2**20} MiB; src: {src}")
    print(out.stdout.strip() or out.stderr[-2000:])
    return out.returncode


if __name__ == "__main__":
    raise SystemExit(main())
