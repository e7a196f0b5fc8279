"""Text as a terminal shows it: the seed's status line mixes ASCII and Chinese (``mysql已部署``)."""

from __future__ import annotations

from unicodedata import east_asian_width


def display_width(text: str) -> int:
    """Terminal columns of ``text``: wide and full-width characters (CJK) take two, as kubectl counts them."""
    return sum(2 if east_asian_width(ch) in ("W", "F") else 1 for ch in text)
