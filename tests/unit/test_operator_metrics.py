"""Metrics under controller-runtime's names, the queue's reports, the two endpoints, and the run flags.

Loopback only; no API server involved.
"""

from __future__ import annotations

import re

import anyio
import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from d3os_operator.cli import build_parser, main
from d3os_operator.endpoints import PROMETHEUS, TEXT, listen, parse_address, serve
from d3os_operator.metrics import Metrics
from d3os_operator.workqueue import WorkQueue


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


STATS = {
    "writes": {"apply:Deployment": 3, "apply-status:DataService": 2},
    "relists": {"Deployment": 1},
    "events": {"sent": 4, "failed": 0, "dropped": 0},
    "probes": [{"check": 'HTTP HEAD http://x/"q"', "ok": True}, {"check": "TCP a:1", "ok": None}],
}


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(m.text().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: Metrics, metric: str, **labels: str) -> float:
    return samples(m)[(metric, tuple(sorted(labels.items())))]


def test_controller_runtime_names_and_values() -> None:
    m = Metrics(max_workers=4)
    m.snapshot(lambda: STATS)
    m.reconcile_started()
    assert value(m, "controller_runtime_active_workers", controller="dataservice") == 1
    m.reconcile_finished(0.02, "success")
    m.reconcile_started()
    m.reconcile_finished(0.5, "error")
    m.reconcile_started()
    m.reconcile_finished(0.01, "requeue_after")
    assert value(m, "controller_runtime_reconcile_total", controller="dataservice", result="success") == 1
    assert value(m, "controller_runtime_reconcile_total", controller="dataservice", result="error") == 1
    assert value(m, "controller_runtime_reconcile_total", controller="dataservice", result="requeue") == 0
    assert value(m, "controller_runtime_reconcile_errors_total", controller="dataservice") == 1
    assert value(m, "controller_runtime_reconcile_time_seconds_count", controller="dataservice") == 3
    assert value(m, "controller_runtime_reconcile_time_seconds_sum", controller="dataservice") == pytest.approx(0.53)
    assert value(m, "controller_runtime_active_workers", controller="dataservice") == 0
    assert value(m, "controller_runtime_max_concurrent_reconciles", controller="dataservice") == 4
    m.response(200, "GET", "127.0.0.1:6443")
    m.response(200, "GET", "127.0.0.1:6443")
    m.response(409, "PATCH", "127.0.0.1:6443")
    assert value(m, "rest_client_requests_total", code="200", method="GET", host="127.0.0.1:6443") == 2
    assert value(m, "rest_client_requests_total", code="409", method="PATCH", host="127.0.0.1:6443") == 1
    m.leading("lease", True)
    assert value(m, "leader_election_master_status", name="lease") == 1
    # ours, and the snapshot of the operator's own counters
    m.step_started(0.03)
    assert value(m, "d3os_step_latency_seconds_count") == 1
    assert value(m, "d3os_writes_total", verb="apply", kind="Deployment") == 3
    assert value(m, "d3os_thirdparty_check_up", check='HTTP HEAD http://x/"q"') == 1
    assert ("d3os_thirdparty_check_up", (("check", "TCP a:1"),)) not in samples(m)  # never run: no series
    assert not [k for k in samples(m) if k[0].endswith("_created")]


def test_component_ready_series_follow_the_dataservice() -> None:
    m = Metrics()
    m.components("ns", "ds", {"mysql": True, "uuc": False})  # a DataService's: kind="DataService"
    ds = {"namespace": "ns", "name": "ds", "kind": "DataService"}
    assert value(m, "d3os_component_ready", component="mysql", **ds) == 1
    assert value(m, "d3os_component_ready", component="uuc", **ds) == 0
    m.components("ns", "ds", {"kafka": False}, "AnalyticsService")  # another product's instance of one name
    assert value(m, "d3os_component_ready", component="kafka", **{**ds, "kind": "AnalyticsService"}) == 0
    m.components("ns", "ds", {"mysql": True})
    uuc = ("d3os_component_ready", tuple(sorted({**ds, "component": "uuc"}.items())))
    assert uuc not in samples(m)
    m.forget("ns", "ds")
    assert [k for k in samples(m) if k[0] == "d3os_component_ready"] == [
        ("d3os_component_ready", tuple(sorted({**ds, "kind": "AnalyticsService", "component": "kafka"}.items())))]
    m.forget("ns", "ds", "AnalyticsService")
    assert not [k for k in samples(m) if k[0] == "d3os_component_ready"]


def test_condition_series_follow_the_dataservice() -> None:
    m = Metrics()
    m.conditions("ns", "ds", {"Ready": False, "Stalled": True})
    ds = {"namespace": "ns", "name": "ds", "kind": "DataService"}
    assert value(m, "d3os_condition", type="Stalled", **ds) == 1
    assert value(m, "d3os_condition", type="Ready", **ds) == 0
    m.conditions("ns", "ds", {"Ready": True})
    assert ("d3os_condition", tuple(sorted({**ds, "type": "Stalled"}.items()))) not in samples(m)
    m.forget("ns", "ds")
    assert not [k for k in samples(m) if k[0] == "d3os_condition"]


@pytest.mark.anyio
async def test_queue_reports_depth_adds_wait_and_retries() -> None:
    m = Metrics()
    now = [100.0]
    q: WorkQueue[str] = WorkQueue(clock=lambda: now[0], observer=m)
    q.add("a")
    q.add("b")
    q.add("a")  # already queued: not an add
    ql = {"name": "dataservice", "controller": "dataservice"}
    assert value(m, "workqueue_adds_total", **ql) == 2
    assert value(m, "workqueue_depth", **ql) == 2
    now[0] += 0.25
    assert await q.get() == "a"
    assert q.picked_since("a") == 100.0
    assert value(m, "workqueue_depth", **ql) == 1
    assert value(m, "workqueue_queue_duration_seconds_sum", **ql) == pytest.approx(0.25)
    q.add_rate_limited("a")
    assert value(m, "workqueue_retries_total", **ql) == 1
    q.done("a")
    assert q.picked_since("a") is None


def test_parse_address() -> None:
    assert parse_address(":8080") == ("0.0.0.0", 8080)
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_address("0") is None and parse_address("") is None
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address("8080x")


@pytest.mark.anyio
async def test_endpoints_serve_routes() -> None:
    ready = False

    def readyz(query: object) -> tuple[int, bytes, str]:
        return (200, b"ok\n", TEXT) if ready else (503, b"caches not synced\n", TEXT)

    m = Metrics()
    m.queue_depth_is(3)
    listener = await listen("127.0.0.1", 0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    routes = {
        "/readyz": readyz,
        "/metrics": lambda q: (200, m.text(q.get("name[]", ())), PROMETHEUS),
        "/boom": lambda q: 1 / 0,
    }
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, listener, routes)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:
            assert (await c.get("/readyz")).status_code == 503
            ready = True
            assert (await c.get("/readyz")).status_code == 200
            r = await c.get("/metrics")
            assert r.status_code == 200 and "workqueue_depth" in r.text
            assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
            r = await c.get("/metrics?name[]=workqueue_depth&name[]=controller_runtime_reconcile_total")
            names = {line.split("{")[0].split(" ")[0] for line in r.text.splitlines() if not line.startswith("#")}
            assert names == {"workqueue_depth", "controller_runtime_reconcile_total"}, r.text
            # the bench reads the depth this way (bench/cluster_bench.py _DEPTH)
            assert re.search(r'^workqueue_depth\{[^}]*name="dataservice"[^}]*\}\s+3\.0$', r.text, re.M), r.text
            assert (await c.get("/nope")).status_code == 404
            assert (await c.get("/boom")).status_code == 500
        tg.cancel_scope.cancel()


def test_run_flag_defaults_match_controller_runtime() -> None:
    args = build_parser().parse_args(["run"])
    assert args.metrics_bind_address == ":8080" and args.health_probe_bind_address == ":8081"
    assert (args.leader_elect_lease_duration, args.leader_elect_renew_deadline, args.leader_elect_retry_period) == (
        15.0,
        10.0,
        2.0,
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--metrics-bind-address", "nope"], "--metrics-bind-address"),
        (["--health-probe-bind-address", "x:y"], "--health-probe-bind-address"),
        (["--leader-elect-renew-deadline", "20"], "renew deadline < lease duration"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_run_flags_are_refused_naming_the_flag(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", *argv])
    assert e.value.code == 2
    assert says in capsys.readouterr().err
