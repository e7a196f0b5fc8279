"""Issue 4, "Done when" 2: uuc is a third party on a local HTTP server. While it is down the rollout waits
at uuc (Progressing=True, reason and message naming uuc and the failing check; an Event says the same);
once it is up the rollout continues within one probe period."""

from __future__ import annotations

import time
from typing import Any

import pytest

from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import Env, chain, events_for, figures_out, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

PROBE_PERIOD = 5.0  # d3os_core.planner.PROBE_PERIOD
SLACK = 5.0
"""Seconds a probe, a reconcile or an apply may take on a loaded machine."""


def test_rollout_waits_at_uuc_while_it_is_down(env: Env, sample: dict[str, Any]) -> None:
    env.uuc.down()
    rec = env.record()
    env.apply(sample)

    def waiting_at_uuc() -> dict[str, Any] | None:
        ds = env.ds()
        st = (ds or {}).get("status") or {}
        prog = harness.condition(ds, "Progressing")
        uuc = next((c for c in st.get("components", []) if c["name"] == "uuc"), {})
        if prog.get("status") == "True" and "failed" in uuc.get("message", ""):
            return ds
        return None

    ds = wait_for("the rollout to wait at uuc", waiting_at_uuc, 120)
    st = ds["status"]
    assert (st["phase"], st["message"]) == ("uuc已部署", chain("uuc"))
    prog = harness.condition(ds, "Progressing")
    ready = harness.condition(ds, "Ready")
    url = env.uuc.url
    for cond in (prog, ready):
        assert "uuc" in cond["message"] and url in cond["message"], cond
        assert "connection refused" in cond["message"], cond
    assert prog["reason"], prog
    assert ready["status"] == "False"
    # nothing after uuc was started
    assert env.obj("Deployment", "eureka") is None

    # an Event on the DataService says the same: uuc, the failing check and why
    def failure_event() -> list[dict[str, Any]]:
        return [
            e
            for e in events_for(env.client, env.namespace, "dataservice-sample")
            if "uuc" in e["message"] and url in e["message"] and "refused" in e["message"]
        ]

    evs = wait_for("an Event naming uuc and its failing check", failure_event, 30)
    print("\nevent:", evs[0]["type"], evs[0]["reason"], evs[0]["message"])

    # the stand-in comes up: uuc is seen within one probe period and the rollout continues
    time.sleep(1)
    up_at = time.monotonic()
    env.uuc.up()

    def eureka_applied() -> float | None:
        for r in env.operator.trace("apply"):
            if r["component"] == "eureka":
                return float(r["t"])
        return None

    t_apply = wait_for("eureka to be applied", eureka_applied, PROBE_PERIOD + 60)
    waited = t_apply - up_at
    probe_ok = next(r["t"] for r in env.operator.trace("probe") if r["ok"])
    figures_out(
        "third_party_recovery",
        {
            "probe_period_s": PROBE_PERIOD,
            "up_to_probe_ok_s": round(probe_ok - up_at, 3),
            "up_to_next_apply_s": round(waited, 3),
        },
    )
    # the next probe starts at most one period after uuc came up (its earlier failures backed off to the
    # period, never beyond); on a busy 2-core machine a probe and the plan it wakes may each take seconds
    assert probe_ok - up_at <= PROBE_PERIOD + SLACK, f"uuc was seen up {probe_ok - up_at:.2f}s after it came up"
    assert t_apply - probe_ok <= SLACK, f"eureka was applied {t_apply - probe_ok:.2f}s after uuc was seen up"
    assert t_apply > probe_ok, "nothing after uuc was applied before uuc was seen up"
    env.wait_ready()
    assert rec.phases()[-1] == ("web已部署", chain("web"))
