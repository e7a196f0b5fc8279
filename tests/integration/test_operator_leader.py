"""Leader election (the seed's operator had it): two ``d3os-operator run --leader-elect`` replicas, one acts;
SIGKILL the leader and the other takes over within the Lease duration and keeps the DataService right."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client

from d3os_operator import harness

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import StandIn, ensure_volumes, wait_for  # noqa: E402
from .test_operator_restart import Proc  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def _applied(p: Proc) -> int:
    return sum(1 for x in p.lines() if x.get("msg") == "applied")


def test_one_leader_acts_and_a_standby_takes_over(
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
    extra = ["--leader-elect", "--leader-election-namespace", ns]
    a = Proc(k8s_cluster.kubeconfig, ns, tmp_path / "a.log", extra)
    wait_for("a to lead", lambda: any(x.get("msg") == "became leader" for x in a.lines()), 30)
    b = Proc(k8s_cluster.kubeconfig, ns, tmp_path / "b.log", extra)
    procs = [a, b]
    try:
        wait_for(
            "b to wait for leadership", lambda: any(x.get("msg") == "waiting for leadership" for x in b.lines()), 30
        )
        k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(sample, allow_unicode=True))
        wait_for("Ready", lambda: harness.is_ready(harness.get_dataservice(client, ns, "dataservice-sample")), 120)
        assert _applied(a) > 0 and _applied(b) == 0, "only the leader writes"
        assert not any(x.get("msg") == "became leader" for x in b.lines())

        a.p.send_signal(signal.SIGKILL)
        a.p.wait(10)
        killed = time.monotonic()
        wait_for("b to take over", lambda: any(x.get("msg") == "became leader" for x in b.lines()), 30)
        took = time.monotonic() - killed
        assert took <= 15 + 3, f"took over after {took:.1f}s (lease 15 s)"
        # the new leader keeps things right: a deleted Deployment comes back
        k8s_cluster.kubectl("delete", "deployment", "web", "-n", ns, "--wait=false")
        wait_for(
            "web to come back",
            lambda: _applied(b) > 0 and harness.is_ready(harness.get_dataservice(client, ns, "dataservice-sample")),
            60,
        )
        print(f"\nstandby took over {took:.1f}s after the leader was killed")
        harness.delete_dataservices(client, ns)
    finally:
        for p in procs:
            p.stop()
    # a clean stop releases the Lease at once
    assert any(x.get("msg") == "stopped" for x in b.lines())
