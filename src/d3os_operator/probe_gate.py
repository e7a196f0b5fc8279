"""The probes' share of the operator: a global concurrency and request-rate budget, fair between namespaces.

Probes run on the event loop every reconcile runs on, and each request (a redirect is one more, with a
fresh connection and, for HTTPS, a TLS handshake) costs CPU. Without a budget one tenant's hundreds of
slow, redirecting checks take the loop from everyone. So:

* at most ``max_concurrent`` probes run at once, at most ``per_namespace`` of them for one namespace;
  when a slot frees it goes to the waiting namespace running the fewest probes (ties in turn, FIFO
  within a namespace) -- a namespace with one check never waits behind another's hundreds;
* each request (redirects included) takes a place in a paced sequence of at most ``rate`` per second
  (``burst`` may go at once after a quiet spell); with at most ``per_namespace`` probes of one namespace
  pacing at a time, another namespace's request waits for at most that many of the flood's.

The figures are configuration (flags of ``d3os-operator run``); which checks of a namespace are probed at
all is the core's rule (:mod:`d3os_core.probe_budget`).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass

import anyio


@dataclass(frozen=True)
class ProbeBudget:
    """The figures (see the module docstring); ``None`` lifts a limit."""

    max_concurrent: int = 16
    per_namespace: int = 4
    rate: float | None = 20.0
    burst: int = 10
    max_targets_per_namespace: int | None = 100


class ProbeGate:
    """See the module docstring. One per operator; every probe of every namespace goes through it."""

    def __init__(
        self,
        budget: ProbeBudget | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.budget = budget or ProbeBudget()
        self._clock = clock
        self._sleep = sleep
        self._active: dict[Hashable, int] = {}
        self._running = 0
        self._waiting: dict[Hashable, deque[anyio.Event]] = {}
        self._turns: deque[Hashable] = deque()
        self._next_at = 0.0
        self.waited = 0
        """Probes that had to wait for a slot."""

    @property
    def running(self) -> int:
        return self._running

    def running_in(self, namespace: Hashable) -> int:
        return self._active.get(namespace, 0)

    @contextlib.asynccontextmanager
    async def slot(self, namespace: Hashable) -> AsyncIterator[None]:
        """Hold one of the probe slots for ``namespace`` (waiting, fairly, until one is free)."""
        await self._acquire(namespace)
        try:
            yield
        finally:
            self._release(namespace)

    async def pace(self) -> None:
        """Wait for this request's place in the paced sequence (no wait when under the rate)."""
        rate = self.budget.rate
        if rate is None or rate <= 0:
            return
        now = self._clock()
        step = 1.0 / rate
        start = max(now - step * max(0, self.budget.burst - 1), self._next_at)  # a quiet spell earns a burst
        self._next_at = start + step
        if start > now:
            await self._sleep(start - now)

    def _free_for(self, namespace: Hashable) -> bool:
        return self._running < self.budget.max_concurrent and self._active.get(namespace, 0) < self.budget.per_namespace

    def _take(self, namespace: Hashable) -> None:
        self._running += 1
        self._active[namespace] = self._active.get(namespace, 0) + 1

    async def _acquire(self, namespace: Hashable) -> None:
        if not self._waiting and self._free_for(namespace):
            self._take(namespace)
            return
        self.waited += 1
        event = anyio.Event()
        queue = self._waiting.get(namespace)
        if queue is None:
            queue = self._waiting[namespace] = deque()
            self._turns.append(namespace)
        queue.append(event)
        self._grant()
        try:
            await event.wait()
        except BaseException:
            with anyio.CancelScope(shield=True):
                if event.is_set():  # granted as we were cancelled: give it back
                    self._release(namespace)
                else:
                    self._forget(namespace, event)
            raise

    def _release(self, namespace: Hashable) -> None:
        self._running -= 1
        left = self._active.get(namespace, 0) - 1
        if left > 0:
            self._active[namespace] = left
        else:
            self._active.pop(namespace, None)
        self._grant()

    def _grant(self) -> None:
        """Hand free slots to waiting namespaces: the one running the fewest probes first, ties in turn."""
        while self._turns and self._running < self.budget.max_concurrent:
            candidates = [n for n in self._turns if self._active.get(n, 0) < self.budget.per_namespace]
            if not candidates:
                return
            namespace = min(candidates, key=lambda n: self._active.get(n, 0))  # min keeps the first of a tie
            queue = self._waiting[namespace]
            event = queue.popleft()
            self._take(namespace)
            event.set()
            self._turns.remove(namespace)
            if queue:
                self._turns.append(namespace)
            else:
                del self._waiting[namespace]

    def _forget(self, namespace: Hashable, event: anyio.Event) -> None:
        queue = self._waiting.get(namespace)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(event)
        if not queue:
            del self._waiting[namespace]
            self._turns.remove(namespace)
