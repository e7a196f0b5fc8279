"""An IPv6 allow never opens an IPv4 address the policy refuses, whatever IPv6 form embeds it (issue 24, B7)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from d3os_core.probe_policy import ProbePolicy, decide, parse_cidr

API_SERVER = "10.96.0.1"
WIDE_V6 = ("::/0", "64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0/96", "2002::/16", "2001::/32", "::/96",
           "::ffff:0:0:0/96")


def embeddings(v4: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    """Every IPv6 spelling that reaches ``v4``: mapped, translated, compatible, NAT64 (well-known and local),
    6to4, Teredo (client, obfuscated)."""
    n = int(v4)
    forms = [
        ipaddress.IPv6Address(f"::ffff:{v4}"),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("::ffff:0:0:0")) | n),
        ipaddress.IPv6Address(n),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | n),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b:1::")) | n),
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),
        ipaddress.IPv6Address((0x20010000 << 96) | (int(ipaddress.IPv4Address("192.0.2.1")) << 64) | (n ^ 0xFFFFFFFF)),
    ]
    return [f for f in forms if f != ipaddress.IPv6Address("::1")]  # ::1 is IPv6's own loopback, not 0.0.0.1


@pytest.mark.parametrize("allow", WIDE_V6)
@pytest.mark.parametrize("target", ["127.0.0.1", "169.254.169.254", "100.100.100.200", "0.0.0.0", API_SERVER])
def test_an_ipv6_allow_never_opens_an_embedded_ipv4_refusal(allow: str, target: str) -> None:
    policy = ProbePolicy(allow=(parse_cidr(allow),)).with_protected([(API_SERVER, "the Kubernetes API server")])
    assert not decide(policy, target).allowed
    for form in embeddings(ipaddress.IPv4Address(target)):
        d = decide(policy, form)
        assert not d.allowed, (allow, str(form), d.why)
        assert f"it embeds {target}" in d.why


def test_an_ipv4_allow_still_opens_the_embedded_forms_of_what_it_names() -> None:
    policy = ProbePolicy(allow=(parse_cidr("127.0.0.1/32"),))
    for form in embeddings(ipaddress.IPv4Address("127.0.0.1")):
        assert decide(policy, form).allowed, str(form)
    closed = ProbePolicy(allow=(parse_cidr("127.0.0.1/32"),), deny=(parse_cidr("64:ff9b::/96"),))
    assert not decide(closed, "64:ff9b::7f00:1").allowed, "an IPv6 deny still closes its own form"


@settings(max_examples=600, deadline=None)
@given(
    v4=st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
    allows=st.lists(st.sampled_from(WIDE_V6), min_size=1, max_size=3),
)
def test_embedded_forms_are_never_more_open_than_the_ipv4_address(
    v4: ipaddress.IPv4Address, allows: list[str]
) -> None:
    policy = ProbePolicy(allow=tuple(parse_cidr(a) for a in allows)).with_protected(
        [(API_SERVER, "the Kubernetes API server")])
    if decide(policy, v4).allowed:
        return
    for form in embeddings(v4):
        assert not decide(policy, form).allowed, (str(v4), str(form), allows)
