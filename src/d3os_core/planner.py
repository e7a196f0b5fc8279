"""``plan``: given a DataService and what is observed, what should happen next. Pure and level-based.

This module is the entry point and the spec's way in (parse, invalid spec, failed plan, rollback,
deletion); the rules live in three modules: :mod:`d3os_core.ordering` (which step next),
:mod:`d3os_core.children` (ownership, up to date, pruning, references) and :mod:`d3os_core.status`
(conditions, Events). The desired objects come from :mod:`d3os_core.desired`.

Rules (DESIGN.md §3): a component's new desired state is applied only when every component it depends
on is ready at its own current desired state; status reports what was observed; stale objects go only
once everything is ready (a component with data stops its old workload before the new one starts on
the same claim); claims are never deleted; objects held by another owner are never taken over; an object
being deleted (``deletionTimestamp``) is neither deleted again nor up to date: its component waits for it
to go, then creates it anew.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from . import api, children, credentials, lifecycle, revisions, teardown
from .caches import DEFAULT as DEFAULT_CACHES
from .caches import IN_MEMORY, Caches
from .checks import CheckError
from .memo import text_digest
from .ordering import PROBE_PERIOD, WORKLOAD_KINDS, dependencies, plan_components, probe_key
from .product import ProductDef, WorkloadKind
from .redact import redact_text
from .render import Parent, parent_of, secret_name
from .spec import SpecBase
from .status import ERROR_REASON, REFUSED, previous_components, rollup, stopped, transition_events, with_summary
from .types import Event, Facts, Observed, Plan
from .validation import FieldError, SpecError, metadata_name_errors, parse_spec

RESYNC_WHILE_BUSY = 30.0
"""Seconds: a safety net while not Ready; progress itself is driven by watch events and probe results."""
FAILED_RETRY = 60.0
"""Seconds: a plan that failed is tried again this late (the same inputs fail the same way; events wake it)."""


def _parsed(raw: Any, product: ProductDef, cache: Caches, slot: str | None = None) -> tuple[SpecBase | SpecError, str]:
    """``raw`` parsed (memoised by the digest of its text), with that digest; never raises. ``slot`` names what
    it is (an instance's spec, its current revision): the table keeps one entry per slot, not one per
    generation (:class:`d3os_core.memo.Memo`)."""
    spec_text = json.dumps(raw, sort_keys=True, default=str)
    key = text_digest(product.fingerprint, spec_text)
    parsed: SpecBase | SpecError | None = cache.parsed.get(key, slot)
    if parsed is None:
        weight = len(spec_text) * IN_MEMORY
        try:
            parsed = cache.parsed.put(key, parse_spec(raw, product), weight, slot)
        except SpecError as exc:
            parsed = cache.parsed.put(key, exc, weight, slot)
        except Exception as exc:
            parsed = cache.parsed.put(key, SpecError([FieldError("spec", f"cannot be parsed: {exc}")]), weight, slot)
    return parsed, key


def plan(
    parent: Mapping[str, Any], observed: Observed, facts: Facts, product: ProductDef,
    caches: Caches | None = None,
) -> Plan:
    """The next step for ``parent`` (an instance of ``product`` as the API returns it).

    Never raises: a spec at fault ends in an InvalidSpec plan naming the field; anything else that goes
    wrong while planning (a bug, an input nobody foresaw) ends in a Degraded plan that changes nothing,
    so one DataService can never take the operator down for the others. ``caches``: the memo tables
    to use (default: the process's, :data:`d3os_core.caches.DEFAULT`).
    """
    try:
        result = _plan(parent, observed, facts, product, caches or DEFAULT_CACHES)
    except Exception as exc:
        return plan_failed(parent, exc, facts)
    return replace(result, status=with_summary(result.status))


def plan_failed(parent: Mapping[str, Any], exc: BaseException, facts: Facts, what: str = "planning") -> Plan:
    """A plan that changes nothing and reports ``exc`` in status (Degraded, reason ReconcileError) and as
    a Warning Event (once per distinct message): for errors that are not the spec's fault."""
    try:
        prev: Mapping[str, Any] = parent.get("status") or {}
        if not isinstance(prev, Mapping):
            prev = {}
        generation = children.meta(parent).get("generation")
        generation = generation if isinstance(generation, int) and not isinstance(generation, bool) else 0
    except Exception:
        prev, generation = {}, 0
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    message = (f"{what} failed: {text[:900]}; nothing was changed, retrying with backoff "
               "(not caused by the spec: please report it)")
    old = prev.get("conditions") or []
    old = [c for c in old if isinstance(c, Mapping)] if isinstance(old, list) else []
    status, same = stopped({**prev, "conditions": old}, generation, facts.now, ERROR_REASON, message,
                           "stopped until the error is resolved")
    events = () if same else (Event("Warning", ERROR_REASON, message[:1024]),)
    return Plan(status=with_summary(status), events=events, requeue_after=FAILED_RETRY)


def _plan(parent: Mapping[str, Any], observed: Observed, facts: Facts, product: ProductDef, cache: Caches) -> Plan:
    meta = children.meta(parent)
    who = parent_of(meta, product)
    generation = int(meta.get("generation") or 0)
    prev_status: Mapping[str, Any] = parent.get("status") or {}
    finalizers = list(meta.get("finalizers") or [])
    if meta.get("deletionTimestamp"):
        if api.FINALIZER not in finalizers:
            return Plan(status=dict(prev_status))
        return _plan_deletion(who, observed, facts, product, prev_status, generation, parent.get("spec"))
    finalizer = "add" if api.FINALIZER not in finalizers else None
    raw = parent.get("spec")
    parsed, spec_key = _parsed(raw, product, cache, _slot(who, "spec"))
    name_errors = metadata_name_errors(meta.get("name"))
    if name_errors:
        parsed = SpecError(name_errors + (parsed.errors if isinstance(parsed, SpecError) else []))
    if isinstance(parsed, SpecError):
        return _plan_invalid(parsed, facts, prev_status, generation, finalizer)
    try:
        return _plan_rollout(who, parsed, spec_key, observed, facts, product, prev_status, generation, finalizer,
                             raw if isinstance(raw, Mapping) else {}, cache)
    except CheckError as exc:  # a third-party address validation let through: still the spec's fault
        return _plan_invalid(SpecError([FieldError("spec", str(exc))]), facts, prev_status, generation, finalizer)


def _plan_invalid(
    exc: SpecError, facts: Facts, prev: Mapping[str, Any], generation: int, finalizer: Any
) -> Plan:
    message = redact_text("; ".join(str(e) for e in exc.errors))  # an invalid URL may carry a password
    status, same = stopped(prev, generation, facts.now, "InvalidSpec", message,
                           "the spec must be fixed before anything changes")
    events = () if same else (Event("Warning", "InvalidSpec", message[:1024]),)
    return Plan(status=status, events=events, finalizer=finalizer)


def _plan_rollout(
    who: Parent,
    spec: SpecBase,
    spec_key: str,
    observed: Observed,
    facts: Facts,
    product: ProductDef,
    prev_status: Mapping[str, Any],
    generation: int,
    finalizer: Any,
    raw: Mapping[str, Any],
    cache: Caches,
) -> Plan:
    ctl = lifecycle.control(who.name, raw, revisions.observed_revisions(observed.objects, who.uid), prev_status,
                            generation)
    suspended = spec.suspend
    target = ctl.rollback_target
    spec_in_force, key_in_force = spec, spec_key
    if target is not None:  # a rollback of this generation is under way: plan the last Ready spec
        spec_in_force, key_in_force = _parse_revision(target, product, cache, _slot(who, "rollback")) or (
            spec, spec_key)
    rollback_event: Event | None = None
    work, comps, order = plan_components(who, spec_in_force, key_in_force, observed, facts, product, prev_status,
                                         spec.progress_deadline_seconds, suspended, cache)
    back = ctl.current and _parse_revision(ctl.current, product, cache, _slot(who, "current"))
    if back and lifecycle.should_roll_back(ctl, spec.rollback_on_failure, suspended, comps):
        ctl, rollback_event = lifecycle.start_rollback(ctl, order, comps, generation, facts.now)
        spec_in_force, key_in_force = back
        failed_pods = work.inspect  # read them still: the rollback's record names what the step waited for
        work, comps, order = plan_components(who, spec_in_force, key_in_force, observed, facts, product,
                                             prev_status, spec.progress_deadline_seconds, suspended, cache)
        work.inspect[:0] = [q for q in failed_pods if q not in work.inspect]

    all_ready = all(c.ready for c in comps.values())
    prev_comps = previous_components(prev_status)
    status = rollup(order, comps, generation, facts.now, prev_status, len(work.delete) + work.going)
    pending = [k for k in order if comps[k].reason == lifecycle.SUSPENDED]
    extra = lifecycle.finish(
        status, ctl, parent=who, raw=raw, product_version=product.version,
        all_ready=all_ready, suspended=suspended, pending=pending, history_limit=spec.revision_history_limit,
        prev_status=prev_status, generation=generation, facts=facts,
    )
    if product.version and all_ready and not suspended:
        status["productVersion"] = product.version
    elif prev_status.get("productVersion"):
        status["productVersion"] = prev_status["productVersion"]
    work.apply.extend(extra.apply)
    work.delete.extend(extra.delete)
    if rollback_event is not None:
        work.events.append(rollback_event)
    work.events.extend(lifecycle.told_by_ready([*transition_events(order, comps, prev_comps, prev_status, status),
                                                *extra.events]))
    pruned = [d for d in work.delete if d.kind != revisions.KIND]
    if all_ready and pruned:
        work.events.append(Event("Normal", "Pruned", "removed objects no longer desired: " + ", ".join(
            f"{d.kind}/{d.name}" for d in pruned)))
    busy = not all_ready or bool(work.apply) or bool(work.delete) or bool(work.going)
    requeue = RESYNC_WHILE_BUSY if busy else None
    if work.wake:  # wake up when the nearest deadline passes
        requeue = min(requeue or RESYNC_WHILE_BUSY, min(work.wake) + 1.0)
    return Plan(
        apply=tuple(work.apply),
        delete=tuple(work.delete),
        status=status,
        events=tuple(work.events),
        probes=tuple(work.probes),
        requeue_after=requeue,
        finalizer=finalizer,
        inspect=tuple(work.inspect),
    )


def _slot(who: Parent, what: str) -> str:
    """The parsed-spec table's slot for ``who``'s ``what`` (spec, current revision, rollback target)."""
    return f"{who.kind}/{who.namespace}/{who.name}/{who.uid}:{what}"


def _parse_revision(
    rev: revisions.Revision, product: ProductDef, cache: Caches, slot: str | None = None
) -> tuple[SpecBase, str] | None:
    """The spec a revision recorded, parsed (memoised like the parent's); None if it no longer parses."""
    parsed, key = _parsed(dict(rev.spec), product, cache, slot)
    if isinstance(parsed, SpecError):
        return None
    return parsed, key


def _plan_deletion(
    who: Parent,
    observed: Observed,
    facts: Facts,
    product: ProductDef,
    prev_status: Mapping[str, Any],
    generation: int,
    raw: Any = None,
) -> Plan:
    """Remove children in the reverse of the dependency graph in force (:mod:`d3os_core.teardown`)."""
    deps: Mapping[str, Sequence[str]] = product.default_dependencies()
    with contextlib.suppress(Exception):  # an invalid spec has no graph of its own: the product's
        deps = dependencies(parse_spec(raw, product), product)
    return teardown.plan_deletion(
        observed, facts, deps, product.keys, prev_status, generation,
        lambda obj, kind: children.owned(obj, kind, who) and not credentials.retained(obj, kind, who.uid),
        lambda kind, name, obj, comp: children.ref(kind, name, obj, who, comp),
    )


__all__ = [
    "ERROR_REASON", "FAILED_RETRY", "PROBE_PERIOD", "REFUSED", "RESYNC_WHILE_BUSY", "WORKLOAD_KINDS", "WorkloadKind",
    "plan", "plan_failed", "probe_key", "secret_name",
]
