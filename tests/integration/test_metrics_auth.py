"""Issue 24 B6: /metrics on the network is served only to a caller the API server authenticates (TokenReview)
and authorizes (SubjectAccessReview, get on the non-resource URL /metrics) -- asked of a real API server, with
real ServiceAccount tokens. ``--metrics-auth kubernetes`` forces it on the test's loopback address (``auto``,
the default, turns it on for any other address)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from lightkube import Client

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import wait_for  # noqa: E402
from .test_operator_leader import _ports  # noqa: E402
from .test_operator_restart import Proc  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def test_metrics_need_a_token_the_cluster_vouches_for(
    k8s_cluster: Any, client: Client, k8s_namespace: str, tmp_path: Path
) -> None:
    ns = k8s_namespace
    role = f"d3os-test-metrics-reader-{int(time.time()) % 100000}"
    docs = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "scraper", "namespace": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
         "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
         "subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": ns}]},
    ]
    k8s_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        scraper = k8s_cluster.kubectl("create", "token", "scraper", "-n", ns).stdout.strip()
        nobody = k8s_cluster.kubectl("create", "token", "nobody", "-n", ns).stdout.strip()
        op = Proc(k8s_cluster.kubeconfig, ns, tmp_path / "operator.log", ["--metrics-auth", "kubernetes"])
        try:
            port = wait_for("the metrics port", lambda: _ports(op).get("metrics"), 60)

            def get(token: str | None) -> httpx2.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return httpx2.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=15, trust_env=False)

            assert get(None).status_code == 401
            assert get("not-a-token").status_code == 401
            refused = get(nobody)
            assert refused.status_code == 403 and "system:serviceaccount:" in refused.text, refused.text
            ok = get(scraper)
            assert ok.status_code == 200 and "workqueue_depth" in ok.text, ok.text[:500]
        finally:
            op.stop()
    finally:
        with contextlib.suppress(Exception):
            k8s_cluster.kubectl("delete", "clusterrole,clusterrolebinding", role, "--ignore-not-found")
