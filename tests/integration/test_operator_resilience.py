"""The informers survive the API server going away: watches fail, the operator backs off, relists, and
goes on reacting (here: a Deployment deleted after the restart comes back)."""

from __future__ import annotations

import time

import pytest

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import Env, figures_out, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def test_operator_recovers_after_an_apiserver_restart(deployed: Env) -> None:
    env = deployed
    cluster = env.cluster
    if not hasattr(cluster, "restart_component"):
        pytest.skip("needs a d3os_testenv LocalCluster (restarts kube-apiserver)")
    op = env.operator.operator
    assert op is not None
    relists_before = dict(op.stats()["relists"])
    t0 = time.monotonic()
    cluster.restart_component("kube-apiserver")
    restarted = time.monotonic() - t0
    old = env.obj("Deployment", "proxy")
    assert old is not None
    cluster.kubectl("delete", "deployment", "proxy", "-n", env.namespace, "--wait=false")

    def back() -> bool:
        d = env.obj("Deployment", "proxy")
        return d is not None and d["metadata"]["uid"] != old["metadata"]["uid"]

    wait_for("proxy to be re-created after the restart", back, 90)
    env.wait_ready(timeout=90)
    healed = time.monotonic() - t0
    relists = op.stats()["relists"]
    assert any(relists[k] > relists_before.get(k, 0) for k in relists), relists
    env.operator.check_alive()
    figures_out(
        "apiserver_restart",
        {"restart_s": round(restarted, 1), "restart_to_healed_s": round(healed, 1), "relists": relists},
    )
