"""The protected set follows the cluster (issue 24, B7): what the core reads from the watched objects, and how
the shell keeps the probe policy equal to it (the integration test watches a real API server)."""

from __future__ import annotations

from typing import Any

from d3os_core.probe_policy import ProbePolicy, decide, parse_cidr
from d3os_core.protected import protected
from d3os_operator.probe_targets import ClusterAddresses


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": "ns", "uid": name, "resourceVersion": "1"}


SERVICE = {"metadata": _meta("kubernetes"), "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1", "fd00::1"]}}
SLICE = {"metadata": _meta("kubernetes"),
         "endpoints": [{"addresses": ["192.168.0.10"]}, {"addresses": ["192.168.0.11"]}]}
ENDPOINTS = {"metadata": _meta("kubernetes"), "subsets": [{"addresses": [{"ip": "192.168.0.12"}],
                                                            "notReadyAddresses": [{"ip": "192.168.0.13"}]}]}
METRICS = {"metadata": _meta("metrics-service"), "spec": {"clusterIP": "10.96.7.7", "type": "ClusterIP"}}
HEADLESS = {"metadata": _meta("headless"), "spec": {"clusterIP": "None"}}
STANDBY_SLICE = {"metadata": _meta("metrics-service-abc"), "endpoints": [
    {"addresses": ["10.244.1.5"], "conditions": {"ready": True}},
    {"addresses": ["10.244.2.6"], "conditions": {"ready": False}}]}
STANDBY_POD = {"metadata": _meta("op-2"), "status": {"podIP": "10.244.3.7", "podIPs": [{"ip": "10.244.3.7"},
                                                                                          {"ip": "fd00:244::7"}]}}
NODE = {"metadata": _meta("node-1"), "status": {"addresses": [
    {"type": "InternalIP", "address": "172.18.0.2"}, {"type": "ExternalIP", "address": "203.0.113.9"},
    {"type": "Hostname", "address": "node-1"}]}}


def test_every_source_is_protected_with_what_it_is() -> None:
    pairs = dict(protected(
        api_server=["127.0.0.1", "10.96.0.1"], kubernetes_services=[SERVICE], kubernetes_endpoint_slices=[SLICE],
        kubernetes_endpoints=[ENDPOINTS], namespace_services=[METRICS, HEADLESS],
        namespace_endpoint_slices=[STANDBY_SLICE], namespace_pods=[STANDBY_POD], nodes=[NODE],
        own_pod=["10.244.1.5", ""]))
    assert pairs == {
        "127.0.0.1": "the Kubernetes API server", "10.96.0.1": "the Kubernetes API server",
        "fd00::1": "the Kubernetes API server", "192.168.0.10": "the Kubernetes API server",
        "192.168.0.11": "the Kubernetes API server", "192.168.0.12": "the Kubernetes API server",
        "192.168.0.13": "the Kubernetes API server", "10.244.1.5": "the operator's own pod",
        "10.96.7.7": "Service metrics-service in the operator's namespace",
        "10.244.2.6": "an endpoint of metrics-service-abc in the operator's namespace",
        "10.244.3.7": "Pod op-2 in the operator's namespace", "fd00:244::7": "Pod op-2 in the operator's namespace",
        "172.18.0.2": "a node (its kubelet) node-1", "203.0.113.9": "a node (its kubelet) node-1",
    }


class Store:
    def __init__(self, *objs: dict[str, Any]) -> None:
        self.store = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs}


class Target:
    def __init__(self) -> None:
        self.policy = ProbePolicy(allow=(parse_cidr("10.0.0.0/8"),)).with_protected([("10.96.0.1", "the API server")])


def test_the_policy_follows_what_is_watched_and_keeps_what_start_found() -> None:
    target = Target()
    watcher = ClusterAddresses(kube=None, target=target, start=[("10.96.0.1", "the API server")],  # type: ignore[arg-type]
                               namespace="op")
    watcher.informers = {"nodes": Store(NODE), "namespace_services": Store(METRICS)}  # type: ignore[dict-item]
    watcher.apply()
    assert not decide(target.policy, "172.18.0.2").allowed
    assert "Service metrics-service" in decide(target.policy, "10.96.7.7").why, "protected beats the /8 allow"
    assert target.policy.allow == (parse_cidr("10.0.0.0/8"),), "the flags stay"
    watcher.informers = {"nodes": Store(), "namespace_services": Store()}  # type: ignore[dict-item]
    watcher.apply()
    assert decide(target.policy, "172.18.0.2").allowed and decide(target.policy, "10.96.7.7").allowed, "gone: free"
    assert not decide(target.policy, "10.96.0.1").allowed, "what start found stays protected"
    updates = watcher.updates
    watcher.apply()
    assert watcher.updates == updates, "no change, no new policy"


def test_a_watch_the_rbac_does_not_grant_is_skipped_after_asking(caplog: Any) -> None:
    import anyio

    class Reply:
        status_code = 201

        def __init__(self, allowed: bool) -> None:
            self.allowed = allowed

        def json(self) -> dict[str, Any]:
            return {"status": {"allowed": self.allowed}}

    asked: list[dict[str, Any]] = []

    class Http:
        async def post(self, path: str, json: dict[str, Any]) -> Reply:
            assert path.endswith("/selfsubjectaccessreviews")
            attrs = json["spec"]["resourceAttributes"]
            asked.append(attrs)
            return Reply(attrs["resource"] != "nodes")

    class Kube:
        http = Http()

    watcher = ClusterAddresses(kube=Kube(), target=Target(), start=[], namespace="op")  # type: ignore[arg-type]
    assert anyio.run(watcher.allowed, watcher.informers["nodes"]) is False
    assert anyio.run(watcher.allowed, watcher.informers["namespace_pods"]) is True
    assert asked[0] == {"namespace": "", "verb": "list", "group": "", "resource": "nodes"}
    assert {"namespace": "op", "verb": "watch", "group": "", "resource": "pods"} in asked
    # in default, by name: asked as the API server authorizes a list/watch with fieldSelector metadata.name=
    asked.clear()
    assert anyio.run(watcher.allowed, watcher.informers["kubernetes_endpoint_slices"]) is True
    assert asked == [{"namespace": "default", "verb": v, "group": "discovery.k8s.io", "resource": "endpointslices",
                      "name": "kubernetes"} for v in ("list", "watch")]
    assert watcher.informers["kubernetes_services"].fields == {"metadata.name": "kubernetes"}
    assert watcher.informers["kubernetes_services"].labels is None
    assert "forbidden" not in caplog.text.lower() and " 403" not in caplog.text
