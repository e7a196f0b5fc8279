"""``plan``: given a DataService and what is observed, what should happen next. Pure and level-based.

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
from dataclasses import dataclass, field
from typing import Any

from . import api, credentials, deadlines, lifecycle, revisions, teardown
from .checks import CheckError
from .dataservice import DATASERVICE
from .drift import covers
from .graph import ancestors, topo_order
from .hashing import content_hash
from .memo import Memo, digest, text_digest
from .product import ProductDef, WorkloadKind
from .readiness import rollout
from .redact import redact_text
from .render import ComponentState, Parent, Rendered, claim_name, render_component, resolve, secret_name, selector
from .spec import SpecBase
from .status import DEPLOYED, ComponentStatus, State, condition, phase_and_message
from .types import JSON, Apply, Event, Facts, ObjectRef, Observed, Plan, PodQuery, ProbeRequest
from .validation import FieldError, SpecError, metadata_name_errors, parse_spec

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
    wake: list[float] = field(default_factory=list)
    """Seconds until a progress deadline passes (the plan requeues at the nearest)."""
    inspect: list[PodQuery] = field(default_factory=list)
    going: int = 0
    """Stale objects already terminating: asked to go once, never again; they count as pruning."""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _owned(obj: Mapping[str, Any], kind: str, parent: Parent) -> bool:
    """Ours: owned by this DataService's uid; a claim or a claim's credentials Secret (which outlive the
    DataService) by their labels."""
    if credentials.owned_by_parent(obj, parent.uid):
        return True
    return kind in ("PersistentVolumeClaim", "Secret") and credentials.label_owned(obj, kind, parent.name)


def _holder(obj: Mapping[str, Any]) -> str:
    meta = _meta(obj)
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    labels = meta.get("labels") or {}
    if labels.get(api.LABEL_INSTANCE):  # before other owners: a credentials Secret is owned by its claim
        return f"{api.KIND}/{labels[api.LABEL_INSTANCE]}"
    refs = meta.get("ownerReferences") or []
    if refs:
        return f"{refs[0].get('kind')}/{refs[0].get('name')}"
    return "no owner (created outside d3os-operator)"


def _ref(kind: str, name: str, obj: Mapping[str, Any], parent: Parent, component: str) -> ObjectRef:
    api_version = "apps/v1" if kind in WORKLOAD_KINDS or kind == revisions.KIND else "v1"
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
    """The next step for ``parent`` (a DataService as the API returns it).

    Never raises: a spec at fault ends in an InvalidSpec plan naming the field; anything else that goes
    wrong while planning (a bug, an input nobody foresaw) ends in a Degraded plan that changes nothing,
    so one DataService can never take the operator down for the others.
    """
    try:
        return _plan(parent, observed, facts, product)
    except Exception as exc:
        return plan_failed(parent, exc, facts)


def plan_failed(parent: Mapping[str, Any], exc: BaseException, facts: Facts, what: str = "planning") -> Plan:
    """A plan that changes nothing and reports ``exc`` in status (Degraded, reason ReconcileError) and as
    a Warning Event (once per distinct message): for errors that are not the spec's fault."""
    try:
        prev: Mapping[str, Any] = parent.get("status") or {}
        if not isinstance(prev, Mapping):
            prev = {}
        generation = _meta(parent).get("generation")
        generation = generation if isinstance(generation, int) and not isinstance(generation, bool) else 0
    except Exception:
        prev, generation = {}, 0
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    message = (f"{what} failed: {text[:900]}; nothing was changed, retrying with backoff "
               "(not caused by the spec: please report it)")
    old = prev.get("conditions") or []
    old = [c for c in old if isinstance(c, Mapping)] if isinstance(old, list) else []
    status = {k: v for k, v in prev.items() if k not in ("conditions", "observedGeneration")}
    status["observedGeneration"] = generation
    status["conditions"] = [
        condition("Ready", False, ERROR_REASON, message, generation, facts.now, old),
        condition("Progressing", False, ERROR_REASON, "stopped until the error is resolved", generation,
                  facts.now, old),
        condition("Degraded", True, ERROR_REASON, message, generation, facts.now, old),
    ]
    same = any(c.get("type") == "Degraded" and c.get("reason") == ERROR_REASON and c.get("message") == message
               for c in old)
    events = () if same else (Event("Warning", ERROR_REASON, message[:1024]),)
    return Plan(status=status, events=events, requeue_after=FAILED_RETRY)


FAILED_RETRY = 60.0
"""Seconds: a plan that failed is tried again this late (the same inputs fail the same way; events wake it)."""
ERROR_REASON = "ReconcileError"
"""Reason of a DataService whose reconcile failed for a reason other than its spec."""


def _plan(
    parent: Mapping[str, Any], observed: Observed, facts: Facts, product: ProductDef = DATASERVICE
) -> Plan:
    meta = _meta(parent)
    who = Parent(str(meta.get("name", "")), str(meta.get("namespace") or "default"), str(meta.get("uid", "")))
    generation = int(meta.get("generation") or 0)
    prev_status: Mapping[str, Any] = parent.get("status") or {}
    finalizers = list(meta.get("finalizers") or [])
    if meta.get("deletionTimestamp"):
        if api.FINALIZER not in finalizers:
            return Plan(status=dict(prev_status))
        return _plan_deletion(who, observed, facts, product, prev_status, generation, parent.get("spec"))
    finalizer = "add" if api.FINALIZER not in finalizers else None
    raw = parent.get("spec")
    spec_text = json.dumps(raw, sort_keys=True, default=str)
    spec_key = text_digest(product.fingerprint, spec_text)
    parsed = _PARSED.get(spec_key)
    if parsed is None:
        weight = len(spec_text) * IN_MEMORY
        try:
            parsed = _PARSED.put(spec_key, parse_spec(raw, product), weight)
        except SpecError as exc:
            parsed = _PARSED.put(spec_key, exc, weight)
        except Exception as exc:
            parsed = _PARSED.put(spec_key, SpecError([FieldError("spec", f"cannot be parsed: {exc}")]), weight)
    name_errors = metadata_name_errors(meta.get("name"))
    if name_errors:
        parsed = SpecError(name_errors + (parsed.errors if isinstance(parsed, SpecError) else []))
    if isinstance(parsed, SpecError):
        return _plan_invalid(parsed, facts, prev_status, generation, finalizer)
    try:
        return _plan_rollout(who, parsed, spec_key, observed, facts, product, prev_status, generation, finalizer,
                             raw if isinstance(raw, Mapping) else {})
    except CheckError as exc:  # a third-party address validation let through: still the spec's fault
        return _plan_invalid(SpecError([FieldError("spec", str(exc))]), facts, prev_status, generation, finalizer)


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
    spec_key: str,
    observed: Observed,
    facts: Facts,
    product: ProductDef,
    prev_status: Mapping[str, Any],
    generation: int,
    finalizer: Any,
    raw: Mapping[str, Any],
) -> Plan:
    ctl = lifecycle.control(who.name, raw, revisions.observed_revisions(observed.objects, who.uid), prev_status,
                            generation)
    suspended = spec.suspend
    target = ctl.rollback_target
    spec_in_force, key_in_force = spec, spec_key
    if target is not None:  # a rollback of this generation is under way: plan the last Ready spec
        spec_in_force, key_in_force = _parse_revision(target, product) or (spec, spec_key)
    rollback_event: Event | None = None
    work, comps, order = _plan_components(who, spec_in_force, key_in_force, observed, facts, product, prev_status,
                                          spec.progress_deadline_seconds, suspended)
    back = ctl.current and _parse_revision(ctl.current, product)
    if back and lifecycle.should_roll_back(ctl, spec.rollback_on_failure, suspended, comps):
        ctl, rollback_event = lifecycle.start_rollback(ctl, order, comps, generation, facts.now)
        spec_in_force, key_in_force = back
        failed_pods = work.inspect  # read them still: the rollback's record names what the step waited for
        work, comps, order = _plan_components(who, spec_in_force, key_in_force, observed, facts, product,
                                              prev_status, spec.progress_deadline_seconds, suspended)
        work.inspect[:0] = [q for q in failed_pods if q not in work.inspect]

    all_ready = all(c.ready for c in comps.values())
    prev_comps = _previous_components(prev_status)
    status = _status(order, comps, generation, facts, prev_status, len(work.delete) + work.going)
    pending = [k for k in order if comps[k].reason == lifecycle.SUSPENDED]
    extra = lifecycle.finish(
        status, ctl, parent_name=who.name, namespace=who.namespace, parent_uid=who.uid, raw=raw,
        all_ready=all_ready, suspended=suspended, pending=pending, history_limit=spec.revision_history_limit,
        prev_status=prev_status, generation=generation, facts=facts,
    )
    work.apply.extend(extra.apply)
    work.delete.extend(extra.delete)
    if rollback_event is not None:
        work.events.append(rollback_event)
    work.events.extend(_transition_events(order, comps, prev_comps, prev_status, status))
    work.events.extend(extra.events)
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


def _parse_revision(rev: revisions.Revision, product: ProductDef) -> tuple[SpecBase, str] | None:
    """The spec a revision recorded, parsed (memoised like the parent's); None if it no longer parses."""
    spec_text = json.dumps(rev.spec, sort_keys=True, default=str)
    key = text_digest(product.fingerprint, spec_text)
    weight = len(spec_text) * IN_MEMORY
    parsed = _PARSED.get(key)
    if parsed is None:
        try:
            parsed = _PARSED.put(key, parse_spec(dict(rev.spec), product), weight)
        except SpecError as exc:
            parsed = _PARSED.put(key, exc, weight)
        except Exception as exc:  # a recorded spec the parser cannot read is no rollback target
            parsed = _PARSED.put(key, SpecError([FieldError("spec", f"cannot be parsed: {exc}")]), weight)
    if isinstance(parsed, SpecError):
        return None
    return parsed, key


def _plan_components(
    who: Parent,
    spec: SpecBase,
    spec_key: str,
    observed: Observed,
    facts: Facts,
    product: ProductDef,
    prev_status: Mapping[str, Any],
    deadline: int,
    suspended: bool,
) -> tuple[_Work, dict[str, ComponentStatus], list[str]]:
    """Every component's next step and status, in dependency order (deadlines applied, writes held if suspended)."""
    deps = _deps(spec, product)
    order = topo_order(product.keys, deps)
    states = resolve(who, spec, product)
    live_secrets = {
        name: obj for (kind, name), obj in observed.objects.items()
        if kind == "Secret" and _owned(obj, kind, who)
    }
    claims = {
        name: str(_meta(obj).get("uid") or "") for (kind, name), obj in observed.objects.items()
        if kind == "PersistentVolumeClaim" and _owned(obj, kind, who) and not _meta(obj).get("deletionTimestamp")
    }
    prev_comps = _previous_components(prev_status)
    work = _Work()
    comps: dict[str, ComponentStatus] = {}
    rendered = _render_all(who, spec, spec_key, product, states, order, live_secrets, claims, facts.secret_seed)
    desired_keys = {(o["kind"], o["metadata"]["name"]) for r in rendered.values() for o in r.objects}

    owned_stale = _stale(who, observed, desired_keys)
    for key in order:  # "start a component only after everything before it is ready": transitively
        n_apply, n_delete = len(work.apply), len(work.delete)
        cs = _plan_component(
            who, states[key], rendered[key], ancestors(deps, key), comps, observed, prev_comps.get(key),
            owned_stale, work, claims,
        )
        if suspended and (len(work.apply) > n_apply or len(work.delete) > n_delete):
            cs = lifecycle.suspended_status(cs, _names(work.apply[n_apply:]),
                                            [f"{d.kind}/{d.name}" for d in work.delete[n_delete:]])
            del work.apply[n_apply:]
            del work.delete[n_delete:]
        comps[key] = _judge(who, states[key], rendered[key], cs, observed, prev_comps.get(key), facts, deadline,
                            suspended, work)

    if all(c.ready for c in comps.values()) and not suspended:  # converged: now the old forms may go
        for kind, name, obj, comp in owned_stale:
            if kind == "PersistentVolumeClaim":
                continue
            if _terminating(obj):
                work.going += 1
            else:
                work.delete.append(_ref(kind, name, obj, who, comp))
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
    work: _Work,
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


IN_MEMORY = 3
"""Bytes a parsed spec or a rendered object takes in memory per byte of its JSON text (measured: ~2.6)."""
MiB = 1024 * 1024
_PARSED: Memo[SpecBase | SpecError] = Memo(1024, 16 * MiB)
_RENDERED: Memo[dict[str, Rendered]] = Memo(1024, 48 * MiB)
_COVERED: Memo[bool] = Memo(32768, 8 * MiB)


def _render_all(
    who: Parent,
    spec: SpecBase,
    spec_key: str,
    product: ProductDef,
    states: Mapping[str, ComponentState],
    order: Sequence[str],
    live_secrets: Mapping[str, Mapping[str, Any]],
    claims: Mapping[str, str],
    seed: str,
) -> dict[str, Rendered]:
    """Every component's desired objects (memoised: the same inputs render the same objects)."""
    secrets = sorted((name, obj.get("data") or {}) for name, obj in live_secrets.items())
    key = digest(
        spec_key, who.name, who.namespace, who.uid, secrets, sorted(claims.items()),
        seed if _needs_seed(states, live_secrets) else "",
    )
    hit = _RENDERED.get(key)
    if hit is not None:
        return hit
    out = {k: render_component(who, spec, product, states, k, live_secrets, seed, claims) for k in order}
    weight = sum(len(json.dumps(o, default=str)) for r in out.values() for o in r.objects) * IN_MEMORY
    return _RENDERED.put(key, out, weight)


def _needs_seed(states: Mapping[str, ComponentState], live_secrets: Mapping[str, Mapping[str, Any]]) -> bool:
    return any(st.definition.generated_secret is not None
               and secret_name(st, "-credentials") not in live_secrets for st in states.values())


def _stale(
    who: Parent, observed: Observed, desired: set[tuple[str, str]]
) -> list[tuple[str, str, Mapping[str, Any], str]]:
    """Objects of ours that the current spec no longer wants (old kinds, renamed components); claims and
    their credentials are kept (they outlive any spec)."""
    out = []
    for (kind, name), obj in sorted(observed.objects.items()):
        if (kind, name) in desired or kind == revisions.KIND or not _owned(obj, kind, who) \
                or credentials.retained(obj, kind, who.uid):
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
    claims: Mapping[str, str],
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
    terminating: list[str] = []  # ours, being deleted: neither up to date nor to be applied until it is gone
    for obj in r.objects:
        okey = (obj["kind"], obj["metadata"]["name"])
        live = observed.objects.get(okey)
        if live is None:
            outdated.append(Apply(obj, st.key, create=True))
        elif not _owned(live, okey[0], who):
            conflicts.append(f"{okey[0]}/{okey[1]} is held by {_holder(live)}")
        elif _terminating(live):
            terminating.append(f"{okey[0]}/{okey[1]}")
        elif not _up_to_date(live, obj):
            outdated.append(Apply(obj, st.key))
    if conflicts:
        return status("Conflict", "; ".join(conflicts) + "; it is never taken over: rename the component "
                      "or remove that object")
    held = _credentials_hold(who, st, observed, claims)
    if held is not None:
        return status(*held)

    blockers = [d for d in deps if not comps[d].ready]
    if len(blockers) > 1:  # name the nearest only: the others are waiting on it too
        blockers = [b for b in blockers if comps[b].state != "Waiting"] or blockers[:1]
    repair = bool(outdated or terminating) and comp_hash == prev_hash  # self-heal of a state already reached
    if (outdated or terminating) and blockers and not repair:
        return status("Waiting", "waiting for " + ", ".join(
            f"{d} ({comps[d].state.lower()}: {comps[d].message})" if comps[d].message else d for d in blockers))

    # A component with data never runs two workloads on one claim: stop the old kind first.
    if workload is not None and st.definition.storage is not None:
        old = [(k, n, o, c) for (k, n, o, c) in stale
               if c == st.key and k in WORKLOAD_KINDS and k != workload["kind"]]
        if old:
            for k, n, o, c in old:
                if not _terminating(o):
                    work.delete.append(_ref(k, n, o, who, c))
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
            return status("Progressing", f"applying {', '.join(_names(outdated))}")
        if result is None:
            if prev_hash == comp_hash and (prev or {}).get("state") == "Ready":
                # not probed yet by this process (a restart, a new leader; reconciles never wait for a
                # probe): the last result, for this very check, holds until the first new one arrives
                return status("Ready", str((prev or {}).get("message") or ""), comp_hash)
            return status("Progressing", f"checking {st.check.describe()}")
        if not result.ok:
            what = st.check.describe()
            detail = result.message.removeprefix(f"{what}: ")  # the shell's result names the check too
            return status("Progressing", f"{what} failed: {detail}".strip())
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


def _credentials_hold(
    who: Parent, st: ComponentState, observed: Observed, claims: Mapping[str, str]
) -> tuple[State, str] | None:
    """A component whose credentials cannot be used as they are applies nothing: a Secret on its way out
    is waited out; a claim whose Secret is gone waits for a person (new values would not open the data)."""
    keys = st.definition.generated_secret
    if keys is None:
        return None
    name = secret_name(st, "-credentials")
    claim = claim_name(st) if st.definition.storage is not None else None
    live = observed.objects.get(("Secret", name))
    if live is not None:
        claim_uid = claims.get(claim) if claim is not None else None
        if _owned(live, "Secret", who) and credentials.standing(live, who.uid, claim_uid) == "going":
            return "Progressing", credentials.going_message(name)
        return None
    if claim is None or claim not in claims:
        return None
    if credentials.opened_with(observed.objects[("PersistentVolumeClaim", claim)]):
        return "Failed", credentials.lost_message(name, claim, sorted(keys), who.name)
    return None


def _names(applies: Sequence[Apply]) -> list[str]:
    return [f"{a.manifest['kind']}/{a.manifest['metadata']['name']}" for a in applies]


def _terminating(obj: Mapping[str, Any]) -> bool:
    """Being deleted (``metadata.deletionTimestamp`` set): on its way out, whatever its content says."""
    return bool(_meta(obj).get("deletionTimestamp"))


def _up_to_date(live: Mapping[str, Any], desired: JSON) -> bool:
    meta = _meta(live)
    if _terminating(live):
        return False
    desired_hash = desired["metadata"]["annotations"][api.ANNOTATION_HASH]
    if (meta.get("annotations") or {}).get(api.ANNOTATION_HASH) != desired_hash:
        return False
    version = meta.get("resourceVersion")
    key = digest(meta.get("uid"), version, desired_hash) if version else None
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
        lost = any(comps[k].message.startswith(credentials.LOST) for k in failed)
        reason = "ApplyRefused" if refused else credentials.LOST_REASON if lost else "ProgressDeadlineExceeded"
        degraded = condition("Degraded", True, reason, describe(failed), generation, facts.now, old)
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
            events.append(Event("Warning", c.reason or "ComponentFailed", f"{key} failed: {c.message}"))
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
    raw: Any = None,
) -> Plan:
    """Remove children in the reverse of the dependency graph in force (:mod:`d3os_core.teardown`)."""
    deps: Mapping[str, Sequence[str]] = product.default_dependencies()
    with contextlib.suppress(Exception):  # an invalid spec has no graph of its own: the product's
        deps = _deps(parse_spec(raw, product), product)
    return teardown.plan_deletion(
        observed, facts, deps, product.keys, prev_status, generation,
        lambda obj, kind: _owned(obj, kind, who) and not credentials.retained(obj, kind, who.uid),
        lambda kind, name, obj, comp: _ref(kind, name, obj, who, comp),
    )


__all__ = ["WorkloadKind", "plan", "probe_key", "secret_name"]
