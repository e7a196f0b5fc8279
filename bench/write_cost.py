"""What one write costs the API server, by kind of write: why the operator's rollout of N DataServices
takes longer than the same objects applied alone, on a machine whose CPUs the control plane saturates.

The cluster-alone baseline sends one server-side apply per rendered object and nothing else. The operator
sends the same applies plus what the product asks of it: a status write at each step (the seed's
``kubectl get`` transcript shows every step), a finalizer (ordered deletion) and Events. Those land on a
custom resource, which the API server handles as unstructured JSON, validated against the CRD's OpenAPI
schema and its CEL rules (evaluated over the whole object on every write, status writes included), with
managedFields computed from that schema: each costs several ConfigMap applies.

Method: with no operator running, in a fresh namespace, one client sends ``n`` writes of each kind one
after another; the API server's and etcd's CPU seconds (``/proc/PID/stat``) are read before and after each
kind, so the figure is CPU per request, little affected by other load on the machine (wall time per
request is reported too, and is). The DataServices are the seed's sample; the statuses are those the core
writes during its rollout (planner passes against :class:`d3os_core.fake.FakeCluster`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Event, Namespace, Service
from lightkube.types import PatchType

from d3os_core import Facts, api, plan
from d3os_core.fake import FakeCluster
from d3os_operator.products import installed_product

DATASERVICE = installed_product("dataservice")
"""The dataservice product as shipped (products/dataservice/product.yaml)."""
MANAGER = "d3os-bench-writes"


def rollout_statuses(manifest: dict[str, Any], limit: int = 40) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The statuses the core writes while rolling ``manifest`` out, and the objects it applies (in order)."""
    ds = copy.deepcopy(manifest)
    ds["metadata"] = {"name": ds["metadata"]["name"], "namespace": "bench", "uid": "bench-uid", "generation": 1}
    fc = FakeCluster()
    statuses: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for tick in range(limit):
        p = plan(ds, fc.observed(), Facts(now=f"2026-01-01T00:{tick // 60:02d}:{tick % 60:02d}Z", secret_seed="b"),
                 DATASERVICE)
        if p.finalizer == "add":
            ds["metadata"]["finalizers"] = [api.FINALIZER]
        objects += [copy.deepcopy(step.manifest) for step in p.apply]
        if p.status and (not statuses or p.status != statuses[-1]):
            statuses.append(copy.deepcopy(p.status))
        ds["status"] = copy.deepcopy(p.status)
        fc.carry_out(p)
        fc.settle()
        if not p.apply and (ds["status"].get("phase") or "").endswith("已部署") and not p.delete \
                and any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in ds["status"].get("conditions") or []):
            break
    return statuses, objects


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_write_cost(env: Any, n: int = 100) -> dict[str, Any]:
    """CPU of the API server and etcd per write, for each kind of write the operator and the baselines send."""
    procs = getattr(env.cluster, "processes", None)
    read = getattr(procs, "read_pid", None)
    apiserver, etcd = (read("kube-apiserver"), read("etcd")) if read else (None, None)
    if apiserver is None or etcd is None:
        return {"skipped": "needs the bench's own local control plane (process ids of kube-apiserver and etcd)"}
    from d3os_operator.kube import DataService as ds_res
    from d3os_testenv import harness

    client = env.client
    ns = f"bench-writes-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=ns, labels={"d3os-bench": "1"})))
    manifest = env.sample()
    statuses, objects = rollout_statuses(manifest)
    out: dict[str, Any] = {"n": n, "namespace": ns, "statuses_in_a_rollout": len(statuses), "writes": {}}

    def measure(label: str, write: Callable[[int], Any]) -> None:
        a0, e0, t0 = _cpu(apiserver), _cpu(etcd), time.monotonic()
        for i in range(n):
            write(i)
        out["writes"][label] = {
            "apiserver_cpu_ms": round(1000 * (_cpu(apiserver) - a0) / n, 2),
            "etcd_cpu_ms": round(1000 * (_cpu(etcd) - e0) / n, 2),
            "wall_ms": round(1000 * (time.monotonic() - t0) / n, 2),
        }

    def status_body(i: int, status: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": api.API_VERSION, "kind": api.KIND,
                "metadata": {"name": f"ds-{i}", "namespace": ns}, "status": status}

    try:
        measure("DataService create (apply)", lambda i: harness.apply_dataservice(
            client, {**manifest, "metadata": {"name": f"ds-{i}"}}, ns, manager=MANAGER))
        measure("DataService status: apply (first)", lambda i: client.patch(
            ds_res.Status, f"ds-{i}", status_body(i, statuses[i % len(statuses)]), namespace=ns,
            patch_type=PatchType.APPLY, field_manager=MANAGER, force=True))
        measure("DataService status: apply (next step)", lambda i: client.patch(
            ds_res.Status, f"ds-{i}", status_body(i, statuses[(i + 1) % len(statuses)]), namespace=ns,
            patch_type=PatchType.APPLY, field_manager=MANAGER, force=True))
        measure("DataService finalizer: merge patch", lambda i: client.patch(
            ds_res, f"ds-{i}", {"metadata": {"finalizers": ["bench.d3os.io/writes"]}}, namespace=ns,
            patch_type=PatchType.MERGE, field_manager=MANAGER))
        measure("Event create", lambda i: client.create(Event(
            metadata=ObjectMeta(name=f"ev-{i}", namespace=ns),
            involvedObject={"apiVersion": api.API_VERSION, "kind": api.KIND, "name": f"ds-{i}", "namespace": ns},
            reason="Deploying", message="mysql已部署: applying", type="Normal", count=1,
            firstTimestamp="2026-01-01T00:00:00Z", lastTimestamp="2026-01-01T00:00:00Z",
            source={"component": "d3os-operator"}), field_manager=MANAGER))
        measure("Event patch (count)", lambda i: client.patch(
            Event, f"ev-{i}", {"count": 12, "lastTimestamp": "2026-01-01T00:01:00Z"}, namespace=ns,
            patch_type=PatchType.MERGE, field_manager=MANAGER))
        for kind, res in (("ConfigMap", ConfigMap), ("Service", Service)):
            sample = [o for o in objects if o["kind"] == kind]

            def apply(i: int, res: Any = res, sample: list[dict[str, Any]] = sample) -> None:
                obj = copy.deepcopy(sample[i % len(sample)])
                obj["metadata"] = {**obj["metadata"], "name": f"w-{i}", "namespace": ns}
                obj["metadata"].pop("ownerReferences", None)
                if obj["kind"] == "Service":
                    obj["spec"].pop("clusterIP", None)
                    for port in obj["spec"].get("ports") or []:
                        port.pop("nodePort", None)  # a nodePort is unique in a cluster
                client.patch(res, f"w-{i}", obj, namespace=ns, patch_type=PatchType.APPLY,
                             field_manager=MANAGER, force=True)

            measure(f"{kind} apply (create)", apply)
    finally:
        for i in range(n):  # let the namespace go: drop the finalizer this part added
            with contextlib.suppress(Exception):  # not created (the part failed early): nothing to release
                client.patch(ds_res, f"ds-{i}", {"metadata": {"finalizers": None}}, namespace=ns,
                             patch_type=PatchType.MERGE)
        client.delete(Namespace, ns)
    return out
