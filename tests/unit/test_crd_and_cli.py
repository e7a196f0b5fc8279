"""The checked-in CRD is what the code generates; the CLI never shows a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_core.crd import crd_manifest
from d3os_core.yamlout import dump_all

from .helpers import DATASERVICE, SAMPLE

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "d3os-product.com.d3os_dataservices.yaml"


def d3os(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "d3os_operator.usercli", *args], capture_output=True, text=True,
                          input=stdin, cwd=ROOT)


def test_checked_in_crd_matches_the_code() -> None:
    assert yaml.safe_load(CRD_FILE.read_text(encoding="utf-8")) == crd_manifest(DATASERVICE), (
        "crds/ drifted from the pydantic model: run `d3os crd > crds/d3os-product.com.d3os_dataservices.yaml`")
    assert CRD_FILE.read_text(encoding="utf-8") == dump_all([crd_manifest(DATASERVICE)]), (
        "crds/: regenerate with `d3os crd`")


def walk(node: Any, path: str = "") -> list[str]:
    bad = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("$ref", "$defs", "anyOf", "oneOf", "title", "patternProperties", "propertyNames", "const"):
                bad.append(f"{path}.{k}")
            if k == "additionalProperties" and v is False:
                bad.append(f"{path}.{k}")
            if k not in ("enum", "default"):
                bad.extend(walk(v, f"{path}.{k}"))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            bad.extend(walk(v, f"{path}[{i}]"))
    return bad


def test_crd_schema_is_structural() -> None:
    schema = crd_manifest(DATASERVICE)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert walk(schema) == []
    spec = schema["properties"]["spec"]
    node_port = spec["properties"]["web"]["properties"]["nodePort"]
    assert node_port["type"] == "integer" and node_port["nullable"] is True
    assert "self >= 30000 && self <= 32767" in json.dumps(node_port)
    rules = json.dumps(spec["properties"]["mysql"]["x-kubernetes-validations"])
    assert "self.kind in [0, 1, 3]" in rules


def test_printer_columns_and_names() -> None:
    crd = crd_manifest(DATASERVICE)
    cols = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert cols == ["Status", "Phase", "Message", "Ready", "Age"]
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"] == ["dsvc"]


def test_validate_ok_and_invalid(tmp_path: Path) -> None:
    assert d3os("validate", str(SAMPLE)).returncode == 0
    bad = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    bad["spec"]["mysql"]["kind"] = 2
    bad["spec"]["web"]["nodePort"] = 1
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(bad), encoding="utf-8")
    r = d3os("validate", str(f))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [  # every problem at once: the kind rule too, beside a field's schema error
        "spec.web.nodePort: must be from 30000 to 32767 (the NodePort range), got 1",
        "spec.mysql.kind: mysql may not be 2 (DaemonSet) (each node would keep its own copy of the data); "
        "allowed: 0 (Deployment), 1 (StatefulSet), 3 (thirdParty)"]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("content", ["::: not yaml", "kind: Pod\n", "", "apiVersion: x/v1\nkind: DataService\n"])
def test_bad_files_give_an_error_not_a_traceback(tmp_path: Path, content: str) -> None:
    f = tmp_path / "f.yaml"
    f.write_text(content, encoding="utf-8")
    for cmd in ("validate", "render", "plan"):
        r = d3os(cmd, str(f))
        assert r.returncode == 2, (cmd, r.stdout)
        assert r.stderr.startswith("d3os: error: ") and "Traceback" not in r.stderr


def test_plan_against_a_fake_state(tmp_path: Path) -> None:
    first = yaml.safe_load(d3os("plan", str(SAMPLE)).stdout)
    assert [a["kind"] for a in first["apply"]] == [
        "Secret", "ConfigMap", "ConfigMap", "PersistentVolumeClaim", "Service", "StatefulSet"]
    assert first["status"]["phase"] == "mysql已部署"
    # feed back what was applied, rolled out, and ask again: the plan moves on to uuc
    ds = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    ds["metadata"]["uid"] = "u1"
    with_uid = tmp_path / "ds.yaml"
    with_uid.write_text(yaml.safe_dump(ds, allow_unicode=True), encoding="utf-8")
    rendered = list(yaml.safe_load_all(d3os("render", str(with_uid)).stdout))
    mysql = [o for o in rendered if o["metadata"]["labels"]["app.kubernetes.io/component"] == "mysql"]
    for o in mysql:
        if o["kind"] == "StatefulSet":
            o["metadata"]["generation"] = 1
            o["status"] = {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
                               "currentRevision": "r", "updateRevision": "r"}
    observed = tmp_path / "observed.yaml"
    observed.write_text(yaml.safe_dump_all(mysql), encoding="utf-8")
    nxt = yaml.safe_load(d3os("plan", str(with_uid), "--observed", str(observed)).stdout)
    assert {a["component"] for a in nxt["apply"]} == {"uuc"}
    assert nxt["status"]["message"].startswith("mysql->[uuc]->eureka")


def test_crd_command_prints_the_crd() -> None:
    crds = list(yaml.safe_load_all(d3os("crd").stdout))
    assert crd_manifest(DATASERVICE) in crds
    assert [c["spec"]["names"]["kind"] for c in crds] == ["AnalyticsService", "DataService"]
    assert list(yaml.safe_load_all(d3os("crd", "--product", "dataservice").stdout)) == [crd_manifest(DATASERVICE)]
