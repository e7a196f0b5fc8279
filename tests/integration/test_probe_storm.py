"""Issue 24 A2: one tenant's 300 DataServices whose third-party checks fail slowly behind 5 redirects (HTTP
and HTTPS) do not slow another tenant down. The operator runs as ``d3os-operator run`` held to 500m of CPU
(tests/integration/storm.py says by what); the sample's time to Ready alone and beside the storm is measured
twice each in the same run (best of two: one run on a shared machine is noise) and must stay within 1.5x."""

from __future__ import annotations

import contextlib
import copy
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.core_v1 import Namespace

from d3os_operator.kube import DATASERVICE
from d3os_testenv import harness
from d3os_testenv.standin import StandIn

pytest.register_assert_rewrite("tests.integration.standin")
from .chaos import free_node_ports, namespaces_for_a_test  # noqa: E402
from .standin import ensure_volumes, figures_out, point_uuc_at, wait_for  # noqa: E402
from .storm import RedirectFarm, cpu_limited, cpu_seconds, rss_bytes  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

STORM = 300
RATIO = 1.5


@pytest.fixture
def namespaces(k8s_cluster: Any, client: Client) -> Iterator[list[str]]:
    base = f"storm-{int(time.time()) % 100000}"
    names = [f"{base}-alone", f"{base}-alone2", f"{base}-busy", f"{base}-busy2", f"{base}-flood"]
    with namespaces_for_a_test(client, names) as made:
        yield made


def storm_dataservices(sample: dict[str, Any], farm: RedirectFarm) -> list[dict[str, Any]]:
    """The sample with mysql a third party (named apart: one namespace) whose check fails slowly after 5
    redirects: HTTP for even ones, HTTPS for odd ones, each its own URL (a distinct check)."""
    out = []
    for i in range(STORM):
        ds = copy.deepcopy(sample)
        ds["metadata"] = {"name": f"storm-{i}"}
        url = farm.url(i)
        ds["spec"]["mysql"] = {"name": f"mysql-{i}", "kind": 3, "thirdParty": {
            "checkCMD": f"curl --silent --fail --location --insecure --max-time 20 {url}"}}
        ds["spec"]["web"]["nodePort"] = None
        out.append(ds)
    return out


def test_a_probe_storm_does_not_slow_another_tenant(
    k8s_cluster: Any, client: Client, crd: None, uuc: StandIn, namespaces: list[str], tmp_path: Path
) -> None:
    alone_ns, alone2_ns, busy_ns, busy2_ns, flood_ns = namespaces
    ensure_volumes(client, 4)
    sample = point_uuc_at(harness.load_sample(), uuc)
    name = sample["metadata"]["name"]
    log = tmp_path / "operator.log"
    cmd = [sys.executable, "-m", "d3os_operator.cli", "run", "--kubeconfig", str(k8s_cluster.kubeconfig),
           *(a for ns in namespaces for a in ("--namespace", ns)), "--log-format", "json", "--log-level", "info",
           "--metrics-bind-address=0", "--health-probe-bind-address=0", "--probe-allow-cidr=127.0.0.1/32"]

    def apply(namespace: str, docs: list[dict[str, Any]]) -> None:
        k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs, allow_unicode=True))

    with RedirectFarm(delay=0.2) as farm, cpu_limited(cmd, log) as op:

        def alive() -> None:
            assert op.p.poll() is None, f"the operator exited ({op.p.returncode}): {log.read_text()[-3000:]}"

        def ready_in(ns: str) -> bool:
            alive()
            return harness.is_ready(harness.get_dataservice(client, ns, name))

        wait_for("the operator to sync its caches", lambda: alive() or "caches synced" in log.read_text(), 60)
        # nodePorts are cluster-wide: the first copy holds the seed's 30180, each other copy takes a free one
        ports = iter(free_node_ports(client, 3, random.Random()))

        def timed(ns: str, what: str) -> float:
            doc = copy.deepcopy(sample)
            if ns != alone_ns:
                doc["spec"]["web"]["nodePort"] = next(ports)
            t0 = time.monotonic()
            apply(ns, [doc])
            try:
                wait_for(f"the sample Ready, {what}", lambda: ready_in(ns), 300)
            finally:
                took = time.monotonic() - t0
            return took

        # best of two, alone and beside the storm alike: on a machine shared with other work, one run is noise
        alones = [timed(alone_ns, "alone"), timed(alone2_ns, "alone again")]
        alone = min(alones)

        cpu0, wall0, requests0 = cpu_seconds(op.p.pid), time.monotonic(), farm.requests
        apply(flood_ns, storm_dataservices(sample, farm))

        def storm_settled() -> bool:
            """Every storm DataService created and planned with its check's result (failing, or not probed):
            the storm is its probes now, not the creation of 300 objects (a control-plane matter)."""
            alive()
            done = 0
            for ds in map(dict, client.list(DATASERVICE.res, namespace=flood_ns)):
                comps = ((ds.get("status") or {}).get("components")) or []
                mysql = next((c for c in comps if c.get("name", "").startswith("mysql")), {})
                said = mysql.get("message", "")
                done += "HTTP 503 after 5 redirects" in said or "not probed" in said
            return done >= STORM and farm.requests - requests0 >= 300
        wait_for("the storm settled: every check failing slowly or not probed", storm_settled, 600, interval=2)
        quiet = {"lines": -1, "since": time.monotonic()}

        def writes_done() -> bool:
            """The storm's one-off writes (statuses, Events: the operator logs each) are over for 5 s; what is
            left is its probes, failing slowly behind redirects, and the periodic re-plans."""
            alive()
            n = sum(1 for line in log.read_text().splitlines() if flood_ns in line and '"probe' not in line)
            if n != quiet["lines"]:
                quiet.update(lines=n, since=time.monotonic())
            return time.monotonic() - quiet["since"] >= 5
        wait_for("the storm's one-off writes over", writes_done, 600, interval=1)

        busies = [timed(busy_ns, "beside the storm"), timed(busy2_ns, "beside the storm again")]
        busy = min(busies)
        cpu_used, wall = cpu_seconds(op.p.pid) - cpu0, time.monotonic() - wall0
        not_probed = sum(1 for line in log.read_text().splitlines() if "not probed" in line)
        figures = {
            "cpu_limit": op.how, "cpu.stat": op.throttled(),
            "alone_s": [round(a, 2) for a in alones], "beside_storm_s": [round(b, 2) for b in busies],
            "ratio": round(busy / alone, 2),
            "storm_dataservices": STORM, "storm_probe_requests_answered": farm.requests - requests0,
            "operator_cpu_s_during_storm": round(cpu_used, 2), "wall_s": round(wall, 2),
            "operator_cpu_share": round(cpu_used / wall, 3), "operator_rss_mib": round(rss_bytes(op.p.pid) / 2**20, 1),
            "log_lines_not_probed": not_probed,
        }
        figures_out("probe_storm", figures)
        alive()
        assert cpu_used / wall <= 0.6, f"the operator was not held to 500m: {json.dumps(figures)}"
        assert busy <= RATIO * alone, f"alone {alone:.2f} s, beside the storm {busy:.2f} s: {json.dumps(figures)}"
        for ns in namespaces:  # while the operator runs: it removes the finalizers
            with contextlib.suppress(Exception):
                client.delete(Namespace, ns)
