"""Issue 12, D: credentials live as long as their data, on the local control plane.

mysql's generated credentials Secret is owned by its claim, not by the DataService. A DataService deleted
and created again with the same name, or mysql renamed and renamed back, finds the very Secret (same uid,
same data) and the very claim (same uid) it had: the password the database was initialised with. Removing
the claim for good (the command docs/operations.md gives) lets Kubernetes' garbage collector remove the
Secret with it, and a new DataService then starts with fresh data and fresh credentials.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from d3os_core import api
from d3os_core.credentials import ANNOTATION_CREDENTIALS

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import Env, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

SECRET = "mysql-dataservice-credentials"
CLAIM = "data-mysql-dataservice-0"


def _state(env: Env, secret: str = SECRET, claim: str = CLAIM) -> dict[str, Any]:
    s, c = env.obj("Secret", secret), env.obj("PersistentVolumeClaim", claim)
    assert s is not None and c is not None, (secret, claim)
    return {
        "secret_uid": s["metadata"]["uid"],
        "data": s["data"],
        "claim_uid": c["metadata"]["uid"],
        "secret_owners": [(r["kind"], r["name"], r["uid"]) for r in s["metadata"].get("ownerReferences") or []],
        "claim_records": (c["metadata"].get("annotations") or {}).get(ANNOTATION_CREDENTIALS),
    }


def _delete(env: Env, name: str = "dataservice-sample") -> None:
    env.cluster.kubectl("delete", "dataservice", name, "-n", env.namespace, "--wait=false")
    try:
        wait_for("the DataService to be gone", lambda: env.ds(name) is None, 180)
    except AssertionError:
        ds = env.ds(name) or {}
        raise AssertionError(f"{name} not gone: {(ds.get('status') or {}).get('conditions')}") from None
    # the ordered teardown is over; give the garbage collector a chance to take what it would take
    wait_for("the StatefulSet to be gone", lambda: env.obj("StatefulSet", "mysql-dataservice") is None, 60)


def test_bound_to_the_claim(deployed: Env) -> None:
    st = _state(deployed)
    assert st["secret_owners"] == [("PersistentVolumeClaim", CLAIM, st["claim_uid"])]
    assert st["claim_records"] == SECRET
    ds = deployed.ds()
    assert ds is not None
    owners = {r["uid"] for r in deployed.obj("Secret", SECRET)["metadata"].get("ownerReferences") or []}  # type: ignore[index]
    assert ds["metadata"]["uid"] not in owners


def test_recreated_dataservice_finds_the_same_password(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    before = _state(env)
    for round_ in range(2):
        _delete(env)
        assert _state(env) == before, f"round {round_}: the data and its credentials outlive the DataService"
        env.apply(sample)
        env.wait_ready()
        assert _state(env) == before, f"round {round_}: the re-created DataService found the same password"


def test_renamed_mysql_and_back_finds_the_same_password(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    before = _state(env)
    renamed = copy.deepcopy(sample)
    renamed["spec"]["mysql"]["name"] = "mysql-two"
    env.apply(renamed)
    env.wait_ready(generation=2)
    wait_for("the old StatefulSet to be pruned", lambda: env.obj("StatefulSet", "mysql-dataservice") is None, 120)
    assert _state(env) == before, "the old name's data and credentials are kept, not pruned"
    two = _state(env, "mysql-two-credentials", "data-mysql-two-0")
    assert two["data"] != before["data"], "the new name has its own data, its own credentials"

    env.apply(sample)
    env.wait_ready(generation=3)
    wait_for("the renamed StatefulSet to be pruned", lambda: env.obj("StatefulSet", "mysql-two") is None, 120)
    assert _state(env) == before, "renamed back: the same Secret, the same claim"
    sts = env.obj("StatefulSet", "mysql-dataservice")
    assert sts is not None
    env_refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
                for e in sts["spec"]["template"]["spec"]["containers"][0]["env"] if "valueFrom" in e}
    assert env_refs["MYSQL_PASSWORD"] == SECRET


def test_removing_the_data_for_good_removes_its_credentials(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    before = _state(env)
    _delete(env)
    # docs/operations.md, "Data retention": delete the claims; the garbage collector takes their Secrets
    selector = f"{api.LABEL_MANAGED_BY}={api.MANAGED_BY},{api.LABEL_INSTANCE}=dataservice-sample"
    env.cluster.kubectl("delete", "pvc", "-n", env.namespace, "-l", selector, "--wait=true", "--timeout=120s")
    wait_for("the garbage collector to remove the Secret", lambda: env.obj("Secret", SECRET) is None, 120)
    env.apply(sample)
    env.wait_ready()
    after = _state(env)
    assert after["claim_uid"] != before["claim_uid"] and after["data"] != before["data"], "fresh data, fresh password"
