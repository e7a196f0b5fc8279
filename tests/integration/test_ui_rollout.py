"""``d3os ui`` in a real browser (the distribution's Chromium) while the operator rolls the seed's sample out on
the local control plane: the nodes turn Ready in the chain's order, the page's PHASE/MESSAGE are
``kubectl get``'s at every step (``kubectl get -w`` prints each version the page drew), each change shows
within a second of the API server's, and everything is Ready at the end. Works at 1280x800 and phone width."""

from __future__ import annotations

import statistics
import subprocess
import time
from typing import Any

import pytest

from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.uibrowser")
from .standin import CHAIN, Env, figures_out  # noqa: E402
from .uibrowser import DESKTOP, PHONE, RECORDER, browser, open_instance, poll, screenshot, ui_server  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration
__all__ = ["browser"]

READY_FILL = "#bbf7d0"


def _kubectl_watch(env: Env) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(env.cluster.bin_dir / "kubectl"), "--kubeconfig", str(env.cluster.kubeconfig), "get", "dataservice",
         "-n", env.namespace, "--field-selector", "metadata.name=dataservice-sample", "-w"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _columns(lines: list[str]) -> list[tuple[str, str]]:
    """(PHASE, MESSAGE) of each line kubectl printed (its columns: NAME STATUS PHASE MESSAGE READY AGE; STATUS,
    PHASE and MESSAGE are blank before the first status, then never contain blanks)."""
    out = []
    for line in lines:
        fields = line.split()
        if not fields or fields[0] == "NAME":
            continue
        out.append((fields[2], fields[3]) if len(fields) == 6 else ("", ""))
    return out


def _distinct(seq: list[Any]) -> list[Any]:
    return [x for i, x in enumerate(seq) if i == 0 or x != seq[i - 1]]


def test_the_sample_rolling_out_in_the_browser(env: Env, sample: dict[str, Any], browser: Any) -> None:
    ns = env.namespace
    arrivals: list[tuple[float, dict[str, Any]]] = []  # the API server's statuses, with the (wall) time each arrived
    rec = harness.StatusRecorder(env.cluster.kubeconfig, ns, "dataservice-sample",
                                 on_change=lambda c: arrivals.append((time.time(), c["status"]))).start()
    env.recorders.append(rec)
    with ui_server(env.cluster.kubeconfig, ns) as server:
        page = browser.new_page(viewport=DESKTOP)
        open_instance(page, server, "DataService", ns, "dataservice-sample")
        page.evaluate(RECORDER)
        kubectl = _kubectl_watch(env)
        try:
            time.sleep(1.0)  # kubectl's watch is established (it prints nothing before the object exists)
            env.apply(sample)
            shot = False

            def at_uuc_or_later() -> bool:
                return page.eval_on_selector("#node-uuc", "g => g.dataset.state") in ("Progressing", "Ready")
            poll("uuc's step on the page", lambda: page.query_selector("#node-uuc") and at_uuc_or_later(), 120)
            if page.eval_on_selector("#node-eureka", "g => g.dataset.state") != "Ready":
                screenshot(page, "rollout", full_page=False)
                shot = True
            env.wait_ready(timeout=240)
            poll("every node Ready on the page", lambda: set(page.eval_on_selector_all(
                "#graph g.node", "gs => gs.map(g => g.dataset.state)")) == {"Ready"}, 10)
            time.sleep(1.5)  # kubectl's last lines
        finally:
            kubectl.terminate()
            printed, _ = kubectl.communicate(timeout=10)
        seen = page.evaluate("window.d3osSeen")
        final = seen[-1]
        assert [n["key"] for n in final["nodes"]] == list(CHAIN)
        assert all(n["state"] == "Ready" and n["fill"] == READY_FILL and "Ready" in n["text"] for n in final["nodes"])
        kubectl_cols = _distinct(_columns(printed.splitlines()))
        page_cols = _distinct([(s["phase"], s["message"]) for s in seen])
        assert page_cols[-1] == kubectl_cols[-1] == ("web已部署", "mysql->uuc->eureka->api-manager->auth->ds-adapter->"
                                                     "es-adapter->trd-adapter->gateway-master->gateway-web->proxy->[web]")
        assert [c for c in page_cols if c != ("", "")] == [c for c in kubectl_cols if c != ("", "")]
        assert len(page_cols) >= len(CHAIN)

        # colours change in chain order: each node's first Progressing, and first Ready, follow the chain
        def first(state: str) -> list[str]:
            order: list[str] = []
            for s in seen:
                for n in s["nodes"]:
                    if n["state"] == state and n["key"] not in order:
                        order.append(n["key"])
            return order
        assert first("Ready") == list(CHAIN)
        went = [k for k in first("Progressing") if k in CHAIN]
        assert went == [k for k in CHAIN if k in went] and len(went) >= len(CHAIN) - 2
        # the marked step is the one MESSAGE brackets
        for s in seen:
            marked = {n["key"] for n in s["nodes"] if n["current"]}
            bracketed = {w.strip("[]") for w in s["message"].split("->") if w.startswith("[")}
            if not all(n["state"] == "Ready" for n in s["nodes"]):
                assert marked == bracketed, s

        # a step turning Ready shows within a second: the API server's version (as a watch received it) to the
        # page's DOM, per component turning Ready
        api_ready: dict[str, float] = {}
        for t, status in arrivals:
            for c in status.get("components", []):
                if c.get("state") == "Ready":
                    api_ready.setdefault(c["name"], t)
        page_ready: dict[str, float] = {}
        for s in seen:
            for n in s["nodes"]:
                if n["state"] == "Ready":
                    page_ready.setdefault(n["key"], s["t"] / 1000)
        lags = [(page_ready[k] - api_ready[k]) * 1000 for k in CHAIN if k in api_ready and k in page_ready]
        figures_out("ui_step_to_page_ms", {"n": len(lags), "median_ms": round(statistics.median(lags), 1),
                                           "max_ms": round(max(lags), 1)})
        assert len(lags) == len(CHAIN) and max(lags) < 1000, lags
        if not shot:
            screenshot(page, "rollout")
        screenshot(page, "ready", full_page=True)

        # phone width: the same page, nothing cut off horizontally but the scrollable graph and tables
        phone = browser.new_page(viewport=PHONE)
        open_instance(phone, server, "DataService", ns, "dataservice-sample")
        phone.wait_for_selector("#graph g.node")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
        assert phone.inner_text("#i-phase") == final["phase"]
        screenshot(phone, "phone")
        # keyboard: Tab reaches the graph's nodes; Enter shows one's details
        page.focus("#node-mysql")
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.dataset.key") == "uuc"
        page.keyboard.press("Enter")
        assert "uuc" in page.inner_text("#node-detail") and "waits for: mysql" in page.inner_text("#node-detail")
        page.goto(f"{server.origin}/#/")
        page.wait_for_selector("#instances tbody tr")
        row = page.inner_text("#instances tbody tr")
        assert "dataservice-sample" in row and "web已部署" in row and "12/12" in row
        screenshot(page, "overview")
    assert harness.is_ready(env.ds())
