"""The one DataService watch (``d3os status --watch``, ``apply --wait``, the harness's StatusRecorder) on
the real control plane: it reports each change, answers an expired resourceVersion (410 Gone) with a
fresh read, and ``stop()`` ends even a quiet watch at once, its thread joined: none is left behind."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest
from lightkube import Client, KubeConfig
from lightkube.types import PatchType

from d3os_operator.kube import DATASERVICE
from d3os_operator.usercli.watch import DataServiceWatch
from d3os_testenv import harness

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def watch_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("d3os-watch-")]


def next_event(events: queue.Queue[tuple[str, Any]], want: str) -> dict[str, Any] | None:
    """The next event of type ``want`` (others are skipped), within a generous minute."""
    deadline = time.monotonic() + 60
    while True:
        typ, obj = events.get(timeout=max(0.1, deadline - time.monotonic()))
        if typ == want:
            return obj  # type: ignore[no-any-return]


def create(client: Client, namespace: str, name: str) -> dict[str, Any]:
    ds = harness.load_sample()
    ds["metadata"] = {"name": name, "namespace": namespace}
    return dict(client.create(DATASERVICE.res(**ds)))


def test_changes_then_a_quiet_watch_stops_at_once(
    k8s_cluster: Any, k8s_namespace: str, crd: None, client: Client
) -> None:
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    config = KubeConfig.from_file(str(k8s_cluster.kubeconfig))
    # a server-side timeout far longer than the test: only cancellation can end this watch soon
    watch = DataServiceWatch(config, k8s_namespace, "watched", lambda t, o: events.put((t, o)), server_timeout=600)
    with watch:
        assert watch_threads() == [f"d3os-watch-{k8s_namespace}/watched"]
        create(client, k8s_namespace, "watched")
        assert next_event(events, "ADDED")["metadata"]["name"] == "watched"  # type: ignore[index]
        client.patch(DATASERVICE.res, "watched", {"metadata": {"labels": {"seen": "yes"}}}, namespace=k8s_namespace,
                     patch_type=PatchType.MERGE)
        assert next_event(events, "MODIFIED")["metadata"]["labels"] == {"seen": "yes"}  # type: ignore[index]
        client.delete(DATASERVICE.res, "watched", namespace=k8s_namespace)
        next_event(events, "DELETED")
        started = time.monotonic()
    stopped_in = time.monotonic() - started
    assert watch_threads() == []
    assert stopped_in < 30, f"stop() took {stopped_in:.1f}s: it waited for the server rather than cancelling"
    watch.stop()  # again: nothing left to do


def test_an_expired_resource_version_is_answered_with_a_fresh_read(
    k8s_cluster: Any, k8s_namespace: str, crd: None, client: Client
) -> None:
    created = create(client, k8s_namespace, "relisted")
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    errors: list[BaseException] = []
    config = KubeConfig.from_file(str(k8s_cluster.kubeconfig))
    with DataServiceWatch(config, k8s_namespace, "relisted", lambda t, o: events.put((t, o)),
                          resource_version="1", on_error=lambda e: errors.append(e) is not None):
        fresh = next_event(events, "RELIST")
        assert fresh is not None and fresh["metadata"]["uid"] == created["metadata"]["uid"]
        client.patch(DATASERVICE.res, "relisted", {"metadata": {"labels": {"after": "relist"}}},
                     namespace=k8s_namespace, patch_type=PatchType.MERGE)
        assert next_event(events, "MODIFIED")["metadata"]["labels"] == {"after": "relist"}  # type: ignore[index]
    assert errors == [] and watch_threads() == []
