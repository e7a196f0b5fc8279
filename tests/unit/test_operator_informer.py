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


# -- cache truth (issue 12 A): a late write-through never resurrects what the watch removed ----------------


def sts(name: str, rv: int, uid: str = "u1", ns: str = "a", terminating: bool = False) -> dict[str, Any]:
    o = obj(name, rv, ns)
    o["metadata"]["uid"] = uid
    o["metadata"]["ownerReferences"] = [{"apiVersion": "d3os-product.com.d3os/v1", "kind": "DataService",
                                         "name": "ds", "uid": "p", "controller": True}]
    if terminating:
        o["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        o["metadata"]["finalizers"] = ["foregroundDeletion"]
    return o


class FakeKube:
    """Answers the informer's LIST with a fixed snapshot (items, resourceVersion)."""

    def __init__(self, items: list[dict[str, Any]], rv: int) -> None:
        self.items, self.rv = items, rv

    async def list_objects(
        self, info: Any, scope: str, labels: Any, fields: Any = None
    ) -> tuple[list[dict[str, Any]], str]:
        return [dict(i) for i in self.items], str(self.rv)


def relist(inf: Informer, items: list[dict[str, Any]], rv: int, scope: str = "a") -> None:
    import anyio

    inf.kube = FakeKube(items, rv)  # type: ignore[assignment]
    anyio.run(inf._relist, scope)


def _interleavings(a: list[Any], b: list[Any]) -> list[list[Any]]:
    """Every merge of two sequences that keeps each one's own order."""
    if not a or not b:
        return [a + b]
    return [[a[0], *rest] for rest in _interleavings(a[1:], b)] + [[b[0], *rest] for rest in _interleavings(a, b[1:])]


def test_every_order_of_delete_events_and_the_delete_answer_ends_with_the_object_gone() -> None:
    """The DELETE answer (terminating copy, rv 11) written through before, between or after the watch's
    MODIFIED (rv 11, deletionTimestamp set) and DELETED (rv 12): the object is gone in the end, and never
    reappears once the DELETED event has been applied."""
    watch = [("MODIFIED", sts("db", 11, terminating=True)), ("DELETED", sts("db", 12, terminating=True))]
    writes = [("WRITE", sts("db", 11, terminating=True))]
    orders = _interleavings(watch, writes)
    assert len(orders) == 3
    for order in orders:
        inf = informer([], namespaces=["a"])
        inf._apply_event("ADDED", sts("db", 10))
        deleted = False
        for what, o in order:
            if what == "WRITE":
                inf.write_through(o)
            else:
                inf._apply_event(what, o)
                deleted = deleted or what == "DELETED"
            if deleted:
                assert inf.get("a", "db") is None, order
        assert inf.get("a", "db") is None and len(inf) == 0, order


def test_delete_answer_after_the_deleted_event_is_refused_even_without_comparable_versions() -> None:
    inf = informer([], namespaces=["a"])
    inf._apply_event("ADDED", sts("db", 10))
    inf._apply_event("DELETED", sts("db", 12))
    late = sts("db", 11, terminating=True)
    assert not inf.write_through(late)
    weird = sts("db", 11, terminating=True)
    weird["metadata"]["resourceVersion"] = "opaque-v2"  # not an integer: the tombstone (uid) decides
    assert not inf.write_through(weird)
    assert inf.get("a", "db") is None


def test_late_deleted_event_of_the_old_object_leaves_its_recreated_namesake() -> None:
    seen: list[tuple[str, str]] = []
    inf = informer(seen, namespaces=["a"])
    inf._apply_event("ADDED", sts("db", 10, uid="old"))
    assert inf.write_through(sts("db", 20, uid="new"))  # our create answered before the old one's DELETED arrived
    inf._apply_event("DELETED", sts("db", 15, uid="old"))
    assert inf.get("a", "db")["metadata"]["uid"] == "new"  # type: ignore[index]
    assert seen[-1] == ("DELETED", "db"), "the owner still hears of the deletion"
    inf._apply_event("ADDED", sts("db", 20, uid="new"))  # the echo of our create: nothing changes
    assert inf.get("a", "db")["metadata"]["resourceVersion"] == "20"  # type: ignore[index]


def test_a_version_the_watch_already_delivered_is_not_written_through_again() -> None:
    inf = informer([], namespaces=["a"])
    inf._apply_event("ADDED", sts("db", 10))
    inf._apply_event("MODIFIED", sts("db", 14))
    inf._advance("a", "30")  # a BOOKMARK at 30
    assert not inf.write_through(sts("other", 25, uid="x")), "rv 25 <= 30: the watch would have delivered it"
    assert inf.get("a", "other") is None
    assert inf.write_through(sts("other", 31, uid="x"))


def test_relist_removes_what_is_gone_and_a_late_answer_does_not_bring_it_back() -> None:
    seen: list[tuple[str, str]] = []
    inf = informer(seen, namespaces=["a"])
    relist(inf, [sts("db", 10), sts("web", 11, uid="w")], 11)
    assert inf.write_through(sts("db", 13, terminating=True))  # our DELETE's answer
    relist(inf, [sts("web", 11, uid="w")], 20)  # the watch broke; meanwhile db went
    assert inf.get("a", "db") is None and seen[-1] == ("DELETED", "db")
    assert not inf.write_through(sts("db", 13, terminating=True)), "the same answer, arriving late"
    assert inf.get("a", "db") is None


def test_relist_keeps_an_object_written_through_after_the_list_was_taken() -> None:
    inf = informer([], namespaces=["a"])
    relist(inf, [], 10)
    assert inf.write_through(sts("db", 25, uid="n"))  # created while the next LIST was on its way
    relist(inf, [], 20)  # a list taken at 20 cannot know it
    assert inf.get("a", "db") is not None


def test_relist_then_deleted_event_then_write_through() -> None:
    inf = informer([], namespaces=["a"])
    relist(inf, [sts("db", 10)], 10)
    inf._apply_event("MODIFIED", sts("db", 11, terminating=True))
    inf._apply_event("DELETED", sts("db", 12, terminating=True))
    relist(inf, [], 15)
    assert not inf.write_through(sts("db", 11, terminating=True))
    assert len(inf) == 0


def test_evict_after_404_and_a_late_event_of_the_dead_object() -> None:
    inf = informer([], namespaces=["a"])
    inf._apply_event("ADDED", sts("db", 10, uid="old"))
    assert not inf.evict("a", "db", uid="someone-else"), "only the object the 404 was about"
    assert inf.evict("a", "db", uid="old")
    assert inf.get("a", "db") is None
    inf._apply_event("MODIFIED", sts("db", 11, uid="old", terminating=True))  # still in flight
    assert inf.get("a", "db") is None
    assert not inf.write_through(sts("db", 11, uid="old", terminating=True))
    inf._apply_event("DELETED", sts("db", 12, uid="old"))
    inf._apply_event("ADDED", sts("db", 13, uid="new"))  # a namesake is welcome
    assert inf.get("a", "db")["metadata"]["uid"] == "new"  # type: ignore[index]


def test_tombstones_are_bounded() -> None:
    from d3os_operator import informer as mod

    inf = informer([], namespaces=["a"])
    for i in range(mod.TOMBSTONES + 50):
        inf._apply_event("ADDED", sts(f"o{i}", 2 * i + 1, uid=f"u{i}"))
        inf._apply_event("DELETED", sts(f"o{i}", 2 * i + 2, uid=f"u{i}"))
    assert len(inf._tombstones) == mod.TOMBSTONES and len(inf) == 0


def test_snapshot_lists_keys_uids_and_versions() -> None:
    inf = informer([], namespaces=["a", "b"])
    inf._apply_event("ADDED", sts("db", 10, uid="u"))
    inf._apply_event("ADDED", sts("web", 11, uid="w", ns="b"))
    assert inf.snapshot() == [
        {"namespace": "a", "name": "db", "uid": "u", "resourceVersion": "10"},
        {"namespace": "b", "name": "web", "uid": "w", "resourceVersion": "11"},
    ]


def test_the_cache_dump_is_opt_in_and_covers_every_informer() -> None:
    from types import SimpleNamespace

    from d3os_core import api
    from d3os_operator.cli import build_parser
    from d3os_operator.controller import Operator

    assert build_parser().parse_args(["run"]).debug_cache_endpoint is False
    assert build_parser().parse_args(["run", "--debug-cache-endpoint"]).debug_cache_endpoint is True
    op = Operator(SimpleNamespace(on_response=None, field_manager="m"))  # type: ignore[arg-type]
    op.owned["StatefulSet"]._apply_event("ADDED", sts("db", 10, uid="u"))
    dump = op.cache_snapshot()
    assert set(dump) == {*(p.names.kind for p in op.products), *(k for _, k in api.OWNED_KINDS)}
    assert api.KIND in dump and "AnalyticsService" in dump  # every installed product has its instance cache
    assert dump["StatefulSet"] == [{"namespace": "a", "name": "db", "uid": "u", "resourceVersion": "10"}]


# -- a field selector (the probe policy's by-name watches in default) --------------------------------------


def test_write_through_respects_a_field_selector() -> None:
    from d3os_operator.probe_targets import SERVICE

    inf = Informer(None, SERVICE, ["default"], handler=lambda *_: None,  # type: ignore[arg-type]
                   fields={"metadata.name": "kubernetes"})
    assert inf.labels is None
    assert not inf.write_through(obj("other", 5, ns="default"))
    assert inf.write_through(obj("kubernetes", 5, ns="default"))
    odd = Informer(None, SERVICE, ["default"], handler=lambda *_: None,  # type: ignore[arg-type]
                   fields={"spec.clusterIP": "10.96.0.1"})
    assert not odd.write_through(obj("kubernetes", 5, ns="default")), "a field it cannot check: the watch decides"


def test_the_list_and_the_watch_send_the_field_selector() -> None:
    """Both requests carry ``fieldSelector=metadata.name=kubernetes`` (what RBAC authorizes by resourceNames)
    and no label selector (a local server stands in for the API server)."""
    import json

    import anyio

    from d3os_operator.endpoints import listen, serve
    from d3os_operator.kube import Kube, make_client
    from d3os_operator.probe_targets import KUBERNETES, SERVICE

    from .helpers import local_kubeconfig

    queries: list[dict[str, list[str]]] = []
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kubernetes", "namespace": "default", "resourceVersion": "7", "uid": "u"}}

    def route(query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        queries.append(query)
        if query.get("watch") == ["true"]:
            return 200, json.dumps({"type": "MODIFIED", "object": {**service, "metadata": {
                **service["metadata"], "resourceVersion": "8"}}}).encode() + b"\n", "application/json"
        body = {"apiVersion": "v1", "kind": "ServiceList", "metadata": {"resourceVersion": "7"}, "items": [service]}
        return 200, json.dumps(body).encode(), "application/json"

    async def main() -> None:
        listener = await listen("127.0.0.1", 0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        config = local_kubeconfig(port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, listener, {"/api/v1/namespaces/default/services": route})
            kube = Kube(make_client(config))
            inf = Informer(kube, SERVICE, ["default"], handler=lambda *_: None, fields=KUBERNETES)
            with anyio.fail_after(10):
                rv = await inf._relist("default")
                assert rv == "7" and inf.get("default", "kubernetes") is not None
                assert await inf._watch_once("default", rv) == "8"
            await kube.aclose()
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert len(queries) == 2, queries
    for q in queries:
        assert q["fieldSelector"] == ["metadata.name=kubernetes"] and "labelSelector" not in q, q
    assert queries[1]["watch"] == ["true"] and queries[1]["resourceVersion"] == ["7"]
