"""The operator's small HTTP servers: health probes on ``--health-probe-bind-address``, Prometheus metrics on
``--metrics-bind-address`` (two ports, as controller-runtime has them, so a NetworkPolicy or a Service can
expose metrics without exposing probes and the other way round).

A deliberately small HTTP/1.0 server on anyio: one request per connection, GET only, no threads.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence

import anyio
import anyio.abc

log = logging.getLogger("d3os_operator.endpoints")

Response = tuple[int, bytes, str]
"""(status code, body, content type)."""
Query = Mapping[str, Sequence[str]]
"""The request's query parameters, each with its values in order (``?name[]=a&name[]=b``)."""
Route = Callable[[Query], Response]
Guard = Callable[[Mapping[str, str]], Awaitable["Response | None"]]
"""Called with the request's headers (lower-case names) before any route: a response refuses the request."""

TEXT = "text/plain; charset=utf-8"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
REASONS = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
           503: "Service Unavailable"}


def parse_address(address: str) -> tuple[str, int] | None:
    """``:8080`` → ("0.0.0.0", 8080), ``127.0.0.1:0`` → a free port; ``0`` or empty → None (off), as in
    controller-runtime."""
    if address in ("", "0"):
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bind address {address!r}: expected HOST:PORT, :PORT, or 0 to turn it off")
    return (host.strip("[]") or "0.0.0.0", int(port))


async def listen(host: str, port: int) -> anyio.abc.SocketListener:
    """Bind now (so a port in use is an error at start-up, not later); ``port=0`` picks a free one."""
    return await anyio.create_tcp_listener(local_host=host, local_port=port)


def bound_port(listener: anyio.abc.SocketListener) -> int:
    return int(listener.extra(anyio.abc.SocketAttribute.local_port))


def headers_of(data: bytes) -> dict[str, str]:
    """The request's headers, names in lower case."""
    out: dict[str, str] = {}
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


async def serve(
    listener: anyio.abc.SocketListener, routes: Mapping[str, Route], *, what: str = "http", guard: Guard | None = None
) -> None:
    """Serve ``routes`` on ``listener`` until cancelled (each request first passes ``guard``, if any)."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(5):
                    data = b""
                    while b"\r\n\r\n" not in data and len(data) < 8192:
                        chunk = await stream.receive(4096)
                        if not chunk:
                            break
                        data += chunk
                    parts = data.split(b" ", 2)
                    target = parts[1].decode(errors="replace") if len(parts) > 1 else "/"
                    path, _, query = target.partition("?")
                    route = routes.get(path)
                    refused = await guard(headers_of(data)) if guard is not None and route is not None else None
                    if refused is not None:
                        code, body, ctype = refused
                    elif route is None:
                        code, body, ctype = 404, b"not found\n", TEXT
                    else:
                        try:
                            code, body, ctype = route(urllib.parse.parse_qs(query))
                        except Exception:
                            log.exception("endpoint failed", extra={"path": path})
                            code, body, ctype = 500, b"internal error\n", TEXT
                    head = (
                        f"HTTP/1.0 {code} {REASONS.get(code, 'Error')}\r\nContent-Type: {ctype}\r\n"
                        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                    )
                    await stream.send(head.encode() + body)
            except (TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                return

    async with listener:
        log.info(f"serving {what}", extra={"port": bound_port(listener), "paths": ",".join(sorted(routes))})
        await listener.serve(handle)
