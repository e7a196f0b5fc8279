"""Ordering: which step comes next for each component, walking the dependency order.

A component's new desired state is applied only when every component it depends on (transitively) is
ready at its own current desired state; a repair of a state already reached is never held back; a
component with data stops its old workload before the new kind starts on the same claim; stale objects
go only once everything is ready; a third party's readiness is its last probe; every step has a deadline
(:mod:`d3os_core.deadlines`); a suspended DataService writes nothing. What is live and whether it is up to
date is :mod:`d3os_core.children`'s; what status and Events say is :mod:`d3os_core.status`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import api, children, credentials, deadlines, lifecycle
from .caches import Caches
from .desired import render_all
from .graph import ancestors, topo_order
from .hashing import content_hash
from .product import ProductDef
from .readiness import rollout
from .render import ComponentState, Parent, Rendered, resolve, selector
from .spec import SpecBase
from .status import CHECK_FAILED, REFUSED, ComponentStatus, State, previous_components
from .types import Apply, Event, Facts, ObjectRef, Observed, PodQuery, ProbeRequest

WORKLOAD_KINDS = api.WORKLOAD_KINDS
PROBE_PERIOD = 5.0
"""Seconds between two runs of a third-party check."""


@dataclass(slots=True)
class Work:
    """Mutable accumulator for one planning pass."""

    apply: list[Apply] = field(default_factory=list)
    delete: list[ObjectRef] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    probes: list[ProbeRequest] = field(default_factory=list)
    wake: list[float] = field(default_factory=list)
    """Seconds until a progress deadline passes (the plan requeues at the nearest)."""
    inspect: list[PodQuery] = field(default_factory=list)
    going: int = 0
    """Stale objects already terminating: asked to go once, never again; they count as pruning."""


def dependencies(spec: SpecBase, product: ProductDef) -> dict[str, tuple[str, ...]]:
    """Each component's direct dependencies: its ``dependsOn``, else the product's chain."""
    defaults = product.default_dependencies()
    out: dict[str, tuple[str, ...]] = {}
    for key in product.keys:
        declared = spec.component(key).depends_on
        out[key] = tuple(declared) if declared is not None else defaults[key]
    return out


def probe_key(parent: Parent, st: ComponentState) -> str:
    return f"{parent.namespace}/{parent.name}/{st.key}/{content_hash(repr(st.check))}"


def plan_components(
    who: Parent,
    spec: SpecBase,
    spec_key: str,
    observed: Observed,
    facts: Facts,
    product: ProductDef,
    prev_status: Mapping[str, Any],
    deadline: int,
    suspended: bool,
    cache: Caches | None,
) -> tuple[Work, dict[str, ComponentStatus], list[str]]:
    """Every component's next step and status, in dependency order (deadlines applied, writes held if suspended)."""
    deps = dependencies(spec, product)
    order = topo_order(product.keys, deps)
    states = resolve(who, spec, product)
    secrets = children.live_secrets(observed, who)
    claims = children.live_claims(observed, who)
    prev_comps = previous_components(prev_status)
    work = Work()
    comps: dict[str, ComponentStatus] = {}
    rendered = render_all(who, spec, product, states, secrets, claims, facts.secret_seed, spec_key=spec_key,
                          cache=cache)
    desired_keys = {(o["kind"], o["metadata"]["name"]) for r in rendered.values() for o in r.objects}

    owned_stale = children.stale(who, observed, desired_keys)
    for key in order:  # "start a component only after everything before it is ready": transitively
        n_apply, n_delete = len(work.apply), len(work.delete)
        cs = _plan_component(
            who, states[key], rendered[key], ancestors(deps, key), comps, observed, prev_comps.get(key),
            owned_stale, work, claims, cache,
        )
        if suspended and (len(work.apply) > n_apply or len(work.delete) > n_delete):
            cs = lifecycle.suspended_status(cs, children.names(work.apply[n_apply:]),
                                            [f"{d.kind}/{d.name}" for d in work.delete[n_delete:]])
            del work.apply[n_apply:]
            del work.delete[n_delete:]
        comps[key] = _judge(who, states[key], rendered[key], cs, observed, prev_comps.get(key), facts, deadline,
                            suspended, work)

    if all(c.ready for c in comps.values()) and not suspended:  # converged: now the old forms may go
        for kind, name, obj, comp in owned_stale:
            if not api.kind_def(kind).deletable:
                continue
            if children.terminating(obj):
                work.going += 1
            else:
                work.delete.append(children.ref(kind, name, obj, who, comp))
    return work, comps, order


def _judge(
    who: Parent,
    st: ComponentState,
    r: Rendered,
    cs: ComponentStatus,
    observed: Observed,
    prev: Mapping[str, Any] | None,
    facts: Facts,
    deadline: int,
    suspended: bool,
    work: Work,
) -> ComponentStatus:
    """The component's progress deadline (see :mod:`d3os_core.deadlines`)."""
    # the step is the workload's desired state: a follow-up write of a side object (the credentials Secret
    # re-owned by the claim its StatefulSet just made) does not restart the clock
    workloads = [o for o in r.objects if o["kind"] in WORKLOAD_KINDS] or list(r.objects)
    target = content_hash([o["metadata"]["annotations"][api.ANNOTATION_HASH] for o in workloads])
    # a step under way, or failed by its own controller's deadline; a refusal or lost credentials is no step
    running = not suspended and (cs.state == "Progressing" or (
        cs.state == "Failed" and not cs.message.startswith((REFUSED, credentials.LOST))))
    if st.check is not None:  # a third party's clock starts at its check's first failure
        result = observed.probes.get(probe_key(who, st))
        running = running and result is not None and not result.ok
        target = content_hash([target, repr(st.check)])
    workload = st.check is None and any(o["kind"] in WORKLOAD_KINDS for o in r.objects)
    pods = observed.pods.get(st.key)
    verdict = deadlines.judge(cs, prev, target, running, facts.now, deadline, pods,
                              selector(who, st.key) if workload else None)
    if verdict.wake_in is not None:
        work.wake.append(verdict.wake_in)
    if verdict.inspect is not None:
        work.inspect.append(verdict.inspect)
    return verdict.status


def _plan_component(
    who: Parent,
    st: ComponentState,
    r: Rendered,
    deps: Sequence[str],
    comps: Mapping[str, ComponentStatus],
    observed: Observed,
    prev: Mapping[str, Any] | None,
    stale: Sequence[children.Stale],
    work: Work,
    claims: Mapping[str, str],
    cache: Caches | None,
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

    d = children.diff(r.objects, st.key, observed, who, cache)
    outdated, terminating = d.outdated, d.terminating
    if d.conflicts:
        return status("Conflict", "; ".join(d.conflicts) + "; it is never taken over: rename the component "
                      "or remove that object")
    held = children.credentials_hold(who, st, observed, claims)
    if held is not None:
        return status(*held)

    blockers = [b for b in deps if not comps[b].ready]
    if len(blockers) > 1:  # name the nearest only: the others are waiting on it too
        blockers = [b for b in blockers if comps[b].state != "Waiting"] or blockers[:1]
    repair = bool(outdated or terminating) and comp_hash == prev_hash  # self-heal of a state already reached
    if (outdated or terminating) and blockers and not repair:
        return status("Waiting", "waiting for " + ", ".join(
            f"{b} ({comps[b].state.lower()}: {comps[b].message})" if comps[b].message else b for b in blockers))

    # A component with data never runs two workloads on one claim: stop the old kind first.
    if workload is not None and st.definition.storage is not None:
        old = [(k, n, o, c) for (k, n, o, c) in stale
               if c == st.key and k in WORKLOAD_KINDS and k != workload["kind"]]
        if old:
            for k, n, o, c in old:
                if not children.terminating(o):
                    work.delete.append(children.ref(k, n, o, who, c))
            outdated = [a for a in outdated if a.manifest["kind"] not in WORKLOAD_KINDS]
            work.apply.extend(outdated)
            names = ", ".join(f"{k}/{n}" for k, n, _, _ in old)
            return status("Progressing", f"stopping {names} before {workload['kind']}/{st.name} "
                          "starts on the same data")

    work.apply.extend(outdated)
    if terminating:  # the watch's DELETED event brings us back; then the new form is created
        return status("Progressing", f"waiting for {', '.join(terminating)} to finish terminating "
                      "before it is created again")
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
            return status("Progressing", f"applying {', '.join(children.names(outdated))}")
        if result is None:
            if prev_hash == comp_hash and (prev or {}).get("state") == "Ready":
                # not probed yet by this process (a restart, a new leader; reconciles never wait for a
                # probe): the last result, for this very check, holds until the first new one arrives
                return status("Ready", str((prev or {}).get("message") or ""), comp_hash)
            return status("Progressing", f"checking {st.check.describe()}")
        if not result.ok:
            what = st.check.describe()
            detail = result.message.removeprefix(f"{what}: ")  # the shell's result names the check too
            return replace(status("Progressing", f"{what} failed: {detail}".strip()), reason=CHECK_FAILED)
        return status("Ready", f"{st.check.describe()} succeeded", comp_hash)
    if outdated:
        return status("Progressing", f"applying {', '.join(children.names(outdated))}")
    assert workload is not None
    live_workload = observed.objects[(workload["kind"], st.name)]
    ro = rollout(live_workload, workload["kind"])
    if ro.failed:
        return status("Failed", ro.message)
    if not ro.ready:
        return status("Progressing", ro.message)
    return status("Ready", ro.message, comp_hash)
