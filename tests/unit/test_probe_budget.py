"""The probes' budget (issue 24, A2): a global concurrency and rate budget shared fairly between namespaces,
and a cap on one namespace's distinct checks. Fake clocks and a fake network: nothing waits for real."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import anyio
import pytest

from d3os_core.probe_budget import admit
from d3os_core.types import ProbeRequest, TcpCheck
from d3os_operator import probes
from d3os_operator.probe_gate import ProbeBudget, ProbeGate
from d3os_operator.probes import ProbeManager

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_freed_slot_goes_to_the_next_namespace_in_turn_not_to_the_flood() -> None:
    gate = ProbeGate(ProbeBudget(max_concurrent=2, per_namespace=2, rate=None))
    order: list[str] = []
    release: dict[str, anyio.Event] = {}

    async def probe(ns: str, name: str) -> None:
        release[name] = anyio.Event()
        async with gate.slot(ns):
            order.append(name)
            await release[name].wait()

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(probe, "storm", f"s{i}")
            await anyio.sleep(0)
        tg.start_soon(probe, "quiet", "q0")
        await anyio.sleep(0.01)
        assert order == ["s0", "s1"], "two slots, both taken"
        release["s0"].set()
        await anyio.sleep(0.01)
        assert order == ["s0", "s1", "q0"], "the quiet namespace's probe is next, before the flood's other four"
        for name in ["s1", "q0", "s2", "s3", "s4", "s5"]:
            if name in release:
                release[name].set()
            await anyio.sleep(0.01)
        for ev in release.values():
            ev.set()
    assert order[3:] == ["s2", "s3", "s4", "s5"], "FIFO within a namespace"


async def test_one_namespace_never_holds_more_than_its_share_of_slots() -> None:
    gate = ProbeGate(ProbeBudget(max_concurrent=16, per_namespace=4, rate=None))
    hold = anyio.Event()
    peak = 0

    async def probe(ns: str) -> None:
        nonlocal peak
        async with gate.slot(ns):
            peak = max(peak, gate.running_in("storm"))
            await hold.wait()

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(probe, "storm")
        await anyio.sleep(0.01)
        assert gate.running_in("storm") == 4 and gate.running == 4
        tg.start_soon(probe, "quiet")
        await anyio.sleep(0.01)
        assert gate.running_in("quiet") == 1, "another namespace gets a slot at once"
        hold.set()
    assert peak == 4 and gate.running == 0


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    gate = ProbeGate(ProbeBudget(max_concurrent=1, per_namespace=1, rate=None))
    hold = anyio.Event()

    async def holder() -> None:
        async with gate.slot("a"):
            await hold.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await anyio.sleep(0.01)
        with anyio.move_on_after(0.01):
            async with gate.slot("b"):
                raise AssertionError("no slot is free")
        hold.set()
    async with gate.slot("b"):
        assert gate.running == 1


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))


async def test_requests_are_paced_at_the_rate_with_a_burst_after_a_quiet_spell() -> None:
    clock = FakeTime()
    gate = ProbeGate(ProbeBudget(rate=10.0, burst=3), clock=clock, sleep=clock.sleep)
    for _ in range(6):
        await gate.pace()
    assert clock.slept == [0.1, 0.2, 0.3], "3 at once (the burst), then one every 0.1 s"
    clock.t += 10
    clock.slept.clear()
    for _ in range(3):
        await gate.pace()
    assert clock.slept == [], "a quiet spell earns the burst again"


def test_admit_keeps_the_longest_held_checks() -> None:
    assert admit(["a", "b", "c", "d"], 2) == (["a", "b"], ["c", "d"])
    assert admit(["a"], None) == (["a"], [])


async def test_a_namespace_beyond_its_cap_of_distinct_checks_gets_not_probed_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connects: list[tuple[str, int]] = []

    class Stream:
        async def aclose(self) -> None:
            return None

    async def fake_connect(host: str, port: int) -> Any:
        connects.append((host, port))
        return Stream()

    monkeypatch.setattr(probes, "connect_tcp", fake_connect)
    changed: list[Hashable] = []
    gate = ProbeGate(ProbeBudget(max_targets_per_namespace=3, rate=None))
    mgr = ProbeManager(changed.append, gate=gate)

    def req(port: int) -> list[ProbeRequest]:
        return [ProbeRequest("uuc", "uuc", TcpCheck("192.0.2.1", port, timeout_seconds=1), period_seconds=3600)]

    async with anyio.create_task_group() as tg:
        tg.start_soon(mgr.run)
        await mgr.wait_started()
        storm = [("storm", f"ds{i}", "DataService") for i in range(5)]
        for i, parent in enumerate(storm):
            mgr.ensure(parent, req(1000 + i))
        quiet = ("quiet", "sample", "DataService")
        mgr.ensure(quiet, req(2000))
        await anyio.sleep(0.05)
        assert sorted(p for _, p in connects) == [1000, 1001, 1002, 2000], "3 of the storm's, and the quiet one"
        assert mgr.target_count == 4 and mgr.not_probed() == 2
        for parent in storm[3:]:
            result = mgr.results(parent)["uuc"]
            assert not result.ok and "not probed" in result.message and "--probe-max-targets-per-namespace" in (
                result.message)
            assert parent in changed, "told at once, so its status says why"
        assert mgr.results(storm[0])["uuc"].ok and mgr.results(quiet)["uuc"].ok
        assert mgr.first_result_grace(storm[4], ["uuc"], 2.0) == 0
        mgr.forget(storm[0])
        await anyio.sleep(0.05)
        assert 1003 in [p for _, p in connects], "a freed place goes to the next check asked for"
        assert mgr.not_probed() == 1 and mgr.results(storm[3])["uuc"].ok
        storm_copy = ("storm", "ds9", "DataService")
        mgr.ensure(storm_copy, req(1001))
        assert mgr.results(storm_copy)["uuc"].ok, "a check the namespace already has costs nothing more"
        tg.cancel_scope.cancel()
