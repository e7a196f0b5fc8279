"""One-line errors and documented exit codes for the command lines; a traceback only with ``--debug``.

Exit codes of ``d3os``, ``kubectl d3os`` and ``d3os-operator`` (docs/operations.md lists them too):

===  ===========================================================================================
 0   done
 1   the answer is "no": ``diff`` found changes, ``apply --wait`` ended Stalled or timed out,
     ``status``/``history``/``rollback``/``get NAME``: no such instance or revision, ``d3os-operator run``
     lost its leadership
 2   invalid input: command line, unreadable file, not YAML, invalid DataService spec
 3   no usable kubeconfig (none found, unreadable, unknown context)
 4   the API server cannot be reached (refused, unresolvable, TLS failure, timeout)
 5   forbidden or unauthorized: the message names the verb and the resource
 6   not found: the object, or the DataService kind (is the CRD installed?)
 7   any other error the API server returned (conflict, invalid object, ...)
70   an internal error (a bug: please report it with the output of ``--debug``)
130  interrupted (Ctrl-C)
===  ===========================================================================================
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

EXIT_OK = 0
EXIT_NO = 1
EXIT_INVALID = 2
EXIT_CONFIG = 3
EXIT_UNREACHABLE = 4
EXIT_FORBIDDEN = 5
EXIT_NOT_FOUND = 6
EXIT_API = 7
EXIT_BUG = 70
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "exit codes: 0 done; 1 changes (diff), Stalled or timeout (apply --wait), no such instance or revision; "
    "2 invalid input; 3 no usable kubeconfig; 4 API server unreachable; 5 forbidden/unauthorized; "
    "6 not found (object, or the DataService kind: CRD not installed); 7 other API error; 70 internal error; "
    "130 interrupted. "
    "--debug (or D3OS_DEBUG=1) shows the traceback."
)

_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class CliError(Exception):
    """An error a user can act on, with its exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _request_of(exc: BaseException) -> Any:
    for holder in (exc, getattr(exc, "response", None)):
        try:
            req = getattr(holder, "request", None)
        except RuntimeError:  # httpx: "The .request property has not been set."
            req = None
        if req is not None:
            return req
    return None


def _what(exc: BaseException) -> str:
    """``get dataservices in namespace NS`` from the request that failed, when known."""
    req = _request_of(exc)
    if req is None:
        return ""
    parts = [p for p in req.url.path.split("/") if p]
    verb = _VERBS.get(req.method, req.method.lower())
    if req.method == "GET" and "watch=true" in str(req.url.query):
        verb = "watch"
    ns = ""
    if "namespaces" in parts and parts.index("namespaces") + 2 < len(parts):
        i = parts.index("namespaces")
        ns, parts = parts[i + 1], parts[i + 2 :]
    else:
        parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
    resource = "/".join(parts) or req.url.path
    return f"{verb} {resource}" + (f" in namespace {ns}" if ns else "")


def _product_kind_in(what: str) -> str | None:
    """The kind of the installed product whose resource (plural) the request ``what`` names, else None."""
    from d3os_core import api

    resource = what.split(" ")[1].split("/")[0] if what.count(" ") else ""
    plurals = {api.PLURAL: api.KIND}
    try:
        from ..products import installed

        plurals.update({p.names.plural: p.names.kind for p in installed()})
    except Exception:  # a broken product file must not hide the API server's answer
        pass
    return plurals.get(resource)


def describe(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and one-line message for an exception a user can cause, else None (a bug)."""
    if isinstance(exc, CliError):
        return exc.code, exc.message
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # from a task group: the first cause
        return describe(exc.exceptions[0])
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    try:
        from lightkube import ApiError, ConfigError
    except ImportError:  # pragma: no cover - lightkube is a dependency
        return None
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG, (
            f"no usable kubeconfig: {exc} (use --kubeconfig FILE, $D3OS_KUBECONFIG or $KUBECONFIG, "
            "or ~/.kube/config)"
        )
    try:
        import httpx2 as httpx
    except ImportError:  # pragma: no cover
        import httpx  # type: ignore[no-redef]
    api_status = isinstance(exc, ApiError)
    if api_status or isinstance(exc, httpx.HTTPStatusError):
        # an ApiError carries the server's Status; a 404 of an unknown resource path is plain text
        code = (exc.status.code if api_status else exc.response.status_code) or 0  # type: ignore[union-attr]
        if api_status:
            message = (exc.status.message or exc.status.reason or str(exc)).strip()  # type: ignore[union-attr]
        else:
            message = (exc.response.text.strip()  # type: ignore[union-attr]
                       or exc.response.reason_phrase)  # type: ignore[union-attr]
        what = _what(exc)
        if code in (401, 403):
            label = "forbidden" if code == 403 else "unauthorized"
            hint = "" if " cannot " in message else f" (cannot {what})" if what else ""
            return EXIT_FORBIDDEN, f"{label}: {message}{hint}"
        if code == 404:
            details = exc.status.details if api_status else None  # type: ignore[union-attr]
            unnamed = details is None or not getattr(details, "name", None)
            kind = _product_kind_in(what) if unnamed else None
            if kind is not None:
                return EXIT_NOT_FOUND, (
                    f"not found: the API server does not serve {kind}s ({what}): is the CRD installed? "
                    "(kubectl apply --server-side -f crds/ or helm install)"
                )
            return EXIT_NOT_FOUND, f"not found: {message}" + (f" ({what})" if what else "")
        return EXIT_API, f"API error {code}: {message}" + (f" ({what})" if what else "")
    if isinstance(exc, httpx.TransportError):
        req = _request_of(exc)
        where = f"{req.url.scheme}://{req.url.netloc.decode('ascii', 'replace')}" if req is not None else "?"
        reason = str(exc).strip() or type(exc).__name__
        return EXIT_UNREACHABLE, f"cannot reach the API server at {where}: {reason}"
    if isinstance(exc, OSError) and exc.errno is not None and getattr(exc, "strerror", None):
        # sockets and TLS outside httpx (e.g. a probe or a file the command reads)
        name = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return EXIT_INVALID if exc.filename else EXIT_UNREACHABLE, f"{name}{exc.strerror}"
    return None


def debug_requested(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether ``--debug`` is anywhere on the command line (or ``$D3OS_DEBUG`` is set), and argv without it."""
    rest = [a for a in argv if a != "--debug"]
    return len(rest) != len(argv) or os.environ.get("D3OS_DEBUG", "") not in ("", "0"), rest


def run(prog: str, func: Callable[[], int], debug: bool) -> int:
    """Call ``func``; turn the errors :func:`describe` knows into ``prog: error: ...`` and their exit code."""
    try:
        return func()
    except BrokenPipeError:  # `d3os render ... | head`: the reader has what it wanted
        quiet_stdout()
        return EXIT_OK
    except (Exception, KeyboardInterrupt) as exc:
        found = describe(exc)
        if debug:
            traceback.print_exc()
            return found[0] if found is not None else EXIT_BUG
        if found is None:
            found = EXIT_BUG, f"internal error: {type(exc).__name__}: {exc} (--debug shows the traceback)"
        code, message = found
        with contextlib.suppress(BrokenPipeError):  # `d3os plan BAD 2>&1 | head -1`
            for line in message.splitlines() or [""]:  # several problems (an invalid spec): one line each
                print(f"{prog}: error: {line}", file=sys.stderr)
        return code


def quiet_stdout() -> None:
    """Send what is still buffered for a closed pipe to /dev/null, so that Python's flush at exit neither
    prints a BrokenPipeError nor changes the exit code (Python's documented recipe, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (a test's StringIO): nothing buffered to drop
        pass
