"""Property tests of product files (issue 23, "Must show"): random valid products, 1 to 50 components.

A product is drawn as a product *file*: components of random roles, a dependency graph given by ``dependsOn``
that only points backwards (or the default order, the component before), ``uses`` and ``${<key>.F}`` wiring only
toward components a component waits for (directly or not), exports, credentials with secret exports and secret
env, role defaults, vars, extra ConfigMaps, storage only where no DaemonSet is allowed. Every drawn file is one
the loader must accept, and then:

* ``load_product(dump_product(p)) == p``, also through YAML text (``yaml.safe_dump`` then the strict loader), and
  the drawn file itself survives a YAML text round trip;
* the planner, from an empty namespace of the fake cluster with controllers finishing random rollouts,
  never applies an object of a component before every component it depends on is ready at its desired state
  (judged from the fake state alone), converges to Ready, and then plans nothing (zero writes).

The generator is written against a small ``Draw`` interface, so the same code draws from hypothesis (shrinkable)
and from a seeded :class:`random.Random` (tests/integration/test_product_crds.py: fixed products for the real API
server).
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from d3os_core import FINALIZER, Facts, Plan, api, plan, validate_spec
from d3os_core.children import up_to_date
from d3os_core.fake import FakeCluster
from d3os_core.ordering import probe_key
from d3os_core.product import ProductDef, WorkloadKind
from d3os_core.productload import CEL_BUDGET_SHARE, dump_product, load_product
from d3os_core.render import parent_of, render_component, resolve
from d3os_core.validation import parse_spec
from d3os_core.yamlload import load as load_yaml

T = TypeVar("T")
SCALE = float(os.environ.get("D3OS_PROPERTY_SCALE", "1"))
WORKLOADS = api.WORKLOAD_KINDS
REVISION = "ControllerRevision"
PREFIXES = ("db", "cache", "mq", "api", "web", "svc", "worker", "auth")
THIRD_PARTY = {"url": "http://third-party.example:8080/"}


def budget(max_examples: int) -> settings:
    """Two cores shared with others: modest counts, no per-example deadline (a product has up to 50 components)."""
    return settings(max_examples=max(1, int(max_examples * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- drawing a product file ------------------------------------------------------------------------------------


class Draw(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...

    def boolean(self) -> bool: ...

    def choice(self, options: Sequence[T]) -> T: ...


class HypothesisDraw:
    """Draws from a hypothesis ``draw`` (so failures shrink)."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))

    def boolean(self) -> bool:
        return bool(self.draw(st.booleans()))

    def choice(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))  # type: ignore[no-any-return]


class RandomDraw:
    """Draws from a seeded :class:`random.Random` (the same products on every run)."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rnd.randint(lo, hi)

    def boolean(self) -> bool:
        return self.rnd.random() < 0.5

    def choice(self, options: Sequence[T]) -> T:
        return self.rnd.choice(list(options))


def _subset(r: Draw, options: Sequence[str], most: int) -> list[str]:
    """Up to ``most`` distinct members of ``options``, in a drawn order."""
    pool, out = list(options), []
    for _ in range(r.integer(0, min(most, len(pool)))):
        out.append(pool.pop(r.integer(0, len(pool) - 1)))
    return out


def product_doc(r: Draw, min_components: int = 1, max_components: int = 50) -> dict[str, Any]:
    """A valid product file (as parsed YAML) with ``min_components`` to ``max_components`` components."""
    ident = r.integer(0, 99999)
    kind = r.choice(("Shop", "Data", "Stream", "Edge", "Ledger")) + str(ident) + r.choice(("Service", "App", ""))
    names: dict[str, Any] = {"kind": kind, "plural": kind.lower() + "s", "singular": kind.lower()}
    if r.boolean():
        names["shortNames"] = [f"x{ident}"]
    version = f"{r.integer(0, 9)}.{r.integer(0, 20)}.{r.integer(0, 99)}" + r.choice(("", "-rc.1", "+build.7"))
    doc: dict[str, Any] = {
        "apiVersion": "d3os-product.com.d3os/v1",
        "kind": "Product",
        "metadata": {"name": f"prod-{ident}", "version": version},
        "names": names,
        "selectorNamesProduct": r.choice((True, True, False)),
    }
    registry = r.boolean()
    vars_: dict[str, str] = {}
    if registry:
        vars_["registry"] = f"registry.example/p{ident}"
    if r.boolean():
        vars_["db"] = r.choice(("app", "main", "data"))
    if vars_:
        doc["vars"] = vars_
    defaults: dict[str, Any] = {}
    if r.boolean():
        defaults["microservice"] = {"port": 8080, "config": {"SERVER_PORT": "${self.port}", "APP_NAME": "${self.name}"}}
    if r.boolean():
        defaults["middleware"] = {"resources": {"requests": {"cpu": "200m", "memory": "256Mi"}}}
    if defaults:
        doc["defaults"] = defaults

    n = r.integer(min_components, max_components)
    keys = [f"{r.choice(PREFIXES)}-{i}" for i in range(n)]
    waits: list[set[str]] = []  # what each component waits for, directly or not
    components: list[dict[str, Any]] = []
    microservices = 0
    # the API server's CEL cost budget (d3os_core.productload.CEL_BUDGET_SHARE) caps the microservices: with every
    # other component a middleware, the product stays within it
    most = int((1.0 - CEL_BUDGET_SHARE["middleware"] * n) / CEL_BUDGET_SHARE["microservice"])
    for i, key in enumerate(keys):
        role = r.choice(("middleware", "microservice")) if microservices < most else "middleware"
        microservices += role == "microservice"
        c: dict[str, Any] = {"key": key, "role": role}
        if i and r.boolean():
            direct = [keys[i - 1]]  # the default: the component before
        else:
            direct = _subset(r, keys[:i], 3)  # backwards only: a DAG
            c["dependsOn"] = direct
        closure = set(direct).union(*(waits[keys.index(d)] for d in direct))
        waits.append(closure)
        peers = sorted(closure)
        if r.boolean():
            c["name"] = f"{key}-x"
        up = f"C{i}"
        if c["role"] == "middleware":
            allowed = sorted({r.integer(0, 3) for _ in range(r.integer(1, 4))}) if r.boolean() else None
            if allowed is not None:
                c["allowedKinds"] = allowed
            possible = allowed or [0, 1, 2, 3]
            if r.boolean() or 0 not in possible:
                c["kind"] = r.choice(possible)
            if 2 not in possible and r.boolean():
                c["storage"] = {"mountPath": "/var/lib/data", "size": r.choice(("1Gi", "8Gi"))}
            c["image"] = f"${{vars.registry}}/{key}:v1" if registry else r.choice(("redis:7", "postgres:16"))
            if r.boolean():
                c["port"] = r.choice((5432, 6379, 9092))
            if r.boolean():
                c["thirdPartyPath"] = "/health"
        else:
            if r.boolean():
                c["image"] = f"${{vars.registry}}/{key}:v2" if registry else f"r.example/{key}:v2"
            if r.boolean():
                c["port"] = r.choice((8080, 9000))
        if r.boolean():
            c["exports"] = {f"{up}_URL": "${self.url}", f"{up}_ADDR": "${self.host}:${self.port}"}
            if peers and r.boolean():
                c["exports"][f"{up}_PEER"] = f"${{{r.choice(peers)}.name}}"
        if r.boolean():
            c["credentials"] = {"password": {"generate": True},
                                "user": "u-${vars.db}" if "db" in vars_ else "admin"}
            if r.boolean():
                c["secretExports"] = {f"{up}_PASSWORD": "password", f"{up}_USER": "user"}
            if r.boolean():
                c["secretEnv"] = {f"S{i}_PASSWORD": "password"}
        uses = _subset(r, peers, 3)
        if uses:
            c["uses"] = uses
        if r.boolean():
            config = {f"APP{i}_NS": "${namespace}"}
            if peers:
                config[f"APP{i}_PEER"] = f"${{{r.choice(peers)}.url}}"
            c["config"] = config
            if r.boolean():
                c["configMountPath"] = "/etc/app"
        if r.boolean():
            c["env"] = {f"E{i}_MODE": r.choice(("prod", "test")), f"E{i}_SELF": "${self.host}"}
        if r.boolean():
            data = {"extra.conf": "peer=" + (f"${{{r.choice(peers)}.host}}" if peers else "none")}
            c["configMaps"] = [{"suffix": r.choice(("-extra", "-init")), "data": data, "mountPath": "/etc/extra",
                                "filesFromSpec": c["role"] == "microservice" and r.boolean()}]
        if r.boolean():
            c["portName"] = r.choice(("web", "tcp"))
        if r.boolean():
            c["resources"] = {"requests": {"cpu": "50m"}, "limits": {"memory": "512Mi"}}
        if r.boolean():
            c["runAsUser"] = r.choice((999, 1000))
        components.append(c)
    doc["components"] = components
    return doc


@st.composite
def product_docs(draw: Any, min_components: int = 1, max_components: int = 50) -> dict[str, Any]:
    return product_doc(HypothesisDraw(draw), min_components, max_components)


def instance_spec(r: Draw, product: ProductDef) -> dict[str, Any]:
    """A valid spec of ``product``: each middleware at a drawn allowed kind, each microservice with image and port."""
    spec: dict[str, Any] = {}
    for c in product.components:
        entry: dict[str, Any] = {"name": c.default_name}
        if c.role == "middleware":
            kind = r.choice([k.value for k in c.allowed_kinds])
            entry["kind"] = kind
            if kind == WorkloadKind.THIRD_PARTY:
                entry["thirdParty"] = dict(THIRD_PARTY)
        else:
            entry["image"] = c.default_image or f"r.example/{c.key}:v1"
            entry["port"] = c.default_port or 8080
        spec[c.key] = entry
    return spec


# -- load, dump, load ------------------------------------------------------------------------------------------------


@budget(25)
@given(doc=product_docs())
def test_random_products_survive_load_dump_load(doc: dict[str, Any]) -> None:
    product = load_product(doc)
    event(f"{len(product.components) // 10 * 10}-{len(product.components) // 10 * 10 + 9} components")
    dumped = dump_product(product)
    again = load_product(dumped)
    assert again == product
    assert again.fingerprint == product.fingerprint
    assert dump_product(again) == dumped  # the dump is a fixed point
    text = yaml.safe_dump(dumped, sort_keys=False, allow_unicode=True)
    assert load_product(load_yaml(text)) == product
    assert load_product(load_yaml(yaml.safe_dump(doc, sort_keys=False))) == product


def test_generator_draws_what_it_promises() -> None:
    """The fixed-seed products cover the space: DAGs and chains, every role and kind, up to 50 components."""
    docs = [product_doc(RandomDraw(seed)) for seed in range(40)]
    sizes = [len(d["components"]) for d in docs]
    assert min(sizes) < 10 and max(sizes) > 40
    comps = [c for d in docs for c in d["components"]]
    assert {c["role"] for c in comps} == {"middleware", "microservice"}
    assert {c.get("kind", 0) for c in comps if c["role"] == "middleware"} == {0, 1, 2, 3}
    assert any(len(c.get("dependsOn", ())) > 1 for c in comps)  # joins: not only chains
    assert any("dependsOn" not in c for c in comps)  # the default order too
    assert any("storage" in c for c in comps) and any("uses" in c for c in comps)
    for d in docs[:10]:
        load_product(d)


# -- the planner on the fake cluster -----------------------------------------------------------------------------


class World:
    """An instance of a drawn product on a fake cluster, with the gating check run before every plan is carried out."""

    SEED = "product-props"

    def __init__(self, product: ProductDef, spec: dict[str, Any]) -> None:
        self.product = product
        self.parent: dict[str, Any] = {
            "apiVersion": f"{api.GROUP}/{api.VERSION}", "kind": product.names.kind,
            "metadata": {"name": "props", "namespace": "props", "uid": "uid-props", "generation": 1,
                         "finalizers": [FINALIZER]},
            "spec": spec,
        }
        self.who = parent_of(self.parent["metadata"], product)
        self.fc = FakeCluster()
        self.tick = 0
        self.deps = product.default_dependencies()
        self.first_write: dict[str, int] = {}

    def ready(self) -> dict[str, bool]:
        """Each component: every desired object is live and up to date, its workload rolled out (or, for a
        third party, its current check succeeded) -- from the fake state alone, not the planner's status."""
        spec = parse_spec(self.parent["spec"], self.product)
        states = resolve(self.who, spec, self.product)
        secrets = {n: o for (k, n), o in self.fc.objects.items() if k == "Secret"}
        claims = {n: o["metadata"]["uid"] for (k, n), o in self.fc.objects.items() if k == "PersistentVolumeClaim"}
        out = {}
        for key in self.product.keys:
            objs = render_component(self.who, spec, self.product, states, key, secrets, self.SEED, claims).objects
            ok = all((o["kind"], o["metadata"]["name"]) in self.fc.objects
                     and up_to_date(o, self.fc.objects[(o["kind"], o["metadata"]["name"])]) for o in objs)
            workload = next((o for o in objs if o["kind"] in WORKLOADS), None)
            if workload is not None:
                ok = ok and rolled_out(self.fc.objects[(workload["kind"], workload["metadata"]["name"])])
            else:
                result = self.fc.probes.get(probe_key(self.who, states[key]))
                ok = ok and result is not None and result.ok
            out[key] = ok
        return out

    def step(self, settle: Sequence[str] | None = None) -> Plan:
        ready = self.ready()
        self.tick += 1
        p = plan(self.parent, self.fc.observed(),
                 Facts(now=f"2026-01-01T{self.tick // 3600:02d}:{self.tick // 60 % 60:02d}:{self.tick % 60:02d}Z",
                       secret_seed=self.SEED), self.product)
        assert p.delete == (), f"a fresh install deletes {p.delete}"
        for a in p.apply:
            if a.manifest["kind"] == REVISION:
                assert all(ready.values()), "a revision recorded before every component is ready"
                continue
            blockers = [d for d in self.deps[a.component] if not ready[d]]
            assert not blockers, (f"pass {self.tick}: {a.component} applies {a.manifest['kind']}/"
                                  f"{a.manifest['metadata']['name']} while {blockers} are not ready")
            self.first_write.setdefault(a.component, self.tick)
        self.parent["status"] = copy.deepcopy(p.status)
        self.fc.carry_out(p)
        self.fc.settle(settle)
        return p

    def converge(self, limit: int) -> Plan:
        for _ in range(limit):
            p = self.step()
            if not p.apply and not p.delete and is_ready(self.parent):
                return p
        raise AssertionError(f"not converged in {limit} passes: {self.parent['status'].get('message')!r}")


def is_ready(parent: Mapping[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (parent.get("status") or {}).get("conditions", []))


def rolled_out(obj: Mapping[str, Any]) -> bool:
    """``kubectl rollout status`` in short, for the statuses the fake cluster writes."""
    spec, status, gen = obj["spec"], obj.get("status") or {}, obj["metadata"].get("generation", 0)
    if status.get("observedGeneration", -1) < gen:
        return False
    if obj["kind"] == "Deployment":
        want = spec.get("replicas", 1)
        return status.get("updatedReplicas", 0) >= want and status.get("availableReplicas", 0) >= want
    if obj["kind"] == "StatefulSet":
        return (status.get("readyReplicas", 0) >= spec.get("replicas", 1)
                and status.get("currentRevision") == status.get("updateRevision"))
    want = status.get("desiredNumberScheduled", 0)
    return status.get("updatedNumberScheduled", 0) >= want and status.get("numberAvailable", 0) >= want


@st.composite
def installs(draw: Any) -> tuple[ProductDef, dict[str, Any], list[int], bool]:
    r = HypothesisDraw(draw)
    product = load_product(product_doc(r, max_components=draw(st.sampled_from((5, 12, 50)))))
    spec = instance_spec(r, product)
    masks = draw(st.lists(st.integers(0, 2**50 - 1), max_size=12))
    return product, spec, masks, draw(st.booleans())


@budget(20)
@given(case=installs())
def test_planner_converges_and_never_applies_before_dependencies_are_ready(
    case: tuple[ProductDef, dict[str, Any], list[int], bool],
) -> None:
    """From an empty namespace: some passes with controllers finishing only some rollouts (and, maybe, the third
    parties down), then plain passes to Ready; then a pass plans nothing."""
    product, spec, masks, third_party_down = case
    assert validate_spec(spec, product) == []
    w = World(product, spec)
    w.fc.third_party_up = not third_party_down
    for mask in masks:  # partial rollouts: only the workloads the mask picks finish
        names = sorted(n for (k, n) in w.fc.objects if k in WORKLOADS)
        w.step([n for i, n in enumerate(names) if mask >> i & 1])
    w.fc.third_party_up = True
    done = w.converge(limit=3 * len(product.components) + 10)
    event(f"converged after {w.tick // 10 * 10}-{w.tick // 10 * 10 + 9} passes")
    assert set(w.first_write) == set(product.keys), "a component never written"
    for key, deps in w.deps.items():
        for d in deps:
            assert w.first_write[d] < w.first_write[key], (key, d, w.first_write)
    assert all(w.ready().values())
    before = copy.deepcopy(w.parent["status"])
    again = w.step()
    assert again.apply == () and again.delete == () and again.events == ()
    assert again.status == before == done.status, "status written again at steady state"
