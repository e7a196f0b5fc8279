"""Third-party probes run by the shell: real HTTP/TCP on loopback, no shell, no API server."""

from __future__ import annotations

import socket

import anyio
import pytest

from d3os_core.probe_policy import ProbePolicy, parse_cidr
from d3os_core.types import Check, HttpCheck, ProbeRequest, ProbeResult, TcpCheck
from d3os_operator import probes
from d3os_operator.probes import ProbeManager
from d3os_testenv.standin import StandIn, _free_port

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
        start = anyio.current_time()
        hung = await run_check(HttpCheck(url=url, timeout_seconds=0.3))
        assert anyio.current_time() - start < 2
    assert not hung.ok and "timed out after 0.3s" in hung.message


async def test_tcp_check(standin: StandIn) -> None:
    assert (await run_check(TcpCheck("127.0.0.1", standin.port))).ok
    port = _free_port("127.0.0.1")
    res = await run_check(TcpCheck("127.0.0.1", port, timeout_seconds=1))
    assert res == ProbeResult(False, f"TCP connect 127.0.0.1:{port}: connection refused")


async def test_manager_shares_targets_notifies_on_change_and_stops_unused(standin: StandIn) -> None:
    changes: list[object] = []
    mgr = ProbeManager(changes.append, retry_min=0.05, policy=LOCAL)
    check = HttpCheck(url=standin.url, method="HEAD", fail_on_http_error=True)
    a = ProbeRequest("ns/a/uuc/1", "uuc", check, period_seconds=0.2)
    b = ProbeRequest("ns/b/uuc/1", "uuc", check, period_seconds=0.2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(mgr.run)
        await mgr.wait_started()
        mgr.ensure(("ns", "a"), [a])
        mgr.ensure(("ns", "b"), [b])
        assert mgr.target_count == 1, "the same check is probed once for all DataServices"
        with anyio.fail_after(2):
            while len(changes) < 2:
                await anyio.sleep(0.01)
        assert set(changes) == {("ns", "a"), ("ns", "b")}
        assert mgr.results(("ns", "a")) == {a.key: ProbeResult(True, f"HTTP HEAD {standin.url}: HTTP 200")}

        # steady results do not notify
        changes.clear()
        await anyio.sleep(0.5)
        assert changes == []

        # a flip notifies every subscriber
        standin.status = 500
        with anyio.fail_after(2):
            while len(changes) < 2:
                await anyio.sleep(0.01)
        assert not mgr.results(("ns", "b"))[b.key].ok

        mgr.forget(("ns", "a"))
        assert mgr.target_count == 1
        assert mgr.results(("ns", "a")) == {}
        mgr.ensure(("ns", "b"), [])
        assert mgr.target_count == 0
        seen = standin.requests
        await anyio.sleep(0.4)
        assert standin.requests == seen, "a target nobody asks for is no longer probed"
        tg.cancel_scope.cancel()


async def test_failing_target_backs_off_but_never_beyond_one_period() -> None:
    port = _free_port("127.0.0.1")
    standin = StandIn(port=port)  # down at first
    changes: list[object] = []
    mgr = ProbeManager(changes.append, retry_min=0.05, policy=LOCAL)
    req = ProbeRequest("k", "uuc", HttpCheck(url=standin.url, timeout_seconds=1), period_seconds=0.6)
    async with anyio.create_task_group() as tg:
        tg.start_soon(mgr.run)
        await mgr.wait_started()
        mgr.ensure("p", [req])
        await anyio.sleep(1.5)
        runs = mgr.stats()[0]["runs"]
        # 0.05, 0.1, 0.2, 0.4, then every 0.6 s: about 5 runs in 1.5 s, far fewer than a tight loop
        assert 3 <= runs <= 7, runs
        standin.up()
        try:
            t0 = anyio.current_time()
            with anyio.fail_after(2):
                while not mgr.results("p").get("k", ProbeResult(False)).ok:
                    await anyio.sleep(0.01)
            assert anyio.current_time() - t0 <= 0.6 + 0.2, "a recovered target is seen within one period"
        finally:
            standin.down()
        tg.cancel_scope.cancel()
