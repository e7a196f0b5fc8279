"""Status of a DataService: the seed's phase/message, standard conditions, per-component entries, Events.

The status policy lives here, in one place: what phase/message, which condition says what (rolling out,
invalid spec, planning failed), and which transitions are worth an Event. Status is computed from what
was observed (component states), never from what is hoped.

Besides ``Ready``, ``Progressing`` and ``Degraded``, every status carries the kstatus pair
(:func:`with_kstatus`): ``Reconciling`` and ``Stalled``, which Flux, kpt, Helm 4's ``--wait`` and
cli-utils read instead of ours, so that they conclude what ``kubectl`` shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import credentials
from .types import JSON, Event

State = Literal["Pending", "Waiting", "Progressing", "Ready", "Failed", "Conflict"]
REFUSED = "the API server refused "
"""Prefix of a component message about an apply the API server refused (reason ``ApplyRefused``)."""
ERROR_REASON = "ReconcileError"
"""Reason of a DataService whose reconcile failed for a reason other than its spec."""
CHECK_FAILED = "CheckFailed"
"""Reason of a third party whose check fails while it is in a step (Progressing), like kubelet's ``Unhealthy``:
news a Warning tells, though the rollout only waits (until the progress deadline)."""
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
    """Why it failed (``ProgressDeadlineExceeded``), waits (``Suspended``) or its check fails (``CheckFailed``)."""

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
    current = current_steps(order, {k: c.state for k, c in comps.items()}) or {started[-1]}
    return f"{started[-1]}{DEPLOYED}", chain_message(order, current)


CURRENT_STATES = ("Progressing", "Failed", "Conflict")
"""States of a component the rollout is at: being rolled out or stuck (the MESSAGE column's brackets)."""


def current_steps(order: Sequence[str], states: Mapping[str, str]) -> set[str]:
    """The components the rollout is at now (rolled out or stuck): what MESSAGE brackets and ``d3os ui`` marks
    as the step everything after it waits on; empty when none is (all ready, or all waiting)."""
    return {k for k in order if states.get(k) in CURRENT_STATES}


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


STALLED_REASONS = frozenset({
    "ProgressDeadlineExceeded", "InvalidSpec", "Conflict", credentials.LOST_REASON, "ApplyRefused", "RolledBack",
})
"""Reasons of ``Degraded`` that no retry of the operator's can clear: someone must change something."""


def with_kstatus(
    conditions: Sequence[JSON], generation: int, now: str, previous: Sequence[Mapping[str, Any]]
) -> list[JSON]:
    """``conditions`` (Ready, Progressing, Degraded) in that order, then kstatus' ``Reconciling`` and ``Stalled``.

    kstatus reads only these two (then ``Ready``): ``Reconciling=True`` is InProgress, ``Stalled=True`` is
    Failed. ``Reconciling`` says what ``Progressing`` says (rolling out, waiting, pruning, rolling back,
    deleting). ``Stalled`` is True when ``Degraded`` is, for a reason in :data:`STALLED_REASONS`, and nothing
    progresses any more: a branch still rolling out beside a failed one keeps ``Reconciling``, so the two are
    never True together (kstatus would read the first). Both carry the reason and message they mirror.
    """
    by_type = {str(c["type"]): c for c in conditions}
    ready, progressing, degraded = (by_type.get(t) for t in ("Ready", "Progressing", "Degraded"))
    moving = progressing is not None and progressing["status"] == "True"
    source = progressing or ready or {}
    reconciling = condition("Reconciling", moving, str(source.get("reason") or "Unknown"),
                            str(source.get("message") or ""), generation, now, previous)
    failed = degraded is not None and degraded["status"] == "True"
    stuck = failed and not moving and str((degraded or {}).get("reason")) in STALLED_REASONS
    why = (progressing if failed and moving else degraded or ready) or {}  # still moving: not stalled (yet)
    stalled = condition("Stalled", stuck, str(why.get("reason") or "Unknown"), str(why.get("message") or ""),
                        generation, now, previous)
    return [*(by_type[t] for t in ("Ready", "Progressing", "Degraded") if t in by_type), reconciling, stalled]


Summary = Literal["Ready", "Progressing", "Degraded", "Stalled", "Suspended", "Deleting"]
SUMMARIES: tuple[Summary, ...] = ("Ready", "Progressing", "Degraded", "Stalled", "Suspended", "Deleting")
"""The words of ``status.summary`` (``kubectl get``'s STATUS column)."""


def summary(conditions: Any) -> Summary:
    """One word for ``kubectl get``'s STATUS column, from the conditions alone, the first that holds of:
    Deleting (Ready's reason ``Deleting``/``Deleted``), Suspended (Progressing's reason), Stalled (kstatus'
    ``Stalled=True``: someone must change something), Degraded (``Degraded=True``, while something still
    moves), Ready (``Ready=True``), else Progressing -- so that PHASE ``web已部署`` with READY ``11/12`` no
    longer hides a failure."""
    ready = find_condition(conditions, "Ready")
    if ready.get("reason") in ("Deleting", "Deleted"):
        return "Deleting"
    if find_condition(conditions, "Progressing").get("reason") == "Suspended":
        return "Suspended"
    if find_condition(conditions, "Stalled").get("status") == "True":
        return "Stalled"
    if find_condition(conditions, "Degraded").get("status") == "True":
        return "Degraded"
    if ready.get("status") == "True":
        return "Ready"
    return "Progressing"


def with_summary(status: Mapping[str, Any]) -> JSON:
    """``status`` with its ``summary`` (:func:`summary`) when it has conditions (an unobserved one has none)."""
    if not isinstance(status.get("conditions"), list):
        return dict(status)
    return {**status, "summary": summary(status["conditions"])}


def find_condition(conditions: Any, type_: str) -> dict[str, Any]:
    """The condition of type ``type_`` in a list of conditions (of a status, a pod), or ``{}``."""
    for c in conditions if isinstance(conditions, list) else []:
        if isinstance(c, Mapping) and c.get("type") == type_:
            return dict(c)
    return {}


def rollup(
    order: Sequence[str],
    comps: Mapping[str, ComponentStatus],
    generation: int,
    now: str,
    prev: Mapping[str, Any],
    pruning: int,
) -> JSON:
    """The whole status of a DataService whose spec is valid, from its components' states."""
    phase, message = phase_and_message(order, comps)
    old = prev.get("conditions") or []
    ready_n = sum(1 for c in comps.values() if c.ready)
    total = len(comps)
    failed = [k for k in order if comps[k].state == "Failed"]
    conflicts = [k for k in order if comps[k].state == "Conflict"]
    active = [k for k in order if comps[k].state == "Progressing"]
    waiting = [k for k in order if comps[k].state == "Waiting"]

    def describe(keys: Sequence[str]) -> str:
        return "; ".join(f"{k}: {comps[k].message}" for k in keys)

    if ready_n == total:
        ready = condition("Ready", True, "AllComponentsReady", f"all {total} components are ready",
                          generation, now, old)
        progressing = condition("Progressing", bool(pruning), "Pruning" if pruning else "Complete",
                                f"removing {pruning} objects no longer desired" if pruning
                                else "rollout complete", generation, now, old)
    else:
        reason = "Conflict" if conflicts else "ComponentFailed" if failed else "RollingOut"
        stuck = conflicts or failed
        ready = condition("Ready", False, reason, f"{ready_n}/{total} components ready; "
                          + describe(stuck or active or waiting), generation, now, old)
        if active:
            progressing = condition("Progressing", True, "RollingOut", describe(active), generation, now, old)
        elif stuck:
            progressing = condition("Progressing", False, "Stalled", describe(stuck), generation, now, old)
        else:
            progressing = condition("Progressing", True, "Waiting", describe(waiting), generation, now, old)
    if conflicts:
        degraded = condition("Degraded", True, "Conflict", describe(conflicts), generation, now, old)
    elif failed:
        refused = any(comps[k].message.startswith(REFUSED) for k in failed)
        lost = any(comps[k].message.startswith(credentials.LOST) for k in failed)
        reason = "ApplyRefused" if refused else credentials.LOST_REASON if lost else "ProgressDeadlineExceeded"
        degraded = condition("Degraded", True, reason, describe(failed), generation, now, old)
    else:
        degraded = condition("Degraded", False, "AsExpected", "no component has failed", generation, now, old)
    return {
        "phase": phase,
        "message": message,
        "ready": f"{ready_n}/{total}",
        "observedGeneration": generation,
        "conditions": with_kstatus([ready, progressing, degraded], generation, now, old),
        "components": [comps[k].to_json() for k in order],
    }


def stopped(
    prev: Mapping[str, Any], generation: int, now: str, reason: str, message: str, progressing: str
) -> tuple[JSON, bool]:
    """Status of a DataService that nothing changes for (an invalid spec, a failed plan): Ready False,
    Progressing False, Degraded True with ``reason``; and whether Degraded already said ``message``
    with that reason (then no new Event)."""
    old = prev.get("conditions") or []
    status = {k: v for k, v in prev.items() if k not in ("conditions", "observedGeneration")}
    status["observedGeneration"] = generation
    status["conditions"] = with_kstatus([
        condition("Ready", False, reason, message, generation, now, old),
        condition("Progressing", False, reason, progressing, generation, now, old),
        condition("Degraded", True, reason, message, generation, now, old),
    ], generation, now, old)
    was = find_condition(old, "Degraded")
    same = was.get("reason") == reason and was.get("message") == message
    return status, same


def transition_events(
    order: Sequence[str],
    comps: Mapping[str, ComponentStatus],
    prev_comps: Mapping[str, Mapping[str, Any]],
    prev_status: Mapping[str, Any],
    status: Mapping[str, Any],
) -> list[Event]:
    """The rollout's story as Events: a step started (``Deploying``), each problem (Warnings: a failure, a
    conflict, a third party's failing check), a recovery (``ComponentReady``) and ``Ready``.

    What status already shows is not told again: a component waiting for its predecessor is the ordinary
    case (no Event), and a component that became ready in the ordinary way is told by the Event that follows
    it in the same pass -- the next component's ``Deploying`` or the DataService's ``Ready`` -- not by one
    of its own. ``ComponentReady`` stays for news: a component recovering from a failure, a conflict or a
    failing check, or a ready component no other Event of the pass tells.
    """
    events: list[Event] = []
    told_later: list[str] = []
    """Components that became ready in the ordinary way, waiting for the next Event of the pass to tell them."""
    for key in order:
        c = comps[key]
        old = prev_comps.get(key) or {}
        if old.get("state") == c.state and (not _problem(c.state, c.reason) or old.get("message") == c.message):
            continue
        if c.state == "Progressing":
            if old.get("state") != "Progressing":
                events.append(Event("Normal", "Deploying", f"{key}{DEPLOYED}: {c.message}"
                                    + _ready_note(told_later, comps)))
                told_later = []
            if c.reason == CHECK_FAILED:
                events.append(Event("Warning", CHECK_FAILED, f"{key}: {c.message}"))
        elif c.state == "Ready" and _problem(str(old.get("state") or ""), str(old.get("reason") or "")):
            events.append(Event("Normal", "ComponentReady", f"{key} is ready: {c.message}"))
        elif c.state == "Ready":
            told_later.append(key)
        elif c.state == "Failed":
            events.append(Event("Warning", c.reason or "ComponentFailed", f"{key} failed: {c.message}"))
        elif c.state == "Conflict":
            events.append(Event("Warning", "Conflict", f"{key}: {c.message}"))
    was_ready = find_condition(prev_status.get("conditions"), "Ready").get("status") == "True"
    now_ready = find_condition(status["conditions"], "Ready").get("status") == "True"
    if now_ready and not was_ready:
        events.append(Event("Normal", "Ready", f"all {len(order)} components are ready"
                            + _ready_note(told_later, comps)))
    else:
        events.extend(Event("Normal", "ComponentReady", f"{k} is ready: {comps[k].message}") for k in told_later)
    return events


def _problem(state: str, reason: str) -> bool:
    """A state that was told as a Warning (its message is news whenever it changes)."""
    return state in ("Failed", "Conflict") or (state == "Progressing" and reason == CHECK_FAILED)


def _ready_note(keys: Sequence[str], comps: Mapping[str, ComponentStatus]) -> str:
    """``; mysql is ready: …``: the components another Event of the pass tells as ready."""
    if not keys:
        return ""
    if len(keys) == 1:
        return f"; {keys[0]} is ready: {comps[keys[0]].message}"
    return f"; {', '.join(keys)} are ready"


def previous_components(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The last status's component entries, by key."""
    return {c["name"]: c for c in status.get("components") or [] if isinstance(c, Mapping) and "name" in c}
