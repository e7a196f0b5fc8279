"""spec.podSecurity: restricted on a cluster that enforces the restricted Pod Security Standard.

In a namespace labelled ``pod-security.kubernetes.io/enforce=restricted`` (and ``warn``), a server dry run
of the baseline rendering warns for the workloads (their pods would be refused), the restricted rendering
draws no warning, and the seed's sample with ``podSecurity: restricted`` rolls out to Ready: every pod
the controllers create is admitted (kwok's nodes then run it without pulling the image).
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from d3os_core.render import Parent, render_component, resolve
from d3os_core.validation import parse_spec
from d3os_core.yamlout import dump_all
from d3os_testenv import harness

from ..unit.helpers import DATASERVICE

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import StandIn, ensure_volumes, point_uuc_at  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

READY_TIMEOUT = 240.0
LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}


def workloads(manifest: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    spec = parse_spec(manifest["spec"], DATASERVICE)
    parent = Parent(manifest["metadata"]["name"], namespace, "uid-1")
    states = resolve(parent, spec, DATASERVICE)
    out = []
    for key in DATASERVICE.keys:
        for o in render_component(parent, spec, DATASERVICE, states, key, {}, "").objects:
            if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
                o = copy.deepcopy(dict(o))
                o["metadata"].pop("ownerReferences", None)
                out.append(o)
    return out


def test_restricted_sample_rolls_out_where_restricted_is_enforced(
    k8s_cluster: Any, client: Client, crd: None, uuc: StandIn
) -> None:
    kubectl = k8s_cluster.kubectl
    ns = f"t-restricted-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=ns, labels=LABELS)))
    ensure_volumes(client)
    try:
        manifest = point_uuc_at(harness.load_sample(), uuc)
        baseline = workloads(manifest, ns)
        out = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=dump_all(baseline), check=False)
        assert out.stderr.count('would violate PodSecurity "restricted:latest"') == len(baseline), out.stderr

        manifest["spec"]["podSecurity"] = "restricted"
        restricted = workloads(manifest, ns)
        out = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=dump_all(restricted))
        assert "PodSecurity" not in out.stderr, out.stderr

        with harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[ns]), \
                harness.StatusRecorder(k8s_cluster.kubeconfig, ns, manifest["metadata"]["name"]) as rec:
            kubectl("apply", "-n", ns, "-f", "-", input=dump_all([manifest]))
            rec.wait_for(harness.is_ready, READY_TIMEOUT, "Ready=True")
            pods = json.loads(kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
            assert len(pods) >= 11 and all(p["status"]["phase"] == "Running" for p in pods), [
                (p["metadata"]["name"], p["status"].get("phase")) for p in pods]
            mysql = next(p for p in pods if p["metadata"]["name"].startswith(manifest["spec"]["mysql"]["name"]))
            assert mysql["spec"]["securityContext"]["runAsUser"] == 999
            refused = [e for e in json.loads(kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
                       if "PodSecurity" in (e.get("message") or "")]
            assert refused == []
            harness.delete_dataservices(client, ns)
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
