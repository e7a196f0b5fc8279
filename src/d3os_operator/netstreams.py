"""The connection pool's network layer: httpcore's anyio streams, with a cheap "is the idle socket readable?".

Before it hands a request a connection, and again when a response is closed, httpcore's pool asks every
idle keep-alive connection whether the server has closed it (``get_extra_info("is_readable")``). On a TLS
stream anyio answers that by building two dictionaries of attribute getters to find the raw socket, for
every connection, on every request: a profile of the operator at N = 100 put 7 % of its CPU there. The
socket never changes for the life of a connection, so :class:`SocketStream` finds it once; everything else
goes to httpcore's own stream, through public httpcore interfaces (``AsyncNetworkBackend``,
``AsyncNetworkStream``, ``AnyIOBackend``). httpx's transport has no parameter for a network backend:
:class:`PooledTransport` replaces the pool it builds (were that attribute renamed, requests would go through
httpx's own pool, as before: slower, never wrong; ``tests/unit/test_netstreams.py`` would notice).
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
import httpx2


def readable(sock: socket.socket | None) -> bool:
    """True when a read would not block: data, or the server's close (a socket that is gone counts too).
    The same test as httpcore's own, which lives in a private module."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    if not hasattr(select, "poll"):  # Windows (the d3os command runs there too)
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class SocketStream(httpcore2.AsyncNetworkStream):
    """httpcore's stream, with the raw socket looked up once for ``is_readable``."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self.inner = inner
        self.sock: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self.inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        return SocketStream(await self.inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return readable(self.sock)
        return self.inner.get_extra_info(info)


class SocketBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's anyio backend, its streams wrapped in :class:`SocketStream`."""

    def __init__(self) -> None:
        self.inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        return SocketStream(await self.inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        return SocketStream(await self.inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PooledTransport(httpx2.AsyncHTTPTransport):
    """httpx's transport, its requests sent through a pool like the one it builds, on :class:`SocketBackend`."""

    def __init__(self, ssl_context: ssl.SSLContext, *, http2: bool, limits: httpx2.Limits) -> None:
        super().__init__(verify=ssl_context, http2=http2, limits=limits, trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=SocketBackend(),
        )
