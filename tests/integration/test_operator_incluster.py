"""The operator as it runs in a cluster: ``d3os-operator run --in-cluster --leader-elect`` with the service
account of the generated RBAC (config/rbac, from d3os_generate.rbac): its token, CA and namespace files, as a
pod would have them, and KUBERNETES_SERVICE_HOST/PORT.
The sample rolls out to Ready and is deleted cleanly: the RBAC is enough."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from lightkube import Client

from d3os_generate import rbac
from d3os_testenv import harness
from d3os_testenv.operatorproc import OperatorProcess

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import StandIn, ensure_volumes, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

SYSTEM_NS = rbac.NAMESPACE


def _service_account_files(k8s_cluster: Any, where: Path) -> dict[str, str]:
    kc = yaml.safe_load(Path(k8s_cluster.kubeconfig).read_text())
    cluster = kc["clusters"][0]["cluster"]
    where.mkdir(parents=True, exist_ok=True)
    if "certificate-authority-data" in cluster:
        (where / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    else:
        ca = Path(cluster["certificate-authority"])
        if not ca.is_absolute():
            ca = Path(k8s_cluster.kubeconfig).parent / ca
        (where / "ca.crt").write_bytes(ca.read_bytes())
    sa = rbac.SERVICE_ACCOUNT
    token = k8s_cluster.kubectl("create", "token", sa, "-n", SYSTEM_NS, "--duration=1h").stdout.strip()
    (where / "token").write_text(token)
    (where / "namespace").write_text(SYSTEM_NS)
    server = urlsplit(cluster["server"])
    return {"KUBERNETES_SERVICE_HOST": server.hostname or "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(server.port)}


def test_in_cluster_with_the_generated_rbac(
    k8s_cluster: Any,
    client: Client,
    crd: None,
    k8s_namespace: str,
    uuc: StandIn,
    sample: dict[str, Any],
    tmp_path: Path,
) -> None:
    # another test (the kustomize install) may have just deleted this namespace: let it finish terminating
    phase = k8s_cluster.kubectl(
        "get", "namespace", SYSTEM_NS, "-o", "jsonpath={.status.phase}", check=False
    ).stdout.strip()
    if phase == "Terminating":
        k8s_cluster.kubectl("wait", "--for=delete", f"namespace/{SYSTEM_NS}", "--timeout=100s", check=False)
    k8s_cluster.kubectl("create", "namespace", SYSTEM_NS, check=False)
    k8s_cluster.kubectl("apply", "-f", "-", input=rbac.render_all())
    ensure_volumes(client)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(_service_account_files(k8s_cluster, tmp_path / "sa"))
    env["D3OS_SERVICE_ACCOUNT_DIR"] = str(tmp_path / "sa")
    env["HOME"] = str(tmp_path)  # no ~/.kube/config to fall back on
    log = tmp_path / "operator.log"
    proc = OperatorProcess(None, log, namespaces=[k8s_namespace], extra=["--in-cluster", "--leader-elect"], env=env)
    try:
        wait_for(
            "the operator to lead and sync", lambda: not proc.alive or proc.synced(), 60
        )
        proc.check()
        k8s_cluster.kubectl("apply", "-n", k8s_namespace, "-f", "-", input=yaml.safe_dump(sample, allow_unicode=True))
        wait_for(
            "Ready", lambda: harness.is_ready(harness.get_dataservice(client, k8s_namespace, "dataservice-sample")), 120
        )
        left = harness.delete_dataservices(client, k8s_namespace)
        assert left == [], "the operator could not finalize the DataService:\n" + log.read_text()[-4000:]
        text = log.read_text()
        assert "forbidden" not in text.lower(), [ln for ln in text.splitlines() if "orbidden" in ln][:3]
        lease = k8s_cluster.kubectl(
            "get",
            "lease",
            "-n",
            SYSTEM_NS,
            "d3os-operator.d3os-product.com.d3os",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ).stdout
        assert lease, "the Lease is held"
    finally:
        proc.stop()
        if harness.get_dataservice(client, k8s_namespace, "dataservice-sample") is not None:
            harness.delete_dataservices(client, k8s_namespace, timeout=1)
