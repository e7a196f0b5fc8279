"""Golden equivalence (issue 23, point 3): ``products/dataservice/product.yaml`` is today's DataService.

The product file replaced the Python literal ``d3os_core.dataservice.DATASERVICE``. Before the literal went,
its :func:`~d3os_core.productload.dump_product` and fingerprint were frozen in ``golden/dataservice-product.json``
(generated once from the literal, never from the file); everything that follows from the product must be
the same when it comes from the file as from that snapshot:

* the loaded :class:`ProductDef` equals the snapshot's, component by component, and has the literal's
  fingerprint; it dumps to the snapshot;
* the CRD generated from it is byte-identical to ``crds/`` (the same serialisation as test_crd_and_cli.py);
* the configuration reference equals the literal's and ``docs/configuration.md``;
* ``desired()`` of every DataService example renders the same objects;
* the offline verdict (``validate_spec``) of every case of the spec corpus (tests/corpus/*.yaml) is the same;
* the planner, driven to convergence on the fake cluster from every example, plans the same steps.

The second shipped product (``products/analytics``) loads, its sample converges, and its two services that
only depend on kafka roll out side by side (a DAG, not a chain).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_core import FINALIZER, Caches, Facts, Plan, fake, plan
from d3os_core.crd import crd_manifest
from d3os_core.desired import desired
from d3os_core.fake import FakeCluster
from d3os_core.product import ProductDef
from d3os_core.productload import dump_product, load_product
from d3os_core.reference import config_reference
from d3os_core.render import parent_of
from d3os_core.validation import parse_spec, validate_spec
from d3os_core.yamlout import dump_all
from d3os_operator.products import load_catalogue, load_dir

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = ROOT / "products"
CRD_FILE = ROOT / "crds" / "d3os-product.com.d3os_dataservices.yaml"
REFERENCE = ROOT / "docs" / "configuration.md"
SPEC_CORPUS = sorted((ROOT / "tests" / "corpus").glob("*.yaml"))
DS_EXAMPLES = sorted((ROOT / "examples").glob("dataservice-*.yaml"))
ANALYTICS_SAMPLE = ROOT / "examples" / "analyticsservice-sample.yaml"
SNAPSHOT = Path(__file__).resolve().parent / "golden" / "dataservice-product.json"
"""``{"fingerprint": ..., "product": dump_product(DATASERVICE)}`` of the Python literal, frozen when it was deleted.
A deliberate change of the dataservice product shows here first: regenerate it from the product file only
with the change reviewed (``dump_product(load_dir("products/dataservice"))`` and its ``fingerprint``)."""
_FROZEN: dict[str, Any] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
DATASERVICE = load_product(_FROZEN["product"])
"""The Python literal as it was (from the snapshot): what the product file is compared with."""


@pytest.fixture(scope="module")
def loaded() -> ProductDef:
    return load_dir(PRODUCTS / "dataservice")


@pytest.fixture(scope="module")
def analytics() -> ProductDef:
    return load_dir(PRODUCTS / "analytics")


# -- the definition itself ----------------------------------------------------------------------------------


def test_the_snapshot_is_the_python_literal() -> None:
    """The snapshot loads to a product with the fingerprint the literal had (a digest of its whole repr)."""
    assert DATASERVICE.fingerprint == _FROZEN["fingerprint"]
    assert (DATASERVICE.name, DATASERVICE.version, len(DATASERVICE.components)) == ("dataservice", "1.4.0", 12)


def test_loaded_product_equals_the_python_literal(loaded: ProductDef) -> None:
    assert loaded.keys == DATASERVICE.keys
    for ours, theirs in zip(loaded.components, DATASERVICE.components, strict=True):
        assert ours == theirs, f"component {theirs.key} differs"
    assert loaded == DATASERVICE
    assert loaded.fingerprint == DATASERVICE.fingerprint == _FROZEN["fingerprint"]
    assert loaded.names == DATASERVICE.names
    assert (loaded.version, loaded.part_of, loaded.selector_names_product) == (
        DATASERVICE.version, DATASERVICE.part_of, DATASERVICE.selector_names_product)


def test_loaded_product_dumps_to_a_file_that_loads_back_equal(loaded: ProductDef) -> None:
    dumped = dump_product(loaded)
    assert dumped == _FROZEN["product"]
    assert load_product(dumped) == DATASERVICE
    assert load_product(yaml.safe_load(yaml.safe_dump(dumped, sort_keys=False))) == DATASERVICE


# -- what follows from it --------------------------------------------------------------------------------------


def test_crd_from_the_file_is_byte_identical_to_crds(loaded: ProductDef) -> None:
    text = dump_all([crd_manifest(loaded)])
    assert text == CRD_FILE.read_text(encoding="utf-8"), "the CRD from products/dataservice differs from crds/"
    assert text == dump_all([crd_manifest(DATASERVICE)])


def test_config_reference_is_unchanged(loaded: ProductDef) -> None:
    assert config_reference(loaded) == config_reference(DATASERVICE)
    assert config_reference(loaded) == REFERENCE.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", DS_EXAMPLES, ids=lambda p: p.stem)
def test_desired_objects_of_the_examples_are_unchanged(loaded: ProductDef, path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    meta = {**doc["metadata"], "namespace": "golden", "uid": "uid-golden"}
    for seed in ("", "golden-seed"):
        ours = desired(parent_of(meta, loaded), parse_spec(doc["spec"], loaded), loaded, seed=seed)
        theirs = desired(parent_of(meta, DATASERVICE), parse_spec(doc["spec"], DATASERVICE), DATASERVICE, seed=seed)
        assert ours == theirs
        assert ours, "an example renders nothing"


def _spec_of(path: Path) -> Any:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    return doc.get("spec") if isinstance(doc, dict) else doc


def test_every_spec_corpus_verdict_is_unchanged(loaded: ProductDef) -> None:
    assert len(SPEC_CORPUS) >= 25
    refused = 0
    for path in SPEC_CORPUS:
        spec = _spec_of(path)
        ours, theirs = validate_spec(spec, loaded), validate_spec(spec, DATASERVICE)
        assert ours == theirs, path.name
        refused += bool(ours)
    assert refused >= 10, "the corpus should hold refused specs"


# -- the planner ------------------------------------------------------------------------------------------------


def instance(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["metadata"].update({"namespace": "golden", "uid": "uid-golden", "generation": 1, "finalizers": [FINALIZER]})
    return doc


def drive(parent: dict[str, Any], product: ProductDef, *, passes: int = 80,
          settle: Callable[[FakeCluster, int], None] | None = None) -> tuple[list[Plan], FakeCluster]:
    """Plan → carry out → settle from an empty namespace until a pass changes nothing at Ready; every plan."""
    parent = copy.deepcopy(parent)
    fc, caches, plans = FakeCluster(), Caches.bounded(), []
    for tick in range(passes):
        p = plan(parent, fc.observed(), Facts(now=f"2026-01-01T00:{tick // 60:02d}:{tick % 60:02d}Z",
                                              secret_seed="golden"), product, caches)
        plans.append(p)
        parent["status"] = copy.deepcopy(p.status)
        fc.carry_out(p)
        (settle or (lambda f, _: f.settle()))(fc, tick)
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p.status.get("conditions", []))
        if ready and not p.apply and not p.delete:
            return plans, fc
    raise AssertionError(f"not converged in {passes} passes: {parent['status'].get('message')!r}")


@pytest.mark.parametrize("path", DS_EXAMPLES, ids=lambda p: p.stem)
def test_plans_of_the_examples_are_unchanged(loaded: ProductDef, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pass of a full install from an empty namespace, and the objects it leaves."""
    monkeypatch.setattr(fake, "_UIDS", itertools.count(1))  # the same uids in both runs (claims own Secrets)
    ours, fc_ours = drive(instance(path), loaded)
    monkeypatch.setattr(fake, "_UIDS", itertools.count(1))
    theirs, fc_theirs = drive(instance(path), DATASERVICE)
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == b, f"pass {i} differs"
    assert fc_ours.objects == fc_theirs.objects


# -- the catalogue as shipped -----------------------------------------------------------------------------------


def test_shipped_catalogue_loads_without_clashes(loaded: ProductDef, analytics: ProductDef) -> None:
    catalogue = load_catalogue(PRODUCTS)
    assert {p.name for p in catalogue} == {"dataservice", "analytics"}
    assert sorted(catalogue, key=lambda p: p.name) == [analytics, loaded]
    assert analytics.names.kind == "AnalyticsService" and analytics.names.short_names == ("asvc",)
    assert load_product(dump_product(analytics)) == analytics


def test_analytics_is_a_dag_and_its_sample_converges_in_parallel(analytics: ProductDef) -> None:
    deps = analytics.default_dependencies()
    assert deps == {"kafka": (), "ingest-api": ("kafka",), "stream-processor": ("kafka",),
                    "dashboard": ("ingest-api", "stream-processor")}
    doc = instance(ANALYTICS_SAMPLE)
    assert validate_spec(doc["spec"], analytics) == []
    plans, fc = drive(doc, analytics)
    first: dict[str, int] = {}
    for i, p in enumerate(plans):
        for a in p.apply:
            if a.manifest["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
                first.setdefault(a.component, i)
    assert set(first) == set(analytics.keys)
    assert first["ingest-api"] == first["stream-processor"], first  # side by side, not one after the other
    assert first["kafka"] < first["ingest-api"] < first["dashboard"], first
    labels = fc.objects[("Deployment", "dashboard")]["spec"]["selector"]["matchLabels"]
    assert "analytics" in labels.values(), labels  # the product joins the selector of a new product
