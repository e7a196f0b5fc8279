"""The ordered rollout: the seed's PHASE/MESSAGE sequence, gating, and steady state."""

from __future__ import annotations

import copy

import pytest

from d3os_core import Facts, Observed, plan
from d3os_core.fake import FakeCluster

from .. import seed_transcript as seed
from .helpers import DATASERVICE, ORDER, Driver, applied_components, condition, sample


def test_the_seed_transcript_lists_our_order() -> None:
    assert len(seed.phases()) == 12 and list(seed.chain()) == ORDER


def test_full_rollout_reproduces_the_seed_sequence() -> None:
    d = Driver(sample())
    seen: list[tuple[str, str]] = []
    while True:
        p = d.step()
        seen.append((p.status["phase"], p.status["message"]))
        if d.ready and not p.apply:
            break
        assert len(seen) < 30
    expected = seed.phases()  # the seed's literal kubectl lines
    dedup = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    assert dedup == expected
    assert condition(d.ds, "Ready")["reason"] == "AllComponentsReady"
    assert condition(d.ds, "Progressing")["status"] == "False"
    assert condition(d.ds, "Degraded")["status"] == "False"
    assert d.ds["status"]["ready"] == "12/12"


def test_each_pass_applies_exactly_the_next_component() -> None:
    d = Driver(sample())
    applied = [applied_components(d.step()) for _ in range(len(ORDER) + 1)]
    # mysql twice: its credentials Secret comes first, then is tied to the claim once the claim exists
    assert applied == [{"mysql"}, *({k} for k in ORDER)]


def test_first_pass_asks_for_the_finalizer() -> None:
    ds = sample(finalizers=[])
    p = plan(ds, Observed(), Facts(), DATASERVICE)
    assert p.finalizer == "add"


@pytest.mark.parametrize("stuck", ["mysql", "eureka", "auth", "gateway-web"])
def test_an_unready_component_blocks_everything_after_it(stuck: str) -> None:
    d = Driver(sample())
    for _ in range(40):
        names = [n for (kind, n) in d.fc.objects if kind in ("Deployment", "StatefulSet")]
        stuck_name = d.ds["spec"][stuck]["name"]
        d.step(settle=[n for n in names if n != stuck_name])
    after = ORDER[ORDER.index(stuck) + 1:]
    created = {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in d.fc.objects.values()}
    assert stuck in created
    assert not created & set(after)
    assert d.component(stuck)["state"] == "Progressing"
    assert all(d.component(k)["state"] == "Waiting" for k in after)
    assert (d.ds["status"]["phase"], d.ds["status"]["message"]) == seed.step(stuck)
    assert condition(d.ds, "Progressing")["status"] == "True"
    assert stuck in condition(d.ds, "Progressing")["message"]


def test_steady_state_writes_nothing_and_emits_nothing() -> None:
    d = Driver(sample())
    d.converge()
    for _ in range(3):
        p = d.step()
        assert p.apply == () and p.delete == () and p.events == ()
        assert p.requeue_after is None
        assert p.finalizer is None


def test_third_party_down_waits_at_uuc_and_resumes() -> None:
    fc = FakeCluster(third_party_up=False)
    d = Driver(sample(), fc)
    for _ in range(6):
        d.step()
    assert d.component("uuc")["state"] == "Progressing"
    assert "id.cosmoplat.com" in d.component("uuc")["message"]
    assert (d.ds["status"]["phase"], d.ds["status"]["message"]) == seed.step("uuc")
    prog = condition(d.ds, "Progressing")
    assert prog["status"] == "True" and "uuc" in prog["message"]
    assert not any(k == "Deployment" for k, _ in fc.objects)
    fc.third_party_up = True
    d.step()  # the probe result arrives
    p = d.step()
    assert applied_components(p) == {"eureka"}


def test_status_is_observation_not_hope() -> None:
    d = Driver(sample())
    d.step(settle=False)
    assert d.component("mysql")["state"] == "Progressing"
    assert not d.component("mysql")["ready"]
    assert d.ds["status"]["ready"] == "0/12"


def test_condition_transition_time_moves_only_on_change() -> None:
    d = Driver(sample())
    d.step(settle=False)
    t0 = condition(d.ds, "Degraded")["lastTransitionTime"]
    d.step(settle=False)
    assert condition(d.ds, "Degraded")["lastTransitionTime"] == t0
    assert all(c["observedGeneration"] == 1 for c in d.ds["status"]["conditions"])


def test_events_tell_the_story_once() -> None:
    d = Driver(sample())
    d.converge()
    reasons = [e.reason for p in d.plans for e in p.events]
    assert reasons.count("Ready") == 1
    assert reasons.count("Deploying") == 12
    # what status already shows is not told again: no Waiting, and a component's readiness is told by
    # the Event that follows it in the same pass (the next step's Deploying, the DataService's Ready)
    assert "Waiting" not in reasons and "ComponentReady" not in reasons, reasons


def test_each_step_event_says_its_predecessor_is_ready_and_ready_names_the_last() -> None:
    d = Driver(sample())
    d.step(settle=False)
    for _ in range(40):
        d.fc.settle()
        d.step(settle=False)
        if d.ready:
            break
    events = [e for p in d.plans for e in p.events]
    deploying = [e.message for e in events if e.reason == "Deploying"]
    assert [m.split("已部署")[0] for m in deploying] == ORDER
    assert "is ready" not in deploying[0]
    for before, message in zip(ORDER, deploying[1:], strict=False):
        assert f"; {before} is ready: " in message, message
    ready = next(e for e in events if e.reason == "Ready")
    assert ready.message.startswith("all 12 components are ready; web is ready: "), ready.message


def test_a_third_party_failing_its_check_is_a_warning_and_its_recovery_is_news() -> None:
    fc = FakeCluster(third_party_up=False)
    d = Driver(sample(), fc)
    for _ in range(8):
        d.step()
    uuc = d.component("uuc")
    assert (uuc["state"], uuc["reason"]) == ("Progressing", "CheckFailed"), uuc
    warnings = [e for p in d.plans for e in p.events if e.type == "Warning"]
    assert [(e.reason, e.message) for e in warnings] == [("CheckFailed", f"uuc: {uuc['message']}")], (
        "told once, when it starts failing; a check failing the same way again is no news")
    assert "refused" in warnings[0].message and "id.cosmoplat.com" in warnings[0].message
    # a status that had it waiting still (written before a restart): the step and its failing check, both told
    stale = copy.deepcopy(d.ds)
    next(c for c in stale["status"]["components"] if c["name"] == "uuc").update(state="Waiting", message="w")
    p = plan(stale, fc.observed(), Facts(now="2026-01-01T00:01:00Z", secret_seed="seed"), DATASERVICE)
    assert [(e.type, e.reason) for e in p.events] == [("Normal", "Deploying"), ("Warning", "CheckFailed")]
    fc.third_party_up = True
    d.step()  # the probe result arrives
    p = d.step()
    assert "reason" not in d.component("uuc")
    assert [e.reason for e in p.events] == ["ComponentReady", "Deploying"], "a recovery is told on its own"
    assert p.events[0].message.startswith("uuc is ready: ")
    assert "uuc is ready" not in p.events[1].message


def test_a_component_ready_with_no_step_after_it_is_told_on_its_own() -> None:
    fc = FakeCluster()
    fc.objects[("ConfigMap", "web")] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "web", "namespace": "default", "uid": "foreign-web"}}
    d = Driver(sample(), fc)
    for _ in range(20):
        d.step()
    assert d.component("web")["state"] == "Conflict" and d.component("proxy")["state"] == "Ready"
    reasons = [(e.reason, e.message.split(" ")[0]) for p in d.plans for e in p.events]
    assert ("ComponentReady", "proxy") in reasons, "no Deploying follows proxy: its readiness has an Event"
    assert [r for r, _ in reasons].count("ComponentReady") == 1


def test_a_component_recovering_from_its_deadline_is_news() -> None:
    d = Driver(sample())
    for _ in range(5):
        d.step()
    d.fc.fail("api-manager")
    d.step(settle=False)
    assert d.component("api-manager")["state"] == "Failed"
    d.fc.settle()
    p = d.step(settle=False)
    assert [e.reason for e in p.events] == ["ComponentReady", "Deploying"], p.events
    assert p.events[0].message.startswith("api-manager is ready: ")
