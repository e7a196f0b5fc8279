"""The product docs stay true: docs/product-file.md is the generated reference, and the worked example in
docs/products.md says what the shipped analytics product file says and what the commands print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from d3os_core.productref import product_file_reference

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "products.md").read_text(encoding="utf-8")
SHIPPED = yaml.safe_load((ROOT / "products" / "analytics" / "product.yaml").read_text(encoding="utf-8"))
PIPELINE = (ROOT / "products" / "analytics" / "files" / "pipeline.yaml").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE, re.S)


def test_the_product_file_reference_is_generated() -> None:
    assert (ROOT / "docs" / "product-file.md").read_text(encoding="utf-8") == product_file_reference(), (
        "docs/product-file.md drifted: d3os product reference-file > docs/product-file.md")


def _subset(part: Any, whole: Any, where: str) -> None:
    if isinstance(part, dict):
        assert isinstance(whole, dict), where
        for k, v in part.items():
            assert k in whole, f"{where}.{k} is in the guide but not in products/analytics"
            _subset(v, whole[k], f"{where}.{k}")
    else:
        assert part == whole, f"{where}: the guide says {part!r}, the file {whole!r}"


def test_the_guides_snippets_are_the_shipped_files() -> None:
    shipped = {c["key"]: c for c in SHIPPED["components"]}
    checked = 0
    for text in _blocks("yaml"):
        doc = yaml.safe_load(text)
        if isinstance(doc, list):  # a run of components
            doc = {"components": doc}
        if "source" in doc or "kafka" in doc:  # the pipeline include (below); the chart's values (not ours)
            continue
        if isinstance(doc, dict) and doc.get("kind") == "Product":
            _subset(doc, SHIPPED, "product")
            checked += 1
        for comp in (doc or {}).get("components") or []:
            _subset(comp, shipped[comp["key"]], f"components[{comp['key']}]")
            checked += 1
        for key in ("vars", "defaults"):
            if key in (doc or {}):
                _subset(doc[key], SHIPPED[key], key)
                checked += 1
    assert checked >= 6
    include = next(t for t in _blocks("yaml") if t.startswith("source:"))
    assert include in PIPELINE


def _d3os(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "d3os_operator.usercli", *args], cwd=ROOT, capture_output=True,
                          text=True, check=False)


def test_the_guides_validate_line_is_what_the_command_prints() -> None:
    shown = next(b for b in _blocks("console") if "valid product analytics" in b)
    expected = shown.splitlines()[1]
    got = _d3os("product", "validate", "products/analytics")
    assert got.returncode == 0 and got.stdout.strip() == expected
