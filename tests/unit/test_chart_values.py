"""The chart's values: a schema Helm enforces, every value documented, the options platform teams set, and the
combinations the chart refuses. Helm itself is the judge (``helm template``, ``helm lint``, ``helm install
--dry-run``): what it renders or refuses, not what the generator meant.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_generate import chart, values

from .test_chart import CHART, MONITORING, by_kind, helm, template


def _refusal(*sets: str, flags: tuple[str, ...] = ()) -> str:
    out = helm("template", "x", str(CHART), *flags, *[x for s in sets for x in ("--set", s)])
    assert out.returncode != 0, f"helm rendered {sets}"
    return out.stderr


# -- item 9: the schema ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "message"), [
    ("replicaCount=two", "at '/replicaCount': got string, want integer"),
    ("logFormat=xml", "at '/logFormat': value must be one of 'json', 'text'"),
    ("workers=abc", "at '/workers': got string, want integer"),
    ("watchNamespaces={Bad_NS}", "at '/watchNamespaces/0': 'Bad_NS' does not match pattern"),
    ("imagee.tag=0.2.0", "additional properties 'imagee' not allowed"),
    ("image.tagg=0.2.0", "at '/image': additional properties 'tagg' not allowed"),
    ("image.digest=latest", "at '/image/digest': 'latest' does not match pattern"),
    ("logLevel=verbose", "at '/logLevel': value must be one of"),
    ("metrics.port=0", "at '/metrics/port': minimum"),
    ("podDisruptionBudget.maxUnavailable=half", "at '/podDisruptionBudget/maxUnavailable'"),
])
def test_the_schema_refuses_each_bad_value_with_its_path(value: str, message: str) -> None:
    err = _refusal(value)
    assert "values don't meet the specifications of the schema" in err and message in err, err


def test_lint_strict_passes_with_the_schema() -> None:
    assert (CHART / "values.schema.json").is_file()
    out = helm("lint", "--strict", str(CHART))
    assert out.returncode == 0 and "0 chart(s) failed" in out.stdout, out.stdout + out.stderr
    refused = helm("lint", "--strict", str(CHART), "--set", "workers=abc")
    assert refused.returncode != 0 and "at '/workers'" in refused.stdout + refused.stderr


def _yaml_leaves(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, dict) and v and k not in _FREE_FORM:
            out.update(_yaml_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


_FREE_FORM = {"resources", "podSecurityContext", "securityContext", "labels"}
"""Mappings that are one value (a Kubernetes object or a label set), not a group of values."""


def test_every_value_is_documented_typed_and_in_the_readme() -> None:
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    leaves = _yaml_leaves(doc)
    lines = text.splitlines()
    schema = json.loads((CHART / "values.schema.json").read_text())
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    for path, default in leaves.items():
        key = path.rsplit(".", 1)[-1]
        depth = path.count(".")
        at = next(i for i, ln in enumerate(lines) if re.match(rf"^{'  ' * depth}{re.escape(key)}:", ln)
                  and _parents_of(lines, i) == path.split(".")[:-1])
        above = lines[at - 1].strip()
        comment = [ln.strip() for ln in lines[:at]][::-1]
        start = next(i for i, ln in enumerate(comment) if ln.startswith("# --"))
        assert all(ln.startswith("#") for ln in comment[:start + 1]) and above.startswith("#"), path
        node = schema
        for part in path.split("."):
            assert node.get("additionalProperties") is False, f"{path}: an undeclared key would pass"
            node = node["properties"][part]
        assert node.get("description"), path
        assert f"| `{path}` |" in readme, f"{path} is not in the chart README"
        assert f"`{json.dumps(default, separators=(',', ':'))}`" in readme.replace("\\|", "|"), path


def _parents_of(lines: list[str], at: int) -> list[str]:
    """The keys a values.yaml line is nested under."""
    indent = len(lines[at]) - len(lines[at].lstrip())
    parents: list[str] = []
    for ln in reversed(lines[:at]):
        if not ln.strip() or ln.lstrip().startswith("#"):
            continue
        here = len(ln) - len(ln.lstrip())
        if here < indent and not ln.lstrip().startswith("-"):
            parents.insert(0, ln.strip().split(":")[0])
            indent = here
    return parents


def test_the_declaration_gives_values_yaml_and_the_schema_alike() -> None:
    decl = values.declaration(yaml.safe_load(chart.MANAGER.read_text()))
    assert yaml.safe_load((CHART / "values.yaml").read_text()) == values.defaults(decl)
    leaves = dict(values.leaves(decl))
    assert leaves["resources"].default == yaml.safe_load(chart.MANAGER.read_text())["spec"]["template"]["spec"][
        "containers"][0]["resources"]  # one source with config/manager


# -- item 10: what platform teams set ----------------------------------------------------------------------


def _deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = by_kind(docs, "Deployment")
    return dep


def test_platform_options_reach_the_pods() -> None:
    digest = "sha256:" + "a" * 64
    docs = template(
        "nodeSelector.pool=system", "tolerations[0].key=dedicated", "tolerations[0].operator=Exists",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        ".matchExpressions[0].key=zone",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        ".matchExpressions[0].operator=Exists",
        "topologySpreadConstraints[0].maxSkew=1", "topologySpreadConstraints[0].topologyKey=zone",
        "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway", "priorityClassName=system-cluster-critical",
        "podAnnotations.team=platform", "podLabels.tier=control", "serviceAccount.annotations.iam=role-a",
        "extraEnv[0].name=HTTPS_PROXY", "extraEnv[0].value=http://proxy:3128",
        "extraVolumes[0].name=ca", "extraVolumes[0].configMap.name=corp-ca",
        "extraVolumeMounts[0].name=ca", "extraVolumeMounts[0].mountPath=/etc/ssl/corp",
        f"image.digest={digest}", "image.tag=ignored", "commonLabels.cost-center=c42",
        "securityContext.runAsUser=70000", "podSecurityContext.fsGroup=70001", "metrics.scrapeAnnotations=false",
    )
    dep = _deployment(docs)
    tpl = dep["spec"]["template"]
    pod = tpl["spec"]
    (c,) = pod["containers"]
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert list(pod["affinity"]) == ["nodeAffinity"]  # replaces the built-in anti-affinity
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "zone"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert tpl["metadata"]["annotations"]["team"] == "platform"
    assert not [a for a in tpl["metadata"]["annotations"] if a.startswith("prometheus.io/")]
    assert tpl["metadata"]["labels"]["tier"] == "control" and tpl["metadata"]["labels"]["cost-center"] == "c42"
    assert c["image"] == f"d3os-operator@{digest}"
    assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in c["env"]
    assert c["env"][0]["name"] == "PYTHONUNBUFFERED"  # after the manager's own
    assert {"name": "ca", "configMap": {"name": "corp-ca"}} in pod["volumes"]
    assert {"name": "ca", "mountPath": "/etc/ssl/corp"} in c["volumeMounts"]
    assert c["securityContext"]["runAsUser"] == 70000 and c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["fsGroup"] == 70001 and pod["securityContext"]["runAsNonRoot"] is True
    (sa,) = by_kind(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"iam": "role-a"}
    for d in docs:  # commonLabels on every object the chart renders
        if d["kind"] != "CustomResourceDefinition":
            assert d["metadata"]["labels"]["cost-center"] == "c42", d["kind"]


def test_defaults_are_restricted_and_spread() -> None:
    pod = _deployment(template())["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {
        "type": "RuntimeDefault"}
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True, "runAsNonRoot": True}
    assert "podAntiAffinity" in pod["affinity"]
    assert not {"nodeSelector", "tolerations", "topologySpreadConstraints", "priorityClassName"} & set(pod)


def test_pdb_follows_the_replicas() -> None:
    (pdb,) = by_kind(template(), "PodDisruptionBudget")
    dep = _deployment(template())
    assert pdb["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert not by_kind(template("replicaCount=1"), "PodDisruptionBudget")  # it would block every drain
    assert not by_kind(template("podDisruptionBudget.enabled=false"), "PodDisruptionBudget")
    (pdb,) = by_kind(template("podDisruptionBudget.maxUnavailable=50%"), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "50%"


def test_network_policy_is_optional_and_opens_the_two_ports() -> None:
    assert not by_kind(template(), "NetworkPolicy")
    (np,) = by_kind(template("networkPolicy.enabled=true", "networkPolicy.metricsFrom[0].namespaceSelector"
                             ".matchLabels.name=monitoring"), "NetworkPolicy")
    assert np["spec"]["policyTypes"] == ["Ingress"]
    health, metrics = np["spec"]["ingress"]
    assert health == {"ports": [{"port": "health", "protocol": "TCP"}]}
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    pod_labels = _deployment(template())["spec"]["template"]["metadata"]["labels"]
    assert np["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()


def test_crds_enabled_and_keep() -> None:
    crds = by_kind(template(), "CustomResourceDefinition")
    assert len(crds) == 2
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)
    assert all("d3os-product.com.d3os/fingerprint" in c["metadata"]["annotations"] for c in crds)
    loose = by_kind(template("crds.keep=false"), "CustomResourceDefinition")
    assert len(loose) == 2 and not any("helm.sh/resource-policy" in c["metadata"]["annotations"] for c in loose)
    assert not by_kind(template("crds.enabled=false"), "CustomResourceDefinition")


def test_helm_test_hook_reads_the_metrics_service() -> None:
    docs = template(flags=MONITORING)
    (job,) = by_kind(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (svc,) = by_kind(docs, "Service")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert f"http://{svc['metadata']['name']}.d3os-operator-system.svc:8080/metrics" in c["command"][-1]
    assert c["securityContext"]["runAsNonRoot"] is True and c["image"] == _deployment(docs)["spec"]["template"][
        "spec"]["containers"][0]["image"]
    assert not by_kind(template("tests.enabled=false", flags=MONITORING), "Job")
    assert "tests.enabled needs metrics.service.enabled" in _refusal("metrics.service.enabled=false")


# -- item 11: safe combinations ----------------------------------------------------------------------------


def test_two_writers_are_refused() -> None:
    err = _refusal("leaderElection.enabled=false")
    assert "leaderElection.enabled=false with replicaCount=2: every replica would reconcile" in err, err
    dep = _deployment(template("leaderElection.enabled=false", "replicaCount=1"))
    assert dep["spec"]["replicas"] == 1


@pytest.mark.parametrize(("value", "api"), [("metrics.serviceMonitor.enabled=true", "ServiceMonitor"),
                                            ("prometheusRule.enabled=true", "PrometheusRule")])
def test_monitoring_objects_need_their_api(value: str, api: str) -> None:
    err = _refusal(value)
    assert f"this cluster has no monitoring.coreos.com/v1 {api}" in err, err
    assert by_kind(template(value, flags=("--api-versions", f"monitoring.coreos.com/v1/{api}")), api)


def test_two_releases_in_two_namespaces_share_no_object() -> None:
    def names(ns: str) -> set[tuple[str, str, str]]:
        return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
                for d in template("crds.enabled=false", release="ops", namespace=ns)}

    a, b = names("team-a"), names("team-b")
    assert a & b == set(), a & b
    assert any(k == "ClusterRole" for k, _, _ in a)


def test_notes_point_at_nothing_a_chart_user_lacks() -> None:
    out = helm("install", "ops", str(CHART), "-n", "team-a", "--dry-run=client")
    assert out.returncode == 0, out.stderr
    notes = out.stdout[out.stdout.index("NOTES:"):]
    assert "DataService (dataservices.d3os-product.com.d3os" in notes
    assert "AnalyticsService (analyticsservices.d3os-product.com.d3os" in notes
    for path in re.findall(r"(?<![\w/.])([\w.-]+/[\w./-]+\.(?:ya?ml|md|json|txt))", notes):
        pytest.fail(f"NOTES.txt points at a file a chart user does not have: {path}")


# -- issue 23 item 5: the product files ride in the chart ----------------------------------------------------


def _checksum(chart_dir: Path) -> str:
    dep = _deployment(template(chart=chart_dir))
    return str(dep["spec"]["template"]["metadata"]["annotations"]["checksum/products"])


def test_a_product_file_change_rolls_the_pods(tmp_path: Path) -> None:
    copy = tmp_path / "d3os-operator"
    shutil.copytree(CHART, copy)
    before = _checksum(copy)
    assert before == _checksum(CHART)
    cnf = copy / "files" / "products" / "dataservice" / "files" / "my.cnf"
    cnf.write_text(cnf.read_text() + "\n# tuned\n")
    assert _checksum(copy) != before


def test_the_mounted_products_are_the_operators_catalogue(tmp_path: Path) -> None:
    """Lay the rendered ConfigMap out as the kubelet does (each item's key at its path) and load it with the
    operator's own loader: the same products as the repository's."""
    from d3os_operator.products import installed, load_catalogue

    docs = template()
    (cm,) = by_kind(docs, "ConfigMap")
    (vol,) = [v for v in _deployment(docs)["spec"]["template"]["spec"]["volumes"] if v.get("configMap")]
    assert vol["configMap"]["name"] == cm["metadata"]["name"]
    assert {i["key"] for i in vol["configMap"]["items"]} == set(cm["data"])
    for item in vol["configMap"]["items"]:
        path = tmp_path / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cm["data"][item["key"]], encoding="utf-8")
    (c,) = _deployment(docs)["spec"]["template"]["spec"]["containers"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == vol["name"]]
    assert f"--products={mount['mountPath']}" in c["args"]
    got = load_catalogue(tmp_path)
    assert [(p.name, p.fingerprint) for p in got] == [(p.name, p.fingerprint) for p in installed()]
