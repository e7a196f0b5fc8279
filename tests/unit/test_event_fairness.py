"""One tenant's Warning storm never drops or delays another tenant's Events (issue 24, A3)."""

from __future__ import annotations

from typing import Any

import pytest

from d3os_core.types import Event
from d3os_operator.events import EventRecorder
from d3os_operator.fairbuffer import FairBuffer
from d3os_operator.metrics import Metrics


def _parent(ns: str, name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"{ns}-{name}"}}


def test_a_storm_in_one_namespace_drops_its_own_events_never_anothers() -> None:
    rec = EventRecorder(kube=None, buffer=100)  # type: ignore[arg-type]  # record() only queues
    for i in range(500):
        rec.record(_parent("storm", f"ds{i % 50}"), Event("Warning", "CheckFailed", f"check {i} failed"))
        if i % 100 == 50:
            rec.record(_parent("quiet", "sample"), Event("Normal", "Deploying", f"step {i}"))
    queued = rec.queued()
    quiet = [e.message for p, e, _ in queued if p["metadata"]["namespace"] == "quiet" and e is not None]
    assert quiet == ["step 50", "step 150", "step 250", "step 350", "step 450"], "every quiet Event is kept"
    assert rec.dropped_by_namespace == {"storm": 500 - (100 - 5)}, "the flooding namespace pays for the flood"
    assert rec.dropped == 500 - 95
    assert rec.pending == 0


def test_namespaces_are_sent_in_turn() -> None:
    rec = EventRecorder(kube=None, buffer=1000)  # type: ignore[arg-type]
    for i in range(300):
        rec.record(_parent("storm", "ds"), Event("Warning", "CheckFailed", f"{i}"))
    rec.record(_parent("quiet", "sample"), Event("Normal", "Ready", "ready"))
    order = [p["metadata"]["namespace"] for p, _, _ in rec.queued()]
    assert order.index("quiet") <= 1, "a namespace's first Event waits for at most one of each other namespace"


def test_dropped_events_are_a_metric_by_namespace() -> None:
    rec = EventRecorder(kube=None, buffer=3)  # type: ignore[arg-type]
    for i in range(5):
        rec.record(_parent("storm", "ds"), Event("Warning", "CheckFailed", f"{i}"))
    metrics = Metrics()
    metrics.snapshot(lambda: {"events": {"dropped": rec.dropped}, "events_dropped": rec.dropped_by_namespace})
    text = metrics.text().decode()
    assert 'd3os_events_dropped_total{namespace="storm"} 2.0' in text
    assert 'd3os_events_total{outcome="dropped"} 2.0' in text


@pytest.mark.parametrize("total", [1, 2, 7])
def test_fair_buffer_bounds_and_order(total: int) -> None:
    buf: FairBuffer[str, int] = FairBuffer(total)
    for i in range(20):
        buf.put("a", i)
    assert len(buf) == total and buf.dropped == {"a": 20 - total}
    assert buf.put("b", 100), "a namespace with nothing queued always gets its item in"
    assert len(buf) == total
    items = [buf.get() for _ in range(total)]
    assert buf.get() is None
    assert 100 in items
    a_items = [i for i in items if i != 100]
    assert a_items == sorted(a_items), "each namespace stays in its own order"


def test_fair_buffer_per_namespace_cap() -> None:
    buf: FairBuffer[str, int] = FairBuffer(10, per_namespace=3)
    assert [buf.put("a", i) for i in range(5)] == [True, True, True, False, False]
    assert buf.put("b", 1)
    assert [buf.get(), buf.get(), buf.get(), buf.get(), buf.get()] == [0, 1, 1, 2, None]
