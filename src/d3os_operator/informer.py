"""List+watch caches (informers) on lightkube, which has none.

One :class:`Informer` per kind keeps a local store of every object of that kind in the watched
namespaces (optionally filtered by labels, or by a field selector such as ``metadata.name=kubernetes``, which
RBAC can grant by resourceNames) and calls a handler for each change. Per namespace scope:

1. list (paginated) and reconcile the store with the list -- objects that vanished while we were not
   watching are reported as DELETED, changed ones as MODIFIED;
2. watch from the list's resourceVersion, each request bounded by ``timeoutSeconds`` and by an overall
   deadline of our own (a half-open connection never hangs us), with bookmarks keeping the
   resourceVersion fresh; a clean close continues from the last resourceVersion;
3. on 410 Gone (as an HTTP status or as an ERROR event) relist at once; on any other error back off
   exponentially and relist.

``resync_period`` re-delivers every cached object as a RESYNC event (a level-based safety net).

The cache never holds an object the API server no longer has (DESIGN.md §3, "Cache truth"), whatever order
the watch's events and the operator's own write-throughs arrive in:

* per scope the informer knows how far its watch has got (the *high-water mark*: the list's resourceVersion,
  then each event's and bookmark's). A write-through of a version at or below it is older news than what
  the watch already delivered -- an ADDED/MODIFIED for it (and a DELETED after it, if any) came first -- and
  is dropped. That is what keeps the answer to a DELETE from resurrecting an object whose DELETED event
  already removed it;
* the uids of objects seen deleted (DELETED events, relists, :meth:`Informer.evict` after a 404) are kept as
  tombstones: no later write-through or event of that uid is stored again (covers resourceVersions that
  are not integers, and events still in flight after an eviction);
* a DELETED event removes the cached copy only if it is that object (same uid) and not a newer version,
  so the late DELETED of an old object never removes its re-created namesake.

``keep`` and ``transform`` bound what is stored (see :mod:`d3os_operator.cachefilter`): objects ``keep``
refuses are treated as absent, and each stored object is first passed through ``transform``.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import anyio
import httpx2
from lightkube.core.exceptions import ApiError

from .apierrors import Answer, classify
from .kube import ALL_NAMESPACES, KindInfo, Kube, api_error_text
from .sharding import labels_match

log = logging.getLogger("d3os_operator.informer")

StoreKey = tuple[str, str]
"""(namespace, name)"""
Handler = Callable[[str, dict[str, Any], dict[str, Any] | None], None]
"""Called with (event type: ADDED|MODIFIED|DELETED|RESYNC, object, previous cached object or None)."""


def store_key(obj: Mapping[str, Any]) -> StoreKey:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _rv_int(rv: str) -> int | None:
    return int(rv) if rv.isdigit() else None


TOMBSTONES = 4096
"""Uids of deleted objects remembered per informer (oldest forgotten first; a uid is never reused)."""


def _newer(obj: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """True unless ``obj`` is known to be the same or an older version of ``than``.

    resourceVersions are opaque in general; for one object they come from etcd's revision counter,
    so when both are integers they are compared as such (equal: same version, skip it).
    """
    a, b = resource_version(obj), resource_version(than)
    if a.isdigit() and b.isdigit():
        return int(a) > int(b)
    return a != b


def _fields_match(fields: Mapping[str, str], obj: Mapping[str, Any]) -> bool:
    """Does ``obj`` match an equality field selector? Only ``metadata.name`` and ``metadata.namespace`` are
    known here: any other field is taken as not matching (the watch, which the server filters, delivers it)."""
    meta = obj.get("metadata") or {}
    known = {"metadata.name": meta.get("name") or "", "metadata.namespace": meta.get("namespace") or ""}
    return all(field in known and known[field] == value for field, value in fields.items())


class _Gone(Exception):
    """The watch's resourceVersion is too old: relist."""


class Informer:
    """See the module docstring."""

    def __init__(
        self,
        kube: Kube,
        info: KindInfo,
        namespaces: Sequence[str] | None,
        *,
        handler: Handler,
        labels: Mapping[str, Any] | None = None,
        fields: Mapping[str, str] | None = None,
        keep: Callable[[Mapping[str, Any]], bool] | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        server_timeout: int = 240,
        deadline_margin: float = 30.0,
        resync_period: float | None = None,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.kube = kube
        self.info = info
        self.scopes: tuple[str, ...] = tuple(dict.fromkeys(namespaces)) if namespaces else (ALL_NAMESPACES,)
        self.handler = handler
        self.labels = dict(labels) if labels else None
        self.fields = dict(fields) if fields else None
        """A field selector (equality only); its ``metadata.name`` is what a by-name RBAC rule must grant."""
        self.keep = keep
        self.transform = transform
        self.server_timeout = server_timeout
        self.deadline_margin = deadline_margin
        self.resync_period = resync_period
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.store: dict[StoreKey, dict[str, Any]] = {}
        self._by_ns: dict[str, dict[str, dict[str, Any]]] = {}
        self._seen_rv: dict[str, int] = {}
        """Per scope: the resourceVersion up to which the watch (or the list) has told us everything."""
        self._tombstones: OrderedDict[str, tuple[StoreKey, int | None]] = OrderedDict()
        """uid -> (key, resourceVersion as of which it is gone; None: for good) of objects known deleted."""
        self.synced = anyio.Event()
        self._synced_scopes: set[str] = set()
        self.relists = 0
        self.watch_requests = 0
        self.errors = 0

    @property
    def kind(self) -> str:
        return self.info.kind

    # -- reading the cache -------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get((namespace, name))

    def in_namespace(self, namespace: str) -> Iterator[dict[str, Any]]:
        yield from list(self._by_ns.get(namespace, {}).values())

    def _scope_of(self, key: StoreKey) -> str:
        return ALL_NAMESPACES if ALL_NAMESPACES in self.scopes else key[0]

    def _advance(self, scope: str, rv: str) -> None:
        n = _rv_int(rv)
        if n is not None and n > self._seen_rv.get(scope, -1):
            self._seen_rv[scope] = n

    def _seen(self, obj: Mapping[str, Any]) -> bool:
        """True when the watch of ``obj``'s scope has already delivered this version of it or a later one."""
        n = _rv_int(resource_version(obj))
        return n is not None and n <= self._seen_rv.get(self._scope_of(store_key(obj)), -1)

    def _bury(self, obj: Mapping[str, Any], uid: str = "", at: str | None = None) -> None:
        """Remember ``obj`` as gone as of resourceVersion ``at`` (None: for good, e.g. after a 404)."""
        uid = uid or uid_of(obj)
        if uid:
            self._tombstones[uid] = (store_key(obj), _rv_int(at) if at is not None else None)
            self._tombstones.move_to_end(uid)
            while len(self._tombstones) > TOMBSTONES:
                self._tombstones.popitem(last=False)

    def _buried(self, obj: Mapping[str, Any]) -> bool:
        """A version of a gone object no later than its burial. A later version can only be the same object
        back in a label-filtered watch (the server sends DELETED when an object leaves the selector, e.g. a
        DataService moved to another shard, and ADDED when it comes back): that one is not buried."""
        uid = uid_of(obj)
        if not uid or uid not in self._tombstones:
            return False
        at = self._tombstones[uid][1]
        rv = _rv_int(resource_version(obj))
        return at is None or rv is None or rv <= at

    def _wanted(self, obj: Mapping[str, Any]) -> bool:
        return self.keep is None or self.keep(obj)

    def _stored(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.transform(obj) if self.transform is not None else obj

    def _put(self, key: StoreKey, obj: dict[str, Any]) -> None:
        self.store[key] = obj
        self._by_ns.setdefault(key[0], {})[key[1]] = obj

    def _pop(self, key: StoreKey) -> dict[str, Any] | None:
        obj = self.store.pop(key, None)
        names = self._by_ns.get(key[0])
        if names is not None:
            names.pop(key[1], None)
            if not names:
                del self._by_ns[key[0]]
        return obj

    def __len__(self) -> int:
        return len(self.store)

    # -- running -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            for scope in self.scopes:
                tg.start_soon(self._run_scope, scope)
            if self.resync_period:
                tg.start_soon(self._resync_loop, self.resync_period)

    async def _run_scope(self, scope: str) -> None:
        backoff = self.min_backoff
        while True:
            try:
                rv = await self._relist(scope)
                backoff = self.min_backoff
                while True:
                    rv = await self._watch_once(scope, rv)
            except _Gone:
                log.info("watch expired, relisting", extra={"kind": self.kind, "scope": scope})
                continue
            except (ApiError, httpx2.HTTPError, OSError, ValueError, TimeoutError) as e:
                self.errors += 1
                delay = backoff * (0.8 + 0.4 * random.random())
                log.warning(
                    "list/watch failed, relisting after backoff",
                    extra={
                        "kind": self.kind,
                        "scope": scope,
                        "error": api_error_text(e),
                        "backoff_s": round(delay, 2),
                    },
                )
                await anyio.sleep(delay)
                backoff = min(self.max_backoff, backoff * 2)

    def _in_scope(self, key: StoreKey, scope: str) -> bool:
        return scope == ALL_NAMESPACES or key[0] == scope

    async def _relist(self, scope: str) -> str:
        items, rv = await self.kube.list_objects(self.info, scope, self.labels, fields=self.fields)
        self.relists += 1
        fresh = {store_key(o): self._stored(o) for o in items if self._wanted(o)}
        listed_at = _rv_int(rv)
        for key in [k for k in self.store if self._in_scope(k, scope) and k not in fresh]:
            old_rv = _rv_int(resource_version(self.store[key]))
            if listed_at is not None and old_rv is not None and old_rv > listed_at:
                continue  # written through after the list was taken: newer than the list, keep it
            gone = self._pop(key)
            assert gone is not None
            self._bury(gone, at=rv)
            self._emit("DELETED", gone, gone)
        self._advance(scope, rv)
        for key, obj in fresh.items():
            old = self.store.get(key)
            if self._buried(obj):
                continue
            if old is None:
                self._put(key, obj)
                self._emit("ADDED", obj, None)
            elif _newer(obj, old):
                self._put(key, obj)
                self._emit("MODIFIED", obj, old)
        if scope not in self._synced_scopes:
            self._synced_scopes.add(scope)
            if len(self._synced_scopes) == len(self.scopes):
                self.synced.set()
        log.debug("listed", extra={"kind": self.kind, "scope": scope, "count": len(fresh), "rv": rv})
        return rv

    async def _watch_once(self, scope: str, rv: str) -> str:
        """One bounded watch request from ``rv``; returns the resourceVersion to continue from."""
        self.watch_requests += 1
        # Jitter spreads the reconnects of many informers.
        timeout = int(self.server_timeout * (0.9 + 0.2 * random.random()))
        started = time.monotonic()
        with anyio.move_on_after(timeout + self.deadline_margin) as deadline:
            try:
                stream = self.kube.watch(
                    self.info, scope, resource_version=rv, labels=self.labels, fields=self.fields,
                    server_timeout=timeout,
                )
                async for typ, obj in stream:
                    new_rv = resource_version(obj)
                    if typ == "BOOKMARK":
                        rv = new_rv or rv
                        self._advance(scope, rv)
                        continue
                    self._apply_event(typ, obj)
                    rv = new_rv or rv
            except ApiError as e:
                if classify(e) is Answer.EXPIRED:
                    raise _Gone() from e
                raise
        if deadline.cancelled_caught:
            log.info(
                "watch exceeded its overall deadline, restarting it",
                extra={"kind": self.kind, "scope": scope, "after_s": round(time.monotonic() - started, 1)},
            )
        return rv

    def _apply_event(self, typ: str, obj: dict[str, Any]) -> None:
        key = store_key(obj)
        if typ in ("ADDED", "MODIFIED", "DELETED"):
            self._advance(self._scope_of(key), resource_version(obj))
        if typ == "DELETED":
            self._bury(obj, at=resource_version(obj))
            old = self.store.get(key)
            if old is not None and not self._same_or_older(old, obj):
                old = None  # the cached one is a re-created namesake (or newer): it stays
            elif old is not None:
                self._pop(key)
            self._emit("DELETED", obj, old)
        elif typ in ("ADDED", "MODIFIED"):
            old = self.store.get(key)
            if self._buried(obj):
                return  # evicted after a 404: a late event of the dead object must not bring it back
            if not self._wanted(obj):
                if old is not None and uid_of(old) == uid_of(obj):  # no longer ours (owner removed): forget it
                    self._pop(key)
                    self._emit("DELETED", obj, old)
                return
            if old is not None and not _newer(obj, old):
                return  # already known: the operator wrote it through, or an older event in flight
            stored = self._stored(obj)
            self._put(key, stored)
            self._emit("MODIFIED" if old is not None else "ADDED", stored, old)

    @staticmethod
    def _same_or_older(cached: Mapping[str, Any], deleted: Mapping[str, Any]) -> bool:
        """Is ``cached`` the object a DELETED event reports (same uid, not a later version)?"""
        a, b = uid_of(cached), uid_of(deleted)
        if a and b and a != b:
            return False
        x, y = _rv_int(resource_version(cached)), _rv_int(resource_version(deleted))
        return x is None or y is None or x <= y

    def write_through(self, obj: dict[str, Any]) -> bool:
        """Store an object the API just returned to one of our own writes (no handler is called).

        The watch event for the same resourceVersion is then recognised and skipped. Objects outside the
        informer's label filter, ``keep`` or namespaces are ignored; an older copy never replaces a newer one;
        a version the watch has already delivered (see the module docstring) or an object seen deleted is
        never stored again.
        """
        key = store_key(obj)
        if ALL_NAMESPACES not in self.scopes and key[0] not in self.scopes:
            return False
        if self.labels and not labels_match(self.labels, (obj.get("metadata") or {}).get("labels") or {}):
            return False
        if self.fields and not _fields_match(self.fields, obj):
            return False
        if not self._wanted(obj) or self._buried(obj) or self._seen(obj):
            return False
        old = self.store.get(key)
        if old is not None and not _newer(obj, old):
            return False
        self._put(key, self._stored(obj))
        return True

    def evict(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """Forget the cached copy after the API answered 404 (or a failed uid precondition) for it.

        ``uid``: only that object (a namesake the watch has already delivered stays). The object is
        remembered as deleted, so a late event or write-through of it is not stored again. No handler is
        called: the caller is reconciling and requeues itself. Returns True when a copy was removed.
        """
        key = (namespace, name)
        old = self.store.get(key)
        if old is None or (uid and uid_of(old) and uid_of(old) != uid):
            if uid:
                self._bury({"metadata": {"namespace": namespace, "name": name}}, uid)
            return False
        self._pop(key)
        self._bury(old)
        return True

    def snapshot(self) -> list[dict[str, str]]:
        """What the cache holds, for the debug endpoint and the cache-truth checks: one row per object."""
        return [
            {"namespace": k[0], "name": k[1], "uid": uid_of(o), "resourceVersion": resource_version(o)}
            for k, o in sorted(self.store.items())
        ]

    def _emit(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        try:
            self.handler(typ, obj, old)
        except Exception:  # a handler bug must not kill the cache
            log.exception("event handler failed", extra={"kind": self.kind, "obj": "/".join(store_key(obj))})

    async def _resync_loop(self, period: float) -> None:
        while True:
            await anyio.sleep(period)
            for obj in list(self.store.values()):
                self._emit("RESYNC", obj, obj)
