"""Issue 24 A1: the operator's memory does not grow with revision history. Three tenants, each with a
DataService at the largest spec admission allows in practice (40 env values of 32 KiB, ~1.3 MB: the API
server's request limit is 1.5 MiB) and ``revisionHistoryLimit: 1000``, each go through 20 generations; the
operator (``d3os-operator run``, a subprocess) keeps its RSS growth within 4 MiB per DataService, never
restarts, and a good tenant's sample applied once the operator holds all that history is Ready within 1.5x
its time alone (same run).
The cost of one such DataService is measured and printed (docs/operations.md states it). A sample applied
during the churn is timed too and reported with the CPU the operator and the control plane used meanwhile:
there the shared control plane, rewriting 1.3 MB objects, sets the pace, not the operator."""

from __future__ import annotations

import contextlib
import copy
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.core_v1 import Namespace

from d3os_testenv import harness
from d3os_testenv.standin import StandIn

pytest.register_assert_rewrite("tests.integration.standin")
from .chaos import namespaces_for_a_test  # noqa: E402
from .standin import ensure_volumes, figures_out, list_kind, point_uuc_at, wait_for  # noqa: E402
from .storm import cpu_seconds, rss_bytes  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

TENANTS = 3
GENERATIONS = 20
ENV_VALUES, ENV_BYTES = 40, 32 * 1024
BOUND = 4 * 2**20
RATIO = 1.5
PLANE_QUIET = 0.3
"""Cores the control plane may use for the samples after the churn to start (it used less than that alone)."""


@pytest.fixture
def namespaces(k8s_cluster: Any, client: Client) -> Iterator[list[str]]:
    base = f"hist-{int(time.time()) % 100000}"
    names = [f"{base}-alone", f"{base}-alone2", f"{base}-busy", f"{base}-after", f"{base}-after2",
             *(f"{base}-t{i}" for i in range(TENANTS))]
    with namespaces_for_a_test(client, names) as made:
        yield made


def largest(sample: dict[str, Any]) -> dict[str, Any]:
    """The sample with every replica at 0 (Ready in seconds), a ClusterIP web, 40 env values of 32 KiB on
    api-manager and a history limit of 1,000."""
    ds = copy.deepcopy(sample)
    ds["metadata"] = {"name": "big"}
    for comp in ds["spec"].values():
        if isinstance(comp, dict) and "replica" in comp:
            comp["replica"] = 0
    ds["spec"]["mysql"]["replica"] = 0
    ds["spec"]["web"]["nodePort"] = None
    ds["spec"]["api-manager"]["env"] = {f"BLOB_{i}": chr(ord("a") + i % 26) * ENV_BYTES for i in range(ENV_VALUES)}
    ds["spec"]["revisionHistoryLimit"] = 1000
    return ds


def control_plane_cpu(run_dir: Path) -> float:
    """CPU seconds used so far by the local control plane's processes (those started from its run dir)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if str(run_dir) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                total += cpu_seconds(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


def rss(pid: int, samples: int = 5) -> float:
    """Median RSS over ``samples`` readings a second apart (bytes)."""
    out = []
    for _ in range(samples):
        out.append(rss_bytes(pid))
        time.sleep(1)
    return statistics.median(out)


def test_history_does_not_grow_the_operators_memory(
    k8s_cluster: Any, client: Client, crd: None, uuc: StandIn, namespaces: list[str], tmp_path: Path
) -> None:
    alone_ns, alone2_ns, busy_ns, after_ns, after2_ns, *tenant_ns = namespaces
    ensure_volumes(client, 4)
    sample = point_uuc_at(harness.load_sample(), uuc)
    name = sample["metadata"]["name"]
    big = largest(sample)
    sample["spec"]["web"]["nodePort"] = None  # several copies: nodePorts are cluster-wide
    assert len(json.dumps(big["spec"]).encode()) > 1_300_000
    log = tmp_path / "operator.log"
    cmd = [sys.executable, "-m", "d3os_operator.cli", "run", "--kubeconfig", str(k8s_cluster.kubeconfig),
           *(a for ns in namespaces for a in ("--namespace", ns)), "--log-format", "json", "--log-level", "warning",
           "--metrics-bind-address=0", "--health-probe-bind-address=0", "--probe-allow-cidr=127.0.0.1/32"]

    def apply(namespace: str, doc: dict[str, Any]) -> None:
        k8s_cluster.kubectl("apply", "--server-side", "--field-manager=tenant", "-n", namespace, "-f", "-",
                            input=yaml.safe_dump(doc, allow_unicode=True))

    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
    try:
        def alive() -> None:
            assert proc.poll() is None, f"the operator exited ({proc.returncode}): {log.read_text()[-3000:]}"

        recorded: dict[str, list[str]] = {ns: [] for ns in tenant_ns}
        """Each tenant's status.currentRevision, one per generation: a new revision each time."""

        def ready(ns: str, n: str, generation: int | None = None) -> bool:
            alive()
            ds = harness.get_dataservice(client, ns, n)
            if not harness.is_ready(ds) or ds is None:
                return False
            if generation is None:
                return True
            current = ds["status"].get("currentRevision")
            if ds["status"].get("observedGeneration") != generation or not current or current in recorded[ns]:
                return False
            recorded[ns].append(current)
            return True

        def own_revisions(ns: str) -> int:
            return sum(1 for r in list_kind(client, "ControllerRevision", ns, api_version="apps/v1")
                       if any(o.get("kind") == "DataService" for o in r["metadata"].get("ownerReferences") or []))

        time.sleep(12)  # past one of the operator's malloc_trim periods (memtrim.PERIOD): what is held, not in flight
        alive()
        def timed(ns: str, what: str) -> float:
            t = time.monotonic()
            apply(ns, sample)
            wait_for(f"the sample Ready, {what}", lambda: ready(ns, name), 300)
            return time.monotonic() - t

        # best of two, alone and after alike: on a machine shared with other work, one run is noise
        alones = [timed(alone_ns, "alone"), timed(alone2_ns, "alone again")]
        alone = min(alones)

        rss0 = rss(proc.pid)
        for ns in tenant_ns:
            apply(ns, big)
        for ns in tenant_ns:
            wait_for(f"{ns}/big Ready at generation 1", lambda ns=ns: ready(ns, "big", 1), 300)
        time.sleep(12)  # past one of the operator's malloc_trim periods (memtrim.PERIOD): what is held, not in flight
        rss1 = rss(proc.pid)

        failures: list[BaseException] = []
        progress = {"generation": 1}
        trail: list[float] = []
        """RSS (MiB) after each generation: a line that climbs is history kept, a plateau is not."""

        def churn() -> None:
            try:
                for g in range(2, GENERATIONS + 1):
                    for ns in tenant_ns:
                        k8s_cluster.kubectl("patch", "dataservice", "big", "-n", ns, "--type=merge", "-p", json.dumps(
                            {"spec": {"api-manager": {"env": {"BLOB_0": (str(g) * ENV_BYTES)[:ENV_BYTES]}}}}))
                    for ns in tenant_ns:
                        wait_for(f"{ns}/big Ready at generation {g}", lambda ns=ns, g=g: ready(ns, "big", g), 300,
                                 interval=0.25)
                    progress["generation"] = g
                    trail.append(round(rss_bytes(proc.pid) / 2**20, 1))
            except BaseException as e:  # reported by the main thread
                failures.append(e)

        churner = threading.Thread(target=churn, daemon=True)
        churner.start()
        wait_for("the churn under way", lambda: failures or progress["generation"] >= 5, 600, interval=0.5)
        cpu1, plane1 = cpu_seconds(proc.pid), control_plane_cpu(k8s_cluster.run_dir)
        busy = timed(busy_ns, "during the churn")
        operator_share = (cpu_seconds(proc.pid) - cpu1) / busy
        plane_share = (control_plane_cpu(k8s_cluster.run_dir) - plane1) / busy
        churner.join(1200)
        assert not failures, failures
        assert not churner.is_alive(), "the 20 generations did not finish"
        time.sleep(12)  # past one of the operator's malloc_trim periods (memtrim.PERIOD): what is held, not in flight
        rss20 = rss(proc.pid)
        # the operator now holds 3 x 20 generations of history: a new tenant is served as fast as at first
        # the control plane (not the operator) is still digesting the tenants' big objects for a while (the
        # garbage collector, etcd): like with like, the samples after wait for it to quiet down, as alone did
        def plane_quiet() -> bool:
            before, t = control_plane_cpu(k8s_cluster.run_dir), time.monotonic()
            time.sleep(5)
            return (control_plane_cpu(k8s_cluster.run_dir) - before) / (time.monotonic() - t) < PLANE_QUIET
        settle_t = time.monotonic()
        wait_for("the control plane quiet", plane_quiet, 300, interval=0)
        settled_s = time.monotonic() - settle_t
        cpu2 = cpu_seconds(proc.pid)
        t2 = time.monotonic()
        afters = [timed(after_ns, "after the churn"), timed(after2_ns, "after the churn again")]
        after = min(afters)
        operator_share_after = (cpu_seconds(proc.pid) - cpu2) / (time.monotonic() - t2)
        revisions = [own_revisions(ns) for ns in tenant_ns]
        figures = {
            "tenants": TENANTS, "generations": GENERATIONS, "spec_bytes": len(json.dumps(big["spec"]).encode()),
            "revisions_kept_per_tenant": revisions,
            "rss_before_tenants_mib": round(rss0 / 2**20, 1), "rss_after_1_generation_mib": round(rss1 / 2**20, 1),
            "rss_after_20_generations_mib": round(rss20 / 2**20, 1),
            "cost_of_one_dataservice_mib": round((rss1 - rss0) / TENANTS / 2**20, 2),
            "growth_per_dataservice_mib": round((rss20 - rss1) / TENANTS / 2**20, 2),
            "rss_after_each_generation_mib": trail,
            "sample_alone_s": [round(a, 2) for a in alones],
            "sample_after_20_generations_s": [round(a, 2) for a in afters],
            "ratio_after": round(after / alone, 2), "control_plane_settled_after_s": round(settled_s, 1),
            "operator_cpu_share_after": round(operator_share_after, 2),
            "sample_during_churn_s": round(busy, 2), "ratio_during": round(busy / alone, 2),
            "operator_cpu_share_during_churn": round(operator_share, 2),
            "control_plane_cpu_share_during_churn": round(plane_share, 2),
        }
        figures_out("history_memory", figures)
        alive()
        assert all(n >= GENERATIONS for n in revisions), revisions
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
        assert (rss20 - rss1) / TENANTS <= BOUND, figures
        # during the churn the shared control plane is what is slow (its CPU share and the operator's are in
        # the figures): reported, not asserted; with the history held, the operator must be as fast as alone
        assert after <= RATIO * alone, figures
        for ns in namespaces:  # while the operator runs: it removes the finalizers
            with contextlib.suppress(Exception):
                client.delete(Namespace, ns)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
