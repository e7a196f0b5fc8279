"""Changes after Ready: ordered upgrades, kind switches (控), self-heal, conflicts, failures, deletion."""

from __future__ import annotations

from typing import Any

import pytest

from d3os_core import FINALIZER, Facts, Observed, plan
from d3os_core.fake import FakeCluster

from .helpers import DATASERVICE, ORDER, Driver, applied_components, condition, sample

MICRO = ORDER[3:]


def ready_driver(**meta: Any) -> Driver:
    d = Driver(sample(**meta))
    d.converge()
    d.fc.applied.clear()
    return d


def image_of(fc: FakeCluster, kind: str, name: str) -> str:
    return str(fc.objects[(kind, name)]["spec"]["template"]["spec"]["containers"][0]["image"])


def test_image_upgrade_rolls_one_component_at_a_time_in_order() -> None:
    d = ready_driver()

    def bump(spec: dict[str, Any]) -> None:
        for k in MICRO:
            spec[k]["image"] = spec[k]["image"].replace(":v1.4", ":v1.5")

    d.change(bump)
    rolled: list[str] = []
    for _ in range(40):
        p = d.step()
        comps = applied_components(p)
        assert len(comps) <= 1, f"two components rolled at once: {comps}"
        rolled.extend(comps)
        if d.ready and not p.apply:
            break
    assert rolled == MICRO
    for k in MICRO:
        assert image_of(d.fc, "Deployment", d.ds["spec"][k]["name"]).endswith(":v1.5")
    assert condition(d.ds, "Ready")["observedGeneration"] == 2


def test_upgrade_waits_until_the_predecessor_is_ready_at_its_new_version() -> None:
    d = ready_driver()
    d.change(lambda s: [s[k].update(image=s[k]["image"] + "-new") for k in ("api-manager", "auth")])
    p = d.step(settle=False)
    assert applied_components(p) == {"api-manager"}
    # api-manager applied but its new rollout not finished: auth must wait, however many passes
    for _ in range(3):
        p = d.step(settle=False)
        assert "auth" not in applied_components(p)
    assert d.component("auth")["state"] == "Waiting"
    d.fc.settle()
    assert applied_components(d.step(settle=False)) == {"auth"}


def workloads(fc: FakeCluster) -> set[tuple[str, str]]:
    return {k for k in fc.objects if k[0] in ("Deployment", "StatefulSet", "DaemonSet")}


def pvc_uid(fc: FakeCluster) -> str:
    return str(fc.objects[("PersistentVolumeClaim", "data-mysql-dataservice-0")]["metadata"]["uid"])


def configmap(fc: FakeCluster, name: str) -> dict[str, str]:
    return dict(fc.objects[("ConfigMap", name)]["data"])


def test_mysql_statefulset_to_third_party_and_back() -> None:
    d = ready_driver()
    uid = pvc_uid(d.fc)
    assert "mysql-dataservice.default.svc" in configmap(d.fc, "api-manager")["SPRING_DATASOURCE_URL"]

    d.change(lambda s: s["mysql"].update(kind=3, thirdParty={"url": "jdbc:mysql://db.example.com:3306/ds"}))
    first = d.step()
    # the old StatefulSet stays until the whole product has been re-wired and is ready
    assert ("StatefulSet", "mysql-dataservice") in d.fc.objects
    assert not first.delete
    d.converge()
    assert ("StatefulSet", "mysql-dataservice") not in d.fc.objects
    assert ("Service", "mysql-dataservice") not in d.fc.objects
    assert pvc_uid(d.fc) == uid
    assert "db.example.com:3306" in configmap(d.fc, "api-manager")["SPRING_DATASOURCE_URL"]
    # dependents rolled in order (config hash on their pod templates changed)
    rolled = [k for k in d.fc.applied if k[0] == "Deployment"]
    users = ["api-manager", "auth", "ds-adapter", "trd-adapter"]
    assert [n for _, n in rolled] == users
    deleted_at = d.fc.deleted
    assert ("StatefulSet", "mysql-dataservice") in deleted_at

    d.fc.applied.clear()
    d.change(lambda s: s["mysql"].update(kind=1, thirdParty=None))
    d.converge()
    assert ("StatefulSet", "mysql-dataservice") in d.fc.objects
    assert pvc_uid(d.fc) == uid
    assert "mysql-dataservice.default.svc" in configmap(d.fc, "api-manager")["SPRING_DATASOURCE_URL"]


def test_mysql_statefulset_to_deployment_stops_the_old_one_first_and_keeps_the_claim() -> None:
    d = ready_driver()
    uid = pvc_uid(d.fc)
    d.change(lambda s: s["mysql"].update(kind=0))
    p = d.step(settle=False)
    # never two mysql processes on one data directory: the StatefulSet goes before the Deployment comes
    assert [(r.kind, r.name) for r in p.delete] == [("StatefulSet", "mysql-dataservice")]
    assert "Deployment" not in {a.manifest["kind"] for a in p.apply}
    assert "stopping StatefulSet/mysql-dataservice" in d.component("mysql")["message"]
    p = d.step()
    assert ("Deployment", "mysql-dataservice") in d.fc.objects
    d.converge()
    dep = d.fc.objects[("Deployment", "mysql-dataservice")]
    vols = dep["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-mysql-dataservice-0"}} in vols
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert pvc_uid(d.fc) == uid
    assert not any(k[0] == "PersistentVolumeClaim" for k in d.fc.deleted)


def test_eureka_deployment_to_daemonset_new_ready_before_old_deleted() -> None:
    d = ready_driver()
    d.change(lambda s: s["eureka"].update(kind=2))
    p = d.step(settle=False)
    assert ("DaemonSet", "eureka") in d.fc.objects and ("Deployment", "eureka") in d.fc.objects
    assert not p.delete
    d.converge()
    assert ("DaemonSet", "eureka") in d.fc.objects
    assert ("Deployment", "eureka") not in d.fc.objects
    assert d.component("eureka")["kind"] == "DaemonSet"


def test_uuc_third_party_to_deployment_rewires_dependents() -> None:
    d = ready_driver()
    assert configmap(d.fc, "auth")["UUC_URL"] == "https://id.cosmoplat.com/duc"
    d.change(lambda s: s["uuc"].update(kind=0, thirdParty=None))
    d.converge()
    assert ("Deployment", "uuc") in d.fc.objects and ("Service", "uuc") in d.fc.objects
    assert configmap(d.fc, "auth")["UUC_URL"] == "http://uuc.default.svc:8080/duc"
    assert d.component("uuc")["kind"] == "Deployment"


def test_deleted_deployment_and_edited_service_are_restored() -> None:
    d = ready_driver()
    del d.fc.objects[("Deployment", "auth")]
    d.fc.edit("Service", "api-manager", lambda svc: svc["spec"]["ports"][0].update(port=9999))
    p = d.step()
    names = {(a.manifest["kind"], a.manifest["metadata"]["name"]) for a in p.apply}
    assert names == {("Deployment", "auth"), ("Service", "api-manager")}
    d.converge()
    assert d.fc.objects[("Service", "api-manager")]["spec"]["ports"][0]["port"] == 9085


def test_a_component_that_breaks_later_tears_nothing_down() -> None:
    d = ready_driver()
    d.fc.edit("StatefulSet", "mysql-dataservice", lambda sts: sts["status"].update(readyReplicas=0))
    p = d.step(settle=False)
    assert p.apply == () and p.delete == ()
    assert d.component("mysql")["state"] == "Progressing"
    assert condition(d.ds, "Ready")["status"] == "False"
    assert all(d.component(k)["state"] == "Ready" for k in ORDER[1:])


def test_repair_is_not_gated_by_an_unready_dependency() -> None:
    d = ready_driver()
    d.fc.edit("StatefulSet", "mysql-dataservice", lambda sts: sts["status"].update(readyReplicas=0))
    d.step(settle=False)
    del d.fc.objects[("ConfigMap", "web-template")]
    p = d.step(settle=False)
    assert [(a.manifest["kind"], a.manifest["metadata"]["name"]) for a in p.apply] == [("ConfigMap", "web-template")]


def test_progress_deadline_exceeded_is_degraded_not_waiting() -> None:
    d = Driver(sample())
    for _ in range(5):
        d.step()
    d.fc.fail("api-manager")
    d.step(settle=False)
    assert d.component("api-manager")["state"] == "Failed"
    deg = condition(d.ds, "Degraded")
    assert deg["status"] == "True" and deg["reason"] == "ProgressDeadlineExceeded"
    assert "api-manager" in deg["message"]
    assert condition(d.ds, "Progressing")["reason"] == "Stalled"
    assert any(e.reason == "ProgressDeadlineExceeded" and e.type == "Warning" for e in d.plans[-1].events)
    assert "auth" not in applied_components(d.plans[-1])


def foreign(kind: str, name: str, owner: str = "other") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {
        "name": name, "namespace": "default", "uid": f"foreign-{name}",
        "labels": {"app.kubernetes.io/managed-by": "d3os-operator", "app.kubernetes.io/instance": owner},
        "ownerReferences": [{"apiVersion": "d3os-product.com.d3os/v1", "kind": "DataService", "name": owner,
                             "uid": "other-uid", "controller": True}]}}


def test_conflict_names_the_object_and_its_owner_and_takes_nothing_over() -> None:
    fc = FakeCluster()
    fc.objects[("ConfigMap", "mysql-dataservice")] = foreign("ConfigMap", "mysql-dataservice")
    d = Driver(sample(), fc)
    p = d.step()
    assert all(a.manifest["metadata"]["name"] != "mysql-dataservice" or a.manifest["kind"] != "ConfigMap"
               for a in p.apply)
    assert not applied_components(p)
    mysql = d.component("mysql")
    assert mysql["state"] == "Conflict"
    assert "ConfigMap/mysql-dataservice is held by DataService/other" in mysql["message"]
    deg = condition(d.ds, "Degraded")
    assert deg["status"] == "True" and deg["reason"] == "Conflict"
    assert any(e.reason == "Conflict" and e.type == "Warning" for e in p.events)
    assert fc.objects[("ConfigMap", "mysql-dataservice")]["metadata"]["uid"] == "foreign-mysql-dataservice"


def test_unlabelled_holder_is_a_conflict_too() -> None:
    fc = FakeCluster()
    fc.objects[("Service", "mysql-dataservice")] = {"kind": "Service", "metadata": {
        "name": "mysql-dataservice", "uid": "x"}}
    d = Driver(sample(), fc)
    d.step()
    assert "created outside d3os-operator" in d.component("mysql")["message"]


def test_deletion_goes_in_reverse_order_and_keeps_claims() -> None:
    d = ready_driver()
    d.ds["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    order: list[str] = []
    kinds: list[set[str]] = []
    for _ in range(30):
        p = d.step()
        comps = {r.component for r in p.delete}
        assert len(comps) <= 1
        order.extend(c for c in comps if c)
        kinds.append({r.kind for r in p.delete})
        if p.finalizer == "remove":
            break
    # the revision history goes last, after every component
    assert [k for k in kinds if k][-1] == {"ControllerRevision"}
    assert all("ControllerRevision" not in k for k in [k for k in kinds if k][:-1])
    assert order == list(reversed(ORDER))  # uuc (a third party) has objects too: its Service goes before mysql's
    assert sorted(d.fc.objects) == [("PersistentVolumeClaim", "data-mysql-dataservice-0"),
                                    ("Secret", "mysql-dataservice-credentials")]  # the data and its credentials
    assert FINALIZER not in d.ds["metadata"]["finalizers"]


def test_deletion_without_our_finalizer_does_nothing() -> None:
    ds = sample(finalizers=[], deletionTimestamp="2026-01-01T00:00:00Z")
    p = plan(ds, Observed(), Facts(), DATASERVICE)
    assert p.apply == () and p.delete == () and p.finalizer is None


def test_invalid_spec_is_reported_and_touches_nothing() -> None:
    d = ready_driver()
    d.change(lambda s: s["mysql"].update(kind=2))
    p = d.step()
    assert p.apply == () and p.delete == ()
    ready = condition(d.ds, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.mysql.kind" in ready["message"]
    assert [e.reason for e in p.events] == ["InvalidSpec"]
    assert d.step().events == ()  # said once, not on every pass
    assert d.ds["status"]["phase"] == "web已部署"  # the last truthful phase is kept


@pytest.mark.parametrize("replicas", [0, 3])
def test_replica_counts_are_honoured(replicas: int) -> None:
    ds = sample()
    ds["spec"]["auth"]["replica"] = replicas
    d = Driver(ds)
    d.converge()
    assert d.fc.objects[("Deployment", "auth")]["spec"]["replicas"] == replicas


def test_dag_dependsOn_lets_independent_components_roll_together() -> None:
    ds = sample()
    for k in ("ds-adapter", "es-adapter", "trd-adapter"):
        ds["spec"][k]["dependsOn"] = ["auth"]
    ds["spec"]["gateway-master"]["dependsOn"] = ["ds-adapter", "es-adapter", "trd-adapter"]
    d = Driver(ds)
    batches = []
    for _ in range(20):
        p = d.step()
        if p.apply:
            batches.append(applied_components(p))
        if d.ready and not p.apply:
            break
    assert {"ds-adapter", "es-adapter", "trd-adapter"} in batches
    assert "[ds-adapter]->[es-adapter]->[trd-adapter]" in next(
        pl.status["message"] for pl in d.plans if {"ds-adapter"} <= applied_components(pl))


def test_an_apply_the_api_server_refused_is_named_in_status() -> None:
    import dataclasses

    d = Driver(sample())
    for _ in range(13):  # 12 components, mysql in two passes (its Secret is tied to the claim)
        d.step(settle=False) if _ == 12 else d.step()
    assert d.component("web")["state"] == "Progressing"
    del d.fc.objects[("Service", "web")]
    refused = {("Service", "web"): "spec.ports[0].nodePort: provided port is already allocated"}
    p = plan(d.ds, dataclasses.replace(d.fc.observed(), refused=refused), Facts(now="t"), DATASERVICE)
    assert ("Service", "web") in {(a.manifest["kind"], a.manifest["metadata"]["name"]) for a in p.apply}  # retried
    web = next(c for c in p.status["components"] if c["name"] == "web")
    assert web["state"] == "Failed"
    assert "the API server refused Service/web: " in web["message"] and "already allocated" in web["message"]
    deg = next(c for c in p.status["conditions"] if c["type"] == "Degraded")
    assert deg["status"] == "True" and deg["reason"] == "ApplyRefused"
