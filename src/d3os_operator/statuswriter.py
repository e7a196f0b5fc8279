"""The one path an instance's status takes to the API server.

Every status the operator writes -- a pass's plan, the refusal a pass names, the error a crashed pass is
contained in (:mod:`d3os_operator.containment`) -- goes through :class:`StatusPath`: written only when it
differs from the live one (:func:`d3os_core.statusdiff.status_differs`), in the order handed over, each answer
written through to the cache. With a background :class:`StatusWriter` a pass hands its status over and goes
on; a status that must be on the object before the pass ends (a refusal, a contained error, the status
before a finalizer is removed) is written after what was handed over, never before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import httpx2
from lightkube.core.exceptions import ApiError

from d3os_core.statusdiff import status_differs, step_boundary

from .kube import Kube
from .parents import ParentCaches, ParentKey

Listener = Callable[[ParentKey, Mapping[str, Any]], None]


class StatusWriter:
    """Writes DataService statuses off the reconcile path.

    A pass hands its status over and ends; the next pass is not held up by the write's round trip (the watch
    event that lets the next step start often arrives while the last step's status is being written). Per
    DataService the statuses are written one at a time, in the order they were handed over (two server-side
    applies of one status in flight could land in either order), so every step boundary is seen as before;
    a waiting status that the next one changes only in progress text is replaced by it. Each answer goes
    through to the cache; until then :meth:`latest` is the status the next plan must take as live (its
    transition times and Events then follow what was handed over, not the older copy in the cache).

    A failed write drops what was waiting for that DataService and calls ``on_failure``; the reconciler then
    writes that DataService's next status within its pass, where a failure takes the usual backoff.
    """

    def __init__(
        self,
        kube: Kube,
        parents: ParentCaches,
        *,
        on_written: Callable[[ParentKey, Mapping[str, Any]], None] | None = None,
        on_failure: Callable[[ParentKey, BaseException], None] | None = None,
        limit: int = 8,
    ) -> None:
        self.kube = kube
        self.parents = parents
        self.on_written = on_written
        self.on_failure = on_failure
        self._pending: dict[ParentKey, list[tuple[Mapping[str, Any], dict[str, Any]]]] = {}
        """Per DataService: (parent, status) handed over and not yet answered; the first may be in flight."""
        self._writing: set[ParentKey] = set()
        self._idle: dict[ParentKey, anyio.Event] = {}
        self._wake = anyio.Event()
        self._limit = anyio.CapacityLimiter(limit)
        self.written = 0
        self.replaced = 0

    def submit(self, key: ParentKey, parent: Mapping[str, Any], status: dict[str, Any]) -> None:
        """Queue ``status`` for writing after what is queued for ``key`` already."""
        queue = self._pending.setdefault(key, [])
        waiting = len(queue) > (1 if key in self._writing else 0)
        if waiting and queue and not step_boundary(status, queue[-1][1]):
            queue[-1] = (parent, status)  # only progress text moved on since the waiting one: write the newer
            self.replaced += 1
        else:
            queue.append((parent, status))
        self._wake.set()

    def latest(self, key: ParentKey) -> dict[str, Any] | None:
        """The last status handed over for ``key`` and not yet answered (None: the cache is up to date)."""
        queue = self._pending.get(key)
        return queue[-1][1] if queue else None

    def busy(self, key: ParentKey) -> bool:
        return bool(self._pending.get(key))

    async def flush(self, key: ParentKey) -> None:
        """Until nothing is queued or in flight for ``key`` (written, or dropped after a failure)."""
        while self._pending.get(key) or key in self._writing:
            event = self._idle.setdefault(key, anyio.Event())
            await event.wait()

    def drop(self, key: ParentKey) -> None:
        """Forget what is queued for ``key`` (a write in flight finishes; nothing after it is sent)."""
        self._pending.pop(key, None)

    async def run(self) -> None:
        """Start a writer for every DataService with statuses queued, until cancelled."""
        async with anyio.create_task_group() as tg:
            while True:
                for key in [k for k, q in self._pending.items() if q and k not in self._writing]:
                    self._writing.add(key)
                    tg.start_soon(self._drain, key)
                await self._wake.wait()
                self._wake = anyio.Event()

    async def _drain(self, key: ParentKey) -> None:
        try:
            while True:
                queue = self._pending.get(key)
                if not queue:
                    return
                parent, status = queue[0]
                try:
                    async with self._limit:
                        written = await self.kube.apply_status(parent, status)
                except (ApiError, httpx2.HTTPError, OSError) as e:
                    self._pending.pop(key, None)
                    if self.on_failure is not None:
                        self.on_failure(key, e)
                    return
                self.written += 1
                self.parents.write_through(written)
                if self._pending.get(key) is queue:
                    queue.pop(0)
                if self.on_written is not None:
                    self.on_written(key, status)
        finally:
            self._writing.discard(key)
            if self._pending.get(key):
                self._wake.set()  # handed over after a failure: a new writer starts
            else:
                self._pending.pop(key, None)
                idle = self._idle.pop(key, None)
                if idle is not None:
                    idle.set()


class StatusPath:
    """See the module docstring. ``background``: statuses handed over with :meth:`hand_over` are written by a
    :class:`StatusWriter` (whose :meth:`StatusWriter.run` the caller runs); without it they are written at
    once. ``on_written`` hears of every status written, ``on_failure`` of a background write that failed."""

    def __init__(
        self,
        kube: Kube,
        parents: ParentCaches,
        *,
        background: bool = False,
        on_written: Listener | None = None,
        on_failure: Callable[[ParentKey, BaseException], None] | None = None,
    ) -> None:
        self.kube = kube
        self.parents = parents
        self.on_written = on_written
        self.writer = (StatusWriter(kube, parents, on_written=on_written, on_failure=on_failure)
                       if background else None)

    def latest(self, key: ParentKey) -> dict[str, Any] | None:
        """The last status handed over for ``key`` and not yet answered (None: the cache is up to date)."""
        return self.writer.latest(key) if self.writer is not None else None

    def busy(self, key: ParentKey) -> bool:
        return self.writer is not None and self.writer.busy(key)

    async def flush(self, key: ParentKey) -> None:
        """Until the statuses handed over for ``key`` are written (or dropped after a failure)."""
        if self.writer is not None:
            await self.writer.flush(key)

    def drop(self, key: ParentKey) -> None:
        if self.writer is not None:
            self.writer.drop(key)

    def hand_over(self, key: ParentKey, parent: Mapping[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
        """Queue ``status`` for the background writer; the instance as the pass is to see it from now on, or
        None without a background writer (then :meth:`write_now`)."""
        if self.writer is None:
            return None
        self.writer.submit(key, parent, status)
        return {**parent, "status": status}

    async def write_now(self, key: ParentKey, parent: Mapping[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Write ``status`` before returning, after what was handed over for ``key``; a no-op when it is the
        live status already. Returns the instance as written (or as it was)."""
        await self.flush(key)
        if not status_differs(status, parent.get("status")):
            return dict(parent)
        written = await self.kube.apply_status(parent, status)
        self.parents.write_through(written)
        if self.on_written is not None:
            self.on_written(key, status)
        return written
