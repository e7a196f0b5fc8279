"""Kubernetes Events on DataServices, sent off the reconcile path and aggregated as client-go's recorder does.

A reconcile only queues its Events (:meth:`EventRecorder.record`); one task sends them in order. So an
Event costs a reconcile nothing (the next step of a rollout is never held up by Event writes) and can
never fail it: a refused or dropped Event is logged and forgotten.

Aggregation (client-go's ``EventCorrelator``): one Event object per DataService and *series* -- a Normal
Event's reason (``Deploying``, ``ComponentReady``...), a Warning's reason and message (each distinct
problem stays readable on its own). The first occurrence of a series is created at once; a repeat only
bumps the series in memory (count, last time, latest message) and the existing Event is patched later:

* a Warning's repeat when the series' interval has passed since its last write -- :data:`FIRST_INTERVAL`
  seconds, doubling with each write up to :data:`SERIES_INTERVAL`, back to the first after a quiet spell;
* a Normal repeat (a rollout's ordinary story: one ``Deploying`` and one ``ComponentReady`` per component)
  is folded until its DataService comes to rest (:meth:`EventRecorder.settle`: its rollout is complete or
  stalled), or has recorded nothing for :data:`LULL` seconds (it waits on something: a third party's
  failing check, a slow workload), or :data:`SERIES_INTERVAL` after the series' last write; the first
  repeat after a quiet spell (a new rollout) is written at once.

So a rollout costs one create per reason and one patch per reason at its end, ``kubectl describe`` shows
``(xN over …)`` and the latest message: exact at rest, at most :data:`LULL` seconds behind while the
DataService waits, at most :data:`SERIES_INTERVAL` behind in a long burst. An Event that expired (404) is
created again with the count.
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

from .kube import Kube, api_error_text

QUIET = frozenset({"Waiting"})
"""Normal Event reasons logged at DEBUG (still recorded as Events)."""
FIRST_INTERVAL = 5.0
"""Seconds after a series' first write before a repeat is written (doubles with each write)."""
SERIES_INTERVAL = 60.0
"""Longest wait between two writes of one series' Event: repeats in between are sent together (count, latest);
a series quiet for that long starts again at :data:`FIRST_INTERVAL`."""
LULL = 10.0
"""Seconds without a new occurrence for a DataService after which its folded Normal repeats are written."""
MAX_SERIES = 4096
"""Series remembered (least recently used dropped first): client-go's correlator cache holds 4096 too."""
COMBINED = "(combined from similar events): "
"""client-go's prefix for an aggregated Event whose messages differed."""

log = logging.getLogger("d3os_operator.events")

SeriesKey = tuple[str, str, str, str, str]
"""(namespace, DataService uid or name, type, reason, message or "" for a Normal Event)."""


def series_key(parent: Mapping[str, Any], event: Event) -> SeriesKey:
    meta = parent.get("metadata") or {}
    who = str(meta.get("uid") or meta.get("name") or "")
    return (str(meta.get("namespace") or ""), who, event.type, event.reason,
            "" if event.type == "Normal" else event.message)


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
        lull: float = LULL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.first_interval = first_interval
        self.max_interval = max_interval
        self.lull = lull
        self.clock = clock
        self._send, self._receive = anyio.create_memory_object_stream[tuple[dict[str, Any], Event | None, str]](buffer)
        self.sent = 0
        """Event writes (creates and patches)."""
        self.failed = 0
        self.dropped = 0
        self.aggregated = 0
        """Occurrences folded into an existing Event instead of a new one."""
        self._series: collections.OrderedDict[SeriesKey, Series] = collections.OrderedDict()
        self._idle = anyio.Event()
        self._idle.set()
        self._pending = 0

    def record(self, parent: Mapping[str, Any], event: Event) -> None:
        if "@" in event.message:  # a URL with user:password@ never reaches an Event
            event = dataclasses.replace(event, message=redact_text(event.message))
        meta = parent.get("metadata") or {}
        ref = {"metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
        try:
            self._send.send_nowait((ref, event, _now_rfc3339()))
        except anyio.WouldBlock:
            self.dropped += 1
            log.warning("event dropped: too many queued", extra={"ds": _ds(ref), "reason": event.reason})
            return
        self._busy(+1)

    def settle(self, parent: Mapping[str, Any]) -> None:
        """The DataService came to rest: write its series' repeats now rather than at their interval."""
        meta = parent.get("metadata") or {}
        ref = {"metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
        try:
            self._send.send_nowait((ref, None, ""))
        except anyio.WouldBlock:
            return  # the interval writes them anyway
        self._busy(+1)

    @property
    def pending(self) -> int:
        """Occurrences queued or not yet written into their Event."""
        return self._pending + sum(1 for s in self._series.values() if s.dirty)

    async def wait_idle(self) -> None:
        """Wait until every recorded occurrence was received (a repeat may still wait for its series' write)."""
        await self._idle.wait()

    def _busy(self, n: int) -> None:
        self._pending += n
        if self._pending == 0:
            self._idle.set()
        elif self._idle.is_set():
            self._idle = anyio.Event()

    def _due(self, series: Series, ds_seen: float) -> float:
        """Clock time at which a dirty series' repeats are written (see the module docstring)."""
        if series.event.type == "Normal":
            return min(series.sent_at + self.max_interval, ds_seen + self.lull)
        return series.sent_at + series.interval

    def _seen(self) -> dict[tuple[str, str], float]:
        """Clock time of each DataService's last occurrence (of any series)."""
        seen: dict[tuple[str, str], float] = {}
        for key, s in self._series.items():
            seen[key[:2]] = max(seen.get(key[:2], 0.0), s.seen_at)
        return seen

    def _next_due(self) -> float | None:
        dirty = [(k, s) for k, s in self._series.items() if s.dirty and s.name is not None]
        if not dirty:
            return None
        seen = self._seen()
        return min(self._due(s, seen[k[:2]]) for k, s in dirty)

    async def run(self) -> None:
        async with self._receive:
            while True:
                due = self._next_due()
                timeout = None if due is None else max(0.0, due - self.clock())
                item: tuple[dict[str, Any], Event | None, str] | None = None
                with anyio.move_on_after(timeout if timeout is not None else float("inf")):
                    try:
                        item = await self._receive.receive()
                    except anyio.EndOfStream:
                        return
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
        # The Events are the rollout's story (Deploying, ComponentReady, Ready, warnings): at INFO
        # they make an ordinary rollout about two lines per component. "Waiting" is noise there.
        log.log(
            logging.DEBUG if event.type == "Normal" and event.reason in QUIET else logging.INFO,
            "event",
            extra={"ds": _ds(parent), "type": event.type, "reason": event.reason, "detail": event.message},
        )
        key = series_key(parent, event)
        series = self._series.get(key)
        now = self.clock()
        if series is None:
            series = Series(parent, event, first=stamp, last=stamp, interval=self.first_interval, seen_at=now)
            self._series[key] = series
            while len(self._series) > MAX_SERIES:
                self._series.popitem(last=False)
            await self._write(series)
            return
        self._series.move_to_end(key)
        self.aggregated += 1
        # a new burst after a quiet spell: its first occurrence is told at once, like a new series'
        burst = now - series.seen_at >= self.max_interval
        if burst:
            series.interval = self.first_interval
        series.seen_at = now
        if event.message != series.event.message and not event.message.startswith(COMBINED):
            event = dataclasses.replace(event, message=COMBINED + event.message)
        series.event = event
        series.parent = parent
        series.count += 1
        series.last = stamp
        warning_due = event.type != "Normal" and now - series.sent_at >= series.interval
        if series.name is None or burst or warning_due:
            await self._write(series)

    async def flush_due(self, parent: Mapping[str, Any] | None = None) -> None:
        """Write the dirty series that are due; with ``parent``: every dirty series of that DataService."""
        now = self.clock()
        meta = (parent or {}).get("metadata") or {}
        whose = (meta.get("namespace"), meta.get("uid") or meta.get("name")) if parent is not None else None
        seen = self._seen()
        for key, series in list(self._series.items()):
            if not series.dirty or series.name is None:
                continue
            if key[:2] == whose or now >= self._due(series, seen[key[:2]]):
                await self._write(series)

    async def _write(self, series: Series) -> None:
        parent, event = series.parent, series.event
        try:
            if series.name is not None:
                try:
                    await self.kube.update_event(parent["metadata"]["namespace"], series.name, count=series.count,
                                                 last=series.last, message=event.message)
                except ApiError as e:
                    if e.status.code != 404:
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
