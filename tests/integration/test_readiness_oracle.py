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
        before = self.objects()
        said = {key: self._kubectl(*key) for key in before}
        after = self.objects()
        for key, obj in before.items():
            rv = obj["metadata"]["resourceVersion"]
            if (after.get(key) or {}).get("metadata", {}).get("resourceVersion") != rv:
                self.moved += 1
                continue
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
            time.sleep(0.3)
        raise AssertionError(f"timed out: {what}")

    def verdicts(self, kind: str) -> set[str]:
        return {k for (kd, k, m) in self.pairs if kd == kind and k == m}


@pytest.fixture
def namespace(k8s_cluster: Any, client: Client) -> Iterator[str]:
    ns = f"t-oracle-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=ns)))
    try:
        yield ns
    finally:
        harness.delete_dataservices(client, ns)
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_the_operators_rollout_and_upgrade_agree_with_kubectl_at_every_step(
    k8s_cluster: Any, client: Client, crd: None, namespace: str
) -> None:
    ensure_volumes(client)
    oracle = Oracle(k8s_cluster, namespace)
    with StandIn() as uuc, harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[namespace]):
        manifest = point_uuc_at(harness.load_sample(), uuc)
        name = manifest["metadata"]["name"]

        def ready() -> bool:
            return harness.is_ready(harness.get_dataservice(client, namespace, name))

        k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest, allow_unicode=True))
        oracle.until(ready, 300, "the sample Ready")
        manifest["spec"]["web"]["image"] = manifest["spec"]["web"]["image"].replace(":v1.4", ":v1.5")
        manifest["spec"]["mysql"]["env"] = {"UPGRADED": "1"}
        k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest, allow_unicode=True))
        time.sleep(1.0)
        oracle.until(ready, 300, "the upgrade Ready")
    figures_out("readiness_oracle_operator", {"pairs": {"/".join(k): n for k, n in oracle.pairs.items()},
                                              "moved": oracle.moved})
    assert oracle.disagree == [], json.dumps(oracle.disagree[:5], indent=1, ensure_ascii=False)
    assert oracle.verdicts("Deployment") == {WAIT, DONE}, oracle.pairs
    assert DONE in oracle.verdicts("StatefulSet"), oracle.pairs


def _sts(name: str, strategy: dict[str, Any], replicas: int = 3, image: str = "busybox:1") -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": labels},
                     "podManagementPolicy": "Parallel", "updateStrategy": strategy,
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def _ds(name: str, strategy: str, image: str = "busybox:1") -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels}, "updateStrategy": {"type": strategy},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def test_strategies_the_operator_does_not_write_agree_with_kubectl(k8s_cluster: Any, namespace: str) -> None:
    objects = [
        _sts("default", {}),  # the server's default: rollingUpdate.partition 0
        _sts("typeonly", {"type": "RollingUpdate"}),  # no rollingUpdate: kubectl compares revisions
        _sts("partition", {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
        _sts("ondelete", {"type": "OnDelete"}),
        _ds("rolling", "RollingUpdate"),
        _ds("ondelete-ds", "OnDelete"),
    ]
    oracle = Oracle(k8s_cluster, namespace)

    def apply(objs: list[dict[str, Any]]) -> None:
        k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objs))

    def settled() -> bool:  # only when to stop sampling: every verdict is compared with kubectl's anyway
        return all(ours(o) != WAIT for o in oracle.objects().values())

    apply(objects)
    oracle.until(settled, 180, "the workloads rolled out")
    apply([{**o, "spec": {**o["spec"], "template": {**o["spec"]["template"], "spec": {
        "containers": [{"name": "c", "image": "busybox:2"}]}}}} for o in objects])
    time.sleep(0.5)
    oracle.until(settled, 180, "the update rolled out")
    figures_out("readiness_oracle_strategies", {"pairs": {"/".join(k): n for k, n in oracle.pairs.items()},
                                                "moved": oracle.moved})
    assert oracle.disagree == [], json.dumps(oracle.disagree[:5], indent=1, ensure_ascii=False)
    assert {ERROR, DONE} <= oracle.verdicts("StatefulSet"), oracle.pairs
    assert {ERROR, DONE} <= oracle.verdicts("DaemonSet"), oracle.pairs

