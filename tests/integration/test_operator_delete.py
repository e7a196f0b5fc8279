"""Issue 4, "Done when" 8: deleting the DataService removes children in reverse order, keeps the PVC
(and, issue 12, the credentials Secret that opens its data), then the finalizer goes (and with it the
DataService).

Order is judged from what the API server showed (a watch opened before the delete, events in
resourceVersion order: :mod:`tests.integration.apiwatch`), not from the operator's own trace.
"""

from __future__ import annotations

import itertools

import pytest

from d3os_core import api

pytest.register_assert_rewrite("tests.integration.standin")
from .apiwatch import ApiWatch, Event  # noqa: E402
from .standin import CHAIN, Env, figures_out, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

OWNED_LABEL = {api.LABEL_MANAGED_BY: api.MANAGED_BY}
KEPT = ("PersistentVolumeClaim", "Secret")
"""Kinds that outlive the DataService by design (the claim and the credentials that open its data)."""


def test_delete_removes_children_in_reverse_order_and_keeps_the_pvc(deployed: Env) -> None:
    env = deployed
    pvcs = {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.objects("PersistentVolumeClaim")}
    assert pvcs
    creds = {s["metadata"]["name"]: (s["metadata"]["uid"], s["data"]) for s in env.objects("Secret", **OWNED_LABEL)}
    assert list(creds) == ["mysql-dataservice-credentials"]
    with ApiWatch(env.cluster.kubeconfig, env.namespace) as watch:
        env.cluster.kubectl("delete", "dataservice", "dataservice-sample", "-n", env.namespace, "--wait=false")
        wait_for("the DataService to be gone", lambda: env.ds() is None, 180)
        watch.sync()
        timeline = watch.timeline()

    def child(e: Event) -> str | None:
        """The component of an object the operator deletes (workloads, Services, ConfigMaps)."""
        ours = (e.meta.get("labels") or {}).get(api.LABEL_MANAGED_BY) == api.MANAGED_BY
        return e.component if ours and e.kind not in (*KEPT, "Pod", api.KIND) else None

    alive: dict[str, set[str]] = {}
    for e in timeline:
        comp = child(e)
        if comp is not None and e.type == "LISTED":
            alive.setdefault(comp, set()).add(f"{e.kind}/{e.name}")
    assert {k for k in CHAIN if k != "uuc"} <= set(alive), alive  # uuc, a third party, may have only config

    began: dict[str, Event] = {}  # the first event showing one of the component's objects being deleted
    gone: dict[str, Event] = {}  # the DELETED event of its last object
    for e in timeline:
        comp = child(e)
        if comp is None or e.type == "LISTED":
            continue
        assert comp not in gone, f"{e} after {comp} was gone: recreated while deleting?"
        if e.terminating:
            began.setdefault(comp, e)
        if e.type == "DELETED":
            alive[comp].discard(f"{e.kind}/{e.name}")
            if not alive[comp]:
                gone[comp] = e
    order = sorted(began, key=lambda c: began[c].rv)
    assert order == [k for k in reversed(CHAIN) if k in alive], [str(began[c]) for c in order]
    assert order[0] == "web" and order[-1] == "mysql"
    assert set(gone) == set(alive), f"never shown gone: {set(alive) - set(gone)}"
    # each component's deletion starts only once the one after it is completely gone
    for later, earlier in itertools.pairwise(order):
        assert began[earlier].rv > gone[later].rv, (
            f"{earlier} deletion began ({began[earlier]}) before {later} was gone ({gone[later]})"
        )
    # the finalizer goes last: the DataService is deleted after every child
    ds_gone = next(e for e in timeline if e.kind == api.KIND and e.type == "DELETED")
    assert ds_gone.rv > max(e.rv for e in gone.values()), ds_gone

    # everything of ours is gone but the claim, which keeps its UID, and the Secret that opens its data
    for kind in ("Deployment", "StatefulSet", "Service", "ConfigMap"):
        left = [o["metadata"]["name"] for o in env.objects(kind, **OWNED_LABEL)]
        assert left == [], (kind, left)
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.objects("PersistentVolumeClaim")} == pvcs
    kept = {s["metadata"]["name"]: (s["metadata"]["uid"], s["data"]) for s in env.objects("Secret", **OWNED_LABEL)}
    assert kept == creds
    assert not [e for e in timeline if e.kind in KEPT and e.terminating], "a claim or its Secret was deleted"
    figures_out(
        "deletion_order",
        {"order": order, "duration_s": round(max(e.t for e in gone.values()) - min(e.t for e in began.values()), 2)},
    )
