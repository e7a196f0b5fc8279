"""The operator's RBAC is generated from one declaration (d3os_generate.rbac): the checked-in files of
config/rbac/ must match it, and it grants no wildcard and nothing the operator does not use."""

from __future__ import annotations

from pathlib import Path

import yaml

from d3os_core import api
from d3os_generate import rbac

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "rbac"


def _all_rules() -> list[dict[str, object]]:
    return [r.manifest() for r in (*rbac.cluster_rules(), *rbac.leader_rules())]


def test_checked_in_files_match_the_declaration() -> None:
    want = rbac.rendered_files()
    got = {p.name: p.read_text(encoding="utf-8") for p in CONFIG.glob("*.yaml")}
    assert set(got) == set(want), "config/rbac/ has other files than the declaration"
    for name, text in want.items():
        assert got[name] == text, f"config/rbac/{name} drifted: run `python -m d3os_generate.rbac --write config/rbac`"


def test_kustomization_lists_every_file() -> None:
    kust = yaml.safe_load((CONFIG / "kustomization.yaml").read_text())
    assert kust["resources"] == [
        "service_account.yaml",
        "role.yaml",
        "role_binding.yaml",
        "leader_election_role.yaml",
        "leader_election_role_binding.yaml",
        "probe_targets_role.yaml",
        "probe_targets_role_binding.yaml",
        "metrics_auth_role.yaml",
        "metrics_auth_role_binding.yaml",
        "metrics_reader_role.yaml",
    ]


def test_no_wildcards_and_nothing_forbidden() -> None:
    for rule in _all_rules():
        for field in ("apiGroups", "resources", "verbs"):
            values = rule[field]
            assert isinstance(values, list) and values, rule
            assert not any("*" in v for v in values), f"wildcard in {rule}"
        if rule["resources"] == ["customresourcedefinitions"]:  # read at start, by name, the products' only
            assert rule["verbs"] == ["get"] and rule["resourceNames"], rule
            continue
        assert not set(rule["resources"]) & rbac.FORBIDDEN_RESOURCES, rule  # type: ignore[arg-type]
        assert "rbac.authorization.k8s.io" not in rule["apiGroups"], rule  # type: ignore[operator]
        assert not {"escalate", "bind", "impersonate", "deletecollection", "update"} & set(rule["verbs"]) or all(
            r.endswith("/finalizers") for r in rule["resources"]  # type: ignore[union-attr]
        ), rule


def test_pods_are_only_listed() -> None:
    pods = [r for r in _all_rules() if "pods" in r["resources"]]  # type: ignore[operator]
    assert pods == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]


def test_owned_kinds_are_covered_and_claims_never_deleted() -> None:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rbac.cluster_rules():
        for res in rule.resources:
            granted.setdefault((rule.group, res), set()).update(rule.verbs)
    for api_version, kind in api.OWNED_KINDS:
        group = api_version.rpartition("/")[0]
        verbs = granted[(group, api.OWNED_PLURALS[kind])]
        assert {"get", "list", "watch", "create", "patch"} <= verbs, kind
        assert ("delete" in verbs) == (kind not in ("PersistentVolumeClaim", "Secret")), kind  # data, credentials
    for plural in ("dataservices", "analyticsservices"):  # every installed product's kind
        assert granted[(api.GROUP, plural)] == {"list", "watch", "patch"}
        assert granted[(api.GROUP, f"{plural}/status")] == {"patch"}
        assert granted[(api.GROUP, f"{plural}/finalizers")] == {"update"}
    assert granted[("", "events")] == {"create", "patch"}
    # secrets are granted on the operator's own children only in the sense of verbs it sends; no "update"
    assert all("update" not in v for (g, r), v in granted.items() if not r.endswith("/finalizers"))


def test_leader_election_is_a_namespaced_role() -> None:
    objs = {o["kind"]: o for name, group in rbac.manifests().items() for o in group
            if "probe_targets" not in name and "metrics" not in name}
    assert objs["Role"]["metadata"]["namespace"] == rbac.NAMESPACE
    assert objs["Role"]["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]}
    ]
    assert objs["ClusterRole"]["metadata"]["name"] == "d3os-operator-manager-role"
    assert not any(r["resources"] == ["leases"] for r in objs["ClusterRole"]["rules"])
    assert objs["ServiceAccount"]["metadata"] == {
        "name": "d3os-operator-controller-manager",
        "namespace": "d3os-operator-system",
        "labels": rbac.LABELS,
    }
    for binding in ("ClusterRoleBinding", "RoleBinding"):
        assert objs[binding]["subjects"] == [
            {"kind": "ServiceAccount", "name": rbac.SERVICE_ACCOUNT, "namespace": rbac.NAMESPACE}
        ]


def test_module_prints_the_yaml(capsys: object) -> None:
    import pytest

    assert isinstance(capsys, pytest.CaptureFixture)
    assert rbac.main([]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["kind"] for d in docs] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
                                         "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ClusterRole"]


def test_probe_targets_are_read_by_name_in_default_only() -> None:
    """The probe policy reads the API server's addresses at start: `get` of exactly the `kubernetes` Service,
    Endpoints and EndpointSlice in `default`, in both installs, and nothing else there."""
    for files in (rbac.manifests(), rbac.namespaced_manifests(["team-a"])):
        roles = [o for o in files["probe_targets_role.yaml"] if o["kind"] == "Role"]
        assert [r["metadata"]["namespace"] for r in roles] == ["default"]
        for rule in roles[0]["rules"]:
            assert rule["verbs"] == ["get"] and rule["resourceNames"] == ["kubernetes"], rule
        granted = {(g, res) for rule in roles[0]["rules"] for g in rule["apiGroups"] for res in rule["resources"]}
        assert granted == {("", "services"), ("", "endpoints"), ("discovery.k8s.io", "endpointslices")}
        binding = files["probe_targets_role_binding.yaml"][0]
        assert binding["metadata"]["namespace"] == "default"
        assert binding["roleRef"]["name"] == roles[0]["metadata"]["name"]
