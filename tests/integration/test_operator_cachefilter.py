"""Issue 12 F on the real API server: what the informers keep.

A stranger's object that carries the managed-by label (anyone can add it) but no ownerReference to a
DataService is not cached, and still blocks its name as a Conflict (found by the GET before a create);
cached objects hold no managedFields field sets and no last-applied copy; claims and Secrets are cached by
label; the caches equal a fresh LIST.
"""

from __future__ import annotations

from typing import Any

import pytest

from d3os_core import api
from d3os_operator.cachefilter import LAST_APPLIED
from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.cachetruth")
from .cachetruth import assert_cache_is_true, in_process_snapshot  # noqa: E402
from .standin import Env, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def test_a_strangers_labelled_object_is_not_cached_and_still_reported(env: Env, sample: dict[str, Any]) -> None:
    ns = env.namespace
    env.cluster.kubectl("create", "configmap", "eureka", "-n", ns, "--from-literal=owner=someone")
    env.cluster.kubectl("label", "configmap", "eureka", "-n", ns, f"{api.LABEL_MANAGED_BY}={api.MANAGED_BY}",
                        f"{api.LABEL_INSTANCE}=dataservice-sample")
    for i in range(20):  # labelled junk: none of it may take room in the cache
        env.cluster.kubectl("create", "configmap", f"junk-{i}", "-n", ns, "--from-literal=x=y")
        env.cluster.kubectl("label", "configmap", f"junk-{i}", "-n", ns, f"{api.LABEL_MANAGED_BY}={api.MANAGED_BY}")
    env.apply(sample)

    def conflict() -> dict[str, Any] | None:
        ds = env.ds()
        deg = harness.condition(ds, "Degraded")
        return ds if deg.get("reason") == "Conflict" else None

    ds = wait_for("a Conflict naming ConfigMap/eureka", conflict, 120)
    assert "ConfigMap/eureka" in harness.condition(ds, "Degraded")["message"]
    operator = env.operator.operator
    assert operator is not None
    cms = env.operator.portal.call(lambda: [r["name"] for r in operator.owned["ConfigMap"].snapshot()])  # type: ignore[union-attr]
    assert "eureka" not in cms and not [n for n in cms if n.startswith("junk-")], cms
    cm = env.obj("ConfigMap", "eureka")
    assert cm is not None and cm["data"] == {"owner": "someone"}, "never taken over"

    env.cluster.kubectl("delete", "configmap", "eureka", "-n", ns)
    env.wait_ready(timeout=180)

    def stored() -> dict[str, Any]:
        o = operator.owned
        return {
            "deployment": o["Deployment"].get(ns, "web"),
            "claim": o["PersistentVolumeClaim"].get(ns, "data-mysql-dataservice-0"),
            "secrets": [r["name"] for r in o["Secret"].snapshot() if r["namespace"] == ns],
            "parent": operator.parents.get(ns, "dataservice-sample"),
        }

    got = env.operator.portal.call(stored)  # type: ignore[union-attr]
    live = env.obj("Deployment", "web")
    assert live is not None and live["metadata"].get("managedFields"), "the API server has them"
    assert got["deployment"] is not None and "managedFields" not in got["deployment"]["metadata"]
    assert got["claim"] is not None, "the claim (no ownerReference) is cached by its label"
    assert got["secrets"], "the credentials Secret is cached"
    parent_meta = got["parent"]["metadata"]
    # kubectl apply is a hand edit: only who and how is kept, no field sets
    assert all("fieldsV1" not in e for e in parent_meta.get("managedFields") or []), parent_meta["managedFields"]
    assert LAST_APPLIED not in (parent_meta.get("annotations") or {}), "kubectl apply's copy is not kept"
    live_parent = env.ds()
    assert LAST_APPLIED in (live_parent["metadata"].get("annotations") or {}), "the test applied with kubectl"  # type: ignore[index]
    assert_cache_is_true(env.client, in_process_snapshot(env.operator), [ns])
