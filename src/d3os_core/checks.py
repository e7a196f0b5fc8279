"""Third-party health checks: ``checkCMD`` is parsed, never run.

The seed ran ``checkCMD`` through a shell inside the operator, which hands cluster-wide rights to anyone
who may edit a DataService. Here a small documented subset of ``curl`` and ``nc`` is turned into a
structured :class:`HttpCheck` or :class:`TcpCheck`; everything else is refused with the reason.
"""

from __future__ import annotations

import shlex
from urllib.parse import urlsplit

from .types import Check, HttpCheck, TcpCheck

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


class CheckError(ValueError):
    """A check that cannot be turned into a structured probe; the message says why."""


def _seconds(flag: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise CheckError(f"{flag} needs a number of seconds, got {value!r}") from None
    if not 0 < seconds <= 300:
        raise CheckError(f"{flag} must be between 0 and 300 seconds, got {value}")
    return seconds


def check_url(url: str, *, what: str = "URL") -> None:
    """Accept only absolute http(s) URLs with a host; raise :class:`CheckError` otherwise."""
    if any(c.isspace() for c in url) or any(ord(c) < 32 for c in url):
        raise CheckError(f"{what} must not contain whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CheckError(f"{what} must be an absolute http:// or https:// URL, got {url!r}")
    try:
        _ = parts.port
    except ValueError:
        raise CheckError(f"{what} has an invalid port: {url!r}") from None


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
    return TcpCheck(host=_host(host), port=_port(port_text), timeout_seconds=timeout)


def _host(host: str) -> str:
    if not host or len(host) > 253 or not all(c.isalnum() or c in ".-:[]_" for c in host):
        raise CheckError(f"invalid host {host!r}")
    return host.strip("[]")


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise CheckError(f"port must be a number from 1 to 65535, got {text!r}")
    return int(text)


def check_from_url(url: str) -> Check:
    """The check implied by a bare third-party ``url``: HTTP GET for http(s), TCP connect otherwise.

    Accepted forms: ``http(s)://…``, ``tcp://host:port``, ``jdbc:mysql://host[:port]/…``,
    ``mysql://host[:port]``, or ``host:port``.
    """
    if url.startswith(("http://", "https://")):
        check_url(url)
        return HttpCheck(url=url, method="GET", fail_on_http_error=True)
    host, port = endpoint_of(url)
    return TcpCheck(host=host, port=port)


def endpoint_of(url: str, default_port: int | None = None) -> tuple[str, int]:
    """Host and port of a third-party URL in any accepted form (see :func:`check_from_url`)."""
    if any(c.isspace() for c in url):
        raise CheckError("url must not contain whitespace")
    text = url[len("jdbc:"):] if url.startswith("jdbc:") else url
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("tcp", "mysql", "http", "https") or not parts.hostname:
        raise CheckError(
            f"url {url!r} is not one of http(s)://HOST…, tcp://HOST:PORT, jdbc:mysql://HOST[:PORT]/…, "
            "mysql://HOST[:PORT], HOST:PORT"
        )
    try:
        port = parts.port
    except ValueError:
        raise CheckError(f"url {url!r} has an invalid port") from None
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme, default_port or 0)
    if not port:
        raise CheckError(f"url {url!r} needs a port")
    return _host(parts.hostname), port
