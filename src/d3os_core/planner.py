"""``plan``: given a DataService and what is observed, what should happen next. Pure and level-based.

Rules (DESIGN.md §3): a component's new desired state is applied only when every component it depends
on is ready at its own current desired state; status reports what was observed; stale objects go only
once everything is ready (a component with data stops its old workload before the new one starts on
the same claim); claims are never deleted; objects held by another owner are never taken over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import api
from .dataservice import DATASERVICE
from .drift import covers
from .graph import ancestors, topo_order
from .hashing import content_hash
from .memo import Memo
from .product import ProductDef, WorkloadKind
from .readiness import rollout
from .redact import redact_text
from .render import ComponentState, Parent, Rendered, render_component, resolve, secret_name
from .spec import SpecBase
from .status import DEPLOYED, ComponentStatus, State, condition, phase_and_message
from .types import JSON, Apply, Event, Facts, ObjectRef, Observed, Plan, ProbeRequest
from .validation import SpecError, parse_spec

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
RESYNC_WHILE_BUSY = 30.0
"""Seconds: a safety net while not Ready; progress itself is driven by watch events and probe results."""
PROBE_PERIOD = 5.0
REFUSED = "the API server refused "


@dataclass(slots=True)
class _Work:
    """Mutable accumulator for one planning pass."""

    apply: list[Apply] = field(default_factory=list)
    delete: list[ObjectRef] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    probes: list[ProbeRequest] = field(default_factory=list)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _owned(obj: Mapping[str, Any], kind: str, parent: Parent) -> bool:
    """Ours: owned by this DataService's uid; a claim (which has no owner) by its labels."""
    meta = _meta(obj)
    if kind == "PersistentVolumeClaim":
        labels = meta.get("labels") or {}
        return bool(
            labels.get(api.LABEL_MANAGED_BY) == api.MANAGED_BY and labels.get(api.LABEL_INSTANCE) == parent.name
        )
    return any(ref.get("uid") == parent.uid for ref in meta.get("ownerReferences") or [])


def _holder(obj: Mapping[str, Any]) -> str:
    meta = _meta(obj)
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    refs = meta.get("ownerReferences") or []
    if refs:
        return f"{refs[0].get('kind')}/{refs[0].get('name')}"
    labels = meta.get("labels") or {}
    if labels.get(api.LABEL_INSTANCE):
        return f"{api.KIND}/{labels[api.LABEL_INSTANCE]}"
    return "no owner (created outside d3os-operator)"


def _ref(kind: str, name: str, obj: Mapping[str, Any], parent: Parent, component: str) -> ObjectRef:
    api_version = "apps/v1" if kind in WORKLOAD_KINDS else "v1"
    uid = _meta(obj).get("uid")
    return ObjectRef(api_version, kind, name, parent.namespace, uid if isinstance(uid, str) else None, component)


def _deps(spec: SpecBase, product: ProductDef) -> dict[str, tuple[str, ...]]:
    defaults = product.default_dependencies()
    out: dict[str, tuple[str, ...]] = {}
    for key in product.keys:
        declared = spec.component(key).depends_on
        out[key] = tuple(declared) if declared is not None else defaults[key]
    return out


def probe_key(parent: Parent, st: ComponentState) -> str:
    return f"{parent.namespace}/{parent.name}/{st.key}/{content_hash(repr(st.check))}"


def _previous_components(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c["name"]: c for c in status.get("components") or [] if isinstance(c, Mapping) and "name" in c}


def plan(
    parent: Mapping[str, Any], observed: Observed, facts: Facts, product: ProductDef = DATASERVICE
) -> Plan:
    """The next step for ``parent`` (a DataService as the API returns it)."""
    meta = _meta(parent)
    who = Parent(str(meta.get("name", "")), str(meta.get("namespace") or "default"), str(meta.get("uid", "")))
    generation = int(meta.get("generation") or 0)
    prev_status: Mapping[str, Any] = parent.get("status") or {}
    finalizers = list(meta.get("finalizers") or [])
    if meta.get("deletionTimestamp"):
        if api.FINALIZER not in finalizers:
            return Plan(status=dict(prev_status))
        return _plan_deletion(who, observed, facts, product, prev_status, generation)
    finalizer = "add" if api.FINALIZER not in finalizers else None
    raw = parent.get("spec")
    spec_key = (id(product), json.dumps(raw, sort_keys=True, default=str))
    parsed = _PARSED.get(spec_key)
    if parsed is None:
        try:
            parsed = _PARSED.put(spec_key, parse_spec(raw, product))
        except SpecError as exc:
            parsed = _PARSED.put(spec_key, exc)
    if isinstance(parsed, SpecError):
        return _plan_invalid(parsed, facts, prev_status, generation, finalizer)
    return _plan_rollout(who, parsed, spec_key, observed, facts, product, prev_status, generation, finalizer)


def _plan_invalid(
    exc: SpecError, facts: Facts, prev: Mapping[str, Any], generation: int, finalizer: Any
) -> Plan:
    message = redact_text("; ".join(str(e) for e in exc.errors))  # an invalid URL may carry a password
    old = prev.get("conditions") or []
    status = {k: v for k, v in prev.items() if k not in ("conditions", "observedGeneration")}
    status["observedGeneration"] = generation
    status["conditions"] = [
        condition("Ready", False, "InvalidSpec", message, generation, facts.now, old),
        condition("Progressing", False, "InvalidSpec", "the spec must be fixed before anything changes",
                  generation, facts.now, old),
        condition("Degraded", True, "InvalidSpec", message, generation, facts.now, old),
    ]
    was_invalid = any(c.get("reason") == "InvalidSpec" and c.get("type") == "Degraded" for c in old)
    same = was_invalid and any(c.get("message") == message for c in old if c.get("type") == "Degraded")
    events = () if same else (Event("Warning", "InvalidSpec", message[:1024]),)
    return Plan(status=status, events=events, finalizer=finalizer)


def _plan_rollout(
    who: Parent,
    spec: SpecBase,
    spec_key: tuple[int, str],
    observed: Observed,
    facts: Facts,
    product: ProductDef,
    prev_status: Mapping[str, Any],
    generation: int,
    finalizer: Any,
) -> Plan:
    deps = _deps(spec, product)
    order = topo_order(product.keys, deps)
    states = resolve(who, spec, product)
    live_secrets = {
        name: obj for (kind, name), obj in observed.objects.items()
        if kind == "Secret" and _owned(obj, kind, who)
    }
    prev_comps = _previous_components(prev_status)
    work = _Work()
    comps: dict[str, ComponentStatus] = {}
    rendered = _render_all(who, spec, spec_key, product, states, order, live_secrets, facts.secret_seed)
    desired_keys = {(o["kind"], o["metadata"]["name"]) for r in rendered.values() for o in r.objects}

    owned_stale = _stale(who, observed, desired_keys)
    for key in order:  # "start a component only after everything before it is ready": transitively
        comps[key] = _plan_component(
            who, states[key], rendered[key], ancestors(deps, key), comps, observed, prev_comps.get(key),
            owned_stale, work,
        )

    all_ready = all(c.ready for c in comps.values())
    if all_ready:  # converged: now the old forms may go
        for kind, name, obj, comp in owned_stale:
            if kind != "PersistentVolumeClaim":
                work.delete.append(_ref(kind, name, obj, who, comp))
    status = _status(order, comps, generation, facts, prev_status, len(work.delete))
    work.events.extend(_transition_events(order, comps, prev_comps, prev_status, status))
    if all_ready and work.delete:
        work.events.append(Event("Normal", "Pruned", "removed objects no longer desired: " + ", ".join(
            f"{d.kind}/{d.name}" for d in work.delete)))
    busy = not all_ready or bool(work.apply) or bool(work.delete)
    return Plan(
        apply=tuple(work.apply),
        delete=tuple(work.delete),
        status=status,
        events=tuple(work.events),
        probes=tuple(work.probes),
        requeue_after=RESYNC_WHILE_BUSY if busy else None,
        finalizer=finalizer,
    )


_PARSED: Memo[SpecBase | SpecError] = Memo(1024)
_RENDERED: Memo[dict[str, Rendered]] = Memo(1024)
_COVERED: Memo[bool] = Memo(65536)


def _render_all(
    who: Parent,
    spec: SpecBase,
    spec_key: tuple[int, str],
    product: ProductDef,
    states: Mapping[str, ComponentState],
    order: Sequence[str],
    live_secrets: Mapping[str, Mapping[str, Any]],
    seed: str,
) -> dict[str, Rendered]:
    """Every component's desired objects (memoised: the same inputs render the same objects)."""
    secrets = tuple(sorted(
        (name, tuple(sorted((obj.get("data") or {}).items()))) for name, obj in live_secrets.items()
    ))
    key = (spec_key, who, secrets, seed if _needs_seed(states, live_secrets) else "")
    hit = _RENDERED.get(key)
    if hit is not None:
        return hit
    out = {k: render_component(who, spec, product, states, k, live_secrets, seed) for k in order}
    return _RENDERED.put(key, out)


def _needs_seed(states: Mapping[str, ComponentState], live_secrets: Mapping[str, Mapping[str, Any]]) -> bool:
    return any(st.definition.generated_secret is not None
               and secret_name(st, "-credentials") not in live_secrets for st in states.values())


def _stale(
    who: Parent, observed: Observed, desired: set[tuple[str, str]]
) -> list[tuple[str, str, Mapping[str, Any], str]]:
    """Objects of ours that the current spec no longer wants (old kinds, renamed components)."""
    out = []
    for (kind, name), obj in sorted(observed.objects.items()):
        if (kind, name) in desired or not _owned(obj, kind, who):
            continue
        comp = str((_meta(obj).get("labels") or {}).get(api.LABEL_COMPONENT, ""))
        out.append((kind, name, obj, comp))
    return out


def _plan_component(
    who: Parent,
    st: ComponentState,
    r: Rendered,
    deps: Sequence[str],
    comps: Mapping[str, ComponentStatus],
    observed: Observed,
    prev: Mapping[str, Any] | None,
    stale: Sequence[tuple[str, str, Mapping[str, Any], str]],
    work: _Work,
) -> ComponentStatus:
    comp_hash = content_hash([o["metadata"]["annotations"][api.ANNOTATION_HASH] for o in r.objects]
                             + ([repr(st.check)] if st.check is not None else []))  # a third party: its check too
    kind_label = st.kind.k8s_kind
    workload = next((o for o in r.objects if o["kind"] in WORKLOAD_KINDS), None)
    obj_name = f"{workload['kind']}/{st.name}" if workload else (
        st.check.describe() if st.check is not None else st.name)
    prev_hash = str((prev or {}).get("hash", ""))

    def status(state: State, message: str, hash_: str = prev_hash) -> ComponentStatus:
        return ComponentStatus(st.key, kind_label, obj_name, state, message, hash_)

    conflicts: list[str] = []
    outdated: list[Apply] = []
    for obj in r.objects:
        okey = (obj["kind"], obj["metadata"]["name"])
        live = observed.objects.get(okey)
        if live is None:
            outdated.append(Apply(obj, st.key, create=True))
        elif not _owned(live, okey[0], who):
            conflicts.append(f"{okey[0]}/{okey[1]} is held by {_holder(live)}")
        elif not _up_to_date(live, obj):
            outdated.append(Apply(obj, st.key))
    if conflicts:
        return status("Conflict", "; ".join(conflicts) + "; it is never taken over: rename the component "
                      "or remove that object")

    blockers = [d for d in deps if not comps[d].ready]
    if len(blockers) > 1:  # name the nearest only: the others are waiting on it too
        blockers = [b for b in blockers if comps[b].state != "Waiting"] or blockers[:1]
    repair = bool(outdated) and comp_hash == prev_hash  # self-heal of a state already reached
    if outdated and blockers and not repair:
        return status("Waiting", "waiting for " + ", ".join(
            f"{d} ({comps[d].state.lower()}: {comps[d].message})" if comps[d].message else d for d in blockers))

    # A component with data never runs two workloads on one claim: stop the old kind first.
    if workload is not None and st.definition.storage is not None:
        old = [(k, n, o, c) for (k, n, o, c) in stale
               if c == st.key and k in WORKLOAD_KINDS and k != workload["kind"]]
        if old:
            for k, n, o, c in old:
                if not _meta(o).get("deletionTimestamp"):
                    work.delete.append(_ref(k, n, o, who, c))
            outdated = [a for a in outdated if a.manifest["kind"] not in WORKLOAD_KINDS]
            work.apply.extend(outdated)
            names = ", ".join(f"{k}/{n}" for k, n, _, _ in old)
            return status("Progressing", f"stopping {names} before {workload['kind']}/{st.name} "
                          "starts on the same data")

    work.apply.extend(outdated)
    refusals = [f"{kind}/{name}: {observed.refused[(kind, name)]}"
                for kind, name in ((a.manifest["kind"], a.manifest["metadata"]["name"]) for a in outdated)
                if (kind, name) in observed.refused]
    if refusals:
        return status("Failed", REFUSED + "; ".join(refusals))
    if st.check is not None:  # third party: readiness is the last probe result for this very check
        key = probe_key(who, st)
        result = observed.probes.get(key)
        if not blockers or result is not None or repair or prev_hash == comp_hash:
            work.probes.append(ProbeRequest(key, st.key, st.check, PROBE_PERIOD))
        if outdated:
            return status("Progressing", f"applying {', '.join(_names(outdated))}")
        if result is None:
            if prev_hash == comp_hash and (prev or {}).get("state") == "Ready":
                # not probed yet by this process (a restart, a new leader; reconciles never wait for a
                # probe): the last result, for this very check, holds until the first new one arrives
                return status("Ready", str((prev or {}).get("message") or ""), comp_hash)
            return status("Progressing", f"checking {st.check.describe()}")
        if not result.ok:
            return status("Progressing", f"{st.check.describe()} failed: {result.message}".strip())
        return status("Ready", f"{st.check.describe()} succeeded", comp_hash)
    if outdated:
        return status("Progressing", f"applying {', '.join(_names(outdated))}")
    assert workload is not None
    live_workload = observed.objects[(workload["kind"], st.name)]
    ro = rollout(live_workload, workload["kind"])
    if ro.failed:
        return status("Failed", ro.message)
    if not ro.ready:
        return status("Progressing", ro.message)
    return status("Ready", ro.message, comp_hash)


def _names(applies: Sequence[Apply]) -> list[str]:
    return [f"{a.manifest['kind']}/{a.manifest['metadata']['name']}" for a in applies]


def _up_to_date(live: Mapping[str, Any], desired: JSON) -> bool:
    meta = _meta(live)
    desired_hash = desired["metadata"]["annotations"][api.ANNOTATION_HASH]
    if (meta.get("annotations") or {}).get(api.ANNOTATION_HASH) != desired_hash:
        return False
    version = meta.get("resourceVersion")
    key = (meta.get("uid"), version, desired_hash) if version else None
    if key is not None:
        hit = _COVERED.get(key)
        if hit is not None:
            return hit
    result = covers(live, {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")})
    return _COVERED.put(key, result) if key is not None else result


def _status(
    order: Sequence[str],
    comps: Mapping[str, ComponentStatus],
    generation: int,
    facts: Facts,
    prev: Mapping[str, Any],
    pruning: int,
) -> JSON:
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
                          generation, facts.now, old)
        progressing = condition("Progressing", bool(pruning), "Pruning" if pruning else "Complete",
                                f"removing {pruning} objects no longer desired" if pruning
                                else "rollout complete", generation, facts.now, old)
    else:
        reason = "Conflict" if conflicts else "ComponentFailed" if failed else "RollingOut"
        stuck = conflicts or failed
        ready = condition("Ready", False, reason, f"{ready_n}/{total} components ready; "
                          + describe(stuck or active or waiting), generation, facts.now, old)
        if active:
            progressing = condition("Progressing", True, "RollingOut", describe(active), generation, facts.now, old)
        elif stuck:
            progressing = condition("Progressing", False, "Stalled", describe(stuck), generation, facts.now, old)
        else:
            progressing = condition("Progressing", True, "Waiting", describe(waiting), generation, facts.now, old)
    if conflicts:
        degraded = condition("Degraded", True, "Conflict", describe(conflicts), generation, facts.now, old)
    elif failed:
        refused = any(comps[k].message.startswith(REFUSED) for k in failed)
        degraded = condition("Degraded", True, "ApplyRefused" if refused else "ProgressDeadlineExceeded",
                             describe(failed), generation, facts.now, old)
    else:
        degraded = condition("Degraded", False, "AsExpected", "no component has failed", generation, facts.now, old)
    return {
        "phase": phase,
        "message": message,
        "ready": f"{ready_n}/{total}",
        "observedGeneration": generation,
        "conditions": [ready, progressing, degraded],
        "components": [comps[k].to_json() for k in order],
    }


def _transition_events(
    order: Sequence[str],
    comps: Mapping[str, ComponentStatus],
    prev_comps: Mapping[str, Mapping[str, Any]],
    prev_status: Mapping[str, Any],
    status: Mapping[str, Any],
) -> list[Event]:
    """An Event for each component whose state or message changed meaningfully, and for Ready."""
    events: list[Event] = []
    for key in order:
        c = comps[key]
        old = prev_comps.get(key) or {}
        if old.get("state") == c.state and (c.state not in ("Failed", "Conflict", "Waiting")
                                             or old.get("message") == c.message):
            continue
        if c.state == "Progressing" and old.get("state") != "Progressing":
            events.append(Event("Normal", "Deploying", f"{key}{DEPLOYED}: {c.message}"))
        elif c.state == "Ready":
            events.append(Event("Normal", "ComponentReady", f"{key} is ready: {c.message}"))
        elif c.state == "Waiting" and _next_in_line(key, order, comps, prev_comps):
            events.append(Event("Normal", "Waiting", f"{key} {c.message}"))
        elif c.state == "Failed":
            events.append(Event("Warning", "ComponentFailed", f"{key} failed: {c.message}"))
        elif c.state == "Conflict":
            events.append(Event("Warning", "Conflict", f"{key}: {c.message}"))
    was_ready = any(x.get("type") == "Ready" and x.get("status") == "True" for x in prev_status.get("conditions") or [])
    now_ready = any(x.get("type") == "Ready" and x.get("status") == "True" for x in status["conditions"])
    if now_ready and not was_ready:
        events.append(Event("Normal", "Ready", f"all {len(order)} components are ready"))
    return events


def _next_in_line(
    key: str, order: Sequence[str], comps: Mapping[str, ComponentStatus], prev: Mapping[str, Any]
) -> bool:
    """Report waiting only for the component right behind the one holding things up (no event storm)."""
    i = order.index(key)
    before = comps[order[i - 1]].state if i > 0 else "Waiting"
    return before != "Waiting" and (bool(prev) or before != "Progressing")


def _plan_deletion(
    who: Parent,
    observed: Observed,
    facts: Facts,
    product: ProductDef,
    prev_status: Mapping[str, Any],
    generation: int,
) -> Plan:
    """Remove children in reverse dependency order (last component first), claims excepted."""
    rank = {k: i for i, k in enumerate(product.keys)}
    groups: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for (kind, name), obj in sorted(observed.objects.items()):
        if kind == "PersistentVolumeClaim" or not _owned(obj, kind, who):
            continue
        comp = str((_meta(obj).get("labels") or {}).get(api.LABEL_COMPONENT, ""))
        groups.setdefault(comp, []).append((kind, name, obj))
    old = prev_status.get("conditions") or []
    status = {k: v for k, v in prev_status.items() if k != "conditions"}
    if not groups:
        status["conditions"] = [
            condition("Ready", False, "Deleted", "all children removed; claims kept", generation, facts.now, old),
        ]
        return Plan(status=status, finalizer="remove",
                    events=(Event("Normal", "Deleted", "all children removed; persistent volume claims kept"),))
    # unknown components (renamed keys) first, then the product order reversed
    last = max(groups, key=lambda c: rank.get(c, len(rank)))
    doomed = groups[last]
    deletes = tuple(
        _ref(kind, name, obj, who, last) for kind, name, obj in doomed if not _meta(obj).get("deletionTimestamp")
    )
    remaining = [k for k in reversed(product.keys) if k in groups]
    message = f"deleting {last}; then " + ", ".join(k for k in remaining if k != last) if len(remaining) > 1 \
        else f"deleting {last}"
    status["conditions"] = [
        condition("Ready", False, "Deleting", message, generation, facts.now, old),
        condition("Progressing", True, "Deleting", message, generation, facts.now, old),
    ]
    events = (Event("Normal", "Deleting", f"deleting {last}: " + ", ".join(f"{k}/{n}" for k, n, _ in doomed)),) \
        if deletes else ()
    return Plan(delete=deletes, status=status, events=events, requeue_after=5.0)


__all__ = ["WorkloadKind", "plan", "probe_key", "secret_name"]
