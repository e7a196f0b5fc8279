"""checkCMD is parsed into a structured check, never run; everything outside the subset is refused."""

from __future__ import annotations

import pytest

from d3os_core.checks import CheckError, check_from_url, endpoint_of, parse_check_cmd
from d3os_core.types import HttpCheck, TcpCheck


def test_the_seed_check() -> None:
    check = parse_check_cmd("curl --output /dev/null --silent --head --fail https://id.cosmoplat.com/duc")
    assert check == HttpCheck(url="https://id.cosmoplat.com/duc", method="HEAD", fail_on_http_error=True)


@pytest.mark.parametrize(("cmd", "expected"), [
    ("curl -sfI http://a:8080/x", None),  # combined short flags are not in the subset
    ("curl -k -L -m 3 https://a/b?c=1", HttpCheck(url="https://a/b?c=1", insecure=True, follow_redirects=True,
                                                  timeout_seconds=3.0, fail_on_http_error=False)),
    ("nc -z db.local 3306", TcpCheck(host="db.local", port=3306)),
    ("nc -z -w 2 10.0.0.1 80", TcpCheck(host="10.0.0.1", port=80, timeout_seconds=2.0)),
])
def test_subset(cmd: str, expected: object) -> None:
    if expected is None:
        with pytest.raises(CheckError):
            parse_check_cmd(cmd)
    else:
        assert parse_check_cmd(cmd) == expected


@pytest.mark.parametrize("cmd", [
    "", "   ", "curl", "curl http://a http://b", "curl -o /tmp/x http://a", "curl --data x http://a",
    "curl http://a; id", "curl http://a | sh", "curl $(id)", "curl `id`", "curl http://a > /etc/passwd",
    "curl http://a\nid", "curl 'http://a", "bash -c 'curl http://a'", "nc db 3306", "nc -z db", "nc -z db 0",
    "nc -z db 99999", "nc -e /bin/sh db 1", "curl file:///etc/passwd", "curl -m 0 http://a", "curl -m x http://a",
    "curl http://a && id", "curl http://a\\", "curl --output",
])
def test_refused_with_a_reason(cmd: str) -> None:
    with pytest.raises(CheckError) as info:
        parse_check_cmd(cmd)
    assert str(info.value)


@pytest.mark.parametrize(("url", "endpoint"), [
    ("https://id.cosmoplat.com/duc", ("id.cosmoplat.com", 443)),
    ("http://h:8080/x", ("h", 8080)),
    ("jdbc:mysql://db.example.com:3307/ds?x=1", ("db.example.com", 3307)),
    ("mysql://db", ("db", 3306)),
    ("db:3306", ("db", 3306)),
    ("tcp://1.2.3.4:5", ("1.2.3.4", 5)),
])
def test_endpoints(url: str, endpoint: tuple[str, int]) -> None:
    assert endpoint_of(url, 3306) == endpoint


def test_check_from_url() -> None:
    assert check_from_url("http://a/b") == HttpCheck(url="http://a/b")
    assert check_from_url("db:3306") == TcpCheck(host="db", port=3306)
    with pytest.raises(CheckError):
        check_from_url("ftp://a")
