"""The Helm chart on the local control plane: ``helm lint``, ``helm install --wait``, ``helm uninstall``.

The release goes into a fresh namespace that *enforces* the restricted Pod Security Standard, so the
manager pods must be admitted under it; kwok's simulated nodes run them without pulling the image. The
release has its own name, so its cluster-wide RBAC cannot collide with other tests' objects. The CRD is the
session's (installed here if no test did before), so the install skips crds/ -- Helm 4 server-side applies
crds/ even over an existing CRD, which conflicts with that CRD's own field manager -- and the uninstall
keeps it.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from d3os_testenv import harness

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "d3os-operator"


def test_helm_install_wait_uninstall(k8s_cluster: Any, k8s_namespace: str, helm_binary: str,
                                     tmp_path: Path) -> None:
    kubectl = k8s_cluster.kubectl
    ns = k8s_namespace
    harness.install_crd(harness.sync_client(k8s_cluster.kubeconfig))  # the session's, as other tests have it
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KUBECONFIG": str(k8s_cluster.kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }

    def helm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([helm_binary, *args], capture_output=True, text=True, env=env, timeout=timeout)
        assert out.returncode == 0, f"helm {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out

    assert helm("version", "--short").stdout.startswith("v4."), "the Helm testenv builds is Helm 4"
    helm("lint", "--strict", str(CHART))
    release = f"h{uuid.uuid4().hex[:6]}"
    fullname = f"{release}-d3os-operator"
    helm("install", release, str(CHART), "-n", ns, "--wait", "--timeout", "240s", "--skip-crds",
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
        listed = json.loads(helm("list", "-n", ns, "-o", "json").stdout)
        assert [(r["name"], r["status"]) for r in listed] == [(release, "deployed")]
    finally:
        helm("uninstall", release, "-n", ns, "--wait", "--timeout", "120s")
    left = kubectl("get", "deployment,service,serviceaccount,role,rolebinding", "-n", ns,
                   "-l", f"app.kubernetes.io/instance={release}", "-o", "name").stdout.strip()
    assert left == ""
    assert kubectl("get", "crd", "dataservices.d3os-product.com.d3os", check=False).returncode == 0
