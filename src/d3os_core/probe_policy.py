"""Which addresses the operator may probe: a pure decision on the address it is about to connect to.

The operator runs third-party checks written by any DataService author. Without a policy that makes it a
scanner of everything it can reach: the cloud metadata service, its own metrics and health ports, the
Kubernetes API server. So every address is decided here *after* resolution -- the shell resolves the
host, asks :func:`decide` about each address, and connects to an allowed address itself -- whatever way
the host was spelled (``127.1``, ``0x7f000001``, ``[::ffff:127.0.0.1]``, ``localhost``).

Order of the decision:

1. the operator's ``--probe-deny-cidr`` and ``--probe-allow-cidr`` networks and the *protected*
   addresses the shell found at start (the Kubernetes API server's Service and endpoints, the operator's
   own pod): of those that contain the address, the longest prefix decides. On a tie a deny flag beats
   an allow flag, which beats a protected address -- so a broad ``--probe-allow-cidr 10.0.0.0/8`` never
   opens the API server at 10.0.0.1, but ``--probe-allow-cidr 10.0.0.1/32`` does, on purpose;
2. else the built-in refusals (:data:`BUILTIN_DENY`: loopback, link-local, unspecified, multicast,
   broadcast, cloud metadata), which any covering ``--probe-allow-cidr`` opens;
3. else allowed.

IPv6 forms that embed an IPv4 address (mapped ``::ffff:a.b.c.d``, translated ``::ffff:0:a.b.c.d``,
compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16``, Teredo
``2001::/32``) reach that IPv4 address, so each form is decided on its own -- IPv6 rules on the IPv6
address, IPv4 rules on the embedded address -- and the address is allowed only when every form is. An
IPv6 allow (``::/0``, ``64:ff9b::/96``) therefore never opens an IPv4 address that is refused: only an
IPv4 allow can.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text, strict=False)


BUILTIN_DENY: tuple[tuple[IPNetwork, str], ...] = (
    (_net("127.0.0.0/8"), "loopback"),
    (_net("::1/128"), "loopback"),
    (_net("0.0.0.0/8"), "unspecified (this host)"),
    (_net("::/128"), "unspecified"),
    (_net("169.254.0.0/16"), "link-local (cloud metadata lives here)"),
    (_net("fe80::/10"), "link-local"),
    (_net("fd00:ec2::254/128"), "a cloud metadata service"),
    (_net("100.100.100.200/32"), "a cloud metadata service"),
    (_net("224.0.0.0/4"), "multicast"),
    (_net("ff00::/8"), "multicast"),
    (_net("255.255.255.255/32"), "broadcast"),
)
"""Refused unless an allow CIDR covers the address."""

_NAT64 = (_net("64:ff9b::/96"), _net("64:ff9b:1::/48"))
_TRANSLATED = _net("::ffff:0:0:0/96")


@dataclass(frozen=True, slots=True)
class Decision:
    """``allowed``, and ``why`` in words a person understands (names the address and the rule)."""

    allowed: bool
    address: str
    why: str

    def refusal(self) -> str:
        """The text a probe result carries when the address is refused."""
        return f"refused by the probe policy: {self.why}"


@dataclass(frozen=True, slots=True)
class ProbePolicy:
    """The probe target policy; the defaults refuse :data:`BUILTIN_DENY` and the protected addresses.

    ``protected`` holds (network, what) pairs found by the shell at start: the Kubernetes API server's
    Service and endpoints, the operator's own pod IPs.
    """

    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()
    protected: tuple[tuple[IPNetwork, str], ...] = ()

    def with_protected(self, items: Iterable[tuple[str, str]]) -> ProbePolicy:
        """A copy that also protects each (address or CIDR, what) in ``items`` (bad addresses skipped)."""
        merged = list(self.protected)
        for text, what in items:
            try:
                item = (parse_cidr(text), what)
            except ValueError:
                continue
            if item not in merged:
                merged.append(item)
        return ProbePolicy(self.allow, self.deny, tuple(merged))


    def protecting(self, items: Iterable[tuple[str, str]]) -> ProbePolicy:
        """A copy that protects exactly ``items`` (the flags kept): the protected set follows the cluster."""
        return ProbePolicy(self.allow, self.deny).with_protected(items)


def parse_cidr(text: str) -> IPNetwork:
    """``10.0.0.0/8``, ``fd00::/8`` or a single address; raise ValueError with a readable reason."""
    value = text.strip()
    if value.startswith("[") and "]" in value:
        value = value[1:].replace("]", "", 1)
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8, 192.0.2.7)") from None


def parse_address(text: str) -> IPAddress | None:
    """An IP address as the shell got it from the resolver (a zone ``%eth0`` is dropped); None if not one."""
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    value = value.split("%", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def ip_literal(host: str) -> IPAddress | None:
    """The address a host *spelling* stands for without any DNS lookup, or None for a name.

    Covers what the C library accepts as a number: IPv6 with or without brackets (and a zone), dotted
    IPv4 with one to four parts, each decimal, octal (leading ``0``) or hex (``0x``) -- so ``127.1``,
    ``0x7f000001``, ``2130706433`` and ``0177.0.0.1`` are all 127.0.0.1 -- with an optional trailing dot.
    """
    text = host.strip()
    if not text:
        return None
    if text.startswith("[") or ":" in text:
        return parse_address(text)
    text = text[:-1] if text.endswith(".") else text
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        n = _c_number(part)
        if n is None:
            return None
        numbers.append(n)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = (value << (8 * (5 - len(numbers)))) | last
    return ipaddress.IPv4Address(value)


def _c_number(part: str) -> int | None:
    """One part as inet_aton reads it: ``0x1f`` hex, ``017`` octal, else decimal; None if not a number."""
    if not part or len(part) > 40:
        return None
    try:
        if part[:2] in ("0x", "0X"):
            return int(part[2:], 16) if part[2:] and all(c in "0123456789abcdefABCDEF" for c in part[2:]) else None
        if not part.isascii() or not part.isdigit():
            return None
        if len(part) > 1 and part[0] == "0":
            return int(part, 8) if all(c in "01234567" for c in part) else None
        return int(part)
    except ValueError:
        return None


def _views(addr: IPAddress) -> list[IPAddress]:
    """The address and every IPv4 address embedded in it (mapped, translated, compatible, NAT64, 6to4,
    Teredo's server and client)."""
    out: list[IPAddress] = [addr]
    if not isinstance(addr, ipaddress.IPv6Address):
        return out
    low = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.ipv4_mapped is not None:
        out.append(addr.ipv4_mapped)
    if addr.sixtofour is not None:
        out.append(addr.sixtofour)
    if addr.teredo is not None:
        out.extend(addr.teredo)
    if addr in _TRANSLATED or any(addr in net for net in _NAT64):
        out.append(low)
    if int(addr) >> 32 == 0 and int(addr) != 1:  # deprecated IPv4-compatible ::a.b.c.d (``::`` is 0.0.0.0)
        out.append(low)
    return list(dict.fromkeys(out))


def _decide_one(policy: ProbePolicy, view: IPAddress, shown: str, inside: str) -> Decision:
    """One form of the address, by the rules of its own IP version only."""
    # (prefix length, tie rank, allowed, why): the longest prefix wins; on a tie a deny flag beats an
    # allow flag, and an allow flag beats a protected address (it names that very address on purpose)
    best: tuple[int, int, bool, str] | None = None
    candidates = [
        *((net, 2, False, f"{shown} is in {net} (--probe-deny-cidr){inside}") for net in policy.deny),
        *((net, 1, True, f"{shown} is in {net} (--probe-allow-cidr){inside}") for net in policy.allow),
        *((net, 0, False, f"{shown} is {what}{inside}") for net, what in policy.protected),
    ]
    for net, rank, allowed, why in candidates:
        if view.version == net.version and view in net and (best is None or (net.prefixlen, rank) > best[:2]):
            best = (net.prefixlen, rank, allowed, why)
    if best is not None:
        return Decision(best[2], shown, best[3])
    for net, what in BUILTIN_DENY:
        if view.version == net.version and view in net:
            return Decision(False, shown, f"{shown} is {what}{inside}")
    return Decision(True, shown, f"{shown} is not refused by the probe policy")


def decide(policy: ProbePolicy, address: str | IPAddress) -> Decision:
    """May the operator connect to ``address``? See the module docstring for the order of the rules."""
    addr = address if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else parse_address(address)
    if addr is None:
        return Decision(False, str(address), f"{str(address)!r} is not an IP address")
    shown = str(addr)
    first: Decision | None = None
    views = _views(addr)
    for view in (*views[1:], views[0]):  # a refusal names the embedded IPv4 address first
        one = _decide_one(policy, view, shown, "" if view == addr else f" (it embeds {view})")
        if not one.allowed:
            return one
        first = first or one
    assert first is not None
    return first
