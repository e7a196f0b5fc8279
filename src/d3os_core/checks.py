"""Third-party health checks: ``checkCMD`` is parsed, never run.

The seed ran ``checkCMD`` through a shell inside the operator, which hands cluster-wide rights to anyone
who may edit a DataService. Here a small documented subset of ``curl`` and ``nc`` is turned into a
structured :class:`HttpCheck` or :class:`TcpCheck`; everything else is refused with the reason.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from .redact import SECRET_QUERY_PATTERN, SECRET_WORDS, secret_query_name
from .types import Check, HttpCheck, TcpCheck


class ThirdPartyHolder(Protocol):
    """What :func:`third_party_check` reads of a middleware (``spec.Middleware``; the spec model imports this
    module's patterns, so the check grammar names no spec class)."""

    @property
    def third_party(self) -> Any: ...

T = TypeVar("T")

_SHELL_META = set(";|&$`<>()\n\r\\")

# curl flags that take no argument, and what they mean for the check.
_CURL_SWITCHES = {
    "--head": "head", "-I": "head",
    "--fail": "fail", "-f": "fail",
    "--silent": None, "-s": None, "--show-error": None, "-S": None,
    "--insecure": "insecure", "-k": "insecure",
    "--location": "location", "-L": "location",
}
_CURL_WITH_ARG = {"--output", "-o", "--max-time", "-m", "--connect-timeout"}

SUPPORTED = (
    "curl [--head|-I] [--fail|-f] [--silent|-s] [--show-error|-S] [--insecure|-k] [--location|-L] "
    "[--output|-o /dev/null] [--max-time|-m SECONDS] [--connect-timeout SECONDS] URL, "
    "or nc -z [-w SECONDS] HOST PORT"
)


_LABEL = r"[a-zA-Z0-9_]([-a-zA-Z0-9_]{0,61}[a-zA-Z0-9_])?"
HOST_PATTERN = rf"({_LABEL}(\.{_LABEL})*\.?|\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\])"
"""A host as the CRD and the core accept it: an ASCII DNS name (or IPv4 address), or an IPv6 address in
brackets. The core then checks lengths and the IPv6 address exactly (:func:`check_host`)."""
PORT_PATTERN = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
"""1 to 65535."""
_REST = r"([/?#][!-~]*)?"
# No ``USER[:PASSWORD]@`` before the host: the operator shows its URLs (status, Events, logs, metric labels)
# and copies them into ConfigMaps and revisions; a credential has no place there (see NO_CREDENTIALS).
URL_PATTERN = rf"^[a-z][a-z0-9+.-]*://{HOST_PATTERN}(:{PORT_PATTERN})?{_REST}$"
HTTP_URL_PATTERN = rf"^https?://{HOST_PATTERN}(:{PORT_PATTERN})?{_REST}$"
"""``thirdParty.check.http.url``: used by the spec model (offline) and the CRD (admission) alike."""
THIRD_PARTY_URL_PATTERN = (
    rf"^((https?|tcp|mysql|jdbc:mysql)://)?{HOST_PATTERN}(:{PORT_PATTERN})?{_REST}$"
)
"""``thirdParty.url``: http(s)://…, tcp://HOST:PORT, jdbc:mysql://HOST[:PORT]/…, mysql://HOST[:PORT], HOST:PORT."""
TCP_HOST_PATTERN = rf"^({_LABEL}(\.{_LABEL})*\.?|\[?[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\]?)$"
"""``thirdParty.check.tcp.host``: a host as above, an IPv6 address with or without brackets."""


NO_CREDENTIALS = (
    "must not carry credentials (USER[:PASSWORD]@ before the host): the operator shows its URLs in status, "
    "Events, logs and metrics and copies them into ConfigMaps; check an endpoint that needs none (or use a "
    "tcp check), and give the application its credentials through env from a Secret"
)
"""Why a URL with userinfo is refused; the message never repeats the URL (it holds the credential)."""


class CheckError(ValueError):
    """A check that cannot be turned into a structured probe; the message says why."""


_HOW = ("every spec that reached Ready is kept in clear in a ControllerRevision; check an endpoint that needs "
        "none (or a tcp check) and give the application its credentials through env from a Secret")
SECRET_QUERY_WORDS = "a parameter whose name holds " + ", ".join(SECRET_WORDS)
NO_SECRET_QUERY_RULE: dict[str, Any] = {
    "rule": f"!self.matches({json.dumps(SECRET_QUERY_PATTERN)})",
    "message": f"must not carry a secret in its query ({SECRET_QUERY_WORDS}, with a value): {_HOW}",
}
"""The admission side of :func:`check_no_secret_query` (a CEL rule on every URL field and ``checkCMD``)."""


def check_no_secret_query(text: str, *, what: str = "URL") -> str:
    """``text`` unless it carries a secret-named query value (``?token=…``); the message names the parameter,
    never its value."""
    name = secret_query_name(text)
    if name is not None:
        raise CheckError(f"{what} must not carry a secret in its query ({name}=…; refused: {SECRET_QUERY_WORDS}, "
                         f"with a value): {_HOW}".lstrip())
    return text


def has_userinfo(url: str) -> bool:
    """Does ``url`` (with or without a scheme) carry ``USER[:PASSWORD]@`` before its host?"""
    rest = url.split("://", 1)[1] if "://" in url else url
    return "@" in re.split(r"[/?#]", rest, maxsplit=1)[0]


def _seconds(flag: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise CheckError(f"{flag} needs a number of seconds, got {value!r}") from None
    if not 0 < seconds <= 300:
        raise CheckError(f"{flag} must be between 0 and 300 seconds, got {value}")
    return seconds


def check_url(url: str, *, what: str = "URL") -> None:
    """Accept only absolute http(s) URLs with a well-formed host; raise :class:`CheckError` otherwise."""
    _split_url(url, what, ("http", "https"))


def _split_url(url: str, what: str, schemes: tuple[str, ...]) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``; every malformed part is a :class:`CheckError` naming it, never another
    exception (``urlsplit`` raises ValueError on ``http://[zz]/`` or ``http://h:99999/``)."""
    if has_userinfo(url):  # first: every later message quotes the URL
        raise CheckError(f"{what} {NO_CREDENTIALS}")
    if any(c.isspace() for c in url) or any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise CheckError(f"{what} must not contain whitespace or control characters")
    if not url.isascii():
        raise CheckError(f"{what} must be ASCII: {_ascii_hint(url)}")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise CheckError(f"{what} {url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes or "://" not in url:
        raise CheckError(f"{what} must be an absolute {' or '.join(s + '://' for s in schemes)} URL, got {url!r}")
    if not host:
        raise CheckError(f"{what} {url!r} has no host")
    try:
        port = parts.port
    except ValueError:
        text = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
        raise CheckError(f"{what} port must be a number from 1 to 65535, got {text!r}") from None
    bracketed = "[" in parts.netloc
    check_host(f"[{host}]" if bracketed else host, what=f"{what} host")
    if port is not None and not 1 <= port <= 65535:
        raise CheckError(f"{what} port must be a number from 1 to 65535, got {port}")
    if re.fullmatch(URL_PATTERN, url) is None:
        raise CheckError(f"{what} {url!r} is not a valid URL: expected SCHEME://HOST[:PORT][/PATH] "
                         "in printable ASCII")
    return parts.scheme, host, port


def _ascii_hint(text: str) -> str:
    """Say how to write ``text`` in ASCII: internationalised host names in their xn-- (IDNA) form."""
    try:
        parts = urlsplit(text if "://" in text else "tcp://" + text)
        host = parts.hostname or ""
    except ValueError:
        host = ""
    hint = "write an internationalised host name in its xn-- (IDNA) form and percent-encode other characters"
    if host and not host.isascii():
        try:
            return f"{hint} (that host in ASCII: {host.encode('idna').decode('ascii')!r})"
        except UnicodeError:
            return f"{hint} (host {host!r} is not a valid internationalised name)"
    return hint


def check_host(host: str, *, what: str = "host") -> str:
    """A DNS name of ASCII letters, digits, '-' and '_' (labels of 1 to 63, at most 253 in all), an IPv4
    address, or an IPv6 address (in brackets or bare); the host without brackets, or :class:`CheckError`."""
    if not host:
        raise CheckError(f"{what} is empty")
    if "@" in host:
        raise CheckError(f"{what} {NO_CREDENTIALS}")
    if not host.isascii():
        raise CheckError(f"{what} {host!r} must be ASCII: {_ascii_hint(host)}")
    if host.startswith("[") or host.endswith("]") or ":" in host:
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise CheckError(f"{what} {host!r} is not a valid IPv6 address") from None
        return inner
    if len(host) > 253:
        raise CheckError(f"{what} has {len(host)} characters; at most 253")
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(labels) == 4 and all(x.isdigit() for x in labels):  # a dotted quad is an IPv4 address, not a name
        try:
            ipaddress.IPv4Address(".".join(labels))
        except ValueError:
            raise CheckError(f"{what} {host!r} is not a valid IPv4 address (each part 0 to 255)") from None
    for label in labels:
        if not label:
            raise CheckError(f"{what} {host!r} has an empty label ('..', or a leading dot)")
        if len(label) > 63:
            raise CheckError(f"{what} {host!r} has a label of {len(label)} characters; at most 63")
        if re.fullmatch(_LABEL, label) is None:
            raise CheckError(f"{what} {host!r}: label {label!r} may hold only letters, digits, '-' and '_', "
                             "and may not start or end with '-'")
    return host


def parse_check_cmd(cmd: str) -> Check:
    """Turn a ``checkCMD`` string into a structured check, or raise :class:`CheckError` saying why."""
    if not cmd or not cmd.strip():
        raise CheckError("checkCMD is empty")
    if len(cmd) > 2048:
        raise CheckError("checkCMD is longer than 2048 characters")
    bad = sorted({c for c in cmd if c in _SHELL_META or (ord(c) < 32 and c != " ")})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise CheckError(f"checkCMD may not contain shell syntax ({shown}); supported: {SUPPORTED}")
    try:
        words = shlex.split(cmd)
    except ValueError as exc:
        raise CheckError(f"checkCMD cannot be split into words: {exc}") from None
    if not words:
        raise CheckError("checkCMD is empty")
    program, args = words[0], words[1:]
    if program == "curl":
        return _parse_curl(args)
    if program in ("nc", "ncat", "netcat"):
        return _parse_nc(args)
    raise CheckError(f"checkCMD program {program!r} is not supported; supported: {SUPPORTED}")


def _parse_curl(args: list[str]) -> HttpCheck:
    method = "GET"
    fail = False
    insecure = False
    location = False
    timeouts: list[float] = []
    urls: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _CURL_SWITCHES:
            meaning = _CURL_SWITCHES[arg]
            if meaning == "head":
                method = "HEAD"
            elif meaning == "fail":
                fail = True
            elif meaning == "insecure":
                insecure = True
            elif meaning == "location":
                location = True
            i += 1
            continue
        if arg in _CURL_WITH_ARG:
            if i + 1 >= len(args):
                raise CheckError(f"curl option {arg} needs a value")
            value = args[i + 1]
            if arg in ("--output", "-o"):
                if value != "/dev/null":
                    raise CheckError(f"curl {arg} may only be /dev/null (a check writes no files)")
            else:
                timeouts.append(_seconds(arg, value))
            i += 2
            continue
        if arg.startswith("-"):
            raise CheckError(f"curl option {arg!r} is not supported; supported: {SUPPORTED}")
        urls.append(arg)
        i += 1
    if len(urls) != 1:
        raise CheckError(f"curl check needs exactly one URL, got {len(urls)}")
    check_url(urls[0], what="curl URL")
    return HttpCheck(
        url=urls[0],
        method="HEAD" if method == "HEAD" else "GET",
        insecure=insecure,
        follow_redirects=location,
        timeout_seconds=min(timeouts) if timeouts else 5.0,
        fail_on_http_error=fail,
    )


def _parse_nc(args: list[str]) -> TcpCheck:
    zero = False
    timeout = 5.0
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-z":
            zero = True
            i += 1
        elif arg in ("-w",):
            if i + 1 >= len(args):
                raise CheckError("nc -w needs a number of seconds")
            timeout = _seconds("nc -w", args[i + 1])
            i += 2
        elif arg in ("-zv", "-vz"):
            zero = True
            i += 1
        elif arg == "-v":
            i += 1
        elif arg.startswith("-"):
            raise CheckError(f"nc option {arg!r} is not supported; supported: {SUPPORTED}")
        else:
            rest.append(arg)
            i += 1
    if not zero:
        raise CheckError("nc check needs -z (connect only, send nothing)")
    if len(rest) != 2:
        raise CheckError(f"nc check needs HOST PORT, got {' '.join(rest) or 'nothing'}")
    host, port_text = rest
    return TcpCheck(host=check_host(host, what="nc host"), port=_port(port_text), timeout_seconds=timeout)


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise CheckError(f"port must be a number from 1 to 65535, got {text!r}")
    return int(text)


def check_from_url(url: str) -> Check:
    """The check implied by a bare third-party ``url``: HTTP GET for http(s), TCP connect otherwise.

    Accepted forms: ``http(s)://…``, ``tcp://host:port``, ``jdbc:mysql://host[:port]/…``,
    ``mysql://host[:port]``, or ``host:port``.
    """
    if url.startswith(("http://", "https://")):
        check_url(url, what="url")
        return HttpCheck(url=url, method="GET", fail_on_http_error=True)
    host, port = endpoint_of(url)
    return TcpCheck(host=host, port=port)


def endpoint_of(url: str, default_port: int | None = None) -> tuple[str, int]:
    """Host and port of a third-party URL in any accepted form (see :func:`check_from_url`)."""
    text = url[len("jdbc:"):] if url.startswith("jdbc:") else url
    if "://" not in text:
        text = "tcp://" + text
    try:
        scheme, host, port = _split_url(text, "url", ("tcp", "mysql", "http", "https"))
    except CheckError as exc:
        if "must be an absolute" not in str(exc):
            raise
        raise CheckError(
            f"url {url!r} is not one of http(s)://HOST…, tcp://HOST:PORT, jdbc:mysql://HOST[:PORT]/…, "
            "mysql://HOST[:PORT], HOST:PORT"
        ) from None
    if url.startswith("jdbc:") and scheme != "mysql":
        raise CheckError(f"url {url!r}: jdbc URLs must be jdbc:mysql://HOST[:PORT]/…")
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme, default_port or 0)
    if not port:
        raise CheckError(f"url {url!r} needs a port (HOST:PORT, from 1 to 65535)")
    return host, port


def third_party_check(mw: ThirdPartyHolder) -> Check:
    """The check of a third-party middleware: ``check``, else ``checkCMD`` parsed, else its ``url``.

    Raises :class:`CheckError` only (never another exception), whatever the addresses say.
    """
    tp = mw.third_party
    if tp is None or (not tp.check_cmd and not tp.url and tp.check is None):
        raise CheckError("kind 3 (thirdParty) needs thirdParty.url, thirdParty.check or thirdParty.checkCMD")
    if tp.check is not None:
        if tp.check.http is not None:
            h = tp.check.http
            guard(check_url, h.url, what="check.http.url")
            return HttpCheck(url=h.url, method=h.method, insecure=h.insecure, follow_redirects=h.follow_redirects,
                             timeout_seconds=h.timeout_seconds, fail_on_http_error=h.fail_on_http_error)
        if tp.check.tcp is None:
            raise CheckError("set exactly one of http or tcp")
        host = guard(check_host, tp.check.tcp.host, what="check.tcp.host")
        return TcpCheck(host=host, port=tp.check.tcp.port, timeout_seconds=tp.check.tcp.timeout_seconds)
    if tp.check_cmd:
        return guard(parse_check_cmd, tp.check_cmd)
    assert tp.url is not None
    return guard(check_from_url, tp.url)


def guard(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a check parser; anything but :class:`CheckError` it raises (a bug, an input nobody foresaw)
    becomes a :class:`CheckError` too, so a bad address is always a refusal with a field path, never a crash."""
    try:
        return fn(*args, **kwargs)
    except CheckError:
        raise
    except Exception as exc:
        raise CheckError(f"cannot be parsed ({type(exc).__name__}: {exc})") from None
