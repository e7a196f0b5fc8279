"""docs/configuration.md is generated and complete: every field of the spec model appears in it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from d3os_core.reference import config_reference
from d3os_core.spec import Microservice, Middleware, SpecBase

from .helpers import DATASERVICE

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_checked_in_reference_matches_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == config_reference(DATASERVICE), (
        "docs/configuration.md drifted: run `d3os reference > docs/configuration.md`")


def fields(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}"
        out.append(path)
        for arg in getattr(info.annotation, "__args__", ()) or (info.annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out.extend(fields(arg, path))
    return out


def test_every_field_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    wanted = fields(SpecBase, "spec") + fields(Middleware, "spec.<middleware>") \
        + fields(Microservice, "spec.<microservice>")
    missing = [f for f in wanted if f"`{f}`" not in text]
    assert missing == []
    for key in DATASERVICE.keys:
        assert f"`{key}`" in text
