"""Issue 24 B7: the probe policy's protected set follows the cluster, on a real API server. A node that
appears with an address, a Service or Pod in the operator's namespace, an API-server endpoint in the
``kubernetes`` EndpointSlice (the API server's own, followed by name): each is refused from then on, and
allowed again once gone. End to end: the sample's uuc stand-in listens on 127.0.0.7 (opened by
``--probe-allow-cidr 127.0.0.0/8``); once a Node reports that address, the check is refused ("a node (its
kubelet)") and uuc is no longer ready."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lightkube import Client
from lightkube.models.core_v1 import ServicePort, ServiceSpec
from lightkube.models.discovery_v1 import Endpoint
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Node, Service
from lightkube.resources.discovery_v1 import EndpointSlice

from d3os_core.probe_policy import ProbePolicy, decide, parse_cidr
from d3os_testenv import harness
from d3os_testenv.standin import StandIn

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import ensure_volumes, point_uuc_at, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

NODE_IP = "192.0.2.50"
API_IP = "192.0.2.60"


@pytest.fixture
def operator_ns(k8s_cluster: Any, client: Client) -> Iterator[str]:
    name = f"op-{int(time.time()) % 100000}"
    client.create(Namespace(metadata=ObjectMeta(name=name, labels={"d3os-testenv.d3os.io/test": "true"})))
    yield name
    with contextlib.suppress(Exception):
        client.delete(Namespace, name)


def test_the_protected_set_follows_the_cluster(
    k8s_cluster: Any, client: Client, crd: None, k8s_namespace: str, operator_ns: str
) -> None:
    ensure_volumes(client, 4)
    wide = ProbePolicy(allow=(parse_cidr("127.0.0.0/8"),))
    settings = harness.Settings(namespaces=[k8s_namespace], probe_policy=wide, operator_namespace=operator_ns)
    created: list[tuple[Any, str, str | None]] = []
    with StandIn(host="127.0.0.7") as uuc, harness.RunningOperator(k8s_cluster.kubeconfig, settings=settings) as op:
        try:
            assert op.operator is not None

            def why(address: str) -> str:
                op.check_alive()
                assert op.operator is not None
                d = decide(op.operator.probes.policy, address)
                return "" if d.allowed else d.why

            sample = point_uuc_at(harness.load_sample(), uuc)
            harness.apply_dataservice(client, sample, k8s_namespace)
            name = sample["metadata"]["name"]
            wait_for("the sample Ready (uuc at 127.0.0.7 is allowed)",
                     lambda: harness.is_ready(harness.get_dataservice(client, k8s_namespace, name)), 300)
            assert why(NODE_IP) == "" and why(API_IP) == ""

            # a node appears: its addresses are a kubelet's
            node = f"probe-node-{int(time.time()) % 100000}"
            client.create(Node(metadata=ObjectMeta(name=node)))
            created.append((Node, node, None))
            k8s_cluster.kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p", json.dumps(
                {"status": {"addresses": [{"type": "InternalIP", "address": NODE_IP},
                                          {"type": "ExternalIP", "address": "127.0.0.7"}]}}))
            wait_for("the node's address protected", lambda: "a node (its kubelet)" in why(NODE_IP), 30)
            assert "a node (its kubelet)" in why("127.0.0.7"), "a /32 protection beats the /8 allow"

            # end to end: the running check is refused now, and uuc falls out of ready
            def uuc_refused() -> bool:
                ds = harness.get_dataservice(client, k8s_namespace, name) or {}
                comps = (ds.get("status") or {}).get("components") or []
                msg = next((c.get("message", "") for c in comps if c.get("name") == "uuc"), "")
                return "refused by the probe policy" in msg and "node" in msg

            wait_for("uuc refused by the probe policy", uuc_refused, 60)
            assert not harness.is_ready(harness.get_dataservice(client, k8s_namespace, name))

            # a Service in the operator's namespace (the metrics Service's kind): its ClusterIP
            svc = client.create(Service(metadata=ObjectMeta(name="metrics", namespace=operator_ns),
                                        spec=ServiceSpec(ports=[ServicePort(port=8080)])))
            created.append((Service, "metrics", operator_ns))
            cluster_ip = svc.spec.clusterIP
            wait_for("the operator namespace's Service protected",
                     lambda: "in the operator's namespace" in why(cluster_ip), 30)

            # an API server endpoint: the kubernetes EndpointSlice, which the API server keeps of itself (this
            # control plane runs with --endpoint-reconciler-type=none: the test writes it; followed by name)
            client.create(EndpointSlice(
                metadata=ObjectMeta(name="kubernetes", namespace="default",
                                    labels={"kubernetes.io/service-name": "kubernetes"}),
                addressType="IPv4", endpoints=[Endpoint(addresses=[API_IP])]))
            created.append((EndpointSlice, "kubernetes", "default"))
            wait_for("the new API server endpoint protected", lambda: "API server" in why(API_IP), 30)

            # gone again: allowed again (the built-in refusals and flags still hold)
            client.delete(Node, node)
            wait_for("the node's address free again", lambda: why(NODE_IP) == "", 30)
            client.delete(EndpointSlice, "kubernetes", namespace="default")
            wait_for("the endpoint free again", lambda: why(API_IP) == "", 30)
            wait_for("uuc Ready again", lambda: harness.is_ready(harness.get_dataservice(client, k8s_namespace, name)),
                     120)
            assert "API server" in why(client.get(Service, "kubernetes", namespace="default").spec.clusterIP)
        finally:
            for res, n, ns in created:
                with contextlib.suppress(Exception):
                    client.delete(res, n, namespace=ns)
            harness.delete_dataservices(client, k8s_namespace)
