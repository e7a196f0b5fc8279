"""``d3os ui``'s guard (usercli/ui/guard.py), one refusal per case: Host, token (query, cookie, header), and for
changes the token header and the same origin. The expected answers are the rules' own words in the issue, not
the guard's output."""

from __future__ import annotations

import pytest

from d3os_operator.usercli.ui.guard import Guard, new_token

TOKEN = "t" * 43
G = Guard.for_address(TOKEN, "127.0.0.1", 8765)
HOST = {"host": "127.0.0.1:8765"}


def test_tokens_are_random_and_long() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) >= 43 for t in tokens)


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765"])
def test_the_token_opens_a_read(host: str) -> None:
    assert G.check("GET", {"host": host}, {"token": TOKEN}, {}) is None
    assert G.check("GET", {"host": host}, {}, {"d3os-ui-8765": TOKEN}) is None
    assert G.check("GET", {"host": host, "x-d3os-token": TOKEN}, {}, {}) is None


@pytest.mark.parametrize("host", ["", "evil.example:8765", "127.0.0.1:8766", "127.0.0.1", "localhost",
                                  "127.0.0.1.nip.io:8765", "LOCALHOST:8765x"])
def test_a_foreign_host_is_refused_even_with_the_token(host: str) -> None:
    r = G.check("GET", {"host": host} if host else {}, {"token": TOKEN}, {})
    assert r is not None and r.status == 403 and "DNS rebinding" in r.reason


@pytest.mark.parametrize("query,cookies", [({}, {}), ({"token": ""}, {}), ({"token": TOKEN[:-1]}, {}),
                                           ({"token": TOKEN + "x"}, {}), ({}, {"d3os-ui-8766": TOKEN}),
                                           ({}, {"d3os-ui-8765": "x"})])
def test_a_read_without_the_token_is_refused(query: dict[str, str], cookies: dict[str, str]) -> None:
    r = G.check("GET", HOST, query, cookies)
    assert r is not None and r.status == 403 and "token" in r.reason


def test_a_change_needs_the_header_token_and_this_origin() -> None:
    ok = {**HOST, "x-d3os-token": TOKEN, "origin": "http://127.0.0.1:8765"}
    assert G.check("POST", ok, {}, {}) is None
    assert G.check("POST", {**ok, "origin": "http://localhost:8765"}, {}, {}) is None
    cookie = {"d3os-ui-8765": TOKEN}
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        no_header = G.check(method, {**HOST, "origin": "http://127.0.0.1:8765"}, {"token": TOKEN}, cookie)
        assert no_header is not None and "header" in no_header.reason
    for origin in ("http://evil.example", "http://127.0.0.1:8766", "https://127.0.0.1:8765", "null", None):
        headers = {**HOST, "x-d3os-token": TOKEN, **({"origin": origin} if origin else {})}
        r = G.check("POST", headers, {}, cookie)
        assert r is not None and r.status == 403 and "cross-origin" in r.reason


def test_each_port_has_its_own_cookie_and_ipv6_hosts_are_bracketed() -> None:
    assert G.cookie == "d3os-ui-8765"
    g6 = Guard.for_address(TOKEN, "::1", 9000)
    assert "[::1]:9000" in g6.hosts and "http://[::1]:9000" in g6.origins and g6.cookie == "d3os-ui-9000"
