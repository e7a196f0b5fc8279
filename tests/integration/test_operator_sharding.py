"""Two shards (``d3os-operator run --watch-label-selector ... --leader-elect``, two processes), each on its own
Lease, roll out two DataServices at once: kube-apiserver's audit log shows that each shard wrote only in its
own DataService's namespace and never sent a request naming the other's DataService. Then a DataService moves
from shard1 to shard2 by relabelling: shard2 takes it (its cache, its writes on a spec change), shard1 drops
it and writes nothing more -- no restart of either -- and back again. Deleting both at the end: each shard
removes its own DataService's finalizer."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType
from prometheus_client.parser import text_string_to_metric_families

from d3os_core import api
from d3os_operator.kube import DATASERVICE
from d3os_operator.sharding import SHARD_KEY, lease_name, parse_selector
from d3os_testenv import audit, harness

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import StandIn, ensure_volumes, figures_out, wait_for  # noqa: E402
from .test_operator_restart import Proc  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

SHARD1 = f"{SHARD_KEY}=shard1"
SHARD2 = f"{SHARD_KEY} notin (shard1)"  # shard2 and the unlabelled ones: the default shard
NAME = "dataservice-sample"


def _first(p: Proc, msg: str) -> dict[str, Any] | None:
    return next((x for x in p.lines() if x.get("msg") == msg), None)


def _cached_dataservices(p: Proc) -> set[tuple[str, str]]:
    """What the shard's DataService informer holds (``--debug-cache-endpoint``)."""
    port = next(int(x["port"]) for x in p.lines() if x.get("msg") == "serving health probes")
    rows = httpx2.get(f"http://127.0.0.1:{port}/debug/cache", timeout=5, trust_env=False).json()[api.KIND]
    return {(r["namespace"], r["name"]) for r in rows}


def _reported(p: Proc) -> set[str]:
    """Namespaces of the DataServices whose components the shard reports in /metrics."""
    port = next(int(x["port"]) for x in p.lines() if x.get("msg") == "serving metrics")
    text = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    return {
        s.labels["namespace"]
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == "d3os_component_ready"
    }


def _ready(client: Client, ns: str, generation: int = 1) -> bool:
    ds = harness.get_dataservice(client, ns, NAME)
    if ds is None or not harness.is_ready(ds):
        return False
    observed = (ds.get("status") or {}).get("observedGeneration") or 0
    return bool(observed >= generation and observed == ds["metadata"]["generation"])


def _requests(cluster: Any, since: float, identity: str) -> list[audit.Request]:
    time.sleep(1.5)  # the audit backend flushes every second
    return [r for r in audit.read(cluster.audit_log, since=since, agent="d3os-operator/") if identity in r.user_agent]


def test_two_shards_split_the_dataservices_and_one_moves_without_a_restart(
    k8s_cluster: Any, client: Client, crd: None, k8s_namespace: str, uuc: StandIn, sample: dict[str, Any],
    tmp_path: Path,
) -> None:
    ns_a, ns_b = k8s_namespace, k8s_namespace[:55] + "-b"
    client.create(Namespace(metadata=ObjectMeta(name=ns_b, labels={"d3os-testenv.d3os.io/test": "true"})))
    ensure_volumes(client)
    t0 = time.time()
    common = ["--namespace", ns_b, "--leader-elect", "--leader-election-namespace", ns_a, "--debug-cache-endpoint"]
    s1 = Proc(k8s_cluster.kubeconfig, ns_a, tmp_path / "shard1.log", [*common, "--watch-label-selector", SHARD1])
    s2 = Proc(k8s_cluster.kubeconfig, ns_a, tmp_path / "shard2.log", [*common, "--watch-label-selector", SHARD2])
    try:
        # each shard leads on its own Lease, at once (neither waits for the other)
        for p in (s1, s2):
            wait_for(f"{p.log.name} to lead", lambda p=p: p.p.poll() is not None or _first(p, "became leader"), 60)
            assert p.p.poll() is None, p.log.read_text()[-3000:]
        led1, led2 = _first(s1, "became leader"), _first(s2, "became leader")
        assert led1 and led2
        id1, id2 = str(led1["identity"]), str(led2["identity"])
        lease1, lease2 = lease_name(parse_selector(SHARD1)), lease_name(parse_selector(SHARD2))
        assert lease1 == "d3os-operator-shard1.d3os-product.com.d3os" and lease2 != lease1
        assert led1["lease"] == f"{ns_a}/{lease1}" and led2["lease"] == f"{ns_a}/{lease2}"
        assert client.get(Lease, lease1, namespace=ns_a).spec.holderIdentity == id1
        assert client.get(Lease, lease2, namespace=ns_a).spec.holderIdentity == id2
        starting = [_first(p, "starting") for p in (s1, s2)]
        assert [x and x["selector"] for x in starting] == [SHARD1, f"{SHARD_KEY} notin (shard1)"]

        # one DataService per shard (own namespace: the sample's object names are fixed), applied at once
        a = json.loads(json.dumps(sample))
        a["metadata"]["labels"] = {SHARD_KEY: "shard1"}
        a["spec"]["web"]["nodePort"] = 30251
        b = json.loads(json.dumps(sample))
        b["spec"]["web"]["nodePort"] = 30252
        t_apply = time.time()
        for ns, manifest in ((ns_a, a), (ns_b, b)):
            k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(manifest, allow_unicode=True))
        wait_for("both Ready", lambda: _ready(client, ns_a) and _ready(client, ns_b), 360, interval=0.5)
        both_ready_s = time.time() - t_apply
        assert _cached_dataservices(s1) == {(ns_a, NAME)}
        assert _cached_dataservices(s2) == {(ns_b, NAME)}
        assert (_reported(s1), _reported(s2)) == ({ns_a}, {ns_b})

        r1, r2 = _requests(k8s_cluster, t0, id1), _requests(k8s_cluster, t0, id2)
        w1 = [r for r in r1 if r.is_write and r.resource != "leases"]
        w2 = [r for r in r2 if r.is_write and r.resource != "leases"]
        assert w1 and w2, "both shards worked"
        assert {r.namespace for r in w1} == {ns_a}, sorted({(r.namespace, r.resource) for r in w1})
        assert {r.namespace for r in w2} == {ns_b}, sorted({(r.namespace, r.resource) for r in w2})
        # never a request (read or write) naming the other shard's DataService
        assert not [r for r in r1 if r.resource == api.PLURAL and r.namespace == ns_b and r.name]
        assert not [r for r in r2 if r.resource == api.PLURAL and r.namespace == ns_a and r.name]
        # and the DataService informers list/watch with the shard's selector (only collection requests)
        assert {r.verb for r in r1 if r.resource == api.PLURAL and not r.name} <= {"list", "watch"}
        # each DataService's finalizer and status were written by our field manager, by its own shard only
        for ns in (ns_a, ns_b):
            ds = harness.get_dataservice(client, ns, NAME) or {}
            assert api.FINALIZER in ds["metadata"].get("finalizers", [])
            assert any(m.get("manager") == api.FIELD_MANAGER for m in ds["metadata"].get("managedFields") or [])

        # move A from shard1 to shard2 by relabelling (as a user would), no restart
        t_move = time.time()
        k8s_cluster.kubectl("label", "-n", ns_a, "dataservice", NAME, f"{SHARD_KEY}=shard2", "--overwrite")
        wait_for("shard2 to take A", lambda: (ns_a, NAME) in _cached_dataservices(s2), 60)
        wait_for("shard1 to drop A", lambda: not _cached_dataservices(s1), 60)
        # a spec change after the move: shard2 rolls it out
        patch = {"spec": {"api-manager": {"env": {"writer": "moved"}}}}
        got = client.patch(DATASERVICE.res, NAME, patch, namespace=ns_a, patch_type=PatchType.MERGE)
        generation = int(got.metadata.generation)
        wait_for("A Ready at its new generation", lambda: _ready(client, ns_a, generation), 240, interval=0.5)
        moved_ready_s = time.time() - t_move
        after1 = [r for r in _requests(k8s_cluster, t_move, id1) if r.is_write and r.resource != "leases"]
        after2 = [r for r in _requests(k8s_cluster, t_move, id2) if r.is_write and r.resource != "leases"]
        assert not after1, f"shard1 wrote after A left it: {after1[:5]}"
        assert (_reported(s1), _reported(s2)) == (set(), {ns_a, ns_b}), "shard1 forgot A (its metrics too)"
        assert {(r.resource, r.name) for r in after2 if r.namespace == ns_a} >= {("deployments", "api-manager")}
        assert any(r.resource == api.PLURAL and r.subresource == "status" and r.namespace == ns_a for r in after2)
        for p in (s1, s2):
            assert p.p.poll() is None, "no restart"
            assert sum(1 for x in p.lines() if x.get("msg") == "became leader") == 1

        # and back: the server tells shard1 ADDED for the DataService it saw DELETED (left its selector) before
        t_back = time.time()
        k8s_cluster.kubectl("label", "-n", ns_a, "dataservice", NAME, f"{SHARD_KEY}=shard1", "--overwrite")
        wait_for("shard1 to take A back", lambda: (ns_a, NAME) in _cached_dataservices(s1), 60)
        wait_for("shard2 to drop A", lambda: _cached_dataservices(s2) == {(ns_b, NAME)}, 60)
        patch = {"spec": {"api-manager": {"env": {"writer": "back"}}}}
        got = client.patch(DATASERVICE.res, NAME, patch, namespace=ns_a, patch_type=PatchType.MERGE)
        wait_for("A Ready again", lambda: _ready(client, ns_a, int(got.metadata.generation)), 240, interval=0.5)
        back1 = [r for r in _requests(k8s_cluster, t_back, id1) if r.is_write and r.resource != "leases"]
        back2 = [r for r in _requests(k8s_cluster, t_back, id2) if r.is_write and r.resource != "leases"]
        assert ("deployments", "api-manager") in {(r.resource, r.name) for r in back1 if r.namespace == ns_a}
        assert not [r for r in back2 if r.namespace == ns_a], f"shard2 wrote to A after it left: {back2[:5]}"

        # deleting both: each shard removes its own DataService's finalizer (none has to be stripped)
        t_del = time.time()
        assert harness.delete_dataservices(client, ns_a, timeout=120) == []
        assert harness.delete_dataservices(client, ns_b, timeout=120) == []
        del1 = [r for r in _requests(k8s_cluster, t_del, id1) if r.is_write and r.resource != "leases"]
        del2 = [r for r in _requests(k8s_cluster, t_del, id2) if r.is_write and r.resource != "leases"]
        assert {r.namespace for r in del1} == {ns_a} and {r.namespace for r in del2} == {ns_b}
        assert {(r.resource, r.namespace) for r in del1 if r.verb == "patch"} >= {(api.PLURAL, ns_a)}
        figures_out(
            "sharding",
            {
                "two_shards_both_ready_s": round(both_ready_s, 1),
                "writes_shard1": len(w1),
                "writes_shard2": len(w2),
                "moved_and_rolled_out_s": round(moved_ready_s, 1),
                "writes_shard2_after_move": len(after2),
                "writes_shard1_after_move": len(after1),
            },
        )
    finally:
        for p in (s1, s2):
            p.stop()
        with contextlib.suppress(ApiError):  # after a failure: strip what is left, so the namespaces can go
            harness.delete_dataservices(client, ns_a, timeout=5)
            harness.delete_dataservices(client, ns_b, timeout=5)
            client.delete(Namespace, ns_b)
    for p in (s1, s2):
        assert _first(p, "stopped"), p.log.read_text()[-2000:]
