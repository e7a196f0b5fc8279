"""Pure parts of the reconciler's contract: when a status is a step boundary (written at once)."""

from __future__ import annotations

import copy
from typing import Any

from d3os_operator.reconciler import status_differs, step_boundary


def _status(state: str, message: str, ready: str = "0/2") -> dict[str, Any]:
    return {
        "phase": "mysql已部署",
        "message": "[mysql]->uuc",
        "ready": ready,
        "conditions": [{"type": "Ready", "status": "False", "reason": "RollingOut", "message": f"mysql: {message}"}],
        "components": [
            {"name": "mysql", "state": state, "ready": state == "Ready", "message": message},
            {"name": "uuc", "state": "Waiting", "ready": False, "message": "waiting for mysql"},
        ],
    }


def test_progress_text_of_a_progressing_component_is_not_a_boundary() -> None:
    live = _status("Progressing", "0 of 1 updated replicas available")
    desired = _status("Progressing", "1 of 1 updated replicas")
    assert status_differs(desired, live)
    assert not step_boundary(desired, live)


def test_state_ready_count_phase_and_reasons_are_boundaries() -> None:
    live = _status("Progressing", "0 of 1 updated replicas available")
    assert step_boundary(_status("Ready", "1/1 ready", ready="1/2"), live)
    moved = copy.deepcopy(live)
    moved["message"] = "mysql->[uuc]"
    assert step_boundary(moved, live)
    reason = copy.deepcopy(live)
    reason["conditions"][0]["reason"] = "Conflict"
    assert step_boundary(reason, live)
    failing = copy.deepcopy(live)
    failing["components"][0].update(reason="CheckFailed", message="HTTP GET http://uuc/ failed: refused")
    assert step_boundary(failing, live), "a failing check is news (a Warning Event tells it too)"
    assert step_boundary(live, None), "the first status"


def test_a_waiting_components_text_is_progress_text() -> None:
    """It repeats the progress of the component it waits for ("waiting for mysql (progressing: 0 of 1 …)"): every
    change of that progress would otherwise be written at once, a status write per watch event."""
    live = _status("Progressing", "0 of 1 pods ready")
    live["components"][1]["message"] = "waiting for mysql (progressing: 0 of 1 pods ready)"
    desired = _status("Progressing", "applying Secret/mysql-credentials")
    desired["components"][1]["message"] = "waiting for mysql (progressing: applying Secret/mysql-credentials)"
    assert status_differs(desired, live)
    assert not step_boundary(desired, live)


# -- one pass against a fake API (a planner stands in for the core) ------------------------------------------

import pytest  # noqa: E402
from lightkube.core.exceptions import ApiError  # noqa: E402
from lightkube.models.meta_v1 import Status  # noqa: E402

from d3os_core.types import Apply, Facts, Observed, Plan  # noqa: E402
from d3os_operator.events import EventRecorder  # noqa: E402
from d3os_operator.informer import Informer  # noqa: E402
from d3os_operator.kube import DATASERVICE, OWNED  # noqa: E402
from d3os_operator.probes import ProbeManager  # noqa: E402
from d3os_operator.reconciler import (  # noqa: E402
    HOLDER_RECHECK,
    Holder,
    Reconciler,
    RefusedError,
    Result,
    TransientError,
)

NS = "ns"
DS = {"apiVersion": "d3os-product.com.d3os/v1", "kind": "DataService",
      "metadata": {"name": "ds", "namespace": NS, "uid": "u1", "resourceVersion": "5", "generation": 1},
      "spec": {}}


def _manifest(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1" if kind == "Deployment" else "v1", "kind": kind,
            "metadata": {"name": name, "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "d3os-operator"}}}


def _error(code: int) -> ApiError:
    return ApiError(status=Status(code=code, message=f"answer {code}", reason="X"))


class FakeKube:
    """Answers the reconciler's requests; ``held`` names are taken by a stranger, ``refuse`` maps a name to a
    status code."""

    field_manager = "d3os-operator"

    def __init__(self, held: dict[str, dict[str, Any]] | None = None, refuse: dict[str, int] | None = None) -> None:
        self.held = held or {}
        self.refuse = refuse or {}
        self.sent: list[tuple[str, str]] = []
        self.statuses: list[dict[str, Any]] = []
        self.rv = 10

    async def apply(self, manifest: dict[str, Any], *, create_only: bool = False) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        self.sent.append(("create" if create_only else "apply", f"{manifest['kind']}/{name}"))
        if name in self.refuse:
            raise _error(self.refuse[name])
        if create_only and name in self.held:
            raise _error(409)
        self.rv += 1
        return {**manifest, "metadata": {**manifest["metadata"], "uid": f"uid-{name}", "resourceVersion": str(self.rv)}}

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.sent.append(("get", f"{kind}/{name}"))
        return self.held.get(name)

    async def apply_status(self, parent: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        self.statuses.append(status)
        self.rv += 1
        return {**parent, "metadata": {**parent["metadata"], "resourceVersion": str(self.rv)}, "status": status}


def _reconciler(kube: FakeKube, planner: Any) -> Reconciler:
    def informer(info: Any) -> Informer:
        return Informer(kube, info, [NS], handler=lambda *a: None)  # type: ignore[arg-type]

    parents = informer(DATASERVICE)
    parents.write_through(dict(DS))
    owned = {info.kind: informer(info) for info in OWNED}
    events = EventRecorder(kube)  # type: ignore[arg-type]  # record() only queues
    return Reconciler(kube, parents, owned, ProbeManager(lambda key: None), events,  # type: ignore[arg-type]
                      planner=planner)


def _conflict_aware_planner(seen: list[Observed]) -> Any:
    def planner(parent: Any, observed: Observed, facts: Facts) -> Plan:
        seen.append(observed)
        holder = observed.objects.get(("ConfigMap", "eureka"))
        if holder is not None:
            return Plan(status={"phase": "conflict", "message": "ConfigMap/eureka is held"})
        return Plan(apply=(Apply(_manifest("ConfigMap", "eureka"), "eureka", create=True),
                           Apply(_manifest("Deployment", "eureka"), "eureka", create=True)),
                    status={"phase": "deploying"})
    return planner


@pytest.mark.anyio
async def test_a_held_name_is_read_after_the_409_reported_to_the_core_and_nothing_more_is_applied() -> None:
    stranger = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "eureka", "namespace": NS, "uid": "s"},
                "data": {"owner": "someone"}}
    kube = FakeKube(held={"eureka": stranger})
    seen: list[Observed] = []
    rec = _reconciler(kube, _conflict_aware_planner(seen))
    result = await rec.reconcile((NS, "ds"))
    assert kube.sent == [("create", "ConfigMap/eureka"), ("get", "ConfigMap/eureka")], "no GET before the create"
    assert len(seen) == 2 and seen[1].objects[("ConfigMap", "eureka")] == stranger, "planned again, once"
    assert kube.statuses == [{"phase": "conflict", "message": "ConfigMap/eureka is held"}]
    assert rec.states[(NS, "ds")].holders == {Holder("v1", "ConfigMap", "eureka")}
    assert rec.parents_holding(NS, "ConfigMap", "eureka") == [(NS, "ds")]
    assert result == Result(requeue_after=HOLDER_RECHECK), "the holder may not be watched: look again"

    kube.held.clear()  # the stranger deleted it: the next pass reads it again, finds the name free, creates
    kube.sent.clear()
    result = await rec.reconcile((NS, "ds"))
    assert kube.sent == [("get", "ConfigMap/eureka"), ("create", "ConfigMap/eureka"), ("create", "Deployment/eureka")]
    assert result == Result(requeue_after=0.0) and not rec.states[(NS, "ds")].holders


@pytest.mark.anyio
async def test_a_refused_apply_is_named_in_status_and_raised_as_refused() -> None:
    seen: list[Observed] = []

    def planner(parent: Any, observed: Observed, facts: Facts) -> Plan:
        seen.append(observed)
        return Plan(apply=(Apply(_manifest("Service", "web"), "web"),),
                    status={"phase": "refused" if observed.refused else "deploying"})

    kube = FakeKube(refuse={"web": 422})
    rec = _reconciler(kube, planner)
    with pytest.raises(RefusedError, match="422"):
        await rec.reconcile((NS, "ds"))
    assert seen[1].refused == {("Service", "web"): "422 X: answer 422"}
    assert kube.statuses == [{"phase": "refused"}], "only the status that names the refusal is written"


@pytest.mark.anyio
async def test_a_server_error_is_transient_and_the_state_goes_with_the_dataservice() -> None:
    def planner(parent: Any, observed: Observed, facts: Facts) -> Plan:
        return Plan(apply=(Apply(_manifest("Service", "web"), "web"),))

    kube = FakeKube(refuse={"web": 500})
    rec = _reconciler(kube, planner)
    with pytest.raises(TransientError):
        await rec.reconcile((NS, "ds"))
    assert (NS, "ds") in rec.states
    rec.parents.evict(NS, "ds")
    assert await rec.reconcile((NS, "ds")) == Result()
    assert rec.states == {}, "one object per DataService, dropped when it is gone"
