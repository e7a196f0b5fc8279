"""config/ (kustomize): the copies stay in sync with their sources, and ``kubectl kustomize`` renders it.

kubectl comes from the local control plane's toolchain cache (d3os_testenv); without it the render
tests are skipped (the drift tests never are).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.tools import need

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
NS = "d3os-operator-system"
DEPLOYMENT = "d3os-operator-controller-manager"


def _kubectl() -> Path:
    from d3os_testenv.build import Toolchain

    path = Toolchain().binary("kubectl")
    return need(path, "kubectl")


def kustomize(directory: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(_kubectl()), "kustomize", str(CONFIG / directory)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_crd_copy_matches_crds() -> None:
    src = ROOT / "crds" / "d3os-product.com.d3os_dataservices.yaml"
    copy = CONFIG / "crd" / "bases" / src.name
    assert copy.read_bytes() == src.read_bytes(), "config/crd/bases drifted: cp crds/*.yaml config/crd/bases/"


def test_sample_copy_matches_example() -> None:
    src = ROOT / "examples" / "dataservice-sample.yaml"
    assert (CONFIG / "samples" / src.name).read_bytes() == src.read_bytes()


def test_manager_renders_hardened() -> None:
    docs = kustomize("manager")
    by_kind = {d["kind"]: d for d in docs}
    assert set(by_kind) == {"Namespace", "Deployment", "Service", "PodDisruptionBudget", "ConfigMap"}
    svc = by_kind["Service"]
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]
    ns = by_kind["Namespace"]
    assert ns["metadata"]["name"] == NS
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    dep = by_kind["Deployment"]
    assert (dep["metadata"]["namespace"], dep["metadata"]["name"]) == (NS, DEPLOYMENT)
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == DEPLOYMENT
    (c,) = pod["containers"]
    assert c["image"] == "d3os-operator:0.1.0"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert "--leader-elect" in c["args"] and "--metrics-bind-address=:8080" in c["args"]


def test_manager_args_parse() -> None:
    """The Deployment's args are flags ``d3os-operator run`` really has (the image's entrypoint)."""
    from d3os_operator.cli import build_parser

    dep = yaml.safe_load((CONFIG / "manager" / "manager.yaml").read_text())
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = build_parser().parse_args(["run", *args])
    assert parsed.leader_elect and parsed.metrics_bind_address == ":8080" and parsed.log_format == "json"
    assert parsed.health_probe_bind_address == ":8081"


def test_crd_and_samples_render() -> None:
    crds = kustomize("crd")
    assert {c["kind"] for c in crds} == {"CustomResourceDefinition"}
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "analyticsservices.d3os-product.com.d3os", "dataservices.d3os-product.com.d3os"]
    (sample,) = kustomize("samples")
    assert sample["kind"] == "DataService"
