"""Two products' instances of one name in one namespace never select each other's pods, and never claim each
other's objects (issue "Products as data", point 6). The oracle is Kubernetes' selector rule (every label of
the selector on the pod), applied to what the renderer produces; the products share a component key (``web``),
the case where a selector of instance and component alone would cross over. DataService's selectors have no
product label (they are immutable and predate it), so no product may share a key with it."""

from __future__ import annotations

from typing import Any

import yaml

from d3os_core import api
from d3os_core.children import owned
from d3os_core.desired import desired
from d3os_core.product import ProductDef
from d3os_core.productload import check_catalogue, load_product
from d3os_core.render import parent_of
from d3os_core.validation import parse_spec
from d3os_operator.products import installed

SHOP = yaml.safe_load("""
apiVersion: d3os-product.com.d3os/v1
kind: Product
metadata: {name: shop, version: 1.0.0}
names: {kind: ShopService, plural: shopservices, singular: shopservice}
components:
  - {key: db, role: middleware, image: "postgres:16", port: 5432, kind: 1, allowedKinds: [1, 3],
     storage: {mountPath: /var/lib/postgresql/data}}
  - {key: web, role: microservice, image: "shop/web:1", uses: [], config: {DB: "${db.host}"}}
""")


def _objects(product: ProductDef, doc: dict[str, Any]) -> list[dict[str, Any]]:
    meta = {"name": "twin", "namespace": "ns", "uid": f"uid-{product.name}"}
    return desired(parent_of(meta, product), parse_spec(doc["spec"], product), product, seed="s")


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _twin(doc: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    out = yaml.safe_load(yaml.safe_dump(doc))
    out["metadata"]["name"], out["names"] = name, {"kind": kind, "plural": kind.lower() + "s", "singular": kind.lower()}
    return dict(out)


def test_selectors_of_one_product_never_match_the_other_products_pods() -> None:
    shop, outlet = load_product(SHOP), load_product(_twin(SHOP, "outlet", "OutletService"))
    assert check_catalogue([shop, outlet]) == []
    spec = {"spec": {"db": {"name": "shop-db", "kind": 1}, "web": {"name": "shop-web", "image": "shop/web:1",
                                                                   "port": 80}}}
    ds = _objects(outlet, {"spec": {**spec["spec"], "db": {"name": "outlet-db", "kind": 1},
                                    "web": {"name": "outlet-web", "image": "shop/web:1", "port": 80}}})
    sh = _objects(shop, spec)

    def pods(objs: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [o["spec"]["template"]["metadata"]["labels"] for o in objs if "template" in o.get("spec", {})]

    def selectors(objs: list[dict[str, Any]]) -> list[dict[str, str]]:
        out = [o["spec"]["selector"] for o in objs if o["kind"] == "Service"]
        return out + [o["spec"]["selector"]["matchLabels"] for o in objs if "template" in o.get("spec", {})]

    shared = {lab[api.LABEL_COMPONENT] for lab in pods(ds)} & {lab[api.LABEL_COMPONENT] for lab in pods(sh)}
    assert shared == {"db", "web"}
    for mine, theirs in ((ds, sh), (sh, ds)):
        for sel in selectors(mine):
            assert any(_selects(sel, p) for p in pods(mine)), sel  # each selector selects its own pods
            crossed = [p for p in pods(theirs) if _selects(sel, p)]
            assert crossed == [], f"selector {sel} selects the other product's pods {crossed}"


def test_no_product_may_share_a_key_with_dataservice() -> None:
    dataservice = next(p for p in installed() if p.name == "dataservice")
    errors = check_catalogue([dataservice, load_product(SHOP)])
    assert [(e.path, "'web' is also a component of dataservice" in e.message) for e in errors] == [
        ("shop: components[1].key", True)]


def test_claims_and_secrets_of_one_product_are_not_the_others() -> None:
    dataservice = next(p for p in installed() if p.name == "dataservice")
    shop = load_product(SHOP)
    sh = _objects(shop, {"spec": {"db": {"name": "mysql-dataservice", "kind": 1},  # the same claim name as mysql's
                                  "web": {"name": "shop-web", "image": "shop/web:1", "port": 80}}})
    claim = next(o for o in sh if o["kind"] == "PersistentVolumeClaim")
    assert claim["metadata"]["labels"][api.LABEL_PRODUCT] == "shop"
    ds_parent = parent_of({"name": "twin", "namespace": "ns", "uid": "uid-ds"}, dataservice)
    shop_parent = parent_of({"name": "twin", "namespace": "ns", "uid": "uid-shop"}, shop)
    assert owned(claim, "PersistentVolumeClaim", shop_parent)
    assert not owned(claim, "PersistentVolumeClaim", ds_parent), "a DataService would adopt the shop's claim"
