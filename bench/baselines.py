"""The two baselines beside the operator, on the same control plane and in the same run.

* **cluster alone** -- the physical limit: every object the core renders for N DataServices, applied at
  once with server-side apply (no order, no gating, no operator, no DataService object), then the time
  until every workload is rolled out by the core's readiness rules (:func:`d3os_core.readiness.rollout`,
  seen by a watch). What is left when nothing but the control plane and kwok work.
* **Helm** -- what d3os customers use today: the same objects as a chart, one release per DataService,
  ``helm install --wait``, releases installed concurrently with bounded parallelism. The time is Helm's
  own (process start to exit), so readiness is judged by *Helm's* rules (Helm 4, which the testenv builds:
  kstatus, from a watch; Helm 3, which the published results were measured with: ``pkg/kube/ready.go``, a
  Deployment's new ReplicaSet has ``replicas - maxUnavailable`` ready pods, claims Bound, ..., polled
  every 2 s); the same watch also records when the core's rules were met, for comparison. Helm labels
  what it installs ``app.kubernetes.io/managed-by: Helm`` and adds its release annotations.

The objects are those of :func:`d3os_core.render.render_component` (the seed baseline uses the same),
with one change: no ownerReference, because no DataService exists to own them (the garbage collector
would delete dependents of a missing owner). The third party (uuc) has no workload; only its ConfigMap
is applied.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightkube import Client, KubeConfig
from lightkube.core.resource_registry import resource_registry
from lightkube.resources.apps_v1 import DaemonSet, Deployment, StatefulSet
from lightkube.types import PatchType

from d3os_core import parse_spec
from d3os_core.desired import desired
from d3os_core.readiness import rollout
from d3os_core.render import Parent
from d3os_operator.products import installed_product
from d3os_testenv.firstseen import FirstSeen

PRODUCT = installed_product("dataservice")
"""The dataservice product as shipped (products/dataservice/product.yaml)."""
REQUEST_TIMEOUT = 120.0
"""Seconds a baseline's request may take: on a loaded machine the API server answers slowly, not never."""
ALONE_AGENT = "d3os-bench-alone/1"
ALONE_MANAGER = "d3os-bench-alone"
HELM_AGENT = "Helm/"
WORKLOAD_KINDS = {"Deployment": Deployment, "StatefulSet": StatefulSet, "DaemonSet": DaemonSet}
CHART_TEMPLATE = """\
{{- range .Values.objects }}
---
{{ toYaml . }}
{{- end }}
"""
"""The chart's one template: every object of the release's values, as they are."""


# -- the objects ------------------------------------------------------------------------------------------------


def rendered_objects(manifest: Mapping[str, Any], namespace: str) -> list[dict[str, Any]]:
    """Every object the operator wants for DataService ``manifest`` in ``namespace`` (the core's
    :func:`~d3os_core.desired.desired`, product order), without ownerReferences (see the module docstring)."""
    name = manifest["metadata"]["name"]
    parent = Parent(name, namespace, str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{namespace}/{name}")))
    out: list[dict[str, Any]] = []
    for obj in desired(parent, parse_spec(manifest["spec"], PRODUCT), PRODUCT, seed=f"bench-{parent.uid}"):
        obj = json.loads(json.dumps(obj))  # a plain, private copy
        obj["metadata"].pop("ownerReferences", None)
        out.append(obj)
    return out


def workloads(objects: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every workload among ``objects``."""
    return {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects
            if o["kind"] in WORKLOAD_KINDS}


# -- readiness by the core's rules, from watches ------------------------------------------------------------------


class RolloutWatcher(FirstSeen):
    """Deployments, StatefulSets and DaemonSets in every namespace: when each expected workload is first rolled
    out by the core's rules (monotonic clock of this process)."""

    def __init__(self, kubeconfig: Path, expected: set[tuple[str, str, str]]) -> None:
        self.expected = set(expected)
        self.namespaces = {ns for _k, ns, _n in expected}

        def key(kind: str, obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
            k = (kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
            return k if k in self.expected else None

        super().__init__(kubeconfig, list(WORKLOAD_KINDS.items()), key, lambda kind, obj: rollout(obj, kind).ready)

    def wait(self, timeout: float, alive: Any = None, n: int | None = None) -> bool:  # type: ignore[override]
        return super().wait(len(self.expected) if n is None else n, timeout, alive)

    def all_ready_at(self) -> float | None:
        return max(self.ready_at.values()) if len(self.ready_at) == len(self.expected) else None

    def per_namespace_ready_at(self) -> dict[str, float]:
        """When the last workload of each namespace was rolled out (for namespaces complete only)."""
        out: dict[str, float] = {}
        for ns in self.namespaces:
            mine = [k for k in self.expected if k[1] == ns]
            if all(k in self.ready_at for k in mine):
                out[ns] = max(self.ready_at[k] for k in mine)
        return out


# -- cluster alone ------------------------------------------------------------------------------------------------


def alone_client(kubeconfig: Path) -> Client:
    client = Client(config=KubeConfig.from_file(str(kubeconfig)), field_manager=ALONE_MANAGER, trust_env=False,
                    timeout=REQUEST_TIMEOUT)  # type: ignore[arg-type]  # httpx takes seconds too
    client._client._client.headers["User-Agent"] = ALONE_AGENT  # so the audit log tells its requests apart
    return client


def apply_objects(clients: Sequence[Client], objects: Sequence[Mapping[str, Any]]) -> None:
    """Server-side apply of every object, no order, as fast as the clients send them: one thread per client
    (a TLS connection shared by threads breaks), objects dealt round-robin."""

    def chunk(i: int) -> None:
        for obj in objects[i::len(clients)]:
            # the manifest as it is (no typed model in between: the client's CPU must not be what is measured)
            meta = obj["metadata"]
            clients[i].patch(resource_registry.load(obj["apiVersion"], obj["kind"]), meta["name"], dict(obj),
                             namespace=meta["namespace"], patch_type=PatchType.APPLY, force=True)

    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(chunk, range(len(clients))))


def run_alone(kubeconfig: Path, per_namespace: Mapping[str, Sequence[Mapping[str, Any]]], *, threads: int,
              timeout: float) -> dict[str, Any]:
    """Apply every object of every namespace at once; wait for every workload rolled out (core's rules)."""
    objects = [o for objs in per_namespace.values() for o in objs]
    expected = workloads(objects)
    clients = [alone_client(kubeconfig) for _ in range(threads)]  # made before the clock starts
    try:
        with RolloutWatcher(kubeconfig, expected) as watcher:
            t0 = time.monotonic()
            apply_objects(clients, objects)
            sent = time.monotonic() - t0
            done = watcher.wait(timeout)
            last = watcher.all_ready_at()
            per_ns = sorted(t - t0 for t in watcher.per_namespace_ready_at().values())
            return {
                "objects": len(objects), "workloads": len(expected), "apply_threads": threads,
                "applied_in_s": sent, "all_ready": done,
                "all_ready_s": (last - t0) if last is not None else None,
                "ready_workloads": len(watcher.ready_at), "timeout_s": timeout, "per_namespace_ready_s": per_ns,
            }
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                c.close()


# -- Helm -----------------------------------------------------------------------------------------------------------


def helm_binary() -> Path:
    """helm as the testenv builds it (pinned, cached; built from the Go module proxy if missing)."""
    found = os.environ.get("D3OS_BENCH_HELM")
    if found:
        return Path(found)
    from d3os_testenv.build import ensure_tool

    return ensure_tool("helm")


def write_chart(root: Path) -> Path:
    """One generic chart: its template prints every object of ``.Values.objects``; each release's values
    are the rendered objects of one DataService (so Go templates never touch the objects' text)."""
    chart = root / "d3os-dataservice-rendered"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: d3os-dataservice-rendered\nversion: 0.1.0\n"
        "description: The objects d3os-operator's core renders for one DataService, as a Helm chart.\n")
    (chart / "values.yaml").write_text("objects: []\n")
    (chart / "templates" / "objects.yaml").write_text(CHART_TEMPLATE)
    return chart


class Helm:
    """``helm`` with its own cache/config/data directories (nothing of the user's is read or written)."""

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.binary = helm_binary()
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.env = {**os.environ, "HELM_CACHE_HOME": str(workdir / "cache"),
                    "HELM_CONFIG_HOME": str(workdir / "config"), "HELM_DATA_HOME": str(workdir / "data"),
                    "KUBECONFIG": str(kubeconfig)}
        for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            self.env.pop(proxy, None)  # the API server is on loopback
        self.chart = write_chart(workdir)

    def version(self) -> str:
        out = subprocess.run([str(self.binary), "version", "--short"], capture_output=True, text=True,
                             env=self.env, check=False)
        return out.stdout.strip()

    def install(self, release: str, namespace: str, objects: Sequence[Mapping[str, Any]],
                timeout: float) -> dict[str, Any]:
        """``helm install --wait``: (start, end) monotonic, return code and the tail of its output."""
        values = self.workdir / f"values-{namespace}.json"
        values.write_text(json.dumps({"objects": list(objects)}))  # JSON is YAML
        cmd = [str(self.binary), "install", release, str(self.chart), "--namespace", namespace,
               "--values", str(values), "--wait", "--timeout", f"{int(timeout)}s", "--kubeconfig",
               str(self.kubeconfig)]
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=False)
        end = time.monotonic()
        return {"namespace": namespace, "start": start, "end": end, "code": proc.returncode,
                "output": (proc.stdout + proc.stderr)[-400:] if proc.returncode else ""}


def run_helm(kubeconfig: Path, per_namespace: Mapping[str, Sequence[Mapping[str, Any]]], *, parallel: int,
             timeout: float, release: str = "dataservice-sample") -> dict[str, Any]:
    """One ``helm install --wait`` per namespace, ``parallel`` at a time, all queued at once."""
    objects = [o for objs in per_namespace.values() for o in objs]
    expected = workloads(objects)
    workdir = Path(tempfile.mkdtemp(prefix="d3os-bench-helm-"))
    try:
        helm = Helm(kubeconfig, workdir)
        version = helm.version()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        with RolloutWatcher(kubeconfig, expected) as watcher, \
                concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            t0 = time.monotonic()
            runs = list(pool.map(lambda item: helm.install(release, item[0], item[1], timeout),
                                 per_namespace.items()))
            t_end = time.monotonic()
            watcher.wait(5.0)  # helm said done: the core's rules may lag by a watch event
            core_last = watcher.all_ready_at()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        failed = [r for r in runs if r["code"] != 0]
        durations = sorted(r["end"] - r["start"] for r in runs)
        return {
            "helm_version": version, "parallel": parallel, "releases": len(runs),
            "objects": len(objects), "workloads": len(expected),
            "all_installed": not failed, "failed": len(failed), "failures": [r["output"] for r in failed[:3]],
            "all_installed_s": t_end - t0,
            "per_release_s": durations,
            "core_rules_all_ready_s": (core_last - t0) if core_last is not None else None,
            "helm_cpu_s": round((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), 2),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
