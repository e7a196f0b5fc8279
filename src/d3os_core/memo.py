"""Bounded memo tables for pure, deterministic functions of the core.

Caching a pure function is not a side effect anyone can observe: the same inputs give the same result
with or without the table. It keeps a resync of a Ready DataService cheap (no re-render, no re-walk of
unchanged live objects). Results handed out are shared, so callers must treat them as read-only.

Memory must not follow what users write (issue 12, finding 9): keys are fixed-size digests of the inputs
(:func:`digest`), never the inputs themselves, and each table is bounded both in entries and in bytes
(the caller states what an entry weighs; the least recently used entries go first).

Large plain results can be kept :func:`pack`-ed: compressed bytes, about 1/25 of the dicts they stand for
(a DataService's 39 rendered objects: ~125 kB of dicts and strings, ~5 kB packed), unpacked on each hit
into a fresh copy -- which also means nobody can alter what the table holds.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import zlib
from collections import OrderedDict
from typing import Any, Generic, TypeVar

V = TypeVar("V")

ENTRY_OVERHEAD = 256
"""Bytes counted for each entry besides its stated weight (the digest key, the table's own node)."""


def digest(*parts: Any) -> str:
    """A fixed-size key for JSON-like ``parts`` (SHA-256, hex): equal inputs, equal keys."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_digest(*texts: str) -> str:
    """:func:`digest` for texts already serialised (no second encoding of a large spec)."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def pack(value: Any) -> bytes | None:
    """``value`` -- plain data: dicts, lists, tuples, strings, numbers, booleans, None -- as compressed bytes
    (None when it holds anything else). ``marshal``, not JSON: it keeps tuples and dict order, and unpacks
    ~5x faster; its format changes between Python versions, which does not matter in one process's memory."""
    try:
        return zlib.compress(marshal.dumps(value), 1)
    except ValueError:  # an object marshal does not know (a str subclass, a model...)
        return None


def unpack(blob: bytes) -> Any:
    """What :func:`pack` was given, as a new copy."""
    return marshal.loads(zlib.decompress(blob))


class Memo(Generic[V]):
    """A least-recently-used table of at most ``size`` entries and ``max_bytes`` bytes (stated weights)."""

    def __init__(self, size: int, max_bytes: int | None = None) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self.bytes = 0
        self._slot_key: dict[str, str] = {}
        self._key_slots: dict[str, set[str]] = {}
        """A *slot* names what an entry stands for now (an instance's spec): when the slot moves to another key,
        the entry it left is dropped unless another slot holds it -- so a table keeps one spec per instance,
        not one per generation of it (issue 24 A1), while entries put without a slot age out as before."""

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, slot: str | None = None) -> V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        self._data.move_to_end(key)
        if slot is not None:
            self._bind(slot, key)
        return hit[0]

    def put(self, key: str, value: V, nbytes: int = 0, slot: str | None = None) -> V:
        """Remember ``value`` (weighing ``nbytes``) and return it; a value over the whole budget is not kept.
        With ``slot``, the entry the slot held before is dropped (see ``__init__``)."""
        weight = max(0, nbytes) + ENTRY_OVERHEAD
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        if self.max_bytes is not None and weight > self.max_bytes:
            if slot is not None:
                self._unbind(slot)
            return value
        self._data[key] = (value, weight)
        self.bytes += weight
        if slot is not None:
            self._bind(slot, key)
        while len(self._data) > self.size or (self.max_bytes is not None and self.bytes > self.max_bytes):
            gone, (_, w) = self._data.popitem(last=False)
            self.bytes -= w
            for held in self._key_slots.pop(gone, ()):
                self._slot_key.pop(held, None)
        return value

    def _bind(self, slot: str, key: str) -> None:
        if self._slot_key.get(slot) == key:
            return
        self._unbind(slot)
        self._slot_key[slot] = key
        self._key_slots.setdefault(key, set()).add(slot)

    def _unbind(self, slot: str) -> None:
        """``slot`` holds nothing any more; the entry it held goes when no other slot holds it."""
        key = self._slot_key.pop(slot, None)
        if key is None:
            return
        slots = self._key_slots.get(key)
        if slots is not None:
            slots.discard(slot)
            if not slots:
                del self._key_slots[key]
                hit = self._data.pop(key, None)
                if hit is not None:
                    self.bytes -= hit[1]

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0
        self._slot_key.clear()
        self._key_slots.clear()
