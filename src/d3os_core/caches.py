"""The planner's memo tables as one explicit object: what it remembers, and how much it may.

:func:`d3os_core.plan` takes a :class:`Caches` (``caches=``); without one it uses :data:`DEFAULT`, the
process's own. Every table is a :class:`~d3os_core.memo.Memo`: keyed by digests of the inputs (never by
``id()`` nor by the inputs themselves) and bounded in entries and bytes, so memory does not follow what
users write. Caching changes no result: a plan with an empty ``Caches`` equals one with a warm one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .memo import Memo

MiB = 1024 * 1024
IN_MEMORY = 3
"""Bytes a parsed spec takes in memory per byte of its JSON text (measured for rendered objects: ~2.6)."""


@dataclass(frozen=True, slots=True)
class Caches:
    """The planner's three tables: parsed specs, rendered objects, and "does this live object cover that"."""

    parsed: Memo[Any]
    """Spec text digest -> the parsed spec, or the SpecError it raised."""
    rendered: Memo[tuple[str, bytes]]
    """One entry per DataService (digest of its namespace, name, uid) -> (digest of everything its latest
    rendering read, each component's desired objects :func:`~d3os_core.memo.pack`-ed)."""
    covered: Memo[tuple[str, bool]]
    """One entry per live object (digest of its uid) -> (its resourceVersion and the desired hash last
    checked, whether it held every desired value)."""

    @classmethod
    def bounded(cls, parsed_bytes: int = 16 * MiB, rendered_bytes: int = 32 * MiB,
                covered_bytes: int = 8 * MiB) -> Caches:
        return cls(Memo(1024, parsed_bytes), Memo(4096, rendered_bytes), Memo(32768, covered_bytes))

    def tables(self) -> dict[str, Memo[Any]]:
        return {"parsed": self.parsed, "rendered": self.rendered, "covered": self.covered}

    def clear(self) -> None:
        for memo in self.tables().values():
            memo.clear()


DEFAULT = Caches.bounded()
"""The process's tables, used when a caller passes none (the operator: one per process, shared by workers)."""
