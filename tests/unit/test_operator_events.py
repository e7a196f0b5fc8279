"""Events aggregated per series as client-go's correlator does (a fake Kube records the requests; the
clock is injected, nothing waits)."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from d3os_core.types import Event
from d3os_operator import events
from d3os_operator.events import COMBINED, EventRecorder

PARENT = {"metadata": {"name": "ds", "namespace": "ns", "uid": "u1", "resourceVersion": "7"}}
OTHER = {"metadata": {"name": "ds2", "namespace": "ns", "uid": "u2", "resourceVersion": "9"}}


class FakeKube:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.expired: set[str] = set()

    async def create_event(self, parent: Any, event: Event, *, count: int, first: str, last: str) -> str:
        name = f"ev{len([c for c in self.calls if c[0] == 'create']) + 1}"
        self.calls.append(("create", parent["metadata"]["name"], event.reason, event.message, count))
        return name

    async def update_event(self, namespace: str, name: str, *, count: int, last: str, message: str) -> None:
        if name in self.expired:
            raise ApiError(status=Status(code=404, message="not found", reason="NotFound"))
        self.calls.append(("patch", name, message, count))


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _recorder() -> tuple[EventRecorder, FakeKube, Clock]:
    kube, clock = FakeKube(), Clock()
    rec = EventRecorder(kube, first_interval=30.0, max_interval=30.0, normal_interval=30.0, clock=clock)  # type: ignore[arg-type]
    return rec, kube, clock


@pytest.mark.anyio
async def test_repeats_of_a_normal_reason_become_one_event_patched_at_most_once_per_interval() -> None:
    rec, kube, clock = _recorder()
    for comp in ("mysql", "uuc", "eureka"):
        await rec.occurred(PARENT, Event("Normal", "Deploying", f"{comp} deployed"), "2026-01-01T00:00:00Z")
        clock.t += 5
    assert kube.calls == [("create", "ds", "Deploying", "mysql deployed", 1)], "repeats wait for the interval"
    await rec.flush_due()
    assert len(kube.calls) == 1 and rec.pending == 1
    clock.t += 20  # 30 s after the create
    await rec.flush_due()
    assert kube.calls[1] == ("patch", "ev1", COMBINED + "eureka deployed", 3)
    assert rec.pending == 0 and rec.aggregated == 2
    await rec.flush_due()
    assert len(kube.calls) == 2, "nothing new: nothing sent"


@pytest.mark.anyio
async def test_series_are_per_dataservice_and_reason_and_warnings_per_message() -> None:
    rec, kube, clock = _recorder()
    stamp = "2026-01-01T00:00:00Z"
    await rec.occurred(PARENT, Event("Normal", "Deploying", "a"), stamp)
    await rec.occurred(PARENT, Event("Normal", "ComponentReady", "a"), stamp)
    await rec.occurred(OTHER, Event("Normal", "Deploying", "a"), stamp)
    await rec.occurred(PARENT, Event("Warning", "RequestRefused", "port 30180 taken"), stamp)
    await rec.occurred(PARENT, Event("Warning", "RequestRefused", "forbidden"), stamp)
    assert [c[0] for c in kube.calls] == ["create"] * 5
    await rec.occurred(PARENT, Event("Warning", "RequestRefused", "port 30180 taken"), stamp)
    clock.t += 30
    await rec.flush_due()
    assert kube.calls[5:] == [("patch", "ev4", "port 30180 taken", 2)], "the same warning again: counted, not combined"


@pytest.mark.anyio
async def test_an_expired_event_is_created_again_with_its_count() -> None:
    rec, kube, clock = _recorder()
    stamp = "2026-01-01T00:00:00Z"
    await rec.occurred(PARENT, Event("Normal", "Deploying", "d"), stamp)
    kube.expired.add("ev1")
    await rec.occurred(PARENT, Event("Normal", "Deploying", "d"), stamp)
    clock.t += 31
    await rec.flush_due()
    assert kube.calls[-1] == ("create", "ds", "Deploying", "d", 2)
    assert rec.failed == 0


@pytest.mark.anyio
async def test_a_dataservice_at_rest_gets_its_counts_written_at_once() -> None:
    rec, kube, clock = _recorder()
    stamp = "2026-01-01T00:00:00Z"
    for parent in (PARENT, OTHER):
        await rec.occurred(parent, Event("Normal", "ComponentReady", "mysql is ready"), stamp)
        await rec.occurred(parent, Event("Normal", "ComponentReady", "web is ready"), stamp)
    clock.t += 1
    await rec.flush_due(PARENT)
    assert kube.calls[2:] == [("patch", "ev1", COMBINED + "web is ready", 2)], "only the DataService at rest"


@pytest.mark.anyio
async def test_a_warnings_interval_doubles_within_a_burst_and_starts_again_after_a_quiet_spell() -> None:
    kube, clock = FakeKube(), Clock()
    rec = EventRecorder(kube, first_interval=5.0, max_interval=20.0, clock=clock)  # type: ignore[arg-type]
    writes: list[float] = []
    for _ in range(40):  # one repeat a second
        await rec.occurred(PARENT, Event("Warning", "RequestRefused", "x"), "2026-01-01T00:00:00Z")
        await rec.flush_due()
        if len(kube.calls) > len(writes):
            writes.append(clock.t - 1000)
        clock.t += 1
    assert writes == [0, 5, 15, 35], "5 s, then 10, then 20 (the cap)"
    clock.t += 25  # quiet for longer than the cap: a new burst is written at once, then after 5 s
    await rec.occurred(PARENT, Event("Warning", "RequestRefused", "x"), "2026-01-01T00:01:00Z")
    assert kube.calls[-1][0] == "patch" and kube.calls[-1][3] == 41
    assert rec._series[next(iter(rec._series))].interval == 10.0


def _rollout_recorder() -> tuple[EventRecorder, FakeKube, Clock]:
    kube, clock = FakeKube(), Clock()
    rec = EventRecorder(kube, first_interval=5.0, max_interval=60.0, normal_interval=300.0, clock=clock)  # type: ignore[arg-type]
    return rec, kube, clock


async def _step(rec: EventRecorder, clock: Clock, parent: dict[str, Any], event: Event, seconds: float) -> None:
    """An occurrence, then ``seconds`` pass with the recorder's loop writing what falls due."""
    await rec.occurred(parent, event, "2026-01-01T00:00:00Z")
    for _ in range(int(seconds)):
        clock.t += 1
        await rec.flush_due()


@pytest.mark.anyio
async def test_a_busy_rollout_costs_one_create_per_reason_and_one_patch_per_reason_at_rest() -> None:
    rec, kube, clock = _rollout_recorder()
    for comp in ("mysql", "redis", "uuc", "eureka", "gateway", "web"):  # a step every 4 s
        await _step(rec, clock, PARENT, Event("Normal", "Deploying", f"{comp} deployed"), 2)
        await _step(rec, clock, PARENT, Event("Normal", "ComponentReady", f"{comp} is ready"), 2)
    assert [c[0] for c in kube.calls] == ["create", "create"], "firsts at once, repeats folded"
    await rec.occurred(PARENT, Event("Warning", "ComponentFailed", "web failed: boom"), "2026-01-01T00:00:00Z")
    assert kube.calls[2:] == [("patch", "ev1", COMBINED + "web deployed", 6),
                              ("patch", "ev2", COMBINED + "web is ready", 6),
                              ("create", "ds", "ComponentFailed", "web failed: boom", 1)], (
        "a warning is told at once, right after the story so far (describe shows the step it is about)")
    await rec.flush_due(PARENT)  # the reconciler's settle: complete or stalled
    clock.t += 100
    await rec.flush_due()
    assert len(kube.calls) == 5 and rec.pending == 0, "at rest: nothing more"


@pytest.mark.anyio
async def test_a_long_rollout_writes_its_normal_repeats_once_when_it_comes_to_rest() -> None:
    """200 DataServices at once on a small machine: each step takes ~22 s, the rollout ~270 s."""
    rec, kube, clock = _rollout_recorder()
    for comp in ("mysql", "uuc", "eureka", "api-manager", "auth", "ds-adapter", "es-adapter", "trd-adapter",
                 "gateway-master", "gateway-web", "proxy", "web"):
        await _step(rec, clock, PARENT, Event("Normal", "Deploying", f"{comp} deployed"), 22)
        await _step(rec, clock, OTHER, Event("Normal", "Deploying", f"{comp} deployed"), 0)
    assert [c[0] for c in kube.calls] == ["create", "create"], "nothing but the firsts while the rollouts go on"
    await _step(rec, clock, PARENT, Event("Normal", "Ready", "all 12 components are ready"), 0)
    await rec.flush_due(PARENT)  # the reconciler's settle: complete
    assert kube.calls[2:] == [("create", "ds", "Ready", "all 12 components are ready", 1),
                              ("patch", "ev1", COMBINED + "web deployed", 12)], "the story at rest, exact"
    clock.t += 10
    await rec.flush_due()
    assert len(kube.calls) == 4, "the other one is still rolling out: its repeats wait"


@pytest.mark.anyio
async def test_a_warning_in_a_long_rollout_is_told_at_once_and_its_repeats_at_its_interval() -> None:
    rec, kube, clock = _rollout_recorder()
    await _step(rec, clock, PARENT, Event("Normal", "Deploying", "mysql deployed"), 1)
    await _step(rec, clock, PARENT, Event("Normal", "Deploying", "uuc deployed"), 1)
    for _ in range(3):  # the same failure every 10 s
        await _step(rec, clock, PARENT, Event("Warning", "CheckFailed", "uuc: refused"), 10)
    assert [(c[0], c[2], c[-1]) for c in kube.calls] == [
        ("create", "Deploying", 1), ("patch", COMBINED + "uuc deployed", 2), ("create", "CheckFailed", 1),
        ("patch", "uuc: refused", 2), ("patch", "uuc: refused", 3)], (
        "the step it is about, then the warning at once, then its repeats 5 s and 10 s later")
    await _step(rec, clock, PARENT, Event("Warning", "CheckFailed", "uuc: refused"), 20)
    assert kube.calls[-1][-1] == 4 and len(kube.calls) == 6, "no Normal news since: only the warning is written"


@pytest.mark.anyio
async def test_a_rollout_that_never_comes_to_rest_is_written_a_normal_interval_apart() -> None:
    rec, kube, clock = _rollout_recorder()
    for _ in range(350):  # an occurrence every 2 s for 700 s, never at rest
        await _step(rec, clock, PARENT, Event("Normal", "Deploying", "x"), 2)
    assert [(c[0], c[-1]) for c in kube.calls] == [("create", 1), ("patch", 150), ("patch", 300)], (
        "created at once, then every 300 s (150 occurrences each)")


@pytest.mark.anyio
async def test_the_first_repeat_after_the_dataservice_was_at_rest_is_told_at_once() -> None:
    rec, kube, clock = _rollout_recorder()
    await _step(rec, clock, PARENT, Event("Normal", "Deploying", "x"), 2)
    await _step(rec, clock, PARENT, Event("Normal", "Deploying", "y"), 2)
    await rec.flush_due(PARENT)  # at rest: its count written
    assert [(c[0], c[-1]) for c in kube.calls] == [("create", 1), ("patch", 2)]
    clock.t += 5  # seconds later, a new rollout (an upgrade, a repair): its first step is told at once
    await _step(rec, clock, PARENT, Event("Normal", "Deploying", "z"), 0)
    assert kube.calls[-1] == ("patch", "ev1", COMBINED + "z", 3)
    await _step(rec, clock, PARENT, Event("Normal", "Deploying", "w"), 30)
    assert len(kube.calls) == 3, "then folded again until it comes to rest"
    await rec.flush_due(PARENT)
    assert kube.calls[-1] == ("patch", "ev1", COMBINED + "w", 4)


@pytest.mark.anyio
async def test_a_flush_looks_only_at_series_with_unwritten_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    """With thousands of series remembered (hundreds of DataServices, a few reasons each), an occurrence's
    flush must not walk them all: the recorder runs one after every occurrence."""
    rec, kube, _ = _recorder()
    parents = [{"metadata": {"name": f"ds{i}", "namespace": f"ns{i}", "uid": f"u{i}"}} for i in range(1500)]
    for p in parents:
        for reason in ("Deploying", "Ready"):
            await rec.occurred(p, Event("Normal", reason, "x"), "2026-01-01T00:00:00Z")
    await rec.occurred(parents[7], Event("Normal", "Deploying", "y"), "2026-01-01T00:00:01Z")  # one repeat
    looked: list[object] = []
    monkeypatch.setattr(events.Series, "dirty", property(lambda s: looked.append(s) or s.count != s.sent_count))
    await rec.flush_due()
    assert len(looked) <= 2, f"a flush looked at {len(looked)} series, one has something to write"
    before = len(kube.calls)
    await rec.flush_due(parents[7])  # at rest: its repeat is written at once, nobody else's
    assert kube.calls[before:] == [("patch", "ev15", COMBINED + "y", 2)] and rec.pending == 0
