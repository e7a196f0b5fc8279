"""Does a live object still hold what we want? A desired manifest must be *covered* by the live one.

The server adds defaults and other managers may add fields or list items: those are not drift (and
server-side apply could not remove them anyway). A value we set that someone changed is drift.
"""

from __future__ import annotations

from typing import Any


def covers(live: Any, desired: Any) -> bool:
    """True when every value in ``desired`` is present and equal in ``live``.

    Lists of objects match item by item in any order (each desired item covered by some live item);
    lists of scalars must be equal.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(k in live and covers(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list):
            return False
        if desired and all(isinstance(d, dict) for d in desired):
            return all(any(covers(item, d) for item in live) for d in desired)
        return bool(live == desired)
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
    return bool(live == desired)
