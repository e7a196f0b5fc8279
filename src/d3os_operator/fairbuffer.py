"""A bounded buffer served round-robin by namespace: one tenant's flood cannot push out another's items.

The Event sender and the work queue both hold items of every namespace; first come, first served lets a
namespace that adds a thousand items put everyone else behind them (or, in a bounded buffer, drop them).
Here each namespace has its own FIFO, namespaces take turns, and when the buffer is full the item dropped
is the oldest of the namespace holding the most -- so a namespace with few items always gets its item in,
and what is dropped is counted by the namespace that flooded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
NS = TypeVar("NS", bound=Hashable)


class FairBuffer(Generic[NS, T]):
    """Per-namespace FIFOs, served in turn; at most ``total`` items, at most ``per_namespace`` of one."""

    def __init__(self, total: int, per_namespace: int | None = None) -> None:
        if total < 1:
            raise ValueError("total must be at least 1")
        self.total = total
        self.per_namespace = min(total, per_namespace or total)
        self._fifos: dict[NS, deque[T]] = {}
        self._turns: deque[NS] = deque()
        self._size = 0
        self.dropped: dict[NS, int] = {}
        """Items dropped, by the namespace they belonged to."""

    def __len__(self) -> int:
        return self._size

    def put(self, namespace: NS, item: T) -> bool:
        """Add ``item``; False when it was itself dropped (its namespace holds the most, or its own share)."""
        fifo = self._fifos.get(namespace)
        mine = len(fifo) if fifo is not None else 0
        if mine >= self.per_namespace:
            self._count_drop(namespace)
            return False
        if self._size >= self.total:
            biggest = max(self._fifos, key=lambda n: len(self._fifos[n]))
            if len(self._fifos[biggest]) <= mine:  # the newcomer's namespace holds the most: it pays
                self._count_drop(namespace)
                return False
            self._pop_from(biggest)
            self._count_drop(biggest)
        if fifo is None:
            fifo = self._fifos[namespace] = deque()
            self._turns.append(namespace)
        fifo.append(item)
        self._size += 1
        return True

    def clear(self) -> None:
        self._fifos.clear()
        self._turns.clear()
        self._size = 0

    def get(self) -> T | None:
        """The next item, taking namespaces in turn; None when empty."""
        if not self._turns:
            return None
        namespace = self._turns[0]
        item = self._pop_from(namespace)
        if namespace in self._fifos:
            self._turns.rotate(-1)
        return item

    def _pop_from(self, namespace: NS) -> T:
        fifo = self._fifos[namespace]
        item = fifo.popleft()
        self._size -= 1
        if not fifo:
            del self._fifos[namespace]
            self._turns.remove(namespace)
        return item

    def _count_drop(self, namespace: NS) -> None:
        self.dropped[namespace] = self.dropped.get(namespace, 0) + 1
