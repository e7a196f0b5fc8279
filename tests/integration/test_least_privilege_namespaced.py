"""Least privilege for an operator that watches given namespaces (issue 12, G), under real RBAC.

The RBAC of the namespaced install (``config/namespaced``, from ``d3os_generate.rbac.namespaced_manifests``:
a Role and RoleBinding in each watched namespace; cluster-wide only the /metrics reviews and the probe policy's
list and watch of nodes) is applied for a ServiceAccount of its own
(its own operator namespace, so the cluster-wide install of test_least_privilege.py cannot lend it a
binding). The operator, authenticated as that ServiceAccount and run with ``--namespace`` = the watched
namespace, takes the seed's sample to Ready without a single Forbidden; the same identity is refused
Secrets (and everything else) in a namespace it does not watch, and anything cluster-wide but the read of
nodes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from lightkube import ApiError, Client, KubeConfig

from d3os_generate import rbac
from d3os_operator.kube import kind_info
from d3os_operator.logs import JsonFormatter
from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import Env, StandIn, ensure_volumes  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

OPERATOR_NS = "d3os-operator-namespaced"


@pytest.fixture
def outside(k8s_cluster: Any, k8s_namespace: str) -> Iterator[str]:
    """A namespace the operator does not watch, holding a Secret."""
    ns = f"{k8s_namespace}-outside"
    k8s_cluster.kubectl("create", "namespace", ns)
    k8s_cluster.kubectl("create", "secret", "generic", "not-yours", "-n", ns, "--from-literal=password=hunter2")
    try:
        yield ns
    finally:
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def namespaced_sa(k8s_cluster: Any, k8s_namespace: str) -> Iterator[str]:
    """A kubeconfig for the ServiceAccount the namespaced install binds, watching ``k8s_namespace`` only."""
    k8s_cluster.kubectl("create", "namespace", OPERATOR_NS, check=False)
    objects = rbac.render_namespaced([k8s_namespace], namespace=OPERATOR_NS)
    k8s_cluster.kubectl("apply", "-f", "-", input=objects)
    try:
        yield str(k8s_cluster.service_account_kubeconfig(OPERATOR_NS, rbac.SERVICE_ACCOUNT, duration="1h"))
    finally:
        k8s_cluster.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=objects, check=False)


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("d3os_operator")
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


def _status(call: Any) -> int:
    try:
        call()
    except ApiError as e:
        return int(e.status.code or 0)
    return 200


def test_namespaced_rbac_runs_the_seed_and_is_refused_outside(
    k8s_cluster: Any,
    client: Client,
    crd: None,
    k8s_namespace: str,
    uuc: StandIn,
    sample: dict[str, Any],
    namespaced_sa: str,
    outside: str,
    captured_log: io.StringIO,
) -> None:
    from lightkube.resources.core_v1 import ConfigMap

    ns = k8s_namespace
    ensure_volumes(client)
    with harness.RunningOperator(namespaced_sa, namespaces=[ns]) as op:
        env = Env(k8s_cluster, client, ns, uuc, op)
        try:
            env.apply(sample)
            ds = env.wait_ready(timeout=240)
            assert all(c["state"] == "Ready" for c in ds["status"]["components"])
        finally:
            harness.delete_dataservices(client, ns)
        op.check_alive()
    denied = [ln for ln in captured_log.getvalue().splitlines() if "forbidden" in ln.lower() or " 403" in ln]
    assert denied == [], denied[:3]

    sa = Client(config=KubeConfig.from_file(namespaced_sa), field_manager="least-privilege-test")
    secrets = kind_info("v1", "Secret").res
    assert _status(lambda: list(sa.list(secrets, namespace=ns))) == 200  # what it is granted, where it watches
    refused = {
        "list Secrets outside": lambda: list(sa.list(secrets, namespace=outside)),
        "get a Secret outside": lambda: sa.get(secrets, "not-yours", namespace=outside),
        "list Secrets in every namespace": lambda: list(sa.list(secrets, namespace="*")),
        "list DataServices outside": lambda: list(sa.list(harness.DATASERVICE.res, namespace=outside)),
        "list DataServices in every namespace": lambda: list(sa.list(harness.DATASERVICE.res, namespace="*")),
        "create a ConfigMap outside": lambda: sa.create(
            ConfigMap.from_dict({"metadata": {"name": "d3os-probe", "namespace": outside}, "data": {}})
        ),
        "list Secrets in kube-system": lambda: list(sa.list(secrets, namespace="kube-system")),
    }
    got = {what: _status(call) for what, call in refused.items()}
    print(f"\nas {OPERATOR_NS}/{rbac.SERVICE_ACCOUNT} (namespaced RBAC, watching {ns}): {got}")
    assert got == dict.fromkeys(refused, 403), got

    kc = ["--kubeconfig", namespaced_sa]
    for args, want in (
        (("list", "secrets", "-n", ns), "yes"),
        (("delete", "secrets", "-n", ns), "no"),  # issue 24, B8: the credentials outlive any spec
        (("delete", "configmaps", "-n", ns), "yes"),
        (("list", "secrets", "-n", outside), "no"),
        (("get", "secrets", "-n", outside), "no"),
        (("list", "secrets", "--all-namespaces"), "no"),
        (("watch", "dataservices.d3os-product.com.d3os", "-n", outside), "no"),
        (("patch", "statefulsets.apps", "-n", outside), "no"),
        (("create", "events", "-n", outside), "no"),
        (("patch", "leases.coordination.k8s.io", "-n", OPERATOR_NS), "yes"),
        (("list", "clusterroles"), "no"),
        (("list", "customresourcedefinitions.apiextensions.k8s.io"), "no"),
        # the probe policy's watches (issue 24, B7): nodes (read only), its own namespace, default by name
        (("list", "nodes"), "yes"),
        (("watch", "nodes"), "yes"),
        (("patch", "nodes"), "no"),
        (("watch", "pods", "-n", OPERATOR_NS), "yes"),
        (("watch", "endpointslices.discovery.k8s.io", "-n", OPERATOR_NS), "yes"),
        (("watch", "services/kubernetes", "-n", "default"), "yes"),
        (("list", "services", "-n", "default"), "no"),
        (("watch", "pods", "-n", outside), "no"),
    ):
        res = k8s_cluster.kubectl(*kc, "auth", "can-i", *args, check=False)
        assert res.stdout.strip() == want, (args, res.stdout, res.stderr)


def test_the_namespaced_overlay_is_a_complete_install(k8s_cluster: Any, k8s_namespace: str, tmp_path: Any) -> None:
    """config/namespaced generated for this test's namespace renders with kustomize and every object of it
    (CRD, manager namespace, Deployment, its PodDisruptionBudget and product files, ServiceAccount, Roles,
    RoleBindings) passes a server-side dry run."""
    import shutil
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "config"
    for part in ("crd", "manager"):
        shutil.copytree(root / part, tmp_path / part)
    assert rbac.main(["--watch-namespace", k8s_namespace, "--write", str(tmp_path / "namespaced")]) == 0
    rendered = k8s_cluster.kubectl("kustomize", str(tmp_path / "namespaced")).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "CustomResourceDefinition", "Deployment",
                     "Namespace", "PodDisruptionBudget", "Role", "RoleBinding", "Service",
                     "ServiceAccount"], kinds  # ConfigMap: the product files
    cluster_wide = sorted(d["metadata"]["name"] for d in docs if d["kind"].startswith("Cluster"))
    assert cluster_wide == ["d3os-operator-metrics-auth-role", "d3os-operator-metrics-auth-rolebinding",
                            "d3os-operator-metrics-reader", "d3os-operator-probe-targets-role",
                            "d3os-operator-probe-targets-rolebinding"], cluster_wide  # the /metrics reviews, nodes
    (nodes,) = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("probe-targets-role")]
    assert nodes["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}]
    phase = k8s_cluster.kubectl(
        "get", "namespace", rbac.NAMESPACE, "-o", "jsonpath={.status.phase}", check=False
    ).stdout.strip()
    if phase == "Terminating":  # another test (the kustomize install) may have just deleted it
        k8s_cluster.kubectl("wait", "--for=delete", f"namespace/{rbac.NAMESPACE}", "--timeout=100s", check=False)
    existed = k8s_cluster.kubectl("get", "namespace", rbac.NAMESPACE, check=False).returncode == 0
    try:
        if not existed:  # namespaced objects need their namespace for a server-side dry run
            k8s_cluster.kubectl("create", "namespace", rbac.NAMESPACE)
        out = k8s_cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", input=rendered
        )
        assert out.stdout.count("(server dry run)") == len(docs), out.stdout
    finally:
        if not existed:
            k8s_cluster.kubectl("delete", "namespace", rbac.NAMESPACE, "--wait=false", check=False)
