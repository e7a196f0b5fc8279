"""RFC 3339 times without a clock or a calendar module: the one home for reading and writing the
``2026-01-01T00:00:00Z`` stamps of conditions, annotations and Events (the shell passes the seconds)."""

from __future__ import annotations

import math
import re

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$"
)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm: no calendar module)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (``2026-01-01T00:00:00Z``), or None when it is not one."""
    m = _RFC3339.match(str(text))
    if m is None:
        return None
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sec < 61):
        return None
    value = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec + float(m.group(7) or 0)
    zone = m.group(8)
    if zone and zone not in "Zz":
        sign = 1 if zone[0] == "+" else -1
        value -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return value


def seconds_between(since: str, now: str) -> float:
    """``now - since`` in seconds (0 when either is not a time: a broken stamp restarts the clock)."""
    a, b = parse_time(since), parse_time(now)
    if a is None or b is None:
        return 0.0
    return max(0.0, b - a)


def _civil_from_days(z: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01 (the inverse of :func:`_days_from_civil`)."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def format_time(seconds: float) -> str:
    """The UTC RFC 3339 stamp of ``seconds`` since the epoch, to the second: ``2026-01-01T00:00:00Z``."""
    days, rest = divmod(math.floor(seconds), 86400)
    y, mo, d = _civil_from_days(days)
    return f"{y:04d}-{mo:02d}-{d:02d}T{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}Z"
