"""Deleting a DataService: children go in the reverse of the dependency graph in force.

A component's objects are removed once nothing that depends on it (directly or through others, by the
product's chain or ``dependsOn``) has objects left; independent branches go together. Objects of
components the graph does not know (a renamed key) go first, the DataService's ControllerRevisions
last; PersistentVolumeClaims (and the credentials Secrets that belong to them) are never deleted.
Objects already being deleted are waited for, not deleted again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import api
from .graph import dependents_closure, topo_order
from .revisions import KIND as REVISION_KIND
from .status import condition, with_kstatus
from .types import Event, Facts, ObjectRef, Observed, Plan

Owned = Callable[[Mapping[str, Any], str], bool]
RefOf = Callable[[str, str, Mapping[str, Any], str], ObjectRef]
REQUEUE = 5.0


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def next_wave(present: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Components whose objects may go now: unknown ones first, else those no present component needs."""
    unknown = [k for k in present if k not in deps]
    if unknown:
        return unknown
    here = set(present)
    return [k for k in present if not (dependents_closure(deps, k) & here)]


def plan_deletion(
    observed: Observed,
    facts: Facts,
    deps: Mapping[str, Sequence[str]],
    keys: Sequence[str],
    prev_status: Mapping[str, Any],
    generation: int,
    owned: Owned,
    ref_of: RefOf,
) -> Plan:
    """The next wave of deletes for a DataService being deleted (see the module docstring)."""
    groups: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    revisions: list[tuple[str, str, Mapping[str, Any]]] = []
    for (kind, name), obj in sorted(observed.objects.items()):
        if kind not in api.OWNED_PLURALS or not api.kind_def(kind).deletable or not owned(obj, kind):
            continue
        if kind == REVISION_KIND:
            revisions.append((kind, name, obj))
            continue
        comp = str((_meta(obj).get("labels") or {}).get(api.LABEL_COMPONENT, ""))
        groups.setdefault(comp, []).append((kind, name, obj))
    old = prev_status.get("conditions") or []
    status = {k: v for k, v in prev_status.items() if k != "conditions"}
    status["observedGeneration"] = generation
    order = topo_order(list(keys), deps)
    if not groups and not revisions:
        status["conditions"] = with_kstatus([
            condition("Ready", False, "Deleted", "all children removed; claims and their credentials kept", generation,
                      facts.now, old),
        ], generation, facts.now, old)
        kept = "all children removed; persistent volume claims and their credentials Secrets kept"
        return Plan(status=status, finalizer="remove", events=(Event("Normal", "Deleted", kept),))
    if groups:
        rank = {k: i for i, k in enumerate(order)}
        present = sorted(groups, key=lambda c: (c in rank, -rank.get(c, 0), c))
        wave = next_wave(present, deps)
        doomed = [(c, kind, name, obj) for c in wave for kind, name, obj in groups[c]]
        later = [c for c in present if c not in wave]
        what = ", ".join(c or "(unlabelled)" for c in wave)
    else:
        doomed = [("", kind, name, obj) for kind, name, obj in revisions]
        later = []
        what = "revision history"
    deletes = tuple(
        ref_of(kind, name, obj, comp) for comp, kind, name, obj in doomed if not _meta(obj).get("deletionTimestamp")
    )
    message = f"deleting {what}" + (f"; then {', '.join(later)}" if later else "")
    status["conditions"] = with_kstatus([
        condition("Ready", False, "Deleting", message, generation, facts.now, old),
        condition("Progressing", True, "Deleting", message, generation, facts.now, old),
    ], generation, facts.now, old)
    events = (Event("Normal", "Deleting", f"deleting {what}: " + ", ".join(
        f"{kind}/{name}" for _, kind, name, _ in doomed)),) if deletes else ()
    return Plan(delete=deletes, status=status, events=events, requeue_after=REQUEUE)
