"""The kstatus conditions (Reconciling, Stalled) on every status the planner produces, and what kstatus
concludes from them: never Current before Ready, Failed when nothing moves without someone's change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from d3os_core import crd
from d3os_core.fake import FakeCluster
from d3os_core.status import STALLED_REASONS, with_kstatus

from .helpers import DATASERVICE, condition, sample
from .kstatus import verdict
from .test_plan_lifecycle import World, unschedulable, unschedulable_upgrade, with_deadline

NOW = "2026-01-01T00:00:00Z"


def cond(type_: str, status: bool, reason: str, message: str = "m") -> dict[str, Any]:
    return {"type": type_, "status": "True" if status else "False", "reason": reason, "message": message,
            "observedGeneration": 1, "lastTransitionTime": NOW}


def ks(*conds: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    out = with_kstatus(list(conds), 1, NOW, [])
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in out if c["type"] in ("Reconciling", "Stalled")}


CASES = {
    # name: (Ready, Progressing, Degraded) -> (Reconciling, Stalled)
    "rolling out": ((False, "RollingOut"), (True, "RollingOut"), (False, "AsExpected"),
                    ("True", "RollingOut"), ("False", "AsExpected")),
    "ready": ((True, "AllComponentsReady"), (False, "Complete"), (False, "AsExpected"),
              ("False", "Complete"), ("False", "AsExpected")),
    "pruning": ((True, "AllComponentsReady"), (True, "Pruning"), (False, "AsExpected"),
                ("True", "Pruning"), ("False", "AsExpected")),
    "deadline": ((False, "ComponentFailed"), (False, "Stalled"), (True, "ProgressDeadlineExceeded"),
                 ("False", "Stalled"), ("True", "ProgressDeadlineExceeded")),
    "conflict beside a rollout": ((False, "Conflict"), (True, "RollingOut"), (True, "Conflict"),
                                  ("True", "RollingOut"), ("False", "RollingOut")),
    "rolling back": ((False, "ComponentFailed"), (True, "RollingBack"), (True, "RolledBack"),
                     ("True", "RollingBack"), ("False", "RollingBack")),
    "rolled back": ((False, "RolledBack"), (False, "RolledBack"), (True, "RolledBack"),
                    ("False", "RolledBack"), ("True", "RolledBack")),
    "suspended": ((False, "Suspended"), (False, "Suspended"), (False, "AsExpected"),
                  ("False", "Suspended"), ("False", "AsExpected")),
    "reconcile error (retried)": ((False, "ReconcileError"), (False, "ReconcileError"), (True, "ReconcileError"),
                                  ("False", "ReconcileError"), ("False", "ReconcileError")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reconciling_and_stalled_mirror_our_conditions(name: str) -> None:
    (r, rr), (p, pr), (d, dr), want_rec, want_stall = CASES[name]
    got = ks(cond("Ready", r, rr, "ready says"), cond("Progressing", p, pr, "progressing says"),
             cond("Degraded", d, dr, "degraded says"))
    assert got["Reconciling"][:2] == want_rec
    assert got["Stalled"][:2] == want_stall
    if got["Reconciling"][0] == "True":
        assert got["Reconciling"][2] == "progressing says"
    if got["Stalled"][0] == "True":
        assert got["Stalled"][2] == "degraded says", "Stalled carries the message of what failed"


@pytest.mark.parametrize("reason", sorted(STALLED_REASONS))
def test_each_reason_that_needs_a_change_stalls(reason: str) -> None:
    got = ks(cond("Ready", False, reason), cond("Progressing", False, reason), cond("Degraded", True, reason))
    assert got["Stalled"][:2] == ("True", reason) and got["Reconciling"][0] == "False"


def test_deleted_has_only_ready_to_mirror() -> None:
    got = ks(cond("Ready", False, "Deleted", "gone"))
    assert got == {"Reconciling": ("False", "Deleted", "gone"), "Stalled": ("False", "Deleted", "gone")}


def test_the_crd_makes_an_unobserved_dataservice_lag_its_generation() -> None:
    """The API server fills the status defaults in; with them kstatus reads InProgress, without them Current."""
    schema = crd.crd_manifest(DATASERVICE)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    defaulted = copy.deepcopy(schema["default"])
    for key, prop in schema["properties"].items():
        if "default" in prop:
            defaulted.setdefault(key, prop["default"])
    ds = sample()
    assert verdict(ds) == "Current", "no status at all: what kstatus would say without the defaults"
    assert verdict({**ds, "status": defaulted}) == "InProgress"


# -- every status of real scenarios ----------------------------------------------------------------------------


class Checked(World):
    """A World whose every status is checked against the kstatus rules, keeping the verdicts seen."""

    def __init__(self, ds: dict[str, Any], fc: FakeCluster | None = None) -> None:
        super().__init__(ds, fc)
        self.seen: list[str] = []

    def record(self, p: Any) -> None:
        super().record(p)
        ds = self.ds
        ready, stalled = condition(ds, "Ready"), condition(ds, "Stalled")
        reconciling = condition(ds, "Reconciling")
        assert not (reconciling["status"] == "True" and stalled["status"] == "True"), ds["status"]["conditions"]
        progressing = next((c for c in ds["status"]["conditions"] if c["type"] == "Progressing"), None)
        assert reconciling["status"] == (progressing or {"status": "False"})["status"]
        v = verdict(ds)
        if ready["status"] != "True":
            assert v != "Current", ds["status"]["conditions"]
        if stalled["status"] == "True":
            assert v == "Failed" and ready["status"] == "False"
        self.seen.append(v if not self.seen or self.seen[-1] != v else self.seen.pop())


def test_a_rollout_is_in_progress_until_ready_then_current() -> None:
    w = Checked(sample())
    w.converge()
    assert w.seen == ["InProgress", "Current"]
    w.change(lambda s: s["web"].update(image="web:v2"))
    assert verdict(w.ds) == "InProgress", "a spec change lags until the operator sees it"
    w.converge()
    assert w.seen[-1] == "Current"


def test_a_step_past_its_deadline_fails_and_recovers() -> None:
    w = Checked(with_deadline(10))
    w.stuck = {"mysql-dataservice"}
    w.pods = {"mysql": (unschedulable("mysql-dataservice-0"),)}
    w.step()
    w.step(11.0)
    assert condition(w.ds, "Stalled")["reason"] == "ProgressDeadlineExceeded"
    assert "mysql-dataservice-0 Pending" in condition(w.ds, "Stalled")["message"]
    assert w.seen[-1] == "Failed"
    w.stuck = set()
    w.converge()
    assert w.seen[-2:] == ["InProgress", "Current"]


def test_a_rollback_is_in_progress_then_failed_rolled_back() -> None:
    w = Checked(with_deadline(10, rollbackOnFailure=True))
    w.converge()
    w.change(unschedulable_upgrade)
    w.stuck = {"mysql-dataservice"}
    w.step()
    w.step(10.0)
    assert condition(w.ds, "Reconciling")["reason"] == "RollingBack"
    w.stuck = set()
    for _ in range(40):
        w.step()
    assert condition(w.ds, "Stalled")["reason"] == "RolledBack"
    assert w.seen[-1] == "Failed"


def test_a_conflict_fails_once_nothing_else_moves() -> None:
    fc = FakeCluster()
    fc.objects[("ConfigMap", "web")] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "web", "namespace": "default", "uid": "foreign-web"}}
    w = Checked(sample(), fc)
    for _ in range(20):
        w.step()
    assert condition(w.ds, "Stalled")["reason"] == "Conflict" and w.seen[-1] == "Failed"


def test_an_invalid_spec_fails_and_suspend_waits() -> None:
    ds = sample()
    ds["spec"]["mysql"]["kind"] = 7
    w = Checked(ds)
    w.step()
    assert condition(w.ds, "Stalled")["reason"] == "InvalidSpec" and w.seen == ["Failed"]
    s = Checked(with_deadline(10, suspend=True))
    s.step()
    s.step(20.0)
    assert s.seen == ["InProgress"] and condition(s.ds, "Reconciling")["reason"] == "Suspended"


def test_deleting_is_reconciling() -> None:
    w = Checked(sample())
    w.converge()
    w.ds["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    w.step()
    assert condition(w.ds, "Reconciling")["status"] == "True"
    assert condition(w.ds, "Reconciling")["reason"] == "Deleting"
    assert w.seen[-1] == "Terminating"
