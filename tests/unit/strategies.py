"""Hypothesis strategies for the core's property tests: valid DataService specs and spec mutations.

Every spec starts from the seed's sample and varies what the rules allow: middleware kinds (mysql 0/1/3,
uuc and eureka 0-3; kind 3 with a usable ``thirdParty``), images, replicas 0-3, ports, distinct
nodePorts or null, env maps, names, and an optional ``dependsOn`` that names components in any
direction of the product order (later ones too) as long as the graph stays acyclic: what the validator
allows. A mutation is a small, self-contained change
(kind switch, image change, …) that keeps a valid spec valid, so a test can change the spec mid-way.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from d3os_core.validation import operator_env_names

from .helpers import DATASERVICE

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dataservice-sample.yaml"
SEED: dict[str, Any] = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
KEYS: tuple[str, ...] = DATASERVICE.keys
MIDDLEWARES = ("mysql", "uuc", "eureka")
MICROSERVICES = tuple(k for k in KEYS if k not in MIDDLEWARES)
ALLOWED_KINDS: dict[str, tuple[int, ...]] = {"mysql": (0, 1, 3), "uuc": (0, 1, 2, 3), "eureka": (0, 1, 2, 3)}

THIRD_PARTIES: tuple[dict[str, str], ...] = (
    {"url": "http://x.example:80/"},
    {"checkCMD": "curl --output /dev/null --silent --head --fail http://x.example:80/"},
    {"checkCMD": "nc -z x.example 3306"},
    {"checkCMD": "curl -f -m 3 https://id.example/duc", "url": "https://id.example/duc"},
    {"url": "x.example:3306"},
)
"""Usable third-party settings: a bare http URL, a parseable curl/nc checkCMD, both, a HOST:PORT."""

TAGS = ("v1.4", "v1.5", "v2.0")
RESERVED_ENV = {n for k in KEYS for n in operator_env_names(DATASERVICE, k)}
ENV_NAMES = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,11}\Z").filter(lambda n: n not in RESERVED_ENV)
ENV_VALUES = st.text(alphabet="abcxyz019 =:/-_", max_size=12)


def node_port_choices(key: str) -> tuple[int, ...]:
    """NodePorts owned by ``key`` alone (disjoint ranges per component), so they are always distinct."""
    i = KEYS.index(key)
    return (30000 + 100 * i, 30000 + 100 * i + 1)


def seed_spec() -> dict[str, Any]:
    return copy.deepcopy(SEED["spec"])


def third_party(index: int) -> dict[str, str]:
    return dict(THIRD_PARTIES[index % len(THIRD_PARTIES)])


def _image(key: str, tag: str) -> str:
    base = SEED["spec"][key].get("image") or f"registry.example/{key}"
    return base.rsplit(":", 1)[0] + ":" + tag


DEFAULT_DEPS = DATASERVICE.default_dependencies()


def _deps_of(spec: dict[str, Any], key: str) -> list[str]:
    declared = spec[key].get("dependsOn")
    return list(declared) if declared is not None else list(DEFAULT_DEPS[key])


def _reaches(spec: dict[str, Any], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        k = todo.pop()
        if k == goal:
            return True
        if k not in seen:
            seen.add(k)
            todo.extend(_deps_of(spec, k))
    return False


def depends_on(spec: dict[str, Any], key: str, mask: int) -> list[str]:
    """The other components selected by the bits of ``mask`` (before or after ``key`` in the product order),
    less those that depend on ``key`` already (directly or not), which would close a cycle."""
    others = [k for k in KEYS if k != key]
    return [k for i, k in enumerate(others) if mask >> i & 1 and not _reaches(spec, k, key)]


# -- mutations: ("what", key, value...) tuples, printable in a falsifying example --------------------

Mutation = tuple[Any, ...]


def kind_switches() -> st.SearchStrategy[Mutation]:
    return st.sampled_from(MIDDLEWARES).flatmap(
        lambda k: st.tuples(st.just("kind"), st.just(k), st.sampled_from(ALLOWED_KINDS[k]),
                            st.integers(0, len(THIRD_PARTIES) - 1))
    )


def mutations() -> st.SearchStrategy[Mutation]:
    return st.one_of(
        kind_switches(),
        st.tuples(st.just("image"), st.sampled_from(KEYS), st.sampled_from(TAGS)),
        st.tuples(st.just("all-images"), st.sampled_from(TAGS)),
        st.tuples(st.just("replica"), st.sampled_from(KEYS), st.one_of(st.none(), st.integers(0, 3))),
        st.tuples(st.just("env"), st.sampled_from(KEYS), st.dictionaries(ENV_NAMES, ENV_VALUES, max_size=3)),
        st.tuples(st.just("port"), st.sampled_from(MICROSERVICES), st.sampled_from((80, 8080, 9000, 65535))),
        st.tuples(st.just("nodePort"), st.sampled_from(MICROSERVICES), st.integers(-1, 1)),
        st.tuples(st.just("dependsOn"), st.sampled_from(KEYS), st.one_of(st.none(), st.integers(0, 2**11 - 1))),
        st.tuples(st.just("rename"), st.sampled_from(KEYS), st.booleans()),
    )


def apply_mutation(spec: dict[str, Any], m: Mutation) -> dict[str, Any]:
    """A new spec: ``spec`` with the mutation ``m`` applied (``spec`` itself is left alone)."""
    spec = copy.deepcopy(spec)
    what = m[0]
    if what == "kind":
        _, key, kind, tp = m
        spec[key]["kind"] = kind
        spec[key]["thirdParty"] = third_party(tp) if kind == 3 else None
    elif what == "image":
        _, key, tag = m
        spec[key]["image"] = _image(key, tag)
    elif what == "all-images":
        for key in KEYS:
            spec[key]["image"] = _image(key, m[1])
    elif what == "replica":
        _, key, n = m
        if n is None:
            spec[key].pop("replica", None)
        else:
            spec[key]["replica"] = n
    elif what == "env":
        _, key, env = m
        spec[key]["env"] = dict(env)
    elif what == "port":
        _, key, port = m
        spec[key]["port"] = port
    elif what == "nodePort":
        _, key, choice = m
        spec[key]["nodePort"] = None if choice < 0 else node_port_choices(key)[choice]
    elif what == "dependsOn":
        _, key, mask = m
        if mask is None:
            # back to the product's default, unless a default dependency now depends on ``key`` (a cycle)
            if not any(_reaches(spec, d, key) for d in DEFAULT_DEPS[key]):
                spec[key].pop("dependsOn", None)
        else:
            spec[key]["dependsOn"] = depends_on(spec, key, mask)
    elif what == "rename":
        _, key, renamed = m
        base = SEED["spec"][key]["name"]
        spec[key]["name"] = base + "-v2" if renamed else base
    else:  # pragma: no cover - a strategy bug
        raise AssertionError(f"unknown mutation {m!r}")
    return abide(spec)


def abide(spec: dict[str, Any]) -> dict[str, Any]:
    """Keep the rule that pods of a Deployment sharing one claim are at most one (mysql kind 0)."""
    mysql = spec["mysql"]
    if mysql.get("kind") == 0 and (mysql.get("replica") or 0) > 1:
        mysql["replica"] = 1
    return spec


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec: the seed's sample with random, rule-abiding variations on every component."""
    spec = seed_spec()
    for key in MIDDLEWARES:
        kind = draw(st.sampled_from(ALLOWED_KINDS[key]))
        spec[key] = apply_mutation(spec, ("kind", key, kind, draw(st.integers(0, len(THIRD_PARTIES) - 1))))[key]
        if draw(st.booleans()):
            spec[key]["image"] = _image(key, draw(st.sampled_from(TAGS)))
        if draw(st.booleans()):
            spec[key]["replica"] = draw(st.integers(0, 3))
        if draw(st.booleans()):
            spec[key]["port"] = draw(st.sampled_from((1, 3307, 8080, 65535)))
    if draw(st.booleans()):
        spec["mysql"]["storage"] = draw(st.fixed_dictionaries(
            {"size": st.sampled_from(("1Gi", "8Gi", "500Mi"))},
            optional={"storageClassName": st.sampled_from(("fast", "standard"))},
        ))
    for key in MICROSERVICES:
        spec[key]["image"] = _image(key, draw(st.sampled_from(TAGS)))
        spec[key]["replica"] = draw(st.integers(0, 3))
        spec[key]["port"] = draw(st.sampled_from((SEED["spec"][key]["port"], 80, 8080, 65535)))
        choice = draw(st.integers(-1, 1))
        spec[key]["nodePort"] = None if choice < 0 else node_port_choices(key)[choice]
    for key in draw(st.permutations(KEYS)):  # in any order: a later component may be made independent first
        if draw(st.integers(0, 2)) == 0:
            spec[key]["dependsOn"] = depends_on(spec, key, draw(st.integers(0, 2**11 - 1)))
    for key in KEYS:
        if draw(st.integers(0, 3)) == 0:
            spec[key]["env"] = draw(st.dictionaries(ENV_NAMES, ENV_VALUES, max_size=3))
        if draw(st.integers(0, 5)) == 0:
            spec[key] = apply_mutation(spec, ("rename", key, True))[key]
    if draw(st.integers(0, 3)) == 0:
        spec["trd-adapter"]["files"] = {"main.py": draw(st.text(alphabet="print()'x \n", max_size=20))}
    if draw(st.integers(0, 3)) == 0:
        spec["imagePullSecrets"] = ["regcred"]
    return abide(spec)


# -- what happens to the fake cluster between two passes -------------------------------------------

Op = tuple[Any, ...]


def ops() -> st.SearchStrategy[Op]:
    """One event of a random history: a plan pass, controllers finishing, a user's hand, a spec change."""
    plan_pass = st.tuples(st.just("plan"), st.booleans())  # plan and carry out; the flag: run the probes
    return st.one_of(
        plan_pass,
        st.tuples(st.just("mutate"), mutations()),  # the user changes the spec
        st.tuples(st.just("settle"), st.integers(0, 2**16 - 1)),  # finish the rollout of some workloads
        st.just(("settle-all",)),
        plan_pass,
        st.tuples(st.just("delete"), st.integers(0, 10_000)),  # someone deletes an object
        st.tuples(st.just("edit"), st.integers(0, 10_000), st.booleans()),  # someone edits an object
        st.just(("flip",)),  # the third party goes down / comes back
        plan_pass,
    )


def histories() -> st.SearchStrategy[list[Op]]:
    return st.lists(ops(), min_size=4, max_size=40)
