"""Credentials live as long as their data (issue 12, D): mysql's generated credentials Secret is owned by
its claim, not by the DataService, so both outlive the DataService and neither is regenerated while the
other exists. Tables of histories on the core's plan and FakeCluster (whose ``remove`` plays the garbage
collector): after each, the password is the one the database was initialised with and the claim is the
same object; each pass draws a new random seed, as the shell does."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import pytest

from d3os_core import Facts, api, plan
from d3os_core.credentials import ANNOTATION_CREDENTIALS, ANNOTATION_CREDENTIALS_UID, LOST, LOST_REASON, opened_with
from d3os_core.fake import FakeCluster
from d3os_core.types import Plan

from .helpers import DATASERVICE, Driver, sample

SECRET = ("Secret", "mysql-dataservice-credentials")
CLAIM = ("PersistentVolumeClaim", "data-mysql-dataservice-0")


class Life(Driver):
    """A namespace over time: DataServices come and go (new uids), the fake cluster stays (converge and ready
    as :class:`Driver`'s; each pass draws a new seed)."""

    def __init__(self) -> None:
        self.n = 0
        self.uids = 0
        super().__init__(self.new_dataservice(), FakeCluster())

    def new_dataservice(self, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        self.uids += 1
        ds = sample(uid=f"ds-uid-{self.uids}", finalizers=[])
        if spec is not None:
            ds["spec"] = copy.deepcopy(spec)
        return ds

    def step(self) -> Plan:
        self.n += 1
        p = plan(self.ds, self.fc.observed(), Facts(now=f"2026-01-01T00:{self.n // 60:02d}:{self.n % 60:02d}Z",
                                                   secret_seed=f"seed-{self.n}"), DATASERVICE)
        self.record(p)
        written = set(self.fc.objects)
        for a in p.apply:  # a claim records only credentials that exist or were written before it
            key = (a.manifest["kind"], a.manifest["metadata"]["name"])
            if key[0] == CLAIM[0] and opened_with(a.manifest):
                assert ("Secret", opened_with(a.manifest)) in written, f"{key} records unwritten credentials"
            written.add(key)
        self.fc.carry_out(p)
        self.fc.settle()
        return p

    def change(self, mutate: Callable[[dict[str, Any]], None]) -> None:
        super().change(mutate)
        self.converge()

    def delete(self, *, finalizer_runs: bool = True) -> None:
        """``kubectl delete dataservice``: the operator's ordered teardown (if it runs), then the garbage
        collector for whatever the DataService still owned."""
        if finalizer_runs:
            self.ds["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
            for _ in range(40):
                if self.step().finalizer == "remove":
                    break
            else:
                raise AssertionError("the finalizer was never released")
        self.fc.remove("DataService", self.ds["metadata"]["name"], owner_uid=self.ds["metadata"]["uid"])

    def recreate(self) -> None:
        self.ds = self.new_dataservice(self.ds["spec"])
        self.converge()

    def component(self, key: str) -> dict[str, Any]:
        return next(c for c in self.ds["status"]["components"] if c["name"] == key)

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.ds["status"]["conditions"] if c["type"] == type_)


def password(fc: FakeCluster, key: tuple[str, str] = SECRET) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in fc.objects[key]["data"].items()}


def uid(fc: FakeCluster, key: tuple[str, str]) -> str:
    return str(fc.objects[key]["metadata"]["uid"])


@pytest.fixture
def life() -> Life:
    life = Life()
    life.converge()
    return life


def test_the_secret_is_owned_by_its_claim_and_written_before_it() -> None:
    life = Life()
    first = life.step()
    kinds = [a.manifest["kind"] for a in first.apply if a.component == "mysql"]
    assert kinds.index("Secret") < kinds.index("PersistentVolumeClaim"), kinds
    secret = next(a.manifest for a in first.apply if a.manifest["kind"] == "Secret")
    assert "ownerReferences" not in secret["metadata"], "no owner until the claim exists"
    life.converge()
    secret, claim = life.fc.objects[SECRET], life.fc.objects[CLAIM]
    assert secret["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": CLAIM[1], "uid": claim["metadata"]["uid"]}
    ]
    assert "ownerReferences" not in claim["metadata"]
    first_claim = next(a.manifest for a in first.apply if a.manifest["kind"] == "PersistentVolumeClaim")
    assert first_claim["metadata"]["annotations"][ANNOTATION_CREDENTIALS] == SECRET[1], (
        "the claim records the credentials its data is opened with, written after them in the same pass")
    assert claim["metadata"]["annotations"][ANNOTATION_CREDENTIALS] == secret["metadata"]["name"]
    for obj in (secret, claim):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "d3os-operator"
        assert labels["app.kubernetes.io/instance"] == "dataservice-sample"
    writes = {kind: len([a for p in life.plans for a in p.apply if a.manifest["kind"] == kind])
              for kind in ("Secret", "PersistentVolumeClaim")}
    assert writes == {"Secret": 2, "PersistentVolumeClaim": 1}, (
        "the Secret is written once, then tied to its claim once (its uid is known only then); the claim once")


def test_a_first_rollout_writes_every_object_once_but_the_secret_tied_to_its_claim() -> None:
    life = Life()
    life.converge()
    applied = [(a.manifest["kind"], a.manifest["metadata"]["name"]) for p in life.plans for a in p.apply]
    twice = sorted({k for k in applied if applied.count(k) > 1})
    assert twice == [SECRET], f"objects applied more than once in a first rollout: {twice}"
    assert applied.count(SECRET) == 2


def _rename(name: str) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        spec["mysql"]["name"] = name
    return mutate


def _kind(kind: int, port: int = 3306) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        spec["mysql"]["kind"] = kind
        spec["mysql"]["thirdParty"] = {"checkCMD": f"nc -z db.example.com {port}"} if kind == 3 else None
    return mutate


HISTORIES: dict[str, Callable[[Life], None]] = {
    "deleted (ordered teardown) and re-created": lambda life: (life.delete(), life.recreate()),
    "deleted with the operator away (garbage collector only) and re-created":
        lambda life: (life.delete(finalizer_runs=False), life.recreate()),
    "deleted and re-created twice": lambda life: (life.delete(), life.recreate(), life.delete(), life.recreate()),
    "mysql renamed and renamed back": lambda life: (life.change(_rename("mysql-two")),
                                                   life.change(_rename("mysql-dataservice"))),
    "mysql renamed, deleted, re-created, renamed back": lambda life: (
        life.change(_rename("mysql-two")), life.delete(), life.recreate(), life.change(_rename("mysql-dataservice"))),
    "kind 1 -> 3 -> 1": lambda life: (life.change(_kind(3)), life.change(_kind(1))),
    "kind 1 -> 0 -> 1": lambda life: (life.change(_kind(0)), life.change(_kind(1))),
    "kind 1 -> 3, deleted, re-created, -> 1": lambda life: (
        life.change(_kind(3)), life.delete(), life.recreate(), life.change(_kind(1))),
}


@pytest.mark.parametrize("history", list(HISTORIES))
def test_the_same_password_opens_the_same_data(life: Life, history: str) -> None:
    before, claim = password(life.fc), uid(life.fc, CLAIM)
    HISTORIES[history](life)
    assert life.ready
    assert password(life.fc) == before, "the credentials the database was initialised with"
    assert uid(life.fc, CLAIM) == claim, "the same claim"
    sts = life.fc.objects[("StatefulSet", "mysql-dataservice")]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]
           if "valueFrom" in e}
    assert env["MYSQL_PASSWORD"] == {"name": SECRET[1], "key": "password"}
    assert ("PersistentVolumeClaim", CLAIM[1]) not in life.fc.deleted and SECRET not in life.fc.deleted


def test_a_renamed_mysql_keeps_the_old_claim_and_credentials_apart(life: Life) -> None:
    before = password(life.fc)
    life.change(_rename("mysql-two"))
    other = ("Secret", "mysql-two-credentials")
    assert password(life.fc) == before, "the old name's credentials are kept, not pruned"
    assert password(life.fc, other) != before, "the new name has its own data and credentials"
    assert life.fc.objects[other]["metadata"]["ownerReferences"][0]["name"] == "data-mysql-two-0"


def test_deleting_the_dataservice_keeps_exactly_the_data_and_its_credentials(life: Life) -> None:
    life.delete()
    assert sorted(life.fc.objects) == [CLAIM, SECRET]
    last = life.plans[-1]
    assert last.finalizer == "remove"
    assert "credentials" in last.events[0].message


def test_removing_the_claim_removes_its_credentials_and_starts_afresh(life: Life) -> None:
    before = password(life.fc)
    life.delete()
    life.fc.remove(*CLAIM)  # the documented way to remove the data for good
    assert life.fc.objects == {}, "the garbage collector took the Secret with its claim"
    life.recreate()
    assert password(life.fc) != before, "new data, new credentials"


def test_lost_credentials_are_never_regenerated_for_existing_data(life: Life) -> None:
    before = copy.deepcopy(life.fc.objects[SECRET])
    life.fc.remove(*SECRET)  # kubectl delete secret, by hand
    for _ in range(3):
        p = life.step()
        assert not [a for a in p.apply if a.component == "mysql"], "nothing of mysql is written"
    mysql = life.component("mysql")
    assert mysql["state"] == "Failed" and mysql["message"].startswith(LOST), mysql
    for words in (CLAIM[1], SECRET[1], "password", "root-password", "delete the claim",
                  "app.kubernetes.io/instance=dataservice-sample"):
        assert words in mysql["message"], words
    degraded = life.condition("Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", LOST_REASON)
    assert life.condition("Ready")["reason"] == "ComponentFailed"
    assert any(e.type == "Warning" and e.reason == "ComponentFailed" for p in life.plans[-3:] for e in p.events)
    # the person restores it as the message says (old values, our labels): the rollout goes on with it
    restored = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": before["data"],
                "metadata": {"name": SECRET[1], "namespace": "default", "labels": before["metadata"]["labels"]}}
    life.fc.put(restored)
    life.converge()
    assert life.fc.objects[SECRET]["data"] == before["data"]
    assert life.fc.objects[SECRET]["metadata"]["ownerReferences"][0]["uid"] == uid(life.fc, CLAIM)


def test_credentials_of_a_claim_that_is_gone_are_waited_out_not_reused(life: Life) -> None:
    before, claim = password(life.fc), uid(life.fc, CLAIM)
    del life.fc.objects[CLAIM]  # the claim went; the garbage collector has not reached its Secret yet
    for _ in range(2):
        p = life.step()  # (settling, the fake StatefulSet controller re-creates the claim, empty, as the real one does)
        assert not [a for a in p.apply if a.component == "mysql"]
        mysql = life.component("mysql")
        assert mysql["state"] == "Progressing" and "waiting for Secret/" in mysql["message"], mysql
    assert uid(life.fc, CLAIM) != claim and ANNOTATION_CREDENTIALS not in life.fc.objects[CLAIM]["metadata"].get(
        "annotations", {})
    life.fc.remove(*SECRET)  # the garbage collector
    life.converge()  # an empty claim that records no credentials gets fresh ones: no person needed
    assert password(life.fc) != before
    assert life.fc.objects[SECRET]["metadata"]["ownerReferences"][0]["uid"] == uid(life.fc, CLAIM)


def test_a_secret_of_an_earlier_dataservice_of_the_same_name_is_waited_out(life: Life) -> None:
    """The upgrade case: an older operator made the Secret owned by the DataService it belonged to."""
    old = life.fc.objects[SECRET]
    old["metadata"]["ownerReferences"] = [{"apiVersion": "d3os-product.com.d3os/v1", "kind": "DataService",
                                           "name": "dataservice-sample", "uid": "an-earlier-uid"}]
    life.fc.remove(*CLAIM)  # no claim either: nothing holds the Secret but the dead DataService
    life.fc.objects[SECRET] = old
    p = life.step()
    assert not [a for a in p.apply if a.component == "mysql"]
    assert "waiting for Secret/" in life.component("mysql")["message"]
    life.fc.remove("DataService", "dataservice-sample", owner_uid="an-earlier-uid")
    assert SECRET not in life.fc.objects
    life.converge()


def test_a_third_party_mysql_from_the_start_keeps_its_credentials_too() -> None:
    life = Life()
    _kind(3)(life.ds["spec"])
    life.converge()
    assert CLAIM not in life.fc.objects
    assert "ownerReferences" not in life.fc.objects[SECRET]["metadata"]
    before = password(life.fc)
    life.delete()
    assert sorted(life.fc.objects) == [SECRET]
    life.recreate()
    assert password(life.fc) == before, "an edited third-party password survives a re-created DataService"


def test_another_dataservices_credentials_are_a_conflict(life: Life) -> None:
    second = sample(name="dataservice-second", uid="ds-uid-second")
    p = plan(second, life.fc.observed(), Facts(now="2026-01-03T00:00:00Z", secret_seed="x"), DATASERVICE)
    mysql = next(c for c in p.status["components"] if c["name"] == "mysql")
    assert mysql["state"] == "Conflict"
    assert f"{SECRET[0]}/{SECRET[1]} is held by DataService/dataservice-sample" in mysql["message"]
    assert not p.apply


def test_an_install_of_an_earlier_version_is_taken_over_with_its_password(life: Life) -> None:
    """Before issue 12 the Secret was owned by the DataService and the claim recorded nothing: the next
    plan moves the Secret to the claim with its data unchanged and has the claim record it."""
    secret, claim = life.fc.objects[SECRET], life.fc.objects[CLAIM]
    ds_uid = life.ds["metadata"]["uid"]
    secret["metadata"]["ownerReferences"] = [{"apiVersion": "d3os-product.com.d3os/v1", "kind": "DataService",
                                              "name": "dataservice-sample", "uid": ds_uid, "controller": True,
                                              "blockOwnerDeletion": True}]
    claim["metadata"]["annotations"].pop(ANNOTATION_CREDENTIALS)
    for obj, key in ((secret, SECRET), (claim, CLAIM)):  # rendered by the earlier version: another hash
        obj["metadata"]["annotations"][api.ANNOTATION_HASH] = "earlier-hash"
        life.fc.touch(key)
    before = password(life.fc)
    p = life.step()
    assert {(a.manifest["kind"], a.manifest["metadata"]["name"]) for a in p.apply} == {SECRET, CLAIM}
    life.converge()
    assert password(life.fc) == before
    assert [r["kind"] for r in life.fc.objects[SECRET]["metadata"]["ownerReferences"]] == ["PersistentVolumeClaim"]
    assert life.fc.objects[CLAIM]["metadata"]["annotations"][ANNOTATION_CREDENTIALS] == SECRET[1]


def test_a_claim_recorded_by_uid_by_an_earlier_version_still_keeps_its_data_from_new_credentials(life: Life) -> None:
    """Earlier versions recorded the Secret's uid (annotation ``credentials-uid``): still a record."""
    claim = life.fc.objects[CLAIM]
    claim["metadata"]["annotations"].pop(ANNOTATION_CREDENTIALS)
    claim["metadata"]["annotations"][ANNOTATION_CREDENTIALS_UID] = uid(life.fc, SECRET)
    life.fc.touch(CLAIM)
    life.fc.remove(*SECRET)
    p = life.step()
    assert not [a for a in p.apply if a.component == "mysql"], "no new credentials for data opened with others"
    assert life.component("mysql")["message"].startswith(LOST)
