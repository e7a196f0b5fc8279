"""Health and metrics endpoints, on loopback (no API server involved)."""

from __future__ import annotations

import anyio
import httpx2
import pytest

from d3os_operator.metrics import prometheus_text, serve

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


STATS = {
    "reconciles": 7,
    "errors": 1,
    "writes": {"apply:Deployment": 3, "apply-status:DataService": 2},
    "http_requests": {"GET": 10, "PATCH": 5},
    "queue": 0,
    "relists": {"Deployment": 1},
    "probes": [{"check": 'HTTP HEAD http://x/"q"', "ok": True}],
}


def test_prometheus_text() -> None:
    text = prometheus_text(STATS)
    assert "d3os_operator_reconciles_total 7" in text
    assert 'd3os_operator_writes_total{verb="apply",kind="Deployment"} 3' in text
    assert 'd3os_operator_probe_ok{check="HTTP HEAD http://x/\\"q\\""} 1' in text


async def test_endpoints() -> None:
    ready = False
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, "127.0.0.1", 0, lambda: STATS, lambda: ready)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:
            assert (await c.get("/healthz")).status_code == 200
            assert (await c.get("/readyz")).status_code == 503
            ready = True
            assert (await c.get("/readyz")).status_code == 200
            m = await c.get("/metrics")
            assert m.status_code == 200 and "d3os_operator_queue_depth 0" in m.text
            assert (await c.get("/nope")).status_code == 404
        tg.cancel_scope.cancel()
