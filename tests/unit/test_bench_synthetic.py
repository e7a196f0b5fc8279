"""The benchmark's synthetic products (bench/synthetic.py) are valid products whose DataService converges.

Timing is never asserted here (DESIGN.md §4): only that the generator produces what the benchmark claims
to measure -- a layered DAG of ``n`` components that the core validates, renders and brings to Ready.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import synthetic

from d3os_core import validate_spec
from d3os_core.graph import find_cycle


@pytest.mark.parametrize("n", [1, 2, 12, 50])
def test_layers_cover_every_component_once(n: int) -> None:
    flat = [i for layer in synthetic.layers(n) for i in layer]
    assert flat == list(range(n))


@pytest.mark.parametrize("n", [12, 50])
def test_dependencies_point_one_layer_back_and_are_acyclic(n: int) -> None:
    deps = synthetic.dependencies(n)
    assert find_cycle(deps) == []
    layer_of = {synthetic.key(i): d for d, layer in enumerate(synthetic.layers(n)) for i in layer}
    for k, ds in deps.items():
        assert all(layer_of[d] == layer_of[k] - 1 for d in ds), k
        assert (len(ds) >= 1) == (k != synthetic.MIDDLEWARE)


@pytest.mark.parametrize("n", [12, 50])
def test_spec_is_valid_and_converges_to_ready(n: int) -> None:
    prod = synthetic.product(n)
    ds = synthetic.dataservice(n)
    assert validate_spec(ds["spec"], prod) == []
    ready, observed = synthetic.converged(ds, prod)
    assert ready["status"]["ready"] == f"{n}/{n}"
    assert len(synthetic.render_all(ds, prod)()) == n
    assert observed.objects


def test_no_empty_product() -> None:
    with pytest.raises(ValueError):
        synthetic.layers(0)
