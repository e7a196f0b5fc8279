"""Redaction of credentials in URLs: ``http://user:password@host/?token=t`` is shown as
``http://***@host/?token=***``.

The spec refuses credentials in URLs (:data:`d3os_core.checks.NO_CREDENTIALS`), but whatever the operator
shows about a check or a refused spec (status, Events, logs, metric labels) still goes through
:func:`redact_text`: a spec admitted by an earlier version, a URL a server redirects to, or a parser's
message quoting what it refused must not put a secret on display either.
"""

from __future__ import annotations

import re

MASK = "***"

# [scheme:]"//" then everything up to the *last* "@" before the path, query or fragment: that is the
# userinfo as urlsplit reads it (an unescaped "@" or ":" in a password stays inside it). Erring on the
# side of hiding: "//x@y" in a path is masked too.
_USERINFO = re.compile(r"(?P<scheme>(?:\b[A-Za-z][A-Za-z0-9+.\-]*:)?//)(?P<userinfo>[^/?#\s]*)@")
# Without a scheme (``admin:hunter2@db.example``, ``curl user:pass@host/``): a word with a ":" before an
# "@", starting the text or after a blank, quote, bracket or "=".
_BARE_USERINFO = re.compile(r"(?P<before>^|[\s'\"(\[=,])(?P<userinfo>[^\s'\"/?#@:=]*:[^\s'\"/?#@]*)@")
# Query (or fragment) values whose name says they are secret: token, password, secret, key, signature, auth...
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;#][^=&;#\s'\"]*(?:token|passw|pwd|secret|key|sig|auth|credential|session)[^=&;#\s'\"]*=)"
    r"(?P<value>[^&;#\s'\"]*)",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """``text`` with every URL's userinfo (with or without a scheme) and every secret-named query value
    replaced by ``***``."""
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
        text = _BARE_USERINFO.sub(lambda m: f"{m.group('before')}{MASK}@", text)
    if "=" in text:
        text = _SECRET_PARAM.sub(lambda m: f"{m.group('name')}{MASK}" if m.group("value") else m.group(0), text)
    return text


def redact_url(url: str) -> str:
    """One URL with its userinfo and secret-named query values replaced by ``***``."""
    return redact_text(url)
