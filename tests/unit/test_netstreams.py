"""The API connections' network layer: an idle keep-alive connection the server closed is still noticed
(the check the pool makes before reusing one), and httpx's transport really sends through it."""

from __future__ import annotations

import select
import socket
import ssl

import anyio
import httpx2
import pytest

from d3os_operator.netstreams import PooledTransport, SocketStream, readable


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("poll", [True, False], ids=["poll", "select"])
def test_readable_is_true_for_data_and_for_a_close_only(poll: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not poll:
        monkeypatch.delattr(select, "poll", raising=False)  # as on Windows
    a, b = socket.socketpair()
    try:
        assert not readable(a)  # idle: nothing to read
        b.sendall(b"x")
        assert readable(a)
        a.recv(1)
        assert not readable(a)
        b.close()
        assert readable(a)  # the peer closed: a read returns b"" at once
    finally:
        a.close()
    assert readable(None)
    assert readable(a)  # closed here: no file descriptor


class _Server:
    """HTTP/1.1 on loopback that answers each request with keep-alive, and closes a connection after its
    first response when ``close_after_first``; counts the connections it accepted."""

    def __init__(self, *, close_after_first: bool) -> None:
        self.close_after_first = close_after_first
        self.connections = 0

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with stream:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        chunk = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                    buf += chunk
                _, _, buf = buf.partition(b"\r\n\r\n")
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                if self.close_after_first:
                    return


async def _requests(close_after_first: bool, n: int) -> tuple[_Server, list[object]]:
    server = _Server(close_after_first=close_after_first)
    streams: list[object] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    transport = PooledTransport(ssl.create_default_context(), http2=False,
                                limits=httpx2.Limits(max_connections=4, max_keepalive_connections=4))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        async with httpx2.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(n):
                resp = await client.get("/")
                assert resp.text == "ok"
                streams.append(resp.extensions["network_stream"])
                await anyio.sleep(0.05)  # let a close by the server arrive before the next request
        tg.cancel_scope.cancel()
    return server, streams


@pytest.mark.anyio
async def test_requests_go_through_socket_streams_and_reuse_the_connection() -> None:
    server, streams = await _requests(close_after_first=False, n=3)
    assert all(isinstance(s, SocketStream) for s in streams)
    assert server.connections == 1


@pytest.mark.anyio
async def test_a_connection_the_server_closed_is_not_reused() -> None:
    server, streams = await _requests(close_after_first=True, n=3)
    assert all(isinstance(s, SocketStream) for s in streams)
    assert server.connections == 3  # each close was noticed before the next request: no failed request
