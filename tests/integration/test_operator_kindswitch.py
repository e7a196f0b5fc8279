"""Issue 4, "Done when" 4 (控): switching a middleware's kind.

mysql StatefulSet -> third party -> StatefulSet: the StatefulSet goes and comes back, the PVC survives
with the same UID, dependents' configuration follows and their pods roll, in order.
eureka Deployment -> DaemonSet works the same way.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from d3os_core import api

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import CHAIN, Env, StandIn, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

MYSQL_USERS = ("api-manager", "auth", "ds-adapter", "trd-adapter")
"""Microservices whose configuration names mysql (d3os_core.dataservice)."""


def _pvcs(env: Env) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.objects("PersistentVolumeClaim")}


def _config_hashes(env: Env) -> dict[str, str]:
    out = {}
    for d in env.objects("Deployment"):
        ann = d["spec"]["template"]["metadata"].get("annotations") or {}
        out[d["metadata"]["name"]] = ann.get(api.ANNOTATION_CONFIG_HASH, "")
    return out


def _apply_order(env: Env, since: int, kind: str = "Deployment") -> list[str]:
    order: list[str] = []
    for r in env.operator.records[since:]:
        if r["what"] == "apply" and r["kind"] == kind and r["component"] not in order:
            order.append(r["component"])
    return order


def _switch(env: Env, manifest: dict[str, Any]) -> int:
    mark = len(env.operator.records)
    gen = env.ds()["metadata"]["generation"]  # type: ignore[index]
    env.apply(manifest)
    env.wait_ready(generation=gen + 1)
    return mark


def test_mysql_statefulset_to_third_party_and_back(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    pvcs = _pvcs(env)
    assert pvcs, "the StatefulSet's claim exists"
    hashes0 = _config_hashes(env)
    sts_uid = env.obj("StatefulSet", "mysql-dataservice")["metadata"]["uid"]  # type: ignore[index]

    with StandIn(path="/") as mysql_tp:
        third = copy.deepcopy(sample)
        third["spec"]["mysql"]["kind"] = 3
        third["spec"]["mysql"]["thirdParty"] = {"checkCMD": f"nc -z -w 2 127.0.0.1 {mysql_tp.port}"}
        mark = _switch(env, third)
        wait_for("the mysql StatefulSet to go", lambda: env.obj("StatefulSet", "mysql-dataservice") is None, 120)
        assert _pvcs(env) == pvcs, "the PVC survives with the same UID"
        hashes1 = _config_hashes(env)
        rolled = [k for k in MYSQL_USERS if hashes1[k] != hashes0[k]]
        assert rolled == list(MYSQL_USERS), (hashes0, hashes1)
        cm = env.obj("ConfigMap", "api-manager")
        assert cm is not None and f"127.0.0.1:{mysql_tp.port}" in str(cm["data"]), cm
        order = _apply_order(env, mark)
        assert order == [k for k in CHAIN if k in order], order
        assert set(MYSQL_USERS) <= set(order)

        back = copy.deepcopy(sample)
        mark = _switch(env, back)
    sts = wait_for("the mysql StatefulSet to come back", lambda: env.obj("StatefulSet", "mysql-dataservice"), 60)
    assert sts["metadata"]["uid"] != sts_uid
    assert _pvcs(env) == pvcs, "the same PVC (same UID) is used again"
    hashes2 = _config_hashes(env)
    assert all(hashes2[k] != hashes1[k] for k in MYSQL_USERS), (hashes1, hashes2)
    assert all(hashes2[k] == hashes0[k] for k in MYSQL_USERS), "back to the original configuration"
    order = _apply_order(env, mark, "Deployment")
    assert order == [k for k in CHAIN if k in order], order
    pods = [p for p in env.objects("Pod") if p["metadata"]["name"] == "mysql-dataservice-0"]
    assert pods and pods[0]["status"].get("phase") == "Running"


def test_eureka_deployment_to_daemonset(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    ds_manifest = copy.deepcopy(sample)
    ds_manifest["spec"]["eureka"]["kind"] = 2
    _switch(env, ds_manifest)
    daemonset = env.obj("DaemonSet", "eureka")
    assert daemonset is not None
    st = daemonset["status"]
    assert st["numberAvailable"] == st["desiredNumberScheduled"] >= 1
    wait_for("the eureka Deployment to go", lambda: env.obj("Deployment", "eureka") is None, 120)
    svc = env.obj("Service", "eureka")
    assert svc is not None and svc["spec"]["ports"][0]["port"] == 8761
    # and back
    _switch(env, copy.deepcopy(sample))
    wait_for("the eureka DaemonSet to go", lambda: env.obj("DaemonSet", "eureka") is None, 120)
    assert env.obj("Deployment", "eureka") is not None
