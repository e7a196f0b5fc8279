"""Shared helpers for the core's unit tests: the dataservice product, the seed's sample and a loop that drives a
fake cluster."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from d3os_core import FINALIZER, Facts, Plan, plan
from d3os_core.crd import crd_manifest
from d3os_core.fake import FakeCluster
from d3os_core.product import ProductDef
from d3os_operator.products import installed_product

DATASERVICE = installed_product("dataservice")
"""The dataservice product as shipped (``products/dataservice/product.yaml``): the one the tests plan with
(test_product_golden.py holds it equal to a frozen snapshot of the Python literal it replaced)."""

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dataservice-sample.yaml"
ORDER = ["mysql", "uuc", "eureka", "api-manager", "auth", "ds-adapter", "es-adapter", "trd-adapter",
         "gateway-master", "gateway-web", "proxy", "web"]


def sample(**meta: Any) -> dict[str, Any]:
    """The seed's sample as the API would return it (namespace, uid, generation, our finalizer)."""
    ds: dict[str, Any] = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    ds["metadata"].update({"namespace": "default", "uid": "ds-uid-1", "generation": 1,
                           "finalizers": [FINALIZER], **meta})
    return ds


class Driver:
    """Runs plan → carry out → (settle) passes, keeping the parent's status as the shell would."""

    def __init__(self, ds: dict[str, Any], cluster: FakeCluster | None = None,
                 product: ProductDef = DATASERVICE) -> None:
        self.ds = ds
        self.fc = cluster or FakeCluster()
        self.product = product
        self.tick = 0
        self.plans: list[Plan] = []

    def step(self, *, settle: bool | list[str] = True, probe: bool = True) -> Plan:
        self.tick += 1
        p = plan(self.ds, self.fc.observed(), Facts(now=f"2026-01-01T00:00:{self.tick:02d}Z", secret_seed="seed"),
                 self.product)
        self.record(p)
        self.fc.carry_out(p, probe=probe)
        if settle is True:
            self.fc.settle()
        elif settle:
            self.fc.settle(settle)
        return p

    def record(self, p: Plan) -> None:
        """Keep ``p`` and do the shell's part on the parent: its finalizer and its status."""
        self.plans.append(p)
        if p.finalizer == "add":
            self.ds["metadata"].setdefault("finalizers", []).append(FINALIZER)
        elif p.finalizer == "remove":
            self.ds["metadata"]["finalizers"].remove(FINALIZER)
        self.ds["status"] = copy.deepcopy(p.status)

    def converge(self, limit: int = 60) -> Plan:
        for _ in range(limit):
            p = self.step()
            if not p.apply and not p.delete and self.ready:
                return p
        raise AssertionError(f"did not converge: {self.ds['status'].get('message')}")

    def change(self, mutate: Any) -> None:
        mutate(self.ds["spec"])
        self.ds["metadata"]["generation"] += 1

    @property
    def ready(self) -> bool:
        return condition(self.ds, "Ready")["status"] == "True"

    def component(self, key: str) -> dict[str, Any]:
        return next(c for c in self.ds["status"]["components"] if c["name"] == key)


def condition(ds: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in ds["status"]["conditions"] if c["type"] == type_)


def applied_components(p: Plan) -> set[str]:
    """Components whose objects the plan applies (a ControllerRevision records history, it is no component)."""
    return {a.component for a in p.apply if a.manifest["kind"] != "ControllerRevision"}


def crd_spec() -> dict[str, Any]:
    """The generated CRD's schema of each component under ``spec``, by key."""
    version = crd_manifest(DATASERVICE)["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]


def crd_pattern(node: dict[str, Any]) -> str:
    """The regex admission requires of a string node: its ``pattern`` or its ``self.matches(...)`` CEL rule (not a
    ``!self.matches(...)`` one, which refuses what it matches)."""
    if "pattern" in node:
        return str(node["pattern"])
    (rule,) = [r["rule"] for r in node.get("x-kubernetes-validations", []) if r["rule"].startswith("self.matches(")]
    return str(json.loads(rule.removeprefix("self.matches(").removesuffix(")")))


def local_kubeconfig(port: int) -> Any:
    """A kubeconfig (lightkube's) for a local server on 127.0.0.1:``port`` standing in for the API server."""
    from lightkube import KubeConfig

    return KubeConfig.from_dict({
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    })
