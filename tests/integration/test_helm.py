"""The Helm chart on the local control plane: ``helm lint``, ``helm install --wait``, ``helm test``,
``helm uninstall``; two releases of one name in two namespaces side by side.

The release goes into a fresh namespace that *enforces* the restricted Pod Security Standard, so the
manager pods must be admitted under it; kwok's simulated nodes run them without pulling the image. The
release has its own name, so its cluster-wide RBAC cannot collide with other tests' objects. The CRD is the
session's (installed here if no test did before), so the install skips crds/ -- Helm 4 server-side applies
crds/ even over an existing CRD, which conflicts with that CRD's own field manager -- and the uninstall
keeps it.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from d3os_testenv import harness

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "d3os-operator"


def _restricted(k8s_cluster: Any, ns: str) -> None:
    k8s_cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted",
                        "pod-security.kubernetes.io/enforce-version=latest", "--overwrite")


def _helm(k8s_cluster: Any, helm_binary: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KUBECONFIG": str(k8s_cluster.kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }

    def helm(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([helm_binary, *args], capture_output=True, text=True, env=env, timeout=timeout)
        assert not check or out.returncode == 0, f"helm {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out

    return helm


def test_helm_install_wait_uninstall(k8s_cluster: Any, k8s_namespace: str, helm_binary: str,
                                     tmp_path: Path) -> None:
    kubectl = k8s_cluster.kubectl
    ns = k8s_namespace
    harness.install_crd(harness.sync_client(k8s_cluster.kubeconfig))  # the session's, as other tests have it
    _restricted(k8s_cluster, ns)
    helm = _helm(k8s_cluster, helm_binary, tmp_path)

    assert helm("version", "--short").stdout.startswith("v4."), "the Helm testenv builds is Helm 4"
    helm("lint", "--strict", str(CHART))
    release = f"h{uuid.uuid4().hex[:6]}"
    fullname = f"{release}-d3os-operator"
    helm("install", release, str(CHART), "-n", ns, "--wait", "--timeout", "240s", "--set", "crds.enabled=false",
         "--set", "watchNamespaces={" + ns + "}", "--set", "probePolicy.allowCIDRs={10.0.0.0/8}")
    try:
        dep = json.loads(kubectl("get", "deployment", f"{fullname}-controller-manager", "-n", ns, "-o", "json").stdout)
        assert dep["status"].get("readyReplicas") == 2, dep["status"]
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"--namespace={ns}" in args and "--probe-allow-cidr=10.0.0.0/8" in args
        pods = json.loads(kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
        assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
        # watchNamespaces: the manager's rules are a Role in the namespace, no cluster-wide grant
        assert kubectl("get", "role", f"{fullname}-manager-role", "-n", ns, check=False).returncode == 0
        assert kubectl("get", "clusterrole", f"{fullname}-manager-role", check=False).returncode != 0
        sa = f"system:serviceaccount:{ns}:{fullname}-controller-manager"
        can = kubectl("auth", "can-i", "patch", "dataservices.d3os-product.com.d3os", "-n", ns, "--as", sa,
                      check=False)
        assert can.stdout.strip() == "yes", can
        cannot = kubectl("auth", "can-i", "list", "dataservices.d3os-product.com.d3os", "-n", "default",
                         "--as", sa, check=False)
        assert cannot.stdout.strip() == "no", cannot
        # the probe policy's watches (issue 24, B7), in this mode too: nodes (list, watch: a ClusterRole), the
        # release namespace, and in default the kubernetes Service and EndpointSlice by name only
        for args, want in ((("watch", "nodes"), "yes"), (("patch", "nodes"), "no"),
                           (("watch", "pods", "-n", ns), "yes"),
                           (("watch", "endpointslices.discovery.k8s.io/kubernetes", "-n", "default"), "yes"),
                           (("list", "endpointslices.discovery.k8s.io", "-n", "default"), "no"),
                           (("list", "services", "-n", "default"), "no")):
            got = kubectl("auth", "can-i", *args, "--as", sa, check=False).stdout.strip()
            assert got == want, (args, got)
        listed = json.loads(helm("list", "-n", ns, "-o", "json").stdout)
        assert [(r["name"], r["status"]) for r in listed] == [(release, "deployed")]
    finally:
        helm("uninstall", release, "-n", ns, "--wait", "--timeout", "120s")
    left = kubectl("get", "deployment,service,serviceaccount,role,rolebinding", "-n", ns,
                   "-l", f"app.kubernetes.io/instance={release}", "-o", "name").stdout.strip()
    assert left == ""
    assert kubectl("get", "clusterrole", f"{fullname}-{ns}-probe-targets-role", check=False).returncode != 0
    assert kubectl("get", "crd", "dataservices.d3os-product.com.d3os", check=False).returncode == 0


PLATFORM = (
    "tolerations[0].key=dedicated", "tolerations[0].operator=Exists", "podAnnotations.team=platform",
    "podLabels.tier=control", "commonLabels.cost-center=c42", "serviceAccount.annotations.iam=role-a",
    "topologySpreadConstraints[0].maxSkew=1", "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
    "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
    "topologySpreadConstraints[0].labelSelector.matchLabels.app\\.kubernetes\\.io/component=manager",
    "extraEnv[0].name=HTTPS_PROXY", "extraEnv[0].value=http://proxy.example:3128",
    "extraVolumes[0].name=scratch", "extraVolumes[0].emptyDir.sizeLimit=1Mi",
    "extraVolumeMounts[0].name=scratch", "extraVolumeMounts[0].mountPath=/scratch",
    "networkPolicy.enabled=true", "podDisruptionBudget.maxUnavailable=1",
)
"""Platform options (issue 26, item 10) the second release sets: the API server admits what they render."""


def test_two_releases_in_two_namespaces_and_helm_test(k8s_cluster: Any, k8s_namespace: str, helm_binary: str,
                                                      tmp_path: Path) -> None:
    """One release name in two namespaces, both serving every namespace (a ClusterRole each): nothing collides,
    ``helm test`` passes in each (its Job, restricted like the manager, completes), and uninstalling one
    leaves the other whole."""
    kubectl = k8s_cluster.kubectl
    harness.install_crd(harness.sync_client(k8s_cluster.kubeconfig))
    helm = _helm(k8s_cluster, helm_binary, tmp_path)
    first, second = k8s_namespace, f"{k8s_namespace[:50]}-b"
    kubectl("create", "namespace", second)
    release = "ops"
    installed: list[str] = []
    try:
        for ns in (first, second):
            _restricted(k8s_cluster, ns)
            sets = ["crds.enabled=false", *(PLATFORM if ns == second else ())]
            helm("install", release, str(CHART), "-n", ns, "--wait", "--timeout", "240s",
                 *[x for s in sets for x in ("--set", s)])
            installed.append(ns)
        for ns in (first, second):
            role = f"{release}-d3os-operator-{ns}-manager-role"
            got = json.loads(kubectl("get", "clusterrolebinding", f"{release}-d3os-operator-{ns}-manager-rolebinding",
                                     "-o", "json").stdout)
            assert got["roleRef"]["name"] == role
            assert got["subjects"] == [{"kind": "ServiceAccount", "name": f"{release}-d3os-operator-controller-manager",
                                        "namespace": ns}]
            sa = f"system:serviceaccount:{ns}:{release}-d3os-operator-controller-manager"
            can = kubectl("auth", "can-i", "patch", "dataservices.d3os-product.com.d3os", "-n", "default",
                          "--as", sa, check=False)
            assert can.stdout.strip() == "yes", can
            cannot = kubectl("auth", "can-i", "delete", "secrets", "-n", "default", "--as", sa, check=False)
            assert cannot.stdout.strip() == "no", cannot  # issue 24, B8
            dep = json.loads(kubectl("get", "deployment", f"{release}-d3os-operator-controller-manager", "-n", ns,
                                     "-o", "json").stdout)
            assert dep["status"].get("readyReplicas") == 2, dep["status"]
            tested = helm("test", release, "-n", ns, "--timeout", "180s")
            passed = r"TEST SUITE: +ops-d3os-operator-test-metrics\n(.*\n){2}Phase: +Succeeded"
            assert re.search(passed, tested.stdout), tested.stdout
        # the second release's platform options were admitted as rendered
        pod = json.loads(kubectl("get", "pods", "-n", second, "-l", "app.kubernetes.io/component=manager",
                                 "-o", "json").stdout)["items"][0]
        assert pod["metadata"]["labels"]["tier"] == "control" and pod["metadata"]["annotations"]["team"] == "platform"
        assert any(t.get("key") == "dedicated" for t in pod["spec"]["tolerations"])
        assert kubectl("get", "networkpolicy,poddisruptionbudget", "-n", second, "-o", "name").stdout.count("/") == 2
        helm("uninstall", release, "-n", first, "--wait", "--timeout", "120s")
        installed.remove(first)
        assert kubectl("get", "clusterrole", f"{release}-d3os-operator-{first}-manager-role",
                       check=False).returncode != 0
        assert kubectl("get", "clusterrole", f"{release}-d3os-operator-{second}-manager-role",
                       check=False).returncode == 0, "uninstalling one release took the other's ClusterRole"
        for ns, there in ((first, False), (second, True)):  # the probe targets' read of nodes, likewise
            got = kubectl("get", "clusterrole", f"{release}-d3os-operator-{ns}-probe-targets-role", check=False)
            assert (got.returncode == 0) is there, (ns, got.stderr)
    finally:
        for ns in installed:
            helm("uninstall", release, "-n", ns, "--wait", "--timeout", "120s", check=False)
        kubectl("delete", "namespace", second, "--wait=false", check=False)
