"""``d3os ui`` at size, measured in the distribution's Chromium on the local control plane (figures printed,
kept with ``D3OS_FIGURES_DIR``, reported in docs/benchmarks.md):

- an instance of the 200-component synthetic product (bench/synthetic.py, installed as its own kind, its status
  the core's own mid-rollout one): the page lays its graph out and renders it in under 1 s;
- 200 DataServices (suspended, so the operator writes their status and nothing else) in the overview: listed
  by watch, filtered at a keystroke, a change arriving while all 200 are shown."""

from __future__ import annotations

import copy
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_core import Facts, plan
from d3os_core.crd import crd_manifest
from d3os_core.fake import FakeCluster
from d3os_core.product import CrdNames
from d3os_operator.kube import product_kind
from d3os_operator.products import installed
from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.uibrowser")
from .standin import Env, figures_out  # noqa: E402
from .uibrowser import DESKTOP, browser, poll, screenshot, ui_server  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import synthetic  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration
__all__ = ["browser"]

N = 200
RUNS = 5
LONGTASKS = """
window.d3osLong = [];
new PerformanceObserver(l => { for (const e of l.getEntries()) window.d3osLong.push(e.duration); })
  .observe({type: 'longtask', buffered: true});
"""


def _mid_rollout(instance: dict[str, Any], product: Any, passes: int) -> dict[str, Any]:
    """The status the core writes after ``passes`` passes over a fake cluster (some layers Ready, the next
    Progressing, the rest Waiting)."""
    ds, fc = copy.deepcopy(instance), FakeCluster()
    ds["metadata"].update({"uid": "u", "generation": 1})
    for i in range(passes):
        p = plan(ds, fc.observed(), Facts(now=f"2026-01-01T00:00:{i:02d}Z", secret_seed="s"), product)
        ds["status"] = p.status
        fc.carry_out(p)
        fc.settle()
    return ds["status"]


def _without_cel(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_cel(v) for k, v in node.items() if k != "x-kubernetes-validations"}
    if isinstance(node, list):
        return [_without_cel(v) for v in node]
    return node


def test_a_200_component_graph_renders_in_under_a_second(
    k8s_cluster: Any, client: Any, k8s_namespace: str, browser: Any
) -> None:
    product = dataclasses.replace(synthetic.product(N), names=CrdNames("Synthetic", "synthetics", "synthetic"))
    # its CRD without the CEL rules: 200 components' ``files`` rules exceed the API server's CEL cost budget
    # (the page reads the spec with the core's own validation, not the CRD's)
    harness.install_one_crd(client, _without_cel(crd_manifest(product)), product_kind(product.names).res)
    instance = synthetic.dataservice(N, namespace=k8s_namespace)
    instance["kind"] = "Synthetic"
    instance["metadata"] = {"name": "synthetic", "namespace": k8s_namespace}
    k8s_cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(instance))
    status = _mid_rollout(instance, product, 6)
    k8s_cluster.kubectl("patch", "synthetic", "synthetic", "-n", k8s_namespace, "--subresource=status",
                        "--type=merge", "-p", json.dumps({"status": status}))
    with ui_server(k8s_cluster.kubeconfig, k8s_namespace, [*installed(), product]) as server:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(server.url)
        whole, in_page = [], []
        for _ in range(RUNS):
            page.goto("about:blank")
            page.goto(f"{server.origin}/#/i/Synthetic/{k8s_namespace}/synthetic")
            page.wait_for_function("() => window.d3os && window.d3os.marks['graph-painted']", timeout=10000)
            marks = page.evaluate("window.d3os")
            whole.append(marks["marks"]["graph-painted"])  # from navigation start (performance's time origin)
            in_page.append(marks["lastGraphMs"])  # the SVG into the page, laid out
        drawn = dict(page.eval_on_selector_all("#graph g.node", "gs => gs.map(g => [g.dataset.key, g.dataset.state])"))
        screenshot(page, "synthetic-200")
    assert drawn == {c["name"]: c["state"] for c in status["components"]}  # every node as the status says
    assert len(drawn) == N and {"Ready", "Progressing", "Waiting"} <= set(drawn.values())  # mid-rollout
    figures = {"components": N, "runs": RUNS,
               "navigation_to_painted_ms": {"median": round(statistics.median(whole), 1), "max": round(max(whole), 1)},
               "layout_and_render_ms": {"median": round(statistics.median(in_page), 1),
                                        "max": round(max(in_page), 1)}}
    figures_out("ui_graph_200_components", figures)
    assert statistics.median(whole) < 1000, figures


def test_200_instances_in_the_overview_stay_responsive(env: Env, sample: dict[str, Any], browser: Any) -> None:
    docs = []
    for i in range(N):
        d = copy.deepcopy(sample)
        d["metadata"] = {"name": f"sample-{i:03d}", "namespace": env.namespace}
        d["spec"]["suspend"] = True
        docs.append(d)
    env.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    kind = product_kind(next(p for p in installed() if p.names.kind == "DataService").names)

    def with_status() -> int:
        return sum(1 for o in env.client.list(kind.res, namespace=env.namespace) if (o.get("status") or {}).get("phase")
                   is not None or (o.get("status") or {}).get("conditions"))
    poll("the operator's status on all 200", lambda: with_status() == N, 300, interval=2)
    with ui_server(env.cluster.kubeconfig, env.namespace) as server:
        page = browser.new_page(viewport=DESKTOP)
        page.add_init_script(LONGTASKS)
        page.goto(server.url)  # the overview
        page.wait_for_function(f"() => window.d3os && window.d3os.rendered >= {N}", timeout=30000)
        listed = page.evaluate("performance.now()")
        long_tasks = page.evaluate("window.d3osLong")
        assert page.inner_text("#count") == f"{N} of {N} instances"
        assert set(page.eval_on_selector_all("#instances tbody tr", "trs => trs.map(t => t.dataset.state)")) == {
            "Suspended"}
        # a keystroke in the filter: time from the input to the next frame with the table filtered
        filtering = []
        for text in ("sample-1", "sample-19", "sample-199", "", "sample-0", ""):
            filtering.append(page.evaluate("""(text) => new Promise(done => {
                const t0 = performance.now(); const f = document.getElementById('f-text');
                f.value = text; f.dispatchEvent(new Event('input'));
                requestAnimationFrame(() => done(performance.now() - t0)); })""", text))
        assert page.inner_text("#count") == f"{N} of {N} instances"
        page.fill("#f-text", "sample-19")
        assert page.inner_text("#count") == f"10 of {N} instances"  # sample-190 .. sample-199
        page.fill("#f-text", "")
        page.select_option("#f-state", "Suspended")
        assert page.inner_text("#count") == f"{N} of {N} instances"
        page.select_option("#f-state", "Ready")
        assert page.inner_text("#count") == f"0 of {N} instances"
        page.select_option("#f-state", "")
        # a change while all 200 are shown: the API server's write to the row on the page
        lags = []
        for i in range(5):
            name = f"sample-{i:03d}"
            before = page.evaluate("window.d3os.marks['overview-rows']")
            t0 = time.time()
            env.cluster.kubectl("label", "dataservice", name, "-n", env.namespace, f"ui-bench=run{i}")
            page.wait_for_function(f"() => window.d3os.marks['overview-rows'] > {before}", timeout=10000)
            lags.append((page.evaluate("performance.timeOrigin + window.d3os.marks['overview-rows']") / 1000 - t0)
                        * 1000)
        screenshot(page, "overview-200")
    figures = {"instances": N, "navigation_to_listed_ms": round(listed, 1),
               "long_tasks_while_listing": {"count": len(long_tasks), "max_ms": round(max(long_tasks, default=0), 1)},
               "filter_keystroke_to_frame_ms": {"median": round(statistics.median(filtering), 1),
                                                "max": round(max(filtering), 1)},
               "change_to_page_ms_incl_kubectl": {"median": round(statistics.median(lags), 1),
                                                  "max": round(max(lags), 1)}}
    figures_out("ui_overview_200_instances", figures)
    assert statistics.median(filtering) < 100, figures  # a keystroke answered within a frame or few
    assert max(lags) < 2000, figures
