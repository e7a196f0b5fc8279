"""``d3os ui`` in the distribution's Chromium, the operator running on the local control plane: a failing
third-party check (its node Failed with the check's message once the progress deadline passed, the instance's
Degraded condition shown as the API server holds it), and mysql's kind switched 1 -> 3 -> 1 drawn as it
happens (the node's kind follows what the operator reports, version by version)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.uibrowser",
                               "tests.integration.kindswitch")
from .kindswitch import set_kind  # noqa: E402
from .standin import Env, StandIn  # noqa: E402
from .uibrowser import DESKTOP, RECORDER, browser, open_instance, poll, screenshot, ui_server  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration
__all__ = ["browser"]


def _component(ds: dict[str, Any] | None, key: str) -> dict[str, Any]:
    return next((c for c in ((ds or {}).get("status") or {}).get("components", []) if c["name"] == key), {})


def _node(page: Any, key: str) -> dict[str, str]:
    return page.eval_on_selector(f"#node-{key}", "g => ({state: g.dataset.state, label: g.getAttribute('aria-label'),"
                                                 " kind: g.dataset.kind})")


def test_a_failing_third_party_check_then_its_deadline(env: Env, sample: dict[str, Any], browser: Any) -> None:
    env.uuc.down()
    spec = copy.deepcopy(sample)
    spec["spec"]["progressDeadlineSeconds"] = 10
    with ui_server(env.cluster.kubeconfig, env.namespace) as server:
        page = browser.new_page(viewport=DESKTOP)
        open_instance(page, server, "DataService", env.namespace, "dataservice-sample")
        env.apply(spec)

        def failing() -> dict[str, str] | None:
            node = page.query_selector("#node-uuc") and _node(page, "uuc")
            return node if node and node["state"] == "Progressing" and "failed" in node["label"] else None
        node = poll("uuc's check failing on the page", failing, 120)
        assert env.uuc.url in node["label"] and "refused" in node["label"], node
        assert "uuc" in page.inner_text("#i-blocker") and "failed" in page.inner_text("#i-blocker")
        screenshot(page, "check-failing")

        node = poll("uuc Failed on the page", lambda: (n := _node(page, "uuc"))["state"] == "Failed" and n, 60)
        ds = env.ds()
        api = _component(ds, "uuc")
        assert api["state"] == "Failed" and api["message"] in node["label"], (api, node)
        assert env.uuc.url in api["message"]  # the check's own message
        degraded = harness.condition(ds, "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", "ProgressDeadlineExceeded")
        poll("the Degraded condition on the page", lambda: any(
            r[:3] == ["Degraded", "True", "ProgressDeadlineExceeded"] and r[4] == degraded["message"]
            for r in page.eval_on_selector_all("#conditions tbody tr",
                                               "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")), 10)
        assert page.inner_text("#i-phase") == ds["status"]["phase"]
        assert page.inner_text("#i-message") == ds["status"]["message"]
        assert "Failed" in page.inner_text("#i-blocker")
        poll("the Warning Event on the page", lambda: "uuc" in page.inner_text("#events tbody"), 20)
        screenshot(page, "failed", full_page=True)
        # the overview says so too
        page.goto(f"{server.origin}/#/")
        poll("the overview row Degraded", lambda: page.query_selector(
            'tr[data-key$="/dataservice-sample"][data-state="Degraded"]'), 10)
        env.uuc.up()


def test_mysql_kind_switch_1_3_1_drawn_as_it_happens(env: Env, sample: dict[str, Any], browser: Any) -> None:
    env.apply(sample)
    env.wait_ready()
    statuses: list[str] = []
    rec = harness.StatusRecorder(env.cluster.kubeconfig, env.namespace, "dataservice-sample", on_change=lambda c: (
        statuses.append(_component({"status": c["status"]}, "mysql").get("kind", "")))).start()
    env.recorders.append(rec)
    with ui_server(env.cluster.kubeconfig, env.namespace) as server, StandIn(path="/") as mysql_tp:
        page = browser.new_page(viewport=DESKTOP)
        open_instance(page, server, "DataService", env.namespace, "dataservice-sample")
        page.wait_for_selector("#node-mysql")
        page.evaluate(RECORDER)
        third = set_kind(sample, "mysql", 3, mysql_tp)
        env.apply(third)
        poll("mysql drawn as a third party", lambda: _node(page, "mysql")["kind"] == "ThirdParty", 60)
        screenshot(page, "kindswitch")
        env.wait_ready(generation=2)
        env.apply(sample)
        env.wait_ready(generation=3)
        poll("mysql drawn as a StatefulSet, all Ready", lambda: _node(page, "mysql")["kind"] == "StatefulSet" and set(
            page.eval_on_selector_all("#graph g.node", "gs => gs.map(g => g.dataset.state)")) == {"Ready"}, 20)
        time.sleep(0.5)
        seen = page.evaluate("window.d3osSeen")
    drawn = [next(n for n in s["nodes"] if n["key"] == "mysql") for s in seen]
    kinds = [n["kind"] for i, n in enumerate(drawn) if i == 0 or n["kind"] != drawn[i - 1]["kind"]]
    assert kinds == ["StatefulSet", "ThirdParty", "StatefulSet"]
    reported = [k for i, k in enumerate(statuses) if k and (i == 0 or k != statuses[i - 1])]
    assert kinds == [k for i, k in enumerate(reported) if i == 0 or k != reported[i - 1]]
    # each form went through a step of its own on the page before Ready
    assert any(n["kind"] == "ThirdParty" and n["state"] == "Progressing" for n in drawn) or any(
        n["kind"] == "ThirdParty" and n["state"] == "Ready" for n in drawn)
    assert any(n["kind"] == "StatefulSet" and n["state"] != "Ready" for n in drawn[len(drawn) // 2:])
