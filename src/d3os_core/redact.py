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
SECRET_WORDS = ("token", "passw", "pwd", "secret", "key", "sig", "auth", "credential", "session")
"""A query (or fragment) parameter whose name holds one of these (any case) carries a secret."""
_NAME = r"[?&;#][^=&;#\s'\"]*(?:" + "|".join(SECRET_WORDS) + r")[^=&;#\s'\"]*="
_VALUE = r"[^&;#\s'\"]"
SECRET_QUERY_PATTERN = f"(?i){_NAME}{_VALUE}"
"""A secret-named query value that is not empty: the spec refuses a URL (or checkCMD) it matches, offline
(:func:`d3os_core.checks.check_no_secret_query`) and at admission (a CEL ``matches``: the same text is a
Python and an RE2 regular expression)."""
_SECRET_PARAM = re.compile(f"(?P<name>{_NAME})(?P<value>{_VALUE}*)", re.IGNORECASE)
_SECRET_QUERY = re.compile(SECRET_QUERY_PATTERN)


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


def secret_query_name(text: str) -> str | None:
    """The name of the first secret-named, non-empty query value in ``text`` (``access_token``), else None."""
    m = _SECRET_QUERY.search(text)
    return m.group(0)[1:].partition("=")[0] if m else None

