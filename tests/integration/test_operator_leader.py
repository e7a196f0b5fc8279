"""Two replicas (``d3os-operator run --leader-elect``): exactly one holds the Lease and reconciles; SIGKILL it
mid-rollout and the standby takes over and finishes the rollout. kube-apiserver's audit log shows that no
replica wrote anything (but its Lease attempts) while it did not hold the Lease. Both replicas' endpoints
answer during the rollout: the leader's /metrics has the controller-runtime series, the standby is ready."""

from __future__ import annotations

import base64
import datetime as dt
import signal
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from lightkube import Client
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Secret
from prometheus_client.parser import text_string_to_metric_families

from d3os_testenv import audit, harness

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import StandIn, ensure_volumes, figures_out, wait_for  # noqa: E402
from .test_operator_restart import Proc  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

LEASE = "d3os-operator.d3os-product.com.d3os"


def _first(p: Proc, msg: str) -> dict[str, Any] | None:
    return next((x for x in p.lines() if x.get("msg") == msg), None)


def _ports(p: Proc) -> dict[str, int]:
    """The ports each replica bound (``127.0.0.1:0`` picks free ones; the log says which)."""
    return {
        x["msg"].removeprefix("serving "): int(x["port"]) for x in p.lines() if x.get("msg", "").startswith("serving ")
    }


def _get(port: int, path: str) -> httpx2.Response:
    return httpx2.get(f"http://127.0.0.1:{port}{path}", timeout=5, trust_env=False)


def _series(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _total(series: dict[str, list[tuple[dict[str, str], float]]], metric: str, **labels: str) -> float:
    return sum(v for lab, v in series.get(metric, []) if all(lab.get(k) == w for k, w in labels.items()))


def _ready_components(client: Client, ns: str) -> int:
    ds = harness.get_dataservice(client, ns, "dataservice-sample") or {}
    return sum(1 for c in (ds.get("status") or {}).get("components") or [] if c.get("ready"))


def test_one_leader_acts_and_a_standby_takes_over_mid_rollout(
    k8s_cluster: Any,
    client: Client,
    crd: None,
    k8s_namespace: str,
    uuc: StandIn,
    sample: dict[str, Any],
    tmp_path: Path,
) -> None:
    ns = k8s_namespace
    ensure_volumes(client)
    t0 = time.time()
    extra = ["--leader-elect", "--leader-election-namespace", ns, "--log-level", "debug"]
    procs: list[Proc] = []
    try:
        a = Proc(k8s_cluster.kubeconfig, ns, tmp_path / "a.log", extra)
        procs.append(a)
        wait_for("a to lead", lambda: _first(a, "became leader"), 60)
        b = Proc(k8s_cluster.kubeconfig, ns, tmp_path / "b.log", extra)
        procs.append(b)
        wait_for(
            "b to sync and wait", lambda: _first(b, "caches synced; waiting for leadership before reconciling"), 60
        )
        id_a = str(_first(a, "became leader")["identity"])  # type: ignore[index]
        id_b = str(_first(b, "waiting for leadership")["identity"])  # type: ignore[index]
        pa, pb = _ports(a), _ports(b)
        # the standby is healthy and ready (its caches are synced), and says it is not the leader
        assert _get(pb["health probes"], "/healthz").status_code == 200
        rb = _get(pb["health probes"], "/readyz")
        assert rb.status_code == 200 and "standby" in rb.text

        k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(sample, allow_unicode=True))
        wait_for("the rollout to be half way", lambda: _ready_components(client, ns) >= 4, 120)
        # the leader's metrics during the rollout
        assert _get(pa["health probes"], "/readyz").status_code == 200
        ready_before = _ready_components(client, ns)
        ma = _series(_get(pa["metrics"], "/metrics").text)
        ready_after_scrape = _ready_components(client, ns)
        mb = _series(_get(pb["metrics"], "/metrics").text)
        assert _total(ma, "controller_runtime_reconcile_total", controller="dataservice") > 0
        assert _total(ma, "controller_runtime_reconcile_time_seconds_count", controller="dataservice") > 0
        assert _total(ma, "workqueue_adds_total", name="dataservice") > 0
        assert _total(ma, "workqueue_queue_duration_seconds_count", name="dataservice") > 0
        assert "workqueue_depth" in ma
        assert _total(ma, "rest_client_requests_total", method="PATCH", code="200") > 0
        assert _total(ma, "rest_client_requests_total", method="GET", code="200") > 0
        assert _total(ma, "rest_client_request_duration_seconds_count", verb="PATCH") > 0
        assert _total(ma, "process_resident_memory_bytes") > 10_000_000
        assert _total(ma, "process_cpu_seconds_total") > 0
        assert "workqueue_unfinished_work_seconds" in ma and "workqueue_longest_running_processor_seconds" in ma
        assert _total(ma, "leader_election_master_status", name=LEASE) == 1
        assert _total(mb, "leader_election_master_status", name=LEASE) == 0
        assert _total(mb, "controller_runtime_reconcile_total") == 0
        # the metric says what the status said around the scrape (the rollout goes on meanwhile: no fixed window)
        ready = _total(ma, "d3os_component_ready", namespace=ns, name="dataservice-sample")
        assert 4 <= ready_before <= ready <= ready_after_scrape, (ready_before, ready, ready_after_scrape)
        assert _total(ma, "d3os_step_latency_seconds_count") >= 3
        assert _total(ma, "d3os_writes_total", verb="apply") > 0

        a.p.send_signal(signal.SIGKILL)
        a.p.wait(10)
        killed_wall, killed = time.time(), time.monotonic()
        wait_for("b to take over", lambda: _first(b, "became leader"), 60)
        took = time.monotonic() - killed
        wait_for("Ready", lambda: harness.is_ready(harness.get_dataservice(client, ns, "dataservice-sample")), 180)
        ready_after = time.monotonic() - killed
        # the Lease expires at most 15 s after the kill and b retries every 2 s; 10 s more for a busy machine
        # (the exact order -- no write of b before it held the Lease -- is judged from the audit log below)
        assert took <= 15 + 2 + 10, f"took over after {took:.1f}s (lease 15 s, retry 2 s)"
        mb = _series(_get(pb["metrics"], "/metrics").text)
        assert _total(mb, "leader_election_master_status", name=LEASE) == 1
        assert _total(mb, "controller_runtime_reconcile_total", controller="dataservice") > 0

        # the apiserver's own record: who wrote what, when
        lease = client.get(Lease, LEASE, namespace=ns)
        assert lease.spec.holderIdentity == id_b
        acquired_b = lease.spec.acquireTime.timestamp()
        time.sleep(1.5)  # the audit backend flushes every second
        reqs = list(audit.read(k8s_cluster.audit_log, since=t0, agent="d3os-operator/"))
        writes = [r for r in reqs if r.is_write and r.resource != "leases"]
        by_a = [r for r in writes if id_a in r.user_agent]
        by_b = [r for r in writes if id_b in r.user_agent]
        assert by_a and by_b, "both replicas wrote while they led"
        assert all(r.at <= killed_wall for r in by_a)
        early = [r for r in by_b if r.at < acquired_b]
        assert not early, f"the standby wrote before it held the Lease: {early[:3]}"
        assert len(by_a) + len(by_b) == len(writes), "every write came from one of the two replicas"
        figures_out(
            "leader_takeover",
            {
                "takeover_s": round(took, 2),
                "ready_after_kill_s": round(ready_after, 2),
                "writes_by_leader_a": len(by_a),
                "writes_by_b_after_acquire": len(by_b),
                "writes_by_b_before_acquire": len(early),
                "b_acquired_after_kill_s": round(acquired_b - killed_wall, 2),
            },
        )
        print(
            f"\nstandby took over {took:.1f}s after SIGKILL of the leader; Ready {ready_after:.1f}s after it; "
            f"audit: a wrote {len(by_a)}, b wrote {len(by_b)} after acquiring at "
            f"{dt.datetime.fromtimestamp(acquired_b, dt.UTC):%H:%M:%S.%f}, {len(early)} before"
        )
        # never a secret in the logs, even at debug
        secret = client.get(Secret, "mysql-dataservice-credentials", namespace=ns)
        data = secret.data or {}
        values = [base64.b64decode(data[k]).decode() for k in ("password", "root-password")]
        assert all(len(v) >= 16 for v in values)
        for p in (a, b):
            text = p.log.read_text()
            assert not [v for v in values if v in text], f"a secret value is in {p.log.name}"
        harness.delete_dataservices(client, ns)
    finally:
        for p in procs:
            p.stop()
    # a clean stop releases the Lease at once
    assert _first(b, "stopped")
