"""Objects being deleted (issue 12 A, DESIGN.md §3 "Cache truth"): an object with ``metadata.deletionTimestamp``
is neither deleted again nor counted as up to date; the core waits for it to go, then creates the new form.

The fake cluster deletes slowly here (``slow_deletes``: a delete only marks the object terminating, as
foreground propagation does) and ``finish_deletions`` plays the garbage collector finishing.
"""

from __future__ import annotations

from typing import Any

from d3os_core import FINALIZER, Facts, plan
from d3os_core.fake import FakeCluster

from .helpers import DATASERVICE, Driver, condition, sample

STS = ("StatefulSet", "mysql-dataservice")


def slow_ready_driver() -> Driver:
    d = Driver(sample(), FakeCluster(slow_deletes=True))
    d.converge()
    d.fc.applied.clear()
    d.fc.delete_requests.clear()
    return d


def pvc_uid(fc: FakeCluster) -> str:
    return str(fc.objects[("PersistentVolumeClaim", "data-mysql-dataservice-0")]["metadata"]["uid"])


def to_third_party(s: dict[str, Any]) -> None:
    s["mysql"].update(kind=3, thirdParty={"url": "jdbc:mysql://db.example.com:3306/ds"})


def to_statefulset(s: dict[str, Any]) -> None:
    s["mysql"].update(kind=1, thirdParty=None)


def converge_until_pruning(d: Driver, limit: int = 60) -> None:
    for _ in range(limit):
        d.step()
        if d.fc.delete_requests:
            return
    raise AssertionError(d.ds["status"].get("message"))


def test_a_stale_object_being_deleted_is_asked_once_and_shown_as_pruning() -> None:
    d = slow_ready_driver()
    d.change(to_third_party)
    converge_until_pruning(d)
    assert d.fc.delete_requests.count(STS) == 1
    assert d.fc.objects[STS]["metadata"].get("deletionTimestamp")
    for _ in range(5):  # the watch keeps delivering it (still terminating): no second delete
        p = d.step()
        assert STS not in [(r.kind, r.name) for r in p.delete], p.delete
        assert d.ready, "the product is ready on the third party while the old workload goes"
        progressing = condition(d.ds, "Progressing")
        assert (progressing["status"], progressing["reason"]) == ("True", "Pruning"), progressing
        assert p.requeue_after is not None, "a safety-net requeue while something is still going"
    assert d.fc.delete_requests.count(STS) == 1
    d.fc.finish_deletions()
    p = d.step()
    assert not p.delete and not p.apply
    progressing = condition(d.ds, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "Complete"), progressing


def test_switch_back_while_the_old_statefulset_terminates_waits_then_creates_it() -> None:
    """The round trip of finding 1: 1 -> 3 -> 1 with the StatefulSet still terminating when the spec
    comes back. Its hash equals the desired one again: it still must not count as up to date."""
    d = slow_ready_driver()
    uid = pvc_uid(d.fc)
    d.change(to_third_party)
    converge_until_pruning(d)
    terminating_uid = d.fc.objects[STS]["metadata"]["uid"]
    d.change(to_statefulset)
    for _ in range(6):
        p = d.step()
        assert STS not in [(a.manifest["kind"], a.manifest["metadata"]["name"]) for a in p.apply], "not applied"
        assert STS not in [(r.kind, r.name) for r in p.delete], "not deleted again"
        mysql = d.component("mysql")
        assert mysql["state"] == "Progressing" and not mysql["ready"], mysql
        assert "StatefulSet/mysql-dataservice to finish terminating" in mysql["message"], mysql
        assert condition(d.ds, "Ready")["status"] == "False"
        assert p.requeue_after is not None
    assert d.fc.delete_requests.count(STS) == 1
    assert d.fc.objects[STS]["metadata"]["uid"] == terminating_uid
    d.fc.finish_deletions()
    p = d.step()
    creates = [(a.manifest["kind"], a.manifest["metadata"]["name"]) for a in p.apply if a.create]
    assert STS in creates, p.apply
    d.converge()
    assert d.fc.objects[STS]["metadata"]["uid"] != terminating_uid
    assert not d.fc.objects[STS]["metadata"].get("deletionTimestamp")
    assert pvc_uid(d.fc) == uid, "the claim is the same one"
    assert d.fc.delete_requests.count(STS) == 1


def test_storage_kind_switch_creates_the_new_workload_only_after_the_old_is_gone() -> None:
    d = slow_ready_driver()
    uid = pvc_uid(d.fc)
    d.change(lambda s: s["mysql"].update(kind=0))
    p = d.step(settle=False)
    assert [(r.kind, r.name) for r in p.delete] == [STS]
    for _ in range(4):
        p = d.step(settle=False)
        assert not p.delete, "asked once"
        assert "Deployment" not in {a.manifest["kind"] for a in p.apply}
        assert ("Deployment", "mysql-dataservice") not in d.fc.objects
    d.fc.finish_deletions()
    d.converge()
    assert ("Deployment", "mysql-dataservice") in d.fc.objects and STS not in d.fc.objects
    assert d.fc.delete_requests == [STS]
    assert pvc_uid(d.fc) == uid


def test_a_terminating_object_is_not_up_to_date_even_with_the_desired_hash() -> None:
    """Someone deletes the Deployment of a ready component (finalizers keep it a while): not Ready, not
    deleted again, re-created once gone."""
    d = slow_ready_driver()
    dep = d.fc.objects[("Deployment", "auth")]
    dep["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    d.fc.touch(("Deployment", "auth"))
    p = d.step()
    auth = d.component("auth")
    assert not auth["ready"] and "Deployment/auth to finish terminating" in auth["message"], auth
    assert not p.delete and ("Deployment", "auth") not in [
        (a.manifest["kind"], a.manifest["metadata"]["name"]) for a in p.apply]
    assert condition(d.ds, "Ready")["status"] == "False"
    d.fc.finish_deletions()
    p = d.step()
    assert ("Deployment", "auth") in [(a.manifest["kind"], a.manifest["metadata"]["name"]) for a in p.apply if a.create]
    d.converge()


def test_deletion_of_the_dataservice_does_not_delete_a_terminating_child_again() -> None:
    d = slow_ready_driver()
    d.ds["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    first = plan(d.ds, d.fc.observed(), Facts(now="2026-01-01T00:01:00Z"), DATASERVICE)
    assert first.delete
    d.fc.carry_out(first)
    again = plan(d.ds, d.fc.observed(), Facts(now="2026-01-01T00:01:01Z"), DATASERVICE)
    assert not again.delete and again.finalizer is None
    assert FINALIZER in d.ds["metadata"]["finalizers"]
