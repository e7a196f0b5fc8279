"""The cache-truth invariant (issue 12 A): each informer's contents equal a fresh LIST.

Compared per kind on (namespace, name, uid, resourceVersion), over the given namespaces, the LIST filtered
exactly as the informer is (label ``managed-by``, then :func:`d3os_operator.cachefilter.keep_for`). A watch
delivers with a lag, so the check retries until both agree or ``timeout`` passes; then it fails naming what
the cache holds that the API server does not (a resurrected or stale object), what it misses, and what
differs in version.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lightkube import ALL_NS, Client

from d3os_core import api
from d3os_operator.cachefilter import keep_for
from d3os_operator.kube import DATASERVICE, OWNED

Row = tuple[str, str, str, str]
"""(namespace, name, uid, resourceVersion)"""
Snapshot = Mapping[str, Iterable[Mapping[str, str]]]


def _row(meta: Mapping[str, Any]) -> Row:
    return (meta.get("namespace") or "", meta["name"], meta.get("uid") or "", meta.get("resourceVersion") or "")


def api_view(client: Client, namespaces: Iterable[str]) -> dict[str, set[Row]]:
    nss = set(namespaces)
    out: dict[str, set[Row]] = {}
    items = [dict(o) for o in client.list(DATASERVICE.res, namespace=ALL_NS)]
    out[api.KIND] = {_row(o["metadata"]) for o in items if o["metadata"]["namespace"] in nss}
    for info in OWNED:
        keep = keep_for(info.kind) or (lambda _o: True)
        labels = {api.LABEL_MANAGED_BY: api.MANAGED_BY}
        listed = [dict(o) for o in client.list(info.res, namespace=ALL_NS, labels=labels)]
        out[info.kind] = {_row(o["metadata"]) for o in listed if o["metadata"]["namespace"] in nss and keep(o)}
    return out


def cache_view(snapshot: Snapshot, namespaces: Iterable[str]) -> dict[str, set[Row]]:
    nss = set(namespaces)
    return {
        kind: {(r["namespace"], r["name"], r["uid"], r["resourceVersion"]) for r in rows if r["namespace"] in nss}
        for kind, rows in snapshot.items()
    }


def differences(cache: Mapping[str, set[Row]], live: Mapping[str, set[Row]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in sorted(set(cache) | set(live)):
        c, a = cache.get(kind, set()), live.get(kind, set())
        if c == a:
            continue
        c_by = {(r[0], r[1]): r for r in c}
        a_by = {(r[0], r[1]): r for r in a}
        out[kind] = {
            "cached_not_in_api": sorted(c_by.keys() - a_by.keys()),
            "in_api_not_cached": sorted(a_by.keys() - c_by.keys()),
            "differ": sorted((k, c_by[k][2:], a_by[k][2:]) for k in c_by.keys() & a_by.keys() if c_by[k] != a_by[k]),
        }
    return out


def assert_cache_is_true(
    client: Client, snapshot: Callable[[], Snapshot], namespaces: Iterable[str], timeout: float = 60.0
) -> dict[str, Any]:
    """Wait until the operator's caches equal a fresh LIST; returns figures (objects compared, attempts)."""
    nss = list(namespaces)
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        live = api_view(client, nss)
        cache = cache_view(snapshot(), nss)
        diff = differences(cache, live)
        if not diff:
            return {
                "objects": sum(len(v) for v in live.values()),
                "attempts": attempts,
                "agreed_after_s": round(time.monotonic() - started, 2),
            }
        if time.monotonic() > deadline:
            raise AssertionError(f"the operator's caches differ from a fresh LIST after {timeout}s: {diff}")
        time.sleep(0.5)


def http_snapshot(port: int) -> Callable[[], Snapshot]:
    """The snapshot of an operator subprocess run with ``--debug-cache-endpoint`` (health probes on ``port``)."""

    def get() -> Snapshot:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/debug/cache", timeout=10) as resp:
            data: Snapshot = json.loads(resp.read())
            return data

    return get


def in_process_snapshot(running: Any) -> Callable[[], Snapshot]:
    """The snapshot of a :class:`d3os_testenv.harness.RunningOperator`, taken on its own event loop."""

    def get() -> Snapshot:
        data: Snapshot = running.portal.call(running.operator.cache_snapshot)
        return data

    return get
