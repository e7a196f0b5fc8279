"""charts/d3os-operator: its generated files match their sources, and with default values ``helm template``
renders what ``kubectl kustomize config/default`` does (same kinds but the Namespace, the same CRD, the same
ClusterRole rules, the same manager container). ``helm lint`` passes for the interesting values.

helm and kubectl come from the toolchain cache (``d3os-testenv build``); without them the render tests are
skipped (the drift test never is). Installing for real: tests/integration/test_helm.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_generate import chart, rbac
from tests.tools import need

from .test_kustomize import kustomize

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "d3os-operator"


def _helm() -> Path:
    from d3os_testenv.build import GO_TOOLS, cache_root

    path = GO_TOOLS["helm"].binary(cache_root())
    return need(path, "helm")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(_helm()), *args], capture_output=True, text=True, timeout=120)


MONITORING = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
              "--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
"""A cluster with the Prometheus Operator's API (else the chart refuses a ServiceMonitor or PrometheusRule)."""


def template(*sets: str, release: str = "d3os-operator", namespace: str = rbac.NAMESPACE,
             chart: Path = CHART, flags: tuple[str, ...] = ("--skip-tests", *MONITORING)) -> list[dict[str, Any]]:
    values = [x for s in sets for x in ("--set", s)]
    out = helm("template", release, str(chart), "-n", namespace, "--include-crds", *flags, *values)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _role_key(name: str) -> str:
    """A cluster role's name without its prefix (the chart's carries the release namespace, kustomize's not)."""
    return next(s for s in ("manager-role", "metrics-auth-role", "metrics-reader", "probe-targets-role")
                if name.endswith(s))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_generated_files_match_their_sources() -> None:
    files = chart.generated_files()
    for name, text in files.items():
        assert (CHART / name).read_text(encoding="utf-8") == text, (
            f"charts/d3os-operator/{name} drifted: run `python -m d3os_generate.chart --write charts/d3os-operator`")
    for directory in chart.GENERATED_DIRS:  # and nothing else there (a removed product's files go too)
        on_disk = {p.relative_to(CHART).as_posix() for p in (CHART / directory).rglob("*") if p.is_file()}
        assert on_disk == {n for n in files if n.startswith(directory + "/")}, directory
    crds = sorted(n for n in files if n.startswith("files/crds/"))
    assert len(crds) == 2
    for name in crds:  # the chart's CRDs are the repository's crds/
        assert (CHART / name).read_bytes() == (ROOT / "crds" / Path(name).name).read_bytes(), name
    products = {n.removeprefix("files/products/"): (CHART / n).read_bytes() for n in files
                if n.startswith("files/products/")}
    shipped = {p.relative_to(ROOT / "products"): p for p in (ROOT / "products").rglob("*") if p.is_file()}
    assert products == {rel.as_posix(): p.read_bytes() for rel, p in shipped.items()
                        if len(rel.parts) > 1 and "__pycache__" not in rel.parts}  # every product folder, whole


def _kustomize_name(doc: dict[str, Any]) -> str:
    """The kustomize install's name of a chart object: outside the release namespace the chart's names carry
    that namespace (``d3os-operator-d3os-operator-system-manager-role``), so two releases never share one."""
    return str(doc["metadata"]["name"]).replace(f"d3os-operator-{rbac.NAMESPACE}-", "d3os-operator-")


def test_template_matches_kustomize() -> None:
    helm_docs, kust = template(), kustomize("default")
    assert {d["kind"] for d in helm_docs} == {d["kind"] for d in kust} - {"Namespace"}
    assert {(d["kind"], _kustomize_name(d)) for d in helm_docs} == {
        (d["kind"], d["metadata"]["name"]) for d in kust if d["kind"] != "Namespace"}
    crds_h = {d["metadata"]["name"]: d["spec"] for d in by_kind(helm_docs, "CustomResourceDefinition")}
    crds_k = {d["metadata"]["name"]: d["spec"] for d in by_kind(kust, "CustomResourceDefinition")}
    assert crds_h == crds_k and len(crds_h) == 2, sorted(crds_h)  # every product's CRD
    def cluster_roles(docs: list[dict[str, Any]]) -> dict[str, Any]:
        return {_role_key(d["metadata"]["name"]): d["rules"] for d in by_kind(docs, "ClusterRole")}

    assert cluster_roles(helm_docs) == cluster_roles(kust)
    roles_h = {(d["metadata"]["namespace"], _kustomize_name(d)): d["rules"] for d in by_kind(helm_docs, "Role")}
    roles_k = {(d["metadata"]["namespace"], d["metadata"]["name"]): d["rules"] for d in by_kind(kust, "Role")}
    assert roles_h == roles_k  # the leader-election Role and the probe targets' Roles (default, the release's)
    assert {k for k in roles_k if k[1] == rbac.PROBE_TARGETS_ROLE} == {(rbac.API_SERVER_NAMESPACE,
                                                                       rbac.PROBE_TARGETS_ROLE),
                                                                      (rbac.NAMESPACE, rbac.PROBE_TARGETS_ROLE)}
    def bindings(docs: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str, Any]]:
        """Every binding: (kind, namespace, name, roleRef kind and name, subjects), with kustomize's names."""
        def name(n: str) -> str:
            return _kustomize_name({"metadata": {"name": n}})

        return sorted((d["kind"], d["metadata"].get("namespace", ""), name(d["metadata"]["name"]),
                       d["roleRef"]["kind"], name(d["roleRef"]["name"]), d["subjects"])
                      for kind in ("RoleBinding", "ClusterRoleBinding") for d in by_kind(docs, kind))

    assert bindings(helm_docs) == bindings(kust)  # the same roles bound to the same ServiceAccount
    (dep_h,), (dep_k,) = by_kind(helm_docs, "Deployment"), by_kind(kust, "Deployment")
    assert dep_h["spec"]["replicas"] == dep_k["spec"]["replicas"]
    assert dep_k["metadata"]["labels"].items() <= dep_h["metadata"]["labels"].items()
    tpl_h, tpl_k = dep_h["spec"]["template"]["metadata"], dep_k["spec"]["template"]["metadata"]
    assert tpl_k["labels"].items() <= tpl_h["labels"].items()
    assert set(tpl_h["annotations"]) == set(tpl_k["annotations"])  # prometheus.io/* and checksum/products
    pod_h, pod_k = dep_h["spec"]["template"]["spec"], dep_k["spec"]["template"]["spec"]
    assert pod_h["securityContext"] == pod_k["securityContext"]
    vols_h, vols_k = ({v["name"]: v for v in pod["volumes"]} for pod in (pod_h, pod_k))
    assert vols_h == vols_k  # the products volume: the same keys at the same paths
    (c_h,), (c_k,) = pod_h["containers"], pod_k["containers"]
    assert c_h == c_k
    (cm_h,), (cm_k,) = by_kind(helm_docs, "ConfigMap"), by_kind(kust, "ConfigMap")
    assert cm_h["data"] == cm_k["data"]  # the product files, keyed alike
    (pdb_h,), (pdb_k,) = by_kind(helm_docs, "PodDisruptionBudget"), by_kind(kust, "PodDisruptionBudget")
    assert pdb_h["spec"]["maxUnavailable"] == pdb_k["spec"]["maxUnavailable"] == 1
    assert pdb_k["spec"]["selector"]["matchLabels"].items() <= pdb_h["spec"]["selector"]["matchLabels"].items()


def test_watch_namespaces_give_namespaced_rbac_and_flags() -> None:
    docs = template("watchNamespaces={team-a,team-b}")
    # cluster-wide only what reviews /metrics callers (cluster-scoped reviews), the scrapers' role and the probe
    # targets' read of nodes (list, watch)
    assert {_role_key(d["metadata"]["name"]) for d in by_kind(docs, "ClusterRole")} == {"metrics-auth-role",
                                                                                         "metrics-reader",
                                                                                         "probe-targets-role"}
    (nodes,) = [d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"].endswith("-probe-targets-role")]
    assert nodes["rules"] == [r.manifest() for r in rbac.probe_node_rules()]
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in by_kind(docs, "Role")}
    assert {("team-a", "d3os-operator-manager-role"), ("team-b", "d3os-operator-manager-role")} <= roles
    manager = next(d for d in by_kind(docs, "Role") if d["metadata"]["namespace"] == "team-a")
    assert manager["rules"] == [r.manifest() for r in rbac.cluster_rules()]
    bindings = {d["metadata"]["namespace"]: d for d in by_kind(docs, "RoleBinding")}
    assert bindings["team-b"]["subjects"][0] == {
        "kind": "ServiceAccount", "name": rbac.SERVICE_ACCOUNT, "namespace": rbac.NAMESPACE}
    (dep,) = by_kind(docs, "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


def test_values_reach_the_deployment() -> None:
    docs = template(
        "image.repository=registry.example.com/d3os-operator", "image.tag=0.2.0", "replicaCount=1",
        "leaderElection.enabled=false", "probePolicy.allowCIDRs={10.20.0.0/16}",
        "probePolicy.denyCIDRs={10.20.5.0/24,192.168.0.0/16}", "resources.limits.memory=1Gi",
        "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom",
        "imagePullSecrets[0].name=regcred", release="prod",
    )
    (dep,) = by_kind(docs, "Deployment")
    assert dep["metadata"]["name"] == "prod-d3os-operator-controller-manager"
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "registry.example.com/d3os-operator:0.2.0" and dep["spec"]["replicas"] == 1
    assert not [a for a in c["args"] if a.startswith("--leader-elect")]
    assert [a for a in c["args"] if a.startswith("--probe-")] == [
        "--probe-allow-cidr=10.20.0.0/16", "--probe-deny-cidr=10.20.5.0/24", "--probe-deny-cidr=192.168.0.0/16"]
    assert c["resources"]["limits"]["memory"] == "1Gi" and pod["imagePullSecrets"] == [{"name": "regcred"}]
    # no leader election: no Lease Role (the probe targets' Roles in default and the release namespace stay)
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in by_kind(docs, "Role")] == [
        ("default", f"prod-d3os-operator-{rbac.NAMESPACE}-probe-targets-role"),
        (rbac.NAMESPACE, "prod-d3os-operator-probe-targets-role")]
    (sm,) = by_kind(docs, "ServiceMonitor")
    (svc,) = by_kind(docs, "Service")
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"] == pod.get("affinity", {}).get(
        "podAntiAffinity", {}).get("preferredDuringSchedulingIgnoredDuringExecution", [{}])[0].get(
        "podAffinityTerm", {}).get("labelSelector", {}).get("matchLabels")
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()


def test_alerts_and_dashboard_are_off_by_default_and_ship_their_files_as_they_are() -> None:
    assert not by_kind(template(), "PrometheusRule")
    assert not [d for d in by_kind(template(), "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    docs = template("prometheusRule.enabled=true", "prometheusRule.labels.release=prom",
                    "grafanaDashboard.enabled=true")
    (rule,) = by_kind(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert rule["metadata"]["labels"]["release"] == "prom"
    (board,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["d3os-operator.json"]) == json.loads(
        (CHART / "files" / "grafana-dashboard.json").read_text())


def test_the_integrations_doc_installs_the_monitoring() -> None:
    from tests.docsnippets import command

    argv = command("helm-monitoring")
    docs = template(*[argv[i + 1] for i, a in enumerate(argv) if a == "--set"])
    assert by_kind(docs, "PrometheusRule") and by_kind(docs, "ServiceMonitor")
    assert [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]


@pytest.mark.parametrize("sets", [(), ("watchNamespaces={a,b}",), ("grafanaDashboard.enabled=true",),
                                  ("networkPolicy.enabled=true", "crds.enabled=false", "replicaCount=1",
                                   "leaderElection.enabled=false")])
def test_helm_lint(sets: tuple[str, ...]) -> None:
    out = helm("lint", "--strict", str(CHART), *[x for s in sets for x in ("--set", s)])
    assert out.returncode == 0, out.stdout + out.stderr
