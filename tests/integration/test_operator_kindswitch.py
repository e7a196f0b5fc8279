"""Issue 4, "Done when" 4 (控): switching a middleware's kind, judged from the API server's watch events
(:func:`tests.integration.kindswitch.switch`; every direction is in ``test_kindswitch_table.py``).

mysql StatefulSet -> third party -> StatefulSet: the StatefulSet goes and comes back, the PVC survives
with the same UID, dependents' configuration follows and their pods roll, in order.
eureka Deployment -> DaemonSet and back, and a kind change together with an image change.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.kindswitch")
from .apiwatch import first, image  # noqa: E402
from .kindswitch import DEPENDENTS, set_kind, switch  # noqa: E402
from .standin import Env, StandIn  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def test_mysql_statefulset_to_third_party_and_back(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    sts_uid = env.obj("StatefulSet", "mysql-dataservice")["metadata"]["uid"]  # type: ignore[index]
    with StandIn(path="/") as mysql_tp:
        third = set_kind(sample, "mysql", 3, mysql_tp)
        away = switch(env, sample, third, "mysql")
        assert away.rolled == list(DEPENDENTS["mysql"])
        cm = env.obj("ConfigMap", "api-manager")
        assert cm is not None and f"127.0.0.1:{mysql_tp.port}" in str(cm["data"]), cm
        back = switch(env, third, copy.deepcopy(sample), "mysql")
    assert back.rolled == list(DEPENDENTS["mysql"])
    sts = env.obj("StatefulSet", "mysql-dataservice")
    assert sts is not None and sts["metadata"]["uid"] != sts_uid, "a new StatefulSet"
    pods = [p for p in env.objects("Pod") if p["metadata"]["name"] == "mysql-dataservice-0"]
    assert pods and pods[0]["status"].get("phase") == "Running"


def test_eureka_deployment_to_daemonset_and_back(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    daemon = set_kind(sample, "eureka", 2, None)
    went = switch(env, sample, daemon, "eureka")
    assert went.rolled == [], "the same Service name: dependents keep their configuration"
    ds = env.obj("DaemonSet", "eureka")
    assert ds is not None
    st = ds["status"]
    assert st["numberAvailable"] == st["desiredNumberScheduled"] >= 1
    svc = env.obj("Service", "eureka")
    assert svc is not None and svc["spec"]["ports"][0]["port"] == 8761
    switch(env, daemon, copy.deepcopy(sample), "eureka")
    assert env.obj("Deployment", "eureka") is not None


def test_kind_and_image_change_together(deployed: Env, sample: dict[str, Any]) -> None:
    """eureka Deployment -> DaemonSet with a new image, and mysql StatefulSet -> Deployment with a new image:
    the new form runs the new image from its creation, the old form is never rolled to it."""
    env = deployed
    after = set_kind(sample, "eureka", 2, None)
    after["spec"]["eureka"]["image"] = "registry-edge.cosmoplat.com/dataservice/eureka:v1.5"
    done = switch(env, sample, after, "eureka")
    born = first(done.timeline, lambda e: e.type == "ADDED" and e.kind == "DaemonSet" and e.name == "eureka")
    assert born is not None and image(born.obj).endswith("eureka:v1.5"), "created with the new image"
    old = [e for e in done.timeline if e.kind == "Deployment" and e.name == "eureka" and e.type != "LISTED"]
    assert old and not [e for e in old if image(e.obj).endswith(":v1.5")], "the old Deployment was rolled"

    again = set_kind(after, "mysql", 0, None)
    again["spec"]["mysql"]["image"] = "mysql:8.4"
    done = switch(env, after, again, "mysql")
    born = first(done.timeline, lambda e: e.type == "ADDED" and e.kind == "Deployment"
                 and e.name == "mysql-dataservice")
    assert born is not None and image(born.obj) == "mysql:8.4"
    old = [e for e in done.timeline if e.kind == "StatefulSet" and e.type != "LISTED"]
    assert old and not [e for e in old if image(e.obj) == "mysql:8.4"], "the old StatefulSet was rolled"
