"""Issue 26 item 5 (offline part): ``d3os plan -o json|yaml|wide``: ``-o json`` and ``-o yaml`` are the same
document, ``-o wide`` the whole manifests (``-o name`` against kubectl's naming: tests/integration/
test_cli_cluster.py, kubectl needs the API server's discovery for it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "examples" / "dataservice-sample.yaml"


def d3os(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "d3os"), *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent-home"})


def test_plan_output_formats() -> None:
    as_yaml = yaml.safe_load(d3os("plan", str(SAMPLE)).stdout)
    as_json = json.loads(d3os("plan", str(SAMPLE), "-o", "json").stdout)
    assert as_json == as_yaml and as_yaml["apply"]
    wide = yaml.safe_load(d3os("plan", str(SAMPLE), "-o", "wide").stdout)
    assert wide == yaml.safe_load(d3os("plan", str(SAMPLE), "--full").stdout)
    manifests = wide["apply"]
    assert [m["metadata"]["name"] for m in manifests] == [a["name"] for a in as_yaml["apply"]]
