"""Synthetic products of any size, to show how the core's cost grows with the number of components.

A product is data (:class:`d3os_core.product.ProductDef`), so a bigger product needs no planner code: this
module builds one middleware followed by ``n - 1`` microservices arranged as a layered DAG (layers of
about ``sqrt(n)`` components, each depending on two components of the layer before it through
``dependsOn``), plus a DataService whose spec matches it. The DAG rather than a chain exercises the
planner's graph walk (transitive ancestors, topological order) the way a real multi-team product would.

``converged(ds, product)`` drives a :class:`~d3os_core.fake.FakeCluster` until the DataService is Ready,
so ``plan`` can be timed both on an empty namespace and in the steady state.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

from d3os_core import FINALIZER, Facts, Observed, parse_spec, plan
from d3os_core.fake import FakeCluster
from d3os_core.product import ComponentDef, ProductDef, WorkloadKind
from d3os_core.render import Parent, render_component, resolve

FACTS = Facts(now="2026-01-01T00:00:00Z", secret_seed="bench")
MIDDLEWARE = "c000"


def key(i: int) -> str:
    """Component key (also its default name): a DNS-1035 label that sorts in product order."""
    return f"c{i:03d}"


def layers(n: int) -> list[list[int]]:
    """Component indices by layer: the middleware alone, then layers of ``ceil(sqrt(n))``."""
    if n < 1:
        raise ValueError("a product needs at least one component")
    width = max(1, math.ceil(math.sqrt(n)))
    rest = list(range(1, n))
    return [[0]] + [rest[i:i + width] for i in range(0, len(rest), width)]


def dependencies(n: int) -> dict[str, list[str]]:
    """``dependsOn`` of each component: up to two components of the previous layer (none for the first)."""
    out: dict[str, list[str]] = {MIDDLEWARE: []}
    ls = layers(n)
    for prev, layer in itertools.pairwise(ls):
        for j, i in enumerate(layer):
            picks = {prev[j % len(prev)], prev[(j + 1) % len(prev)]}
            out[key(i)] = [key(p) for p in sorted(picks)]
    return out


def product(n: int) -> ProductDef:
    """A product of ``n`` components: one middleware (a Deployment exporting its URL), then microservices
    that use it (their ConfigMaps carry its export, so templates are expanded as for dataservice)."""
    mw = ComponentDef(
        key=MIDDLEWARE,
        role="middleware",
        default_name=MIDDLEWARE,
        default_port=5432,
        default_image="registry.example/bench/middleware:v1",
        default_kind=WorkloadKind.DEPLOYMENT,
        exports={"MIDDLEWARE_URL": "${" + MIDDLEWARE + ".url}"},
        config={"PORT": "${" + MIDDLEWARE + ".port}"},
    )
    micro = [
        ComponentDef(
            key=key(i),
            role="microservice",
            default_name=key(i),
            default_image=f"registry.example/bench/{key(i)}:v1",
            uses=(MIDDLEWARE,),
            config={"SERVER_PORT": "${" + key(i) + ".port}", "APP_NAME": "${" + key(i) + ".name}"},
        )
        for i in range(1, n)
    ]
    return ProductDef(name=f"synthetic-{n}", components=(mw, *micro), part_of="synthetic")


def dataservice(n: int, name: str = "synthetic", namespace: str = "default") -> dict[str, Any]:
    """A DataService for :func:`product` ``(n)`` as the API server would hand it to the operator."""
    deps = dependencies(n)
    spec: dict[str, Any] = {MIDDLEWARE: {"name": MIDDLEWARE, "kind": int(WorkloadKind.DEPLOYMENT)}}
    for i in range(1, n):
        k = key(i)
        spec[k] = {"image": f"registry.example/bench/{k}:v1", "name": k, "port": 8000 + i, "replica": 1,
                   "env": {"INDEX": str(i)}, "dependsOn": deps[k]}
    return {
        "apiVersion": "d3os-product.com.d3os/v1",
        "kind": "DataService",
        "metadata": {"name": name, "namespace": namespace, "uid": f"bench-uid-{n}", "generation": 1,
                     "finalizers": [FINALIZER]},
        "spec": spec,
    }


def converged(ds: dict[str, Any], prod: ProductDef, max_passes: int | None = None) -> tuple[dict[str, Any], Observed]:
    """Carry out plans on a fake cluster until nothing is left to do; returns the Ready DataService and
    what is observed then (the state every resync of a settled product is planned in)."""
    ds, fc = copy.deepcopy(ds), FakeCluster()
    for _ in range(max_passes or len(prod.components) + 5):
        p = plan(ds, fc.observed(), FACTS, prod)
        ds["status"] = copy.deepcopy(p.status)
        if not p.apply and not p.delete and all(c.get("state") == "Ready" for c in p.status["components"]):
            return ds, fc.observed()
        fc.carry_out(p)
        fc.settle()
    raise RuntimeError(f"{prod.name} did not converge: {ds['status'].get('message')}")


def render_all(ds: dict[str, Any], prod: ProductDef) -> Any:
    """What ``d3os render`` costs, memo-free: parse and validate the spec, resolve, render every component."""
    meta = ds["metadata"]
    parent = Parent(meta["name"], meta["namespace"], meta["uid"])

    def run() -> object:
        spec = parse_spec(ds["spec"], prod)
        states = resolve(parent, spec, prod)
        return [render_component(parent, spec, prod, states, k, {}, FACTS.secret_seed) for k in prod.keys]

    return run
