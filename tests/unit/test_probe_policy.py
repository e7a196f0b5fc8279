"""The probe target policy (pure): which addresses a third-party probe may connect to, and why not."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from d3os_core.probe_policy import ProbePolicy, decide, ip_literal, parse_cidr
from d3os_core.redact import redact_text, redact_url
from d3os_core.types import HttpCheck

DEFAULT = ProbePolicy()


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.0x1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("[::1]", "::1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("169.254.169.254", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("10.1.2.3", "10.1.2.3"),
    ],
)
def test_every_spelling_of_an_address_is_that_address(spelling: str, address: str) -> None:
    assert ip_literal(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "name",
    ["localhost", "example.com", "1.2.3.4.5", "256.0.0.1", "1.16777216", "0x", "08.0.0.1", "", "１２７.０.０.１",
     "127.0.0.1:80", "[zz]", "1..2", "+1", "-1", "1e3", "٣"],
)
def test_names_and_non_numbers_are_no_literal(name: str) -> None:
    assert ip_literal(name) is None


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("::ffff:7f00:1", "loopback (it embeds 127.0.0.1)"),
        ("::7f00:1", "loopback (it embeds 127.0.0.1)"),
        ("64:ff9b::7f00:1", "loopback (it embeds 127.0.0.1)"),
        ("2002:7f00:1::", "loopback (it embeds 127.0.0.1)"),
        ("169.254.169.254", "link-local"),
        ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fd00:ec2::254", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
    ],
)
def test_default_policy_refuses(address: str, words: str) -> None:
    d = decide(DEFAULT, address)
    assert not d.allowed
    assert words in d.why
    assert "probe policy" in d.refusal() and str(ipaddress.ip_address(address.split("%")[0])) in d.refusal()


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.1", "172.16.0.1", "8.8.8.8", "2001:db8::1", "fd00::1",
                                     "100.64.0.1"])
def test_default_policy_allows_ordinary_addresses(address: str) -> None:
    assert decide(DEFAULT, address).allowed


def test_not_an_address_is_refused() -> None:
    d = decide(DEFAULT, "example.com")
    assert not d.allowed and "not an IP address" in d.why


def test_allow_and_deny_flags_longest_prefix_wins_deny_wins_ties() -> None:
    p = ProbePolicy(allow=(parse_cidr("127.0.0.0/8"), parse_cidr("10.1.2.0/24")),
                    deny=(parse_cidr("10.0.0.0/8"), parse_cidr("127.0.0.2"), parse_cidr("10.1.2.0/24")))
    assert decide(p, "127.0.0.1").allowed, "an allow CIDR opens a built-in refusal"
    assert decide(p, "::ffff:127.0.0.1").allowed, "the embedded address is decided too"
    assert not decide(p, "127.0.0.2").allowed and "--probe-deny-cidr" in decide(p, "127.0.0.2").why
    assert not decide(p, "10.9.9.9").allowed
    assert not decide(p, "10.1.2.3").allowed, "deny wins a tie"
    assert not decide(p, "::1").allowed, "an IPv4 allow does not open IPv6 loopback"
    p2 = ProbePolicy(allow=(parse_cidr("10.1.2.0/24"),), deny=(parse_cidr("10.0.0.0/8"),))
    assert decide(p2, "10.1.2.3").allowed, "a narrower allow inside a deny opens it"
    assert not decide(p2, "10.1.3.3").allowed


def test_protected_addresses_survive_broad_allows_but_not_an_exact_one() -> None:
    p = ProbePolicy(allow=(parse_cidr("10.0.0.0/8"), parse_cidr("127.0.0.0/8"))).with_protected(
        [("10.96.0.1", "the Kubernetes API server"), ("127.0.0.1", "the Kubernetes API server"),
         ("10.244.1.7", "the operator's own pod"), ("not an ip", "ignored")]
    )
    d = decide(p, "10.96.0.1")
    assert not d.allowed and d.why == "10.96.0.1 is the Kubernetes API server"
    assert not decide(p, "10.244.1.7").allowed
    assert decide(p, "10.96.0.2").allowed
    assert not decide(p, "127.0.0.1").allowed
    assert decide(p, "127.0.0.2").allowed
    exact = ProbePolicy(allow=(parse_cidr("127.0.0.1/32"),)).with_protected([("127.0.0.1", "the API server")])
    assert decide(exact, "127.0.0.1").allowed, "an allow naming the very address opens it (tests do that)"
    assert not decide(ProbePolicy().with_protected([("10.96.0.1", "the API server")]), "10.96.0.1").allowed
    assert ProbePolicy().with_protected([("10.0.0.1", "x"), ("10.0.0.1", "x")]).protected == (
        (parse_cidr("10.0.0.1"), "x"),)


def test_parse_cidr_errors_are_readable() -> None:
    assert str(parse_cidr("[fd00::1]")) == "fd00::1/128"
    assert str(parse_cidr("10.1.2.3/8")) == "10.0.0.0/8"
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        parse_cidr("10.0.0.0/33")
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        parse_cidr("example.com")


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
                 st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)))
def test_decide_is_total_and_matches_the_stdlib_classification(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    d = decide(DEFAULT, addr)
    assert d.why
    plain = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped else addr
    if plain.is_loopback or plain.is_link_local or plain.is_multicast or plain.is_unspecified:
        assert not d.allowed, d
    assert decide(DEFAULT, str(addr)) == d


# -- redaction ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:secret@host/x", "http://***@host/x"),
        ("https://user@host:8443", "https://***@host:8443"),
        ("http://a:b@c@host/p@q", "http://***@host/p@q"),
        ("jdbc:mysql://root:pw@db:3306/x", "jdbc:mysql://***@db:3306/x"),
        ("HTTP GET http://u:p@h/ failed: redirect to http://v:q@i/ (x@y)", "HTTP GET http://***@h/ failed: "
         "redirect to http://***@i/ (x@y)"),
        ("http://host/path?mail=a@b", "http://host/path?mail=a@b"),
        ("no url here: me@example.com", "no url here: me@example.com"),
        ("http://host/", "http://host/"),
    ],
)
def test_redaction(text: str, shown: str) -> None:
    assert redact_text(text) == shown
    assert redact_url(text) == shown


def test_http_check_describes_itself_without_the_password() -> None:
    check = HttpCheck(url="http://admin:hunter2@uuc.example/duc")
    assert check.describe() == "HTTP GET http://***@uuc.example/duc"
    assert "hunter2" not in check.describe()


_USERINFO_CHARS = st.text(min_size=1, max_size=20).filter(lambda s: not any(c in "/?#" or c.isspace() for c in s))


@settings(max_examples=1000, deadline=None)
@given(user=_USERINFO_CHARS.filter(lambda s: "@" not in s and ":" not in s), password=_USERINFO_CHARS)
def test_redaction_never_shows_the_password(user: str, password: str) -> None:
    url = f"http://{user}:{password}@host.example/p"
    shown = redact_url(url)
    assert shown == "http://***@host.example/p"
