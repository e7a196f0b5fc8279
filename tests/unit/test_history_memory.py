"""The operator's memory does not grow with history (issue 24, A1): revisions are cached without their data
and the few a plan reads are read whole; label-selected objects (Secrets, claims) are cut to what the core
reads. The lifecycle tests run again through that view, so history, rollback and numbering still work."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from d3os_core import Observed, plan, revisions
from d3os_core.product import ProductDef
from d3os_core.types import Facts
from d3os_operator import cachefilter
from d3os_operator.revisiondata import RevisionData

from . import test_plan_lifecycle as lifecycle
from .helpers import DATASERVICE

SECRET_KEYS = frozenset(k for c in DATASERVICE.components for k in c.generated_secret or {})
STRIP_REVISION = cachefilter.transform_for("ControllerRevision")


def cache_view(parent: Mapping[str, Any], observed: Observed) -> Observed:
    """What the shell plans with: each object through its informer's transform, then the revisions
    :func:`revisions.data_needed` names read whole (as :class:`RevisionData` does)."""
    full = observed.objects
    cached = {k: cachefilter.transform_for(k[0], SECRET_KEYS)(dict(o)) for k, o in full.items()}
    meta = parent.get("metadata") or {}
    for name in revisions.data_needed(cached, str(meta.get("uid") or ""), parent.get("status") or {}):
        key = (revisions.KIND, name)
        cached[key] = {**cached[key], "data": full[key]["data"]}
    return dataclasses.replace(observed, objects=cached)


@pytest.fixture
def through_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    def planned(parent: Any, observed: Observed, facts: Facts, product: ProductDef, *a: Any, **kw: Any) -> Any:
        return plan(parent, cache_view(parent, observed), facts, product, *a, **kw)

    monkeypatch.setattr(lifecycle, "plan", planned)


@pytest.mark.parametrize("test", [
    lifecycle.test_each_spec_that_reaches_ready_is_a_revision_and_history_is_pruned,
    lifecycle.test_a_spec_that_comes_back_takes_the_next_number_on_its_own_revision,
    lifecycle.test_an_upgrade_past_its_deadline_rolls_back_to_the_last_ready_revision,
])
def test_history_and_rollback_work_from_a_cache_without_revision_data(through_the_cache: None, test: Any) -> None:
    test()


def test_a_revision_is_cached_without_its_data_but_a_strangers_is_not_touched() -> None:
    ours = {"metadata": {"name": "ds-1", "ownerReferences": [{"apiVersion": "d3os-product.com.d3os/v1"}]},
            "data": {"spec": {"x": "y" * 1_000_000}}, "revision": 3}
    kept = STRIP_REVISION(ours)
    assert "data" not in kept and kept["revision"] == 3 and "data" in ours
    stranger = {"metadata": {"name": "sts-1", "ownerReferences": [{"apiVersion": "apps/v1"}]}, "data": {"a": 1}}
    assert STRIP_REVISION(stranger)["data"] == {"a": 1}


def test_a_tenants_labelled_secret_costs_the_cache_a_fixed_few_hundred_bytes() -> None:
    big = "A" * (1 << 20)
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {
        "name": "junk", "namespace": "t", "uid": "u", "resourceVersion": "5",
        "labels": {"app.kubernetes.io/managed-by": "d3os-operator", "junk": "x"},
        "annotations": {"junk": big, "d3os-product.com.d3os/credentials": "s"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": f"c{i}", "uid": str(i)}
                            for i in range(1000)]},
        "data": {"blob": big, "password": "cGFzcw=="}}
    kept = cachefilter.transform_for("Secret", SECRET_KEYS)(secret)
    assert len(json.dumps(kept)) < 16 * 1024
    assert kept["data"] == {"password": "cGFzcw=="}, "the credentials a product generates are kept"
    assert kept["metadata"]["annotations"] == {"d3os-product.com.d3os/credentials": "s"}
    assert kept["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "d3os-operator"}
    claim = {"metadata": {"name": "data-x-0", "annotations": {"junk": big}}, "spec": {"resources": {}},
             "status": {"phase": "Bound"}}
    kept_claim = cachefilter.transform_for("PersistentVolumeClaim")(claim)
    assert len(json.dumps(kept_claim)) < 1024 and kept_claim["status"] == {"phase": "Bound"}


class FakeKube:
    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.gets: list[str] = []

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets.append(name)
        return self.objects.get(name)


def _revision(i: int) -> dict[str, Any]:
    owner = {"uid": "p", "apiVersion": "d3os-product.com.d3os/v1"}
    return {"metadata": {"name": f"ds-{i}", "uid": f"r{i}", "ownerReferences": [owner]}, "revision": i,
            "data": {"spec": {"env": str(i) * 1000}}}


def test_revision_data_holds_only_what_a_plan_reads_however_long_the_history() -> None:
    full = {f"ds-{i}": _revision(i) for i in range(1, 21)}
    kube = FakeKube(full)
    data = RevisionData(kube)  # type: ignore[arg-type]
    cache = {(revisions.KIND, n): STRIP_REVISION(o) for n, o in full.items()}
    parent = {"metadata": {"namespace": "ns", "uid": "p"}, "status": {"currentRevision": "ds-20"}}

    async def passes() -> None:
        for _ in range(3):
            objects: dict[tuple[str, str], Any] = dict(cache)
            await data.fill("key", parent, objects)
            assert objects[(revisions.KIND, "ds-20")]["data"] == full["ds-20"]["data"]
            assert all("data" not in objects[(revisions.KIND, f"ds-{i}")] for i in range(1, 20))

    anyio.run(passes)
    assert kube.gets == ["ds-20"], "read once: a revision's data never changes"
    assert data.kept() == 1
    parent["status"] = {"currentRevision": "ds-5", "rollback": {"to": "ds-5"}}
    anyio.run(data.fill, "key", parent, dict(cache))
    assert data.kept() == 2 and kube.gets == ["ds-20", "ds-5"], "the current one and the newest"
    data.forget("key")
    assert data.kept() == 0


def test_a_slot_keeps_one_entry_per_instance_not_one_per_generation() -> None:
    from d3os_core.memo import Memo

    m: Memo[str] = Memo(size=100, max_bytes=10_000)
    m.put("k1", "gen1", 100, slot="ds-a:spec")
    m.put("k2", "gen2", 100, slot="ds-a:spec")
    assert m.get("k1") is None and m.get("k2") == "gen2", "the generation the slot left is gone"
    m.put("k2", "gen2", 100, slot="ds-b:spec")  # another instance with the very same spec
    m.put("k3", "gen3", 100, slot="ds-a:spec")
    assert m.get("k2") == "gen2", "still held by another slot"
    m.put("k4", "x", 100)
    m.put("k5", "y", 100)
    assert m.get("k4") == "x", "entries without a slot age out as before"
    assert m.bytes == sum(100 + 256 for _ in range(4))


def test_twenty_generations_leave_one_parsed_spec_per_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    from d3os_core.caches import Caches
    from d3os_core.fake import FakeCluster

    from . import helpers

    caches = Caches.bounded()
    monkeypatch.setattr(helpers, "plan", lambda *a, **kw: plan(*a, caches=caches, **kw))
    ds = helpers.sample()
    ds["metadata"].update(uid="u1", namespace="ns")
    d = helpers.Driver(ds, FakeCluster())
    d.converge()
    for g in range(2, 21):
        d.change(lambda s, g=g: s["api-manager"].setdefault("env", {}).update(GEN=str(g)))
        d.converge()
    assert len(caches.parsed) == 1, "the spec and its current revision are one entry; no past generation stays"


def test_the_revision_of_the_instances_own_spec_is_not_read_nor_copied() -> None:
    spec = {"web": {"name": "web", "env": {"A": "x" * 1000}}, "suspend": False}
    name = revisions.revision_name("ds", spec)
    owner = {"uid": "p", "apiVersion": "d3os-product.com.d3os/v1"}
    cached = {(revisions.KIND, name): {"metadata": {"name": name, "uid": "r1", "ownerReferences": [owner]},
                                       "revision": 1}}
    kube = FakeKube({})
    data = RevisionData(kube)  # type: ignore[arg-type]
    parent = {"metadata": {"name": "ds", "namespace": "ns", "uid": "p"}, "spec": spec,
              "status": {"currentRevision": name}}
    objects: dict[tuple[str, str], Any] = dict(cached)
    anyio.run(data.fill, "key", parent, objects)
    assert kube.gets == [] and data.kept() == 0
    filled = objects[(revisions.KIND, name)]["data"]["spec"]
    assert filled == {"web": spec["web"]} and filled["web"] is spec["web"], "the instance's own objects, shared"
