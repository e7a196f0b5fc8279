"""Issue 12 A, finding 1: mysql's kind switched back and forth, again and again, with four workers.

Each round switches mysql 1 -> 3 -> 1, 1 -> 0 -> 1 and 1 -> 0 -> 3 -> 1 (so 1->3, 3->1, 1->0, 0->1 and
0->3 each happen). After every switch: the DataService is Ready at the new generation, mysql's workload of
the chosen kind exists and is rolled out (kind 3: the third party's check succeeds), the old workload goes,
and it was asked to go once (the API server's audit log: one DELETE from the operator); the data claim
keeps its UID throughout. After every round the operator's
caches equal a fresh LIST. ``D3OS_KINDSWITCH_ROUNDS`` sets the number of rounds (default 2).

The third party is a TCP stand-in on 127.0.0.1. Operator settings are in :data:`OPERATOR_SETTINGS`: a
probe target policy that refuses loopback by default has to be told to allow it there.
"""

from __future__ import annotations

import collections
import copy
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lightkube import Client

from d3os_core.readiness import rollout
from d3os_operator.controller import Settings
from d3os_operator.kube import USER_AGENT
from d3os_testenv import audit, harness

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.cachetruth")
from .cachetruth import assert_cache_is_true, in_process_snapshot  # noqa: E402
from .standin import Env, StandIn, ensure_volumes, figures_out, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

ROUNDS = int(os.environ.get("D3OS_KINDSWITCH_ROUNDS", "2"))
ROUND = (3, 1, 0, 1, 0, 3, 1)
"""mysql's kind after each switch of one round, starting from the sample's 1."""
WORKLOAD = {0: "Deployment", 1: "StatefulSet"}
NAME = "mysql-dataservice"
CLAIM = "data-mysql-dataservice-0"
OPERATOR_SETTINGS: dict[str, Any] = {"workers": 4}
"""Settings of the operator under test, besides its namespace (extend here, e.g. a probe policy)."""


@pytest.fixture
def env4(k8s_cluster: Any, k8s_namespace: str, client: Client, crd: None, uuc: StandIn) -> Iterator[Env]:
    ensure_volumes(client)
    settings = Settings(namespaces=[k8s_namespace], **OPERATOR_SETTINGS)
    with harness.RunningOperator(k8s_cluster.kubeconfig, settings=settings) as op:
        e = Env(k8s_cluster, client, k8s_namespace, uuc, op)
        try:
            yield e
        finally:
            e.close()
            harness.delete_dataservices(client, k8s_namespace)


def _manifest(sample: dict[str, Any], kind: int, tp: StandIn) -> dict[str, Any]:
    m = copy.deepcopy(sample)
    m["spec"]["mysql"]["kind"] = kind
    if kind == 3:
        m["spec"]["mysql"]["thirdParty"] = {"url": f"mysql://127.0.0.1:{tp.port}",
                                            "checkCMD": f"nc -z -w 2 127.0.0.1 {tp.port}"}
    else:
        m["spec"]["mysql"]["thirdParty"] = None
    return m


def _claim_uid(env: Env) -> str:
    claim = env.obj("PersistentVolumeClaim", CLAIM)
    assert claim is not None, "the data claim exists"
    assert not claim["metadata"].get("deletionTimestamp"), "the data claim is not being deleted"
    return str(claim["metadata"]["uid"])


PLURAL = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


def _deletes(env: Env, since: float) -> collections.Counter[tuple[str, str]]:
    """DELETE requests the operator sent in this namespace since ``since`` (epoch s), by the API server's audit
    log: kind (plural) and name."""
    return collections.Counter(
        (r.resource, r.name)
        for r in audit.read(env.cluster.audit_log, since=since, agent=USER_AGENT)
        if r.verb == "delete" and r.namespace == env.namespace
    )


def _check_switch(env: Env, kind: int, previous: int, claim_uid: str, mark: float) -> None:
    ds = env.ds()
    assert ds is not None and harness.is_ready(ds)
    mysql = next(c for c in ds["status"]["components"] if c["name"] == "mysql")
    assert mysql["ready"] and mysql["state"] == "Ready", mysql
    if kind in WORKLOAD:
        live = env.obj(WORKLOAD[kind], NAME)
        assert live is not None, f"{WORKLOAD[kind]}/{NAME} exists (status says {mysql})"
        assert not live["metadata"].get("deletionTimestamp"), "a terminating workload is not a Ready one"
        ro = rollout(live, WORKLOAD[kind])
        assert ro.ready, (WORKLOAD[kind], ro.message)
    else:
        assert "succeeded" in mysql["message"], mysql
    old = WORKLOAD.get(previous)
    if old is not None and old != WORKLOAD.get(kind):
        wait_for(f"{old}/{NAME} to go", lambda: env.obj(old, NAME) is None, 120)
        # the audit backend writes in batches (at most a second late): wait for the DELETE, then a flush more
        wait_for(f"the audit log to show {old}/{NAME}'s DELETE", lambda: _deletes(env, mark)[(PLURAL[old], NAME)], 30)
        time.sleep(1.5)
        asked = _deletes(env, mark)[(PLURAL[old], NAME)]
        assert asked == 1, f"{old}/{NAME} was asked to go {asked} times in this switch"
    for other in WORKLOAD.values():
        if other != WORKLOAD.get(kind):
            wait_for(f"no {other}/{NAME}", lambda o=other: env.obj(o, NAME) is None, 120)
    assert _claim_uid(env) == claim_uid, "the same claim (same UID) every time"


def test_mysql_kind_switches_back_and_forth_with_four_workers(env4: Env, sample: dict[str, Any]) -> None:
    env = env4
    assert env.operator.settings.workers == 4
    env.apply(sample)
    env.wait_ready()
    claim_uid = _claim_uid(env)
    timings: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    kind = 1
    with StandIn(path="/") as tp:
        for r in range(ROUNDS):
            for new in ROUND:
                mark = time.time()  # the audit log stamps requests with the API server's clock: this machine's
                gen = env.ds()["metadata"]["generation"]  # type: ignore[index]
                t0 = time.monotonic()
                env.apply(_manifest(sample, new, tp))
                env.wait_ready(generation=gen + 1, timeout=300)
                timings.append({"round": r + 1, "switch": f"{kind}->{new}", "ready_s": round(time.monotonic() - t0, 1)})
                _check_switch(env, new, kind, claim_uid, mark)
                kind = new
            truth.append(assert_cache_is_true(env.client, in_process_snapshot(env.operator), [env.namespace]))
    assert kind == 1
    sts = env.obj("StatefulSet", NAME)
    assert sts is not None and rollout(sts, "StatefulSet").ready
    figures_out("kindswitch_loops", {"rounds": ROUNDS, "switches": len(timings), "workers": 4,
                                     "claim_uid_unchanged": True, "switches_s": timings, "cache_truth": truth})
