"""A deduplicating, rate-limited, delaying work queue (the shape of client-go's workqueue) on anyio.

Guarantees:

* a key waits in the queue at most once (``add`` of a queued key is a no-op);
* a key is handed to at most one worker at a time: adding a key that is being processed marks it
  dirty, and it is queued again when the worker calls :meth:`WorkQueue.done`;
* :meth:`WorkQueue.add_after` delays a key (the earliest pending time wins);
* :meth:`WorkQueue.add_rate_limited` delays a key exponentially per consecutive failure, until
  :meth:`WorkQueue.forget` resets it;
* namespaces take turns (:class:`~d3os_operator.fairbuffer.FairBuffer`, by ``fair_by(key)``, the first
  element of a tuple key): a namespace that queues 300 DataServices at once puts another namespace's
  key behind at most one of its own, not behind all 300.

Everything runs on one event loop, so no locks are needed: state changes happen between awaits.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

import anyio

from .fairbuffer import FairBuffer

K = TypeVar("K", bound=Hashable)


def namespace_of(key: Hashable) -> Hashable:
    """The namespace of a ``(namespace, name, ...)`` key (the whole key otherwise)."""
    return key[0] if isinstance(key, tuple) and key else key


class QueueObserver(Protocol):
    """What the queue reports (to :class:`~d3os_operator.metrics.Metrics`; client-go's workqueue metrics)."""

    def queue_added(self) -> None: ...
    def queue_depth_is(self, depth: int) -> None: ...
    def queue_picked(self, waited: float) -> None: ...
    def queue_retried(self) -> None: ...


async def wait_event(event: anyio.Event, timeout: float | None) -> None:
    """Until ``event`` is set or ``timeout`` seconds have passed (None: no limit)."""
    if timeout is None:
        await event.wait()
        return
    with anyio.move_on_after(timeout):
        await event.wait()


class WorkQueue(Generic[K]):
    """See the module docstring. Call :meth:`run` in a task to drive delayed adds."""

    def __init__(
        self,
        *,
        base_delay: float = 0.05,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[anyio.Event, float | None], Awaitable[None]] = wait_event,
        observer: QueueObserver | None = None,
        fair_by: Callable[[K], Hashable] = namespace_of,
    ) -> None:
        # ``clock`` and ``wait`` (how :meth:`run` waits for the next due key) go together: a test passes
        # a fake pair and moves time itself
        self._wait = wait
        self._observer = observer
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._clock = clock
        self._fair_by = fair_by
        self._queue: FairBuffer[Hashable, K] = FairBuffer(sys.maxsize)
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._waiting: list[tuple[float, int, K]] = []  # heap of (due, seq, key)
        self._waiting_due: dict[K, float] = {}
        self._seq = itertools.count()
        self._added_at: dict[K, float] = {}
        self._first_added: dict[K, float] = {}
        self._picked_since: dict[K, float] = {}
        self._started: dict[K, float] = {}
        self._shutdown = False
        self._ready = anyio.Event()
        self._timer_changed = anyio.Event()

    # -- producers -------------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue ``key`` now, unless it is already waiting; if it is being processed, queue it after."""
        if self._shutdown:
            return
        now = self._clock()
        self._added_at[key] = now
        if key in self._dirty:
            return
        self._dirty.add(key)
        self._first_added[key] = now
        if self._observer is not None:
            self._observer.queue_added()
        if key in self._processing:
            return
        self._queue.put(self._fair_by(key), key)
        self._notify_ready()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` once ``delay`` seconds have passed (an earlier pending time for it wins)."""
        if self._shutdown:
            return
        if delay <= 0:
            self.add(key)
            return
        due = self._clock() + delay
        current = self._waiting_due.get(key)
        if current is not None and current <= due:
            return
        self._waiting_due[key] = due
        heapq.heappush(self._waiting, (due, next(self._seq), key))
        self._timer_changed.set()

    def add_rate_limited(self, key: K) -> float:
        """Queue ``key`` after an exponential per-key backoff; returns the delay chosen."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if self._observer is not None:
            self._observer.queue_retried()
        delay = float(min(self._max_delay, self._base_delay * (2**n)))
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset ``key``'s failure count (call after a successful processing)."""
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    # -- consumers -------------------------------------------------------------------------------------

    async def get(self) -> K | None:
        """Wait for the next key and mark it as being processed; None once shut down."""
        while not self._queue:
            if self._shutdown:
                return None
            event = self._ready
            await event.wait()
        key = self._queue.get()
        assert key is not None
        self._dirty.discard(key)
        self._processing.add(key)
        since = self._first_added.pop(key, self._clock())
        self._picked_since[key] = since
        self._started[key] = self._clock()
        if self._observer is not None:
            self._observer.queue_picked(self._clock() - since)
            self._observer.queue_depth_is(len(self._queue))
        return key

    def done(self, key: K) -> None:
        """Mark ``key`` processed; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        self._picked_since.pop(key, None)
        self._started.pop(key, None)
        if key in self._dirty and not self._shutdown:
            self._queue.put(self._fair_by(key), key)
            self._notify_ready()

    def added_at(self, key: K) -> float | None:
        """Clock time of the latest :meth:`add` of ``key`` (for latency figures)."""
        return self._added_at.get(key)

    def picked_since(self, key: K) -> float | None:
        """For a key being processed: clock time of the add that queued it (what woke its worker)."""
        return self._picked_since.get(key)

    def processing_seconds(self) -> list[float]:
        """How long each key being processed has been in its worker's hands (client-go's unfinished work)."""
        now = self._clock()
        return [max(0.0, now - t) for t in self._started.values()]

    # -- lifecycle -------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop handing out keys: :meth:`get` returns None once the queue is empty; adds are ignored."""
        self._shutdown = True
        self._queue.clear()
        self._notify_ready()
        self._timer_changed.set()

    @property
    def is_shutdown(self) -> bool:
        return self._shutdown

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    @property
    def waiting(self) -> dict[K, float]:
        """Keys with a pending delayed add, and the clock time they become due."""
        return dict(self._waiting_due)

    async def run(self) -> None:
        """Move delayed keys into the queue when they fall due; returns after :meth:`shutdown`."""
        while not self._shutdown:
            now = self._clock()
            while self._waiting and self._waiting[0][0] <= now:
                due, _, key = heapq.heappop(self._waiting)
                if self._waiting_due.get(key) == due:
                    del self._waiting_due[key]
                    self.add(key)
            timeout = self._waiting[0][0] - now if self._waiting else None
            changed = self._timer_changed
            await self._wait(changed, timeout)
            if changed is self._timer_changed and changed.is_set():
                self._timer_changed = anyio.Event()

    def _notify_ready(self) -> None:
        if self._observer is not None:
            self._observer.queue_depth_is(len(self._queue))
        self._ready.set()
        self._ready = anyio.Event()
