"""Redaction of credentials in URLs: ``http://user:password@host/`` is shown as ``http://***@host/``.

A third-party URL may carry ``user:password@``; whatever the operator shows about it (status, Events,
logs, metric labels) goes through :func:`redact_text`, so the secret never leaves the spec it came from.
"""

from __future__ import annotations

import re

MASK = "***"

# [scheme:]"//" then everything up to the *last* "@" before the path, query or fragment: that is the
# userinfo as urlsplit reads it (an unescaped "@" or ":" in a password stays inside it). Erring on the
# side of hiding: "//x@y" in a path is masked too.
_USERINFO = re.compile(r"(?P<scheme>(?:\b[A-Za-z][A-Za-z0-9+.\-]*:)?//)(?P<userinfo>[^/?#\s]*)@")


def redact_text(text: str) -> str:
    """``text`` with the userinfo of every ``scheme://userinfo@`` URL in it replaced by ``***``."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def redact_url(url: str) -> str:
    """One URL with its userinfo replaced by ``***`` (unchanged when it has none)."""
    return redact_text(url)
