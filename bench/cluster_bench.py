"""The benchmarks that need a control plane: rollout latency, scale, steady state and the seed baseline.

Everything runs against one local control plane (d3os_testenv, kwok nodes) that the bench starts under
its own name, or the cluster of ``$D3OS_TEST_KUBECONFIG``. The seed's uuc is a third party on the internet:
it points at a local HTTP stand-in (``d3os_testenv.standin``), as in the demo and the tests. Each
DataService gets its own web nodePort (the sample's 30180 is unique in a cluster, and many run at once).

Clocks: rollout figures use ``time.monotonic()`` of this process (the in-process operator's trace and
the status watch share it); request counts come from kube-apiserver's audit log (the server's record,
filtered by the operator's User-Agent), whose timestamps are wall-clock, hence the ``time.time()`` marks.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import socket
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType
from seed_baseline import SeedBaseline, is_seed_done

from d3os_core import parse_spec
from d3os_core.product import WorkloadKind
from d3os_core.render import Parent, resolve
from d3os_operator.kube import product_kind
from d3os_operator.products import installed, installed_product
from d3os_testenv import harness, operatorproc
from d3os_testenv.firstseen import FirstSeen
from d3os_testenv.standin import StandIn, point_uuc_at

PRODUCT = installed_product("dataservice")
"""The dataservice product as shipped (products/dataservice/product.yaml)."""
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dataservice-sample.yaml"
"""The seed's sample of this checkout (whatever way the package was installed)."""
OPERATOR_AGENT = "d3os-operator/"
NODE_PORT_BASE = 30200
BENCH_CAPACITY = {"cpu": "2000", "memory": "8Ti", "pods": "3000", "ephemeral-storage": "100Ti"}
"""kwok node capacity: N=200 DataServices request ~250 CPUs and ~600 GiB; the default nodes would refuse."""


ROOT = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def summarize(values: Sequence[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "max": max(values) if values else None, "mean": statistics.fmean(values) if values else None}


# -- the cluster ---------------------------------------------------------------------------------------------


@dataclass
class Env:
    """The control plane under test and what every benchmark shares on it."""

    cluster: Any
    kubeconfig: Path
    client: Client
    owned: bool
    standin: StandIn
    audit_log: Path | None
    _next_port: int = NODE_PORT_BASE
    versions: dict[str, Any] = field(default_factory=dict)

    def node_port(self) -> int:
        """A cluster-unique web nodePort for the next DataService."""
        port = self._next_port
        self._next_port += 1
        if port > 32767:
            raise RuntimeError("ran out of NodePorts (30000-32767)")
        return port

    def sample(self, node_port: int | None = None) -> dict[str, Any]:
        """The seed's sample, uuc pointed at the stand-in, web on its own nodePort."""
        manifest = point_uuc_at(harness.load_sample(SAMPLE), self.standin)
        manifest["spec"]["web"]["nodePort"] = node_port or self.node_port()
        return manifest


def analytics_sample(env: Env) -> dict[str, Any]:
    """The AnalyticsService example, its dashboard on its own nodePort."""
    manifest = yaml.safe_load((ROOT / "examples" / "analyticsservice-sample.yaml").read_text(encoding="utf-8"))
    manifest["spec"]["dashboard"]["nodePort"] = env.node_port()
    return dict(manifest)


def open_env(name: str = "bench") -> Env:
    """Attach to ``$D3OS_TEST_KUBECONFIG`` or start a LocalCluster of our own (kwok nodes sized for N=200)."""
    from d3os_testenv.cluster import LocalCluster, open_cluster

    external = os.environ.get("D3OS_TEST_KUBECONFIG")
    if external:
        cluster: Any = open_cluster(external)
        owned = False
        log(f"attached to {external}")
    else:
        cluster = LocalCluster(name, nodes=3, node_capacity=dict(BENCH_CAPACITY), pv_pool=16,
                               progress=lambda m: log(f"  {m}"))
        cluster.start()
        owned = bool(getattr(cluster, "_owner", True))
    kubeconfig = Path(cluster.kubeconfig)
    client = harness.sync_client(kubeconfig)
    harness.install_crd(client)
    audit = getattr(cluster, "audit_log", None)  # an ExternalCluster has none
    env = Env(cluster, kubeconfig, client, owned, StandIn().up(), Path(audit) if audit else None)
    env.versions = cluster_versions(cluster, client)
    return env


def close_env(env: Env) -> None:
    env.standin.down()
    with contextlib.suppress(Exception):
        env.client.close()
    if env.owned:
        log("stopping the bench cluster")
        env.cluster.stop()


def cluster_versions(cluster: Any, client: Client) -> dict[str, Any]:
    """Versions from the testenv's pins (LocalCluster) and from the API server itself."""
    out: dict[str, Any] = {}
    pins = getattr(cluster, "versions", None)
    if pins is not None:
        out.update(kubernetes=pins.kubernetes, etcd=pins.etcd, kwok=pins.kwok)
    with contextlib.suppress(Exception):
        resp = client._client._client.get("/version")
        out["apiserver"] = resp.json().get("gitVersion")
    return out


def create_namespaces(client: Client, names: Iterable[str]) -> None:
    def one(ns: str) -> None:
        try:
            client.create(Namespace(metadata=ObjectMeta(name=ns, labels={"d3os-bench": "1"})))
        except ApiError as e:
            if e.status.code != 409:
                raise

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, names))


def cleanup(env: Env, namespaces: Sequence[str], wait: float = 0.0) -> bool:
    """Strip finalizers (the operator is stopped by now) and delete the namespaces; optionally wait until
    they are gone, so the next benchmark does not share the machine with their garbage collection."""

    def strip(ns: str) -> None:
        for res in (product_kind(p.names).res for p in installed()):
            with contextlib.suppress(Exception):
                for obj in env.client.list(res, namespace=ns):
                    with contextlib.suppress(ApiError):
                        env.client.patch(res, dict(obj)["metadata"]["name"], {"metadata": {"finalizers": None}},
                                         namespace=ns, patch_type=PatchType.MERGE)
        with contextlib.suppress(ApiError):
            env.client.delete(Namespace, ns)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(strip, namespaces))
    deadline = time.monotonic() + wait
    left = set(namespaces)
    while wait and left and time.monotonic() < deadline:
        present = {n.metadata.name for n in env.client.list(Namespace, labels={"d3os-bench": "1"})}
        left &= present
        if left:
            time.sleep(2)
    if wait and left:
        log(f"{len(left)} namespaces still terminating after {wait:.0f}s")
    return not left


def apply_all(env: Env, manifests: Sequence[tuple[str, dict[str, Any]]], clients: Sequence[Client]) -> None:
    """Create the DataServices "at once": as fast as a small pool of clients can send them (one thread per
    client, see :func:`make_clients`)."""

    def chunk(i: int) -> None:
        for ns, manifest in manifests[i::len(clients)]:
            harness.apply_dataservice(clients[i], manifest, ns)

    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(chunk, range(len(clients))))


@contextlib.contextmanager
def make_clients(env: Env, threads: int = 8) -> Iterator[list[Client]]:
    """Clients for :func:`apply_all`, made before the clock starts: one per thread (a TLS connection shared
    by threads breaks under load)."""
    clients = [harness.sync_client(env.kubeconfig) for _ in range(threads)]
    try:
        yield clients
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                c.close()


class ReadyWatcher(FirstSeen):
    """Every instance (of every installed product) in namespaces starting with ``prefix``, by (namespace, name):
    when ``pred`` first held."""

    def __init__(self, env: Env, pred: Callable[[Mapping[str, Any]], bool], prefix: str) -> None:
        def key(_kind: str, obj: Mapping[str, Any]) -> tuple[str, str] | None:
            ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
            return (ns, name) if ns.startswith(prefix) else None

        kinds = [(p.names.kind, product_kind(p.names).res) for p in installed()]  # every product's instances
        super().__init__(env.kubeconfig, kinds, key, lambda _k, obj: pred(obj))


# -- 2. rollout latency of the seed's sample (in-process operator, traced) -------------------------------------


def workloads_of(manifest: Mapping[str, Any]) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """The product's order and each non-third-party component's (workload kind, name), from the core."""
    spec = parse_spec(manifest["spec"], PRODUCT)
    states = resolve(Parent(manifest["metadata"]["name"], "x", "x"), spec, PRODUCT)
    wl = {k: (st.kind.k8s_kind, st.name) for k, st in states.items() if st.kind is not WorkloadKind.THIRD_PARTY}
    return list(PRODUCT.keys), wl


def rollout_once(env: Env, run: int, timeout: float = 240.0) -> dict[str, Any]:
    """One apply -> Ready of the sample in a fresh namespace, with its own in-process operator."""
    ns = f"bench-rollout-{run if run >= 0 else 'w'}-{uuid.uuid4().hex[:5]}"
    create_namespaces(env.client, [ns])
    env.cluster.ensure_pvs(4)
    manifest = env.sample()
    name = manifest["metadata"]["name"]
    order, wl = workloads_of(manifest)
    try:
        with harness.RunningOperator(env.kubeconfig, namespaces=[ns]) as op, \
                harness.StatusRecorder(env.kubeconfig, ns, name) as rec:
            applied = time.monotonic()
            harness.apply_dataservice(env.client, manifest, ns)
            rec.wait_for(harness.is_ready, timeout, "Ready=True")
            ready = next(c["t"] for c in rec.changes if c["conditions"].get("Ready", {}).get("status") == "True")
            records = op.trace()
    finally:
        cleanup(env, [ns], wait=120.0)  # its garbage collection must not overlap the next run
    key = f"{ns}/{name}"
    first_apply, ready_at = harness.component_times(records, wl, key)
    added = {r["component"]: r.get("latency_ms") for r in harness.step_latencies(records, order, wl, key)}
    steps = []
    for i, comp in enumerate(order):
        cluster_ms = None
        if comp in ready_at and comp in first_apply:
            # a third party's probe may pass before its ConfigMap is applied: the cluster then took no time
            cluster_ms = max(0.0, (ready_at[comp] - first_apply[comp]) * 1000)
        before = (first_apply[comp] - applied) * 1000 if i == 0 and comp in first_apply else added.get(comp)
        steps.append({"component": comp, "added_ms": before, "cluster_ms": cluster_ms})
    total = ready - applied
    cluster_sum = sum(s["cluster_ms"] or 0.0 for s in steps) / 1000
    last = ready_at.get(order[-1])
    return {
        "namespace": ns,
        "apply_to_ready_s": total,
        "sum_cluster_s": cluster_sum,
        "ratio": total / cluster_sum if cluster_sum else None,
        "start_ms": steps[0]["added_ms"],
        "finish_ms": (ready - last) * 1000 if last else None,
        "steps": steps,
    }


def bench_rollout(env: Env, runs: int, warmup: int = 1) -> dict[str, Any]:
    """apply -> Ready of the sample, ``runs`` times after ``warmup`` discarded ones (the first rollout on a
    fresh control plane also warms its caches and this process's imports); per-step added time pooled."""
    warm = [rollout_once(env, -1 - i) for i in range(warmup)]
    for w in warm:
        log(f"rollout warm-up (discarded): {w['apply_to_ready_s']:.2f}s")
    out = []
    for i in range(runs):
        r = rollout_once(env, i)
        log(f"rollout {i + 1}/{runs}: {r['apply_to_ready_s']:.2f}s, ratio {r['ratio']:.2f}")
        out.append(r)
    added = [s["added_ms"] for r in out for s in r["steps"][1:] if s["added_ms"] is not None]
    return {
        "warmup_apply_to_ready_s": [w["apply_to_ready_s"] for w in warm],
        "runs": out,
        "apply_to_ready_s": summarize([r["apply_to_ready_s"] for r in out]),
        "ratio": summarize([r["ratio"] for r in out if r["ratio"]]),
        "added_ms_per_step": summarize(added),
        "start_ms": summarize([r["start_ms"] for r in out if r["start_ms"] is not None]),
        "finish_ms": summarize([r["finish_ms"] for r in out if r["finish_ms"] is not None]),
        "cluster_ms_per_component": {
            s["component"]: statistics.median([x["cluster_ms"] for r in out for x in r["steps"]
                                               if x["component"] == s["component"] and x["cluster_ms"] is not None]
                                              or [float("nan")])
            for s in out[0]["steps"]
        } if out else {},
    }


# -- 3./4. scale and steady state (operator as a subprocess) ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess(operatorproc.OperatorProcess):
    """The operator for a benchmark (``d3os_testenv.operatorproc``): warnings only, its metrics and health
    servers on ports chosen here (the sampler reads its metrics), under cProfile when asked (it writes its
    stats when the operator exits on SIGTERM)."""

    def __init__(
        self, env: Env, log_path: Path, profile_out: Path | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        self.metrics_port = free_port()
        self.health_port = free_port()
        super().__init__(env.kubeconfig, log_path, log_level="warning", metrics=f"127.0.0.1:{self.metrics_port}",
                         health=f"127.0.0.1:{self.health_port}", extra=extra_args,  # e.g. a shard's selector
                         python_args=["-m", "cProfile", "-o", str(profile_out)] if profile_out else [])
        self.log_path = log_path
        self.proc = self.p

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /readyz (caches synced) answers 200 on the health port."""
        port = self.health_port
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            code = http_status(f"http://127.0.0.1:{port}/readyz")
            if code == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"operator not ready after {timeout}s; log: {self.log_path}")


def http_status(url: str) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return None


def proc_stats(pid: int) -> dict[str, float]:
    """Resident and peak-resident memory (bytes) and CPU seconds (user+system) of ``pid``, from /proc."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        tick = os.sysconf("SC_CLK_TCK")
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat (all CPUs summed)."""
    with contextlib.suppress(OSError):
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        tick = os.sysconf("SC_CLK_TCK")
        return (sum(ticks) - idle) / tick, sum(ticks) / tick
    return 0.0, 0.0


class CpuLedger:
    """CPU seconds spent by the operator, each control-plane process and the whole machine between
    ``start()`` and ``stop()``: where the time of a scale run went (a profile by process)."""

    def __init__(self, env: Env, operator_pid: int | None) -> None:
        procs = getattr(env.cluster, "processes", None)  # only a LocalCluster knows its processes
        read = getattr(procs, "read_pid", None)
        comps = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
        self.pids = {c: read(c) for c in comps if read and read(c)}
        if operator_pid is not None:  # None: a baseline, no operator
            self.pids = {"d3os-operator": operator_pid, **self.pids}
        self._start: dict[str, float] = {}
        self._busy0 = (0.0, 0.0)

    def start(self) -> None:
        self._start = {k: proc_stats(pid).get("cpu_s", 0.0) for k, pid in self.pids.items()}
        self._busy0 = machine_busy()

    def stop(self, wall_s: float) -> dict[str, Any]:
        used = {k: round(proc_stats(pid).get("cpu_s", 0.0) - self._start.get(k, 0.0), 2)
                for k, pid in self.pids.items()}
        busy, total = machine_busy()
        cpus = os.cpu_count() or 1
        return {
            "cpu_s_by_process": dict(sorted(used.items(), key=lambda kv: -kv[1])),
            "machine_busy_cpu_s": round(busy - self._busy0[0], 1),
            "machine_cpu_s_available": round(wall_s * cpus, 1),
            "machine_busy_fraction": round((busy - self._busy0[0]) / (total - self._busy0[1]), 3)
            if total > self._busy0[1] else None,
        }


_DEPTH = re.compile(r'^(?:workqueue_depth\{[^}]*name="dataservice"[^}]*\}|d3os_operator_queue_depth)\s+([0-9.eE+-]+)',
                    re.M)


_RECONCILES = (
    re.compile(r"^controller_runtime_reconcile_total\{[^}]*\}\s+([0-9.eE+-]+)", re.M),
    re.compile(r"^d3os_operator_reconciles_total\s+([0-9.eE+-]+)", re.M),
)


def reconciles(metrics_text: str) -> float | None:
    """Reconciles run so far: controller-runtime's counter summed over results, else the operator's own."""
    for pattern in _RECONCILES:
        found = [float(v) for v in pattern.findall(metrics_text)]
        if found:
            return sum(found)
    return None


def queue_depth(metrics_text: str) -> float | None:
    """The DataService queue's depth: controller-runtime's ``workqueue_depth{name="dataservice"}`` or the
    operator's older ``d3os_operator_queue_depth``."""
    m = _DEPTH.search(metrics_text)
    return float(m.group(1)) if m else None


SAMPLED = ("workqueue_depth", "d3os_operator_queue_depth", "controller_runtime_reconcile_total",
           "d3os_operator_reconciles_total")
"""The metrics the sampler reads: asked for by name (``?name[]=...``), so the operator renders only these.
A full /metrics has a series per component of every DataService: rendered every second at N = 50 it took
a seventh of the operator's CPU (cProfile, 155 ms a scrape) and held its event loop that long each time.
An operator that ignores the query answers with everything, which :func:`queue_depth` reads as well."""
METRICS_QUERY = "?" + "&".join(f"name[]={n}" for n in SAMPLED)


class Sampler:
    """Every ``period`` s: the operator's RSS/CPU from /proc and its queue depth from /metrics (only the
    :data:`SAMPLED` metrics, so sampling costs the measured operator next to nothing)."""

    def __init__(self, op: OperatorProcess, period: float = 0.5) -> None:
        self.op = op
        self.period = period
        self.samples: list[dict[str, float]] = []
        self.depth_max = 0.0
        self.depth_seen = False
        self.last_metrics = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            s = {"t": time.monotonic(), **proc_stats(self.op.pid)}
            with contextlib.suppress(OSError, ValueError):
                with self._opener.open(f"http://127.0.0.1:{self.op.metrics_port}/metrics{METRICS_QUERY}",
                                       timeout=2) as resp:
                    text = resp.read().decode(errors="replace")
                    depth = queue_depth(text)
                    self.last_metrics = text
                if depth is not None:
                    self.depth_seen = True
                    self.depth_max = max(self.depth_max, depth)
                    s["depth"] = depth
            self.samples.append(s)

    def peak_rss(self) -> float | None:
        hwm = [s["VmHWM"] for s in self.samples if "VmHWM" in s]
        return max(hwm) if hwm else None


def audit_requests(env: Env, since: float, until: float | None = None) -> list[Any] | None:
    """The operator's requests received in [since, until) by the API server, from its audit log."""
    if env.audit_log is None:
        return None
    from d3os_testenv import audit

    reqs = audit.read(env.audit_log, since=since, agent=OPERATOR_AGENT)
    return [r for r in reqs if until is None or r.at < until]


def wait_quiet(env: Env, quiet: float = 5.0, limit: float = 60.0) -> float:
    """Wait until the operator has sent no write for ``quiet`` s (the last Ready status and its Events);
    returns the wall-clock time then. Without an audit log: a fixed pause of ``quiet`` s."""
    start = time.time()
    if env.audit_log is None:
        time.sleep(quiet)
        return time.time()
    while time.time() - start < limit:
        time.sleep(1.0)
        writes = [r.at for r in audit_requests(env, start) or [] if r.is_write]
        last = max(writes, default=start)
        if time.time() - last >= quiet:
            return time.time()  # the window starts after the quiet spell, past the last write
    return time.time()


def bench_scale(
    env: Env, n: int, *, steady_seconds: float | None = None, timeout: float = 900.0, profile: bool = False,
    scrape_period: float = 1.0, operator_args: Sequence[str] = (), analytics: int = 0,
) -> dict[str, Any]:
    """N instances in N namespaces created at once; the operator runs as a subprocess over all namespaces.
    ``analytics``: how many of the N are AnalyticsServices (the rest DataServices: two products served by one
    operator). ``profile``: under cProfile (slower: a separate run, for where the operator's time goes).
    ``operator_args``: added to the operator's command line (A/B runs of an option, e.g. ``--http2``)."""
    from d3os_testenv import audit

    prefix = f"bench-s{n}-{uuid.uuid4().hex[:4]}-"
    namespaces = [f"{prefix}{i:03d}" for i in range(n)]
    create_namespaces(env.client, namespaces)
    env.cluster.ensure_pvs(n + 4)
    manifests = [(ns, env.sample() if i < n - analytics else analytics_sample(env)) for i, ns in enumerate(namespaces)]
    prof_path = Path(env.kubeconfig).parent / f"bench-operator-{n}.prof" if profile else None
    op = OperatorProcess(env, Path(env.kubeconfig).parent / "logs" / f"bench-operator-{n}.log", prof_path,
                         extra_args=operator_args)
    result: dict[str, Any] = {"n": n, "operator_command": " ".join(op.cmd[1:]), "scrape_period_s": scrape_period,
                              "instances": {"DataService": n - analytics, "AnalyticsService": analytics}}
    try:
        op.wait_ready()
        with Sampler(op, scrape_period) as sampler, ReadyWatcher(env, harness.is_ready, prefix) as watcher, \
                make_clients(env) as clients:
            base = proc_stats(op.pid)
            ledger = CpuLedger(env, op.pid)
            ledger.start()
            t0_wall, t0 = time.time(), time.monotonic()
            apply_all(env, manifests, clients)
            created_s = time.monotonic() - t0
            done = watcher.wait(n, timeout, alive=op.check)
            t_ready, ready_wall = time.monotonic(), time.time()
            at_ready = proc_stats(op.pid)
            result["cpu_during_rollout"] = ledger.stop(t_ready - t0)
            per_ds = sorted(t - t0 for t in watcher.ready_at.values())
            result.update(
                created_in_s=created_s,
                all_ready=done,
                ready=len(watcher.ready_at),
                all_ready_s=(t_ready - t0) if done else None,
                timeout_s=timeout,
                ready_s_per_dataservice=summarize(per_ds),
                cpu_s_during_rollout=at_ready.get("cpu_s", 0.0) - base.get("cpu_s", 0.0),
                rss_at_ready_bytes=at_ready.get("VmRSS"),
            )
            reqs = audit_requests(env, t0_wall, ready_wall + 0.001)
            result["requests_source"] = "kube-apiserver audit log" if reqs is not None else "unavailable"
            if reqs is not None:
                result["requests_during_rollout"] = audit.summary(reqs)
                if done:  # and the writes that follow all Ready (the Events' counts at rest): a rollout's whole cost
                    rest = audit_requests(env, t0_wall, wait_quiet(env, quiet=15.0) + 0.001)
                    result["requests_to_rest"] = audit.summary(rest or [])
            if steady_seconds and done:
                result["steady"] = steady_state(env, op, steady_seconds)
            result["peak_rss_bytes"] = max(filter(None, [sampler.peak_rss(), proc_stats(op.pid).get("VmHWM")]),
                                           default=None)
            result["rss_at_end_bytes"] = proc_stats(op.pid).get("VmRSS")
            result["cpu_s_total"] = proc_stats(op.pid).get("cpu_s")
            if done:
                try:  # what the informers store per object (after the timed part: it costs the API server)
                    import footprint

                    result["cache_footprint"] = footprint.measure(env.client, namespaces)
                except Exception as e:
                    result["cache_footprint"] = {"error": f"{type(e).__name__}: {e}"}
            result["queue_depth_max"] = sampler.depth_max if sampler.depth_seen else None
            result["reconciles"] = reconciles(sampler.last_metrics)
            result["samples"] = len(sampler.samples)
    finally:
        op.stop()
        result["operator_log_tail"] = op.log_path.read_text(errors="replace")[-1500:]
        if prof_path is not None and prof_path.exists():
            result["profile"] = profile_text(prof_path)
        cleanup(env, namespaces, wait=300.0 if not steady_seconds else 0.0)
    return result


def profile_text(path: Path, top: int = 30) -> str:
    """The operator's cProfile: functions by own time, then d3os code by cumulative time."""
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out).strip_dirs()
    out.write("by own time:\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write("d3os code by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(r"d3os|reconciler|planner|informer|controller", top)
    return out.getvalue()


def steady_state(env: Env, op: OperatorProcess, seconds: float) -> dict[str, Any]:
    """After all are Ready and the operator has gone quiet: ``seconds`` idle, counted from the audit log."""
    from d3os_testenv import audit

    start = wait_quiet(env)
    time.sleep(max(0.0, start + seconds - time.time()))
    op.check()
    end = start + seconds
    time.sleep(2.0)  # the audit backend writes a completed request shortly after
    reqs = audit_requests(env, start, end)
    out: dict[str, Any] = {"window_s": seconds, "source": "kube-apiserver audit log" if reqs is not None else None}
    if reqs is None:
        return out
    s = audit.summary(reqs)
    writes = [r for r in reqs if r.is_write]
    out.update(
        writes=len(writes),
        write_requests=[{"verb": r.verb, "resource": r.resource + ("/" + r.subresource if r.subresource else ""),
                         "object": f"{r.namespace}/{r.name}", "after_s": round(r.at - start, 2), "code": r.code}
                        for r in writes[:20]],
        writes_by_verb_resource=dict(audit.summary(writes)["by_verb_resource"]),
        non_watch_reads=s["reads"],
        non_watch_reads_per_min=s["reads"] / (seconds / 60),
        watches_completed=s["watches"],
        by_verb=s["by_verb"],
    )
    return out


# -- 5. the seed baseline ---------------------------------------------------------------------------------------


def seed_sample(env: Env, timeout: float = 300.0) -> dict[str, Any]:
    """The seed's loop on the sample: apply -> its last status ``web已部署``."""
    ns = f"bench-seed-1-{uuid.uuid4().hex[:4]}"
    create_namespaces(env.client, [ns])
    env.cluster.ensure_pvs(4)
    manifest = env.sample()
    name = manifest["metadata"]["name"]
    try:
        with SeedBaseline(env.kubeconfig) as seed, harness.StatusRecorder(env.kubeconfig, ns, name) as rec:
            applied = time.monotonic()
            harness.apply_dataservice(env.client, manifest, ns)
            rec.wait_for(is_seed_done, timeout, "web已部署")
            done = next(c["t"] for c in rec.changes if c["phase"] == "web已部署")
            return {"apply_to_done_s": done - applied, "passes": seed.passes, "writes": seed.writes,
                    "errors": seed.errors[:5]}
    finally:
        cleanup(env, [ns], wait=120.0)


def seed_many(env: Env, n: int, timeout: float) -> dict[str, Any]:
    """N DataServices at once under the seed's one worker; capped at ``timeout`` s."""
    prefix = f"bench-seed{n}-{uuid.uuid4().hex[:4]}-"
    namespaces = [f"{prefix}{i:03d}" for i in range(n)]
    create_namespaces(env.client, namespaces)
    env.cluster.ensure_pvs(n + 4)
    manifests = [(ns, env.sample()) for ns in namespaces]
    try:
        with SeedBaseline(env.kubeconfig) as seed, ReadyWatcher(env, is_seed_done, prefix) as watcher, \
                make_clients(env) as clients:
            t0 = time.monotonic()
            apply_all(env, manifests, clients)
            finished = watcher.wait(n, timeout)
            elapsed = time.monotonic() - t0
            per_ds = sorted(t - t0 for t in watcher.ready_at.values())
            return {
                "n": n, "finished": finished, "done": len(watcher.ready_at), "timeout_s": timeout,
                "all_done_s": elapsed if finished else None,
                "first_done_s": per_ds[0] if per_ds else None,
                "done_s_per_dataservice": summarize(per_ds),
                "passes": seed.passes, "writes": seed.writes, "errors": seed.errors[:5],
            }
    finally:
        cleanup(env, namespaces, wait=300.0)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


# -- 6. baselines: the cluster alone and Helm (bench/baselines.py) ------------------------------------------------


def _baseline_objects(env: Env, n: int, tag: str) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
    """N fresh namespaces (created, claims' volumes provided) and the rendered objects of one sample each."""
    import baselines

    prefix = f"bench-{tag}{n}-{uuid.uuid4().hex[:4]}-"
    namespaces = [f"{prefix}{i:03d}" for i in range(n)]
    create_namespaces(env.client, namespaces)
    env.cluster.ensure_pvs(n + 4)
    return namespaces, {ns: baselines.rendered_objects(env.sample(), ns) for ns in namespaces}


def _requests_of(env: Env, agent: str, since: float, until: float, n: int) -> dict[str, Any] | None:
    """Requests whose User-Agent contains ``agent`` in [since, until), from the audit log, with per-DataService
    counts by verb and resource."""
    if env.audit_log is None:
        return None
    from d3os_testenv import audit

    time.sleep(1.0)  # the audit backend writes a completed request shortly after
    reqs = [r for r in audit.read(env.audit_log, since=since, agent=agent) if r.at < until]
    s = audit.summary(reqs)
    s["per_dataservice"] = round(s["total"] / n, 1)
    s["per_dataservice_by_verb_resource"] = {k: round(v / n, 2) for k, v in s["by_verb_resource"].items()}
    return s


def bench_alone(env: Env, n: int, *, timeout: float = 900.0, threads: int = 8) -> dict[str, Any]:
    """The cluster alone: every rendered object of N samples applied at once (SSA, no order, no operator)."""
    import baselines

    namespaces, per_ns = _baseline_objects(env, n, "a")
    try:
        ledger = CpuLedger(env, None)
        ledger.start()
        t0_wall, t0 = time.time(), time.monotonic()
        out = {"n": n, **baselines.run_alone(env.kubeconfig, per_ns, threads=threads, timeout=timeout)}
        out["cpu_during_rollout"] = ledger.stop(time.monotonic() - t0)
        out["requests"] = _requests_of(env, baselines.ALONE_AGENT, t0_wall, time.time(), n)
        return out
    finally:
        cleanup(env, namespaces, wait=300.0)


def bench_helm(env: Env, n: int, *, timeout: float = 900.0, parallel: int = 10) -> dict[str, Any]:
    """Helm: one release per DataService's objects, ``helm install --wait``, ``parallel`` at a time."""
    import baselines

    namespaces, per_ns = _baseline_objects(env, n, "h")
    try:
        ledger = CpuLedger(env, None)
        ledger.start()
        t0_wall, t0 = time.time(), time.monotonic()
        out = {"n": n, **baselines.run_helm(env.kubeconfig, per_ns, parallel=min(parallel, n), timeout=timeout)}
        out["cpu_during_rollout"] = ledger.stop(time.monotonic() - t0)
        out["per_release_s"] = summarize(out["per_release_s"])
        out["requests"] = _requests_of(env, baselines.HELM_AGENT, t0_wall, time.time(), n)
        return out
    finally:
        cleanup(env, namespaces, wait=300.0)


def repeat(fn: Callable[[], dict[str, Any]], runs: int, key: str) -> dict[str, Any]:
    """``runs`` runs of a sample baseline (one discarded warm-up first) and the summary of ``key``."""
    warm = fn()
    out = [fn() for _ in range(runs)]
    return {"warmup": warm.get(key), "runs": out, key: summarize([r[key] for r in out if r.get(key) is not None])}
