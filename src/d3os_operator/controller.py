"""The running operator: informers feed a work queue, workers reconcile, probes feed back.

Wiring, declared in :data:`WATCHES` (controller-runtime's ``For(DataService).Owns(...)``):

* ``For`` DataServices (all of them in the watched namespaces): an event enqueues ``(namespace, name)``;
* ``Owns`` each owned kind, filtered by ``app.kubernetes.io/managed-by=d3os-operator`` and (but for
  claims and Secrets) by an ownerReference to a DataService: an event enqueues the DataService named by the
  object's ownerReference (and by its instance label), plus any DataService that found that name held by
  someone else; informers store objects without managedFields (:mod:`d3os_operator.cachefilter`);
* the probe manager enqueues a DataService when one of its third-party checks changes result;
* statuses are written by the reconciler's :class:`~d3os_operator.statuswriter.StatusWriter` in a task of
  their own, so a pass never waits for one (a failed write queues its DataService again, with backoff);
* N workers take keys from the queue; a key is never reconciled by two workers at once. The worker alone
  maps a reconcile's answer onto the queue (:mod:`d3os_operator.outcome`): a
  :class:`~d3os_operator.outcome.Result` becomes a timed requeue (or none), a transient error a retry with
  exponential backoff, a refusal a steady retry every :data:`~d3os_operator.outcome.REFUSED_RETRY` seconds,
  anything else is contained (:mod:`d3os_operator.containment`) and retried with backoff.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import anyio.abc

from d3os_core import api
from d3os_core.probe_policy import ProbePolicy
from d3os_core.product import ProductDef
from d3os_core.types import ProbeResult

from .cachefilter import keep_for, strip, transform_for
from .containment import report_reconcile_error
from .events import EventRecorder
from .informer import Informer, store_key
from .kube import OWNED, KindInfo, Kube, product_kind
from .metrics import Metrics
from .outcome import REFUSED_RETRY, RefusedError, TransientError
from .parents import ParentCaches, ParentKey, fmt_key, parent_key, stamped
from .probe_gate import ProbeBudget, ProbeGate
from .probes import ProbeManager
from .products import installed as installed_products
from .reconciler import Planner, Reconciler, Tracer
from .sharding import LabelSelector
from .workqueue import WorkQueue

log = logging.getLogger("d3os_operator.controller")

REPORT_TIMEOUT = 10.0
"""Seconds a worker spends at most writing a crashed reconcile's error into its status."""


@dataclass
class Settings:
    """Tunables of a running operator (the CLI's flags)."""

    namespaces: Sequence[str] | None = None
    """Namespaces to watch; None or empty = all."""
    workers: int = 4
    resync_period: float = 600.0
    """Seconds between re-deliveries of every DataService (a safety net; progress is event driven)."""
    watch_timeout: int = 240
    """Seconds each watch request asks the server to keep it open (jittered)."""
    reconcile_timeout: float = 120.0
    backoff_base: float = 0.05
    backoff_max: float = 60.0
    probe_policy: ProbePolicy | None = None
    """Where third-party probes may connect (None: the default policy); the API server's and the
    operator's own addresses are added at start (:mod:`d3os_operator.probe_targets`)."""
    watch_label_selector: LabelSelector | None = None
    """Only DataServices matching it are listed, watched and reconciled (a shard: :mod:`d3os_operator.sharding`)."""
    max_product_upgrades: int | None = 5
    """Instances rolling to a new product version at once, at most (None: no cap; see d3os_core.upgrades)."""
    probe_budget: ProbeBudget | None = None
    """The probes' share of the operator (:mod:`d3os_operator.probe_gate`; None: its defaults)."""
    operator_namespace: str | None = None
    """Whose Services, EndpointSlices and Pods the probe policy protects (None: ``POD_NAMESPACE`` or the
    service account's namespace in a cluster; none outside)."""


@dataclass(frozen=True)
class Watch:
    """One informer of the controller: ``For`` the reconciled kind (an event queues the object itself) or
    ``Owns`` a kind of its children (an event queues the owning DataService)."""

    role: Literal["For", "Owns"]
    kind: KindInfo


def watches(products: Sequence[ProductDef]) -> tuple[Watch, ...]:
    """What the operator watches: For(each product's kind).Owns(every owned kind) -- fixed at start."""
    return (*(Watch("For", product_kind(p.names)) for p in products), *(Watch("Owns", info) for info in OWNED))


def product_labels(products: Sequence[ProductDef]) -> dict[str, str]:
    """The product label value of each product's children ("" for DataService's: they carry none) -> kind."""
    return {(p.name if p.selector_names_product else ""): p.names.kind for p in products}


def owners_of(obj: Mapping[str, Any], by_label: Mapping[str, str]) -> list[ParentKey]:
    """Instances an owned object points at: ownerReferences to a served kind, the instance and product labels.

    ``by_label``: :func:`product_labels` of the products served."""
    ns, _ = store_key(obj)
    meta = obj.get("metadata") or {}
    kinds = set(by_label.values())
    out: list[ParentKey] = []
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") in kinds and str(ref.get("apiVersion", "")).startswith(api.GROUP + "/"):
            out.append((ns, str(ref.get("name")), str(ref["kind"])))
    instance = api.owner_instance(obj)
    kind = by_label.get(str(((meta.get("labels") or {}).get(api.LABEL_PRODUCT)) or ""))
    if instance and kind and (ns, instance, kind) not in out:
        out.append((ns, instance, kind))
    return out


class Operator:
    """See the module docstring. ``await Operator(kube).run()`` runs until cancelled."""

    def __init__(
        self,
        kube: Kube,
        settings: Settings | None = None,
        *,
        planner: Planner | None = None,
        tracer: Tracer | None = None,
        products: Sequence[ProductDef] | None = None,
    ) -> None:
        self.kube = kube
        self.products = tuple(products) if products is not None else installed_products()
        """The products served: fixed for the life of the process (one instance informer each)."""
        self.by_label = product_labels(self.products)
        self.secret_keys = frozenset(k for p in self.products for c in p.components
                                     for k in (*(c.generated_secret or {}), *c.config, *c.exports))
        """The Secret data keys the products write (credentials, settings that carry a secret): the only ones
        the Secret cache keeps."""
        self.settings = settings or Settings()
        s = self.settings
        namespaces = list(s.namespaces) if s.namespaces else None
        self.tracer = tracer
        self.metrics = Metrics(max_workers=max(1, s.workers), kinds=[p.names.kind for p in self.products])
        self.metrics.snapshot(self.stats)
        kube.on_response = self.metrics.response
        kube.on_duration = self.metrics.request_took
        self.queue: WorkQueue[ParentKey] = WorkQueue(
            base_delay=s.backoff_base, max_delay=s.backoff_max, observer=self.metrics
        )
        self.metrics.in_flight(self.queue.processing_seconds)
        informers = [(w, self._informer(w, namespaces)) for w in watches(self.products)]
        self.parents = ParentCaches({w.kind.kind: i for w, i in informers if w.role == "For"})
        self.owned = {w.kind.kind: i for w, i in informers if w.role == "Owns"}
        self.probes = ProbeManager(
            self._on_probe_change, on_result=self._on_probe_result, policy=s.probe_policy or ProbePolicy(),
            gate=ProbeGate(s.probe_budget or ProbeBudget()),
        )
        self.events = EventRecorder(kube)
        self.reconciler = Reconciler(
            kube,
            self.parents,
            self.owned,
            self.probes,
            self.events,
            products=self.products,
            max_product_upgrades=s.max_product_upgrades,
            planner=planner,
            tracer=tracer,
            metrics=self.metrics,
            background_status=True,
        )
        self.reconciler.on_retry = self._status_not_written
        self.ready = anyio.Event()
        self.errors = 0
        self.reconcile_seconds: list[float] = []

    def _informer(self, watch: Watch, namespaces: list[str] | None) -> Informer:
        """The informer of one entry of :data:`WATCHES`."""
        s = self.settings
        if watch.role == "For":
            stamp = stamped(watch.kind.api_version, watch.kind.kind)
            return Informer(
                self.kube,
                watch.kind,
                namespaces,
                handler=self._on_parent,
                labels=s.watch_label_selector.as_labels() if s.watch_label_selector else None,
                transform=lambda obj: strip(stamp(obj)),
                server_timeout=s.watch_timeout,
                resync_period=s.resync_period,
            )
        return Informer(
            self.kube,
            watch.kind,
            namespaces,
            handler=self._owned_handler(watch.kind.kind),
            labels={api.LABEL_MANAGED_BY: api.MANAGED_BY},
            keep=keep_for(watch.kind.kind),
            transform=transform_for(watch.kind.kind, self.secret_keys),
            server_timeout=s.watch_timeout,
        )

    # -- event handlers (synchronous, called by informers and probes) ------------------------------------

    def _trace(self, record: dict[str, Any]) -> None:
        if self.tracer is not None:
            self.tracer(record)

    def _on_parent(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        key = parent_key(obj)
        if self.tracer is not None:
            self._trace(
                {
                    "t": time.monotonic(),
                    "what": "event",
                    "kind": key[2],
                    "type": typ,
                    "obj": obj,
                    "ds": fmt_key(key),
                }
            )
        self.queue.add(key)

    def _owned_handler(self, kind: str) -> Callable[[str, dict[str, Any], dict[str, Any] | None], None]:
        def handler(typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            keys = owners_of(obj, self.by_label)
            if old is not None:
                keys += [k for k in owners_of(old, self.by_label) if k not in keys]
            ns, name = store_key(obj)
            keys += [k for k in self.reconciler.parents_holding(ns, kind, name) if k not in keys]
            if self.tracer is not None:
                self._trace(
                    {
                        "t": time.monotonic(),
                        "what": "event",
                        "kind": kind,
                        "type": typ,
                        "obj": obj,
                        "ds": [fmt_key(k) for k in keys],
                    }
                )
            for key in keys:
                self.queue.add(key)

        return handler

    def _status_not_written(self, key: ParentKey) -> None:
        """A status written in the background failed: reconcile again, with backoff."""
        self.errors += 1
        self.queue.add_rate_limited(key)

    def _on_probe_change(self, parent: Hashable) -> None:
        self.queue.add(parent)  # type: ignore[arg-type]

    def _on_probe_result(self, parent: Hashable, key: str, result: ProbeResult, t: float) -> None:
        if self.tracer is not None:
            self._trace(
                {
                    "t": t,
                    "what": "probe",
                    "ds": fmt_key(parent),  # type: ignore[arg-type]
                    "key": key,
                    "component": getattr(self.probes.requests(parent).get(key), "component", ""),
                    "ok": result.ok,
                    "message": result.message,
                }
            )

    # -- running -----------------------------------------------------------------------------------------

    async def run(self, gate: anyio.Event | None = None) -> None:
        """Start caches, wait until they are synced (and ``gate`` is set: the Lease is ours), then reconcile
        until cancelled. Nothing is written before the workers start."""
        s = self.settings
        log.info(
            "starting",
            extra={
                "namespaces": ",".join(s.namespaces) if s.namespaces else "*",
                "selector": str(s.watch_label_selector or "") or "*",
                "workers": s.workers,
                "field_manager": self.kube.field_manager,
            },
        )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.queue.run)
                tg.start_soon(self.probes.run)
                tg.start_soon(self.events.run)
                if self.reconciler.status.writer is not None:
                    tg.start_soon(self.reconciler.status.writer.run)
                for informer in (*self.parents, *self.owned.values()):
                    tg.start_soon(informer.run)
                await self.probes.wait_started()
                for informer in (*self.parents, *self.owned.values()):
                    await informer.synced.wait()
                log.info(
                    "caches synced",
                    extra={
                        "dataservices": len(self.parents),
                        "objects": sum(len(i) for i in self.owned.values()),
                    },
                )
                await self._protect_cluster_addresses(tg)
                self.ready.set()
                if gate is not None and not gate.is_set():
                    log.info("caches synced; waiting for leadership before reconciling")
                    await gate.wait()
                for i in range(max(1, s.workers)):
                    tg.start_soon(self._worker, i)
                await anyio.sleep(math.inf)
        finally:
            self.queue.shutdown()

    async def _protect_cluster_addresses(self, tg: anyio.abc.TaskGroup) -> None:
        """Add the API server's and our own pod's addresses to the probe policy (before any probe runs), then
        follow the cluster's (:class:`~d3os_operator.probe_targets.ClusterAddresses`)."""
        from .probe_targets import ClusterAddresses, operator_namespace, protected_addresses

        try:
            found = await protected_addresses(self.kube)
        except Exception:  # best effort: the built-in refusals still hold
            log.exception("probe policy: cannot look up the API server's addresses")
            found = []
        self.probes.policy = self.probes.policy.with_protected(found)
        self.cluster_addresses = ClusterAddresses(
            self.kube, self.probes, [(str(n.network_address), w) for n, w in self.probes.policy.protected],
            self.settings.operator_namespace or operator_namespace())
        tg.start_soon(self.cluster_addresses.run)
        log.info(
            "probe policy",
            extra={
                "protected": ",".join(f"{a} ({w})" for a, w in found) or "-",
                "allow": ",".join(map(str, self.probes.policy.allow)) or "-",
                "deny": ",".join(map(str, self.probes.policy.deny)) or "-",
            },
        )

    async def _worker(self, n: int) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            started = time.monotonic()
            result = "error"
            self.metrics.reconcile_started(key[2])
            try:
                with anyio.fail_after(self.settings.reconcile_timeout):
                    outcome = await self.reconciler.reconcile(key, woke_at=self.queue.picked_since(key))
            except RefusedError as e:
                # the status and a Warning Event name it; the same request is refused until something changes
                self.errors += 1
                self.queue.forget(key)
                self.queue.add_after(key, REFUSED_RETRY)
                log.info("reconcile refused by the API server, trying again in %ss: %s", REFUSED_RETRY, e,
                         extra={"ds": fmt_key(key), "error": str(e), "retry_in_s": REFUSED_RETRY})
            except (TransientError, TimeoutError) as e:
                self.errors += 1
                delay = self.queue.add_rate_limited(key)
                text = str(e) or type(e).__name__
                log.warning(
                    "reconcile failed, retrying: %s",
                    text,
                    extra={"ds": fmt_key(key), "error": text, "retry_in_s": round(delay, 3)},
                )
            except Exception as e:
                # containment: whatever one DataService makes go wrong stays in its status, never leaves here
                self.errors += 1
                delay = self.queue.add_rate_limited(key)
                log.exception("reconcile crashed, retrying", extra={"ds": fmt_key(key), "retry_in_s": round(delay, 3)})
                with anyio.move_on_after(REPORT_TIMEOUT):
                    await self.reconciler.flush_status(key)  # the report comes after what was handed over
                    await report_reconcile_error(self.reconciler, key, e)
            else:
                self.queue.forget(key)
                if outcome.requeue_after is not None:
                    self.queue.add_after(key, outcome.requeue_after)
                    result = "requeue" if outcome.requeue_after <= 0 else "requeue_after"
                else:
                    result = "success"
            finally:
                took = time.monotonic() - started
                self.metrics.reconcile_finished(took, result, key[2])
                self.reconcile_seconds.append(took)
                if len(self.reconcile_seconds) > 10000:
                    del self.reconcile_seconds[:5000]
                self.queue.done(key)

    def cache_snapshot(self) -> dict[str, list[dict[str, str]]]:
        """Every informer's contents (namespace, name, uid, resourceVersion), by kind: the cache-truth check
        compares it with a fresh LIST (``--debug-cache-endpoint``, tests)."""
        return {i.kind: i.snapshot() for i in (*self.parents, *self.owned.values())}

    def stats(self) -> dict[str, Any]:
        return {
            "reconciles": self.reconciler.reconciles,
            "errors": self.errors,
            "writes": {f"{verb}:{kind}": n for (verb, kind), n in self.kube.writes.items()},
            "http_requests": dict(self.kube.http_requests),
            "queue": len(self.queue),
            "events": {"sent": self.events.sent, "failed": self.events.failed, "dropped": self.events.dropped,
                       "aggregated": self.events.aggregated},
            "events_dropped": self.events.dropped_by_namespace,
            "probes": self.probes.stats(),
            "relists": {i.kind: i.relists for i in (*self.parents, *self.owned.values())},
        }
