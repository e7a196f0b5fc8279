"""One reconcile: cache -> ``d3os_core.plan`` -> carry the plan out. No business rule lives here.

The reconciler reads only its caches (plus a GET of names the plan wants to create, see below), asks
the core what to do, and does exactly that, in this order:

1. finalizer "add" (JSON merge patch of ``metadata.finalizers``, guarded by resourceVersion);
2. ``apply`` in the plan's order with server-side apply (``force``, the operator's field manager). The
   manifests marked ``create`` are first looked up (GETs, all at once): an object the operator does not
   watch may hold the name. If one does, nothing of this plan is carried out: the holder is reported to
   the core as observed (re-read on every later reconcile, so its removal is seen) and the DataService
   is planned again at once;
3. ``delete`` with a uid precondition and foreground propagation (404 and a failed precondition mean
   the object is already gone or replaced: fine);
4. status through the status subresource, only when it differs from the live one;
5. Events on the DataService, queued to the :class:`~d3os_operator.events.EventRecorder` (sent in order
   off the reconcile path, never failing it);
6. finalizer "remove";
7. requeue: at once after applies/deletes (to observe their effect from the updated cache), else as
   the plan says.

Every write's response is written through to the cache, so the next plan never acts on a stale copy of
what the operator itself just wrote.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from lightkube.core.exceptions import ApiError

from d3os_core import api
from d3os_core.times import format_time
from d3os_core.types import Event, Facts, Observed, Plan, PodQuery

from .events import EventRecorder
from .informer import Informer, store_key
from .kube import Kube, api_error_text, kind_info
from .metrics import Metrics
from .probes import ProbeManager

log = logging.getLogger("d3os_operator.reconciler")

ParentKey = tuple[str, str]
"""(namespace, name) of a DataService."""
Planner = Callable[[Mapping[str, Any], Observed, Facts], Plan]
Tracer = Callable[[dict[str, Any]], None]

REFUSALS = (400, 403, 422)
"""API answers that retrying the same request cannot change: named in status, retried with backoff."""
HOLDER_REQUEUE = 0.0
"""Seconds: requeue after finding a name held by an object the operator does not own (plan again now)."""
HOLDER_RECHECK = 10.0
"""Seconds: while a name stays held, re-read the holder at least this often (it may not be watched)."""
POD = kind_info("v1", "Pod")
FIRST_PROBE_GRACE = 2.0
"""Seconds a new check may take to give its first result before a plan is carried out without it."""
MAX_WRITE_STREAK = 25
"""Reconciles in a row that write objects before the reconciler suspects a plan that never converges."""


def fmt_key(key: ParentKey) -> str:
    return f"{key[0]}/{key[1]}"


def utc_now() -> str:
    return format_time(time.time())


def _strip_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def status_differs(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """True when writing ``desired`` would change the live status (null fields count as absent)."""
    live = live or {}
    if desired == live:
        return False
    return bool(_strip_none(dict(desired)) != _strip_none(dict(live)))


@dataclass
class Outcome:
    """What a reconcile did, for the worker and for tests."""

    requeue_after: float | None = None
    applied: int = 0
    deleted: int = 0
    status_written: bool = False
    events: int = 0
    finalizer: str | None = None
    held: list[str] = field(default_factory=list)
    gone: bool = False
    woke_at: float | None = None
    started_step: bool = False
    evicted: int = 0
    """Cached copies dropped after a 404/409 said they are gone (the next plan must not see them)."""

    @property
    def wrote_objects(self) -> bool:
        return bool(self.applied or self.deleted or self.finalizer or self.evicted)


@dataclass(frozen=True)
class Holder:
    api_version: str
    kind: str
    name: str


class Reconciler:
    """See the module docstring."""

    def __init__(
        self,
        kube: Kube,
        parents: Informer,
        owned: Mapping[str, Informer],
        probes: ProbeManager,
        events: EventRecorder,
        *,
        planner: Planner | None = None,
        tracer: Tracer | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        if planner is None:
            from d3os_core import plan as core_plan

            planner = core_plan
        self.kube = kube
        self.parents = parents
        self.owned = dict(owned)
        self.probes = probes
        self.events = events
        self.planner = planner
        self.tracer = tracer
        self.holders: dict[ParentKey, set[Holder]] = {}
        self.refused: dict[ParentKey, dict[tuple[str, str], str]] = {}
        """Applies the API server refused (400/403/422), shown to the core so status names them."""
        self._write_streak: dict[ParentKey, int] = {}
        self._last_error: dict[ParentKey, str] = {}
        self.reconciles = 0

    # -- helpers used by the operator's event handlers ---------------------------------------------------

    def parents_holding(self, namespace: str, kind: str, name: str) -> list[ParentKey]:
        """DataServices that found (kind, name) in ``namespace`` held by someone else."""
        return [
            key
            for key, held in self.holders.items()
            if key[0] == namespace and any(h.kind == kind and h.name == name for h in held)
        ]

    def _trace(self, what: str, key: ParentKey, **fields: Any) -> None:
        if self.tracer is not None:
            self.tracer({"t": time.monotonic(), "what": what, "ds": fmt_key(key), **fields})

    # -- the reconcile -----------------------------------------------------------------------------------

    async def reconcile(self, key: ParentKey, woke_at: float | None = None) -> Outcome:
        """``woke_at``: monotonic time of the event that queued this reconcile (for the step-latency metric)."""
        ns, name = key
        ds = fmt_key(key)
        self.reconciles += 1
        parent = self.parents.get(ns, name)
        if parent is None:
            self.probes.forget(key)
            self.holders.pop(key, None)
            self.refused.pop(key, None)
            self._write_streak.pop(key, None)
            self._last_error.pop(key, None)
            if self.metrics is not None:
                self.metrics.forget(ns, name)
            log.debug("gone", extra={"ds": ds})
            return Outcome(gone=True)

        observed = await self._observe(key, ns)
        facts = Facts(now=utc_now(), secret_seed=secrets.token_urlsafe(32))
        started = time.monotonic()
        plan = self.planner(parent, observed, facts)
        self._trace("plan", key, plan_ms=(time.monotonic() - started) * 1000, applies=len(plan.apply))
        self.probes.ensure(key, plan.probes)
        # A reconcile never waits for a probe: its first result enqueues this DataService again (the probe
        # manager's on_change). A check that has just started gets a short grace before the plan is carried
        # out without it, so the status rests on a result, not on "unknown" (after a restart too) -- but the
        # worker is released at once; a check still silent after the grace shows as "checking …".
        unseen = [r.key for r in plan.probes if r.key not in observed.probes]
        grace_left = self.probes.first_result_grace(key, unseen, FIRST_PROBE_GRACE) if unseen else 0.0
        if grace_left > 0:
            return Outcome(requeue_after=grace_left, woke_at=woke_at)

        if plan.inspect:
            # A component is past its progress deadline: read its pods (by label, only now) so the status
            # can say why (the scheduler's reason, a container's waiting reason), and plan once more.
            pods = await self._pods(key, ns, plan.inspect)
            if pods:
                observed = Observed(objects=observed.objects, probes=observed.probes, refused=observed.refused,
                                    pods=pods)
                started = time.monotonic()
                plan = self.planner(parent, observed, facts)
                self._trace("plan", key, plan_ms=(time.monotonic() - started) * 1000, applies=len(plan.apply),
                            inspected=sorted(pods))

        if self.metrics is not None and plan.status:
            comps = plan.status.get("components") or []
            self.metrics.components(ns, name, {str(c["name"]): bool(c.get("ready")) for c in comps})
        out = Outcome(woke_at=woke_at)
        try:
            parent = await self._execute(key, parent, plan, out)
        except ApiError as e:
            await self._report_api_error(key, parent, e)
            if e.status.code in REFUSALS and self.refused.get(key):
                await self._status_after_refusal(key, parent, facts)
            raise
        self._last_error.pop(key, None)

        # Requeue: after object writes re-plan at once from the written-through cache; holders are
        # re-read soon (they may not be watched); otherwise as the plan says.
        if out.wrote_objects:
            streak = self._write_streak.get(key, 0) + 1
            self._write_streak[key] = streak
            if streak > MAX_WRITE_STREAK:
                log.warning(
                    "plan keeps writing: slowing down",
                    extra={"ds": ds, "streak": streak},
                )
                out.requeue_after = min(30.0, 0.1 * (streak - MAX_WRITE_STREAK))
            else:
                out.requeue_after = 0.0
        else:
            self._write_streak.pop(key, None)
            out.requeue_after = plan.requeue_after
        if out.held:
            out.requeue_after = HOLDER_REQUEUE if out.requeue_after is None else min(out.requeue_after, HOLDER_REQUEUE)
        elif self.holders.get(key):
            out.requeue_after = HOLDER_RECHECK if out.requeue_after is None else min(out.requeue_after, HOLDER_RECHECK)
        return out

    async def _observe(self, key: ParentKey, ns: str) -> Observed:
        objects: dict[tuple[str, str], Mapping[str, Any]] = {}
        for kind, informer in self.owned.items():
            for obj in informer.in_namespace(ns):
                objects[(kind, store_key(obj)[1])] = obj
        held = self.holders.get(key)
        if held:
            for h in sorted(held, key=lambda h: (h.kind, h.name)):
                if (h.kind, h.name) in objects:
                    # now in the cache (it carries our label): the cache tells the core about it
                    held.discard(h)
                    continue
                live = await self.kube.get(h.api_version, h.kind, ns, h.name)
                if live is None:
                    held.discard(h)
                    log.info("name is free again", extra={"ds": fmt_key(key), "obj": f"{h.kind}/{h.name}"})
                else:
                    objects[(h.kind, h.name)] = live
            if not held:
                self.holders.pop(key, None)
        return Observed(objects=objects, probes=self.probes.results(key), refused=dict(self.refused.get(key) or {}))

    async def _pods(
        self, key: ParentKey, ns: str, queries: Sequence[PodQuery]
    ) -> dict[str, tuple[dict[str, Any], ...]]:
        """The pods the plan asked about; a refused or failed list just leaves that component's detail out."""
        out: dict[str, tuple[dict[str, Any], ...]] = {}
        for q in queries:
            try:
                items, _ = await self.kube.list_objects(POD, ns, labels=q.labels)
            except (ApiError, httpx2.HTTPError, OSError) as e:
                log.debug("pods not read", extra={"ds": fmt_key(key), "component": q.component,
                                                  "error": api_error_text(e)})
                continue
            out[q.component] = tuple(items)
        return out

    async def _execute(self, key: ParentKey, parent: dict[str, Any], plan: Plan, out: Outcome) -> dict[str, Any]:
        ds = fmt_key(key)
        ns = key[0]
        meta = parent["metadata"]

        if plan.finalizer == "add":
            finalizers = list(meta.get("finalizers") or [])
            if api.FINALIZER not in finalizers:
                parent = await self.kube.set_finalizers(parent, [*finalizers, api.FINALIZER])
                self.parents.write_through(parent)
                meta = parent["metadata"]
                out.finalizer = "add"
                log.info("finalizer added", extra={"ds": ds, "finalizer": api.FINALIZER})

        # Names the plan wants to create: make sure they are free, all lookups at once.
        holders: dict[int, dict[str, Any] | None] = {}
        creates = [(i, step.manifest) for i, step in enumerate(plan.apply) if step.create]
        if creates:

            async def look(i: int, m: Mapping[str, Any]) -> None:
                holders[i] = await self.kube.get(m["apiVersion"], m["kind"], ns, m["metadata"]["name"])

            try:
                async with anyio.create_task_group() as tg:
                    for i, m in creates:
                        tg.start_soon(look, i, m)
            except BaseExceptionGroup as group:
                # one lookup failed (the API server away, a 429...): raise it as itself, so the worker
                # treats it as the transient error it is rather than as a crash
                leaf: BaseException = group
                while isinstance(leaf, BaseExceptionGroup):
                    leaf = leaf.exceptions[0]
                raise leaf from None

        taken = [(plan.apply[i], obj) for i, obj in sorted(holders.items()) if obj is not None]
        if taken:
            # The plan was made without knowing these holders: carry out none of it (a workload must
            # never start on a stranger's ConfigMap), show them to the core and plan again at once.
            for step, _ in taken:
                m = step.manifest
                kind, name = m["kind"], m["metadata"]["name"]
                self.holders.setdefault(key, set()).add(Holder(m["apiVersion"], kind, name))
                out.held.append(f"{kind}/{name}")
                log.warning(
                    "name already taken: not applying, planning again",
                    extra={"ds": ds, "obj": f"{kind}/{name}", "component": step.component},
                )
            return parent

        for step in plan.apply:
            m = step.manifest
            kind, name = m["kind"], m["metadata"]["name"]
            informer = self.owned.get(kind)
            cached = informer.get(ns, name) if informer is not None and not step.create else None
            if cached is not None:
                adopted = await self.kube.take_over_fields(cached)
                if adopted is not None:
                    log.info("took over hand-edited fields", extra={"ds": ds, "obj": f"{kind}/{name}"})
            self._trace("apply", key, kind=kind, name=name, component=step.component, create=step.create)
            t0 = time.monotonic()
            if step.create and not out.started_step and out.woke_at is not None and self.metrics is not None:
                out.started_step = True  # the first object of a component not there yet: a rollout step begins
                self.metrics.step_started(t0 - out.woke_at)
            try:
                live = await self.kube.apply(m)
            except ApiError as e:
                if e.status.code in REFUSALS:
                    self.refused.setdefault(key, {})[(kind, name)] = api_error_text(e)
                raise
            if self.refused.get(key, {}).pop((kind, name), None) is not None and not self.refused[key]:
                self.refused.pop(key, None)
            if informer is not None:
                informer.write_through(live)
            out.applied += 1
            log.debug(  # INFO has the step's Event ("Deploying: applying …"); this is per object
                "applied",
                extra={
                    "ds": ds,
                    "obj": f"{kind}/{name}",
                    "component": step.component,
                    "create": step.create,
                    "ms": round((time.monotonic() - t0) * 1000, 1),
                },
            )

        for ref in plan.delete:
            informer = self.owned.get(ref.kind)
            try:
                result = await self.kube.delete(ref)
            except ApiError as e:
                if e.status.code == 409:  # uid precondition failed: a namesake replaced it, leave it
                    if informer is not None and ref.uid and informer.evict(ns, ref.name, ref.uid):
                        out.evicted += 1  # the cache still had the replaced one: plan again without it
                    log.info(
                        "delete skipped: object was replaced",
                        extra={"ds": ds, "obj": f"{ref.kind}/{ref.name}", "uid": ref.uid},
                    )
                    continue
                raise
            out.deleted += 1
            self._trace("delete", key, kind=ref.kind, name=ref.name, component=ref.component)
            if informer is not None and result is not None and (result.get("metadata") or {}).get("deletionTimestamp"):
                informer.write_through(result)  # still there, finalizing: show the core it is going
            elif informer is not None and ref.uid and informer.evict(ns, ref.name, ref.uid):
                out.evicted += 1  # gone already (404) or at once: the cache must not wait for the DELETED event
            log.info(
                "deleted" if result is not None else "delete: already gone",
                extra={
                    "ds": ds,
                    "obj": f"{ref.kind}/{ref.name}",
                    "component": ref.component,
                    "uid": ref.uid,
                },
            )

        if plan.status and status_differs(plan.status, parent.get("status")):
            parent = await self.kube.apply_status(parent, plan.status)
            self.parents.write_through(parent)
            out.status_written = True
            self._trace("status", key, phase=plan.status.get("phase"), message=plan.status.get("message"))
            log.debug(
                "status written",
                extra={"ds": ds, "phase": plan.status.get("phase"), "detail": plan.status.get("message")},
            )

        for event in plan.events:
            self.events.record(parent, event)
            out.events += 1

        if plan.finalizer == "remove":
            finalizers = list(parent["metadata"].get("finalizers") or [])
            if api.FINALIZER in finalizers:
                try:
                    parent = await self.kube.set_finalizers(parent, [f for f in finalizers if f != api.FINALIZER])
                    self.parents.write_through(parent)
                except ApiError as e:
                    if e.status.code != 404:
                        raise
                out.finalizer = "remove"
                log.info("finalizer removed", extra={"ds": ds, "finalizer": api.FINALIZER})
        return parent

    async def _status_after_refusal(self, key: ParentKey, parent: Mapping[str, Any], facts: Facts) -> None:
        """Plan again with the refusal observed and write just that status, so kubectl shows why."""
        current = self.parents.get(*key) or parent
        observed = await self._observe(key, key[0])
        plan = self.planner(current, observed, facts)
        if plan.status and status_differs(plan.status, current.get("status")):
            try:
                written = await self.kube.apply_status(dict(current), plan.status)
            except ApiError as e:
                log.warning("status not written", extra={"ds": fmt_key(key), "error": api_error_text(e)})
                return
            self.parents.write_through(written)

    async def _report_api_error(self, key: ParentKey, parent: Mapping[str, Any], e: ApiError) -> None:
        """Record a request the API refused (invalid, forbidden) as a Warning Event, once per message.

        Transient failures (conflicts, timeouts, server errors) are only retried with backoff.
        """
        if e.status.code not in (400, 403, 404, 422):
            return
        message = api_error_text(e)
        if self._last_error.get(key) == message:
            return
        self._last_error[key] = message
        self.events.record(parent, Event("Warning", "RequestRefused", message[:1024]))
