"""Two products side by side on the real local control plane (issue "Products as data", must show 4).

A DataService and an AnalyticsService of the same name in one namespace (and again in a second one): both
reach Ready with their own PHASE, MESSAGE and READY; no Service's endpoints list the other product's pods;
kafka 1 -> 3 -> 1 while mysql 1 -> 3 -> 1 keeps both claims; deleting one instance leaves the other's objects
untouched. The oracle is what the API server holds (EndpointSlices, claims, resourceVersions), never the
operator's own view.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType

from d3os_core import api
from d3os_operator.kube import product_kind
from d3os_operator.products import installed
from d3os_testenv import harness

from .standin import StandIn, ensure_volumes, list_kind, point_uuc_at, wait_for

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NAME = "twin"
READY_TIMEOUT = 240.0
PRODUCTS = {p.names.kind: p for p in installed()}
KINDS = {kind: product_kind(p.names).res for kind, p in PRODUCTS.items()}
EndpointSlice = create_namespaced_resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices")


def _instances(uuc: StandIn) -> dict[str, dict[str, Any]]:
    ds = point_uuc_at(harness.load_sample(), uuc)
    asvc = yaml.safe_load((ROOT / "examples" / "analyticsservice-sample.yaml").read_text(encoding="utf-8"))
    for obj in (ds, asvc):
        obj["metadata"] = {"name": NAME}
        for comp in obj["spec"].values():  # a nodePort is cluster-wide: the instances of two namespaces would clash
            if isinstance(comp, dict) and "nodePort" in comp:
                comp["nodePort"] = None
    return {"DataService": ds, "AnalyticsService": asvc}


def _apply(client: Client, obj: dict[str, Any], ns: str) -> None:
    body = {**obj, "metadata": {**obj["metadata"], "namespace": ns}}
    client.patch(KINDS[obj["kind"]], NAME, body, namespace=ns, patch_type=PatchType.APPLY,
                 field_manager="d3os-user", force=True)


def _get(client: Client, kind: str, ns: str) -> dict[str, Any] | None:
    try:
        return dict(client.get(KINDS[kind], NAME, namespace=ns))
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise


def _ready(client: Client, kind: str, ns: str, generation: int | None = None) -> bool:
    obj = _get(client, kind, ns)
    status = (obj or {}).get("status") or {}
    if generation is not None and status.get("observedGeneration") != generation:
        return False
    return harness.condition(obj, "Ready").get("status") == "True"


def _pods_of(client: Client, ns: str) -> dict[str, str]:
    """pod name -> the product whose instance it belongs to, from the pod's labels (what the API server holds)."""
    out = {}
    for pod in list_kind(client, "Pod", ns):
        labels = pod["metadata"].get("labels") or {}
        if labels.get(api.LABEL_INSTANCE) == NAME:
            out[pod["metadata"]["name"]] = labels.get(api.LABEL_PRODUCT) or "dataservice"
    return out


@pytest.fixture(scope="module")
def twins(k8s_cluster: Any, client: Client, crd: None) -> Iterator[tuple[list[str], StandIn]]:
    namespaces = [f"t-twins-{uuid.uuid4().hex[:6]}", f"t-twins-{uuid.uuid4().hex[:6]}"]
    for ns in namespaces:
        client.create(Namespace(metadata=ObjectMeta(name=ns)))
    ensure_volumes(client, 12)
    try:
        with StandIn() as uuc, harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=namespaces):
            for ns in namespaces:
                for obj in _instances(uuc).values():
                    _apply(client, obj, ns)
            for ns in namespaces:
                for kind in KINDS:
                    wait_for(f"{kind} {ns}/{NAME} Ready", lambda k=kind, n=ns: _ready(client, k, n), READY_TIMEOUT)
            try:
                yield namespaces, uuc
            finally:
                for ns in namespaces:
                    for kind, res in KINDS.items():
                        if _get(client, kind, ns) is not None:
                            client.delete(res, NAME, namespace=ns)
                    for kind in KINDS:
                        wait_for(f"{kind} {ns}/{NAME} gone", lambda k=kind, n=ns: _get(client, k, n) is None, 120)
    finally:
        for ns in namespaces:
            k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_both_products_are_ready_with_their_own_columns(k8s_cluster: Any, twins: tuple[list[str], StandIn]) -> None:
    namespaces, _ = twins
    for ns in namespaces:
        table = k8s_cluster.kubectl("get", "dataservices,analyticsservices", "-n", ns, "--no-headers").stdout
        rows = [line.split() for line in table.splitlines() if line.strip()]
        assert sorted(r[0] for r in rows) == [f"analyticsservice.{api.GROUP}/{NAME}", f"dataservice.{api.GROUP}/{NAME}"]
        by = {r[0].split(".")[0]: r for r in rows}  # NAME STATUS PHASE MESSAGE READY AGE
        assert [by["dataservice"][1], by["dataservice"][2], by["dataservice"][4]] == ["Ready", "web已部署", "12/12"], by
        assert [by["analyticsservice"][1], by["analyticsservice"][2], by["analyticsservice"][4]] == [
            "Ready", "dashboard已部署", "4/4"], by
        assert "->" in by["analyticsservice"][3] and "mysql" not in by["analyticsservice"][3]


def test_no_service_routes_to_the_other_products_pods(client: Client, twins: tuple[list[str], StandIn]) -> None:
    namespaces, _ = twins
    for ns in namespaces:
        owner = _pods_of(client, ns)
        assert set(owner.values()) == {"dataservice", "analytics"}, owner
        checked = 0
        for svc in list_kind(client, "Service", ns):
            labels = svc["metadata"].get("labels") or {}
            if labels.get(api.LABEL_INSTANCE) != NAME:
                continue
            mine = labels.get(api.LABEL_PRODUCT) or "dataservice"
            slices = client.list(EndpointSlice, namespace=ns,
                                 labels={"kubernetes.io/service-name": svc["metadata"]["name"]})
            for sl in slices:
                for ep in dict(sl).get("endpoints") or []:
                    pod = (ep.get("targetRef") or {}).get("name")
                    assert owner.get(pod) == mine, f"Service {svc['metadata']['name']} ({mine}) lists pod {pod}"
                    checked += 1
        assert checked >= 10, "the endpoints were checked, not skipped"


def test_kind_switches_of_both_keep_both_claims(client: Client, twins: tuple[list[str], StandIn]) -> None:
    namespaces, uuc = twins
    ns = namespaces[0]
    base = _instances(uuc)
    claims_before = {c["metadata"]["name"] for c in list_kind(client, "PersistentVolumeClaim", ns)}
    assert {"data-mysql-dataservice-0", "data-kafka-analytics-0"} <= claims_before
    for kind_ds, kind_asvc in ((3, 3), (1, 1)):
        ds = copy.deepcopy(base["DataService"])
        asvc = copy.deepcopy(base["AnalyticsService"])
        ds["spec"]["mysql"]["kind"] = kind_ds
        asvc["spec"]["kafka"]["kind"] = kind_asvc
        if kind_ds == 3:
            ds["spec"]["mysql"]["thirdParty"] = {"url": uuc.url, "checkCMD": uuc.check_cmd}
            asvc["spec"]["kafka"]["thirdParty"] = {"url": uuc.url, "checkCMD": uuc.check_cmd}
        else:
            ds["spec"]["mysql"]["thirdParty"] = None
            asvc["spec"]["kafka"].pop("thirdParty", None)
        _apply(client, ds, ns)
        _apply(client, asvc, ns)
        gens = {k: (_get(client, k, ns) or {})["metadata"]["generation"] for k in KINDS}
        for kind in KINDS:
            wait_for(f"{kind} Ready at kind {kind_ds}", lambda k=kind, g=gens[kind]: _ready(client, k, ns, g),
                     READY_TIMEOUT)
        sts = {s["metadata"]["name"] for s in list_kind(client, "StatefulSet", ns)}
        assert ({"mysql-dataservice", "kafka-analytics"} <= sts) == (kind_ds == 1), sts
        claims = {c["metadata"]["name"] for c in list_kind(client, "PersistentVolumeClaim", ns)}
        assert claims_before <= claims, f"a claim was lost: {claims_before - claims}"


def test_deleting_one_leaves_the_other_untouched(client: Client, twins: tuple[list[str], StandIn]) -> None:
    namespaces, _ = twins
    ns = namespaces[1]

    def of(product: str) -> dict[tuple[str, str], str]:
        out = {}
        for kind in ("Deployment", "StatefulSet", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim"):
            for obj in list_kind(client, kind, ns):
                labels = obj["metadata"].get("labels") or {}
                theirs = labels.get(api.LABEL_PRODUCT) or "dataservice"
                if labels.get(api.LABEL_INSTANCE) == NAME and theirs == product:
                    out[(kind, obj["metadata"]["name"])] = obj["metadata"]["resourceVersion"]
        return out

    kept = of("dataservice")
    assert of("analytics"), "the analytics instance has objects to delete"
    client.delete(KINDS["AnalyticsService"], NAME, namespace=ns)
    wait_for("AnalyticsService gone", lambda: _get(client, "AnalyticsService", ns) is None, 120)
    wait_for("its children gone", lambda: not {k for k in of("analytics") if k[0] != "PersistentVolumeClaim"}, 120)
    time.sleep(1.0)  # let the garbage collector and the operator act on anything they were going to
    assert of("dataservice") == kept, "the DataService's objects changed when the AnalyticsService was deleted"
    assert _ready(client, "DataService", ns)
