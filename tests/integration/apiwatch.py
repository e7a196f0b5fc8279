"""What the API server showed: every watch event on the kinds of one namespace, in the server's order.

Order-of-operations tests (upgrade, deletion, kind switch) judge order from here, not from the operator's
own trace: a watch opened before the change records each ADDED/MODIFIED/DELETED with its
``resourceVersion``. On the local control plane (one etcd) a resourceVersion is etcd's global revision,
so it orders writes across kinds; a DELETED event carries the revision of the deletion. The watch
records whether that held (integers, increasing per kind) and whether it ever lost events (410 Gone), and
:meth:`ApiWatch.timeline` refuses to answer when either failed.

The watches run as tasks on a private event loop (an anyio blocking portal), so :meth:`ApiWatch.stop`
cancels them at once and closes the client: no thread outlives the ``with`` block.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
from lightkube import ApiError, AsyncClient, KubeConfig

from d3os_core import api
from d3os_operator.kube import DATASERVICE, kind_info

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Pod"),
    (api.API_VERSION, api.KIND),
)
"""Every kind the operator writes, the pods its workloads run, and the DataService itself."""


@dataclasses.dataclass(frozen=True)
class Event:
    type: str
    """ADDED, MODIFIED, DELETED, or LISTED (what was there when the watch began)."""
    kind: str
    name: str
    rv: int
    obj: Mapping[str, Any]
    t: float = 0.0
    """When this watch received it (time.monotonic(); for figures, never for order)."""

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.obj.get("metadata") or {}

    @property
    def uid(self) -> str:
        return str(self.meta.get("uid", ""))

    @property
    def component(self) -> str | None:
        return (self.meta.get("labels") or {}).get(api.LABEL_COMPONENT)

    @property
    def terminating(self) -> bool:
        """Deleted, or marked for deletion (a foreground delete sets deletionTimestamp first)."""
        return self.type == "DELETED" or bool(self.meta.get("deletionTimestamp"))

    def __str__(self) -> str:
        return f"{self.rv} {self.type} {self.kind}/{self.name}"


class ApiWatch:
    """Watch ``kinds`` in ``namespace`` from a list taken at :meth:`start`; see the module docstring."""

    def __init__(
        self, kubeconfig: str | Path, namespace: str, kinds: Sequence[tuple[str, str]] = KINDS
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.namespace = namespace
        self.kinds = tuple(kinds)
        self.events: list[Event] = []
        self.problems: list[str] = []
        self.start_rv = 0
        self._lock = threading.Lock()
        self._portal_cm: Any = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._client: AsyncClient | None = None
        self._tasks: list[Future[None]] = []

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> ApiWatch:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        try:
            self._client = self._portal.call(self._make_client)
            for av, kind in self.kinds:
                rv = self._portal.call(self._list, av, kind)
                self._tasks.append(self._portal.start_task_soon(self._watch, av, kind, rv))
        except BaseException:
            self.stop()
            raise
        return self

    async def _make_client(self) -> AsyncClient:
        return AsyncClient(config=KubeConfig.from_file(str(self.kubeconfig)))

    def stop(self) -> None:
        """Cancel the watches, close the client, end the portal's thread (joined)."""
        if self._portal is None:
            return
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                task.result(timeout=30)
        if self._client is not None:
            self._portal.call(self._client.close)
        self._portal_cm.__exit__(None, None, None)
        self._portal = None

    def __enter__(self) -> ApiWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the watches -------------------------------------------------------------------------------------

    @staticmethod
    def _res(av: str, kind: str) -> Any:
        return DATASERVICE.res if kind == api.KIND else kind_info(av, kind).res

    async def _list(self, av: str, kind: str) -> str:
        assert self._client is not None
        listing = self._client.list(self._res(av, kind), namespace=self.namespace)
        async for obj in listing:
            self._record("LISTED", kind, dict(obj))
        rv = str(listing.resourceVersion)  # type: ignore[attr-defined]
        with self._lock:
            self.start_rv = max(self.start_rv, int(rv))
        return rv

    async def _watch(self, av: str, kind: str, rv: str) -> None:
        assert self._client is not None
        last = int(rv)
        while True:
            try:
                async for typ, obj in self._client.watch(
                    self._res(av, kind), namespace=self.namespace, resource_version=str(last), server_timeout=60
                ):
                    got = int(dict(obj)["metadata"]["resourceVersion"])
                    if got <= last and typ != "BOOKMARK":
                        self._problem(f"{kind}: resourceVersion {got} after {last}")
                    last = max(last, got)
                    self._record(typ, kind, dict(obj))
            except ApiError as e:  # 410 Gone: events between the last version seen and now are lost
                self._problem(f"{kind}: watch failed ({e.status.code}); events may be missing")
                return
            except Exception:  # the connection dropped: resume from the last version seen, nothing is lost
                await anyio.sleep(0.5)

    def _problem(self, what: str) -> None:
        with self._lock:
            self.problems.append(what)

    def _record(self, typ: str, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ev = Event(typ, kind, str(meta.get("name", "")), int(meta.get("resourceVersion") or 0), obj, time.monotonic())
        with self._lock:
            self.events.append(ev)

    # -- reading -----------------------------------------------------------------------------------------

    def timeline(self) -> list[Event]:
        """Every event since the start, in the API server's order (resourceVersion); the LISTED ones first."""
        with self._lock:
            assert not self.problems, f"the watch cannot vouch for the order: {self.problems}"
            return sorted(self.events, key=lambda e: (e.type != "LISTED", e.rv))

    def wait_for(
        self, what: str, pred: Callable[[Event], bool], timeout: float = 180.0
    ) -> Event:
        """The first event (by resourceVersion) matching ``pred``, waiting up to ``timeout`` s for one."""
        deadline = time.monotonic() + timeout
        while True:
            found = first(self.timeline(), pred)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"the API server never showed {what} within {timeout}s")
            time.sleep(0.1)

    def sync(self, timeout: float = 30.0) -> None:
        """Wait until the ConfigMap watch has caught up with a write made now (a marker ConfigMap, created
        and deleted); the other kinds' watches are as current for any question about what came before."""
        assert ("v1", "ConfigMap") in self.kinds, "sync needs the ConfigMap watch"
        from lightkube import Client
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.core_v1 import ConfigMap

        client = Client(config=KubeConfig.from_file(str(self.kubeconfig)))
        name = f"apiwatch-sync-{time.monotonic_ns()}"
        try:
            client.create(ConfigMap(metadata=ObjectMeta(name=name)), namespace=self.namespace)
            client.delete(ConfigMap, name, namespace=self.namespace)
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if any(e.kind == "ConfigMap" and e.name == name and e.type == "DELETED" for e in self.events):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"the watch did not see its marker ConfigMap {name} go within {timeout}s")
            time.sleep(0.05)


# -- questions about a timeline ----------------------------------------------------------------------------


def first(events: Iterable[Event], pred: Callable[[Event], bool]) -> Event | None:
    return next((e for e in events if pred(e)), None)


def since(events: Sequence[Event], rv: int) -> list[Event]:
    """The events after ``rv`` (the LISTED state left out)."""
    return [e for e in events if e.type != "LISTED" and e.rv > rv]


def objects_at(events: Iterable[Event], rv: int) -> dict[tuple[str, str], Event]:
    """The live objects as of ``rv``: (kind, name) -> their latest event then."""
    live: dict[tuple[str, str], Event] = {}
    for e in events:
        if e.type != "LISTED" and e.rv > rv:
            break
        if e.type == "DELETED":
            live.pop((e.kind, e.name), None)
        else:
            live[(e.kind, e.name)] = e
    return live


def created(events: Iterable[Event], kind: str, name: str, after: int = 0) -> Event | None:
    """The first ADDED of ``kind/name`` after ``after``."""
    return first(events, lambda e: e.type == "ADDED" and e.kind == kind and e.name == name and e.rv > after)


def deleted(events: Iterable[Event], kind: str, name: str, after: int = 0) -> Event | None:
    """The first DELETED of ``kind/name`` after ``after``."""
    return first(events, lambda e: e.type == "DELETED" and e.kind == kind and e.name == name and e.rv > after)


def pod_template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((obj.get("spec") or {}).get("template") or {})


def template_annotation(obj: Mapping[str, Any], key: str) -> str:
    return str(((pod_template(obj).get("metadata") or {}).get("annotations") or {}).get(key, ""))


def image(obj: Mapping[str, Any]) -> str:
    return str(pod_template(obj)["spec"]["containers"][0]["image"])


def env_of(obj: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for c in pod_template(obj).get("spec", {}).get("containers", []):
        for e in c.get("env") or []:
            yield e.get("name", ""), e.get("value", e.get("valueFrom"))


# -- watches in the background, stopped for real -------------------------------------------------------------


class Background:
    """Runs watch loops (``async def loop(client)``) as tasks on a private event loop with one client.

    :meth:`stop` cancels them, closes the client and joins the loop's thread: unlike a thread blocked in
    a synchronous watch, nothing is left running when the ``with`` block ends.
    """

    def __init__(self, kubeconfig: str | Path, *loops: Callable[[AsyncClient], Any]) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.loops = loops
        self._portal_cm: Any = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._client: AsyncClient | None = None
        self._tasks: list[Future[Any]] = []

    def start(self) -> Background:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()

        async def make() -> AsyncClient:
            return AsyncClient(config=KubeConfig.from_file(str(self.kubeconfig)))

        self._client = self._portal.call(make)
        self._tasks = [self._portal.start_task_soon(loop, self._client) for loop in self.loops]
        return self

    def stop(self) -> None:
        if self._portal is None:
            return
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                task.result(timeout=30)
        if self._client is not None:
            self._portal.call(self._client.close)
        self._portal_cm.__exit__(None, None, None)
        self._portal = None

    def __enter__(self) -> Background:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def follow(res: Any, on_event: Callable[[str, dict[str, Any]], None], namespace: str | None = None) -> Callable[
    [AsyncClient], Any
]:
    """A :class:`Background` loop: watch ``res`` (every namespace by default) and hand each event to
    ``on_event``; on trouble (the API server away, 410) start over, a fresh watch listing everything again."""
    from lightkube import ALL_NS

    async def loop(client: AsyncClient) -> None:
        while True:
            try:
                async for typ, obj in client.watch(res, namespace=namespace or ALL_NS, server_timeout=60):
                    on_event(typ, dict(obj))
            except Exception:
                await anyio.sleep(0.3)

    return loop
