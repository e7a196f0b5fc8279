"""Issue 4, "Done when" 8: deleting the DataService removes children in reverse order, keeps the PVC
(and, issue 12, the credentials Secret that opens its data), then the finalizer goes (and with it the
DataService)."""

from __future__ import annotations

import itertools

import pytest

from d3os_core import api

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import CHAIN, Env, figures_out, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

OWNED_LABEL = {api.LABEL_MANAGED_BY: api.MANAGED_BY}


def test_delete_removes_children_in_reverse_order_and_keeps_the_pvc(deployed: Env) -> None:
    env = deployed
    pvcs = {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.objects("PersistentVolumeClaim")}
    assert pvcs
    creds = {s["metadata"]["name"]: (s["metadata"]["uid"], s["data"]) for s in env.objects("Secret", **OWNED_LABEL)}
    assert list(creds) == ["mysql-dataservice-credentials"]
    mark = len(env.operator.records)
    env.cluster.kubectl("delete", "dataservice", "dataservice-sample", "-n", env.namespace, "--wait=false")
    wait_for("the DataService to be gone", lambda: env.ds() is None, 180)

    records = env.operator.records[mark:]
    first_delete: dict[str, float] = {}
    for r in records:
        # the revision history goes last, after every component (it has no component)
        if r["what"] == "delete" and r.get("kind") != "ControllerRevision" and r["component"] not in first_delete:
            first_delete[r["component"]] = r["t"]
    order = list(first_delete)
    expected = [k for k in reversed(CHAIN) if k in first_delete]
    assert order == expected, order
    assert order[0] == "web" and order[-1] == "mysql"

    # each component's deletion starts only once the one after it is completely gone
    gone_at: dict[str, float] = {}
    alive: dict[str, set[str]] = {}
    for r in records:
        if r["what"] != "event" or r["kind"] == api.KIND:
            continue
        comp = (r["obj"]["metadata"].get("labels") or {}).get(api.LABEL_COMPONENT)
        if comp is None or r["kind"] == "PersistentVolumeClaim":
            continue
        key = f"{r['kind']}/{r['obj']['metadata']['name']}"
        if r["type"] == "DELETED":
            alive.setdefault(comp, set()).discard(key)
            if not alive.get(comp):
                gone_at[comp] = r["t"]
        else:
            alive.setdefault(comp, set()).add(key)
    for later, earlier in itertools.pairwise(order):
        assert later in gone_at, f"{later} never observed gone"
        assert first_delete[earlier] >= gone_at[later], f"{earlier} deletion began before {later} was gone"

    # everything of ours is gone but the claim, which keeps its UID, and the Secret that opens its data
    for kind in ("Deployment", "StatefulSet", "Service", "ConfigMap"):
        left = [o["metadata"]["name"] for o in env.objects(kind, **OWNED_LABEL)]
        assert left == [], (kind, left)
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.objects("PersistentVolumeClaim")} == pvcs
    kept = {s["metadata"]["name"]: (s["metadata"]["uid"], s["data"]) for s in env.objects("Secret", **OWNED_LABEL)}
    assert kept == creds
    figures_out(
        "deletion_order", {"order": order, "duration_s": round(max(gone_at.values()) - min(first_delete.values()), 2)}
    )
