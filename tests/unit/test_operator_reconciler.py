"""Pure parts of the reconciler's contract: when a status is a step boundary (written at once)."""

from __future__ import annotations

import copy
from typing import Any

from d3os_core.statusdiff import status_differs, step_boundary
from d3os_operator.parents import ParentCaches


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
from d3os_operator.outcome import RefusedError, Result, TransientError  # noqa: E402
from d3os_operator.probes import ProbeManager  # noqa: E402
from d3os_operator.reconciler import HOLDER_RECHECK, Holder, Reconciler  # noqa: E402

NS = "ns"
KEY = (NS, "ds", "DataService")
"""The reconciler's key of the DataService the tests reconcile: namespace, name, kind."""
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

    parents = ParentCaches({DATASERVICE.kind: informer(DATASERVICE)})
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
    result = await rec.reconcile(KEY)
    assert kube.sent == [("create", "ConfigMap/eureka"), ("get", "ConfigMap/eureka")], "no GET before the create"
    assert len(seen) == 2 and seen[1].objects[("ConfigMap", "eureka")] == stranger, "planned again, once"
    assert kube.statuses == [{"phase": "conflict", "message": "ConfigMap/eureka is held"}]
    assert rec.states[KEY].holders == {Holder("v1", "ConfigMap", "eureka")}
    assert rec.parents_holding(NS, "ConfigMap", "eureka") == [KEY]
    assert result == Result(requeue_after=HOLDER_RECHECK), "the holder may not be watched: look again"

    kube.held.clear()  # the stranger deleted it: the next pass reads it again, finds the name free, creates
    kube.sent.clear()
    result = await rec.reconcile(KEY)
    assert kube.sent == [("get", "ConfigMap/eureka"), ("create", "ConfigMap/eureka"), ("create", "Deployment/eureka")]
    assert result == Result(requeue_after=0.0) and not rec.states[KEY].holders


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
        await rec.reconcile(KEY)
    assert seen[1].refused == {("Service", "web"): "422 X: answer 422"}
    assert kube.statuses == [{"phase": "refused"}], "only the status that names the refusal is written"


@pytest.mark.anyio
async def test_a_server_error_is_transient_and_the_state_goes_with_the_dataservice() -> None:
    def planner(parent: Any, observed: Observed, facts: Facts) -> Plan:
        return Plan(apply=(Apply(_manifest("Service", "web"), "web"),))

    kube = FakeKube(refuse={"web": 500})
    rec = _reconciler(kube, planner)
    with pytest.raises(TransientError):
        await rec.reconcile(KEY)
    assert KEY in rec.states
    rec.parents.evict(NS, "ds")
    assert await rec.reconcile(KEY) == Result()
    assert rec.states == {}, "one object per DataService, dropped when it is gone"


# -- waves: a step's leaves in flight together (the order is d3os_core.waves') -------------------------------

from d3os_operator.statuswriter import StatusWriter  # noqa: E402


def _step(kind: str, name: str, component: str, create: bool = True) -> Apply:
    m = _manifest(kind, name)
    if kind in ("StatefulSet", "ControllerRevision"):
        m["apiVersion"] = "apps/v1"
    return Apply(m, component, create=create)


class ConcurrentKube(FakeKube):
    """A FakeKube that yields inside each request and records how many were in flight at once, and the
    finalizer patch."""

    def __init__(self, *args: Any, finalizer_error: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0
        self.most = 0
        self.waves: list[list[str]] = []
        self.finalizer_error = finalizer_error

    async def _enter(self, what: str) -> None:
        import anyio

        if self.in_flight == 0:
            self.waves.append([])
        self.waves[-1].append(what)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        for _ in range(3):
            await anyio.sleep(0)
        self.in_flight -= 1

    async def apply(self, manifest: dict[str, Any], *, create_only: bool = False) -> dict[str, Any]:
        await self._enter(f"{manifest['kind']}/{manifest['metadata']['name']}")
        return await super().apply(manifest, create_only=create_only)

    async def set_finalizers(self, parent: dict[str, Any], finalizers: list[str]) -> dict[str, Any]:
        await self._enter("finalizer")
        self.sent.append(("patch", "finalizer"))
        if self.finalizer_error:
            raise _error(self.finalizer_error)
        self.rv += 1
        return {**parent, "metadata": {**parent["metadata"], "finalizers": finalizers, "resourceVersion": str(self.rv)}}


def _mysql_plan(finalizer: Any = None) -> Any:
    steps = (_step("Secret", "creds", "mysql"), _step("ConfigMap", "mysql", "mysql"),
             _step("PersistentVolumeClaim", "data", "mysql"), _step("Service", "mysql", "mysql"),
             _step("StatefulSet", "mysql", "mysql"))

    def planner(parent: Any, observed: Observed, facts: Facts) -> Plan:
        return Plan(apply=steps if not observed.objects else (), status={"phase": "deploying"}, finalizer=finalizer)
    return planner


@pytest.mark.anyio
async def test_a_wave_is_in_flight_at_once_and_the_finalizer_patch_with_the_first() -> None:
    kube = ConcurrentKube()
    rec = _reconciler(kube, _mysql_plan(finalizer="add"))
    assert await rec.reconcile(KEY) == Result(requeue_after=0.0)
    assert kube.waves == [["finalizer", "Secret/creds", "ConfigMap/mysql", "Service/mysql"],
                          ["PersistentVolumeClaim/data"], ["StatefulSet/mysql"]]
    assert kube.most == 4, "three round trips instead of six"
    assert rec.parents.get(NS, "ds")["metadata"]["finalizers"] == ["d3os-product.com.d3os/finalizer"]
    assert rec.owned["StatefulSet"].get(NS, "mysql") is not None, "every answer written through to the cache"


@pytest.mark.anyio
async def test_a_failed_finalizer_patch_stops_the_pass_after_the_first_wave() -> None:
    kube = ConcurrentKube(finalizer_error=409)
    rec = _reconciler(kube, _mysql_plan(finalizer="add"))
    with pytest.raises(TransientError, match="409"):
        await rec.reconcile(KEY)
    assert kube.waves == [["finalizer", "Secret/creds", "ConfigMap/mysql", "Service/mysql"]]
    assert rec.owned["ConfigMap"].get(NS, "mysql") is not None, "what was sent is in the cache"
    assert kube.statuses == []


@pytest.mark.anyio
async def test_held_names_and_refusals_in_a_wave_stop_the_next_wave() -> None:
    stranger = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mysql", "namespace": NS, "uid": "s"}}
    seen: list[Observed] = []

    def planner(parent: Any, observed: Observed, facts: Facts) -> Plan:
        seen.append(observed)
        if observed.objects.get(("ConfigMap", "mysql")) == stranger:
            return Plan(status={"phase": "conflict"})
        return _mysql_plan()(parent, Observed(objects={}), facts)

    kube = ConcurrentKube(held={"mysql": stranger})
    rec = _reconciler(kube, planner)
    await rec.reconcile(KEY)
    assert kube.waves[0] == ["Secret/creds", "ConfigMap/mysql", "Service/mysql"]
    sent = [what for _, what in kube.sent]
    assert "StatefulSet/mysql" not in sent and "PersistentVolumeClaim/data" not in sent, \
        "nothing after the wave with the held name (a workload never starts on a stranger's ConfigMap)"
    assert ("get", "ConfigMap/mysql") in kube.sent
    assert seen[1].objects[("ConfigMap", "mysql")] == stranger
    assert rec.owned["Secret"].get(NS, "creds") is not None, "the siblings' answers are in the cache"
    assert rec.owned["ConfigMap"].get(NS, "mysql") is None, "the stranger's object is never cached as ours"

    kube2 = ConcurrentKube(refuse={"mysql": 422})
    rec2 = _reconciler(kube2, _mysql_plan())
    with pytest.raises(RefusedError, match="422"):
        await rec2.reconcile(KEY)
    assert len(kube2.waves) == 1 and ("Secret", "creds") not in rec2.states[KEY].refused
    assert set(rec2.states[KEY].refused) == {("ConfigMap", "mysql"), ("Service", "mysql")}, \
        "every refusal in the wave is named"


# -- statuses written off the reconcile path ---------------------------------------------------------------


def _progress(message: str, phase: str = "mysql已部署") -> dict[str, Any]:
    return {"phase": phase, "components": [
        {"name": "mysql", "state": "Progressing", "ready": False, "message": message},
        {"name": "uuc", "state": "Waiting", "ready": False, "message": f"waiting for mysql (progressing: {message})"},
    ]}


def test_a_waiting_component_quoting_progress_text_is_not_a_boundary() -> None:
    assert not step_boundary(_progress("0 of 1 updated replicas"), _progress("applying ConfigMap/mysql"))
    news = _progress("0 of 1 updated replicas")
    news["components"][1]["message"] = "waiting for mysql (check refused)"
    assert step_boundary(news, _progress("applying ConfigMap/mysql"))
    assert step_boundary(_progress("x", phase="uuc已部署"), _progress("x"))


class GatedKube(FakeKube):
    """Status writes wait for ``gate`` (to look at the writer while one is in flight); ``fail`` answers the
    next status write with that code."""

    def __init__(self) -> None:
        import anyio

        super().__init__()
        self.gate = anyio.Event()
        self.fail: int | None = None

    async def apply_status(self, parent: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        await self.gate.wait()
        if self.fail is not None:
            code, self.fail = self.fail, None
            raise _error(code)
        return await super().apply_status(parent, status)


@pytest.mark.anyio
async def test_status_writer_writes_in_order_replaces_only_progress_text_and_shows_what_is_pending() -> None:
    import anyio

    kube = GatedKube()
    rec = _reconciler(kube, lambda *a: Plan())
    writer = StatusWriter(kube, rec.parents)  # type: ignore[arg-type]
    key = KEY
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        writer.submit(key, DS, _progress("applying", phase="p1"))
        await anyio.sleep(0)
        writer.submit(key, DS, _progress("applying", phase="p2"))
        writer.submit(key, DS, _progress("0 of 1", phase="p2"))  # progress text only: replaces the waiting one
        writer.submit(key, DS, _progress("0 of 1", phase="p3"))
        assert writer.latest(key) == _progress("0 of 1", phase="p3") and writer.busy(key)
        assert kube.statuses == []
        kube.gate.set()
        await writer.flush(key)
        assert [s["phase"] for s in kube.statuses] == ["p1", "p2", "p3"], "every boundary, in order"
        assert kube.statuses[1] == _progress("0 of 1", phase="p2") and writer.replaced == 1
        assert writer.latest(key) is None and not writer.busy(key)
        assert rec.parents.get(NS, "ds")["status"]["phase"] == "p3", "written through to the cache"

        failed: list[Any] = []
        writer.on_failure = lambda k, e: failed.append((k, str(e)))
        kube.fail = 422
        writer.submit(key, DS, _progress("x", phase="p4"))
        writer.submit(key, DS, _progress("x", phase="p5"))
        await writer.flush(key)
        assert failed and failed[0][0] == key and "422" in failed[0][1]
        assert writer.latest(key) is None, "what waited behind a failed write is dropped: plan from the cache"
        assert [s["phase"] for s in kube.statuses] == ["p1", "p2", "p3"]
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_the_next_pass_plans_with_the_status_handed_over_and_a_failed_write_moves_into_the_pass() -> None:
    import anyio

    seen: list[Any] = []
    statuses = iter([{"phase": "one"}, {"phase": "two"}, {"phase": "three"}, {"phase": "four"}])

    def planner(parent: Any, observed: Observed, facts: Facts) -> Plan:
        seen.append(parent.get("status"))
        return Plan(status=next(statuses))

    kube = GatedKube()
    rec = _reconciler(kube, planner)
    rec2 = Reconciler(kube, rec.parents, rec.owned, rec.probes, rec.events, planner=planner,  # type: ignore[arg-type]
                      background_status=True)
    retried: list[Any] = []
    rec2.on_retry = retried.append
    assert rec2.status.writer is not None
    key = KEY
    async with anyio.create_task_group() as tg:
        tg.start_soon(rec2.status.writer.run)
        await rec2.reconcile(key)  # hands "one" over; its write waits at the gate
        assert kube.statuses == [] and rec2.status.writer.latest(key) == {"phase": "one"}
        kube.fail = 500
        await rec2.reconcile(key)
        assert seen == [None, {"phase": "one"}], "planned with the status handed over, not the cached one"
        kube.gate.set()
        await rec2.flush_status(key)
        assert retried == [key] and rec2.states[key].status_in_pass
        kube.fail = 500  # the pass writes the status itself now: a failure fails the pass (the worker's backoff)
        with pytest.raises(TransientError):
            await rec2.reconcile(key)
        await rec2.reconcile(key)
        assert kube.statuses == [{"phase": "four"}] and not rec2.states[key].status_in_pass
        tg.cancel_scope.cancel()
