"""The chart's alerts and dashboard read only metrics the operator serves: the operator runs as it does in a
cluster (``d3os-operator run --leader-elect``), rolls out the sample (third-party checks included), and its
/metrics is scraped; every metric name a rule or a panel's query reads must be among those it serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from lightkube import Client
from prometheus_client.parser import text_string_to_metric_families

from d3os_testenv import harness
from tests.unit.promql import metric_names
from tests.unit.test_monitoring_files import dashboard_exprs, rule_exprs

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import StandIn, ensure_volumes, wait_for  # noqa: E402
from .test_operator_leader import _first, _ports  # noqa: E402
from .test_operator_restart import Proc  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"), "gauge": (), "untyped": (), "unknown": (), "info": ("_info",)}


def served(text: str) -> set[str]:
    """Every series name the exposition offers to a query (a family's samples, or the names it would have)."""
    names = set()
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        names.update(fam.name + s for s in SUFFIXES.get(fam.type, ()))
        names.update(s.name for s in fam.samples)
    return names


def test_every_query_reads_a_metric_the_operator_serves(
    k8s_cluster: Any, client: Client, crd: None, k8s_namespace: str, uuc: StandIn, sample: dict[str, Any],
    tmp_path: Path,
) -> None:
    ns = k8s_namespace
    ensure_volumes(client)
    op = Proc(k8s_cluster.kubeconfig, ns, tmp_path / "operator.log",
              ["--leader-elect", "--leader-election-namespace", ns])
    try:
        wait_for("the operator to lead", lambda: _first(op, "became leader"), 60)
        k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(sample, allow_unicode=True))

        def ready() -> bool:
            assert op.p.poll() is None, op.log.read_text()[-3000:]
            return harness.is_ready(harness.get_dataservice(client, ns, "dataservice-sample"))

        wait_for("the sample Ready", ready, 240)
        text = httpx2.get(f"http://127.0.0.1:{_ports(op)['metrics']}/metrics", timeout=10, trust_env=False).text
    finally:
        harness.delete_dataservices(client, ns)
        op.stop()
    offered = served(text)
    for what, exprs in (("alert rule", rule_exprs()), ("dashboard query", dashboard_exprs())):
        for expr in exprs:
            missing = metric_names(expr) - offered
            assert not missing, f"{what} `{expr}` reads {sorted(missing)}, which the operator does not serve"
    assert {"d3os_condition", "d3os_thirdparty_check_up", "leader_election_master_status"} <= offered
