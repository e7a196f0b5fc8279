"""Issue 23, "Must show": the real API server accepts the CRD of every product the loader accepts.

At least 20 random valid products (1 to 50 components, drawn by tests/unit/test_product_properties.py's generator
from fixed seeds, so every run sends the same ones) and the two shipped products: each CRD goes through a
server-side dry-run create (``kubectl create --dry-run=server --validate=strict``): the structural-schema rules,
CEL compilation and the CEL cost budget are the API server's own. A few are then created for real, and an
instance the core finds valid is admitted by them (dry run) -- the CEL rules agree with the core at run time.

Run: ``pytest -m integration tests/integration/test_product_crds.py``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from d3os_core import api, validate_spec
from d3os_core.crd import crd_manifest
from d3os_core.product import ProductDef
from d3os_core.productload import cel_budget_share, crd_size, load_product
from d3os_operator.products import load_dir
from d3os_testenv import harness
from tests.unit.test_product_properties import RandomDraw, instance_spec, product_doc

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SIZES = (1, 2, 3, 5, 8, 12, 16, 20, 25, 30, 35, 40, 45, 50, 50, 50, 7, 11, 24, 33, 42, 49, 50, 4)
"""Component counts of the random products (one per seed): every size class, the largest several times."""
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def random_products() -> list[ProductDef]:
    out = []
    for seed, n in enumerate(SIZES):
        out.append(load_product(product_doc(RandomDraw(1000 + seed), min_components=n, max_components=n)))
    return out


@pytest.fixture(scope="module")
def client(k8s_cluster: Any) -> Client:
    return harness.sync_client(k8s_cluster.kubeconfig)


def post(client: Client, path: str, body: dict[str, Any], *, dry_run: bool) -> tuple[int, str]:
    """POST ``body`` as JSON with strict field validation: (status code, the server's message)."""
    http = client._client._client
    params = {"fieldValidation": "Strict", "fieldManager": "product-crds"}
    if dry_run:
        params["dryRun"] = "All"
    resp = http.post(path, params=params, content=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
    try:
        message = str(resp.json().get("message", ""))
    except ValueError:
        message = resp.text
    return resp.status_code, message


def test_random_products_crds_are_accepted_by_the_api_server(client: Client) -> None:
    products = random_products()
    assert len(products) >= 20
    assert len({p.names.plural for p in products}) == len(products), "two random products share a plural"
    assert max(len(p.components) for p in products) == 50
    refused = {}
    for p in products:
        code, message = post(client, CRDS, crd_manifest(p), dry_run=True)
        if code != 201:
            refused[f"{p.names.plural} ({len(p.components)} components, {crd_size(p)} bytes)"] = (code, message[:600])
    assert refused == {}


def _mixed(microservices: int, middlewares: int) -> ProductDef:
    """A product of that many microservices and middlewares, made whatever the loader's budget check says (its
    components come from two loadable products joined)."""
    def doc(role: str, n: int, prefix: str) -> dict[str, Any]:
        comps = [{"key": f"{prefix}{i:03d}", "role": role, "image": f"x/{prefix}:1", "port": 1000 + i,
                  **({"kind": 0, "allowedKinds": [0, 1, 2, 3]} if role == "middleware" else {})} for i in range(n)]
        return {"apiVersion": "d3os-product.com.d3os/v1", "kind": "Product",
                "metadata": {"name": "budget", "version": "1.0.0"},
                "names": {"kind": "BudgetService", "plural": "budgetservices", "singular": "budgetservice"},
                "components": comps}

    chunks = [("middleware", middlewares, "m")] + [("microservice", min(20, microservices - k), f"s{k}-")
                                                    for k in range(0, microservices, 20)]
    parts = [load_product(doc(role, n, prefix)).components for role, n, prefix in chunks if n]
    first = load_product(doc("middleware", 1, "z"))
    return dataclasses.replace(first, components=tuple(c for part in parts for c in part))


@pytest.mark.parametrize(("microservices", "middlewares"), [(28, 0), (29, 0), (20, 20), (28, 40), (0, 80), (35, 0)])
def test_the_cel_budget_estimate_agrees_with_the_api_server(client: Client, microservices: int,
                                                            middlewares: int) -> None:
    """d3os_core.productload.CEL_BUDGET_SHARE is measured from the API server; here the API server holds it on both
    sides of the line: a product the loader refuses for the CEL budget is one the API server refuses, and one it
    accepts (under the budget) the API server accepts."""
    product = _mixed(microservices, middlewares)
    over = cel_budget_share(product) > 1.0
    code, message = post(client, CRDS, crd_manifest(product), dry_run=True)
    if over:
        assert code == 422 and "exceeds budget" in message, (code, message[-300:])
    else:
        assert code == 201, message[-300:]


def test_a_broken_crd_is_refused_by_the_dry_run(client: Client) -> None:
    """The control: a dry run is a real verdict (an uncompilable CEL rule and a non-structural schema are refused)."""
    crd = crd_manifest(random_products()[0])
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["x-kubernetes-validations"] = [{"rule": "self.metadata.name.nope(", "message": "broken"}]
    code, message = post(client, CRDS, crd, dry_run=True)
    assert code == 422, (code, message)
    crd = crd_manifest(random_products()[0])
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].pop("type")
    code, message = post(client, CRDS, crd, dry_run=True)
    assert code == 422, (code, message)


@pytest.mark.parametrize("name", ["dataservice", "analytics"])
def test_shipped_products_crds_are_accepted_by_the_api_server(client: Client, name: str) -> None:
    product = load_dir(ROOT / "products" / name)
    crd = crd_manifest(product)
    code, message = post(client, CRDS, crd, dry_run=True)
    if code == 409:  # already installed by another test of the session: the same CRD under another name
        crd["metadata"]["name"] = f"x{crd['spec']['names']['plural']}.{api.GROUP}"
        crd["spec"]["names"] = {**crd["spec"]["names"], "plural": "x" + crd["spec"]["names"]["plural"],
                                "singular": "x" + crd["spec"]["names"]["singular"],
                                "kind": "X" + crd["spec"]["names"]["kind"],
                                "listKind": "X" + crd["spec"]["names"]["listKind"], "shortNames": []}
        code, message = post(client, CRDS, crd, dry_run=True)
    assert code == 201, message


# -- created for real: instances the core finds valid are admitted --------------------------------------------------


def _established(client: Client, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = client.get(CustomResourceDefinition, name)
        conds = {c.type: c.status for c in (got.status.conditions or [])} if got.status else {}
        if conds.get("Established") == "True":
            return
        time.sleep(0.2)
    raise AssertionError(f"CRD {name} not Established after {timeout}s")


@pytest.fixture(scope="module")
def installed(client: Client) -> Iterator[list[ProductDef]]:
    """Three of the random products (small, middle, largest) with their CRDs created and Established."""
    chosen = [p for i, p in enumerate(random_products()) if i in (3, 9, 13)]
    names = []
    try:
        for p in chosen:
            crd = crd_manifest(p)
            code, message = post(client, CRDS, crd, dry_run=False)
            assert code == 201, message
            names.append(crd["metadata"]["name"])
            _established(client, crd["metadata"]["name"])
        yield chosen
    finally:
        for name in names:
            try:
                client.delete(CustomResourceDefinition, name)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise


def test_valid_instances_of_random_products_are_admitted(client: Client, installed: list[ProductDef],
                                                         k8s_namespace: str) -> None:
    for i, p in enumerate(installed):
        for seed in range(3):  # each middleware at a drawn allowed kind (third parties with a url)
            spec = instance_spec(RandomDraw(7 * i + seed), p)
            assert validate_spec(spec, p) == []
            body = {"apiVersion": f"{api.GROUP}/{api.VERSION}", "kind": p.names.kind,
                    "metadata": {"name": f"sample-{seed}"}, "spec": spec}
            path = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{k8s_namespace}/{p.names.plural}"
            deadline = time.monotonic() + 30
            while True:  # the new resource may take a moment to be served
                code, message = post(client, path, body, dry_run=True)
                if code != 404 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert code == 201, f"{p.names.kind} ({len(p.components)} components): {message[:600]}"
