"""Kubernetes Events on DataServices, sent off the reconcile path and aggregated as client-go's recorder does.

A reconcile only queues its Events (:meth:`EventRecorder.record`); one task sends them. So an Event costs
a reconcile nothing (the next step of a rollout is never held up by Event writes) and can never fail it: a
refused or dropped Event is logged and forgotten. The queue is fair between namespaces
(:class:`~d3os_operator.fairbuffer.FairBuffer`): namespaces are sent in turn, and when it is full the
Event dropped is the oldest of the namespace holding the most, so one tenant's Warning storm drops its own
Events, never another tenant's; drops are counted by namespace (``d3os_events_dropped_total``).

Aggregation (client-go's ``EventCorrelator``): one Event object per DataService and *series* -- a Normal
Event's reason (``Deploying``, ``Ready``...), a Warning's reason and message (each distinct problem stays
readable on its own). The first occurrence of a series is created at once; a repeat only bumps the series
in memory (count, last time, latest message) and the existing Event is patched later:

* a Warning's repeat when the series' interval has passed since its last write -- :data:`FIRST_INTERVAL`
  seconds, doubling with each write up to :data:`SERIES_INTERVAL`, back to the first after a quiet spell;
* a Normal repeat (a rollout's ordinary story: one ``Deploying`` per component) is folded until its
  DataService comes to rest (:meth:`EventRecorder.settle`: its rollout is complete or stalled), however
  long the rollout takes -- but never longer than :data:`NORMAL_INTERVAL` after the series' last write, so
  an Event of a rollout that does not come to rest is never older than that; the first repeat after the
  DataService was at rest (a new rollout, a repair) is written at once.

So a rollout costs one create per reason and one patch per reason at its end, whether it lasts 10 s or
5 minutes. ``kubectl describe`` shows ``(xN over …)`` and the latest message: exact at rest and whenever
a Warning is written (its DataService's folded Normal repeats are written just before it, so the Warning
stands next to the step it is about); while an ordinary rollout goes on, a Normal Event may show an earlier
occurrence of its reason, at most :data:`NORMAL_INTERVAL` behind (the status tells the current step).
An Event that expired (404) is created again with the count.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from lightkube.core.exceptions import ApiError

from d3os_core.redact import redact_text
from d3os_core.types import Event

from .apierrors import Answer, classify
from .fairbuffer import FairBuffer
from .kube import Kube, api_error_text

FIRST_INTERVAL = 5.0
"""Seconds after a series' first write before a repeat is written (doubles with each write)."""
SERIES_INTERVAL = 60.0
"""Longest wait between two writes of one series' Event: repeats in between are sent together (count, latest);
a series quiet for that long starts again at :data:`FIRST_INTERVAL`."""
NORMAL_INTERVAL = 300.0
"""Longest wait between two writes of a Normal series' Event while its DataService is not at rest: repeats
in between are sent together (count, latest) when it comes to rest, or this late."""
MAX_SERIES = 4096
"""Series remembered (least recently used dropped first): client-go's correlator cache holds 4096 too."""
COMBINED = "(combined from similar events): "
"""client-go's prefix for an aggregated Event whose messages differed."""

log = logging.getLogger("d3os_operator.events")

SeriesKey = tuple[str, str, str, str, str]
"""(namespace, DataService uid or name, type, reason, message or "" for a Normal Event)."""


def parent_key(parent: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, uid or name): the DataService part of its series' keys."""
    meta = parent.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("uid") or meta.get("name") or "")


def series_key(parent: Mapping[str, Any], event: Event) -> SeriesKey:
    return (*parent_key(parent), event.type, event.reason, "" if event.type == "Normal" else event.message)


@dataclasses.dataclass
class Series:
    """One Event object and the occurrences it stands for."""

    parent: dict[str, Any]
    event: Event
    name: str | None = None
    """The Event's name once created."""
    count: int = 1
    first: str = ""
    last: str = ""
    sent_count: int = 0
    """``count`` as last written."""
    sent_at: float = 0.0
    """Clock time of the last write (create or patch)."""
    interval: float = FIRST_INTERVAL
    """Seconds after ``sent_at`` before the next write of a repeat."""
    seen_at: float = 0.0
    """Clock time of the last occurrence."""
    rested: bool = False
    seq: int = 0
    """Order of the last occurrence among all series (a flush writes the least recently seen first)."""
    """Its DataService came to rest since the last occurrence: the next one starts a new story, told at once."""

    @property
    def dirty(self) -> bool:
        return self.count != self.sent_count


def _now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """See the module docstring; call :meth:`run` in a task."""

    def __init__(
        self,
        kube: Kube,
        buffer: int = 1000,
        *,
        first_interval: float = FIRST_INTERVAL,
        max_interval: float = SERIES_INTERVAL,
        normal_interval: float = NORMAL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.first_interval = first_interval
        self.max_interval = max_interval
        self.normal_interval = normal_interval
        self.clock = clock
        self._queue: FairBuffer[str, tuple[dict[str, Any], Event | None, str]] = FairBuffer(buffer)
        self._wake = anyio.Event()
        self.sent = 0
        """Event writes (creates and patches)."""
        self.failed = 0
        self.aggregated = 0
        """Occurrences folded into an existing Event instead of a new one."""
        self._series: collections.OrderedDict[SeriesKey, Series] = collections.OrderedDict()
        self._of_parent: dict[tuple[str, str], set[SeriesKey]] = collections.defaultdict(set)
        """Series keys by (namespace, DataService uid or name): a DataService at rest finds its own at once."""
        self._dirty: set[SeriesKey] = set()
        self._seq = 0
        """Keys of the series with occurrences not yet written: the only ones a flush looks at, so the cost of
        an occurrence does not grow with the series remembered (up to :data:`MAX_SERIES`)."""
        self._idle = anyio.Event()
        self._idle.set()
        self._pending = 0

    def record(self, parent: Mapping[str, Any], event: Event) -> None:
        if "@" in event.message:  # a URL with user:password@ never reaches an Event
            event = dataclasses.replace(event, message=redact_text(event.message))
        meta = parent.get("metadata") or {}
        ref = {"metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
        self._put(ref, event, _now_rfc3339())

    def settle(self, parent: Mapping[str, Any]) -> None:
        """The DataService came to rest (complete or stalled): write its series' repeats now, and tell the
        first repeat after this at once (it starts a new story)."""
        meta = parent.get("metadata") or {}
        ref = {"metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
        self._put(ref, None, "")  # if dropped, the interval writes them anyway

    def _put(self, ref: dict[str, Any], event: Event | None, stamp: str) -> None:
        before = len(self._queue)
        if not self._queue.put(str(ref["metadata"].get("namespace") or ""), (ref, event, stamp)):
            if event is not None:
                log.warning("event dropped: too many queued", extra={"ds": _ds(ref), "reason": event.reason})
            return
        if len(self._queue) == before + 1:
            self._busy(+1)  # else it took the place of another namespace's oldest (dropped, no longer pending)
        self._wake.set()

    @property
    def dropped(self) -> int:
        """Occurrences dropped because the queue was full (all namespaces)."""
        return sum(self._queue.dropped.values())

    @property
    def dropped_by_namespace(self) -> dict[str, int]:
        return dict(self._queue.dropped)

    def queued(self) -> list[tuple[dict[str, Any], Event | None, str]]:
        """What waits to be sent, in the order it will be (for tests; empties the queue)."""
        out = []
        while (item := self._queue.get()) is not None:
            out.append(item)
            self._busy(-1)
        return out

    @property
    def pending(self) -> int:
        """Occurrences queued or not yet written into their Event."""
        return self._pending + sum(1 for k in self._dirty if self._series[k].dirty)

    async def wait_idle(self) -> None:
        """Wait until every recorded occurrence was received (a repeat may still wait for its series' write)."""
        await self._idle.wait()

    def _busy(self, n: int) -> None:
        self._pending += n
        if self._pending == 0:
            self._idle.set()
        elif self._idle.is_set():
            self._idle = anyio.Event()

    def _due(self, series: Series) -> float:
        """Clock time at which a dirty series' repeats are written (see the module docstring)."""
        if series.event.type == "Normal":
            return series.sent_at + self.normal_interval
        return series.sent_at + series.interval

    def _next_due(self) -> float | None:
        return min((self._due(s) for s in map(self._series.__getitem__, self._dirty)
                    if s.dirty and s.name is not None), default=None)

    def _remember(self, key: SeriesKey, series: Series) -> None:
        self._series[key] = series
        self._of_parent[key[:2]].add(key)
        while len(self._series) > MAX_SERIES:
            old, _ = self._series.popitem(last=False)
            self._dirty.discard(old)
            keys = self._of_parent.get(old[:2])
            if keys is not None:
                keys.discard(old)
                if not keys:
                    del self._of_parent[old[:2]]

    async def run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                due = self._next_due()
                timeout = None if due is None else max(0.0, due - self.clock())
                self._wake = anyio.Event()
                with anyio.move_on_after(timeout if timeout is not None else float("inf")):
                    await self._wake.wait()
                item = self._queue.get()
            if item is not None:
                parent, event, stamp = item
                try:
                    if event is None:
                        await self.flush_due(parent)
                    else:
                        await self.occurred(parent, event, stamp)
                finally:
                    self._busy(-1)
            await self.flush_due()

    async def occurred(self, parent: dict[str, Any], event: Event, stamp: str) -> None:
        # The Events are the rollout's story (Deploying, Ready, warnings): at INFO they make an ordinary
        # rollout about a line per component.
        log.info("event", extra={"ds": _ds(parent), "type": event.type, "reason": event.reason,
                                 "detail": event.message})
        key = series_key(parent, event)
        series = self._series.get(key)
        now = self.clock()
        self._seq += 1
        if series is None:
            series = Series(parent, event, first=stamp, last=stamp, interval=self.first_interval, seen_at=now,
                            seq=self._seq)
            self._remember(key, series)
            await self._write_now(key, series)
            return
        self._series.move_to_end(key)
        self.aggregated += 1
        # a new story (a Normal series after its DataService was at rest) or a new burst of a Warning after
        # a quiet spell: its first occurrence is told at once, like a new series'
        if event.type == "Normal":
            burst = series.rested
        else:
            burst = now - series.seen_at >= self.max_interval
            if burst:
                series.interval = self.first_interval
        series.rested = False
        series.seen_at = now
        series.seq = self._seq
        if event.message != series.event.message and not event.message.startswith(COMBINED):
            event = dataclasses.replace(event, message=COMBINED + event.message)
        series.event = event
        series.parent = parent
        series.count += 1
        series.last = stamp
        warning_due = event.type != "Normal" and now - series.sent_at >= series.interval
        self._dirty.add(key)
        if series.name is None or burst or warning_due:
            await self._write_now(key, series)

    async def _write_now(self, key: SeriesKey, series: Series) -> None:
        """Write a series' occurrence that is told at once. A Warning first writes its DataService's folded
        Normal repeats: ``kubectl describe`` then shows the step the Warning is about (a rollout stalled on a
        failing check is not at rest, and would otherwise show an earlier step next to the Warning for up to
        :data:`NORMAL_INTERVAL`)."""
        if series.event.type != "Normal":
            for folded in sorted(self._of_parent.get(key[:2], set()) & self._dirty, key=self._order):
                normal = self._series[folded]
                if normal.event.type == "Normal" and normal.dirty and normal.name is not None:
                    await self._write(folded, normal)
        await self._write(key, series)

    async def flush_due(self, parent: Mapping[str, Any] | None = None) -> None:
        """Write the dirty series that are due; with ``parent`` (it came to rest): every dirty series of that
        DataService, and its series' next occurrences start a new story."""
        now = self.clock()
        mine: set[SeriesKey] = set()
        if parent is not None:
            mine = set(self._of_parent.get(parent_key(parent), ()))
            for key in mine:
                self._series[key].rested = True
        for key in sorted(self._dirty | mine, key=self._order):
            series = self._series[key]
            if not series.dirty or series.name is None:
                continue
            if key in mine or now >= self._due(series):
                await self._write(key, series)

    def _order(self, key: SeriesKey) -> int:
        return self._series[key].seq

    async def _write(self, key: SeriesKey, series: Series) -> None:
        parent, event = series.parent, series.event
        self._dirty.discard(key)
        try:
            if series.name is not None:
                try:
                    await self.kube.update_event(parent["metadata"]["namespace"], series.name, count=series.count,
                                                 last=series.last, message=event.message)
                except ApiError as e:
                    if classify(e) is not Answer.GONE:
                        raise
                    series.name = None  # expired (the API server's event TTL): a new Event carries the count
            if series.name is None:
                series.name = await self.kube.create_event(parent, event, count=series.count, first=series.first,
                                                           last=series.last)
            self.sent += 1
        except Exception as e:  # an Event is never worth more than a log line
            self.failed += 1
            log.warning(
                "event not recorded",
                extra={"ds": _ds(parent), "reason": event.reason, "error": api_error_text(e)},
            )
        finally:
            series.sent_count = series.count  # a failed write is not retried: the next repeat carries the count
            if series.sent_at:
                series.interval = min(self.max_interval, series.interval * 2)
            series.sent_at = self.clock()


def _ds(parent: Mapping[str, Any]) -> str:
    meta = parent.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"
