"""Fuzz: any check address -- IDNA, full-width, Unicode dots, brackets, ports 0 and 65536, empty hosts, very
long names -- goes through the probe code and comes out as a result: refused, failed or probed, never an
exception. And a probe connects only to an address the policy allows, however the host was spelled.

No network: names resolve through a fake resolver, and connections go to a fake stream that answers any
request with ``HTTP/1.1 200``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import zlib
from typing import Any

import anyio
import anyio.abc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from d3os_core.probe_policy import ProbePolicy, decide, parse_cidr
from d3os_core.types import Check, HttpCheck, ProbeResult, TcpCheck
from d3os_operator import probes

EXAMPLES = max(5000, int(os.environ.get("D3OS_PROBE_FUZZ_EXAMPLES", "5000")))
POLICY = ProbePolicy(allow=(parse_cidr("127.0.0.9/32"),), deny=(parse_cidr("192.0.2.0/25"),)).with_protected(
    [("10.96.0.1", "the Kubernetes API server"), ("10.244.0.7", "the operator's own pod")]
)
ANSWERS = ["127.0.0.1", "127.0.0.9", "::1", "169.254.169.254", "fd00:ec2::254", "10.96.0.1", "10.244.0.7",
           "192.0.2.1", "192.0.2.200", "203.0.113.5", "2001:db8::5", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"]
CONNECTED: list[str] = []


class FakeStream(anyio.abc.SocketStream):
    """Answers one request with 200 and closes."""

    def __init__(self) -> None:
        self.sent = b""
        self.answered = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.answered or b"\r\n\r\n" not in self.sent:
            raise anyio.EndOfStream
        self.answered = True
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def send(self, item: bytes) -> None:
        self.sent += item

    async def send_eof(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    @property
    def extra_attributes(self) -> dict[Any, Any]:
        return {}


async def fake_connect(address: str, port: int) -> FakeStream:
    CONNECTED.append(address)
    return FakeStream()


async def fake_resolver(host: str, port: int) -> list[str]:
    h = zlib.crc32(host.encode("utf-8", "surrogatepass"))
    if h % 7 == 0:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    if h % 11 == 0:
        return []
    return [ANSWERS[(h >> 3) % len(ANSWERS)], ANSWERS[(h >> 9) % len(ANSWERS)]]


FULLWIDTH = st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E)
DOTS = st.sampled_from([".", "。", "．", "｡", "..", ""])
LABEL = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=0, max_size=12),
    st.text(alphabet=FULLWIDTH, min_size=1, max_size=8),
    st.text(min_size=1, max_size=8),
    st.sampled_from(["xn--", "xn--zz", "ä", "ß", "ﬃ", "ｅｘａｍｐｌｅ", "١٢٣", "\u200d", "\u0301", "-a", "a-", "0x7f",
                     "127", "localhost", "LOCALHOST"]),
    st.text(alphabet="abc", min_size=60, max_size=70),
)
NAME = st.lists(st.tuples(LABEL, DOTS), min_size=1, max_size=6).map(lambda xs: "".join(a + b for a, b in xs))
IP_SPELLING = st.one_of(
    st.sampled_from(["127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.0.0.1.", "::1", "::ffff:127.0.0.1",
                     "fe80::1%eth0", "169.254.169.254", "0251.0376.0251.0376", "fd00:ec2::254", "0.0.0.0", "::",
                     "1.2.3.4.5", "256.256.256.256", "0x", "1e3", "１２７.０.０.１", "127。0。0。1"]),
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
    st.integers(0, 2**32 - 1).map(hex),
)
PLAIN = st.from_regex(r"[a-z][a-z0-9-]{0,9}(\.[a-z][a-z0-9-]{0,9}){0,3}", fullmatch=True)
HOST = st.one_of(
    PLAIN,
    NAME,
    IP_SPELLING,
    IP_SPELLING.map(lambda h: f"[{h}]"),
    st.sampled_from(["", "[", "]", "[]", "[zz]", "[::1", "::1]", "a" * 254, ("a" * 63 + ".") * 4, "a" * 64,
                     "x" * 5000]),
    st.text(max_size=40),
)
PORT = st.one_of(st.sampled_from([0, 1, 80, 443, 65535, 65536, -1, 99999]), st.integers(-10, 70000))
PORT_TEXT = st.one_of(PORT.map(str), st.sampled_from(["", ":", "８０", "0x50", "80a", " 80", "+80"]))
USERINFO = st.sampled_from(["", "u@", "u:p@", "admin:hunter2@", ":@", "a@b@", "ü:ß@"])
PATH = st.one_of(st.sampled_from(["", "/", "/duc", "/a b", "/ä?x=ü#f", "/%zz", "?q", "#frag", "/\\x"]),
                 st.text(max_size=20))


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


URL = st.one_of(
    st.builds(lambda s, u, h, p, path: f"{s}://{u}{_bracketed(h)}:{p}{path}",
              st.sampled_from(["http", "https", "HTTP", "ftp", "file", ""]), USERINFO, HOST, PORT_TEXT, PATH),
    st.builds(lambda s, u, h, path: f"{s}://{u}{_bracketed(h)}{path}", st.sampled_from(["http", "https"]), USERINFO,
              HOST, PATH),
    st.builds(lambda h, p: f"http://{h}:{p}/", PLAIN, st.integers(1, 65535)),
    st.text(max_size=60),
)
CHECK: st.SearchStrategy[Check] = st.one_of(
    st.builds(lambda h, p: TcpCheck(host=h, port=p, timeout_seconds=2), HOST, PORT),
    st.builds(lambda h, p: TcpCheck(host=h, port=p, timeout_seconds=2), PLAIN, st.integers(1, 65535)),
    st.builds(lambda u, m, k, loc, fail: HttpCheck(url=u, method=m, insecure=k, follow_redirects=loc,
                                                   timeout_seconds=2, fail_on_http_error=fail),
              URL, st.sampled_from(["GET", "HEAD"]), st.booleans(), st.booleans(), st.booleans()),
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probes, "connect_tcp", fake_connect)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the probe code resolved a name itself")

    monkeypatch.setattr(socket, "getaddrinfo", forbidden)


async def _run(check: Check) -> ProbeResult:
    return await probes.run_check(check, policy=POLICY, resolver=fake_resolver)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])
@given(check=CHECK)
def test_any_check_address_is_refused_failed_or_probed_and_never_raises(check: Check) -> None:
    CONNECTED.clear()
    result = anyio.run(_run, check)
    assert isinstance(result, ProbeResult)
    assert result.message and len(result.message) <= 1024
    for address in CONNECTED:
        assert decide(POLICY, address).allowed, f"connected to {address}, which the policy refuses"
    text = result.message.partition(": ")[2]
    event("probed" if result.ok else next((k for k in ("probe policy", "invalid host", "invalid port", "invalid URL",
                                                        "DNS", "scheme", "TLS") if k in text), text[:30]))
    if result.ok:
        assert CONNECTED, "a probe that succeeded connected somewhere"
    if isinstance(check, HttpCheck) and "hunter2" in check.url:
        assert "hunter2" not in result.message
