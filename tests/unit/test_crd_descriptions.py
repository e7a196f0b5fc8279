"""`kubectl explain` has something to say about every field: a walk of the CRD schema."""

from __future__ import annotations

from typing import Any

from d3os_core.crd import crd_manifest

from .helpers import DATASERVICE

EXEMPT = {".metadata"}
"""The API server refuses a CRD whose ``metadata`` schema says more than its type (kubectl explain describes
it from ObjectMeta anyway)."""


def undocumented(node: dict[str, Any], path: str = "") -> list[str]:
    """Paths of properties (at any depth, in arrays and maps too) without a description."""
    out = []
    for key, child in (node.get("properties") or {}).items():
        here = f"{path}.{key}"
        if here not in EXEMPT and not str(child.get("description") or "").strip():
            out.append(here)
        out.extend(undocumented(child, here))
    if isinstance(node.get("items"), dict):
        out.extend(undocumented(node["items"], path + "[]"))
    if isinstance(node.get("additionalProperties"), dict):
        out.extend(undocumented(node["additionalProperties"], path + "{}"))
    return out


def schema() -> dict[str, Any]:
    root: dict[str, Any] = crd_manifest(DATASERVICE)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


def test_every_field_has_a_description() -> None:
    assert undocumented(schema()) == []
    assert schema()["properties"]["metadata"] == {"type": "object"}


def test_the_walk_finds_a_missing_description() -> None:
    s = schema()
    del s["properties"]["spec"]["properties"]["auth"]["properties"]["port"]["description"]
    s["properties"]["status"]["properties"]["conditions"]["items"]["properties"]["reason"].pop("description")
    assert undocumented(s) == [".spec.auth.port", ".status.conditions[].reason"]


def test_component_descriptions_say_more_than_their_key() -> None:
    props = schema()["properties"]["spec"]["properties"]
    assert "Deployment" in props["mysql"]["description"] and "3306" in props["mysql"]["description"]
    assert "Example:" in props["auth"]["description"]
    replica = props["auth"]["properties"]["replica"]["description"]
    assert "default 1" in replica and "0-1000" in replica
