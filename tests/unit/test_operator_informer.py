"""Cache bookkeeping of the informer: event order, write-through of our own writes, namespace index.
(No API server: only the store logic, fed with events as a watch would deliver them.)"""

from __future__ import annotations

from typing import Any

from d3os_operator.informer import Informer
from d3os_operator.kube import OWNED


def obj(name: str, rv: int, ns: str = "a", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "resourceVersion": str(rv),
            "labels": labels or {"app.kubernetes.io/managed-by": "d3os-operator"},
        }
    }


def informer(events: list[tuple[str, str]], namespaces: list[str] | None = None) -> Informer:
    return Informer(
        None,
        OWNED[0],
        namespaces,
        handler=lambda t, o, old: events.append((t, o["metadata"]["name"])),  # type: ignore[arg-type]
        labels={"app.kubernetes.io/managed-by": "d3os-operator"},
    )


def test_events_update_store_and_index() -> None:
    seen: list[tuple[str, str]] = []
    inf = informer(seen)
    inf._apply_event("ADDED", obj("web", 10))
    inf._apply_event("ADDED", obj("db", 11, ns="b"))
    inf._apply_event("MODIFIED", obj("web", 12))
    assert [o["metadata"]["resourceVersion"] for o in inf.in_namespace("a")] == ["12"]
    assert [o["metadata"]["name"] for o in inf.in_namespace("b")] == ["db"]
    inf._apply_event("DELETED", obj("web", 13))
    assert list(inf.in_namespace("a")) == [] and inf.get("a", "web") is None
    assert seen == [("ADDED", "web"), ("ADDED", "db"), ("MODIFIED", "web"), ("DELETED", "web")]


def test_write_through_skips_the_echo_and_older_events() -> None:
    seen: list[tuple[str, str]] = []
    inf = informer(seen)
    inf._apply_event("ADDED", obj("web", 10))
    assert inf.write_through(obj("web", 20))  # the answer to our apply
    inf._apply_event("MODIFIED", obj("web", 15))  # an older event still in flight
    inf._apply_event("MODIFIED", obj("web", 20))  # the echo of our own write
    assert inf.get("a", "web")["metadata"]["resourceVersion"] == "20"  # type: ignore[index]
    assert seen == [("ADDED", "web")], "neither the stale event nor our echo triggers a reconcile"
    inf._apply_event("MODIFIED", obj("web", 21))  # someone else's change
    assert seen[-1] == ("MODIFIED", "web")
    assert not inf.write_through(obj("web", 19)), "an older copy never replaces a newer one"


def test_write_through_respects_scope_and_labels() -> None:
    inf = informer([], namespaces=["a"])
    assert not inf.write_through(obj("web", 5, ns="elsewhere"))
    assert not inf.write_through(obj("web", 5, labels={"app": "x"}))
    assert inf.write_through(obj("web", 5))
