"""How many distinct third-party checks one namespace may have probed: a pure rule the shell applies.

Each distinct check costs the operator a task, connections and CPU every period, on the event loop every
tenant shares; so one namespace's checks are capped (``--probe-max-targets-per-namespace``). The checks a
namespace asked for first keep their place -- a new DataService never takes a running check away from an
older one -- and the rest get a failed result that says why and how to change it, never silence.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from .types import ProbeResult

T = TypeVar("T", bound=Hashable)

FLAG = "--probe-max-targets-per-namespace"


def admit(in_order: Sequence[T], cap: int | None) -> tuple[list[T], list[T]]:
    """``in_order``: the namespace's distinct checks, the longest-held first -> (probed, not probed)."""
    if cap is None:
        return list(in_order), []
    return list(in_order[:cap]), list(in_order[cap:])


def over_budget(namespace: str, cap: int) -> ProbeResult:
    """The result a check beyond its namespace's cap shows (its component stays not ready)."""
    return ProbeResult(False, (
        f"not probed: namespace {namespace!r} already has {cap} distinct third-party checks, the most the operator "
        f"probes for one namespace ({FLAG}); use fewer distinct checks (DataServices sharing a check share its probe)"))
