"""Third-party probes: the shell runs the structured checks the core parsed; results become observed state.

A probe never runs a command or a shell: an :class:`~d3os_core.types.HttpCheck` is one HTTP request
(plus at most :data:`MAX_REDIRECTS` redirects, only with ``-L``), a :class:`~d3os_core.types.TcpCheck`
one TCP connect, each bounded by its own timeout. Every probe is contained: whatever goes wrong -- a host
name IDNA cannot encode, a URL the HTTP stack refuses, a bug -- becomes a failed result with a text a
person understands, never an exception out of :func:`run_check` or :class:`ProbeManager`.

Probes are under the probe target policy (:mod:`d3os_core.probe_policy`): the host is resolved here, each
address is decided by the core, and the connection goes to that very address (for HTTPS the certificate
is still checked against the host name, and ``Host``/SNI name the host) -- so no spelling of a host and
no DNS answer reaches an address the policy refuses, and every redirect is decided again. Nothing is
shared between probes: a fresh connection per request (no keep-alive), no cookies, at most
:data:`BODY_LIMIT` bytes of a body read raw and never decompressed (``Accept-Encoding: identity``).

Probes are kept per *target* (the check and its period), shared by every DataService that asks for the
same check, so a third party is probed once per period however many DataServices use it. A DataService
subscribes with :meth:`ProbeManager.ensure` (the requests in its latest plan); a target nobody asks for
any more is stopped. When a target's result changes (``ok`` flips or the message changes), every
subscriber is enqueued -- that is how a first result reaches a DataService: reconciles never wait for one.

Per-target backoff: a succeeding target is probed every ``period_seconds``. After a failure the next try
comes sooner (``retry_min``) and the interval doubles with each further failure, capped at
``period_seconds`` -- so a target that comes back is seen within one period (never later), a flapping
target is confirmed quickly, and a dead one costs one request per period.
"""

from __future__ import annotations

import base64
import errno
import logging
import math
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import anyio
import anyio.abc
import httpcore2
import idna
from httpcore2._backends.anyio import AnyIOStream

from d3os_core import probe_budget
from d3os_core.probe_policy import Decision, ProbePolicy, decide, ip_literal
from d3os_core.redact import redact_text, redact_url
from d3os_core.types import Check, HttpCheck, ProbeRequest, ProbeResult, TcpCheck

from . import __version__
from .probe_gate import ProbeBudget, ProbeGate
from .workqueue import namespace_of

log = logging.getLogger("d3os_operator.probes")

Target = tuple[Check, float]
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``await resolver(host, port)`` -> the IP addresses of ``host`` (raises socket.gaierror like getaddrinfo)."""

BODY_LIMIT = 64 * 1024
"""Bytes of a response body read at most (raw, as sent: never inflated)."""
MAX_REDIRECTS = 5
REDIRECT_CODES = (301, 302, 303, 307, 308)
USER_AGENT = f"d3os-operator-probe/{__version__}"
DEFAULT_POLICY = ProbePolicy()


connect_tcp: Callable[[str, int], Awaitable[anyio.abc.SocketStream]] = anyio.connect_tcp
"""How a probe opens a TCP connection to an address the policy allowed (tests replace it: no network)."""


class ProbeFailure(Exception):
    """A probe that cannot go on, with the text its result shows."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses getaddrinfo gives for ``host`` (TCP), in its order, without repeats."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in out:
            out.append(address)
    return out


Pace = Callable[[], Awaitable[None]]
"""``await pace()`` before each request or connect (the probe gate's rate budget)."""


async def _no_pace() -> None:
    return None


async def run_check(
    check: Check,
    *,
    policy: ProbePolicy = DEFAULT_POLICY,
    resolver: Resolver | None = None,
    pace: Pace = _no_pace,
) -> ProbeResult:
    """Run one check once. Never raises (but for cancellation): any failure is the result."""
    try:
        what = check.describe()
    except Exception:  # a check so broken it cannot even be described
        what = f"{type(check).__name__}"
    try:
        timeout = float(check.timeout_seconds)
        if not 0 < timeout <= 3600:
            raise ProbeFailure(f"invalid timeout {timeout:g}s")
        with anyio.fail_after(timeout):
            if isinstance(check, HttpCheck):
                ok, detail = await _run_http(check, policy, resolver or system_resolver, pace)
            elif isinstance(check, TcpCheck):
                await pace()
                ok, detail = await _run_tcp(check, policy, resolver or system_resolver)
            else:
                ok, detail = False, f"unsupported check {type(check).__name__}"
    except TimeoutError:
        ok, detail = False, f"timed out after {check.timeout_seconds:g}s"
    except Exception as e:  # containment: a probe's trouble is its result, never the operator's
        ok, detail = False, _error_text(e)
    message = redact_text(f"{what}: {detail}")
    for secret in _secrets_of(check):
        message = message.replace(secret, "***")
    return ProbeResult(ok, message[:1024])


# -- addresses, under the policy ----------------------------------------------------------------------------


def ascii_host(host: str) -> str:
    """The host as it goes to the resolver and into ``Host``/SNI: an IP address, or an IDNA A-label name.

    Unicode names are mapped the way browsers and curl do (UTS 46: full-width letters, ideographic full
    stops). Raises :class:`ProbeFailure` naming the problem for anything that is no host name.
    """
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    literal = ip_literal(text)
    if literal is not None:
        return str(literal)
    shown = repr(host if len(host) <= 80 else host[:77] + "...")
    if not text:
        raise ProbeFailure("invalid host name: empty")
    try:
        name = text if text.isascii() else idna.encode(text, uts46=True, transitional=False).decode("ascii")
    except (UnicodeError, ValueError) as e:  # idna.IDNAError is a UnicodeError
        raise ProbeFailure(f"invalid host name {shown}: {_first_line(str(e)) or type(e).__name__}") from None
    if name.endswith(".") and not name.endswith(".."):  # the root: "example.com." is "example.com"
        name = name[:-1]
    if len(name) > 253:
        raise ProbeFailure(f"invalid host name {shown}: longer than 253 characters")
    for label in name.split("."):
        if not label:
            raise ProbeFailure(f"invalid host name {shown}: empty label")
        if len(label) > 63:
            raise ProbeFailure(f"invalid host name {shown}: a label is longer than 63 characters")
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in label):
            raise ProbeFailure(f"invalid host name {shown}: only letters, digits, '-' and '_' are allowed")
    literal = ip_literal(name)  # IDNA can turn full-width digits into an address: decide on that
    return str(literal) if literal is not None else name.lower()


async def _addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    literal = ip_literal(host)
    if literal is not None:
        return [str(literal)]
    found = list(await resolver(host, port))
    if not found:
        raise ProbeFailure("DNS name not found")
    return found


async def open_tcp(
    host: str, port: int, policy: ProbePolicy, resolver: Resolver
) -> tuple[anyio.abc.SocketStream, str]:
    """Resolve ``host``, keep the addresses the policy allows, connect to the first that answers.

    Returns the stream and the address connected to; raises :class:`ProbeFailure` when the policy
    refuses every address (its text names the address and the rule), else the last connect error.
    """
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ProbeFailure(f"invalid port {port!r}: must be 1 to 65535")
    name = ascii_host(host)
    decisions: list[Decision] = [decide(policy, a) for a in await _addresses(name, port, resolver)]
    allowed = [d.address for d in decisions if d.allowed]
    if not allowed:
        raise ProbeFailure(decisions[0].refusal())
    error: BaseException | None = None
    for address in allowed:
        try:
            return await connect_tcp(address, port), address
        except OSError as e:
            error = e
    assert error is not None
    raise error


async def _run_tcp(check: TcpCheck, policy: ProbePolicy, resolver: Resolver) -> tuple[bool, str]:
    stream, _ = await open_tcp(check.host, check.port, policy, resolver)
    await stream.aclose()
    return True, "connected"


# -- HTTP ---------------------------------------------------------------------------------------------------


class _PolicyBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's network backend, connecting only where the policy allows (see :func:`open_tcp`)."""

    def __init__(self, policy: ProbePolicy, resolver: Resolver) -> None:
        self.policy = policy
        self.resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream, _ = await open_tcp(host, port, self.policy, self.resolver)
        return AnyIOStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        raise ProbeFailure("unix sockets are not probed")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


_SSL: dict[bool, ssl.SSLContext] = {}


def _ssl_context(verify: bool) -> ssl.SSLContext:
    """One context per mode, built once (loading the CA bundle is slow); it holds no per-probe state."""
    ctx = _SSL.get(verify)
    if ctx is None:
        ctx = httpcore2.default_ssl_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        _SSL[verify] = ctx
    return ctx


@dataclass(frozen=True)
class _Url:
    scheme: str
    host: str  # ascii_host()
    port: int
    target: str  # path?query, ASCII
    auth: str | None  # "user:password" (percent-decoded), or None

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"


_SAFE = "/%:@!$&'()*+,;=-._~"


def _parse_url(url: str) -> _Url:
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ProbeFailure("invalid URL: whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:  # its text quotes the netloc, credentials included: say what is wrong instead
        raise ProbeFailure(f"invalid URL: {_urlsplit_problem(str(e))}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ProbeFailure(f"unsupported URL scheme {parts.scheme!r} (http or https only)")
    netloc_host = parts.netloc.rpartition("@")[2]
    if netloc_host.startswith("["):
        host = netloc_host[1 : netloc_host.find("]")] if "]" in netloc_host else ""
    else:
        host = netloc_host.rsplit(":", 1)[0] if ":" in netloc_host else netloc_host
    if not host:
        raise ProbeFailure("invalid URL: no host")
    if port is None:
        port = 80 if scheme == "http" else 443
    if not 1 <= port <= 65535:
        raise ProbeFailure(f"invalid port {port}: must be 1 to 65535")
    auth = None
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        user, _, password = userinfo.partition(":")
        auth = f"{unquote(user)}:{unquote(password)}"
    target = quote(parts.path or "/", safe=_SAFE) + (f"?{quote(parts.query, safe=_SAFE + '?')}" if parts.query else "")
    return _Url(scheme, ascii_host(host), port, target, auth)


def _urlsplit_problem(text: str) -> str:
    if "NFKC" in text:
        return "the host has characters that change under Unicode normalization"
    if "IPv6" in text or "IPv4" in text:
        return "the host in [brackets] is not an IPv6 address"
    if "Port" in text or "port" in text:
        return "the port is not a number from 0 to 65535"
    return "it cannot be parsed"


def _secrets_of(check: Check) -> list[str]:
    """The userinfo of an HTTP check's URL and its parts: never to be shown, however an error quotes them."""
    if not isinstance(check, HttpCheck) or "@" not in check.url:
        return []
    userinfo = check.url.partition("//")[2].split("/", 1)[0].rpartition("@")[0]
    parts = [userinfo, *userinfo.split(":", 1)]
    return sorted({p for p in parts if len(p) >= 3}, key=len, reverse=True)


async def _request(method: str, url: _Url, backend: _PolicyBackend, verify: bool, timeout: float) -> tuple[int, str]:
    """One request on a fresh connection: (status code, Location header or "")."""
    headers = [
        (b"Host", url.host_header.encode("ascii")),
        (b"User-Agent", USER_AGENT.encode("ascii")),
        (b"Accept", b"*/*"),
        (b"Accept-Encoding", b"identity"),
        (b"Connection", b"close"),
    ]
    if url.auth is not None:
        headers.append((b"Authorization", b"Basic " + base64.b64encode(url.auth.encode("utf-8"))))
    origin = httpcore2.Origin(url.scheme.encode("ascii"), url.host.encode("ascii"), url.port)
    conn = httpcore2.AsyncHTTPConnection(
        origin, ssl_context=_ssl_context(verify) if url.scheme == "https" else None, network_backend=backend
    )
    request = httpcore2.Request(
        method,
        httpcore2.URL(scheme=origin.scheme, host=origin.host, port=url.port, target=url.target.encode("ascii")),
        headers=headers,
        extensions={"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}},
    )
    try:
        response = await conn.handle_async_request(request)
        try:
            if method != "HEAD":
                read = 0
                async for chunk in response.aiter_stream():  # raw bytes: nothing is decompressed
                    read += len(chunk)
                    if read >= BODY_LIMIT:
                        break
            location = next((v for k, v in response.headers if k.lower() == b"location"), b"")
            try:
                return response.status, location.decode("utf-8")
            except UnicodeDecodeError:
                return response.status, location.decode("latin-1")
        finally:
            await response.aclose()
    finally:
        await conn.aclose()


async def _run_http(check: HttpCheck, policy: ProbePolicy, resolver: Resolver, pace: Pace) -> tuple[bool, str]:
    backend = _PolicyBackend(policy, resolver)
    url_text = check.url
    url = _parse_url(url_text)
    method = "HEAD" if check.method == "HEAD" else "GET"
    hops = 0
    while True:
        await pace()
        code, location = await _request(method, url, backend, not check.insecure, check.timeout_seconds)
        if not (check.follow_redirects and code in REDIRECT_CODES and location):
            break
        if hops >= MAX_REDIRECTS:
            return False, f"more than {MAX_REDIRECTS} redirects (last: HTTP {code} to {redact_url(location)[:200]})"
        hops += 1
        try:
            next_text = urljoin(url_text, location.strip())
            next_url = _parse_url(next_text)
        except ProbeFailure as e:
            raise ProbeFailure(f"redirect to {redact_url(location)[:200]!r}: {e}") from None
        except ValueError as e:
            raise ProbeFailure(f"redirect to {redact_url(location)[:200]!r}: {_first_line(str(e))}") from None
        if next_url.origin != url.origin:  # like curl: credentials go to the host they were written for
            next_url = _Url(next_url.scheme, next_url.host, next_url.port, next_url.target, None)
        url_text, url = next_text, next_url
    after = f" after {hops} redirect{'s' if hops != 1 else ''}" if hops else ""
    if check.fail_on_http_error and code >= 400:
        return False, f"HTTP {code}{after}"
    return True, f"HTTP {code}{after}"


# -- error texts --------------------------------------------------------------------------------------------

_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.ETIMEDOUT: "timed out",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "no route to host",
    errno.EADDRNOTAVAIL: "address not available",
    errno.EPERM: "connection not permitted (a firewall or network policy?)",
    errno.EACCES: "connection not permitted (a firewall or network policy?)",
}
_GAI_NOT_FOUND = {getattr(socket, n) for n in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, n)}


def _chain(e: BaseException) -> list[BaseException]:
    """``e`` and its causes, depth first, groups opened (first member), each once."""
    out: list[BaseException] = []
    todo: list[BaseException] = [e]
    while todo and len(out) < 20:
        cur = todo.pop(0)
        if any(cur is x for x in out):
            continue
        out.append(cur)
        if isinstance(cur, BaseExceptionGroup) and cur.exceptions:
            todo.insert(0, cur.exceptions[0])
        nxt = cur.__cause__ or cur.__context__
        if nxt is not None:
            todo.append(nxt)
    return out


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else ""


def _error_text(e: BaseException) -> str:
    """A stable, short description a person understands (no object addresses, no timings)."""
    chain = _chain(e)
    for cause in chain:
        if isinstance(cause, ProbeFailure):
            return str(cause)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verify failed: {cause.verify_message or cause.reason or 'unknown reason'}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed: {cause.reason or _first_line(str(cause)) or 'unknown reason'}"
        if isinstance(cause, socket.gaierror):
            if cause.errno in _GAI_NOT_FOUND:
                return "DNS name not found"
            if cause.errno == getattr(socket, "EAI_AGAIN", None):
                return "DNS lookup failed: no answer from the DNS server (temporary failure)"
            return f"DNS lookup failed: {(cause.strerror or str(cause)).lower()}"
        if isinstance(cause, (TimeoutError, httpcore2.TimeoutException)):
            return "timed out"
        if isinstance(cause, OSError) and cause.errno:
            return _ERRNO_TEXT.get(cause.errno) or os.strerror(cause.errno).lower()
    for cause in chain:
        if isinstance(cause, httpcore2.RemoteProtocolError):
            return f"invalid HTTP response: {_first_line(str(cause)) or 'the server broke the protocol'}"
        if isinstance(cause, httpcore2.ReadError):
            return "connection closed before a complete response"
        if isinstance(cause, httpcore2.WriteError):
            return "connection closed while sending the request"
        if isinstance(cause, httpcore2.ConnectError):
            text = _first_line(str(cause))
            return f"connection failed: {text}" if text else "connection failed"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        if isinstance(cause, UnicodeError):
            return f"invalid host name: {_first_line(str(cause)) or 'cannot be encoded'}"
    text = _first_line(str(e))
    if "connection refused" in text.lower():
        return "connection refused"
    return f"probe failed: {type(e).__name__}" + (f": {text}" if text else "")


# -- the manager --------------------------------------------------------------------------------------------


UNLIMITED = ProbeBudget(max_concurrent=2**31, per_namespace=2**31, rate=None, max_targets_per_namespace=None)
"""No budget at all (a bare :class:`ProbeManager`, in tests); the operator passes its flags' budget."""


@dataclass
class _TargetState:
    scope: anyio.CancelScope
    started_at: float
    namespace: Hashable = ""
    """Whose probe slot it takes: the namespace of the subscriber that started it."""
    result: ProbeResult | None = None
    changed_at: float = 0.0
    runs: int = 0
    failures: int = 0
    subscribers: set[Hashable] = field(default_factory=set)


class ProbeManager:
    """See the module docstring. Call :meth:`run` in a task before :meth:`ensure`.

    ``policy`` may be replaced while running (the operator adds the API server's addresses once it has
    read them); each probe uses the policy of the moment it starts.

    ``gate`` holds the budget (:mod:`d3os_operator.probe_gate`): every probe waits for a slot of its
    namespace and paces its requests; a namespace's distinct checks beyond
    ``budget.max_targets_per_namespace`` are not probed (:mod:`d3os_core.probe_budget` says which) and
    show a failed result saying so.
    """

    def __init__(
        self,
        on_change: Callable[[Hashable], None],
        *,
        retry_min: float = 0.5,
        on_result: Callable[[Hashable, str, ProbeResult, float], None] | None = None,
        policy: ProbePolicy = DEFAULT_POLICY,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        gate: ProbeGate | None = None,
    ) -> None:
        # ``clock`` and ``sleep`` (between a target's probes) go together: a test passes a fake pair
        self.gate = gate or ProbeGate(UNLIMITED)
        self._ns_targets: dict[Hashable, dict[Target, set[Hashable]]] = {}
        """Per namespace: its distinct targets, in the order it first asked for them, and who asks."""
        self._refused: dict[Hashable, set[Target]] = {}
        """Per namespace: its targets beyond the cap (not probed for it)."""
        self._clock = clock
        self._sleep = sleep
        self._on_change = on_change
        self._on_result = on_result
        self._retry_min = retry_min
        self.policy = policy
        self.resolver = resolver
        self._tg: anyio.abc.TaskGroup | None = None
        self._targets: dict[Target, _TargetState] = {}
        self._requests: dict[Hashable, dict[str, ProbeRequest]] = {}
        self._started = anyio.Event()
        self.crashes = 0

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._started.set()
                await anyio.sleep(math.inf)
        finally:
            self._tg = None

    async def wait_started(self) -> None:
        await self._started.wait()

    def ensure(self, parent: Hashable, requests: Sequence[ProbeRequest]) -> None:
        """Make ``parent``'s probes exactly ``requests``: start new targets, drop unused ones."""
        wanted = {r.key: r for r in requests}
        old = self._requests.get(parent, {})
        if wanted == old:
            return
        if wanted:
            self._requests[parent] = wanted
        else:
            self._requests.pop(parent, None)
        ns = namespace_of(parent)
        targets = self._ns_targets.setdefault(ns, {})
        old_targets = {(r.check, r.period_seconds) for r in old.values()}
        new_targets = list(dict.fromkeys((r.check, r.period_seconds) for r in wanted.values()))
        for target in old_targets - set(new_targets):
            asking = targets.get(target)
            if asking is not None:
                asking.discard(parent)
                if not asking:
                    del targets[target]
        for target in new_targets:
            targets.setdefault(target, set()).add(parent)
        refused_before = self._refused.pop(ns, set())
        _, refused = probe_budget.admit(list(targets), self.gate.budget.max_targets_per_namespace)
        if refused:
            self._refused[ns] = set(refused)
        if not targets:
            del self._ns_targets[ns]
        for target in dict.fromkeys([*old_targets, *new_targets, *refused_before, *refused]):
            self._sync(target, parent)
        if any(t in self._refused.get(ns, ()) for t in new_targets):
            self._on_change(parent)  # plan again with the "not probed" result

    def _sync(self, target: Target, asker: Hashable) -> None:
        """Start, stop or re-subscribe ``target`` after a namespace's targets changed."""
        subscribers: set[Hashable] = set()
        for ns, targets in self._ns_targets.items():
            if target in targets and target not in self._refused.get(ns, ()):
                subscribers |= targets[target]
        state = self._targets.get(target)
        if not subscribers:
            if state is not None:
                state.scope.cancel()
                del self._targets[target]
                log.info("probe stopped", extra={"check": _describe(target[0])})
            return
        if state is None:
            if self._tg is None:
                raise RuntimeError("ProbeManager.run() is not running")
            first = asker if asker in subscribers else next(iter(subscribers))
            state = _TargetState(scope=anyio.CancelScope(), started_at=self._clock(), namespace=namespace_of(first))
            self._targets[target] = state
            self._tg.start_soon(self._run_target, target, state)
            log.info(
                "probe started",
                extra={"check": _describe(target[0]), "period_s": target[1], "ds": _fmt(first)},
            )
        for parent in subscribers - state.subscribers:
            if state.result is not None:  # a result this parent has not seen: let it plan with it
                self._on_change(parent)
        state.subscribers = subscribers

    def forget(self, parent: Hashable) -> None:
        self.ensure(parent, ())

    def results(self, parent: Hashable) -> dict[str, ProbeResult]:
        """Latest results of ``parent``'s probes by :attr:`ProbeRequest.key` (absent until run once)."""
        out: dict[str, ProbeResult] = {}
        ns = namespace_of(parent)
        refused = self._refused.get(ns, set())
        for key, req in self._requests.get(parent, {}).items():
            target = (req.check, req.period_seconds)
            state = self._targets.get(target)
            if target in refused:
                out[key] = probe_budget.over_budget(str(ns), self.gate.budget.max_targets_per_namespace or 0)
            elif state is not None and state.result is not None:
                out[key] = state.result
        return out

    def first_result_grace(self, parent: Hashable, keys: Sequence[str], grace: float) -> float:
        """Seconds left until every probe of ``parent`` named by ``keys`` has had ``grace`` seconds to give
        its first result (0 when all have a result or their grace is over). Never waits."""
        now = self._clock()
        left = 0.0
        for key in keys:
            req = self._requests.get(parent, {}).get(key)
            state = self._targets.get((req.check, req.period_seconds)) if req is not None else None
            if state is not None and state.result is None:
                left = max(left, state.started_at + grace - now)
        return left

    def requests(self, parent: Hashable) -> dict[str, ProbeRequest]:
        return dict(self._requests.get(parent, {}))

    @property
    def target_count(self) -> int:
        return len(self._targets)

    def not_probed(self) -> int:
        """Distinct checks not probed for their namespace (over its cap)."""
        return sum(len(t) for t in self._refused.values())

    def stats(self) -> list[dict[str, Any]]:
        return [
            {
                "check": _describe(t[0]),
                "period_s": t[1],
                "runs": s.runs,
                "failures": s.failures,
                "ok": None if s.result is None else s.result.ok,
                "subscribers": len(s.subscribers),
            }
            for t, s in self._targets.items()
        ]

    async def _run_target(self, target: Target, state: _TargetState) -> None:
        """Probe ``target`` until cancelled. Contained: nothing raised here may end the task group."""
        check, period = target
        with state.scope:
            while True:
                try:
                    result = await self._probe_once(target, state)
                    delay = period if result.ok else min(period, self._retry_min * (2 ** (state.failures - 1)))
                except Exception:  # a bug of ours: log it, keep the operator and the other probes alive
                    self.crashes += 1
                    log.exception("probe crashed", extra={"check": _describe(check)})
                    delay = period
                await self._sleep(max(delay, 0.05))

    async def _probe_once(self, target: Target, state: _TargetState) -> ProbeResult:
        check, _ = target
        async with self.gate.slot(state.namespace):
            result = await run_check(check, policy=self.policy, resolver=self.resolver, pace=self.gate.pace)
        state.runs += 1
        state.failures = 0 if result.ok else state.failures + 1
        now = self._clock()
        if result != state.result:
            state.result = result
            state.changed_at = now
            log.info(
                "probe result changed",
                extra={"check": _describe(check), "ok": result.ok, "detail": result.message},
            )
            for parent in list(state.subscribers):
                for key, req in self._requests.get(parent, {}).items():
                    if (req.check, req.period_seconds) == target and self._on_result is not None:
                        self._on_result(parent, key, result, now)
                self._on_change(parent)
        return result


def _describe(check: Check) -> str:
    try:
        return check.describe()
    except Exception:
        return type(check).__name__


def _fmt(parent: Hashable) -> str:
    if isinstance(parent, tuple) and len(parent) == 2:
        return f"{parent[0]}/{parent[1]}"
    return str(parent)
