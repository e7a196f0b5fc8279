"""What the tools customers use conclude from a DataService: kstatus' verdict (the ``kstatus`` tool, the real
sigs.k8s.io/cli-utils library) and Argo CD's health (our ``health.lua`` in gopher-lua, the ``luahealth`` tool).

``Recording`` keeps the objects of each state a test reaches; with ``D3OS_RECORD_ARGOCD=1`` they are written
to the health script's ``testdata/`` (trimmed of managedFields), the cases its ``health_test.yaml`` names.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from d3os_core import api

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "resource_customizations" / api.GROUP / api.KIND
HEALTH_LUA = ARGOCD / "health.lua"


def kstatus(binary: str, objects: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """kstatus' verdict ({kind, namespace, name, status, message}) for each object."""
    out = subprocess.run([binary], input=json.dumps({"kind": "List", "items": list(objects)}), text=True,
                         capture_output=True, check=True, timeout=60).stdout
    return [json.loads(line) for line in out.splitlines()]


def kstatus_of_json(binary: str, kubectl_json: str) -> list[dict[str, str]]:
    """kstatus' verdict for what ``kubectl get -o json`` printed (one object or a List)."""
    out = subprocess.run([binary], input=kubectl_json, text=True, capture_output=True, check=True,
                         timeout=60).stdout
    return [json.loads(line) for line in out.splitlines()]


def argocd_health(binary: str, objects: Sequence[Mapping[str, Any]], tmp: Path) -> list[dict[str, str]]:
    """Argo CD's health ({status, message}) for each object, by our health.lua."""
    paths = []
    for i, obj in enumerate(objects):
        p = tmp / f"obj-{i}.json"
        p.write_text(json.dumps(obj))
        paths.append(str(p))
    out = subprocess.run([binary, str(HEALTH_LUA), *paths], text=True, capture_output=True, check=True,
                         timeout=60).stdout
    return [json.loads(line) for line in out.splitlines()]


def trimmed(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as recorded for testdata: without managedFields (bookkeeping nobody's health reads)."""
    out = copy.deepcopy(dict(obj))
    out.get("metadata", {}).pop("managedFields", None)
    return out


class Recording:
    """Objects of named states; written to the health script's testdata when ``D3OS_RECORD_ARGOCD=1``."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}

    def add(self, state: str, obj: Mapping[str, Any]) -> None:
        self.states[state] = trimmed(obj)

    def save(self) -> None:
        if os.environ.get("D3OS_RECORD_ARGOCD") != "1":
            return
        (ARGOCD / "testdata").mkdir(exist_ok=True)
        for state, obj in self.states.items():
            (ARGOCD / "testdata" / f"{state}.yaml").write_text(
                yaml.safe_dump(obj, allow_unicode=True, sort_keys=False))
