"""Issue 4, "Done when" 1, 6 and 10: the seed's sample rolls out in the seed's order on the real local
control plane, matches the seed's ``kubectl get all``, is Ready, then stays quiet (zero writes over 60 s),
and the figures (apply -> Ready, operator-added latency per step) are printed.

One rollout is shared by the tests of this module (module-scoped fixture), in its own namespace.
"""

from __future__ import annotations

import itertools
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from d3os_core import api, readiness
from d3os_testenv import audit, harness

pytest.register_assert_rewrite("tests.integration.standin")
from .apiwatch import ApiWatch  # noqa: E402
from .standin import (  # noqa: E402
    CHAIN,
    SEED_OBJECTS,
    SEED_PORTS,
    WORKLOADS,
    StandIn,
    ensure_volumes,
    expected_phases,
    figures_out,
    list_kind,
    point_uuc_at,
    summarize_ms,
)

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

READY_TIMEOUT = 240.0


@dataclass
class Rollout:
    namespace: str
    name: str
    uuc: StandIn
    operator: harness.RunningOperator
    recorder: harness.StatusRecorder
    applied_at: float
    ready_at: float
    watch: ApiWatch


@pytest.fixture(scope="module")
def rollout(k8s_cluster: Any, client: Client, crd: None) -> Iterator[Rollout]:
    ns = f"t-rollout-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=ns)))
    ensure_volumes(client)
    try:
        with StandIn() as uuc, harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[ns]) as op:
            manifest = point_uuc_at(harness.load_sample(), uuc)
            name = manifest["metadata"]["name"]
            with harness.StatusRecorder(k8s_cluster.kubeconfig, ns, name) as rec, \
                    ApiWatch(k8s_cluster.kubeconfig, ns) as watch:
                applied_at = time.monotonic()
                k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(manifest, allow_unicode=True))
                rec.wait_for(harness.is_ready, READY_TIMEOUT, "Ready=True")
                ready_at = next(c["t"] for c in rec.changes if c["conditions"].get("Ready", {}).get("status") == "True")
                try:
                    yield Rollout(ns, name, uuc, op, rec, applied_at, ready_at, watch)
                finally:
                    harness.delete_dataservices(client, ns)
    finally:
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_each_step_starts_after_its_predecessor_is_ready_as_the_api_server_saw_it(rollout: Rollout) -> None:
    """Order judged from outside the operator (issue 24, C11): the API server's watch orders every write by
    resourceVersion, and the stand-in's log says when uuc's check was first answered. A component's first
    object is created only after the event that shows its predecessor's workload rolled out (by the rules
    tests/integration/test_readiness_oracle.py holds to ``kubectl rollout status``); eureka only after uuc's
    check answered (the stand-in's clock and this process's are one)."""
    rollout.watch.sync()
    timeline = rollout.watch.timeline()
    created = {}
    for e in timeline:
        if e.type == "ADDED" and e.component and e.component not in created:
            created[e.component] = e
    ready = {}
    for comp, (kind, name) in WORKLOADS.items():
        ready[comp] = next(e for e in timeline if e.kind == kind and e.name == name and e.type != "DELETED"
                           and readiness.rollout(dict(e.obj), kind).ready)
    answered = min(t for t, status in rollout.uuc.log if status < 400)
    order = []
    for prev, comp in itertools.pairwise(CHAIN):
        if prev == "uuc":  # a third party: ready when its check is answered
            assert created[comp].t > answered, (comp, "created before uuc's check was answered")
            order.append(f"uuc answered -> {created[comp]}")
        elif comp == "uuc":
            # uuc has no object; when its check started cannot be ordered against the watch soundly (a watch
            # event's receipt is only an upper bound on when it happened), so mysql -> uuc is judged by the next
            # step: nothing of eureka's before uuc answered
            order.append(f"{ready[prev]} -> uuc")
        else:
            assert created[comp].rv > ready[prev].rv, (comp, str(created[comp]), "before", str(ready[prev]))
            order.append(f"{ready[prev]} -> {created[comp]}")
    print("\n" + "\n".join(order))


def test_phases_follow_the_seed_transcript(rollout: Rollout) -> None:
    seen = rollout.recorder.phases()
    assert seen == expected_phases(), "\n".join(f"{p:<20} {m}" for p, m in seen)


def test_ready_and_conditions(client: Client, rollout: Rollout) -> None:
    ds = harness.get_dataservice(client, rollout.namespace, rollout.name)
    assert ds is not None
    status = ds["status"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "True"
    assert conds["Degraded"]["status"] == "False"
    assert status["observedGeneration"] == ds["metadata"]["generation"]
    assert [c["name"] for c in status["components"]] == list(CHAIN)
    assert all(c["state"] == "Ready" for c in status["components"])
    assert api.FINALIZER in ds["metadata"]["finalizers"]
    out = rollout.operator.kube
    assert out is not None


def test_objects_match_the_seeds_get_all(k8s_cluster: Any, client: Client, rollout: Rollout) -> None:
    ns = rollout.namespace
    for kind, names in SEED_OBJECTS.items():
        got = {o["metadata"]["name"] for o in list_kind(client, kind, ns)}
        assert got == names, kind
    services = {s["metadata"]["name"]: s for s in list_kind(client, "Service", ns)}
    for name, ports in SEED_PORTS.items():
        svc = services[name]
        p = svc["spec"]["ports"][0]
        shown = (
            f"{p['port']}:{p['nodePort']}/{p['protocol']}"
            if svc["spec"]["type"] == "NodePort"
            else f"{p['port']}/{p['protocol']}"
        )
        assert (svc["spec"]["type"], shown) == ("NodePort" if name == "web" else "ClusterIP", ports), name
    # the workloads are really rolled out: 11 pods running, 1/1 each
    pods = list_kind(client, "Pod", ns)
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    assert len(running) == 11, [p["metadata"]["name"] for p in pods]
    assert any(p["metadata"]["name"] == "mysql-dataservice-0" for p in running)
    # the seed's extra ConfigMaps and one per component
    labels = {api.LABEL_MANAGED_BY: api.MANAGED_BY}
    cms = {c["metadata"]["name"] for c in list_kind(client, "ConfigMap", ns, labels=labels)}
    assert {"mysql-dataservice-init", "trd-adapter-py", "web-template"} <= cms
    print("\n$ kubectl get all\n" + k8s_cluster.kubectl("get", "all", "-n", ns).stdout)
    print("$ kubectl get dataservice\n" + k8s_cluster.kubectl("get", "dataservice", "-n", ns).stdout)


def test_every_child_is_owned_and_labelled(client: Client, rollout: Rollout) -> None:
    ds = harness.get_dataservice(client, rollout.namespace, rollout.name)
    assert ds is not None
    uid = ds["metadata"]["uid"]
    (claim,) = list_kind(client, "PersistentVolumeClaim", rollout.namespace)
    for kind in ("Deployment", "StatefulSet", "Service", "ConfigMap", "Secret"):
        for obj in list_kind(client, kind, rollout.namespace, labels={api.LABEL_MANAGED_BY: api.MANAGED_BY}):
            meta = obj["metadata"]
            assert meta["labels"][api.LABEL_INSTANCE] == rollout.name
            # the credentials Secret lives as long as the data: owned by the claim, not the DataService
            owner = claim["metadata"]["uid"] if kind == "Secret" else uid
            assert [r["uid"] for r in meta.get("ownerReferences", [])] == [owner], f"{kind}/{meta['name']}"
            managers = {m["manager"] for m in meta.get("managedFields", []) if m.get("operation") == "Apply"}
            assert managers == {api.FIELD_MANAGER}, f"{kind}/{meta['name']}: {managers}"


def test_figures_apply_to_ready_and_added_latency(rollout: Rollout) -> None:
    """Done when 10: time from apply to Ready; per step, dependency observed ready -> next apply sent."""
    records = rollout.operator.trace()
    rows = harness.step_latencies(records, CHAIN, WORKLOADS, f"{rollout.namespace}/{rollout.name}")
    measured = [r["latency_ms"] for r in rows if "latency_ms" in r]
    total = rollout.ready_at - rollout.applied_at
    table = "\n".join(f"  {r['step']:<32} {r.get('latency_ms', float('nan')):8.1f} ms" for r in rows)
    print(f"\napply -> Ready: {total:.2f} s (the seed's operator: 63 s)\noperator-added latency per step:\n{table}")
    summary = summarize_ms(measured)
    kube = rollout.operator.kube
    writes = {f"{v}:{k}": n for (v, k), n in kube.writes.items()} if kube else {}
    figures_out(
        "rollout",
        {
            "apply_to_ready_s": round(total, 2),
            "steps": rows,
            "added_latency": summary,
            "operator_writes_during_rollout": writes,
        },
    )
    assert len(measured) == len(CHAIN) - 1, rows
    assert all(m >= 0 for m in measured), rows
    # the aim is a median under 100 ms; this bound only catches a shell that polls instead of reacting
    assert statistics.median(measured) < 1000, summary


def test_steady_state_sends_zero_writes(k8s_cluster: Any, client: Client, rollout: Rollout) -> None:
    """Done when 6: after Ready, over 60 s, no write request from the operator: its own count, and the
    API server's record -- its audit log (every write by the operator's user agent), or, on a cluster without
    one, apiserver_request_total for every resource the operator writes. The metric names no sender: a busy
    machine's garbage collector, still deleting an earlier test's objects, can land in it."""
    op = rollout.operator
    assert op.kube is not None
    # let the reconcile that wrote Ready finish (its Events follow the status write)
    last, stable_since = op.writes, time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() - stable_since < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        if op.writes != last:
            last, stable_since = op.writes, time.monotonic()
    before_ops = dict(op.kube.writes)
    before_http = dict(op.kube.http_requests)
    before = harness.apiserver_requests(client)
    reconciles_before = op.operator.reconciler.reconciles if op.operator else 0
    window_start = time.time()
    time.sleep(60)
    after = harness.apiserver_requests(client)
    audit_log = getattr(k8s_cluster, "audit_log", None)
    audited = None if audit_log is None else sorted(
        f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''} {r.namespace}/{r.name}"
        for r in audit.read(audit_log, since=window_start, agent="d3os-operator/") if r.is_write
    )
    op.check_alive()
    own = {
        f"{v}:{k}": n - before_ops.get((v, k), 0)
        for (v, k), n in op.kube.writes.items()
        if n != before_ops.get((v, k), 0)
    }
    http = {m: n - before_http.get(m, 0) for m, n in op.kube.http_requests.items() if n != before_http.get(m, 0)}
    server = harness.operator_like_writes(before, after)
    figures_out(
        "steady_state",
        {
            "window_s": 60,
            "operator_writes": own,
            "operator_http_requests": http,
            "operator_reconciles": (op.operator.reconciler.reconciles if op.operator else 0) - reconciles_before,
            "apiserver_operator_like_writes": server,
            "audited_operator_writes": audited,
            "apiserver_event_posts_by_anyone": harness.event_posts(before, after),
        },
    )
    assert own == {}, own
    assert {m: n for m, n in http.items() if m != "GET"} == {}, http
    if audited is not None:
        assert audited == [], audited
    else:
        assert server == {}, server
