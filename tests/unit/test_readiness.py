"""Readiness against an oracle nobody here wrote: the verdicts of ``kubectl rollout status``.

Every step waits on :func:`d3os_core.readiness.rollout`, so its rules are checked here against Kubernetes'
own, case by case. Each row is an object as the API server returns it (defaults filled in, as
``pkg/apis/apps/v1/defaults.go`` fills them: a StatefulSet created without an update strategy gets
``RollingUpdate`` with ``rollingUpdate.partition: 0``; one created with ``type: RollingUpdate`` alone keeps
no ``rollingUpdate``), and the verdict kubectl's ``pkg/polymorphichelpers/rollout_status.go`` gives for it,
worked out by hand from that file's rules:

* ``DONE``: "successfully rolled out" (exit 0);
* ``WAIT``: "Waiting for ..." (``--watch=false`` exits 0 but the rollout is not done);
* ``ERROR``: kubectl exits with an error (progress deadline exceeded; a strategy it cannot judge).

The operator maps them to ready / not ready / failed.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from d3os_core.readiness import Rollout, rollout

DONE, WAIT, ERROR = "done", "wait", "error"


def verdict(r: Rollout) -> str:
    assert not (r.ready and r.failed), r
    return DONE if r.ready else ERROR if r.failed else WAIT


def deploy(want: int = 3, generation: int = 1, conditions: list[dict[str, Any]] | None = None,
           **status: int) -> dict[str, Any]:
    st: dict[str, Any] = dict(status)
    if conditions is not None:
        st["conditions"] = conditions
    return {"kind": "Deployment", "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": want, "progressDeadlineSeconds": 600,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
            "status": st}


def progressing(reason: str, status: str = "True") -> dict[str, Any]:
    return {"type": "Progressing", "status": status, "reason": reason, "message": "..."}


PDE = [progressing("ProgressDeadlineExceeded", "False")]

DEPLOYMENT = [
    ("just created, nothing observed", deploy(), WAIT),
    ("generation 2 not yet observed, status of generation 1 complete",
     deploy(generation=2, observedGeneration=1, replicas=3, updatedReplicas=3, availableReplicas=3), WAIT),
    ("observedGeneration ahead of generation counts as observed",
     deploy(generation=1, observedGeneration=2, replicas=3, updatedReplicas=3, availableReplicas=3), DONE),
    ("progress deadline exceeded", deploy(observedGeneration=1, replicas=3, updatedReplicas=1,
                                          availableReplicas=2, conditions=PDE), ERROR),
    ("progress deadline exceeded but counts complete: still an error",
     deploy(observedGeneration=1, replicas=3, updatedReplicas=3, availableReplicas=3, conditions=PDE), ERROR),
    ("deadline condition of an unobserved generation: waiting, not failed",
     deploy(generation=2, observedGeneration=1, replicas=3, updatedReplicas=1, conditions=PDE), WAIT),
    ("other Progressing reasons are not failures",
     deploy(observedGeneration=1, replicas=3, updatedReplicas=3, availableReplicas=3,
            conditions=[progressing("NewReplicaSetAvailable")]), DONE),
    ("ReplicaFailure does not decide, counts do",
     deploy(observedGeneration=1, replicas=3, updatedReplicas=3, availableReplicas=3,
            conditions=[{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}]), DONE),
    ("1 of 3 new replicas updated", deploy(observedGeneration=1, replicas=4, updatedReplicas=1,
                                           availableReplicas=3), WAIT),
    ("all updated, 1 old replica still terminating",
     deploy(observedGeneration=1, replicas=4, updatedReplicas=3, availableReplicas=3), WAIT),
    ("all updated, old replicas gone, 2 of 3 available",
     deploy(observedGeneration=1, replicas=3, updatedReplicas=3, availableReplicas=2), WAIT),
    ("complete", deploy(observedGeneration=1, replicas=3, updatedReplicas=3, readyReplicas=3,
                        availableReplicas=3), DONE),
    ("scaled to zero", deploy(want=0, observedGeneration=1), DONE),
    ("scaled to zero, 2 old replicas still terminating", deploy(want=0, observedGeneration=1, replicas=2), WAIT),
    ("scaling down: more updated than desired is fine",
     deploy(want=2, observedGeneration=1, replicas=3, updatedReplicas=3, availableReplicas=3), DONE),
]


def sts(replicas: int = 3, generation: int = 1, strategy: dict[str, Any] | None = None,
        **status: Any) -> dict[str, Any]:
    return {"kind": "StatefulSet", "metadata": {"name": "mysql", "generation": generation},
            "spec": {"replicas": replicas, "podManagementPolicy": "OrderedReady",
                     "updateStrategy": strategy if strategy is not None
                     else {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
            "status": status}


EXPLICIT = {"type": "RollingUpdate"}  # created with only the type: the server adds no rollingUpdate
ONDELETE = {"type": "OnDelete"}


def part(n: int) -> dict[str, Any]:
    return {"type": "RollingUpdate", "rollingUpdate": {"partition": n}}


FULL = {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3,
        "currentRevision": "mysql-a", "updateRevision": "mysql-a"}

STATEFULSET = [
    ("just created, nothing observed", sts(), WAIT),
    ("observedGeneration 0 is never observed", sts(generation=0, **{**FULL, "observedGeneration": 0}), WAIT),
    ("generation 2 not yet observed", sts(generation=2, **{**FULL, "observedGeneration": 1}), WAIT),
    ("2 of 3 pods ready", sts(**{**FULL, "observedGeneration": 1, "readyReplicas": 2}), WAIT),
    ("complete", sts(**{**FULL, "observedGeneration": 1}), DONE),
    ("scaled to zero", sts(replicas=0, observedGeneration=1), DONE),
    # default strategy (partition 0): kubectl counts updated pods, it does not compare revisions
    ("partition 0: 2 of 3 pods at the update revision",
     sts(**{**FULL, "observedGeneration": 1, "updatedReplicas": 2, "currentReplicas": 1,
            "updateRevision": "mysql-b"}), WAIT),
    ("partition 0: back to the current revision mid-update, 1 pod still at the abandoned one",
     sts(**{**FULL, "observedGeneration": 2, "updatedReplicas": 2}, generation=2), WAIT),
    ("partition 0: all pods updated and ready, currentRevision not yet moved",
     sts(**{**FULL, "observedGeneration": 1, "currentReplicas": 0, "updateRevision": "mysql-b"}), DONE),
    ("partition 2 of 3: 1 pod updated is the whole rollout",
     sts(strategy=part(2), **{**FULL, "observedGeneration": 1, "updatedReplicas": 1, "currentReplicas": 2,
                              "updateRevision": "mysql-b"}), DONE),
    ("partition 1 of 3: 1 of 2 pods updated",
     sts(strategy=part(1), **{**FULL, "observedGeneration": 1, "updatedReplicas": 1, "currentReplicas": 2,
                              "updateRevision": "mysql-b"}), WAIT),
    ("partition above replicas: nothing to update", sts(strategy=part(5), **{
        **FULL, "observedGeneration": 1, "updatedReplicas": 0, "updateRevision": "mysql-b"}), DONE),
    ("partition: pods not ready still wait", sts(strategy=part(2), **{
        **FULL, "observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 1}), WAIT),
    # type RollingUpdate without rollingUpdate: kubectl compares revisions
    ("no rollingUpdate: revisions differ though every pod is ready",
     sts(strategy=EXPLICIT, **{**FULL, "observedGeneration": 1, "updateRevision": "mysql-b"}), WAIT),
    ("no rollingUpdate: revisions equal", sts(strategy=EXPLICIT, **{**FULL, "observedGeneration": 1}), DONE),
    ("no rollingUpdate: revisions equal but a pod not ready",
     sts(strategy=EXPLICIT, **{**FULL, "observedGeneration": 1, "readyReplicas": 2}), WAIT),
    ("OnDelete: kubectl cannot judge it, even when everything looks done",
     sts(strategy=ONDELETE, **{**FULL, "observedGeneration": 1}), ERROR),
    ("OnDelete, generation not observed: still an error (the strategy is checked first)",
     sts(strategy=ONDELETE, generation=2, observedGeneration=1), ERROR),
]


def ds(generation: int = 1, strategy: str = "RollingUpdate", **status: int) -> dict[str, Any]:
    rolling = {"rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}} if strategy == "RollingUpdate" else {}
    return {"kind": "DaemonSet", "metadata": {"name": "agent", "generation": generation},
            "spec": {"updateStrategy": {"type": strategy, **rolling}}, "status": status}


DS_FULL = {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 3,
           "numberReady": 3, "numberAvailable": 3}

DAEMONSET = [
    ("just created, nothing observed", ds(), WAIT),
    ("generation 2 not yet observed", ds(generation=2, observedGeneration=1, **DS_FULL), WAIT),
    ("2 of 3 nodes updated", ds(observedGeneration=1, **{**DS_FULL, "updatedNumberScheduled": 2}), WAIT),
    ("all updated, 2 of 3 available", ds(observedGeneration=1, **{**DS_FULL, "numberAvailable": 2}), WAIT),
    ("complete", ds(observedGeneration=1, **DS_FULL), DONE),
    ("no node to run on", ds(observedGeneration=1, desiredNumberScheduled=0), DONE),
    ("OnDelete: kubectl cannot judge it", ds(strategy="OnDelete", observedGeneration=1, **DS_FULL), ERROR),
]

CASES = [pytest.param(obj, want, id=f"{obj['kind']}: {what}")
         for what, obj, want in DEPLOYMENT + STATEFULSET + DAEMONSET]


@pytest.mark.parametrize(("obj", "kubectl"), CASES)
def test_verdict_is_kubectls(obj: dict[str, Any], kubectl: str) -> None:
    assert verdict(rollout(obj)) == kubectl


@pytest.mark.parametrize(("obj", "kubectl"), CASES)
def test_kind_argument_wins_over_a_missing_kind(obj: dict[str, Any], kubectl: str) -> None:
    """The planner passes the kind of the desired object; a live dict from a typed client may lack one."""
    bare = {k: v for k, v in obj.items() if k != "kind"}
    assert verdict(rollout(bare, obj["kind"])) == kubectl


def server_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores for a workload created without the defaulted fields (apps/v1 defaults.go)."""
    out = copy.deepcopy(obj)
    spec = out.setdefault("spec", {})
    kind = out["kind"]
    if kind in ("Deployment", "StatefulSet"):
        spec.setdefault("replicas", 1)
    if kind == "StatefulSet":
        strategy = spec.setdefault("updateStrategy", {})
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            strategy.setdefault("rollingUpdate", {})
        if strategy["type"] == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
            strategy["rollingUpdate"].setdefault("partition", 0)
    if kind == "DaemonSet":
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
    return out


UNDEFAULTED = [
    {"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {},
     "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 0,
                "currentRevision": "a", "updateRevision": "a"}},
    {"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 2},
     "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2,
                "currentRevision": "a", "updateRevision": "b"}},
    {"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"updateStrategy": {"rollingUpdate": {}}},
     "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 0}},
    {"kind": "Deployment", "metadata": {"generation": 1}, "spec": {},
     "status": {"observedGeneration": 1}},
    {"kind": "DaemonSet", "metadata": {"generation": 1}, "spec": {},
     "status": {"observedGeneration": 1, "desiredNumberScheduled": 1, "updatedNumberScheduled": 1,
                "numberAvailable": 1}},
]


@pytest.mark.parametrize("obj", UNDEFAULTED, ids=lambda o: o["kind"])
def test_missing_fields_read_as_the_server_defaults_them(obj: dict[str, Any]) -> None:
    """Objects built by hand (the fake cluster, a dry run) lack what the server fills in: they are judged as
    the object the server would store."""
    assert verdict(rollout(obj)) == verdict(rollout(server_defaults(obj)))


def test_undefaulted_cases_are_not_all_alike() -> None:
    """The defaulting test above means something only if its objects get different verdicts."""
    assert {verdict(rollout(server_defaults(o))) for o in UNDEFAULTED} == {DONE, WAIT}


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not a workload kind"):
        rollout({"kind": "ReplicaSet"})
