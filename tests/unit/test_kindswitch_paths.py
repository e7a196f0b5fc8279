"""The kind-switch table walks every direction (a pure check of the integration test's table)."""

from __future__ import annotations

import itertools

from d3os_operator.products import installed_product
from tests.integration.test_kindswitch_table import PATHS


def test_every_direction_among_each_middlewares_kinds_is_walked() -> None:
    """The product file says which kinds each middleware allows; its path must switch between every two of
    them, both ways (StatefulSet -> DaemonSet included)."""
    product = installed_product("dataservice")
    assert set(PATHS) == {c.key for c in product.components if c.role == "middleware"}
    for comp, path in PATHS.items():
        allowed = [int(k) for k in product.component(comp).allowed_kinds]
        wanted = {(a, b) for a in allowed for b in allowed if a != b}
        assert set(itertools.pairwise(path)) == wanted, comp
