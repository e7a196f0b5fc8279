"""Readiness against kubectl itself, on the real control plane (issue 24, C9).

At every step of a rollout -- the operator's first rollout of the sample and an upgrade, and hand-made
StatefulSets and a DaemonSet with the strategies the operator does not write itself (partition, type
RollingUpdate alone, OnDelete) -- each workload's verdict from :func:`d3os_core.readiness.rollout` is compared
with ``kubectl rollout status --watch=false`` on the same object: the object's resourceVersion is read
before and after kubectl's own read, and a sample counts only when it did not move in between.
"""

from __future__ import annotations

import collections
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from d3os_core.readiness import rollout
from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import StandIn, ensure_volumes, figures_out, point_uuc_at  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

DONE, WAIT, ERROR = "done", "wait", "error"
KINDS = "deployments,statefulsets,daemonsets"


def ours(obj: dict[str, Any]) -> str:
    r = rollout(obj)
    return DONE if r.ready else ERROR if r.failed else WAIT


class Oracle:
    """Samples a namespace's workloads and keeps every verdict pair seen on an unchanged object."""

    def __init__(self, cluster: Any, namespace: str) -> None:
        self.cluster = cluster
        self.ns = namespace
        self.pairs: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.disagree: list[dict[str, Any]] = []
        self.moved = 0
        self.compared: dict[tuple[str, str], str] = {}

    def objects(self) -> dict[tuple[str, str], dict[str, Any]]:
        out = self.cluster.kubectl("get", KINDS, "-n", self.ns, "-o", "json", timeout=30).stdout
        return {(o["kind"], o["metadata"]["name"]): o for o in json.loads(out)["items"]}

    def _kubectl(self, kind: str, name: str) -> tuple[str, str]:
        r = self.cluster.kubectl("rollout", "status", f"{kind.lower()}/{name}", "-n", self.ns, "--watch=false",
                                 check=False, timeout=30)
        text = (r.stdout + r.stderr).strip()
        if r.returncode != 0:
            return ERROR, text
        return (WAIT if text.lower().startswith("waiting") else DONE), text

    def sample(self) -> None:
        """Ask kubectl about every object that changed since it was last compared (kubectl is slow to start:
        asking only about those catches more of the short-lived states)."""
        before = {k: o for k, o in self.objects().items()
                  if self.compared.get(k) != o["metadata"]["resourceVersion"]}
        said = {key: self._kubectl(*key) for key in before}
        after = self.objects() if before else {}
        for key, obj in before.items():
            rv = obj["metadata"]["resourceVersion"]
            if (after.get(key) or {}).get("metadata", {}).get("resourceVersion") != rv:
                self.moved += 1
                continue
            self.compared[key] = rv
            verdict, text = said[key]
            mine = ours(obj)
            self.pairs[(key[0], verdict, mine)] += 1
            if verdict != mine:
                self.disagree.append({"object": f"{key[0]}/{key[1]}", "kubectl": verdict, "kubectl_said": text,
                                      "ours": mine, "ours_said": rollout(obj).message,
                                      "spec": obj.get("spec", {}).get("updateStrategy"), "status": obj.get("status")})

    def until(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sample()
            if done():
                self.sample()
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out: {what}")

    def quiet(self, seconds: float, timeout: float) -> None:
        """Sample until no workload has changed for ``seconds``."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            self.sample()
            now = {k: o["metadata"]["resourceVersion"] for k, o in self.objects().items()}
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= seconds:
                return
            time.sleep(0.2)
        raise AssertionError("the workloads never settled")

    def verdicts(self, kind: str) -> set[str]:
        return {k for (kd, k, m) in self.pairs if kd == kind and k == m}


@pytest.fixture
def namespace(k8s_cluster: Any, client: Client, crd: None) -> Iterator[str]:
    ns = f"t-oracle-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=ns)))
    try:
        yield ns
    finally:
        harness.delete_dataservices(client, ns)
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


UNSCHEDULABLE = {"requests": {"cpu": "5000"}}
"""No node of the local cluster has 5000 CPUs: a rollout that needs this stays in its waiting state."""


def test_the_operators_rollout_and_upgrade_agree_with_kubectl_at_every_step(
    k8s_cluster: Any, client: Client, crd: None, namespace: str
) -> None:
    """The sample's first rollout (eureka held unschedulable for a while) and an upgrade of mysql and of
    api-manager (held the same way, so its old replica runs beside the new one), each then let through.
    (mysql is not held: a StatefulSet does not replace a pod that never became ready until it is deleted.)"""
    ensure_volumes(client)
    oracle = Oracle(k8s_cluster, namespace)
    with StandIn() as uuc, harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[namespace]):
        manifest = point_uuc_at(harness.load_sample(), uuc)
        name = manifest["metadata"]["name"]

        def apply() -> None:
            text = yaml.safe_dump(manifest, allow_unicode=True)
            k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=text)

        def ready() -> bool:
            return harness.is_ready(harness.get_dataservice(client, namespace, name))

        def waits(kind: str) -> Any:
            return lambda: (kind, WAIT, WAIT) in oracle.pairs

        manifest["spec"]["eureka"]["resources"] = UNSCHEDULABLE
        apply()
        oracle.until(waits("Deployment"), 180, "eureka waiting, compared")
        del manifest["spec"]["eureka"]["resources"]
        apply()
        oracle.until(ready, 300, "the sample Ready")
        manifest["spec"]["mysql"]["env"] = {"UPGRADED": "1"}
        manifest["spec"]["api-manager"]["resources"] = UNSCHEDULABLE
        apply()
        oracle.until(waits("Deployment"), 120, "api-manager's upgrade waiting, compared")
        del manifest["spec"]["api-manager"]["resources"]
        apply()
        time.sleep(1.0)
        oracle.until(ready, 300, "the upgrade Ready")
    figures_out("readiness_oracle_operator", {"pairs": {"/".join(k): n for k, n in oracle.pairs.items()},
                                              "moved": oracle.moved})
    assert oracle.disagree == [], json.dumps(oracle.disagree[:5], indent=1, ensure_ascii=False)
    assert {WAIT, DONE} <= oracle.verdicts("Deployment"), oracle.pairs
    assert DONE in oracle.verdicts("StatefulSet"), oracle.pairs


def _template(name: str, image: str, schedulable: bool) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "c", "image": image}]}
    if not schedulable:
        pod["nodeSelector"] = {"d3os-test/no-such-node": "true"}
    return {"metadata": {"labels": {"app": name}}, "spec": pod}


def _sts(name: str, strategy: dict[str, Any], image: str = "busybox:1", schedulable: bool = True) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": 3, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "podManagementPolicy": "Parallel", "updateStrategy": strategy,
                     "template": _template(name, image, schedulable)}}


def _deploy(name: str, image: str = "busybox:1", schedulable: bool = True) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 3, "selector": {"matchLabels": {"app": name}},
                     "template": _template(name, image, schedulable)}}


def _ds(name: str, strategy: str, image: str = "busybox:1") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, "updateStrategy": {"type": strategy},
                     "template": _template(name, image, True)}}


def test_strategies_the_operator_does_not_write_agree_with_kubectl(k8s_cluster: Any, namespace: str) -> None:
    """Workloads made by hand: the server's default StatefulSet strategy (partition 0), ``type: RollingUpdate``
    alone (kubectl compares revisions), a partition, OnDelete; unschedulable pods (a rollout that waits, a
    Deployment past its 3 s progress deadline); DaemonSets rolling and OnDelete. Then every one updated."""
    first = [
        _sts("default", {}), _sts("typeonly", {"type": "RollingUpdate"}),
        _sts("partition", {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
        _sts("ondelete", {"type": "OnDelete"}), _sts("stuck", {}, schedulable=False),
        _deploy("ok"), _deploy("stuck", schedulable=False),
        _ds("rolling", "RollingUpdate"), _ds("ondelete-ds", "OnDelete"),
    ]
    updated = [
        _sts("default", {}, image="busybox:2"),
        _sts("typeonly", {"type": "RollingUpdate"}, image="busybox:2", schedulable=False),  # pod 2 never runs
        _sts("partition", {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}, image="busybox:2"),
        _sts("ondelete", {"type": "OnDelete"}, image="busybox:2"),
        _deploy("ok", image="busybox:2", schedulable=False),  # the new replica never runs: old ones stay
        _ds("rolling", "RollingUpdate", image="busybox:2"), _ds("ondelete-ds", "OnDelete", image="busybox:2"),
    ]
    oracle = Oracle(k8s_cluster, namespace)
    for objs in (first, updated):
        k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objs))
        oracle.quiet(8.0, 180)
    figures_out("readiness_oracle_strategies", {"pairs": {"/".join(k): n for k, n in oracle.pairs.items()},
                                                "moved": oracle.moved})
    assert oracle.disagree == [], json.dumps(oracle.disagree[:5], indent=1, ensure_ascii=False)
    assert {WAIT, DONE, ERROR} <= oracle.verdicts("StatefulSet"), oracle.pairs
    assert {WAIT, DONE, ERROR} <= oracle.verdicts("Deployment"), oracle.pairs
    assert {DONE, ERROR} <= oracle.verdicts("DaemonSet"), oracle.pairs
