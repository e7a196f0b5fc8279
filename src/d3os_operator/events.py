"""Kubernetes Events on DataServices, sent off the reconcile path.

A reconcile only queues its Events (:meth:`EventRecorder.record`); one task sends them in order. So an
Event costs a reconcile nothing (the next step of a rollout is never held up by Event writes) and can
never fail it: a refused or dropped Event is logged and forgotten.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import anyio

from d3os_core.redact import redact_text
from d3os_core.types import Event

from .kube import Kube, api_error_text

QUIET = frozenset({"Waiting"})
"""Normal Event reasons logged at DEBUG (still recorded as Events)."""

log = logging.getLogger("d3os_operator.events")


class EventRecorder:
    """See the module docstring; call :meth:`run` in a task."""

    def __init__(self, kube: Kube, buffer: int = 1000) -> None:
        self.kube = kube
        self._send, self._receive = anyio.create_memory_object_stream[tuple[dict[str, Any], Event]](buffer)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._pending = 0

    def record(self, parent: Mapping[str, Any], event: Event) -> None:
        if "@" in event.message:  # a URL with user:password@ never reaches an Event
            event = dataclasses.replace(event, message=redact_text(event.message))
        meta = parent.get("metadata") or {}
        ref = {"metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
        try:
            self._send.send_nowait((ref, event))
        except anyio.WouldBlock:
            self.dropped += 1
            log.warning("event dropped: too many queued", extra={"ds": _ds(ref), "reason": event.reason})
            return
        self._pending += 1
        if self._idle.is_set():
            self._idle = anyio.Event()

    @property
    def pending(self) -> int:
        return self._pending

    async def wait_idle(self) -> None:
        """Wait until every recorded Event was sent (or failed)."""
        await self._idle.wait()

    async def run(self) -> None:
        async with self._receive:
            async for parent, event in self._receive:
                try:
                    await self.kube.create_event(parent, event)
                    self.sent += 1
                    # The Events are the rollout's story (Deploying, ComponentReady, Ready, warnings): at INFO
                    # they make an ordinary rollout about two lines per component. "Waiting" is noise there.
                    log.log(
                        logging.DEBUG if event.type == "Normal" and event.reason in QUIET else logging.INFO,
                        "event",
                        extra={"ds": _ds(parent), "type": event.type, "reason": event.reason, "detail": event.message},
                    )
                except Exception as e:  # an Event is never worth more than a log line
                    self.failed += 1
                    log.warning(
                        "event not recorded",
                        extra={"ds": _ds(parent), "reason": event.reason, "error": api_error_text(e)},
                    )
                finally:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.set()


def _ds(parent: Mapping[str, Any]) -> str:
    meta = parent.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"
