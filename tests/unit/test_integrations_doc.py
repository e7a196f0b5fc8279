"""docs/integrations.md: every snippet is marked and used by a test; the ones no test can run against the
real tool (Flux, argocd-cm) are checked against what they name; promtool checks the alert rules."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from d3os_core import api
from tests.docsnippets import DOC, command, snippet, snippets
from tests.tools import need

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def test_every_snippet_is_marked_and_a_test_uses_it() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text.count("```") // 2 == len(snippets()), "a fenced block without <!-- snippet: NAME -->"
    sources = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py"))
    for name in snippets():
        assert re.search(rf"""(snippet|command)\("{name}"\)""", sources), f"no test uses the snippet {name!r}"


def test_the_flux_health_check_names_the_dataservice_as_the_crd_serves_it() -> None:
    kustomization = yaml.safe_load(snippet("flux-kustomization"))
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    (check,) = kustomization["spec"]["healthChecks"]
    assert check["apiVersion"] == api.API_VERSION and check["kind"] == api.KIND
    sample = yaml.safe_load((ROOT / "examples" / "dataservice-sample.yaml").read_text(encoding="utf-8"))
    assert check["name"] == sample["metadata"]["name"]


def test_argocd_cm_carries_the_tested_health_script() -> None:
    cm = yaml.safe_load(snippet("argocd-cm"))
    assert cm["metadata"]["name"] == "argocd-cm"
    (key,) = cm["data"]
    assert key == f"resource.customizations.health.{api.GROUP}_{api.KIND}"
    assert cm["data"][key] == (ROOT / "resource_customizations" / api.GROUP / api.KIND / "health.lua").read_text()


def test_promtool_accepts_the_alert_rules() -> None:
    from d3os_testenv.build import GO_TOOLS, cache_root

    promtool = need(GO_TOOLS["promtool"].binary(cache_root()), "promtool")
    argv = command("promtool")
    out = subprocess.run([str(promtool), *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 6 rules found" in out.stdout + out.stderr
