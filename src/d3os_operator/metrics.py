"""Prometheus metrics under the names controller-runtime uses, so kubebuilder dashboards work unchanged.

* ``controller_runtime_reconcile_total{controller,result}`` (result: success, error, requeue,
  requeue_after), ``controller_runtime_reconcile_errors_total{controller}``,
  ``controller_runtime_reconcile_time_seconds{controller}``, ``controller_runtime_active_workers``,
  ``controller_runtime_max_concurrent_reconciles``;
* ``workqueue_depth``, ``workqueue_adds_total``, ``workqueue_queue_duration_seconds``,
  ``workqueue_work_duration_seconds``, ``workqueue_retries_total``, ``workqueue_unfinished_work_seconds``,
  ``workqueue_longest_running_processor_seconds`` (label ``name`` and ``controller``);
* ``rest_client_requests_total{code,method,host}`` (every response from the API server, watches included),
  ``rest_client_request_duration_seconds{verb,host}`` (request sent to response headers, client-go's
  buckets);
* ``process_*`` (CPU seconds, resident and virtual memory, open and max file descriptors, start time),
  as the Prometheus Go client exports them for controller-runtime;
* ``leader_election_master_status{name}``;
* ours: ``d3os_component_ready{namespace,name,component}`` (1 ready, 0 not),
  ``d3os_condition{namespace,name,type,kind}`` (1 when the instance's condition ``type`` -- Ready, Progressing,
  Degraded, Reconciling, Stalled -- is True, else 0: what the alerts read), ``d3os_step_latency_seconds``
  (the operator's added time per step: from the event that made a step possible -- the enqueue of the
  DataService -- to the first apply of the next component), ``d3os_writes_total{verb,kind}``,
  ``d3os_thirdparty_check_up{check}``, ``d3os_relists_total{kind}``, ``d3os_events_total``.

Each :class:`Metrics` has its own registry (several operators can run in one process, as in the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from d3os_core.redact import redact_text

disable_created_metrics()  # no ``*_created`` series: controller-runtime's exposition has none

CONTROLLER = "dataservice"
"""The work queue's ``controller`` / ``name`` label value, and the reconcile metrics' for DataService (as
controller-runtime names a controller after its kind, in lower case: :func:`controller_name`)."""


def controller_name(kind: str) -> str:
    """The ``controller`` label of a product's reconciles: its kind in lower case (``dataservice``)."""
    return kind.lower()

# controller-runtime's buckets (reconcile time) and client-go's workqueue buckets (10 ns ... 10 s).
RECONCILE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
)  # fmt: skip
QUEUE_BUCKETS = tuple(10.0**e for e in range(-8, 2))
REST_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
"""client-go's ``rest_client_request_duration_seconds`` buckets (k8s.io/component-base restclient metrics)."""
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Snapshot(Collector):
    """Series read at scrape time from the running operator (counters it keeps anyway)."""

    def __init__(self, read: Callable[[], Mapping[str, Any]]) -> None:
        self.read = read

    def describe(self) -> Iterable[Any]:
        return []  # registering must not read the operator (it may not be built yet)

    def collect(self) -> Iterable[Any]:
        stats = self.read()
        writes = CounterMetricFamily(
            "d3os_writes", "Write requests the operator sent, by verb and kind.", labels=["verb", "kind"]
        )
        for key, n in sorted(stats.get("writes", {}).items()):
            verb, _, kind = str(key).partition(":")
            writes.add_metric([verb, kind], n)
        yield writes
        relists = CounterMetricFamily(
            "d3os_relists", "Lists by the informers (the first one and after watch trouble).", labels=["kind"]
        )
        for kind, n in sorted(stats.get("relists", {}).items()):
            relists.add_metric([kind], n)
        yield relists
        events = CounterMetricFamily("d3os_events", "Kubernetes Events, by outcome.", labels=["outcome"])
        for outcome, n in sorted(stats.get("events", {}).items()):
            events.add_metric([outcome], n)
        yield events
        dropped = CounterMetricFamily(
            "d3os_events_dropped",
            "Kubernetes Events dropped because the sender's queue was full, by the namespace that held the most.",
            labels=["namespace"],
        )
        for namespace, n in sorted(stats.get("events_dropped", {}).items()):
            dropped.add_metric([namespace], n)
        yield dropped
        checks = GaugeMetricFamily(
            "d3os_thirdparty_check_up",
            "Last result of each third-party check (1 passing, 0 failing); one series per distinct check.",
            labels=["check"],
        )
        for p in stats.get("probes", []):
            if p.get("ok") is not None:
                checks.add_metric([redact_text(str(p["check"]))], 1.0 if p["ok"] else 0.0)
        yield checks


class _InFlight(Collector):
    """client-go's unfinished-work gauges, computed at scrape time from the work queue's in-flight keys."""

    def __init__(self, read: Callable[[], Iterable[float]], labels: tuple[str, str]) -> None:
        self.read = read
        self.labels = list(labels)

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        running = list(self.read())
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed by work_duration. "
            "Large values indicate stuck threads. One can deduce the number of stuck threads by observing the "
            "rate at which this increases.",
            labels=["name", "controller"],
        )
        unfinished.add_metric(self.labels, sum(running))
        yield unfinished
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            labels=["name", "controller"],
        )
        longest.add_metric(self.labels, max(running, default=0.0))
        yield longest


class Metrics:
    """The operator's metrics; the shell calls the small methods below at the matching moments."""

    def __init__(self, *, max_workers: int = 1, kinds: Iterable[str] = ("DataService",)) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        controllers = [controller_name(k) for k in kinds]
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ["controller"],
            registry=r,
        )
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ["controller"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ["controller"],
            registry=r,
        )
        self.max_concurrent = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ["controller"],
            registry=r,
        )
        for c in controllers:  # every series of every product exists from the start, at 0
            self.max_concurrent.labels(c).set(max_workers)
            for result in ("success", "error", "requeue", "requeue_after"):
                self.reconcile_total.labels(c, result)
            self.reconcile_errors.labels(c)
            self.active_workers.labels(c)

        q = ["name", "controller"]
        self.queue_depth = Gauge("workqueue_depth", "Current depth of workqueue", q, registry=r)
        self.queue_adds = Counter("workqueue_adds_total", "Total number of adds handled by workqueue", q, registry=r)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            q,
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            q,
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.queue_retries = Counter(
            "workqueue_retries_total", "Total number of retries handled by workqueue", q, registry=r
        )
        self.rest_duration = Histogram(
            "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb, and host.",
            ["verb", "host"],
            buckets=REST_BUCKETS,
            registry=r,
        )
        ProcessCollector(registry=r)
        self.rest_requests = Counter(
            "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ["code", "method", "host"],
            registry=r,
        )
        self.leader = Gauge(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates "
            "master. 'name' is the string used to identify the lease.",
            ["name"],
            registry=r,
        )
        self.component_ready = Gauge(
            "d3os_component_ready",
            "1 when the component of the product instance is ready at its desired state, else 0.",
            ["namespace", "name", "component", "kind"],
            registry=r,
        )
        self.condition = Gauge(
            "d3os_condition",
            "1 when the instance's condition of this type (Ready, Progressing, Degraded, Reconciling, Stalled) "
            "is True, else 0.",
            ["namespace", "name", "type", "kind"],
            registry=r,
        )
        self.step_latency = Histogram(
            "d3os_step_latency_seconds",
            "Operator-added time per rollout step: from the event that made the step possible (the "
            "DataService's enqueue) to the first apply of the next component.",
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self._ql = (CONTROLLER, CONTROLLER)
        self._components: dict[tuple[str, str, str], set[str]] = {}
        self._conditions: dict[tuple[str, str, str], set[str]] = {}

    # -- work queue -----------------------------------------------------------------------------------

    def queue_added(self) -> None:
        self.queue_adds.labels(*self._ql).inc()

    def queue_depth_is(self, depth: int) -> None:
        self.queue_depth.labels(*self._ql).set(depth)

    def queue_picked(self, waited: float) -> None:
        self.queue_duration.labels(*self._ql).observe(max(0.0, waited))

    def queue_retried(self) -> None:
        self.queue_retries.labels(*self._ql).inc()

    # -- reconciles -----------------------------------------------------------------------------------

    def reconcile_started(self, kind: str = "DataService") -> None:
        self.active_workers.labels(controller_name(kind)).inc()

    def reconcile_finished(self, seconds: float, result: str, kind: str = "DataService") -> None:
        """``result``: success, error, requeue or requeue_after (controller-runtime's values)."""
        c = controller_name(kind)
        self.active_workers.labels(c).dec()
        self.reconcile_time.labels(c).observe(seconds)
        self.work_duration.labels(*self._ql).observe(seconds)
        self.reconcile_total.labels(c, result).inc()
        if result == "error":
            self.reconcile_errors.labels(c).inc()

    def step_started(self, seconds: float) -> None:
        self.step_latency.observe(max(0.0, seconds))

    def components(self, namespace: str, name: str, ready: Mapping[str, bool], kind: str = "DataService") -> None:
        """Set ``d3os_component_ready`` for one instance (drops components it no longer has)."""
        key = (namespace, name, kind)
        for gone in self._components.get(key, set()) - set(ready):
            self.component_ready.remove(namespace, name, gone, kind)
        for comp, ok in ready.items():
            self.component_ready.labels(namespace, name, comp, kind).set(1.0 if ok else 0.0)
        self._components[key] = set(ready)

    def conditions(self, namespace: str, name: str, true: Mapping[str, bool], kind: str = "DataService") -> None:
        """Set ``d3os_condition`` for one instance: each condition type, 1 when True."""
        key = (namespace, name, kind)
        for gone in self._conditions.get(key, set()) - set(true):
            self.condition.remove(namespace, name, gone, kind)
        for type_, ok in true.items():
            self.condition.labels(namespace, name, type_, kind).set(1.0 if ok else 0.0)
        self._conditions[key] = set(true)

    def forget(self, namespace: str, name: str, kind: str = "DataService") -> None:
        """The instance is gone: drop its series."""
        self.components(namespace, name, {}, kind)
        self._components.pop((namespace, name, kind), None)
        self.conditions(namespace, name, {}, kind)
        self._conditions.pop((namespace, name, kind), None)

    # -- API client and leader election ---------------------------------------------------------------

    def response(self, code: int, method: str, host: str) -> None:
        self.rest_requests.labels(str(code), method, host).inc()

    def request_took(self, method: str, host: str, seconds: float) -> None:
        """One request, from sending it to its response's headers (a watch: until the stream opened)."""
        self.rest_duration.labels(method, host).observe(max(0.0, seconds))

    def in_flight(self, read: Callable[[], Iterable[float]]) -> None:
        """Export ``workqueue_unfinished_work_seconds`` and ``..._longest_running_processor_seconds`` from
        ``read()``: the seconds each key being processed has been worked on so far."""
        self.registry.register(_InFlight(read, self._ql))

    def products(self, served: Iterable[Any], missing: Iterable[Any]) -> None:
        """``d3os_product_served{product,version}``: 1 for a product served, 0 for one whose CRD is missing."""
        gauge = Gauge("d3os_product_served", "1 when the operator serves the product, 0 when its CRD is not "
                      "installed (it is served from the next start after the CRD is installed).",
                      ["product", "version"], registry=self.registry)
        for p, up in [*((p, 1.0) for p in served), *((p, 0.0) for p in missing)]:
            gauge.labels(p.name, p.version).set(up)

    def leading(self, lease: str, is_leader: bool) -> None:
        self.leader.labels(lease).set(1.0 if is_leader else 0.0)

    def snapshot(self, read: Callable[[], Mapping[str, Any]]) -> None:
        """Export the operator's own counters (writes by kind, relists, events, checks) at scrape time."""
        self.registry.register(_Snapshot(read))

    def text(self, names: Iterable[str] = ()) -> bytes:
        """The exposition text: every metric, or only the samples named in ``names`` (a sample's full name,
        e.g. ``workqueue_depth`` or ``controller_runtime_reconcile_total``)."""
        wanted = list(names)
        return generate_latest(self.registry.restricted_registry(wanted) if wanted else self.registry)
