"""Third-party probes run by the shell: real HTTP/TCP on loopback, no shell, no API server.

The manager's timing (periods, backoff) is judged on a fake clock (:mod:`tests.unit.fakeclock`): the
delays it asked to sleep, never elapsed wall time.
"""

from __future__ import annotations

import socket

import anyio
import pytest

from d3os_core.probe_policy import ProbePolicy, parse_cidr
from d3os_core.types import Check, HttpCheck, ProbeRequest, ProbeResult, TcpCheck
from d3os_operator import probes
from d3os_operator.probes import ProbeManager
from d3os_testenv.standin import StandIn, _free_port

from .fakeclock import FakeClock, until

LOCAL = ProbePolicy(allow=(parse_cidr("127.0.0.1/32"),))
"""These stand-ins listen on 127.0.0.1, which the default policy refuses (loopback)."""


async def run_check(check: Check) -> ProbeResult:
    return await probes.run_check(check, policy=LOCAL)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def standin():  # type: ignore[no-untyped-def]
    with StandIn() as s:
        yield s


async def test_http_head_ok_and_status_handling(standin: StandIn) -> None:
    ok = await run_check(HttpCheck(url=standin.url, method="HEAD", fail_on_http_error=True))
    assert ok == ProbeResult(True, f"HTTP HEAD {standin.url}: HTTP 200")
    standin.status = 503
    failed = await run_check(HttpCheck(url=standin.url, method="HEAD", fail_on_http_error=True))
    assert not failed.ok and failed.message.endswith("HTTP 503")
    lenient = await run_check(HttpCheck(url=standin.url, method="GET", fail_on_http_error=False))
    assert lenient.ok, "without --fail any HTTP answer counts as alive, like curl"
    assert standin.requests == 3


async def test_http_refused_and_timeout() -> None:
    port = _free_port("127.0.0.1")
    refused = await run_check(HttpCheck(url=f"http://127.0.0.1:{port}/x", timeout_seconds=2))
    assert not refused.ok
    assert refused.message == f"HTTP GET http://127.0.0.1:{port}/x: connection refused"

    # a listener that accepts but never answers
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        url = f"http://127.0.0.1:{srv.getsockname()[1]}/slow"
        with anyio.fail_after(30):  # a hang guard only: the check must end on its own timeout, and say so
            hung = await run_check(HttpCheck(url=url, timeout_seconds=0.3))
    assert not hung.ok and "timed out after 0.3s" in hung.message


async def test_tcp_check(standin: StandIn) -> None:
    assert (await run_check(TcpCheck("127.0.0.1", standin.port))).ok
    port = _free_port("127.0.0.1")
    res = await run_check(TcpCheck("127.0.0.1", port, timeout_seconds=1))
    assert res == ProbeResult(False, f"TCP connect 127.0.0.1:{port}: connection refused")


def runs(mgr: ProbeManager) -> int:
    return sum(int(t["runs"]) for t in mgr.stats())


async def test_manager_shares_targets_notifies_on_change_and_stops_unused(standin: StandIn) -> None:
    clock = FakeClock()
    changes: list[object] = []
    mgr = ProbeManager(changes.append, retry_min=0.05, policy=LOCAL, clock=clock, sleep=clock.sleep)
    check = HttpCheck(url=standin.url, method="HEAD", fail_on_http_error=True)
    a = ProbeRequest("ns/a/uuc/1", "uuc", check, period_seconds=0.25)
    b = ProbeRequest("ns/b/uuc/1", "uuc", check, period_seconds=0.25)
    async with anyio.create_task_group() as tg:
        tg.start_soon(mgr.run)
        await mgr.wait_started()
        mgr.ensure(("ns", "a"), [a])
        mgr.ensure(("ns", "b"), [b])
        assert mgr.target_count == 1, "the same check is probed once for all DataServices"
        await until("both subscribers notified of the first result", lambda: len(changes) >= 2)
        assert set(changes) == {("ns", "a"), ("ns", "b")}
        assert mgr.results(("ns", "a")) == {a.key: ProbeResult(True, f"HTTP HEAD {standin.url}: HTTP 200")}
        assert runs(mgr) == 1 and standin.requests == 1

        # steady results do not notify; a healthy target is probed once a period
        changes.clear()
        for n in (2, 3, 4):
            await until("the target slept its period", lambda n=n: len(clock.sleeps) == n - 1)
            assert clock.sleeps[-1] == 0.25
            await clock.advance(0.25)
            await until(f"probe {n}", lambda n=n: runs(mgr) == n)
        assert changes == []

        # a flip notifies every subscriber
        standin.status = 500
        await until("the sleep before probe 5", lambda: len(clock.sleeps) == 4)
        await clock.advance(0.25)
        await until("both subscribers notified of the flip", lambda: len(changes) >= 2)
        assert set(changes) == {("ns", "a"), ("ns", "b")}
        assert not mgr.results(("ns", "b"))[b.key].ok

        mgr.forget(("ns", "a"))
        assert mgr.target_count == 1
        assert mgr.results(("ns", "a")) == {}
        mgr.ensure(("ns", "b"), [])
        assert mgr.target_count == 0
        seen, slept = standin.requests, len(clock.sleeps)
        for _ in range(5):
            await clock.advance(1.0)
        assert standin.requests == seen, "a target nobody asks for is no longer probed"
        assert len(clock.sleeps) == slept
        tg.cancel_scope.cancel()


async def test_failing_target_backs_off_but_never_beyond_one_period() -> None:
    clock = FakeClock()
    port = _free_port("127.0.0.1")
    standin = StandIn(port=port)  # down at first
    changes: list[object] = []
    mgr = ProbeManager(changes.append, retry_min=0.05, policy=LOCAL, clock=clock, sleep=clock.sleep)
    req = ProbeRequest("k", "uuc", HttpCheck(url=standin.url, timeout_seconds=1), period_seconds=0.6)
    async with anyio.create_task_group() as tg:
        tg.start_soon(mgr.run)
        await mgr.wait_started()
        mgr.ensure("p", [req])
        # each failure doubles the wait from retry_min, capped at the period: 0.05, 0.1, 0.2, 0.4, 0.6, 0.6
        for n in range(1, 7):
            await until(f"failure {n} and its backoff", lambda n=n: len(clock.sleeps) == n)
            if n < 6:
                await clock.advance(clock.sleeps[-1])
        assert clock.sleeps == [0.05, 0.1, 0.2, 0.4, 0.6, 0.6]
        assert runs(mgr) == 6 and not mgr.results("p")["k"].ok
        assert mgr.first_result_grace("p", ["k"], grace=5.0) == 0.0, "it has a result"

        # a recovered target is seen at the next probe, at most one period later
        standin.up()
        try:
            await clock.advance(0.6)
            await until("the recovery seen", lambda: mgr.results("p")["k"].ok)
            await until("the healthy target's next sleep", lambda: len(clock.sleeps) == 7)
            assert runs(mgr) == 7
            assert clock.sleeps[-1] == 0.6, "a healthy target is probed every period"
        finally:
            standin.down()
        tg.cancel_scope.cancel()


async def test_first_result_grace_counts_on_the_managers_clock() -> None:
    clock = FakeClock()
    port = _free_port("127.0.0.1")
    gate = anyio.Event()

    async def slow_resolver(host: str, port: int) -> list[str]:  # holds the first probe until released
        await gate.wait()
        return ["127.0.0.1"]

    mgr = ProbeManager(lambda p: None, policy=LOCAL, clock=clock, sleep=clock.sleep, resolver=slow_resolver)
    req = ProbeRequest("k", "uuc", TcpCheck("uuc.example", port, timeout_seconds=1), period_seconds=10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(mgr.run)
        await mgr.wait_started()
        mgr.ensure("p", [req])
        assert mgr.first_result_grace("p", ["k"], grace=3.0) == 3.0
        await clock.advance(1.0)
        assert mgr.first_result_grace("p", ["k"], grace=3.0) == 2.0
        await clock.advance(5.0)
        assert mgr.first_result_grace("p", ["k"], grace=3.0) == 0.0, "the grace is over"
        gate.set()
        await until("the first result", lambda: "k" in mgr.results("p"))
        tg.cancel_scope.cancel()
