"""The operator's RBAC is generated from one declaration (d3os_generate.rbac): the checked-in files of
config/rbac/ must match it, and it grants no wildcard and nothing the operator does not use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_core import api
from d3os_generate import rbac

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "rbac"


def _all_rules() -> list[dict[str, object]]:
    """Every resource rule of every Role and ClusterRole the generator writes, in either install mode (the
    scrapers' metrics-reader role is a non-resource URL, not the operator's)."""
    return [rule for objs in (rbac.manifests(), rbac.namespaced_manifests(["team-a"])) for group in objs.values()
            for o in group if o["kind"] in ("Role", "ClusterRole") for rule in o["rules"] if "apiGroups" in rule]


def _check_rule(rule: dict[str, object]) -> None:
    """No wildcard, nothing forbidden, nodes only read, no RBAC objects, no verb the operator never sends."""
    for field in ("apiGroups", "resources", "verbs"):
        values = rule[field]
        assert isinstance(values, list) and values, rule
        assert not any("*" in v for v in values), f"wildcard in {rule}"
    if rule["resources"] == ["customresourcedefinitions"]:  # read at start, by name, the products' only
        assert rule["verbs"] == ["get"] and rule["resourceNames"], rule
        return
    assert not set(rule["resources"]) & rbac.FORBIDDEN_RESOURCES, rule  # type: ignore[arg-type]
    for res in rule["resources"]:  # type: ignore[attr-defined]
        base = res.partition("/")[0]
        if base in rbac.READ_ONLY_RESOURCES:  # nodes: list and watch (their kubelets' addresses), never a write
            assert res == base, f"a sub-resource of {base}: {rule}"  # nodes/proxy, nodes/status: none
            assert set(rule["verbs"]) <= rbac.READ_ONLY_RESOURCES[base], rule  # type: ignore[arg-type]
    assert "rbac.authorization.k8s.io" not in rule["apiGroups"], rule  # type: ignore[operator]
    assert not {"escalate", "bind", "impersonate", "deletecollection", "update"} & set(rule["verbs"]) or all(
        r.endswith("/finalizers") for r in rule["resources"]  # type: ignore[attr-defined]
    ), rule


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
    rules = _all_rules()
    assert any("nodes" in r["resources"] for r in rules)  # type: ignore[operator]
    for rule in rules:
        _check_rule(rule)


@pytest.mark.parametrize("verbs", [["list", "watch", "patch"], ["create"], ["update"], ["delete"], ["get"],
                                   ["deletecollection"]])
@pytest.mark.parametrize("resources", [["nodes"], ["nodes/proxy"], ["nodes/status"], ["services", "nodes"]])
def test_the_check_refuses_node_writes_and_proxies(resources: list[str], verbs: list[str]) -> None:
    """Nodes are read (list, watch) for the kubelets' addresses; a write on them, a get, or any verb on a
    sub-resource of theirs (their proxy, their status) fails the check above."""
    with pytest.raises(AssertionError):
        _check_rule({"apiGroups": [""], "resources": resources, "verbs": verbs})
    _check_rule({"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]})


def test_pods_are_never_written() -> None:
    """Pods: ``list`` in the namespaces served (why a component is stuck); ``list`` and ``watch`` in the
    operator's own namespace only (the probe policy protects its replicas); never a write."""
    served = [r.manifest() for r in rbac.cluster_rules() if "pods" in r.resources]
    assert served == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    own = [r.manifest() for r in rbac.own_namespace_probe_rules() if "pods" in r.resources]
    assert own == [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["list", "watch"]}]
    for rule in _all_rules():
        if any(r.startswith("pods") for r in rule["resources"]):  # type: ignore[attr-defined]
            assert rule["resources"] in (["pods"], ["pods", "services"]), rule
            assert set(rule["verbs"]) <= {"list", "watch"}, rule  # type: ignore[arg-type]


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
                                         "Role", "Role", "ClusterRole", "RoleBinding", "RoleBinding",
                                         "ClusterRoleBinding", "ClusterRole", "ClusterRoleBinding", "ClusterRole"]


def _granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {(g, res, v, tuple(rule.get("resourceNames") or ())) for rule in rules for g in rule["apiGroups"]
            for res in rule["resources"] for v in rule["verbs"]}


def test_probe_targets_are_read_by_name_in_default_and_followed() -> None:
    """The probe policy reads the API server's addresses at start (`get` of exactly the `kubernetes` Service,
    Endpoints and EndpointSlice in `default`) and then follows them (`list`, `watch` of that Service and
    EndpointSlice, by name: nothing else in `default`); the nodes cluster-wide (`list`, `watch` only); and
    what runs in the operator's own namespace -- in both installs, the same objects."""
    named = ("kubernetes",)
    for files in (rbac.manifests(), rbac.namespaced_manifests(["team-a"])):
        roles = files["probe_targets_role.yaml"]
        assert [(r["kind"], r["metadata"]["name"], r["metadata"].get("namespace")) for r in roles] == [
            ("Role", rbac.PROBE_TARGETS_ROLE, "default"), ("Role", rbac.PROBE_TARGETS_ROLE, rbac.NAMESPACE),
            ("ClusterRole", rbac.PROBE_TARGETS_ROLE, None)]
        assert _granted(roles[0]["rules"]) == {
            ("", "endpoints", "get", named),
            *{(g, r, v, named) for g, r in (("", "services"), ("discovery.k8s.io", "endpointslices"))
              for v in ("get", "list", "watch")}}
        assert _granted(roles[1]["rules"]) == {(g, r, v, ()) for g, r in (("", "services"), ("", "pods"),
                                                                          ("discovery.k8s.io", "endpointslices"))
                                               for v in ("list", "watch")}
        assert _granted(roles[2]["rules"]) == {("", "nodes", "list", ()), ("", "nodes", "watch", ())}
        bindings = files["probe_targets_role_binding.yaml"]
        assert [(b["kind"], b["metadata"].get("namespace"), b["roleRef"]["kind"], b["roleRef"]["name"])
                for b in bindings] == [
            ("RoleBinding", "default", "Role", rbac.PROBE_TARGETS_ROLE),
            ("RoleBinding", rbac.NAMESPACE, "Role", rbac.PROBE_TARGETS_ROLE),
            ("ClusterRoleBinding", None, "ClusterRole", rbac.PROBE_TARGETS_ROLE)]
        for b in bindings:
            assert b["subjects"] == [{"kind": "ServiceAccount", "name": rbac.SERVICE_ACCOUNT,
                                      "namespace": rbac.NAMESPACE}]


def test_an_operator_in_default_gets_one_probe_targets_role_there() -> None:
    """Installed in ``default`` itself (``--namespace default``): one Role there with both Roles' rules, not
    two objects of one name."""
    files = rbac.manifests("default")
    roles = files["probe_targets_role.yaml"]
    assert [(r["kind"], r["metadata"].get("namespace")) for r in roles] == [("Role", "default"),
                                                                            ("ClusterRole", None)]
    assert roles[0]["rules"] == [r.manifest() for r in (*rbac.probe_target_rules(),
                                                        *rbac.own_namespace_probe_rules())]
    assert [(b["kind"], b["metadata"].get("namespace")) for b in files["probe_targets_role_binding.yaml"]] == [
        ("RoleBinding", "default"), ("ClusterRoleBinding", None)]
