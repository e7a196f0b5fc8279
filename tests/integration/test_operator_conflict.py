"""Issue 4, "Done when" 7: two DataServices whose objects would clash in one namespace -- the second
reports a Conflict naming the object and its owner, the first is untouched; the same sample in two
namespaces -- both Ready."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lightkube import Client

from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import Env, StandIn, ensure_volumes, events_for, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def _versions(env: Env) -> dict[str, str]:
    out = {}
    for kind in ("Deployment", "StatefulSet", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim"):
        for o in env.objects(kind):
            out[f"{kind}/{o['metadata']['name']}"] = o["metadata"]["resourceVersion"]
    return out


def test_second_dataservice_reports_conflict_and_first_is_untouched(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    before = _versions(env)
    second = copy.deepcopy(sample)
    second["metadata"]["name"] = "dataservice-second"
    mark = len(env.operator.records)
    env.apply(second)

    def conflict() -> dict[str, Any] | None:
        ds = env.ds("dataservice-second")
        deg = harness.condition(ds, "Degraded")
        return ds if deg.get("status") == "True" and deg.get("reason") == "Conflict" else None

    ds = wait_for("the second DataService to report a Conflict", conflict, 120)
    deg = harness.condition(ds, "Degraded")
    print("\nDegraded:", deg["message"])
    assert "mysql-dataservice" in deg["message"], deg
    assert "dataservice-sample" in deg["message"], "names the owner"
    assert harness.condition(ds, "Ready").get("status") == "False"
    # no fixed pause: make the operator plan the second one again (a new generation) and wait until its
    # status shows that generation planned, still in Conflict; anything it would write, it has written by then
    again = copy.deepcopy(second)
    again["spec"]["web"]["env"] = {"touch": "1"}
    env.apply(again)

    def replanned() -> dict[str, Any] | None:
        ds = conflict()
        observed = ((ds or {}).get("status") or {}).get("observedGeneration")
        return ds if ds is not None and observed == ds["metadata"]["generation"] >= 2 else None

    wait_for("the second DataService planned again, still in Conflict", replanned, 120)
    applied_for_second = [
        r
        for r in env.operator.records[mark:]
        if r["what"] in ("apply", "delete") and r["ds"].endswith("/dataservice-second")
    ]
    assert applied_for_second == []
    assert _versions(env) == before, "the first DataService's objects are untouched"
    first = env.ds()
    assert harness.is_ready(first)

    # removing the second one must not touch the first one's objects either
    env.cluster.kubectl("delete", "dataservice", "dataservice-second", "-n", env.namespace, "--timeout=60s")
    assert _versions(env) == before
    assert harness.is_ready(env.ds())


def test_same_sample_in_two_namespaces_both_ready(
    k8s_cluster: Any, client: Client, crd: None, k8s_namespace: str, uuc: StandIn, sample: dict[str, Any]
) -> None:
    """The seed's sample fixes web's NodePort at 30180, and a NodePort is unique in a cluster: the very same
    sample in a second namespace must be refused at web (said in a Warning Event), and Ready once its web
    asks for another NodePort."""
    other = f"{k8s_namespace}-b"
    k8s_cluster.kubectl("create", "namespace", other)
    ensure_volumes(client)
    try:
        with harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[k8s_namespace, other]) as op:
            try:
                a = Env(k8s_cluster, client, k8s_namespace, uuc, op)
                b = Env(k8s_cluster, client, other, uuc, op)
                a.apply(sample)
                a.wait_ready()
                b.apply(sample)

                def refused() -> list[dict[str, Any]]:
                    return [
                        e
                        for e in events_for(client, other, "dataservice-sample")
                        if e["type"] == "Warning" and "30180" in e["message"]
                    ]

                ev = wait_for("a Warning Event on the second DataService about NodePort 30180", refused, 120)
                print("\nsecond namespace:", ev[0]["reason"], ev[0]["message"])

                def degraded() -> dict[str, Any] | None:
                    conds = ((b.ds() or {}).get("status") or {}).get("conditions") or []
                    deg = next((c for c in conds if c["type"] == "Degraded"), None)
                    return deg if deg and deg["status"] == "True" and deg["reason"] == "ApplyRefused" else None

                deg = wait_for("the second DataService's status naming the refused Service", degraded, 60)
                assert "Service/web" in deg["message"] and "30180" in deg["message"], deg
                print("second namespace Degraded:", deg["message"])
                assert harness.is_ready(a.ds()), "the first one is not disturbed"
                second = copy.deepcopy(sample)
                second["spec"]["web"]["nodePort"] = 30181
                b.apply(second)
                a.wait_ready()
                b.wait_ready()
                for env in (a, b):
                    uid = env.ds()["metadata"]["uid"]  # type: ignore[index]
                    for d in env.objects("Deployment"):
                        assert [r["uid"] for r in d["metadata"]["ownerReferences"]] == [uid]
            finally:
                harness.delete_dataservices(client, k8s_namespace)
                harness.delete_dataservices(client, other)
    finally:
        k8s_cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_name_held_by_an_unwatched_object_is_reported_then_freed(env: Env, sample: dict[str, Any]) -> None:
    """A ConfigMap ``eureka`` made by hand (no managed-by label, so not in the operator's cache) holds a
    name the plan wants: the shell finds it before applying, the core reports the conflict, nothing is
    taken over; once the ConfigMap is deleted the rollout goes on to Ready."""
    env.cluster.kubectl("create", "configmap", "eureka", "-n", env.namespace, "--from-literal=owner=someone")
    env.apply(sample)

    def conflict() -> dict[str, Any] | None:
        ds = env.ds()
        deg = harness.condition(ds, "Degraded")
        return ds if deg.get("reason") == "Conflict" else None

    ds = wait_for("a Conflict naming ConfigMap/eureka", conflict, 120)
    message = harness.condition(ds, "Degraded")["message"]
    assert "ConfigMap/eureka" in message, message
    cm = env.obj("ConfigMap", "eureka")
    assert cm is not None and cm["data"] == {"owner": "someone"}, "never taken over"
    assert not (cm["metadata"].get("labels") or {}), cm["metadata"]
    assert env.obj("Deployment", "eureka") is None
    env.cluster.kubectl("delete", "configmap", "eureka", "-n", env.namespace)
    env.wait_ready(timeout=120)
    cm = env.obj("ConfigMap", "eureka")
    assert cm is not None and cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "d3os-operator"
