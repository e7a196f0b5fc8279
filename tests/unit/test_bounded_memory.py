"""Bounded memory (issue 12 F, finding 9): what the informers store and what the planner remembers.

One rule a test: informers drop managedFields and the last-applied annotation; they keep only objects a
DataService owns, but claims and Secrets by label; planner caches are keyed by digests and bounded in bytes.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest

from d3os_core import Facts, Observed, api, caches, children, parse_spec, plan
from d3os_core.desired import desired
from d3os_core.fake import FakeCluster
from d3os_core.memo import ENTRY_OVERHEAD, Memo, digest, pack, unpack
from d3os_core.product import ProductDef
from d3os_core.render import Parent
from d3os_core.spec import _MODELS, spec_model
from d3os_operator import cachefilter
from d3os_operator.informer import Informer
from d3os_operator.kube import OWNED, kind_info

from .helpers import DATASERVICE, sample

OWNER = {"apiVersion": api.API_VERSION, "kind": api.KIND, "name": "ds", "uid": "p", "controller": True}
LABELS = {api.LABEL_MANAGED_BY: api.MANAGED_BY, api.LABEL_INSTANCE: "ds"}


def child(kind: str, name: str, rv: int, *, owned: bool = True, uid: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "a", "uid": uid or f"{kind}-{name}", "resourceVersion": str(rv),
                            "labels": dict(LABELS)}
    if owned:
        meta["ownerReferences"] = [dict(OWNER)]
    return {"apiVersion": kind_info("apps/v1" if kind == "Deployment" else "v1", kind).api_version, "kind": kind,
            "metadata": meta}


def informer_for(kind: str, seen: list[tuple[str, str]] | None = None) -> Informer:
    info = next(i for i in OWNED if i.kind == kind)
    return Informer(None, info, ["a"], handler=lambda t, o, old: (seen if seen is not None else []).append(  # type: ignore[arg-type]
        (t, o["metadata"]["name"])), labels={api.LABEL_MANAGED_BY: api.MANAGED_BY},
        keep=cachefilter.keep_for(kind), transform=cachefilter.strip)


# -- informers ---------------------------------------------------------------------------------------------


def test_strip_drops_managed_fields_and_last_applied_but_remembers_hand_edits() -> None:
    o = child("Deployment", "web", 5)
    o["metadata"]["annotations"] = {cachefilter.LAST_APPLIED: "{" + "x" * 50000 + "}", api.ANNOTATION_HASH: "h"}
    o["metadata"]["managedFields"] = [
        {"manager": api.FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"x" * 100: {}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "fieldsV1": {}},
        {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {}}, "time": "t"},
    ]
    before = copy.deepcopy(o)
    s = cachefilter.strip(o)
    assert s["metadata"]["annotations"] == {api.ANNOTATION_HASH: "h"}
    assert s["metadata"]["managedFields"] == [{"manager": "kubectl-edit", "operation": "Update"}]
    assert cachefilter.stripped(s["metadata"]["managedFields"])
    assert o == before, "the input is not changed"
    o["metadata"]["managedFields"] = o["metadata"]["managedFields"][:2]
    assert "managedFields" not in cachefilter.strip(o)["metadata"], "no hand edit: nothing kept at all"


def test_informer_stores_objects_stripped_whatever_the_path() -> None:
    inf = informer_for("Deployment")
    big = child("Deployment", "web", 5)
    big["metadata"]["managedFields"] = [{"manager": api.FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"a": {}}}]
    inf._apply_event("ADDED", copy.deepcopy(big))
    assert "managedFields" not in inf.get("a", "web")["metadata"]  # type: ignore[index]
    big["metadata"]["resourceVersion"] = "6"
    assert inf.write_through(copy.deepcopy(big))
    assert "managedFields" not in inf.get("a", "web")["metadata"]  # type: ignore[index]


def test_strangers_labelled_objects_are_not_cached_for_owned_kinds() -> None:
    seen: list[tuple[str, str]] = []
    inf = informer_for("ConfigMap", seen)
    inf._apply_event("ADDED", child("ConfigMap", "stranger", 5, owned=False))
    assert inf.get("a", "stranger") is None and seen == []
    assert not inf.write_through(child("ConfigMap", "stranger", 6, owned=False))
    other = child("ConfigMap", "theirs", 7)
    other["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "d"}]
    inf._apply_event("ADDED", other)
    assert inf.get("a", "theirs") is None, "an owner that is not a DataService does not count"
    inf._apply_event("ADDED", child("ConfigMap", "ours", 8))
    assert inf.get("a", "ours") is not None


def test_an_object_whose_owner_reference_is_removed_leaves_the_cache_with_a_deleted_event() -> None:
    seen: list[tuple[str, str]] = []
    inf = informer_for("Deployment", seen)
    inf._apply_event("ADDED", child("Deployment", "web", 5))
    inf._apply_event("MODIFIED", child("Deployment", "web", 6, owned=False))
    assert inf.get("a", "web") is None and seen == [("ADDED", "web"), ("DELETED", "web")]


@pytest.mark.parametrize("kind", ["PersistentVolumeClaim", "Secret"])
def test_claims_and_secrets_are_kept_by_label_without_an_owner(kind: str) -> None:
    inf = informer_for(kind)
    inf._apply_event("ADDED", child(kind, "data-mysql-dataservice-0", 5, owned=False))
    assert inf.get("a", "data-mysql-dataservice-0") is not None
    assert inf.write_through(child(kind, "other", 6, owned=False))


def test_the_operator_wires_the_filters_into_every_informer() -> None:
    from d3os_operator.controller import Operator

    kube = SimpleNamespace(on_response=None, field_manager=api.FIELD_MANAGER)
    op = Operator(kube)  # type: ignore[arg-type]
    for parents in op.parents:  # the transform stamps the kind, then strips
        assert parents.keep is None and parents.transform is not None
        stored = parents.transform({"metadata": {"name": "x", "managedFields": [{}]}})
        assert stored["kind"] == parents.kind and "managedFields" not in stored["metadata"]
    for kind, inf in op.owned.items():
        assert inf.transform is not None, kind
        stored = inf.transform({"metadata": {"name": "x", "managedFields": [{}]}})
        assert "managedFields" not in stored["metadata"], kind
        if kind in ("PersistentVolumeClaim", "Secret"):
            assert inf.keep is None, kind
        else:
            assert inf.keep is cachefilter.owned_by_a_dataservice, kind


def test_the_core_still_finds_the_claim_and_the_credentials_in_a_filtered_cache() -> None:
    """The planner reads claims by label and Secrets as stored: an informer-shaped cache keeps both."""
    from d3os_core.fake import FakeCluster

    from .helpers import Driver

    d = Driver(sample(), FakeCluster())
    d.converge()
    kept = {k: cachefilter.strip(o) for k, o in d.fc.objects.items()
            if (cachefilter.keep_for(k[0]) or (lambda _: True))(o)}
    assert ("PersistentVolumeClaim", "data-mysql-dataservice-0") in kept
    assert any(k[0] == "Secret" for k in kept)
    p = plan(d.ds, Observed(objects=kept, probes=d.fc.probes), Facts(now="2026-01-01T00:10:00Z", secret_seed="new"),
             DATASERVICE)
    assert not p.apply and not p.delete, "a filtered, stripped cache plans nothing new"


# -- planner caches ----------------------------------------------------------------------------------------


def test_digest_keys_have_a_fixed_size() -> None:
    small, large = digest("a"), digest({"files": {"f": "x" * 1_000_000}})
    assert len(small) == len(large) == 64
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1}) != digest({"a": 1, "b": 3})


def test_memo_is_bounded_in_bytes_and_entries_least_recently_used_first() -> None:
    m: Memo[str] = Memo(size=100, max_bytes=3 * (1000 + ENTRY_OVERHEAD))
    for k in "abc":
        m.put(k, k, 1000)
    assert m.get("a") == "a"  # a is now the most recent
    m.put("d", "d", 1000)
    assert m.get("b") is None and m.get("a") == "a" and m.get("d") == "d"
    assert m.bytes <= m.max_bytes  # type: ignore[operator]
    m.put("huge", "h", 10_000)
    assert m.get("huge") is None and len(m) == 3, "a value over the whole budget is not kept"
    m.put("a", "a2", 10)
    assert m.get("a") == "a2" and m.bytes == (10 + ENTRY_OVERHEAD) + 2 * (1000 + ENTRY_OVERHEAD)
    n: Memo[int] = Memo(size=2)
    for i in range(5):
        n.put(str(i), i)
    assert len(n) == 2 and n.get("4") == 4


def test_planner_caches_stay_within_their_byte_budgets_when_big_files_are_edited() -> None:
    """Finding 9's scenario, scaled down (200 KiB of files edited 30 times, budgets of a few MiB)."""
    for name, real in caches.DEFAULT.tables().items():
        assert real.max_bytes is not None, f"{name} has a byte budget"
    MiB = 1024 * 1024
    small = caches.Caches.bounded(parsed_bytes=2 * MiB, rendered_bytes=4 * MiB)
    ds = sample()
    for i in range(30):
        ds["spec"]["trd-adapter"]["files"] = {"big.py": f"# edit {i}\n" + "x" * 200_000}
        p = plan(ds, Observed(), Facts(secret_seed="s"), DATASERVICE, caches=small)
        assert p.apply, "a valid spec: it renders"
        for memo in small.tables().values():
            assert memo.max_bytes is not None and memo.bytes <= memo.max_bytes
            assert all(len(k) == 64 for k in memo._data), "keys are digests, not spec texts"
    assert 0 < len(small.parsed) < 30 and 0 < len(small.rendered) < 30, "old entries went"


def test_the_same_spec_is_one_cache_entry_and_hits() -> None:
    mine = caches.Caches.bounded()
    ds = sample()
    first = plan(ds, Observed(), Facts(secret_seed="s"), DATASERVICE, caches=mine)
    again = plan(copy.deepcopy(ds), Observed(), Facts(secret_seed="s"), DATASERVICE, caches=mine)
    assert len(mine.parsed) == 1 and len(mine.rendered) == 1 and first.apply == again.apply
    cold = plan(copy.deepcopy(ds), Observed(), Facts(secret_seed="s"), DATASERVICE, caches=caches.Caches.bounded())
    assert cold == first, "a cache changes no result"


def test_the_render_memo_keeps_one_small_packed_entry_per_dataservice() -> None:
    """Memory follows the DataServices, not their history: a new rendering (here: once its credentials
    exist) replaces the DataService's last one; another DataService has its own. An entry is packed:
    a few kB for the sample's 39 objects, a small fraction of their JSON text."""
    import json

    mine = caches.Caches.bounded()
    fc = FakeCluster()
    ds = sample()
    p = plan(ds, fc.observed(), Facts(secret_seed="s"), DATASERVICE, caches=mine)
    assert len(mine.rendered) == 1
    fc.carry_out(p)
    assert any(k[0] == "Secret" for k in fc.objects), "the credentials are live: the rendering's inputs changed"
    again = plan(ds, fc.observed(), Facts(secret_seed="s"), DATASERVICE, caches=mine)
    assert len(mine.rendered) == 1, "the DataService's earlier rendering was replaced"
    assert again == plan(ds, fc.observed(), Facts(secret_seed="s"), DATASERVICE, caches=caches.Caches.bounded())
    plan(sample(name="other", uid="ds-uid-2"), Observed(), Facts(secret_seed="s"), DATASERVICE, caches=mine)
    assert len(mine.rendered) == 2
    text = sum(len(json.dumps(o)) for o in desired(Parent("dataservice", "default", "ds-uid-1"),
                                                    parse_spec(ds["spec"], DATASERVICE), DATASERVICE))
    assert mine.rendered.bytes < 2 * ENTRY_OVERHEAD + 2 * text / 4


def test_a_render_memo_hit_is_a_copy_nobody_can_alter() -> None:
    mine = caches.Caches.bounded()
    ds = sample()
    first = plan(ds, Observed(), Facts(secret_seed="s"), DATASERVICE, caches=mine)
    first.apply[0].manifest["metadata"]["name"] = "changed"
    again = plan(ds, Observed(), Facts(secret_seed="s"), DATASERVICE, caches=mine)
    assert again.apply[0].manifest["metadata"]["name"] != "changed"
    assert again == plan(ds, Observed(), Facts(secret_seed="s"), DATASERVICE, caches=caches.Caches.bounded())


def test_pack_keeps_plain_data_exactly_and_refuses_anything_else() -> None:
    value = {"b": (1, 2.5, None, True), "a": [{"x": "y" * 1000}, False], "": -3}
    back = unpack(pack(value) or b"")
    assert back == value and list(back) == ["b", "a", ""] and isinstance(back["b"], tuple)
    assert back["a"][1] is False and back["b"][3] is True
    assert len(pack(value) or b"") < 200, "compressed"

    class Name(str):
        pass

    assert pack({"a": Name("x")}) is None and pack([object()]) is None


def test_the_drift_memo_keeps_one_entry_per_live_object() -> None:
    """A live object's answer is remembered for its latest resourceVersion only (one entry per uid)."""
    mine = caches.Caches.bounded()
    want = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
            "metadata": {"name": "c", "annotations": {api.ANNOTATION_HASH: "h1"}}}
    live = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
            "metadata": {"name": "c", "uid": "u", "resourceVersion": "1", "annotations": {api.ANNOTATION_HASH: "h1"}}}
    assert children.up_to_date(want, live, mine) is True
    edited = copy.deepcopy(live)
    edited["data"]["k"] = "hand-edited"
    edited["metadata"]["resourceVersion"] = "2"
    assert children.up_to_date(want, edited, mine) is False
    assert children.up_to_date(want, live, mine) is True, "an older version is checked again, not mistaken"
    other = copy.deepcopy(edited)
    other["metadata"]["uid"] = "u2"
    assert children.up_to_date(want, other, mine) is False
    assert len(mine.covered) == 2


def test_spec_models_are_keyed_by_the_product_fingerprint_and_bounded() -> None:
    twin = ProductDef(DATASERVICE.name, DATASERVICE.components, DATASERVICE.part_of, DATASERVICE.version)
    assert twin is not DATASERVICE and twin.fingerprint == DATASERVICE.fingerprint
    assert spec_model(twin) is spec_model(DATASERVICE)
    other = ProductDef("other", DATASERVICE.components[:2])
    assert other.fingerprint != DATASERVICE.fingerprint and spec_model(other) is not spec_model(DATASERVICE)
    for i in range(40):
        spec_model(ProductDef(f"p{i}", DATASERVICE.components[:1]))
    assert len(_MODELS) <= _MODELS.size


def test_take_over_reads_the_object_whole_when_the_cached_copy_is_stripped() -> None:
    """The cache keeps only who edited by hand; taking their fields over needs the field sets: one GET."""
    import collections

    import anyio

    from d3os_operator.kube import Kube

    full = child("Service", "web", 9)
    full["metadata"]["managedFields"] = [
        {"manager": api.FIELD_MANAGER, "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:ports": {}}}},
        {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:ports": {"k:{\"port\":9999}": {}}}}},
    ]
    calls: list[tuple[str, Any]] = []

    class Client:
        async def get(self, res: Any, name: str, namespace: str) -> dict[str, Any]:
            calls.append(("get", name))
            return copy.deepcopy(full)

        async def patch(self, res: Any, name: str, body: Any, **kw: Any) -> dict[str, Any]:
            calls.append(("patch", body))
            return copy.deepcopy(full)

    kube = object.__new__(Kube)
    kube.client = Client()  # type: ignore[assignment]
    kube.field_manager = api.FIELD_MANAGER
    kube.writes = collections.Counter()
    cached = cachefilter.strip(copy.deepcopy(full))
    assert anyio.run(kube.take_over_fields, cached) is not None
    assert [c[0] for c in calls] == ["get", "patch"]
    patch = calls[1][1]
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "9"}
    merged = patch[1]["value"][-1]
    assert merged["manager"] == api.FIELD_MANAGER and "k:{\"port\":9999}" in str(merged["fieldsV1"])
    calls.clear()
    plain_copy = cachefilter.strip(child("Service", "db", 3))
    assert anyio.run(kube.take_over_fields, plain_copy) is None and calls == [], "no hand edit: no request"
