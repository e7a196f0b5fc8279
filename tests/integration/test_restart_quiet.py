"""A restart with unchanged products sends no write (issue "Products as data", must show 5): the operator
that comes back reads its caches, plans every instance of every product, finds them as they should be and
leaves them alone -- no apply, no status, no Event, no finalizer patch. Judged from the API server's audit
log, up to its high-water mark (a marker request seen in the log), not after a sleep."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from prometheus_client.parser import text_string_to_metric_families

from d3os_testenv import audit, harness
from d3os_testenv.operatorproc import OperatorProcess

from .standin import ensure_volumes, wait_for

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AGENT = "d3os-operator/"


def _metrics(op: OperatorProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    port = op.logged_port("serving metrics")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _settled(op: OperatorProcess, controllers: set[str]) -> bool:
    """Every product's controller has reconciled, nothing is queued or being reconciled."""
    m = _metrics(op)
    done = {dict(labels).get("controller") for (name, labels), v in m.items()
            if name == "controller_runtime_reconcile_total" and v > 0}
    depth = sum(v for (name, _), v in m.items() if name == "workqueue_depth")
    busy = sum(v for (name, _), v in m.items() if name == "controller_runtime_active_workers")
    return controllers <= done and depth == 0 and busy == 0


def test_a_restart_with_unchanged_products_sends_no_write(
    k8s_cluster: Any, client: Client, crd: None, k8s_namespace: str, sample: dict[str, Any], tmp_path: Path
) -> None:
    ns = k8s_namespace
    ensure_volumes(client)
    asvc = yaml.safe_load((ROOT / "examples" / "analyticsservice-sample.yaml").read_text(encoding="utf-8"))
    first = OperatorProcess(k8s_cluster.kubeconfig, tmp_path / "operator-1.log", namespaces=[ns])
    second: OperatorProcess | None = None
    try:
        first.wait_synced()
        for doc in (sample, asvc):
            k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc, allow_unicode=True))
        table = lambda: k8s_cluster.kubectl("get", "dataservices,analyticsservices", "-n", ns,  # noqa: E731
                                            "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}")
        wait_for("both instances Ready", lambda: table().stdout.split() == ["True", "True"], 240)
        wait_for("the first operator to settle", lambda: _settled(first, {"dataservice", "analyticsservice"}), 60)
        first.stop()
        assert first.returncode == 0, first.tail()

        started = time.time()
        second = OperatorProcess(k8s_cluster.kubeconfig, tmp_path / "operator-2.log", namespaces=[ns])
        second.wait_synced()
        wait_for("the restarted operator to reconcile both products and settle",
                 lambda: _settled(second, {"dataservice", "analyticsservice"}), 60)
        time.sleep(6.0)  # past a probe period and the first-probe grace: a late pass would write now if ever
        mark = audit.high_water(client, k8s_cluster.audit_log)
        sent = [r for r in audit.read(k8s_cluster.audit_log, since=started, agent=AGENT) if r.at <= mark]
        writes = [f"{r.verb} {r.resource}/{r.subresource} {r.name}" for r in sent if r.is_write
                  and r.resource != "leases"]
        assert sent, "the restarted operator's requests are in the audit log (it listed and watched)"
        assert writes == [], writes
        assert table().stdout.split() == ["True", "True"]
    finally:
        op = second or first
        if not op.alive:
            op = OperatorProcess(k8s_cluster.kubeconfig, tmp_path / "operator-3.log", namespaces=[ns])
            op.wait_synced()
        harness.delete_dataservices(client, ns)
        k8s_cluster.kubectl("delete", "analyticsservices", "--all", "-n", ns, "--wait=true", "--timeout=60s",
                            check=False)
        op.stop()
