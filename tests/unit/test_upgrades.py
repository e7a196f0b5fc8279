"""The upgrade cap's rule (d3os_core.upgrades), case by case from its definition."""

from __future__ import annotations

import pytest

from d3os_core.upgrades import admit, upgrading


@pytest.mark.parametrize(("status", "version", "expected"), [
    ({"productVersion": "2.0.0"}, "2.1.0", True),   # Ready with the old version: rolling to the new one
    ({"productVersion": "2.1.0"}, "2.1.0", False),  # done
    ({}, "2.1.0", False),                           # never Ready yet: an install, not an upgrade
    (None, "2.1.0", False),
    ({"productVersion": "2.0.0"}, "", False),       # a product without a version never upgrades
])
def test_what_counts_as_an_upgrade(status: dict[str, str] | None, version: str, expected: bool) -> None:
    assert upgrading(status, version) is expected


def test_the_cap_admits_those_in_flight_and_new_ones_only_below_it() -> None:
    assert admit("c", {"a", "b"}, 3) is True
    assert admit("c", {"a", "b", "x"}, 3) is False
    assert admit("a", {"a", "b", "x"}, 3) is True, "an upgrade in flight keeps its slot"
    assert admit("c", {"a", "b", "x"}, None) is True, "no cap"
    assert admit("c", set(), 0) is False
