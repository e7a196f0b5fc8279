"""The local control plane (d3os_testenv) behaves like a real cluster: controllers, scheduler, kwok
kubelets, PV binding, NodePorts, RBAC for ServiceAccount tokens.

Run: ``pytest -m integration tests/integration/test_testenv.py`` (starts a private cluster for the
session, or uses ``D3OS_TEST_KUBECONFIG``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.codecs import from_dict
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.apps_v1 import DaemonSet, Deployment, ReplicaSet, StatefulSet
from lightkube.resources.core_v1 import ConfigMap, Node, PersistentVolumeClaim, Pod, Secret, Service

from . import standin

pytestmark = pytest.mark.integration

IMAGE = "registry.example/d3os/fake:1"  # kwok does not pull images


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25) -> Any:
    return standin.wait_for(what, cond, timeout, interval)


def _labels(app: str) -> dict[str, Any]:
    return {"matchLabels": {"app": app}}


def _pod_template(app: str, image: str = IMAGE) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }


def deployment(name: str, replicas: int = 3, image: str = IMAGE) -> Any:
    return from_dict(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": _labels(name),
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
                "template": _pod_template(name, image),
            },
        }
    )


def _deployment_done(client: Client, name: str, ns: str, replicas: int) -> bool:
    d = client.get(Deployment, name, namespace=ns)
    st = d.status
    if st is None or (st.observedGeneration or 0) < (d.metadata.generation or 0):
        return False
    available = any(c.type == "Available" and c.status == "True" for c in (st.conditions or []))
    return bool(
        available
        and st.updatedReplicas == replicas
        and st.availableReplicas == replicas
        and st.readyReplicas == replicas
        and (st.replicas or 0) == replicas  # no old pods left
    )


def test_nodes_ready(k8s_cluster: Any) -> None:
    nodes = k8s_cluster.client().list(Node)
    ready = [
        n.metadata.name
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
    ]
    assert len(ready) >= 3, ready


def test_deployment_becomes_available(k8s_cluster: Any, k8s_namespace: str) -> None:
    client = k8s_cluster.client()
    client.create(deployment("web", replicas=3), namespace=k8s_namespace)
    wait_for("Deployment web to have 3 available replicas", lambda: _deployment_done(client, "web", k8s_namespace, 3))
    pods = list(client.list(Pod, namespace=k8s_namespace, labels={"app": "web"}))
    assert len(pods) == 3
    assert all(p.status.phase == "Running" and p.spec.nodeName for p in pods)


def test_rolling_update_completes(k8s_cluster: Any, k8s_namespace: str) -> None:
    client = k8s_cluster.client()
    ns = k8s_namespace
    client.create(deployment("roll", replicas=3, image=IMAGE), namespace=ns)
    wait_for("initial rollout", lambda: _deployment_done(client, "roll", ns, 3))
    new_image = "registry.example/d3os/fake:2"
    client.patch(
        Deployment,
        "roll",
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": new_image}]}}}},
        namespace=ns,
    )
    wait_for("rolling update to complete", lambda: _deployment_done(client, "roll", ns, 3))
    pods = list(client.list(Pod, namespace=ns, labels={"app": "roll"}))
    live = [p for p in pods if p.metadata.deletionTimestamp is None]
    assert len(live) == 3
    assert {p.spec.containers[0].image for p in live} == {new_image}
    rss = list(client.list(ReplicaSet, namespace=ns, labels={"app": "roll"}))
    assert len(rss) == 2
    assert sorted((rs.status.replicas or 0) for rs in rss) == [0, 3]


def test_statefulset_with_volume_claim_becomes_ready(k8s_cluster: Any, k8s_namespace: str) -> None:
    client = k8s_cluster.client()
    ns = k8s_namespace
    k8s_cluster.ensure_pvs(4)
    client.create(
        from_dict(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "db"},
                "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]},
            }
        ),
        namespace=ns,
    )
    client.create(
        from_dict(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {
                    "serviceName": "db",
                    "replicas": 2,
                    "selector": _labels("db"),
                    "template": _pod_template("db"),
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data"},
                            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                        }
                    ],
                },
            }
        ),
        namespace=ns,
    )

    def ready() -> bool:
        st = client.get(StatefulSet, "db", namespace=ns).status
        return bool(st and st.readyReplicas == 2 and st.availableReplicas == 2)

    wait_for("StatefulSet db to have 2 ready replicas", ready)
    pvcs = {p.metadata.name: p for p in client.list(PersistentVolumeClaim, namespace=ns)}
    assert set(pvcs) == {"data-db-0", "data-db-1"}
    for pvc in pvcs.values():
        assert pvc.status.phase == "Bound", pvc.status
        assert pvc.spec.volumeName
        assert pvc.spec.storageClassName == "standard"  # the default StorageClass


def test_daemonset_rolls_out_on_every_node(k8s_cluster: Any, k8s_namespace: str) -> None:
    client = k8s_cluster.client()
    ns = k8s_namespace
    nodes = {n.metadata.name for n in client.list(Node)}
    client.create(
        from_dict(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "agent"},
                "spec": {"selector": _labels("agent"), "template": _pod_template("agent")},
            }
        ),
        namespace=ns,
    )

    def rolled_out() -> bool:
        st = client.get(DaemonSet, "agent", namespace=ns).status
        return bool(
            st
            and st.desiredNumberScheduled == len(nodes)
            and st.numberReady == len(nodes)
            and st.updatedNumberScheduled == len(nodes)
        )

    wait_for(f"DaemonSet agent ready on all {len(nodes)} nodes", rolled_out)
    placed = {p.spec.nodeName for p in client.list(Pod, namespace=ns, labels={"app": "agent"})}
    assert placed == nodes


def test_nodeport_service_is_accepted(k8s_cluster: Any, k8s_namespace: str) -> None:
    client = k8s_cluster.client()
    ns = k8s_namespace
    svc = from_dict(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "edge"},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "edge"},
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30180}],
            },
        }
    )

    def create() -> bool:
        try:
            client.create(svc, namespace=ns)
            return True
        except ApiError as e:  # a previous run's namespace may still be terminating
            if e.status.code == 422 and "already allocated" in (e.status.message or ""):
                return False
            raise

    wait_for("nodePort 30180 to be free", create, timeout=60)
    try:
        got = client.get(Service, "edge", namespace=ns)
        assert got.spec.type == "NodePort"
        assert got.spec.ports[0].nodePort == 30180
        assert got.spec.clusterIP and got.spec.clusterIP.startswith("10.")
    finally:
        client.delete(Service, "edge", namespace=ns)  # free the cluster-wide port at once


def _rbac(client: Client, ns: str) -> None:
    for obj in (
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}},
    ):
        client.create(from_dict(obj), namespace=ns)


def _assert_least_privilege(kubeconfig: str, ns: str) -> None:
    sa = Client(config=KubeConfig.from_file(kubeconfig))
    try:
        # granted by the Role
        assert sa.get(ConfigMap, "settings", namespace=ns).data == {"a": "1"}
        assert "settings" in {c.metadata.name for c in sa.list(ConfigMap, namespace=ns)}
        # not granted: other verbs, other resources, other namespaces
        denied = [
            lambda: sa.create(
                from_dict({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}), namespace=ns
            ),
            lambda: list(sa.list(Secret, namespace=ns)),
            lambda: sa.delete(ConfigMap, "settings", namespace=ns),
            lambda: list(sa.list(ConfigMap, namespace="default")),
            lambda: list(sa.list(Node)),
        ]
        for call in denied:
            with pytest.raises(ApiError) as ei:
                call()
            assert ei.value.status.code == 403, ei.value.status
    finally:
        sa.close()


def test_service_account_kubeconfig_is_least_privilege(k8s_cluster: Any, k8s_namespace: str, tmp_path: Any) -> None:
    client = k8s_cluster.client()
    ns = k8s_namespace
    _rbac(client, ns)
    path = k8s_cluster.service_account_kubeconfig(ns, "reader", path=tmp_path / "reader.kubeconfig")
    _assert_least_privilege(str(path), ns)
    # kubectl with the same kubeconfig: `auth can-i` agrees
    assert k8s_cluster.kubectl("auth", "can-i", "list", "configmaps", "-n", ns, kubeconfig=path).stdout.strip() == "yes"
    res = k8s_cluster.kubectl("auth", "can-i", "create", "configmaps", "-n", ns, kubeconfig=path, check=False)
    assert res.stdout.strip() == "no"


def test_cli_kubeconfig_for_service_account(k8s_cluster: Any, k8s_namespace: str, tmp_path: Any) -> None:
    if not hasattr(k8s_cluster, "run_dir"):
        pytest.skip("the CLI needs a cluster started by d3os-testenv")
    ns = k8s_namespace
    _rbac(k8s_cluster.client(), ns)
    env = dict(os.environ, D3OS_TESTENV_RUN_DIR=str(k8s_cluster.run_dir.parent))
    cli = [sys.executable, "-m", "d3os_testenv.cli"]
    out = subprocess.run(
        [*cli, "kubeconfig", "--name", k8s_cluster.name, "--service-account", f"{ns}/reader"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    path = tmp_path / "cli.kubeconfig"
    path.write_text(out)
    _assert_least_privilege(str(path), ns)
    env_out = subprocess.run(
        [*cli, "env", "--name", k8s_cluster.name], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert f"export KUBECONFIG={k8s_cluster.kubeconfig}" in env_out
    assert f"export PATH={k8s_cluster.bin_dir}:" in env_out


def test_apiserver_restart_keeps_state(k8s_cluster: Any, k8s_namespace: str) -> None:
    """Chaos hook: the apiserver alone can be stopped and started again; state survives in etcd."""
    if not getattr(k8s_cluster, "ephemeral", False) and os.environ.get("D3OS_TEST_CHAOS") != "1":
        pytest.skip("restarts the apiserver: only on the session's own cluster (or with D3OS_TEST_CHAOS=1)")
    client = k8s_cluster.client()
    ns = k8s_namespace
    client.create(
        from_dict({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}, "data": {"k": "v"}}),
        namespace=ns,
    )
    k8s_cluster.stop_component("kube-apiserver")
    assert k8s_cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=20).returncode != 0
    k8s_cluster.start_component("kube-apiserver")
    assert client.get(ConfigMap, "keep", namespace=ns).data == {"k": "v"}
    client.create(deployment("after", replicas=2), namespace=ns)
    wait_for("a Deployment after the restart", lambda: _deployment_done(client, "after", ns, 2))
