"""The bad-input corpus (tests/corpus/*.yaml) as cases, and what the core renders of an admitted one.

Shared by the pure tests (tests/unit/test_corpus_inert.py) and the ones against the local control plane
(tests/integration/test_corpus.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from d3os_core.render import Parent, render_component, resolve
from d3os_core.validation import parse_spec
from d3os_operator.products import installed_product

DATASERVICE = installed_product("dataservice")

CORPUS = Path(__file__).resolve().parent / "corpus"
_EXPECT = re.compile(r"^# expect: (rejected|invalid-spec|accepted|ready|known-gap)(?::\s*(.*))?$", re.M)


@dataclass(frozen=True)
class Case:
    path: Path
    text: str
    outcome: str
    needle: str

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def doc(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.text))


def load_cases() -> list[Case]:
    out = []
    for p in sorted(CORPUS.glob("*.yaml")):
        text = p.read_text(encoding="utf-8")
        m = _EXPECT.search(text)
        assert m, f"{p.name}: no '# expect:' header"
        out.append(Case(p, text, m.group(1), (m.group(2) or "").strip()))
    return out


CASES = load_cases()


def rendered_objects(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object ``d3os render`` shows for a valid DataService."""
    spec = parse_spec(doc["spec"], DATASERVICE)
    meta = doc["metadata"]
    parent = Parent(name=meta["name"], namespace="corpus", uid="corpus-uid")
    states = resolve(parent, spec, DATASERVICE)
    out: list[dict[str, Any]] = []
    for key in DATASERVICE.keys:
        out.extend(render_component(parent, spec, DATASERVICE, states, key, {}, "").objects)
    return out


_SHELL = re.compile(r"[;|`$<>\n]|&&")


def assert_inert(doc: dict[str, Any]) -> None:
    """Shell syntax from the spec lands only in env values and ConfigMap data, never in a command."""
    for obj in rendered_objects(doc):
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            for c in obj["spec"]["template"]["spec"].get("containers", []):
                for field in ("command", "args"):
                    for arg in c.get(field) or []:
                        for value in injected(doc):
                            assert value not in arg, (obj["metadata"]["name"], field, arg)


def injected(doc: dict[str, Any]) -> list[str]:
    out = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and _SHELL.search(node) and "cosmoplat" not in node:
            out.append(node)

    walk(doc["spec"])
    return out
