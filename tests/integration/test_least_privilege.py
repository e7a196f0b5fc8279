"""Least privilege, proven under real RBAC: the operator runs the whole seed scenario authenticated as the
ServiceAccount bound to exactly the generated role (config/rbac, from d3os_generate.rbac), and the same
identity is refused what the role does not grant. The same rollout shows the generated mysql password never
leaves its Secret: not in ConfigMaps, status, Events, the operator's log; pods get it by secretKeyRef only.

The probe policy's watches (issue 24, B7) run as that identity too: the nodes, what runs in the operator's
namespace, and in ``default`` the ``kubernetes`` Service and EndpointSlice -- by name, with the field selector
``metadata.name=kubernetes``, which the API server authorizes against the Role's resourceNames."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from lightkube import ApiError, Client, KubeConfig

from d3os_core import api
from d3os_core.probe_policy import ProbePolicy
from d3os_generate import rbac
from d3os_operator.kube import Kube, kind_info, make_client
from d3os_operator.logs import JsonFormatter
from d3os_operator.probe_targets import ClusterAddresses
from d3os_testenv import harness

from ..unit.helpers import DATASERVICE

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import Env, StandIn, ensure_volumes, events_for, list_kind  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration
MYSQL = DATASERVICE.component("mysql")


@pytest.fixture(scope="module")
def sa_kubeconfig(k8s_cluster: Any) -> str:
    # another test (the kustomize install) may have just deleted this namespace: let it finish terminating
    phase = k8s_cluster.kubectl(
        "get", "namespace", rbac.NAMESPACE, "-o", "jsonpath={.status.phase}", check=False
    ).stdout.strip()
    if phase == "Terminating":
        k8s_cluster.kubectl("wait", "--for=delete", f"namespace/{rbac.NAMESPACE}", "--timeout=100s", check=False)
    k8s_cluster.kubectl("create", "namespace", rbac.NAMESPACE, check=False)
    k8s_cluster.kubectl("apply", "-f", "-", input=rbac.render_all())
    return str(k8s_cluster.service_account_kubeconfig(rbac.NAMESPACE, rbac.SERVICE_ACCOUNT, duration="1h"))


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("d3os_operator")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_seed_scenario_as_the_service_account(
    k8s_cluster: Any,
    client: Client,
    crd: None,
    k8s_namespace: str,
    uuc: StandIn,
    sample: dict[str, Any],
    sa_kubeconfig: str,
    captured_log: io.StringIO,
) -> None:
    ensure_volumes(client)
    ns = k8s_namespace
    with harness.RunningOperator(sa_kubeconfig, namespaces=[ns]) as op:
        env = Env(k8s_cluster, client, ns, uuc, op)
        try:
            env.apply(sample)
            ds = env.wait_ready(timeout=180)
            assert all(c["state"] == "Ready" for c in ds["status"]["components"])
            op.check_alive()

            # -- the password stays in its Secret ------------------------------------------------------
            secrets = list_kind(client, "Secret", ns, labels={api.LABEL_MANAGED_BY: api.MANAGED_BY})
            assert secrets, "mysql's credentials Secret"
            generated = [k for k, v in (MYSQL.generated_secret or {}).items() if v == "<random>"]
            values = {
                base64.b64decode(s["data"][k]).decode()
                for s in secrets
                for k in generated
                if k in (s.get("data") or {})
            }
            assert values, secrets
            cms = json.dumps(list_kind(client, "ConfigMap", ns), ensure_ascii=False)
            status = json.dumps(ds.get("status"), ensure_ascii=False)
            events = json.dumps(events_for(client, ns, ds["metadata"]["name"]), ensure_ascii=False)
            workloads = [*list_kind(client, "Deployment", ns), *list_kind(client, "StatefulSet", ns)]
            for secret in values:
                for where, text in (("ConfigMaps", cms), ("status", status), ("Events", events)):
                    assert secret not in text, f"a secret value appears in {where}"
                assert secret not in captured_log.getvalue(), "a secret value appears in the operator's log"
                assert secret not in json.dumps(workloads), "a secret value is inlined in a pod template"
            refs = [
                e
                for w in workloads
                for c in w["spec"]["template"]["spec"]["containers"]
                for e in c.get("env") or []
                if "secretKeyRef" in (e.get("valueFrom") or {})
            ]
            assert refs, "pods get the credentials by secretKeyRef"
        finally:
            harness.delete_dataservices(client, ns)
        op.check_alive()
    text = captured_log.getvalue()
    assert text, "the operator logged"
    denied = [ln for ln in text.splitlines() if "forbidden" in ln.lower() or " 403" in ln]
    assert denied == [], denied[:3]


def _status(call: Any) -> int:
    try:
        call()
    except ApiError as e:
        return int(e.status.code or 0)
    return 200


def test_the_identity_is_refused_what_the_role_does_not_grant(
    k8s_cluster: Any, crd: None, k8s_namespace: str, sa_kubeconfig: str
) -> None:
    from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
    from lightkube.resources.core_v1 import Node, Pod
    from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

    sa = Client(config=KubeConfig.from_file(sa_kubeconfig), field_manager="least-privilege-test")
    ns = k8s_namespace
    # granted: what the operator uses
    assert _status(lambda: list(sa.list(harness.DATASERVICE.res, namespace=ns))) == 200
    assert _status(lambda: list(sa.list(kind_info("v1", "Secret").res, namespace=ns))) == 200
    # pods: list only (why a component past its progress deadline is stuck), never a write
    assert _status(lambda: list(sa.list(Pod, namespace=ns))) == 200
    # refused: what it does not use
    refused = {
        "get a pod": lambda: sa.get(Pod, "any", namespace=ns),
        "get a node": lambda: sa.get(Node, "any"),  # nodes: list and watch only (the probe policy)
        "list clusterroles": lambda: list(sa.list(ClusterRole)),
        "create clusterrolebinding": lambda: sa.create(
            ClusterRoleBinding.from_dict(
                {
                    "metadata": {"name": "d3os-escalate"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": rbac.SERVICE_ACCOUNT, "namespace": rbac.NAMESPACE}],
                }
            )
        ),
        "delete the CRD": lambda: sa.delete(CustomResourceDefinition, f"{api.PLURAL}.{api.GROUP}"),
        "update (PUT) a DataService": lambda: sa.replace(
            harness.DATASERVICE.res(
                apiVersion=api.API_VERSION, kind=api.KIND, metadata={"name": "x", "namespace": ns}, spec={}
            ),
        ),
    }
    got = {what: _status(call) for what, call in refused.items()}
    assert got == dict.fromkeys(refused, 403), got
    # sub-resources and other namespaces: ask the apiserver's authorizer (SelfSubjectAccessReview)
    kc = ["--kubeconfig", sa_kubeconfig]
    for args in (
        ("create", "pods/exec", "-n", ns),
        ("create", "pods", "-n", ns),
        ("delete", "pods", "-n", ns),
        ("get", "pods", "--subresource=log", "-n", ns),
        ("get", "nodes"),
        ("patch", "nodes"),
        ("get", "nodes/proxy"),
        ("list", "endpointslices.discovery.k8s.io", "-n", "default"),  # unnamed, in default: no
        ("create", "leases.coordination.k8s.io", "-n", ns),
        ("delete", "persistentvolumeclaims", "-n", ns),
        ("create", "serviceaccounts/token", "-n", ns),
        ("escalate", "clusterroles"),
        ("update", "secrets", "-n", ns),
        ("delete", "secrets", "-n", ns),  # no shipped product deletes a Secret (issue 24, B8)
        ("deletecollection", "configmaps", "-n", ns),
    ):
        res = k8s_cluster.kubectl(*kc, "auth", "can-i", *args, check=False)
        assert res.stdout.strip() == "no", (args, res.stdout, res.stderr)
    for args in (
        ("patch", "leases.coordination.k8s.io", "-n", rbac.NAMESPACE),
        ("patch", "dataservices.d3os-product.com.d3os", "--subresource=status", "-n", ns),
        ("create", "events", "-n", ns),
    ):
        res = k8s_cluster.kubectl(*kc, "auth", "can-i", *args, check=False)
        assert res.stdout.strip() == "yes", (args, res.stdout, res.stderr)
    print(
        "\n$ kubectl auth can-i --list (as the operator)\n"
        + k8s_cluster.kubectl(*kc, "auth", "can-i", "--list", "-n", ns).stdout
    )


# -- the probe policy's watches (issue 24, B7) ---------------------------------------------------------------

NODE_IP = "192.0.2.71"
API_IP = "192.0.2.72"


def test_the_probe_policy_may_follow_what_it_protects(
    k8s_cluster: Any, client: Client, sa_kubeconfig: str, captured_log: io.StringIO
) -> None:
    """As the operator's ServiceAccount under config/rbac: ``list`` and ``watch`` of nodes, of Services, Pods and
    EndpointSlices in its namespace, and of the ``kubernetes`` Service and EndpointSlice in ``default`` with the
    field selector ``metadata.name=kubernetes`` (not without it); then :class:`ClusterAddresses` itself, run
    as that identity, starts all six watches -- none skipped -- and protects what they show."""
    from lightkube.models.core_v1 import ServicePort, ServiceSpec
    from lightkube.models.discovery_v1 import Endpoint
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Node, Service
    from lightkube.resources.discovery_v1 import EndpointSlice

    kc = ["--kubeconfig", sa_kubeconfig]
    op_ns = rbac.NAMESPACE
    can = [("list", "nodes"), ("watch", "nodes"),
           *[(v, r, "-n", op_ns) for v in ("list", "watch") for r in ("services", "pods",
                                                                     "endpointslices.discovery.k8s.io")],
           *[(v, f"{r}/kubernetes", "-n", "default") for v in ("list", "watch")
             for r in ("services", "endpointslices.discovery.k8s.io")]]
    got = {args: k8s_cluster.kubectl(*kc, "auth", "can-i", *args, check=False).stdout.strip() for args in can}
    assert got == dict.fromkeys(can, "yes"), got
    for args in (("list", "endpointslices.discovery.k8s.io", "-n", "default"),
                 ("watch", "endpointslices.discovery.k8s.io", "-n", "default"),
                 ("list", "endpointslices.discovery.k8s.io/other", "-n", "default"),
                 ("get", "nodes"), ("delete", "nodes"), ("create", "nodes/proxy")):
        assert k8s_cluster.kubectl(*kc, "auth", "can-i", *args, check=False).stdout.strip() == "no", args
    # real requests as the ServiceAccount: by name with the field selector, yes; unnamed in default, no
    slices = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
    services = "/api/v1/namespaces/default/services"
    by_name, other = "?fieldSelector=metadata.name%3Dkubernetes", "?fieldSelector=metadata.name%3Dother"
    watch = "&watch=true&timeoutSeconds=1"
    paths = (slices + by_name, services + by_name, slices + by_name + watch, services + by_name + watch,
             "/api/v1/nodes", "/api/v1/nodes?watch=true&timeoutSeconds=1",
             f"/api/v1/namespaces/{op_ns}/pods?watch=true&timeoutSeconds=1", slices, slices + other)

    async def statuses() -> dict[str, int]:
        kube = Kube(make_client(KubeConfig.from_file(sa_kubeconfig)))
        try:
            return {path: (await kube.http.get(path)).status_code for path in paths}
        finally:
            await kube.aclose()

    got_status = anyio.run(statuses)
    assert got_status == {**dict.fromkeys(paths, 200), slices: 403, slices + other: 403}, got_status

    # ClusterAddresses as the ServiceAccount: every watch starts and what it shows is protected
    stamp = int(time.time()) % 100000
    node, svc_name = f"probe-rbac-node-{stamp}", f"probe-rbac-{stamp}"
    created: list[tuple[Any, str, str | None]] = []
    try:
        client.create(Node(metadata=ObjectMeta(name=node)))
        created.append((Node, node, None))
        k8s_cluster.kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"addresses": [{"type": "InternalIP", "address": NODE_IP}]}}))
        svc = client.create(Service(metadata=ObjectMeta(name=svc_name, namespace=op_ns),
                                    spec=ServiceSpec(ports=[ServicePort(port=8080)])))
        created.append((Service, svc_name, op_ns))
        # the test's control plane runs without an endpoint reconciler: the test writes the API server's own
        # slice (a cluster that has one keeps it, and its first address is looked for)
        api_ip = API_IP
        try:
            client.create(EndpointSlice(
                metadata=ObjectMeta(name="kubernetes", namespace="default",
                                    labels={"kubernetes.io/service-name": "kubernetes"}),
                addressType="IPv4", endpoints=[Endpoint(addresses=[API_IP])]))
            created.append((EndpointSlice, "kubernetes", "default"))
        except ApiError as e:
            if e.status.code != 409:
                raise
            api_ip = client.get(EndpointSlice, "kubernetes", namespace="default").endpoints[0].addresses[0]
        cluster_ip = client.get(Service, "kubernetes", namespace="default").spec.clusterIP

        class Target:
            policy = ProbePolicy()

        async def follow() -> tuple[dict[str, bool], list[tuple[str, str]]]:
            kube = Kube(make_client(KubeConfig.from_file(sa_kubeconfig)))
            watcher = ClusterAddresses(kube, Target(), [], op_ns)
            try:
                allowed = {key: await watcher.allowed(i) for key, i in watcher.informers.items()}
                if not all(allowed.values()):
                    return allowed, []  # run() would skip these watches
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watcher.run)
                    with anyio.fail_after(60):
                        for informer in watcher.informers.values():
                            await informer.synced.wait()
                        while not {NODE_IP, api_ip, cluster_ip, svc.spec.clusterIP} <= {a for a, _ in watcher.pairs()}:
                            await anyio.sleep(0.1)
                    tg.cancel_scope.cancel()
                return allowed, watcher.pairs()
            finally:
                await kube.aclose()

        allowed, pairs = anyio.run(follow)
        assert allowed == dict.fromkeys(allowed, True) and len(allowed) == 6, allowed
        protected = dict(pairs)
        assert protected[NODE_IP] == f"a node (its kubelet) {node}"
        assert protected[api_ip] == protected[cluster_ip] == "the Kubernetes API server"  # its slice, its Service
        assert protected[svc.spec.clusterIP] == f"Service {svc_name} in the operator's namespace"
    finally:
        for res, name, ns in created:
            with contextlib.suppress(Exception):
                client.delete(res, name, namespace=ns)
    text = captured_log.getvalue()
    skipped = [ln for ln in text.splitlines() if "not following" in ln or "forbidden" in ln.lower() or " 403" in ln]
    assert skipped == [], skipped[:3]
