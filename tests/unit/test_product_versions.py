"""Product versions (issue "Products as data", point 7): what ``d3os product diff`` says a new product file
does to existing instances, ``status.productVersion``, and the version a revision records.

Expectations are worked out by hand from the files (which component a change reaches, which change an
existing instance could not survive), never from the function under test.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_core import api
from d3os_core.fake import FakeCluster
from d3os_core.planner import plan
from d3os_core.product import ProductDef
from d3os_core.productdiff import crd_compatibility, diff_products
from d3os_core.productload import dump_product, load_product
from d3os_core.types import Facts
from d3os_operator.products import installed

ROOT = Path(__file__).resolve().parents[2]
ANALYTICS = next(p for p in installed() if p.name == "analytics")


def _edited(change: Any, version: str = "2.1.0") -> ProductDef:
    doc = dump_product(ANALYTICS)
    doc["metadata"]["version"] = version
    change(doc)
    return load_product(doc)


def _component(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return next(c for c in doc["components"] if c["key"] == key)


def test_a_version_alone_rolls_nothing_but_is_a_change() -> None:
    d = diff_products(ANALYTICS, _edited(lambda doc: None))
    assert (d.rolls, d.breaking, d.changed) == ((), (), True)
    assert not diff_products(ANALYTICS, ANALYTICS).changed


def test_a_changed_export_rolls_its_users_and_only_them() -> None:
    # kafka's export reaches ingest-api and stream-processor (they use kafka), not dashboard (it does not)
    def change(doc: dict[str, Any]) -> None:
        _component(doc, "kafka")["exports"]["KAFKA_CLIENT_ID"] = "analytics"

    assert diff_products(ANALYTICS, _edited(change)).rolls == ("ingest-api", "stream-processor")


def test_a_middleware_default_image_rolls_the_middleware() -> None:
    def change(doc: dict[str, Any]) -> None:
        _component(doc, "kafka")["image"] = "apache/kafka:3.9.0"

    assert diff_products(ANALYTICS, _edited(change)).rolls == ("kafka",)


@pytest.mark.parametrize(("change", "path", "text"), [
    (lambda doc: _component(doc, "kafka").update(allowedKinds=[1]), "components[0].allowedKinds", "kind 3"),
    (lambda doc: doc["components"].pop(), "components (was components[3])", "dashboard is removed"),
    (lambda doc: doc["components"].append({"key": "alerts", "role": "microservice", "image": "a/b:1"}),
     "components[4]", "alerts is added"),
    (lambda doc: doc["names"].update(kind="Analytics", singular="analytics"), "names", "renamed"),
    (lambda doc: _component(doc, "dashboard").update(role="middleware", kind=0, image="d:1"),
     "components[3].role", "changes role"),
])
def test_breaking_changes_are_refused_with_their_path(change: Any, path: str, text: str) -> None:
    d = diff_products(ANALYTICS, _edited(change))
    assert d.rolls == ()
    assert [(e.path, text in e.message) for e in d.breaking] == [(path, True)]


def test_the_installed_crd_is_checked_the_same_way() -> None:
    from d3os_core.crd import crd_manifest

    crd = crd_manifest(ANALYTICS)
    assert crd_compatibility(crd, ANALYTICS) == []
    fewer = _edited(lambda doc: doc["components"].pop())
    assert [e.message for e in crd_compatibility(crd, fewer)] == ["dashboard is removed: the installed CRD has "
                                                                  "spec.dashboard (list it in removed: [dashboard] "
                                                                  "if that is meant)"]
    listed = _edited(lambda doc: (doc["components"].pop(), doc.update(removed=["dashboard"])))
    assert crd_compatibility(crd, listed) == []


def test_a_component_listed_as_removed_is_accepted_and_its_objects_go() -> None:
    """Listed in ``removed``, a component's disappearance is a change, not a refusal: the diff says it goes,
    and an instance planned with the new file deletes the dashboard's objects, keeping everything else."""
    new = _edited(lambda doc: (doc["components"].pop(), doc.update(removed=["dashboard"])), "3.0.0")
    d = diff_products(ANALYTICS, new)
    assert d.breaking == () and d.removes == ("dashboard",) and d.changed
    assert dump_product(new)["removed"] == ["dashboard"] and load_product(dump_product(new)) == new
    fc = FakeCluster()
    asvc = yaml.safe_load((ROOT / "examples" / "analyticsservice-sample.yaml").read_text(encoding="utf-8"))
    asvc["metadata"].update(namespace="ns", uid="u-1", generation=1)
    _install(ANALYTICS, fc, asvc)
    dashboard = {(k, n) for (k, n), o in fc.objects.items()
                 if (o["metadata"].get("labels") or {}).get(api.LABEL_COMPONENT) == "dashboard"}
    assert ("Deployment", "dashboard") in dashboard
    before = set(fc.objects)
    asvc["metadata"]["generation"] = 2  # spec.dashboard still there: the API server prunes it only on a write
    _install(new, fc, asvc)
    assert set(fc.objects) == before - dashboard, "the dashboard's objects are gone, nothing else"


@pytest.mark.parametrize(("removed", "path", "text"), [
    (["kafka"], "removed[0]", "'kafka' is still a component (components[0])"),
    (["old", "old"], "removed", "listed twice"),
    (["Bad_Key"], "removed[0]", "pattern"),
])
def test_removed_lists_only_keys_that_are_gone(removed: list[str], path: str, text: str) -> None:
    from d3os_core.productload import ProductFileError

    doc = dump_product(ANALYTICS)
    doc["removed"] = removed
    with pytest.raises(ProductFileError) as err:
        load_product(doc)
    assert any(e.path == path and text in e.message for e in err.value.errors), err.value.errors


def _install(product: ProductDef, fc: FakeCluster, asvc: dict[str, Any], ticks: int = 40) -> dict[str, Any]:
    for tick in range(ticks):
        p = plan(asvc, fc.observed(), Facts(now=f"2026-01-01T00:00:{tick:02d}Z", secret_seed="s"), product)
        if p.finalizer == "add":
            asvc["metadata"]["finalizers"] = [api.FINALIZER]
        asvc["status"] = copy.deepcopy(p.status)
        fc.carry_out(p)
        fc.settle()
        if not p.apply and not p.delete and any(
                c["type"] == "Ready" and c["status"] == "True" for c in p.status.get("conditions", [])):
            return p.status
    raise AssertionError(asvc["status"].get("message"))


def test_status_and_revisions_record_the_product_version() -> None:
    asvc = yaml.safe_load((ROOT / "examples" / "analyticsservice-sample.yaml").read_text(encoding="utf-8"))
    asvc["metadata"].update(namespace="default", uid="u-1", generation=1)
    fc = FakeCluster()
    status = _install(ANALYTICS, fc, asvc)
    assert status["productVersion"] == "2.0.0"
    revisions = [o for (k, _), o in fc.objects.items() if k == "ControllerRevision"]
    assert [r["metadata"]["annotations"][api.ANNOTATION_PRODUCT_VERSION] for r in revisions] == ["2.0.0"]

    def change(doc: dict[str, Any]) -> None:
        _component(doc, "kafka")["image"] = "apache/kafka:3.9.0"

    newer = _edited(change)
    first = plan(asvc, fc.observed(), Facts(now="2026-01-01T00:01:00Z", secret_seed="s"), newer)
    assert first.status["productVersion"] == "2.0.0", "not Ready at 2.1.0 yet: the instance still runs 2.0.0"
    assert {a.component for a in first.apply} == {"kafka"}, "the upgrade starts with the first component only"
    assert _install(newer, fc, asvc)["productVersion"] == "2.1.0"
