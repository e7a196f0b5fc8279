"""What ``d3os-operator run --products DIR`` does at start (issue "Products as data", points 5 and 7), run as
a user runs it, against the local control plane: a product file whose installed CRD came from another
version -- a breaking one -- is refused with exit 2 naming both and the change; a product whose CRD is not
installed is named in one log line and in ``d3os_product_served`` and is not served, while the others are.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_testenv.operatorproc import OperatorProcess
from d3os_testenv.processes import free_port

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _run(kubeconfig: Path, products: Path, metrics: str = "0") -> OperatorProcess:
    """The operator on the products in ``products``, its text log beside that directory."""
    log = products.parent / f"{products.name}-operator.log"
    return OperatorProcess(kubeconfig, log, extra=["--products", str(products)], log_format="text", health="0",
                           metrics=metrics, allow_loopback=False)


def test_a_breaking_product_file_is_refused_at_start(k8s_cluster: Any, crd: None, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "products" / "analytics", tmp_path / "analytics")
    path = tmp_path / "analytics" / "product.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["metadata"]["version"] = "3.0.0"
    doc["components"] = [c for c in doc["components"] if c["key"] != "dashboard"]  # removed
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    proc = _run(k8s_cluster.kubeconfig, tmp_path)
    proc.p.wait(60)
    out = proc.text()
    print(out)
    assert proc.returncode == 2, out
    assert "product analytics 3.0.0: the installed CRD analyticsservices.d3os-product.com.d3os was generated from " \
           "version 2.0.0" in out, out
    assert "a breaking change: dashboard is removed" in out, out
    assert len([ln for ln in out.splitlines() if ln.strip()]) == 1, "one line"


def test_a_product_without_its_crd_is_named_and_not_served(k8s_cluster: Any, crd: None, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "products" / "dataservice", tmp_path / "dataservice")
    shutil.copytree(ROOT / "products" / "analytics", tmp_path / "shop")
    path = tmp_path / "shop" / "product.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["metadata"]["name"] = "shop"
    doc["names"] = {"kind": "ShopService", "plural": "shopservices", "singular": "shopservice"}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    port = free_port(set())
    proc = _run(k8s_cluster.kubeconfig, tmp_path, f"127.0.0.1:{port}")
    try:
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    text = resp.read().decode()
                if "d3os_product_served" in text:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        served = {ln for ln in text.splitlines() if ln.startswith("d3os_product_served{")}
        assert served == {'d3os_product_served{product="dataservice",version="1.4.0"} 1.0',
                          'd3os_product_served{product="shop",version="2.0.0"} 0.0'}, served
        assert 'controller="shopservice"' not in text and 'controller="dataservice"' in text
    finally:
        proc.stop(30)
    out = proc.text()
    lines = [ln for ln in out.splitlines() if "product shop is not served" in ln]
    assert len(lines) == 1 and "shopservices.d3os-product.com.d3os is not installed" in lines[0], out
