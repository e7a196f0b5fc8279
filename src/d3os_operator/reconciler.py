"""One reconcile: cache -> ``d3os_core.plan`` -> carry the plan out. No business rule lives here.

It speaks controller-runtime's contract: :meth:`Reconciler.reconcile` returns a
:class:`~d3os_operator.outcome.Result` (requeue after some seconds, or not) or raises a
:class:`~d3os_operator.outcome.TransientError` or :class:`~d3os_operator.outcome.RefusedError`, each with its
own behaviour in the worker (:mod:`d3os_operator.outcome`) -- like controller-runtime's ``reconcile.Result``
and kopf's ``TemporaryError``. What an API answer means is :func:`d3os_operator.apierrors.classify`'s to say.
Statuses take one path, :class:`d3os_operator.statuswriter.StatusPath`.

One pass reads only the caches, asks the core for a plan and carries it out, in this order:

1. finalizer "add" (JSON merge patch of ``metadata.finalizers``, guarded by resourceVersion), in flight
   together with the first wave of applies (see :func:`d3os_core.waves.apply_waves`): every object the
   plan creates carries an ownerReference (or is one the DataService leaves behind anyway: a claim, its
   credentials), so a crash between the two leaves nothing the garbage collector would not clean up; if
   the patch fails, no later wave is sent;
2. ``apply`` with server-side apply (``force``, the operator's field manager), in waves
   (the core's :func:`d3os_core.waves.apply_waves`): the plan's order, except that a component's
   ConfigMaps, Services and Secrets -- which refer to no other object -- are sent at once, one round trip
   for all of them, before the rest of that component in the plan's order. A wave starts only when the
   one before it has succeeded. A
   manifest marked ``create`` (not in the cache) is sent as a *create-only* apply: it creates the object or
   fails with 409 when anything holds the name -- one request, no GET first. A name held by an object the
   operator does not watch is read (GET, only then) and reported to the core as observed (re-read on later
   passes, so its removal is seen); nothing more of that plan is carried out (the wave in flight
   finishes, no later wave starts);
3. ``delete`` with a uid precondition and foreground propagation (404 and a failed precondition mean
   the object is already gone or replaced: fine);
4. status through the status subresource, only when it differs from the live one;
5. Events on the DataService, queued to the :class:`~d3os_operator.events.EventRecorder` (sent and
   aggregated off the reconcile path, never failing it);
6. finalizer "remove".

A pass plans once, and again only when the plan cannot be carried out as it is (bounded by
:data:`MAX_PLANS`): the plan asked for pods to read, a name it wanted was held, or the API server refused
an apply (then only the status that names the refusal is written). Every write's response is written
through to the cache, so the next plan never acts on a stale copy of what the operator itself just wrote.
What the shell remembers about one DataService between passes is one :class:`ParentState`.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from lightkube.core.exceptions import ApiError

from d3os_core import api, upgrades
from d3os_core.planner import plan as core_plan
from d3os_core.product import ProductDef
from d3os_core.statusdiff import progressing, status_differs, step_boundary
from d3os_core.times import format_time
from d3os_core.types import Apply, Event, Facts, ObjKey, Observed, Plan, PodQuery
from d3os_core.waves import apply_waves

from .apierrors import Answer, classify, is_answer
from .events import EventRecorder
from .informer import Informer, store_key
from .kube import Kube, api_error_text, kind_info
from .metrics import Metrics
from .outcome import RefusedError, Result, TransientError
from .parents import ParentCaches, ParentKey, fmt_key
from .probes import ProbeManager
from .products import installed as installed_products
from .revisiondata import RevisionData
from .statuswriter import StatusPath

log = logging.getLogger("d3os_operator.reconciler")

Planner = Callable[[Mapping[str, Any], Observed, Facts], Plan]
"""A planner of one product's instances (tests replace the core's ``plan`` with one)."""
Tracer = Callable[[dict[str, Any]], None]

HOLDER_RECHECK = 10.0
"""Seconds: while a name stays held, re-read the holder at least this often (it may not be watched)."""
POD = kind_info("v1", "Pod")
FIRST_PROBE_GRACE = 2.0
"""Seconds a new check may take to give its first result before a plan is carried out without it."""
MAX_WRITE_STREAK = 25
"""Reconciles in a row that write objects before the reconciler suspects a plan that never converges."""
PROGRESS_STATUS_INTERVAL = 10.0
"""Seconds between two status writes that change only progress text (see :func:`step_boundary`)."""
UPGRADE_RECHECK = 2.0
"""Seconds between looks at an instance held back by the upgrade cap (a slot frees when another is Ready)."""
MAX_PLANS = 4
"""Plans in one pass at most: the first, and re-plans with what carrying it out revealed (pods, a holder,
a refusal). Past it the DataService is queued again at once."""


def utc_now() -> str:
    return format_time(time.time())


@dataclass(frozen=True)
class Holder:
    api_version: str
    kind: str
    name: str


@dataclass
class ParentState:
    """What the shell remembers about one DataService between passes (dropped as one when it is gone)."""

    holders: set[Holder] = field(default_factory=set)
    """Names the plan wanted that an object the operator does not own holds."""
    refused: dict[ObjKey, str] = field(default_factory=dict)
    """Applies the API server refused (400/403/422), shown to the core so status names them."""
    write_streak: int = 0
    """Passes in a row that wrote objects (a plan that never converges is slowed down)."""
    last_error: str | None = None
    """The last refusal reported as a Warning Event (each distinct message once)."""
    status_at: float = -PROGRESS_STATUS_INTERVAL
    """Monotonic time of the last status write."""
    status_in_pass: bool = False
    """A status written in the background failed: write the next one within the pass (so a failure again
    takes the worker's backoff) until one succeeds."""


@dataclass
class _Pass:
    """What one pass did (for the requeue decision and the step-latency metric)."""

    woke_at: float | None = None
    applied: int = 0
    deleted: int = 0
    finalizer: bool = False
    evicted: int = 0
    """Cached copies dropped after a 404/409 said they are gone (the next plan must not see them)."""
    started_step: bool = False
    status_due: float | None = None
    """Seconds until a status that changed only progress text is written (None: nothing held back)."""

    @property
    def wrote_objects(self) -> bool:
        return bool(self.applied or self.deleted or self.finalizer or self.evicted)


class _NameHeld(Exception):
    """Create-only applies found names taken: each holder, read after the 409 (None if gone since)."""

    def __init__(self, held: Mapping[Holder, dict[str, Any] | None]) -> None:
        super().__init__(", ".join(f"{h.kind}/{h.name}" for h in held))
        self.held = dict(held)


class Reconciler:
    """See the module docstring."""

    def __init__(
        self,
        kube: Kube,
        parents: ParentCaches,
        owned: Mapping[str, Informer],
        probes: ProbeManager,
        events: EventRecorder,
        *,
        products: Sequence[ProductDef] = (),
        max_product_upgrades: int | None = None,
        planner: Planner | None = None,
        tracer: Tracer | None = None,
        metrics: Metrics | None = None,
        background_status: bool = False,
    ) -> None:
        """``background_status``: statuses go to a :class:`StatusWriter` (whose :meth:`StatusWriter.run` the
        caller runs, and whose failures :attr:`on_retry` hears about) instead of being written in the pass."""
        self.metrics = metrics
        self.products = {p.names.kind: p for p in (products or installed_products())}
        """The product of each kind served, for the core's planner."""
        self.kube = kube
        self.parents = parents
        self.owned = dict(owned)
        self.probes = probes
        self.events = events
        self.revision_data = RevisionData(kube)
        self.planner = planner
        """A replacement of the core's planner (tests); None: the core's, with the instance's product."""
        self.max_product_upgrades = max_product_upgrades
        self.upgrading: set[ParentKey] = set()
        """Instances rolling to a new product version (:mod:`d3os_core.upgrades`): at most the cap at once."""
        self.tracer = tracer
        self.states: dict[ParentKey, ParentState] = {}
        self.reconciles = 0
        self.status = StatusPath(kube, parents, background=background_status,
                                 on_written=self._status_written, on_failure=self._status_failed)
        """The one path every status of an instance takes (its background writer's ``run`` the caller runs)."""
        self.on_retry: Callable[[ParentKey], None] | None = None
        """Called when a DataService must be reconciled again with backoff (its status was not written)."""

    # -- helpers used by the operator's event handlers ---------------------------------------------------

    def parents_holding(self, namespace: str, kind: str, name: str) -> list[ParentKey]:
        """DataServices that found (kind, name) in ``namespace`` held by someone else."""
        return [
            key
            for key, state in self.states.items()
            if key[0] == namespace and any(h.kind == kind and h.name == name for h in state.holders)
        ]

    def forget(self, key: ParentKey) -> None:
        """The DataService is gone: drop everything kept about it."""
        self.states.pop(key, None)
        self.upgrading.discard(key)
        self.status.drop(key)
        self.probes.forget(key)
        self.revision_data.forget(key)
        if self.metrics is not None:
            self.metrics.forget(*key)

    def _parent(self, key: ParentKey) -> dict[str, Any] | None:
        """The cached DataService, with the status last handed to the :class:`StatusWriter` if its write is
        not answered yet: what a plan must take as the live status."""
        parent = self.parents.get(*key)
        pending = self.status.latest(key)
        if parent is None or pending is None:
            return parent
        return {**parent, "status": pending}

    async def flush_status(self, key: ParentKey) -> None:
        """Until the statuses handed over for ``key`` are written (or dropped after a failure)."""
        await self.status.flush(key)

    def _status_written(self, key: ParentKey, status: Mapping[str, Any]) -> None:
        """A status was written (in the pass, by the background writer, or by containment): trace and log it,
        and set the component metrics when nothing newer is on its way."""
        self._trace("status", key, phase=status.get("phase"), message=status.get("message"))
        log.debug("status written", extra={"ds": fmt_key(key), "phase": status.get("phase"),
                                           "detail": status.get("message")})
        if self.metrics is not None and key in self.states and not self.status.busy(key):
            self._component_metrics(key, status)

    def _status_failed(self, key: ParentKey, error: BaseException) -> None:
        state = self.states.get(key)
        if state is None:
            return  # gone meanwhile
        state.status_in_pass = True
        log.warning("status not written, retrying", extra={"ds": fmt_key(key), "error": api_error_text(error)})
        if self.on_retry is not None:
            self.on_retry(key)

    def _component_metrics(self, key: ParentKey, status: Mapping[str, Any]) -> None:
        assert self.metrics is not None
        comps = status.get("components") or []
        self.metrics.components(key[0], key[1], {str(c["name"]): bool(c.get("ready")) for c in comps}, key[2])
        conds = [c for c in status.get("conditions") or [] if isinstance(c, Mapping) and "type" in c]
        self.metrics.conditions(key[0], key[1], {str(c["type"]): c.get("status") == "True" for c in conds}, key[2])

    def _trace(self, what: str, key: ParentKey, **fields: Any) -> None:
        if self.tracer is not None:
            self.tracer({"t": time.monotonic(), "what": what, "ds": fmt_key(key), **fields})

    # -- the reconcile -----------------------------------------------------------------------------------

    async def reconcile(self, key: ParentKey, woke_at: float | None = None) -> Result:
        """One pass. ``woke_at``: monotonic time of the event that queued it (for the step-latency metric)."""
        self.reconciles += 1
        try:
            return await self._reconcile(key, woke_at)
        except ApiError as e:
            text = api_error_text(e)
            raise (RefusedError(text) if classify(e) is Answer.REFUSED else TransientError(text)) from e
        except (httpx2.HTTPError, OSError) as e:
            raise TransientError(api_error_text(e)) from e

    async def _reconcile(self, key: ParentKey, woke_at: float | None) -> Result:
        parent = self._parent(key)
        if parent is None:
            self.forget(key)
            log.debug("gone", extra={"ds": fmt_key(key)})
            return Result()
        if not self._upgrade_admitted(key, parent):
            return Result(requeue_after=UPGRADE_RECHECK)
        state = self.states.setdefault(key, ParentState())
        facts = Facts(now=utc_now(), secret_seed=secrets.token_urlsafe(32))
        observed = await self._observe(key, state)
        done = _Pass(woke_at=woke_at)
        refusal: ApiError | None = None
        for attempt in range(MAX_PLANS):
            plan = self._plan(key, parent, observed, facts)
            if refusal is not None:
                # planned again with the refusal observed: write just that status, so kubectl shows why
                try:
                    await self._write_status(key, state, parent, plan, None)
                except ApiError as e:
                    log.warning("status not written", extra={"ds": fmt_key(key), "error": api_error_text(e)})
                raise refusal
            if attempt == 0:
                self.probes.ensure(key, plan.probes)
                # A reconcile never waits for a probe: its first result enqueues this DataService again (the
                # probe manager's on_change). A check that has just started gets a short grace before the plan
                # is carried out without it, so the status rests on a result, not on "unknown" (after a
                # restart too) -- but the worker is released at once; a check still silent after the grace
                # shows as "checking …".
                unseen = [r.key for r in plan.probes if r.key not in observed.probes]
                grace_left = self.probes.first_result_grace(key, unseen, FIRST_PROBE_GRACE) if unseen else 0.0
                if grace_left > 0:
                    return Result(requeue_after=grace_left)
            if plan.inspect and not observed.pods:
                # A component is past its progress deadline: read its pods (by label, only now) so the status
                # can say why (the scheduler's reason, a container's waiting reason), and plan once more.
                pods = await self._pods(key, plan.inspect)
                if pods:
                    observed = dataclasses.replace(observed, pods=pods)
                    continue
            try:
                parent = await self._execute(key, state, parent, plan, done)
            except _NameHeld as held:
                # The plan was made without knowing these holders: nothing more of it is carried out (a workload
                # must never start on a stranger's ConfigMap); show the holders to the core and plan again.
                found = {h: live for h, live in held.held.items() if live is not None}
                state.holders.update(found)
                for h in held.held:
                    log.warning("name already taken: not applying, planning again",
                                extra={"ds": fmt_key(key), "obj": f"{h.kind}/{h.name}"})
                parent = self._parent(key) or parent
                observed = await self._observe(key, state, found or None)
                continue
            except ApiError as e:
                await self._report_api_error(key, state, parent, e)
                if classify(e) is Answer.REFUSED and state.refused and attempt + 1 < MAX_PLANS:
                    refusal = e
                    parent = self._parent(key) or parent
                    observed = await self._observe(key, state)
                    continue
                raise
            break
        else:
            return Result(requeue_after=0.0)  # still learning (a holder per plan): look again at once
        if self.metrics is not None and plan.status and not self.status.busy(key):
            # the metric never runs ahead of the status written (else the status writer sets it once written)
            self._component_metrics(key, plan.status)
        state.last_error = None
        if not progressing(plan.status):
            self.events.settle(parent)  # complete or stalled: its Events' counts are written now
        return Result(requeue_after=self._requeue_after(key, state, plan, done))

    def _upgrade_admitted(self, key: ParentKey, parent: Mapping[str, Any]) -> bool:
        """Hold an instance back while --max-product-upgrades others are rolling to a new product version."""
        product = self.products.get(key[2])
        going = bool((parent.get("metadata") or {}).get("deletionTimestamp"))
        if product is None or going or not upgrades.upgrading(parent.get("status"), product.version):
            self.upgrading.discard(key)
            return True
        if not upgrades.admit(key, self.upgrading, self.max_product_upgrades):
            self._trace("upgrade-held", key, upgrading=len(self.upgrading))
            return False
        if key not in self.upgrading:
            self.upgrading.add(key)
            log.info("upgrading", extra={"ds": fmt_key(key), "version": product.version,
                                         "from": (parent.get("status") or {}).get("productVersion")})
        return True

    def _plan(self, key: ParentKey, parent: Mapping[str, Any], observed: Observed, facts: Facts) -> Plan:
        started = time.monotonic()
        plan = (self.planner(parent, observed, facts) if self.planner is not None
                else core_plan(parent, observed, facts, self.products[key[2]]))
        if self.tracer is not None:
            extra = {"inspected": sorted(observed.pods)} if observed.pods else {}
            self._trace("plan", key, plan_ms=(time.monotonic() - started) * 1000, applies=len(plan.apply), **extra)
        return plan

    def _requeue_after(self, key: ParentKey, state: ParentState, plan: Plan, done: _Pass) -> float | None:
        """After object writes, plan again at once from the written-through cache; holders are re-read soon
        (they may not be watched); otherwise as the plan says."""
        after: float | None
        if done.wrote_objects:
            state.write_streak += 1
            if state.write_streak > MAX_WRITE_STREAK:
                log.warning("plan keeps writing: slowing down",
                            extra={"ds": fmt_key(key), "streak": state.write_streak})
                after = min(30.0, 0.1 * (state.write_streak - MAX_WRITE_STREAK))
            else:
                after = 0.0
        else:
            state.write_streak = 0
            after = plan.requeue_after
        if state.holders:
            after = HOLDER_RECHECK if after is None else min(after, HOLDER_RECHECK)
        if done.status_due is not None:
            after = done.status_due if after is None else min(after, done.status_due)
        return after

    async def _observe(
        self, key: ParentKey, state: ParentState, fetched: Mapping[Holder, dict[str, Any]] | None = None
    ) -> Observed:
        """The cache's objects of the namespace, holders of wanted names (read again unless ``fetched``)."""
        ns = key[0]
        objects: dict[ObjKey, Mapping[str, Any]] = {}
        for kind, informer in self.owned.items():
            for obj in informer.in_namespace(ns):
                objects[(kind, store_key(obj)[1])] = obj
        for h in sorted(state.holders, key=lambda h: (h.kind, h.name)):
            if (h.kind, h.name) in objects:
                # now in the cache (it carries our label): the cache tells the core about it
                state.holders.discard(h)
                continue
            live = (fetched or {}).get(h)
            if live is None:
                live = await self.kube.get(h.api_version, h.kind, ns, h.name)
            if live is None:
                state.holders.discard(h)
                log.info("name is free again", extra={"ds": fmt_key(key), "obj": f"{h.kind}/{h.name}"})
            else:
                objects[(h.kind, h.name)] = live
        await self.revision_data.fill(key, self._parent(key), objects)  # history is cached without its data
        return Observed(objects=objects, probes=self.probes.results(key), refused=dict(state.refused))

    async def _pods(self, key: ParentKey, queries: Sequence[PodQuery]) -> dict[str, tuple[dict[str, Any], ...]]:
        """The pods the plan asked about; a refused or failed list just leaves that component's detail out."""
        out: dict[str, tuple[dict[str, Any], ...]] = {}
        for q in queries:
            try:
                items, _ = await self.kube.list_objects(POD, key[0], labels=q.labels)
            except (ApiError, httpx2.HTTPError, OSError) as e:
                log.debug("pods not read", extra={"ds": fmt_key(key), "component": q.component,
                                                  "error": api_error_text(e)})
                continue
            out[q.component] = tuple(items)
        return out

    async def _execute(
        self, key: ParentKey, state: ParentState, parent: dict[str, Any], plan: Plan, done: _Pass
    ) -> dict[str, Any]:
        ds = fmt_key(key)
        ns = key[0]
        meta = parent["metadata"]

        add_finalizer = plan.finalizer == "add" and api.FINALIZER not in (meta.get("finalizers") or [])
        if add_finalizer and self.status.busy(key):
            # the patch is guarded by the resourceVersion, which a status write in flight is about to change
            await self.status.flush(key)
            parent = self._parent(key) or parent
            meta = parent["metadata"]
        waves = apply_waves(plan.apply)
        for i, wave in enumerate(waves or ([[]] if add_finalizer else [])):
            finalizer: dict[str, Any] | BaseException | None = None
            if i == 0 and add_finalizer:
                # in flight with the first wave (see the module docstring); no later wave without it
                finalizers = [*(meta.get("finalizers") or []), api.FINALIZER]
                results, finalizer = await self._send_wave(key, state, wave, done,
                                                           self.kube.set_finalizers(parent, finalizers))
            else:
                results, _ = await self._send_wave(key, state, wave, done)
            if isinstance(finalizer, dict):
                parent = finalizer
                self.parents.write_through(parent)
                meta = parent["metadata"]
                done.finalizer = True
                log.info("finalizer added", extra={"ds": ds, "finalizer": api.FINALIZER})
            await self._wave_done(key, state, wave, results, done)
            if isinstance(finalizer, BaseException):
                raise finalizer

        for ref in plan.delete:
            informer = self.owned.get(ref.kind)
            try:
                result = await self.kube.delete(ref)
            except ApiError as e:
                if classify(e) is Answer.CONFLICT:  # uid precondition failed: a namesake replaced it, leave it
                    if informer is not None and ref.uid and informer.evict(ns, ref.name, ref.uid):
                        done.evicted += 1  # the cache still had the replaced one: plan again without it
                    log.info(
                        "delete skipped: object was replaced",
                        extra={"ds": ds, "obj": f"{ref.kind}/{ref.name}", "uid": ref.uid},
                    )
                    continue
                raise
            done.deleted += 1
            self._trace("delete", key, kind=ref.kind, name=ref.name, component=ref.component)
            if informer is not None and result is not None and (result.get("metadata") or {}).get("deletionTimestamp"):
                informer.write_through(result)  # still there, finalizing: show the core it is going
            elif informer is not None and ref.uid and informer.evict(ns, ref.name, ref.uid):
                done.evicted += 1  # gone already (404) or at once: the cache must not wait for the DELETED event
            log.info(
                "deleted" if result is not None else "delete: already gone",
                extra={
                    "ds": ds,
                    "obj": f"{ref.kind}/{ref.name}",
                    "component": ref.component,
                    "uid": ref.uid,
                },
            )

        parent = await self._write_status(key, state, parent, plan, done)

        for event in plan.events:
            self.events.record(parent, event)

        if plan.finalizer == "remove":
            if self.status.busy(key):
                await self.status.flush(key)  # its last status first; then the guard's resourceVersion
                parent = self._parent(key) or parent
            finalizers = list(parent["metadata"].get("finalizers") or [])
            if api.FINALIZER in finalizers:
                try:
                    parent = await self.kube.set_finalizers(parent, [f for f in finalizers if f != api.FINALIZER])
                    self.parents.write_through(parent)
                except ApiError as e:
                    if classify(e) is not Answer.GONE:
                        raise
                done.finalizer = True
                log.info("finalizer removed", extra={"ds": ds, "finalizer": api.FINALIZER})
        return parent

    async def _send_wave(
        self, key: ParentKey, state: ParentState, wave: Sequence[Apply], done: _Pass,
        also: Awaitable[dict[str, Any]] | None = None,
    ) -> tuple[list[dict[str, Any] | BaseException], dict[str, Any] | BaseException | None]:
        """Send one wave's applies at once (and ``also``, the finalizer patch); every request runs to its
        answer, whatever the others' (an error is returned, not raised: no request is cut off half-way)."""
        ns = key[0]
        results: list[dict[str, Any] | BaseException] = [RuntimeError("not sent")] * len(wave)
        extra: list[dict[str, Any] | BaseException | None] = [None]

        async def one(i: int, step: Apply) -> None:
            m = step.manifest
            try:
                informer = self.owned.get(m["kind"])
                cached = informer.get(ns, m["metadata"]["name"]) if informer is not None and not step.create else None
                if cached is not None:
                    adopted = await self.kube.take_over_fields(cached)
                    if adopted is not None:
                        log.info("took over hand-edited fields",
                                 extra={"ds": fmt_key(key), "obj": f"{m['kind']}/{m['metadata']['name']}"})
                results[i] = await self.kube.apply(m, create_only=step.create)
            except Exception as e:  # handed back: the pass raises it after the wave
                results[i] = e

        async def other(aw: Awaitable[dict[str, Any]]) -> None:
            try:
                extra[0] = await aw
            except Exception as e:
                extra[0] = e

        for step in wave:
            m = step.manifest
            self._trace("apply", key, kind=m["kind"], name=m["metadata"]["name"], component=step.component,
                        create=step.create)
            if step.create and not done.started_step and done.woke_at is not None and self.metrics is not None:
                done.started_step = True  # the first object of a component not there yet: a rollout step begins
                self.metrics.step_started(time.monotonic() - done.woke_at)
        t0 = time.monotonic()
        if len(wave) == 1 and also is None:
            await one(0, wave[0])  # the common case: no task group
        else:
            async with anyio.create_task_group() as tg:
                if also is not None:
                    tg.start_soon(other, also)
                for i, step in enumerate(wave):
                    tg.start_soon(one, i, step)
        ms = round((time.monotonic() - t0) * 1000, 1)
        for step in wave:
            log.debug(  # INFO has the step's Event ("Deploying: applying …"); this is per object
                "applied",
                extra={"ds": fmt_key(key), "obj": f"{step.manifest['kind']}/{step.manifest['metadata']['name']}",
                       "component": step.component, "create": step.create, "ms": ms},
            )
        return results, extra[0]

    async def _wave_done(
        self, key: ParentKey, state: ParentState, wave: Sequence[Apply],
        results: Sequence[dict[str, Any] | BaseException], done: _Pass,
    ) -> None:
        """Take in one wave's answers in the plan's order: write every object through to the cache, note
        refusals; then raise what stops the pass -- the names found held (all of them, read after their
        409), else the first error."""
        ns = key[0]
        held: dict[Holder, dict[str, Any] | None] = {}
        error: BaseException | None = None
        for step, result in zip(wave, results, strict=True):
            m = step.manifest
            kind, name = m["kind"], m["metadata"]["name"]
            if isinstance(result, BaseException):
                if step.create and is_answer(result, Answer.CONFLICT):
                    h = Holder(m["apiVersion"], kind, name)
                    held[h] = await self.kube.get(m["apiVersion"], kind, ns, name)
                    continue
                if is_answer(result, Answer.REFUSED):
                    state.refused[(kind, name)] = api_error_text(result)
                error = error or result
                continue
            state.refused.pop((kind, name), None)
            informer = self.owned.get(kind)
            if informer is not None:
                informer.write_through(result)
            done.applied += 1
        if held:
            raise _NameHeld(held)
        if error is not None:
            raise error

    async def _write_status(
        self, key: ParentKey, state: ParentState, parent: dict[str, Any], plan: Plan, done: _Pass | None
    ) -> dict[str, Any]:
        """Write the plan's status if it differs: at once at a step boundary, else (progress text only) at
        most every :data:`PROGRESS_STATUS_INTERVAL` seconds (``done`` is told when, to requeue then).

        With a background writer (:class:`~d3os_operator.statuswriter.StatusPath`), the status is handed to it
        and the pass goes on; without ``done`` (the status that names a refusal) or after a background write
        failed, it is written here, in order after what was handed over. Returns the instance as the pass is to
        see it from now on."""
        if not plan.status or not status_differs(plan.status, parent.get("status")):
            return parent
        wait = state.status_at + PROGRESS_STATUS_INTERVAL - time.monotonic()
        if done is not None and wait > 0 and not step_boundary(plan.status, parent.get("status")):
            done.status_due = wait
            return parent
        if done is not None and not state.status_in_pass:
            handed = self.status.hand_over(key, parent, plan.status)
            if handed is not None:
                state.status_at = time.monotonic()
                return handed
        parent = await self.status.write_now(key, parent, plan.status)
        state.status_in_pass = False
        state.status_at = time.monotonic()
        return parent

    async def _report_api_error(self, key: ParentKey, state: ParentState, parent: Mapping[str, Any],
                                e: ApiError) -> None:
        """Record a request the API refused (invalid, forbidden) as a Warning Event, once per message.

        Transient failures (conflicts, timeouts, server errors) are only retried with backoff.
        """
        if classify(e) not in (Answer.REFUSED, Answer.GONE):
            return
        message = api_error_text(e)
        if state.last_error == message:
            return
        state.last_error = message
        self.events.record(parent, Event("Warning", "RequestRefused", message[:1024]))
