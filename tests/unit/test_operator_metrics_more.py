"""The client-go / controller-runtime series issue 16 added: process_*, rest_client_request_duration_seconds,
workqueue_unfinished_work_seconds and workqueue_longest_running_processor_seconds (injected clock)."""

from __future__ import annotations

import sys

import anyio
import pytest

from d3os_operator.kube import Kube
from d3os_operator.metrics import REST_BUCKETS, Metrics
from d3os_operator.workqueue import WorkQueue

from .test_operator_metrics import samples, value

QL = {"name": "dataservice", "controller": "dataservice"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process_* reads /proc")
def test_process_series() -> None:
    m = Metrics()
    names = {k[0] for k in samples(m)}
    for series in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                   "process_open_fds", "process_max_fds", "process_start_time_seconds"):
        assert series in names
    assert value(m, "process_open_fds") >= 3
    assert value(m, "process_resident_memory_bytes") > 1_000_000


def test_rest_client_request_duration() -> None:
    m = Metrics()
    m.request_took("GET", "127.0.0.1:6443", 0.02)
    m.request_took("GET", "127.0.0.1:6443", 3.0)
    m.request_took("PATCH", "127.0.0.1:6443", 0.2)
    assert value(m, "rest_client_request_duration_seconds_count", verb="GET", host="127.0.0.1:6443") == 2
    assert value(m, "rest_client_request_duration_seconds_bucket", verb="GET", host="127.0.0.1:6443", le="0.025") == 1
    assert value(m, "rest_client_request_duration_seconds_sum", verb="PATCH", host="127.0.0.1:6443") == 0.2
    buckets = sorted(float(dict(k[1])["le"]) for k in samples(m)
                     if k[0] == "rest_client_request_duration_seconds_bucket" and dict(k[1])["verb"] == "PATCH")
    assert buckets == [*REST_BUCKETS, float("inf")]


@pytest.mark.anyio
async def test_unfinished_work_and_longest_running_processor() -> None:
    m = Metrics()
    now = [10.0]
    q: WorkQueue[str] = WorkQueue(clock=lambda: now[0], observer=m)
    m.in_flight(q.processing_seconds)
    assert value(m, "workqueue_unfinished_work_seconds", **QL) == 0
    assert value(m, "workqueue_longest_running_processor_seconds", **QL) == 0
    q.add("a")
    q.add("b")
    assert await q.get() == "a"
    now[0] += 3.0
    assert await q.get() == "b"
    now[0] += 1.5
    assert value(m, "workqueue_unfinished_work_seconds", **QL) == pytest.approx(4.5 + 1.5)
    assert value(m, "workqueue_longest_running_processor_seconds", **QL) == pytest.approx(4.5)
    q.done("a")
    assert value(m, "workqueue_longest_running_processor_seconds", **QL) == pytest.approx(1.5)
    q.done("b")
    assert value(m, "workqueue_unfinished_work_seconds", **QL) == 0


@pytest.mark.anyio
async def test_kube_reports_each_request_duration() -> None:
    """The operator's transport times every request (a local server stands in for the API server)."""
    from d3os_operator.endpoints import TEXT, listen, serve
    from d3os_operator.kube import make_client

    from .helpers import local_kubeconfig

    listener = await listen("127.0.0.1", 0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    config = local_kubeconfig(port)
    seen: list[tuple[str, str, float]] = []
    codes: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, listener, {"/version": lambda q: (200, b"{}", TEXT)})
        kube = Kube(make_client(config))
        kube.on_duration = lambda method, host, s: seen.append((method, host, s))
        kube.on_response = lambda code, method, host: codes.append(code)
        r = await kube.connection.raw_client(watches=False).get("/version")
        assert r.status_code == 200
        await kube.aclose()
        tg.cancel_scope.cancel()
    assert codes == [200]
    assert [(m, h) for m, h, _ in seen] == [("GET", f"127.0.0.1:{port}")] and seen[0][2] >= 0
