"""config/default renders crd + rbac + manager, everything labelled part-of d3os-operator."""

from __future__ import annotations

from .test_kustomize import DEPLOYMENT, NS, kustomize


def test_default_renders_crd_rbac_manager() -> None:
    docs = kustomize("default")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("CustomResourceDefinition", "dataservices.d3os-product.com.d3os") in kinds
    assert ("Namespace", NS) in kinds
    assert ("Deployment", DEPLOYMENT) in kinds
    assert ("ServiceAccount", DEPLOYMENT) in kinds
    assert any(k == "ClusterRole" for k, _ in kinds)
    assert any(k == "ClusterRoleBinding" for k, _ in kinds)
    for d in docs:
        assert d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "d3os-operator", d["kind"]
