"""``d3os product rbac``: the rules the operator needs for any product files, the same as the shipped install's
for the shipped products (config/rbac, which tests/unit/test_rbac_calls.py holds to the shell's calls)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _rbac(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "d3os_operator.usercli", "product", "rbac", *args],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _rules(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for d in docs if d["kind"] == kind for r in d["rules"]]


def _granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {(g, r, v, tuple(sorted(rule.get("resourceNames") or ()))) for rule in rules for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}


def test_the_shipped_products_get_the_shipped_rules() -> None:
    docs = _rbac("dataservice", "analytics")
    shipped = [d for f in ("role.yaml", "metrics_auth_role.yaml", "leader_election_role.yaml")
               for d in yaml.safe_load_all((ROOT / "config" / "rbac" / f).read_text()) if d]
    assert _granted(_rules(docs, "ClusterRole")) == _granted(_rules(shipped, "ClusterRole"))
    assert _granted(_rules(docs, "Role")) == _granted(_rules(shipped, "Role"))
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "d3os-operator-controller-manager",
                                    "namespace": "d3os-operator-system"}]


def test_a_product_files_rules_follow_its_kind(tmp_path: Path) -> None:
    docs = _rbac(str(ROOT / "products" / "analytics"), "--namespace", "ops", "--service-account", "op")
    granted = _granted(_rules(docs, "ClusterRole"))
    assert ("d3os-product.com.d3os", "analyticsservices/status", "patch", ()) in granted
    assert not any(r.startswith("dataservices") for _, r, _, _ in granted), "only the products asked for"
    assert ("apiextensions.k8s.io", "customresourcedefinitions", "get",
            ("analyticsservices.d3os-product.com.d3os",)) in granted
    assert ("", "secrets", "delete", ()) not in granted  # analytics keeps its credentials with its claim
    assert [d["metadata"].get("namespace") for d in docs if d["kind"] == "Role"] == ["ops"]
