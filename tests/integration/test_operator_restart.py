"""Issue 4, "Done when" 9: killing the operator (SIGKILL) mid-rollout and starting it again -- it
continues; no duplicate or orphaned objects. The operator runs as ``d3os-operator run`` subprocesses."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client

from d3os_core import api
from d3os_testenv import harness
from d3os_testenv.operatorproc import OperatorProcess

pytest.register_assert_rewrite("tests.integration.standin")
from .. import seed_transcript  # noqa: E402
from .standin import (  # noqa: E402
    CHAIN,
    WORKLOADS,
    StandIn,
    chain,
    ensure_volumes,
    expected_phases,
    list_kind,
)

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


class Proc(OperatorProcess):
    """The operator on one namespace (``extra``: more flags), JSON logs to ``log``."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path, extra: list[str] | None = None) -> None:
        super().__init__(kubeconfig, log, namespaces=[namespace], extra=extra or [])


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.stop()


def test_sigkill_mid_rollout_then_restart_continues_cleanly(
    k8s_cluster: Any,
    client: Client,
    crd: None,
    k8s_namespace: str,
    uuc: StandIn,
    sample: dict[str, Any],
    procs: list[Proc],
    tmp_path: Path,
) -> None:
    ns = k8s_namespace
    ensure_volumes(client)
    try:
        _sigkill_then_restart(k8s_cluster, client, ns, sample, procs, tmp_path)
    finally:
        if procs and procs[-1].p.poll() is None:  # let a running operator honour the finalizer
            harness.delete_dataservices(client, ns)


def _sigkill_then_restart(
    k8s_cluster: Any, client: Client, ns: str, sample: dict[str, Any], procs: list[Proc], tmp_path: Path
) -> None:
    first = Proc(k8s_cluster.kubeconfig, ns, tmp_path / "operator-1.log")
    procs.append(first)
    first.wait_synced()
    import yaml

    with harness.StatusRecorder(k8s_cluster.kubeconfig, ns, "dataservice-sample") as rec:
        k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(sample, allow_unicode=True))
        mid = CHAIN.index("auth")
        rec.wait_for(
            lambda ds: bool(ds) and (ds.get("status") or {}).get("message") in {chain(k) for k in CHAIN[mid : mid + 2]},
            180,
            "the rollout to reach auth",
        )
        secrets_before = {s["metadata"]["name"]: s["metadata"]["uid"] for s in list_kind(client, "Secret", ns)}
        first.p.send_signal(signal.SIGKILL)
        first.p.wait(10)
        killed_at = (rec.latest or {}).get("status", {}).get("message")
        # The workloads the first operator had created when it died, read before any operator runs again. A
        # step's status is written after its applies, so a kill between the two leaves a step applied whose
        # phase line nobody wrote; if it is ready by the time the second operator looks, that operator
        # rightly reports the step after it. Only such a step may be missing from the transcript. Read after a
        # one-second pause, so requests the dead process had already sent have landed.
        time.sleep(1.0)
        workloads_at_kill = {(k, o["metadata"]["name"]) for k in ("StatefulSet", "Deployment")
                             for o in list_kind(client, k, ns)}
        second = Proc(k8s_cluster.kubeconfig, ns, tmp_path / "operator-2.log")
        procs.append(second)
        second.wait_synced()
        rec.wait_for(harness.is_ready, 240, "Ready=True after the restart")
        phases = rec.phases()
        seen = [(c["type"], c["phase"]) for c in rec.changes]
    print(f"\nkilled at {killed_at}")
    print("seen:", seen)
    killed_step = next(c for c in CHAIN if chain(c) == killed_at)
    applied_unshown = {
        seed_transcript.step(c)
        for c in CHAIN[CHAIN.index(killed_step) + 1 :]
        if WORKLOADS.get(c) in workloads_at_kill
    }
    print("applied before the kill, after the last status written:", sorted(applied_unshown))
    # it continued where it was: the phases still follow the seed's order, none repeated, none skipped but
    # a step the first operator had applied before it died (see above)
    expected = [p for p in expected_phases() if p in phases or p not in applied_unshown]
    assert phases == expected, (phases, seen, sorted(applied_unshown))

    ds = harness.get_dataservice(client, ns, "dataservice-sample")
    assert ds is not None
    uid = ds["metadata"]["uid"]
    labels = {api.LABEL_MANAGED_BY: api.MANAGED_BY}
    # no orphan: every object of ours is owned by this DataService (claims carry the instance label), but the
    # credentials Secret, owned by the claim
    (claim,) = list_kind(client, "PersistentVolumeClaim", ns)
    for kind in ("Deployment", "StatefulSet", "Service", "ConfigMap", "Secret"):
        owner = claim["metadata"]["uid"] if kind == "Secret" else uid
        for o in list_kind(client, kind, ns, labels=labels):
            assert [r["uid"] for r in o["metadata"].get("ownerReferences", [])] == [owner], o["metadata"]["name"]
    # no duplicate: exactly the seed's workloads, one ReplicaSet per Deployment, 11 pods
    deployments = list_kind(client, "Deployment", ns)
    assert len(deployments) == 10
    replicasets = list_kind(client, "ReplicaSet", ns)
    assert sorted(r["metadata"]["ownerReferences"][0]["name"] for r in replicasets) == sorted(
        d["metadata"]["name"] for d in deployments
    ), "a second ReplicaSet means a needless re-roll"
    assert len(list_kind(client, "StatefulSet", ns)) == 1
    assert len([p for p in list_kind(client, "Pod", ns) if p["status"].get("phase") == "Running"]) == 11
    assert len(list_kind(client, "PersistentVolumeClaim", ns)) == 1
    secrets_after = {s["metadata"]["name"]: s["metadata"]["uid"] for s in list_kind(client, "Secret", ns)}
    assert {k: v for k, v in secrets_after.items() if k in secrets_before} == secrets_before, (
        "credentials made before the kill are kept"
    )
    # the restarted operator found no name held by a stranger and hit no error
    problems = [x for x in second.lines() if x.get("level") in ("warning", "error", "raw")]
    assert problems == [], problems[:5]
