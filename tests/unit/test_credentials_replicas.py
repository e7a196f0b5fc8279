"""Credentials are never generated while any claim of the component keeps data (issue 24, B5).

mysql as a StatefulSet of 3 keeps data in three claims; each pod initialised its own data with the one
password. Once only claim 0 held the Secret: deleting that claim let the garbage collector take the Secret,
and the next pass generated a new password while claims 1 and 2 still held data opened with the old one.
Now every claim holds the Secret and records it (annotation ``d3os-product.com.d3os/credentials``). A claim
recording nothing is new: the StatefulSet controller re-creates the claims a person deleted, as the
status says, before the operator's next pass -- those must get fresh credentials, not wait forever.
"""

from __future__ import annotations

import base64

import pytest

from d3os_core.credentials import ANNOTATION_CREDENTIALS, LOST, LOST_REASON

from .test_credentials_lifetime import SECRET, Life, password, uid

CLAIMS = [("PersistentVolumeClaim", f"data-mysql-dataservice-{i}") for i in range(3)]


@pytest.fixture
def three() -> Life:
    life = Life()
    life.ds["spec"]["mysql"]["replica"] = 3
    life.converge()
    assert all(c in life.fc.objects for c in CLAIMS)
    return life


def claim_owners(life: Life) -> list[str]:
    return [r["uid"] for r in life.fc.objects[SECRET]["metadata"].get("ownerReferences") or []
            if r["kind"] == "PersistentVolumeClaim"]


def test_every_claim_holds_the_secret(three: Life) -> None:
    """The garbage collector removes the Secret only when no claim of the component is left."""
    assert claim_owners(three) == [uid(three.fc, c) for c in CLAIMS]


def test_deleting_claim_0_keeps_the_password_that_claims_1_and_2_were_initialised_with(three: Life) -> None:
    before = password(three.fc)
    three.fc.remove(*CLAIMS[0])  # kubectl delete pvc data-mysql-dataservice-0; the GC runs
    for _ in range(5):
        three.step()
        if SECRET in three.fc.objects:
            assert password(three.fc) == before, "a new password under kept data"
    three.converge()
    assert password(three.fc) == before
    assert claim_owners(three) == [uid(three.fc, c) for c in CLAIMS], "the re-created claim 0 holds it too"


def test_no_credentials_are_generated_while_another_claim_exists(three: Life) -> None:
    """Secret and claim 0 both gone (by hand, or an earlier version whose Secret only claim 0 held): claims 1
    and 2 still keep data, so the component waits for a person instead of generating a password."""
    three.fc.remove(*CLAIMS[0])
    three.fc.remove(*SECRET)
    for _ in range(3):
        p = three.step()
        assert SECRET not in three.fc.objects, "credentials generated while claims 1 and 2 keep data"
        assert not [a for a in p.apply if a.component == "mysql" and a.manifest["kind"] == "Secret"]
    mysql = three.component("mysql")
    assert mysql["state"] == "Failed" and mysql["message"].startswith(LOST), mysql
    for words in (CLAIMS[1][1], CLAIMS[2][1], SECRET[1], "delete the claims", "root-password"):
        assert words in mysql["message"], (words, mysql["message"])
    assert three.condition("Degraded")["reason"] == LOST_REASON


def test_once_every_claim_is_gone_fresh_credentials_are_fine(three: Life) -> None:
    before = password(three.fc)
    three.delete()
    for c in CLAIMS:
        three.fc.remove(*c)
    assert SECRET not in three.fc.objects
    three.recreate()
    assert password(three.fc) != before


def test_scaling_up_ties_the_secret_to_the_new_claims_too() -> None:
    life = Life()
    life.converge()
    assert claim_owners(life) == [uid(life.fc, CLAIMS[0])]
    life.change(lambda s: s["mysql"].update(replica=3))
    assert claim_owners(life) == [uid(life.fc, c) for c in CLAIMS]
    assert base64.b64decode(life.fc.objects[SECRET]["data"]["password"])


def test_every_claim_records_the_secret_its_data_is_opened_with(three: Life) -> None:
    for c in CLAIMS:
        assert three.fc.objects[c]["metadata"]["annotations"][ANNOTATION_CREDENTIALS] == SECRET[1], c


def test_claims_an_earlier_version_left_without_a_record_get_one_while_the_secret_is_there(three: Life) -> None:
    for c in CLAIMS[1:]:  # as the StatefulSet controller made them: nothing of ours but the template's labels
        three.fc.objects[c]["metadata"]["annotations"] = {}
    three.step()
    assert all(three.fc.objects[c]["metadata"]["annotations"][ANNOTATION_CREDENTIALS] == SECRET[1] for c in CLAIMS)


def test_claims_deleted_as_the_status_says_and_re_created_at_once_get_fresh_credentials(three: Life) -> None:
    """The way out the status gives ("delete the claims to start with empty data"), when the StatefulSet
    controller re-creates the claims (empty, recording nothing) before the operator's next pass."""
    before = password(three.fc)
    three.fc.remove(*SECRET)
    three.step()
    assert three.condition("Degraded")["reason"] == LOST_REASON
    for c in CLAIMS:
        three.fc.remove(*c)
    three.fc.settle()  # the StatefulSet controller: the claims of its 3 replicas, new and empty
    assert all(c in three.fc.objects and ANNOTATION_CREDENTIALS not in (three.fc.objects[c]["metadata"].get(
        "annotations") or {}) for c in CLAIMS)
    three.converge()
    assert password(three.fc) != before
    assert claim_owners(three) == [uid(three.fc, c) for c in CLAIMS]
