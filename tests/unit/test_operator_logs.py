"""Structured logs of the operator: formats, and no log call that would crash at run time."""

from __future__ import annotations

import ast
import io
import json
import logging
from pathlib import Path

import pytest

import d3os_operator
from d3os_operator.logs import setup_logging

RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _extra_keys() -> list[tuple[str, int, str]]:
    out = []
    for path in Path(d3os_operator.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "extra" and isinstance(kw.value, ast.Dict):
                        for k in kw.value.keys:
                            if isinstance(k, ast.Constant) and isinstance(k.value, str):
                                out.append((path.name, node.lineno, k.value))
    return out


def test_no_log_call_uses_a_reserved_logrecord_attribute() -> None:
    keys = _extra_keys()
    assert keys, "the operator logs with extra fields"
    bad = [k for k in keys if k[2] in RESERVED]
    assert bad == [], f"logging raises KeyError for these extra keys: {bad}"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_formats_carry_the_fields(fmt: str) -> None:
    stream = io.StringIO()
    setup_logging("info", fmt, stream=stream)
    try:
        logging.getLogger("d3os_operator.reconciler").info(
            "applied", extra={"ds": "ns/sample", "obj": "Deployment/web", "detail": "a b=c"}
        )
    finally:
        setup_logging("warning", "text", stream=io.StringIO())
    line = stream.getvalue().strip()
    if fmt == "json":
        rec = json.loads(line)
        assert rec["msg"] == "applied" and rec["ds"] == "ns/sample" and rec["obj"] == "Deployment/web"
        assert rec["level"] == "info"
    else:
        assert "reconciler: applied ds=ns/sample obj=Deployment/web" in line
        assert 'detail="a b=c"' in line


def test_json_never_loses_a_line_with_odd_fields() -> None:
    stream = io.StringIO()
    setup_logging("info", "json", stream=stream)
    try:
        logging.getLogger("d3os_operator").info("stopped", extra={"stats": {("apply", "Deployment"): 3}})
    finally:
        setup_logging("warning", "text", stream=io.StringIO())
    rec = json.loads(stream.getvalue())
    assert rec["msg"] == "stopped" and "Deployment" in rec["stats"]
