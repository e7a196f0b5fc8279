"""Probes as a tenant sees them: bounded bodies, no cookies, redirects under the policy, readable errors.

Real sockets on 127.0.0.1 (allowed here by an explicit policy, as the tests and the demo do); names are
resolved by a fake resolver, so no DNS and no internet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import gzip
import socket
import ssl
import threading
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import anyio
import pytest

from d3os_core.probe_policy import ProbePolicy, parse_cidr
from d3os_core.types import HttpCheck, ProbeRequest, ProbeResult, TcpCheck
from d3os_operator import probes
from d3os_operator.probes import BODY_LIMIT, ProbeManager, run_check

pytestmark = pytest.mark.anyio

LOCAL = ProbePolicy(allow=(parse_cidr("127.0.0.1/32"),))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Responder = Callable[[bytes], Iterator[bytes]]


class RawServer:
    """A TCP server on 127.0.0.1: each connection's request head goes to ``respond``, whose chunks are sent."""

    def __init__(self, respond: Responder, tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.tls = tls
        self.requests: list[bytes] = []
        self.sent = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.requests.append(head)
            for chunk in self.respond(head):
                conn.sendall(chunk)
                self.sent += len(chunk)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in _serve (a close alone does not)
        self.sock.close()
        self._thread.join(10)


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def make(respond: Responder, tls: ssl.SSLContext | None = None) -> RawServer:
        servers.append(RawServer(respond, tls))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def answer(status: int = 200, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> Responder:
    def respond(_: bytes) -> Iterator[bytes]:
        lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in headers), f"Content-Length: {len(body)}", "", ""]
        yield "\r\n".join(lines).encode() + body

    return respond


def resolver_of(table: dict[str, list[str]]) -> probes.Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


# -- bodies -------------------------------------------------------------------------------------------------


async def test_a_gzip_bomb_is_never_inflated(serve: Callable[..., RawServer]) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB inflated, ~64 KiB sent
    srv = serve(answer(200, [("Content-Encoding", "gzip"), ("Content-Type", "text/plain")], bomb))
    tracemalloc.start()
    try:
        result = await run_check(HttpCheck(url=f"http://127.0.0.1:{srv.port}/bomb", timeout_seconds=10), policy=LOCAL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok and result.message.endswith("HTTP 200")
    assert peak < 4 * 1024 * 1024, f"a probe allocated {peak} bytes"
    assert b"accept-encoding: identity" in srv.requests[0].lower()


async def test_an_endless_body_is_read_up_to_the_limit_only(serve: Callable[..., RawServer]) -> None:
    def endless(_: bytes) -> Iterator[bytes]:
        yield b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b"x" * 16384
        for _ in range(100_000):  # 1.6 GB if anyone read it all
            yield b"4000\r\n" + chunk + b"\r\n"

    srv = serve(endless)
    result = await run_check(HttpCheck(url=f"http://127.0.0.1:{srv.port}/", timeout_seconds=20), policy=LOCAL)
    assert result.ok, result
    # the probe closed the connection after its limit: the server's sends stop at what the loopback socket
    # buffers held (a few MiB, autotuned by the kernel), far below the 1.6 GB it would send to a full reader
    await anyio.sleep(0.5)
    stopped_at = srv.sent
    await anyio.sleep(0.5)
    assert srv.sent == stopped_at, "the server is still sending: the probe kept the connection open"
    assert srv.sent < 1024 * BODY_LIMIT, f"the probe read on: {srv.sent} bytes sent"


# -- cookies, Host, resolved address -------------------------------------------------------------------------


async def test_no_cookies_and_the_host_is_kept_while_the_resolved_address_is_connected(
    serve: Callable[..., RawServer],
) -> None:
    srv = serve(answer(200, [("Set-Cookie", "session=tenant-a; Path=/")]))
    # the name resolves to a refused address and an allowed one: only the allowed one is connected to
    resolver = resolver_of({"uuc.example": ["169.254.169.254", "127.0.0.1"]})
    check = HttpCheck(url=f"http://uuc.example:{srv.port}/duc", timeout_seconds=5)
    mgr_results = [await run_check(check, policy=LOCAL, resolver=resolver) for _ in range(3)]
    assert all(r.ok for r in mgr_results), mgr_results
    assert len(srv.requests) == 3
    for head in srv.requests:
        lower = head.lower()
        assert b"cookie:" not in lower, "a cookie came back: probes share no jar"
        assert f"host: uuc.example:{srv.port}\r\n".encode() in lower


async def test_userinfo_is_sent_as_basic_auth_and_never_shown(serve: Callable[..., RawServer]) -> None:
    srv = serve(answer(401))
    r = await run_check(HttpCheck(url=f"http://admin:hunter2@127.0.0.1:{srv.port}/", timeout_seconds=5), policy=LOCAL)
    assert r == ProbeResult(False, f"HTTP GET http://***@127.0.0.1:{srv.port}/: HTTP 401")
    assert b"\r\nAuthorization: Basic YWRtaW46aHVudGVyMg==\r\n" in srv.requests[0]


# -- redirects ----------------------------------------------------------------------------------------------


def redirects(n_total: int, port_holder: list[int]) -> Responder:
    def respond(head: bytes) -> Iterator[bytes]:
        path = head.split(b" ")[1].decode()
        n = int(path.rsplit("/", 1)[1])
        if n == 0:
            yield from answer(200)(head)
        else:
            yield from answer(302, [("Location", f"/r/{n - 1}")])(head)

    return respond


@pytest.mark.parametrize(("hops", "ok", "words"), [(0, True, "HTTP 200"), (5, True, "HTTP 200 after 5 redirects"),
                                                   (6, False, "more than 5 redirects")])
async def test_redirects_only_with_L_and_at_most_five(
    serve: Callable[..., RawServer], hops: int, ok: bool, words: str
) -> None:
    srv = serve(redirects(hops, []))
    r = await run_check(HttpCheck(url=f"http://127.0.0.1:{srv.port}/r/{hops}", follow_redirects=True,
                                  timeout_seconds=5), policy=LOCAL)
    assert r.ok is ok and words in r.message, r
    assert len(srv.requests) == min(hops, 5) + 1
    plain = await run_check(HttpCheck(url=f"http://127.0.0.1:{srv.port}/r/{max(hops, 1)}", timeout_seconds=5),
                            policy=LOCAL)
    assert plain.ok and plain.message.endswith("HTTP 302"), "without -L a redirect is the answer (as curl)"


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("http://169.254.169.254/latest/meta-data/", "refused by the probe policy: 169.254.169.254 is link-local"),
        ("http://127.0.0.2:{port}/", "refused by the probe policy: 127.0.0.2 is loopback"),
        ("http://0x7f000002:{port}/", "refused by the probe policy: 127.0.0.2 is loopback"),
        ("http://[::1]:{port}/", "refused by the probe policy: ::1 is loopback"),
        ("http://localhost:{port}/", "refused by the probe policy: ::1 is loopback"),
        ("file:///etc/passwd", "unsupported URL scheme 'file'"),
        ("http://u:secret@ä..b/", "redirect to 'http://***@ä..b/': invalid host name"),
    ],
)
async def test_each_redirect_is_decided_again(serve: Callable[..., RawServer], location: str, words: str) -> None:
    port_box: list[int] = []
    srv = serve(lambda head: answer(302, [("Location", location.format(port=port_box[0]))])(head))
    port_box.append(srv.port)
    resolver = resolver_of({"localhost": ["::1"]})
    r = await run_check(HttpCheck(url=f"http://127.0.0.1:{srv.port}/", follow_redirects=True, timeout_seconds=5),
                        policy=LOCAL, resolver=resolver)
    assert not r.ok and words in r.message, r
    assert "secret" not in r.message
    assert len(srv.requests) == 1


# -- the policy on first connect, and error texts ------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]", "localhost",
                                  "[::1]", "169.254.169.254", "[fd00:ec2::254]", "metadata.internal"])
async def test_default_policy_refuses_every_spelling_before_connecting(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[tuple[str, int]] = []

    async def no_connect(address: str, port: int) -> None:
        connects.append((address, port))
        raise AssertionError("connected")

    monkeypatch.setattr(probes, "connect_tcp", no_connect)
    resolver = resolver_of({"localhost": ["127.0.0.1", "::1"], "metadata.internal": ["169.254.169.254"]})
    for check in (HttpCheck(url=f"http://{host}:8080/"), TcpCheck(host.strip("[]"), 8081)):
        r = await run_check(check, resolver=resolver)
        assert not r.ok and "refused by the probe policy" in r.message, r
    assert connects == []


async def test_error_texts_a_person_understands(serve: Callable[..., RawServer], tmp_path: Path) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    refused = await run_check(TcpCheck("127.0.0.1", port, timeout_seconds=2), policy=LOCAL)
    assert refused.message == f"TCP connect 127.0.0.1:{port}: connection refused"

    missing = await run_check(HttpCheck(url="http://nowhere.example/"), resolver=resolver_of({}))
    assert missing.message == "HTTP GET http://nowhere.example/: DNS name not found"

    async def flaky(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    again = await run_check(TcpCheck("db.example", 3306), resolver=flaky)
    assert again.message.startswith("TCP connect db.example:3306: DNS lookup failed")

    empty = await run_check(TcpCheck("db.example", 3306), resolver=resolver_of({"db.example": []}))
    assert empty.message.endswith(": DNS name not found")

    async def unreachable(address: str, port: int) -> None:
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(probes, "connect_tcp", unreachable)
        r = await run_check(TcpCheck("10.1.2.3", 80))
    assert r.message == "TCP connect 10.1.2.3:80: network unreachable"

    garbage = serve(lambda head: iter([b"SSH-2.0-OpenSSH\r\n\r\n"]))
    bad = await run_check(HttpCheck(url=f"http://127.0.0.1:{garbage.port}/", timeout_seconds=5), policy=LOCAL)
    assert not bad.ok and "invalid HTTP response" in bad.message, bad

    cert, key = _self_signed(tmp_path, "uuc.example")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    names: list[str | None] = []
    ctx.sni_callback = lambda sock, name, c: names.append(name)  # type: ignore[assignment,func-returns-value]
    tls = serve(answer(200), tls=ctx)
    resolver = resolver_of({"uuc.example": ["127.0.0.1"]})
    verified = await run_check(HttpCheck(url=f"https://uuc.example:{tls.port}/", timeout_seconds=5), policy=LOCAL,
                               resolver=resolver)
    assert not verified.ok
    assert verified.message.startswith(f"HTTP GET https://uuc.example:{tls.port}/: TLS certificate verify failed: ")
    assert "self" in verified.message and "signed" in verified.message, verified
    insecure = await run_check(HttpCheck(url=f"https://uuc.example:{tls.port}/", insecure=True, timeout_seconds=5),
                               policy=LOCAL, resolver=resolver)
    assert insecure.ok, insecure
    assert names and set(names) == {"uuc.example"}, "SNI names the host, though the address was connected to"

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(1)
    try:
        slow = await run_check(HttpCheck(url=f"http://127.0.0.1:{hung.getsockname()[1]}/", timeout_seconds=0.3),
                               policy=LOCAL)
    finally:
        hung.close()
    assert slow.message.endswith(": timed out after 0.3s")


def _self_signed(tmp_path: Path, name: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


# -- the manager is contained --------------------------------------------------------------------------------


async def test_the_manager_survives_crashing_and_hostile_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    real = probes.run_check
    boom = TcpCheck("boom.example", 1, timeout_seconds=1)

    async def sometimes_crash(check: object, **kw: object) -> ProbeResult:
        if check == boom:
            raise RuntimeError("a bug in probe code")
        return await real(check, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(probes, "run_check", sometimes_crash)
    changes: list[object] = []
    mgr = ProbeManager(changes.append, retry_min=0.05, resolver=resolver_of({}))
    hostile = [
        HttpCheck(url="http://ｅｘａｍｐｌｅ.com/", timeout_seconds=1),
        TcpCheck("ä..b", 3306, timeout_seconds=1),
        HttpCheck(url="http://ä..b:80/", timeout_seconds=1),
        HttpCheck(url="http://[zz]/", timeout_seconds=1),
        HttpCheck(url="http://h:0/", timeout_seconds=1),
        TcpCheck("x" * 300, 65536, timeout_seconds=1),
    ]
    requests = [ProbeRequest(f"k{i}", "uuc", c, period_seconds=0.2) for i, c in enumerate([*hostile, boom])]
    async with anyio.create_task_group() as tg:
        tg.start_soon(mgr.run)
        await mgr.wait_started()
        mgr.ensure("p", requests)
        with anyio.fail_after(5):
            while len(mgr.results("p")) < len(hostile) or mgr.crashes < 2:
                await anyio.sleep(0.02)
        results = mgr.results("p")
        assert all(not r.ok and r.message for r in results.values()), results
        assert results["k0"].message == "HTTP GET http://ｅｘａｍｐｌｅ.com/: DNS name not found"
        assert results["k1"].message.startswith("TCP connect ä..b:3306: invalid host name 'ä..b'")
        assert results["k4"].message.endswith("invalid port 0: must be 1 to 65535")
        assert "k6" not in results, "the crashing check has no result, but the manager lives on"
        # a DataService that subscribes to a target that already has a result hears of it at once
        changes.clear()
        mgr.ensure("q", [ProbeRequest("q0", "uuc", hostile[0], period_seconds=0.2)])
        assert changes == ["q"]
        tg.cancel_scope.cancel()


async def test_first_result_grace_never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconciler asks how long a new check may still take for its first result; the answer is
    immediate, shrinks with time, and is 0 once the check answered or its grace is over."""

    async def hang(address: str, port: int) -> None:
        await anyio.sleep_forever()

    mgr = ProbeManager(lambda p: None, resolver=resolver_of({"silent.example": ["10.1.2.3"]}))
    silent = ProbeRequest("s", "uuc", TcpCheck("silent.example", 1, timeout_seconds=300), period_seconds=5)
    quick = ProbeRequest("q", "uuc", TcpCheck("nowhere.example", 1, timeout_seconds=5), period_seconds=5)
    monkeypatch.setattr(probes, "connect_tcp", hang)
    async with anyio.create_task_group() as tg:
        tg.start_soon(mgr.run)
        await mgr.wait_started()
        mgr.ensure("p", [silent, quick])
        first = mgr.first_result_grace("p", ["s", "q"], 0.5)
        assert 0.3 < first <= 0.5
        with anyio.fail_after(2):
            while "q" not in mgr.results("p"):  # DNS name not found: a result at once
                await anyio.sleep(0.01)
        assert mgr.first_result_grace("p", ["q"], 0.5) == 0.0
        await anyio.sleep(0.6)
        assert mgr.first_result_grace("p", ["s", "q"], 0.5) == 0.0, "the grace is over: plan without it"
        assert "s" not in mgr.results("p")
        tg.cancel_scope.cancel()
