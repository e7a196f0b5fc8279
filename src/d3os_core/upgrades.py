"""Product upgrades: how many instances may roll to a new product version at once.

An instance is *upgrading* while the version it last became Ready with (``status.productVersion``) differs
from the product file's: its objects are being re-rendered from the new file, in dependency order, with the
usual gating. A new instance (no version recorded yet) is an install, not an upgrade, and is never held back.
Like a Deployment's ``maxUnavailable``, an upgrade that never becomes Ready keeps its slot: a bad version stops
spreading at the cap instead of reaching every instance.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Set
from typing import Any


def upgrading(status: Mapping[str, Any] | None, product_version: str) -> bool:
    """Is the instance with this status rolling to ``product_version`` (not Ready with it yet)?"""
    have = (status or {}).get("productVersion")
    return bool(product_version) and isinstance(have, str) and bool(have) and have != product_version


def admit(key: Hashable, in_flight: Set[Hashable], cap: int | None) -> bool:
    """May the upgrading instance ``key`` be reconciled now, with ``in_flight`` upgrading already?"""
    return cap is None or key in in_flight or len(in_flight) < cap
