"""Third-party probes: the shell runs the structured checks the core parsed; results become observed state.

A probe never runs a command or a shell: an :class:`~d3os_core.types.HttpCheck` is one httpx2 request,
a :class:`~d3os_core.types.TcpCheck` one TCP connect, each bounded by its own timeout.

Probes are kept per *target* (the check and its period), shared by every DataService that asks for the
same check, so a third party is probed once per period however many DataServices use it. A DataService
subscribes with :meth:`ProbeManager.ensure` (the requests in its latest plan); a target nobody asks for
any more is stopped. When a target's result changes (``ok`` flips or the message changes), every
subscriber is enqueued.

Per-target backoff: a succeeding target is probed every ``period_seconds``. After a failure the next try
comes sooner (``retry_min``) and the interval doubles with each further failure, capped at
``period_seconds`` -- so a target that comes back is seen within one period (never later), a flapping
target is confirmed quickly, and a dead one costs one request per period.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import httpx2

from d3os_core.types import Check, HttpCheck, ProbeRequest, ProbeResult, TcpCheck

log = logging.getLogger("d3os_operator.probes")

Target = tuple[Check, float]


async def run_check(check: Check, *, clients: dict[tuple[bool, bool], httpx2.AsyncClient] | None = None) -> ProbeResult:
    """Run one check once; never raises for a failing target (the failure is the result)."""
    if isinstance(check, HttpCheck):
        return await _run_http(check, clients)
    if isinstance(check, TcpCheck):
        return await _run_tcp(check)
    return ProbeResult(ok=False, message=f"unsupported check {type(check).__name__}")


async def _run_http(check: HttpCheck, clients: dict[tuple[bool, bool], httpx2.AsyncClient] | None) -> ProbeResult:
    what = check.describe()
    own_client = clients is None
    key = (check.insecure, check.follow_redirects)
    client = None if clients is None else clients.get(key)
    if client is None:
        client = httpx2.AsyncClient(verify=not check.insecure, follow_redirects=check.follow_redirects, trust_env=False)
        if clients is not None:
            clients[key] = client
    try:
        with anyio.fail_after(check.timeout_seconds + 1.0):
            resp = await client.request(check.method, check.url, timeout=check.timeout_seconds)
            await resp.aclose()
    except TimeoutError:
        return ProbeResult(False, f"{what}: timed out after {check.timeout_seconds:g}s")
    except httpx2.TimeoutException:
        return ProbeResult(False, f"{what}: timed out after {check.timeout_seconds:g}s")
    except httpx2.HTTPError as e:
        return ProbeResult(False, f"{what}: {_error_text(e)}")
    except OSError as e:
        return ProbeResult(False, f"{what}: {_error_text(e)}")
    finally:
        if own_client:
            await client.aclose()
    code = resp.status_code
    if check.fail_on_http_error and code >= 400:
        return ProbeResult(False, f"{what}: HTTP {code}")
    return ProbeResult(True, f"{what}: HTTP {code}")


async def _run_tcp(check: TcpCheck) -> ProbeResult:
    what = check.describe()
    try:
        with anyio.fail_after(check.timeout_seconds):
            stream = await anyio.connect_tcp(check.host, check.port)
            await stream.aclose()
    except TimeoutError:
        return ProbeResult(False, f"{what}: timed out after {check.timeout_seconds:g}s")
    except OSError as e:
        return ProbeResult(False, f"{what}: {_error_text(e)}")
    return ProbeResult(True, f"{what}: connected")


def _error_text(e: BaseException) -> str:
    """A stable, short description (no addresses of objects, no timings) so results compare equal."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno).lower()
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    text = str(e) or type(e).__name__
    if "connection refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:200]


@dataclass
class _TargetState:
    scope: anyio.CancelScope
    result: ProbeResult | None = None
    changed_at: float = 0.0
    runs: int = 0
    failures: int = 0
    subscribers: set[Hashable] = field(default_factory=set)
    first: anyio.Event = field(default_factory=anyio.Event)


class ProbeManager:
    """See the module docstring. Call :meth:`run` in a task before :meth:`ensure`."""

    def __init__(
        self,
        on_change: Callable[[Hashable], None],
        *,
        retry_min: float = 0.5,
        on_result: Callable[[Hashable, str, ProbeResult, float], None] | None = None,
    ) -> None:
        self._on_change = on_change
        self._on_result = on_result
        self._retry_min = retry_min
        self._tg: anyio.abc.TaskGroup | None = None
        self._targets: dict[Target, _TargetState] = {}
        self._requests: dict[Hashable, dict[str, ProbeRequest]] = {}
        self._clients: dict[tuple[bool, bool], httpx2.AsyncClient] = {}
        self._started = anyio.Event()

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._started.set()
                await anyio.sleep(math.inf)
        finally:
            self._tg = None
            with anyio.CancelScope(shield=True):
                for client in self._clients.values():
                    await client.aclose()
            self._clients.clear()

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
        old_targets = {(r.check, r.period_seconds) for r in old.values()}
        new_targets = {(r.check, r.period_seconds) for r in wanted.values()}
        for target in old_targets - new_targets:
            state = self._targets.get(target)
            if state is None:
                continue
            state.subscribers.discard(parent)
            if not state.subscribers:
                state.scope.cancel()
                del self._targets[target]
                log.info("probe stopped", extra={"check": target[0].describe()})
        for target in new_targets:
            state = self._targets.get(target)
            if state is None:
                if self._tg is None:
                    raise RuntimeError("ProbeManager.run() is not running")
                state = _TargetState(scope=anyio.CancelScope())
                self._targets[target] = state
                self._tg.start_soon(self._run_target, target, state)
                log.info(
                    "probe started",
                    extra={"check": target[0].describe(), "period_s": target[1], "ds": _fmt(parent)},
                )
            state.subscribers.add(parent)

    def forget(self, parent: Hashable) -> None:
        self.ensure(parent, ())

    def results(self, parent: Hashable) -> dict[str, ProbeResult]:
        """Latest results of ``parent``'s probes by :attr:`ProbeRequest.key` (absent until run once)."""
        out: dict[str, ProbeResult] = {}
        for key, req in self._requests.get(parent, {}).items():
            state = self._targets.get((req.check, req.period_seconds))
            if state is not None and state.result is not None:
                out[key] = state.result
        return out

    async def first_results(self, parent: Hashable, keys: Sequence[str]) -> None:
        """Wait until each of ``parent``'s probes named by ``keys`` has run at least once."""
        for key in keys:
            req = self._requests.get(parent, {}).get(key)
            state = self._targets.get((req.check, req.period_seconds)) if req is not None else None
            if state is not None:
                await state.first.wait()

    def requests(self, parent: Hashable) -> dict[str, ProbeRequest]:
        return dict(self._requests.get(parent, {}))

    @property
    def target_count(self) -> int:
        return len(self._targets)

    def stats(self) -> list[dict[str, Any]]:
        return [
            {
                "check": t[0].describe(),
                "period_s": t[1],
                "runs": s.runs,
                "failures": s.failures,
                "ok": None if s.result is None else s.result.ok,
                "subscribers": len(s.subscribers),
            }
            for t, s in self._targets.items()
        ]

    async def _run_target(self, target: Target, state: _TargetState) -> None:
        check, period = target
        with state.scope:
            while True:
                result = await run_check(check, clients=self._clients)
                state.runs += 1
                state.first.set()
                now = time.monotonic()
                if result != state.result:
                    state.result = result
                    state.changed_at = now
                    log.info(
                        "probe result changed",
                        extra={"check": check.describe(), "ok": result.ok, "detail": result.message},
                    )
                    for parent in list(state.subscribers):
                        for key, req in self._requests.get(parent, {}).items():
                            if (req.check, req.period_seconds) == target and self._on_result is not None:
                                self._on_result(parent, key, result, now)
                        self._on_change(parent)
                if result.ok:
                    state.failures = 0
                    delay = period
                else:
                    state.failures += 1
                    delay = min(period, self._retry_min * (2 ** (state.failures - 1)))
                await anyio.sleep(max(delay, 0.05))


def _fmt(parent: Hashable) -> str:
    if isinstance(parent, tuple) and len(parent) == 2:
        return f"{parent[0]}/{parent[1]}"
    return str(parent)
