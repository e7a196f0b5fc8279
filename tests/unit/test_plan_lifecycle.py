"""Progress deadlines for every kind of step, revision history, rollback on failure, suspend, teardown by graph.

The clock is injected: each pass gets ``Facts.now`` from the test, so "11 s later" is a plain argument.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from typing import Any

import pytest

from d3os_core import Facts, Plan, plan
from d3os_core.deadlines import describe_pods, parse_time, seconds_between
from d3os_core.fake import FakeCluster
from d3os_core.revisions import changes, revision_name
from d3os_core.types import PodQuery

from .helpers import DATASERVICE, ORDER, Driver, condition, sample

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CR = "ControllerRevision"


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class World(Driver):
    """The fake cluster, the DataService as the API keeps it, and a clock the test moves (converge, change,
    ready and component as :class:`Driver`'s)."""

    def __init__(self, ds: dict[str, Any], fc: FakeCluster | None = None) -> None:
        super().__init__(ds, fc)
        self.t = 0.0
        self.stuck: set[str] = set()
        """Workload names the controllers never finish (unschedulable pods)."""
        self.pods: dict[str, tuple[dict[str, Any], ...]] = {}

    def step(self, advance: float = 1.0) -> Plan:
        self.t += advance
        observed = self.fc.observed()
        p = plan(self.ds, observed, Facts(now=at(self.t), secret_seed="seed"), DATASERVICE)
        if p.inspect:  # the shell reads the pods asked for and plans again
            pods = {q.component: self.pods[q.component] for q in p.inspect if q.component in self.pods}
            if pods:
                p = plan(self.ds, dataclasses.replace(observed, pods=pods), Facts(now=at(self.t), secret_seed="seed"),
                         DATASERVICE)
        self.record(p)
        self.fc.carry_out(p)
        names = [n for (k, n) in self.fc.objects if k in ("Deployment", "StatefulSet", "DaemonSet")]
        self.fc.settle([n for n in names if n not in self.stuck])
        for (kind, name), obj in self.fc.objects.items():
            if name in self.stuck and kind in ("Deployment", "StatefulSet", "DaemonSet"):
                obj["status"] = held(obj, self.fc.nodes)
        return p

    def revisions(self) -> dict[str, dict[str, Any]]:
        return {n: o for (k, n), o in self.fc.objects.items() if k == CR}


def held(obj: dict[str, Any], nodes: int) -> dict[str, Any]:
    """A workload's status as its controller reports it while no pod can be scheduled."""
    gen = obj["metadata"]["generation"]
    n = obj["spec"].get("replicas", 1)
    if obj["kind"] == "Deployment":
        return {"observedGeneration": gen, "replicas": n, "updatedReplicas": n, "availableReplicas": 0}
    if obj["kind"] == "StatefulSet":
        return {"observedGeneration": gen, "replicas": n, "readyReplicas": 0, "updatedReplicas": n,
                "currentRevision": "old", "updateRevision": f"rev-{gen}"}
    return {"observedGeneration": gen, "desiredNumberScheduled": nodes, "updatedNumberScheduled": nodes,
            "numberAvailable": 0}


def unschedulable(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
                       "3 No preemption victims found for incoming pod.",
        }]},
    }


def crashing(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                   "containerStatuses": [{"name": "web", "ready": False, "state": {"waiting": {
                       "reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}}]},
    }


def with_deadline(seconds: int, **spec: Any) -> dict[str, Any]:
    ds = sample()
    ds["spec"]["progressDeadlineSeconds"] = seconds
    ds["spec"].update(spec)
    return ds


# -- deadlines ---------------------------------------------------------------------------------------------

KINDS = {
    # case: (component, how to set it up, workload name it runs as, what it waits for)
    "statefulset": ("mysql", lambda s: None, "mysql-dataservice", "0 of 1 pods ready"),
    "deployment": ("eureka", lambda s: None, "eureka", "0 of 1 updated replicas available"),
    "daemonset": ("eureka", lambda s: s["eureka"].update(kind=2), "eureka", "0 of 3 updated pods available"),
}


@pytest.mark.parametrize("case", sorted(KINDS))
def test_a_workload_stuck_past_its_deadline_is_degraded_and_recovers(case: str) -> None:
    key, setup, workload, waits = KINDS[case]
    ds = with_deadline(10)
    setup(ds["spec"])
    w = World(ds)
    w.stuck = {workload}
    pod = f"{workload}-0"
    w.pods = {key: (unschedulable(pod),)}
    # until the step starts, no clock runs for it
    while not w.plans or w.component(key)["state"] == "Waiting":
        w.step()
    started = w.component(key)
    assert started["state"] == "Progressing" and started["since"] == at(w.t), started
    first = w.plans[-1]
    assert first.requeue_after is not None and first.requeue_after <= 11.0, "wakes up when the deadline passes"
    w.step(5.0)
    assert w.component(key)["state"] == "Progressing" and w.component(key)["since"] == started["since"]
    assert condition(w.ds, "Degraded")["status"] == "False"
    assert w.plans[-1].requeue_after is not None and w.plans[-1].requeue_after <= 6.0
    w.step(5.0)  # 10 s after the first apply
    c = w.component(key)
    assert c["state"] == "Failed" and c["reason"] == "ProgressDeadlineExceeded", c
    deg = condition(w.ds, "Degraded")
    assert deg["status"] == "True" and deg["reason"] == "ProgressDeadlineExceeded"
    assert deg["message"].startswith(f"{key}: {waits}"), deg["message"]
    assert f"{pod} Pending: 0/3 nodes are available: 3 Insufficient cpu" in deg["message"], deg["message"]
    assert "preemption" not in deg["message"]
    assert "more than 10 s" in deg["message"]
    warnings = [e for e in w.plans[-1].events if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["ProgressDeadlineExceeded"]
    assert pod in warnings[0].message
    # the rollout keeps waiting: nothing after it starts; the status stays put (no write per pass)
    before = copy.deepcopy(w.ds["status"])
    p = w.step(30.0)
    assert p.status == before and p.events == ()
    assert w.component(ORDER[ORDER.index(key) + 1])["state"] == "Waiting"
    # it becomes ready: Ready, not Degraded, the clock cleared, the next one starts
    w.stuck = set()
    w.step()
    w.step()
    assert w.component(key)["state"] == "Ready" and "since" not in w.component(key)
    assert condition(w.ds, "Degraded")["status"] == "False"
    w.converge()


def test_the_deadline_asks_for_pods_only_when_it_has_passed() -> None:
    w = World(with_deadline(10))
    w.stuck = {"mysql-dataservice"}
    for _ in range(3):
        p = w.step()
        assert p.inspect == ()
    p = w.step(20.0)
    assert p.inspect == (PodQuery("mysql", {"app.kubernetes.io/instance": "dataservice-sample",
                                            "app.kubernetes.io/component": "mysql"}),)
    assert "mysql: 0 of 1 pods ready; not ready for more than 10 s" in condition(w.ds, "Degraded")["message"]


def test_a_third_party_that_is_down_is_degraded_after_the_deadline_from_its_first_failure() -> None:
    w = World(with_deadline(15), FakeCluster(third_party_up=False))
    while not w.plans or w.component("uuc")["state"] in ("Waiting", "Pending"):
        w.step()
    while "failed" not in w.component("uuc")["message"]:
        w.step()
    first_failure = w.t
    assert w.component("uuc")["since"] == at(first_failure)
    w.step(14.0)
    assert w.component("uuc")["state"] == "Progressing"
    w.step(1.0)
    c = w.component("uuc")
    assert c["state"] == "Failed" and c["reason"] == "ProgressDeadlineExceeded"
    deg = condition(w.ds, "Degraded")
    assert deg["reason"] == "ProgressDeadlineExceeded"
    assert deg["message"].startswith("uuc: HTTP HEAD https://id.cosmoplat.com/duc failed: refused"), deg
    assert deg["message"].endswith("failing for more than 15 s (progressDeadlineSeconds)")
    assert w.plans[-1].probes, "the check keeps running"
    assert w.plans[-1].inspect == (), "a third party has no pods to read"
    w.fc.third_party_up = True
    w.step()
    w.step()
    assert w.component("uuc")["state"] == "Ready" and condition(w.ds, "Degraded")["status"] == "False"


def test_deployments_carry_the_progress_deadline() -> None:
    w = World(with_deadline(45))
    w.converge()
    deployments = [o for (k, _), o in w.fc.objects.items() if k == "Deployment"]
    assert deployments and all(o["spec"]["progressDeadlineSeconds"] == 45 for o in deployments)


def test_the_deployment_controllers_own_deadline_is_reported_with_its_pods() -> None:
    w = World(with_deadline(600))
    w.converge()
    w.fc.fail("web")
    w.pods = {"web": (crashing("web-abc-1"),)}
    w.step()
    deg = condition(w.ds, "Degraded")
    assert deg["reason"] == "ProgressDeadlineExceeded"
    assert "web-abc-1 Running: container web CrashLoopBackOff: back-off 5m0s" in deg["message"], deg


def test_pod_descriptions() -> None:
    ready = {"metadata": {"name": "a"}, "status": {"phase": "Running",
                                                    "conditions": [{"type": "Ready", "status": "True"}]}}
    assert describe_pods([]) == "no pods exist"
    assert describe_pods([ready]) == ""
    pods = [unschedulable(f"p-{i}") for i in range(5)]
    text = describe_pods(pods)
    assert text.count("Insufficient cpu") == 3 and text.endswith("and 2 more")
    gone = {"metadata": {"name": "b", "deletionTimestamp": "x"}, "status": {"phase": "Running"}}
    assert describe_pods([gone]) == "b terminating"


def test_time_arithmetic() -> None:
    assert seconds_between("2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z") == 600
    assert seconds_between("2025-12-31T23:59:50Z", "2026-01-01T00:00:05+00:00") == 15
    assert seconds_between("garbage", "2026-01-01T00:00:00Z") == 0
    assert parse_time("2026-02-30T00:00:00Z") is not None  # lenient on day-of-month, never raises
    assert parse_time("not a time") is None


# -- revisions ---------------------------------------------------------------------------------------------


def bump(tag: str) -> Any:
    def change(spec: dict[str, Any]) -> None:
        for k in ORDER:
            if "image" in spec[k]:
                spec[k]["image"] = spec[k]["image"].rsplit(":", 1)[0] + ":" + tag
    return change


def test_each_spec_that_reaches_ready_is_a_revision_and_history_is_pruned() -> None:
    w = World(with_deadline(600, revisionHistoryLimit=3))
    w.converge()
    w.step()
    revs = w.revisions()
    assert list(revs) == [revision_name("dataservice-sample", w.ds["spec"])]
    only = next(iter(revs.values()))
    assert only["revision"] == 1 and only["data"]["spec"] == w.ds["spec"]
    assert only["metadata"]["ownerReferences"][0]["uid"] == "ds-uid-1"
    assert w.ds["status"]["currentRevision"] == w.ds["status"]["updateRevision"] == only["metadata"]["name"]
    for i, tag in enumerate(["v1.5", "v1.6", "v1.7", "v1.8"], start=2):
        w.change(bump(tag))
        assert w.step().status["updateRevision"] != w.ds["status"]["currentRevision"]
        w.converge()
        w.step()
        numbers = sorted(o["revision"] for o in w.revisions().values())
        assert numbers == list(range(max(1, i - 2), i + 1)), numbers
    current = w.revisions()[w.ds["status"]["currentRevision"]]
    assert current["revision"] == 5 and current["data"]["spec"]["web"]["image"].endswith(":v1.8")
    # the steady state writes nothing, revisions included
    p = w.step()
    assert p.apply == () and p.delete == () and p.events == ()


def test_the_ready_event_tells_the_revision_it_recorded_and_a_revision_alone_has_its_own_event() -> None:
    w = World(with_deadline(600))
    w.converge()
    events = [e for p in w.plans for e in p.events]
    ready = [e for e in events if e.reason == "Ready"]
    assert len(ready) == 1 and "RevisionRecorded" not in [e.reason for e in events]
    name = w.ds["status"]["currentRevision"]
    assert ready[0].message.endswith(f"; revision 1 ({name}) is the current revision"), ready[0].message
    # a spec change that changes no child: Ready all along, the new revision is told on its own
    w.change(lambda s: s.update(rollbackOnFailure=True))
    p = w.step()
    assert [(e.reason, e.message) for e in p.events] == [
        ("RevisionRecorded", f"revision 2 ({w.ds['status']['currentRevision']}) is the current revision")]


def test_a_spec_that_comes_back_takes_the_next_number_on_its_own_revision() -> None:
    w = World(sample())
    w.converge()
    first = copy.deepcopy(w.ds["spec"])
    w.change(bump("v1.5"))
    w.converge()
    w.change(lambda s: (s.clear(), s.update(copy.deepcopy(first))))
    w.converge()
    w.step()
    by_number = {o["revision"]: n for n, o in w.revisions().items()}
    assert sorted(by_number) == [2, 3]
    assert by_number[3] == revision_name("dataservice-sample", first) == w.ds["status"]["currentRevision"]


def test_suspend_is_not_part_of_a_revision() -> None:
    w = World(sample())
    w.converge()
    name = w.ds["status"]["currentRevision"]
    w.change(lambda s: s.update(suspend=True))
    w.step()
    w.change(lambda s: s.update(suspend=False))
    w.converge()
    w.step()
    assert list(w.revisions()) == [name]


def test_changes_between_revisions_in_a_users_words() -> None:
    old = sample()["spec"]
    new = copy.deepcopy(old)
    bump("v1.5")(new)
    new["mysql"]["kind"] = 0
    new["web"]["replica"] = 3
    new["api-manager"]["env"] = {"writer": "x", "LOG": "debug"}
    got = changes(old, new)
    assert "mysql kind StatefulSet -> Deployment" in got
    assert "web replica 1 -> 3" in got
    assert "api-manager env +LOG ~writer" in got
    assert any(c.startswith("auth image ") and c.endswith(":v1.5") for c in got)
    assert changes(None, new) == ["initial"]
    assert changes(new, new) == ["no change"]


# -- rollback on failure ---------------------------------------------------------------------------------------


def unschedulable_upgrade(spec: dict[str, Any]) -> None:
    spec["mysql"]["resources"] = {"requests": {"cpu": "5000"}}
    bump("v1.5")(spec)


def test_an_upgrade_past_its_deadline_rolls_back_to_the_last_ready_revision() -> None:
    w = World(with_deadline(10, rollbackOnFailure=True))
    w.converge()
    w.step()
    good = w.ds["status"]["currentRevision"]
    good_sts = copy.deepcopy(w.fc.objects[("StatefulSet", "mysql-dataservice")]["spec"])
    w.change(unschedulable_upgrade)
    user_spec = copy.deepcopy(w.ds["spec"])
    w.stuck = {"mysql-dataservice"}
    w.pods = {"mysql": (unschedulable("mysql-dataservice-0"),)}
    w.step()
    assert w.fc.objects[("StatefulSet", "mysql-dataservice")]["spec"] != good_sts  # the upgrade started
    w.step(10.0)  # past the deadline: roll back, in the same pass
    st = w.ds["status"]
    assert st["rollback"]["to"] == good and st["rollback"]["component"] == "mysql"
    assert st["rollback"]["from"] == revision_name("dataservice-sample", user_spec)
    assert "mysql-dataservice-0 Pending: 0/3 nodes are available: 3 Insufficient cpu" in st["rollback"]["message"]
    assert st["updateRevision"] == good
    deg = condition(w.ds, "Degraded")
    assert deg["reason"] == "RolledBack" and "mysql" in deg["message"]
    assert "rolling back to revision 1" in deg["message"]
    assert [e.reason for e in w.plans[-1].events if e.type == "Warning"][-1] == "RollingBack"
    mysql = [a.manifest for a in w.plans[-1].apply if a.manifest["kind"] == "StatefulSet"]
    assert mysql and mysql[0]["spec"]["template"] == good_sts["template"], "mysql goes back first"
    w.stuck = set()
    for _ in range(40):
        w.step()
        if condition(w.ds, "Progressing")["reason"] == "RolledBack":
            break
    assert w.ds["spec"] == user_spec, "the user's spec is never rewritten"
    assert w.fc.objects[("StatefulSet", "mysql-dataservice")]["spec"] == good_sts
    assert all(o["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.4")
               for (k, _), o in w.fc.objects.items() if k == "Deployment")
    ready, deg = condition(w.ds, "Ready"), condition(w.ds, "Degraded")
    assert ready["status"] == "False" and ready["reason"] == "RolledBack"
    assert deg["status"] == "True" and deg["reason"] == "RolledBack" and "rolled back to revision 1" in deg["message"]
    assert any(e.reason == "RolledBack" for p in w.plans[-3:] for e in p.events)
    assert list(w.revisions()) == [good], "a failed spec is no revision"
    p = w.step()
    assert p.apply == () and p.delete == () and p.events == (), "rolled back is a steady state"
    # a new generation of the spec tries again
    w.change(lambda s: s["mysql"].pop("resources"))
    w.converge()
    assert "rollback" not in w.ds["status"]
    assert condition(w.ds, "Degraded")["status"] == "False"


def test_without_rollback_on_failure_an_upgrade_only_reports_the_deadline() -> None:
    w = World(with_deadline(10))
    w.converge()
    w.change(unschedulable_upgrade)
    w.stuck = {"mysql-dataservice"}
    w.step()
    w.step(11.0)
    assert "rollback" not in w.ds["status"]
    assert condition(w.ds, "Degraded")["reason"] == "ProgressDeadlineExceeded"
    assert w.plans[-1].apply == ()


def test_a_first_install_has_nothing_to_roll_back_to() -> None:
    w = World(with_deadline(10, rollbackOnFailure=True))
    w.stuck = {"mysql-dataservice"}
    w.step()
    w.step()
    w.step(11.0)
    assert "rollback" not in w.ds["status"]
    assert condition(w.ds, "Degraded")["reason"] == "ProgressDeadlineExceeded"


# -- suspend -------------------------------------------------------------------------------------------------


def test_suspend_writes_nothing_to_any_child_and_resume_continues() -> None:
    w = World(with_deadline(10, suspend=True))
    for _ in range(5):
        p = w.step(20.0)
        assert p.apply == () and p.delete == ()
    assert w.fc.objects == {}
    prog = condition(w.ds, "Progressing")
    assert prog["status"] == "False" and prog["reason"] == "Suspended"
    assert w.component("mysql")["state"] == "Waiting"
    assert w.component("mysql")["message"].startswith("suspended (spec.suspend): would apply ")
    assert condition(w.ds, "Degraded")["status"] == "False", "no deadline runs while suspended"
    assert [e.reason for p in w.plans for e in p.events] == ["Suspended"]
    w.change(lambda s: s.update(suspend=False))
    p = w.step()
    assert {a.component for a in p.apply} == {"mysql"}
    assert any(e.reason == "Resumed" for e in p.events)
    w.converge()


def test_suspend_holds_an_upgrade_and_prunes_nothing() -> None:
    w = World(sample())
    w.converge()
    w.change(lambda s: (s.update(suspend=True), s["mysql"].update(kind=0)))
    before = copy.deepcopy(w.fc.objects)
    for _ in range(3):
        p = w.step()
        assert p.apply == () and p.delete == ()
    assert w.fc.objects.keys() == before.keys()
    assert w.component("mysql")["state"] == "Waiting"
    assert condition(w.ds, "Progressing")["reason"] == "Suspended"
    assert condition(w.ds, "Ready")["status"] == "False" and condition(w.ds, "Ready")["reason"] == "Suspended"
    w.change(lambda s: s.update(suspend=False))
    w.converge()
    assert ("StatefulSet", "mysql-dataservice") not in w.fc.objects


# -- teardown ---------------------------------------------------------------------------------------------------


def test_teardown_follows_the_graph_in_force_and_independent_branches_go_together() -> None:
    ds = sample()
    # mysql last in the graph (after web), uuc first; three microservices independent of each other
    ds["spec"]["uuc"]["dependsOn"] = []
    ds["spec"]["mysql"]["dependsOn"] = ["web"]
    for k in ("proxy", "gateway-web"):
        ds["spec"][k]["dependsOn"] = ["gateway-master"]
    ds["spec"]["web"]["dependsOn"] = ["gateway-master"]
    w = World(ds)
    w.converge()
    w.ds["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    waves: list[set[str]] = []
    for _ in range(30):
        p = w.step()
        comps = {r.component for r in p.delete if r.kind != CR}
        if comps:
            waves.append(comps)
        if p.finalizer == "remove":
            break
    # nothing depends on mysql, proxy or gateway-web any more: they go first, together; then web
    assert waves[0] == {"mysql", "proxy", "gateway-web"}, waves
    assert waves[1] == {"web"}, waves
    assert waves[2] == {"gateway-master"}, waves
    assert waves[-1] == {"uuc"}, waves
    # the data and the credentials that open it stay (issue 12: one lifetime, longer than the DataService's)
    assert sorted(w.fc.objects) == [("PersistentVolumeClaim", "data-mysql-dataservice-0"),
                                    ("Secret", "mysql-dataservice-credentials")]
