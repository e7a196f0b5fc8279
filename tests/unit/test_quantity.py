"""Quantities are rendered the way the API server stores them, or the object would never look up to date."""

from __future__ import annotations

import pytest

from d3os_core.quantity import canonical

from .helpers import sample


@pytest.mark.parametrize(("given", "stored"), [
    ("5000", "5k"), ("1500", "1500"), ("100m", "100m"), ("1000m", "1"), ("0.5", "500m"), ("1.5", "1500m"),
    ("8Gi", "8Gi"), ("1024Mi", "1Gi"), ("1.5Gi", "1536Mi"), ("0.5Ki", "512"), ("2k", "2k"), ("1000000", "1M"),
    ("0", "0"), ("256Mi", "256Mi"),
])
def test_canonical_form(given: str, stored: str) -> None:
    assert canonical(given) == stored


def test_rendered_resources_are_canonical() -> None:
    from d3os_core.render import Parent, render_component, resolve
    from d3os_core.validation import parse_spec

    from .helpers import DATASERVICE

    ds = sample()
    ds["spec"]["mysql"]["resources"] = {"requests": {"cpu": "5000", "memory": "1024Mi"}}
    ds["spec"]["mysql"]["storage"] = {"size": "2048Mi"}
    spec = parse_spec(ds["spec"], DATASERVICE)
    who = Parent("dataservice-sample", "default", "uid")
    states = resolve(who, spec, DATASERVICE)
    r = render_component(who, spec, DATASERVICE, states, "mysql", {}, "seed")
    sts = next(o for o in r.objects if o["kind"] == "StatefulSet")
    assert sts["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "5k", "memory": "1Gi"}
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
