"""What happens around a rollout: revisions recorded when Ready, automatic rollback, suspend.

* **Revisions**: when every component is ready at the spec, the spec is recorded
  (:mod:`d3os_core.revisions`); ``status.currentRevision`` names the last Ready one,
  ``status.updateRevision`` the one being rolled out.
* **Rollback on failure** (``spec.rollbackOnFailure``): when a step of an upgrade passes its deadline
  and a last Ready revision exists, the core plans with that revision's spec instead of the user's — in
  order, with the same gating — and never rewrites the user's spec. The decision is kept in
  ``status.rollback`` for this generation of the spec; a new generation tries again.
* **Suspend** (``spec.suspend``): the plan keeps its status and probes but writes nothing to any child.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .deadlines import REASON as DEADLINE
from .revisions import Recording, Revision, find, record, revision_name
from .status import ComponentStatus, condition, with_kstatus
from .types import JSON, Apply, Event, Facts, ObjectRef, Parent

SUSPENDED = "Suspended"
ROLLED_BACK = "RolledBack"
ROLLING_BACK = "RollingBack"
REVISION_RECORDED = "RevisionRecorded"


@dataclass(frozen=True, slots=True)
class Control:
    """The revision state a plan starts from."""

    revisions: tuple[Revision, ...]
    current: Revision | None
    """The last Ready revision."""
    update_name: str
    """The revision the user's spec would be."""
    rollback: Mapping[str, Any] | None
    """The rollback in force for this generation (``status.rollback``), if any."""

    @property
    def rollback_target(self) -> Revision | None:
        if self.rollback is None:
            return None
        return find(self.revisions, str(self.rollback.get("to", "")))


def control(
    parent_name: str, raw: Mapping[str, Any], revisions: Sequence[Revision], prev_status: Mapping[str, Any],
    generation: int,
) -> Control:
    revs = tuple(revisions)
    named = find(revs, str(prev_status.get("currentRevision") or ""))
    current = named or (revs[-1] if revs else None)
    rb = prev_status.get("rollback")
    active = rb if isinstance(rb, Mapping) and rb.get("generation") == generation else None
    ctl = Control(revs, current, revision_name(parent_name, raw), active)
    if active is not None and ctl.rollback_target is None:  # its revision is gone: nothing to roll back to
        ctl = Control(revs, current, ctl.update_name, None)
    return ctl


def should_roll_back(ctl: Control, enabled: bool, suspended: bool, comps: Mapping[str, ComponentStatus]) -> bool:
    """An upgrade (a last Ready revision exists and differs) has a step past its deadline."""
    if not enabled or suspended or ctl.rollback is not None or ctl.current is None:
        return False
    if ctl.current.name == ctl.update_name:
        return False
    return any(c.reason == DEADLINE for c in comps.values())


def start_rollback(
    ctl: Control, order: Sequence[str], comps: Mapping[str, ComponentStatus], generation: int, now: str
) -> tuple[Control, Event]:
    assert ctl.current is not None
    failed = next(k for k in order if comps[k].reason == DEADLINE)
    rb = {
        "generation": generation,
        "from": ctl.update_name,
        "to": ctl.current.name,
        "revision": ctl.current.number,
        "component": failed,
        "message": comps[failed].message[:2048],
        "startedAt": now,
    }
    event = Event("Warning", ROLLING_BACK, (
        f"revision {ctl.update_name} (generation {generation}) failed: {failed}: {comps[failed].message}; "
        f"rolling back to revision {ctl.current.number} ({ctl.current.name})")[:1024])
    return Control(ctl.revisions, ctl.current, ctl.update_name, rb), event


@dataclass
class Outcome:
    """Writes and events the lifecycle adds to a plan."""

    apply: list[Apply]
    delete: list[ObjectRef]
    events: list[Event]


def finish(
    status: JSON,
    ctl: Control,
    *,
    parent: Parent,
    raw: Mapping[str, Any],
    product_version: str = "",
    all_ready: bool,
    suspended: bool,
    pending: Sequence[str],
    history_limit: int,
    prev_status: Mapping[str, Any],
    generation: int,
    facts: Facts,
) -> Outcome:
    """Complete ``status`` (revisions, rollback, suspend conditions) and say what to write for history."""
    out = Outcome([], [], [])
    old = prev_status.get("conditions") or []
    conds = {c["type"]: c for c in status["conditions"]}
    current = ctl.current
    status["currentRevision"] = current.name if current is not None else ""
    status["updateRevision"] = ctl.update_name
    rb = ctl.rollback
    if rb is not None:
        target = ctl.rollback_target
        assert target is not None
        status["updateRevision"] = target.name
        done = all_ready
        record_ = dict(rb)
        head = (f"revision {rb.get('from')} (generation {generation}) failed: {rb.get('component')}: "
                f"{rb.get('message')}")
        if done:
            record_.setdefault("completedAt", facts.now)
            conds["Degraded"] = condition("Degraded", True, ROLLED_BACK,
                                          f"{head}; rolled back to revision {target.number} ({target.name})",
                                          generation, facts.now, old)
            conds["Ready"] = condition(
                "Ready", False, ROLLED_BACK,
                f"running revision {target.number} ({target.name}), the last Ready; generation {generation} "
                "of the spec is not in force: change the spec to try again", generation, facts.now, old)
            conds["Progressing"] = condition("Progressing", False, ROLLED_BACK,
                                             f"rolled back to revision {target.number}", generation, facts.now, old)
            was_done = isinstance(prev_status.get("rollback"), Mapping) and prev_status["rollback"].get("completedAt")
            if not was_done:
                out.events.append(Event("Warning", ROLLED_BACK, (
                    f"rolled back to revision {target.number} ({target.name}) after revision {rb.get('from')} "
                    f"failed at {rb.get('component')}; the spec is unchanged")[:1024]))
        else:
            conds["Degraded"] = condition("Degraded", True, ROLLED_BACK,
                                          f"{head}; rolling back to revision {target.number} ({target.name})",
                                          generation, facts.now, old)
            prog = conds["Progressing"]
            if prog["status"] == "True":
                conds["Progressing"] = condition("Progressing", True, ROLLING_BACK,
                                                 f"rolling back to revision {target.number}: {prog['message']}",
                                                 generation, facts.now, old)
        status["rollback"] = record_
    elif all_ready and not suspended:
        rec: Recording = record(parent, raw, ctl.revisions, facts.now, generation, history_limit, product_version)
        if rec.write is not None:
            out.apply.append(Apply(rec.write, "", create=rec.create))
            out.events.append(Event("Normal", REVISION_RECORDED,
                                    f"revision {rec.number} ({rec.name}) is the current revision"))
        out.delete.extend(
            ObjectRef.of("ControllerRevision", r.name, parent.namespace, r.uid, "") for r in rec.prune
        )
        status["currentRevision"] = rec.name
    if suspended:
        why = "spec.suspend is true: nothing is written to any child"
        if pending:
            why += "; would change " + ", ".join(pending)
        conds["Progressing"] = condition("Progressing", False, SUSPENDED, why, generation, facts.now, old)
        ready = conds["Ready"]
        if ready["status"] == "False" and ready["reason"] == "RollingOut":
            conds["Ready"] = condition("Ready", False, SUSPENDED, ready["message"], generation, facts.now, old)
        was = any(c.get("type") == "Progressing" and c.get("reason") == SUSPENDED for c in old)
        if not was:
            out.events.append(Event("Normal", SUSPENDED, why[:1024]))
    elif any(c.get("type") == "Progressing" and c.get("reason") == SUSPENDED for c in old):
        out.events.append(Event("Normal", "Resumed", "spec.suspend is false: the rollout continues"))
    status["conditions"] = with_kstatus([conds[t] for t in ("Ready", "Progressing", "Degraded") if t in conds],
                                        generation, facts.now, old)
    return out


def suspended_status(cs: ComponentStatus, applies: Sequence[str], deletes: Sequence[str]) -> ComponentStatus:
    """A component that would be written to, while suspended: it waits, and says on what."""
    would = [f"apply {', '.join(applies)}"] if applies else []
    would += [f"delete {', '.join(deletes)}"] if deletes else []
    return replace(cs, state="Waiting", reason=SUSPENDED, since="", target="",
                   message="suspended (spec.suspend): would " + " and ".join(would))


def told_by_ready(events: Sequence[Event]) -> list[Event]:
    """``events`` with a ``RevisionRecorded`` of the pass that made the DataService Ready told by its ``Ready``
    Event (one Event for the end of a rollout, as a step's ``Deploying`` tells that its predecessor is ready)."""
    ready = [e for e in events if e.type == "Normal" and e.reason == "Ready"]
    recorded = [e for e in events if e.type == "Normal" and e.reason == REVISION_RECORDED]
    if len(ready) != 1 or len(recorded) != 1:
        return list(events)
    told = replace(ready[0], message=f"{ready[0].message}; {recorded[0].message}"[:1024])
    return [told if e is ready[0] else e for e in events if e is not recorded[0]]
