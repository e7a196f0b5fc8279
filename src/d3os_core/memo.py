"""Bounded memo tables for pure, deterministic functions of the core.

Caching a pure function is not a side effect anyone can observe: the same inputs give the same result
with or without the table. It keeps a resync of a Ready DataService cheap (no re-render, no re-walk of
unchanged live objects). Results handed out are shared, so callers must treat them as read-only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    """A least-recently-used table of at most ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: V) -> V:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        self._data.clear()
