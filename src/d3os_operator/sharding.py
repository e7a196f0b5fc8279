"""Sharding: several operator Deployments split the DataServices between them by label, as Flux does.

Each shard runs ``d3os-operator run --watch-label-selector SELECTOR``: its DataService informer lists and
watches with that label selector, so a DataService outside it is never cached, never queued and never
written by that shard. The convention is the label :data:`SHARD_KEY` (``sharding.d3os.io/key: shard1``);
the shard that takes the unlabelled DataServices selects ``!sharding.d3os.io/key`` or
``sharding.d3os.io/key notin (shard1,shard2)``. Each shard elects its own leader on its own Lease
(:func:`lease_name`), so every shard can run two replicas for availability.

Pure functions only (no I/O): the selector grammar is Kubernetes' (``k8s.io/apimachinery/pkg/labels``)
less the numeric ``>``/``<`` operators, and each key may appear once (the selector is kept as one
requirement per key, which is what lightkube's ``labels=`` takes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lightkube import operators

SHARD_KEY = "sharding.d3os.io/key"
"""The label a DataService carries to say which shard reconciles it (none: the default shard)."""

LEASE_SUFFIX = ".d3os-product.com.d3os"
LEASE_PREFIX = "d3os-operator"

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

OPS = ("=", "!=", "in", "notin", "exists", "!")
"""Requirement operators: ``exists`` is a bare key, ``!`` a negated bare key."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        return not has or value not in self.values  # != and notin: an absent key matches

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return "!" + self.key
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{self.values[0]}"
        return f"{self.key} {self.op} ({','.join(self.values)})"

    def operator(self) -> operators.Operator[Any]:
        """The lightkube operator for this requirement (what ``labels={key: ...}`` takes)."""
        if self.op == "exists":
            return operators.exists()
        if self.op == "!":
            return operators.not_exists()
        if self.op == "=":
            return operators.equal(self.values[0])
        if self.op == "!=":
            return operators.not_equal(self.values[0])
        if self.op == "in":
            return operators.in_(self.values)
        return operators.not_in(self.values)


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: every requirement must hold. Requirements are sorted by key, so two
    spellings of one selector compare (and name their Lease) alike."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        return self.matches((obj.get("metadata") or {}).get("labels") or {})

    def as_labels(self) -> dict[str, operators.Operator[Any]]:
        """The ``labels=`` mapping of lightkube (and of :class:`~d3os_operator.informer.Informer`)."""
        return {r.key: r.operator() for r in self.requirements}

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def shard(self) -> str | None:
        """The shard's name when the selector is exactly ``sharding.d3os.io/key=NAME`` (or ``in (NAME)``)."""
        if len(self.requirements) == 1:
            (r,) = self.requirements
            if r.key == SHARD_KEY and r.op in ("=", "in") and len(r.values) == 1:
                return r.values[0]
        return None


def _check_key(key: str, text: str) -> None:
    where = f"--watch-label-selector {text!r}: label key {key!r}"
    prefix, slash, name = key.rpartition("/")
    if not slash:
        prefix, name = "", key
    if slash and not prefix:
        raise ValueError(f"{where}: the prefix before '/' is empty")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"{where}: the prefix must be a DNS subdomain (lowercase letters, digits, '-', '.')")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise ValueError(
            f"{where}: the name must be 1-63 characters, letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )


def _check_value(key: str, value: str, text: str) -> None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        raise ValueError(
            f"--watch-label-selector {text!r}: value {value!r} of {key!r} must be at most 63 characters, "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )


def _split(text: str) -> list[str]:
    """Split at the commas that are not inside parentheses."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"--watch-label-selector {text!r}: unbalanced ')'")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"--watch-label-selector {text!r}: unbalanced '('")
    parts.append(text[start:])
    return parts


_SET = re.compile(r"^(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ = re.compile(r"^(?P<key>[^\s!=(),<>]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)$")


def _requirement(part: str, text: str) -> Requirement:
    if m := _SET.match(part):
        key, op = m["key"], m["op"]
        values = tuple(sorted({v.strip() for v in m["values"].split(",")}))
        if values == ("",):
            raise ValueError(f"--watch-label-selector {text!r}: '{key} {op} ()' needs at least one value")
        _check_key(key, text)
        for v in values:
            _check_value(key, v, text)
        return Requirement(key, op, values)
    if m := _EQ.match(part):
        key, op, value = m["key"], m["op"], m["value"]
        _check_key(key, text)
        _check_value(key, value, text)
        return Requirement(key, "=" if op == "==" else op, (value,))
    if part.startswith("!"):
        key = part[1:].strip()
        _check_key(key, text)
        return Requirement(key, "!")
    if re.search(r"[<>]", part):
        raise ValueError(f"--watch-label-selector {text!r}: the numeric operators '<' and '>' are not supported")
    if re.fullmatch(r"[^\s!=(),]+", part):
        _check_key(part, text)
        return Requirement(part, "exists")
    raise ValueError(
        f"--watch-label-selector {text!r}: cannot parse {part!r}; each comma-separated requirement is one of "
        "KEY, !KEY, KEY=VALUE, KEY==VALUE, KEY!=VALUE, KEY in (V1,V2), KEY notin (V1,V2)"
    )


def parse_selector(text: str | None) -> LabelSelector | None:
    """Parse a label selector (``kubectl -l`` syntax); None or blank: no selector, every DataService.

    Raises ValueError naming the flag, the selector and what is wrong (before the operator starts).
    """
    if text is None or not text.strip():
        return None
    reqs: dict[str, Requirement] = {}
    for raw in _split(text):
        part = raw.strip()
        if not part:
            raise ValueError(f"--watch-label-selector {text!r}: empty requirement (a stray comma?)")
        req = _requirement(part, text)
        if req.key in reqs:
            raise ValueError(f"--watch-label-selector {text!r}: label key {req.key!r} appears twice; use it once")
        reqs[req.key] = req
    return LabelSelector(tuple(sorted(reqs.values(), key=lambda r: r.key)))


def lease_name(selector: LabelSelector | None, explicit: str | None = None, default: str | None = None) -> str:
    """The leader-election Lease of a shard: ``explicit`` (``--leader-election-id``) if given; no selector:
    ``default`` (the unsharded operator's Lease); ``sharding.d3os.io/key=NAME``: ``d3os-operator-NAME...``;
    any other selector: a digest of its normalised text. Replicas of one shard share their Lease, and two
    different selectors never do."""
    if explicit:
        return explicit
    if selector is None:
        return default or LEASE_PREFIX + LEASE_SUFFIX
    shard = selector.shard()
    if shard is not None and _DNS_LABEL.match(shard):
        return f"{LEASE_PREFIX}-{shard}{LEASE_SUFFIX}"
    digest = hashlib.sha256(str(selector).encode()).hexdigest()[:10]
    return f"{LEASE_PREFIX}-sel-{digest}{LEASE_SUFFIX}"


def check_lease_name(name: str) -> None:
    """Raise ValueError unless ``name`` can name a Lease (a DNS subdomain)."""
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ValueError(
            f"--leader-election-id {name!r}: must be a DNS subdomain (at most 253 lowercase letters, digits, "
            "'-' and '.', starting and ending with a letter or digit)"
        )


def labels_match(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Does an object's ``labels`` satisfy an informer's ``labels=`` mapping (lightkube's forms: a string is
    equality, None existence, an iterable ``in``, else a lightkube operator)?"""
    for key, want in selector.items():
        has = key in labels
        value = labels.get(key)
        if want is None:
            ok = has
        elif isinstance(want, str):
            ok = has and value == want
        elif isinstance(want, operators.Operator):
            name = want.op_name
            raw: Any = want.value
            vals: list[str] = [raw] if isinstance(raw, str) else list(raw or [])
            if name == "exists":
                ok = has
            elif name == "not_exists":
                ok = not has
            elif name in ("equal", "in_"):
                ok = has and value in vals
            elif name in ("not_equal", "not_in"):
                ok = not has or value not in vals
            else:
                raise ValueError(f"unsupported label operator {name!r}")
        else:
            ok = has and value in set(want)
        if not ok:
            return False
    return True
