"""Rendered YAML reads back as the same objects in every YAML reader (YAML 1.1: PyYAML; YAML 1.2:
ruamel.yaml), and the generated CRD has no anchors. kubectl's reader is checked in
tests/integration/test_render_kubectl.py."""

from __future__ import annotations

import io
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from d3os_core.crd import crd_manifest
from d3os_core.render import Parent, render_component, resolve
from d3os_core.validation import parse_spec
from d3os_core.yamlout import AMBIGUOUS, dump_all

from .helpers import DATASERVICE
from .strategies import specs

TRICKY = (
    "9910e32967671646", "5e60612130758836", "1e3", "0x1F", "0o17", "017", "0b101", "1_000", "12:30:00", "1:20",
    "+.5", "-.inf", ".NaN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "yes", "No", "on", "OFF", "y", "N",
    "~", "null", "NULL", "true", "False", "=", "<<", "", "123", "-7", "3.", ".5", "1.5e-3", "_", "1_", "-_0",
)
"""Strings some YAML reader resolves to something else (go-yaml reads the first two as floats)."""
PLAIN = ("abc", "v1.4", "500m", "1Gi", "mysql-dataservice", "a:b", "http://x:80/", "e3", "0x", "1.2.3", "yes please")


def yaml12(text: str) -> list[Any]:
    return list(YAML(typ="safe", pure=True).load_all(io.StringIO(text)))


def roundtrip(docs: list[Any]) -> None:
    text = dump_all(docs)
    assert list(yaml.safe_load_all(text)) == docs, "YAML 1.1 (PyYAML)"
    assert yaml12(text) == docs, "YAML 1.2 (ruamel.yaml)"


@pytest.mark.parametrize("value", TRICKY)
def test_ambiguous_strings_are_quoted(value: str) -> None:
    text = dump_all([{"v": value, value: "k"}]) if value else dump_all([{"v": value}])
    assert f"v: {value}\n" not in text
    roundtrip([{"v": value, "k" + value: [value]}])


@pytest.mark.parametrize("value", PLAIN)
def test_plain_strings_stay_plain(value: str) -> None:
    assert not AMBIGUOUS.match(value)
    assert dump_all([{"v": value}]) == f"v: {value}\n"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789eExXoObB._:+-~", min_size=1, max_size=10))
def test_number_like_strings_round_trip(value: str) -> None:
    roundtrip([{"v": value}])


def render(spec: dict[str, Any], namespace: str) -> list[Any]:
    s = parse_spec(spec, DATASERVICE)
    parent = Parent("dataservice-sample", namespace, "uid-1")
    states = resolve(parent, s, DATASERVICE)
    docs: list[Any] = []
    for key in DATASERVICE.keys:
        docs.extend(render_component(parent, s, DATASERVICE, states, key, {}, "").objects)
    return docs


@settings(max_examples=25, deadline=None)
@given(specs(), st.one_of(st.sampled_from(("yes", "no", "on", "off", "null", "y", "n", "true")),
                          st.from_regex(r"\A[a-z][a-z0-9-]{0,12}[a-z0-9]\Z")), st.sampled_from(TRICKY))
def test_rendered_specs_read_back_the_same(spec: dict[str, Any], namespace: str, env_value: str) -> None:
    spec["auth"]["env"] = {**(spec["auth"].get("env") or {}), "TRICKY": env_value}
    roundtrip(render(spec, namespace))


def test_hash_annotations_are_quoted() -> None:
    from .strategies import seed_spec

    text = dump_all(render(seed_spec(), "default"))
    for line in text.splitlines():
        if "-hash:" in line:
            value = line.split(":", 1)[1].strip()
            assert value.startswith("'") or not AMBIGUOUS.match(value), line


def test_crd_has_no_anchors_and_reads_back() -> None:
    text = dump_all([crd_manifest(DATASERVICE)])
    assert "&id" not in text and "*id" not in text
    assert yaml12(text) == [crd_manifest(DATASERVICE)]
