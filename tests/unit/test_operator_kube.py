"""Pure helpers of the operator's API wrapper (no API server involved)."""

from __future__ import annotations

from d3os_operator.kube import _merge_fields, is_hand_edit_manager, kind_info


def test_hand_edit_managers_are_peoples_tools_only() -> None:
    for m in ("kubectl", "kubectl-edit", "kubectl-patch", "kubectl-client-side-apply", "before-first-apply"):
        assert is_hand_edit_manager(m), m
    for m in ("d3os-operator", "kube-controller-manager", "kubectlx", "helm", "argocd-controller"):
        assert not is_hand_edit_manager(m), m


def test_fieldsv1_union() -> None:
    ours = {"f:spec": {"f:selector": {}, "f:ports": {'k:{"port":9085,"protocol":"TCP"}': {".": {}, "f:port": {}}}}}
    theirs = {"f:spec": {"f:ports": {'k:{"port":9999,"protocol":"TCP"}': {".": {}, "f:port": {}}}}}
    _merge_fields(ours, theirs)
    assert set(ours["f:spec"]["f:ports"]) == {'k:{"port":9085,"protocol":"TCP"}', 'k:{"port":9999,"protocol":"TCP"}'}
    assert "f:selector" in ours["f:spec"]


def test_kind_info_knows_owned_kinds_and_builtins() -> None:
    assert kind_info("apps/v1", "Deployment").plural == "deployments"
    assert kind_info("v1", "PersistentVolumeClaim").plural == "persistentvolumeclaims"
    assert kind_info("v1", "Pod").plural == "pods"
