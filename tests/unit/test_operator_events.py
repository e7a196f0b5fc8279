"""Events aggregated per series as client-go's correlator does (a fake Kube records the requests; the
clock is injected, nothing waits)."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from d3os_core.types import Event
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
    return EventRecorder(kube, first_interval=30.0, max_interval=30.0, clock=clock), kube, clock  # type: ignore[arg-type]


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
    await rec.occurred(PARENT, Event("Normal", "Waiting", "w"), stamp)
    kube.expired.add("ev1")
    clock.t += 31
    await rec.occurred(PARENT, Event("Normal", "Waiting", "w"), stamp)
    assert kube.calls[-1] == ("create", "ds", "Waiting", "w", 2)
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
    rec = EventRecorder(kube, first_interval=5.0, max_interval=60.0, lull=10.0, clock=clock)  # type: ignore[arg-type]
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
    for comp in ("mysql", "redis", "uuc", "eureka", "gateway", "web"):  # a step every 4 s: never a lull
        await _step(rec, clock, PARENT, Event("Normal", "Deploying", f"{comp} deployed"), 2)
        await _step(rec, clock, PARENT, Event("Normal", "ComponentReady", f"{comp} is ready"), 2)
    assert [c[0] for c in kube.calls] == ["create", "create"], "firsts at once, repeats folded"
    await rec.occurred(PARENT, Event("Warning", "ComponentFailed", "web failed: boom"), "2026-01-01T00:00:00Z")
    assert kube.calls[-1][:3] == ("create", "ds", "ComponentFailed"), "a warning is told at once"
    await rec.flush_due(PARENT)  # the reconciler's settle: complete or stalled
    assert sorted(kube.calls[3:]) == [("patch", "ev1", COMBINED + "web deployed", 6),
                                      ("patch", "ev2", COMBINED + "web is ready", 6)]
    clock.t += 100
    await rec.flush_due()
    assert len(kube.calls) == 5 and rec.pending == 0, "at rest: nothing more"


@pytest.mark.anyio
async def test_a_dataservice_that_waits_gets_its_folded_repeats_written_after_a_lull() -> None:
    rec, kube, clock = _rollout_recorder()
    await _step(rec, clock, PARENT, Event("Normal", "Deploying", "mysql deployed"), 3)
    await _step(rec, clock, OTHER, Event("Normal", "Deploying", "mysql deployed"), 0)
    await _step(rec, clock, PARENT, Event("Normal", "Deploying", "uuc deployed: check failed: refused"), 9)
    await _step(rec, clock, OTHER, Event("Normal", "Deploying", "uuc deployed"), 0)  # another one is busy
    assert [c[0] for c in kube.calls] == ["create", "create"], "9 s without news: not yet"
    clock.t += 1
    await rec.flush_due()
    assert kube.calls[2:] == [("patch", "ev1", COMBINED + "uuc deployed: check failed: refused", 2)], (
        "10 s without news of this DataService: its story is written; the busy one waits")


@pytest.mark.anyio
async def test_a_long_burst_is_written_at_most_a_max_interval_apart_and_a_new_rollout_at_once() -> None:
    rec, kube, clock = _rollout_recorder()
    for _ in range(150):  # an occurrence every 2 s for 300 s: never a lull, never at rest
        await _step(rec, clock, PARENT, Event("Normal", "Waiting", "x"), 2)
    assert [(c[0], c[-1]) for c in kube.calls] == [("create", 1)] + [("patch", 30 * i) for i in range(1, 6)], (
        "created at once, then every 60 s (30 occurrences each)")
    await rec.flush_due(PARENT)
    clock.t += 3600  # at rest for an hour; then a new rollout's first repeat is told at once
    await rec.occurred(PARENT, Event("Normal", "Waiting", "y"), "2026-01-01T01:00:00Z")
    assert kube.calls[-1] == ("patch", "ev1", COMBINED + "y", 151)
