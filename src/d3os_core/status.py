"""Status of a DataService: the seed's phase/message plus standard conditions and per-component entries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .types import JSON

State = Literal["Pending", "Waiting", "Progressing", "Ready", "Failed", "Conflict"]
DEPLOYED = "已部署"
"""The seed's phase suffix: ``mysql已部署`` = "mysql deployed"."""


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    key: str
    kind: str
    object: str
    state: State
    message: str
    hash: str
    since: str = ""
    """When the current step began (first apply of ``target``, or a third party's first failed check)."""
    target: str = ""
    """Desired-state hash the current step works towards."""
    reason: str = ""
    """Why it failed, when it did (``ProgressDeadlineExceeded``)."""

    @property
    def ready(self) -> bool:
        return self.state == "Ready"

    def to_json(self) -> JSON:
        return {
            "name": self.key,
            "kind": self.kind,
            "object": self.object,
            "state": self.state,
            "ready": self.ready,
            "message": self.message,
            "hash": self.hash,
            **{k: v for k, v in (("since", self.since), ("target", self.target), ("reason", self.reason)) if v},
        }


def chain_message(order: Sequence[str], current: set[str]) -> str:
    """``mysql->[uuc]->eureka->…``: the order with the current step(s) in brackets."""
    return "->".join(f"[{k}]" if k in current else k for k in order)


def phase_and_message(order: Sequence[str], comps: Mapping[str, ComponentStatus]) -> tuple[str, str]:
    """The seed's columns: the last component started, and the chain with the current step marked.

    Started = anything but Waiting/Pending. Current = components being rolled out or stuck; when all
    are ready, the last one (as in the seed's final line ``…->proxy->[web]``).
    """
    started = [k for k in order if comps[k].state not in ("Waiting", "Pending")]
    if not started:
        return "", ""
    current = {k for k in order if comps[k].state in ("Progressing", "Failed", "Conflict")}
    if not current:
        current = {started[-1]}
    return f"{started[-1]}{DEPLOYED}", chain_message(order, current)


def condition(
    type_: str, status: bool, reason: str, message: str, generation: int, now: str,
    previous: Sequence[Mapping[str, Any]],
) -> JSON:
    """A metav1.Condition; ``lastTransitionTime`` moves only when ``status`` changes."""
    value = "True" if status else "False"
    since = now
    for old in previous:
        if old.get("type") == type_ and old.get("status") == value and old.get("lastTransitionTime"):
            since = str(old["lastTransitionTime"])
    return {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:32768],
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }
