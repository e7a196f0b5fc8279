"""resource_customizations/<group>/<Kind>/health.lua, Argo CD's health check for each product kind, run on its
health_test.yaml cases (objects recorded from the real control plane) in gopher-lua as Argo CD runs a script
from argocd-cm (the ``luahealth`` tool; skipped until ``d3os-testenv build`` has built it)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from d3os_core import api
from tests.tools import need

from .kstatus import verdict

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "resource_customizations" / api.GROUP / api.KIND
CASES = yaml.safe_load((HERE / "health_test.yaml").read_text())["tests"]
KSTATUS = {"Healthy": {"Current"}, "Degraded": {"Failed"}, "Progressing": {"InProgress", "Terminating"},
           "Suspended": {"InProgress", "Current"}}
"""What kstatus may say where Argo CD says each health: the two never disagree on done or failed."""


def _luahealth() -> Path:
    from d3os_testenv.build import GO_TOOLS, cache_root

    path = GO_TOOLS["luahealth"].binary(cache_root())
    return need(path, "luahealth (Argo CD's Lua health scripts)")


def test_every_health_is_covered_by_a_recorded_case() -> None:
    assert {c["healthStatus"]["status"] for c in CASES} == {"Healthy", "Progressing", "Degraded", "Suspended"}
    assert all((HERE / c["inputPath"]).is_file() for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_lua_on_recorded_objects(case: dict[str, dict[str, str] | str]) -> None:
    out = subprocess.run([str(_luahealth()), str(HERE / "health.lua"), str(HERE / str(case["inputPath"]))],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == case["healthStatus"]


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_argo_cd_and_kstatus_agree(case: dict[str, dict[str, str] | str]) -> None:
    obj = yaml.safe_load((HERE / str(case["inputPath"])).read_text())
    health = case["healthStatus"]
    assert isinstance(health, dict)
    assert verdict(obj) in KSTATUS[health["status"]], (verdict(obj), health)


def test_every_product_kind_has_the_same_health_check() -> None:
    """health.lua reads only the conditions every product's status carries, so each kind ships the same script
    (Argo CD looks it up by group and kind)."""
    from d3os_operator.products import installed

    script = (HERE / "health.lua").read_text(encoding="utf-8")
    for product in installed():
        path = ROOT / "resource_customizations" / api.GROUP / product.names.kind / "health.lua"
        assert path.is_file() and path.read_text(encoding="utf-8") == script, f"{path}: cp from DataService/"
