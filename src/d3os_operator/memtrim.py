"""Give memory back to the system after large, short-lived values (glibc only; elsewhere nothing is done).

The operator's live memory stays flat as DataServices go through generations (glibc's in-use bytes and
tracemalloc both flat over 20 generations of a 1.3 MB spec), yet its RSS crept up by megabytes: such a spec
is 40 strings of 32 KiB, and each watch event, JSON text and request body makes and frees more of them
between long-lived small objects, so the heap fragments (its free part grew from 15 to 21 MiB) and glibc
raises its mmap threshold after the first large buffer is freed. So at start the threshold is fixed at
16 KiB -- a value that large gets pages of its own and gives them back when freed (the heap's free part
stayed at 2.3 MiB and the RSS flat, measured) -- and every :data:`PERIOD` seconds ``malloc_trim(0)``
returns what the heap still has free (a millisecond's work).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import anyio

log = logging.getLogger("d3os_operator")

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 16 * 1024
PERIOD = 10.0


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 -- glibc has both; musl has neither
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


LIBC = _libc()


def tune() -> bool:
    """Fix glibc's mmap threshold; False where there is no glibc."""
    if LIBC is None:
        return False
    return bool(LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trim() -> None:
    if LIBC is not None:
        LIBC.malloc_trim(0)


async def trim_forever(period: float = PERIOD) -> None:
    """Call :func:`trim` every ``period`` seconds until cancelled (returns at once without glibc)."""
    if LIBC is None:
        return
    while True:
        await anyio.sleep(period)
        trim()
