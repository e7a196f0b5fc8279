"""Issue 26 item 8: ``status.summary``, the STATUS column of ``kubectl get``, in one word the issue names
(Ready / Progressing / Degraded / Stalled / Suspended / Deleting), on every status of real scenarios; it agrees
with kstatus' verdict (Flux's, Helm 4's) where the two overlap: Stalled exactly when kstatus says Failed, Ready
only when it says Current, Deleting exactly when it says Terminating."""

from __future__ import annotations

from typing import Any

from d3os_core.crd import crd_manifest
from d3os_core.fake import FakeCluster

from .helpers import DATASERVICE, sample
from .kstatus import verdict
from .test_plan_lifecycle import World, unschedulable, unschedulable_upgrade, with_deadline

WORDS = {"Ready", "Progressing", "Degraded", "Stalled", "Suspended", "Deleting"}


class Seen(World):
    """A World that keeps the distinct successive summaries, each checked against kstatus."""

    def __init__(self, ds: dict[str, Any], fc: FakeCluster | None = None) -> None:
        super().__init__(ds, fc)
        self.seen: list[str] = []

    def record(self, p: Any) -> None:
        super().record(p)
        word = self.ds["status"]["summary"]
        assert word in WORDS
        ks = verdict(self.ds)
        assert (word == "Stalled") == (ks == "Failed"), (word, ks)
        assert (word == "Deleting") == (ks == "Terminating"), (word, ks)
        if word == "Ready":
            assert ks == "Current"
        if not self.seen or self.seen[-1] != word:
            self.seen.append(word)


def test_a_rollout_is_progressing_then_ready() -> None:
    w = Seen(sample())
    w.converge()
    assert w.seen == ["Progressing", "Ready"]


def test_a_step_past_its_deadline_stalls_then_recovers() -> None:
    w = Seen(with_deadline(10))
    w.stuck = {"mysql-dataservice"}
    w.pods = {"mysql": (unschedulable("mysql-dataservice-0"),)}
    w.step()
    w.step(11.0)
    assert w.seen == ["Progressing", "Stalled"]
    w.stuck = set()
    w.converge()
    assert w.seen == ["Progressing", "Stalled", "Progressing", "Ready"]


def test_a_rollback_is_degraded_while_it_moves_then_stalled() -> None:
    w = Seen(with_deadline(10, rollbackOnFailure=True))
    w.converge()
    w.change(unschedulable_upgrade)
    w.stuck = {"mysql-dataservice"}
    w.step()
    w.step(10.0)
    assert w.seen[-1] == "Degraded", "rolling back: a failure, and something still moves"
    w.stuck = set()
    for _ in range(40):
        w.step()
    assert w.seen[-1] == "Stalled" and "Degraded" in w.seen


def test_a_conflict_beside_a_rollout_is_degraded_then_stalled() -> None:
    fc = FakeCluster()
    fc.objects[("ConfigMap", "web")] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "web", "namespace": "default", "uid": "foreign-web"}}
    w = Seen(sample(), fc)
    for _ in range(20):
        w.step()
    assert w.seen == ["Degraded", "Stalled"], "the conflict from the first pass, while mysql… still roll"


def test_an_invalid_spec_stalls_suspend_says_suspended_deletion_deleting() -> None:
    ds = sample()
    ds["spec"]["mysql"]["kind"] = 7
    w = Seen(ds)
    w.step()
    assert w.seen == ["Stalled"]
    s = Seen(with_deadline(10, suspend=True))
    s.step()
    s.step(20.0)
    assert s.seen == ["Suspended"]
    d = Seen(sample())
    d.converge()
    d.ds["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    for _ in range(30):
        if not d.ds["metadata"].get("finalizers"):
            break
        d.step()
    assert d.seen == ["Progressing", "Ready", "Deleting"]


def test_the_status_column_reads_it() -> None:
    version = crd_manifest(DATASERVICE)["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Status"] == ".status.summary"
    summary = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["summary"]
    assert set(summary["enum"]) == WORDS
