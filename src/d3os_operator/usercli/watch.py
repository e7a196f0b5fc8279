"""One product instance (a DataService, an AnalyticsService, ...), watched: ``d3os status --watch``,
``apply --wait``, ``rollback --wait`` and the test harness's status recorder all use :class:`DataServiceWatch`.

The watch runs on an event loop thread of its own (an anyio blocking portal) with its own async client,
so :meth:`DataServiceWatch.stop` cancels it at once, even while the API server sends nothing, closes the
client and joins the thread: no thread outlives its user. An expired resourceVersion (410 Gone, as an
HTTP status or a watch ERROR event) is answered with a fresh read, reported as a ``RELIST`` event, and
the watch goes on from there; any other error goes to ``on_error``, which says whether to keep watching.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

EventHandler = Callable[[str, "dict[str, Any] | None"], None]
"""``(type, object)``: ADDED, MODIFIED or DELETED with the object; RELIST with the object or None (gone)."""


def _keep_watching(exc: BaseException) -> bool:
    return True


class DataServiceWatch:
    """Calls ``on_event`` (from the watch thread) for every change of the instance ``namespace/name`` of the
    resource ``res`` (a lightkube resource, :func:`d3os_operator.kube.product_kind`'s ``res``; default: the
    DataService's).

    ``config`` is a lightkube ``KubeConfig`` (or one context of it). Without ``resource_version`` the
    watch starts with an ADDED event for the object as it is; after an error it goes on from the last
    event's resourceVersion. ``on_error`` gets every error but 410;
    it returns True to watch again after ``retry_pause`` seconds (the default: a test harness outlives
    API server restarts), False to end. Use it as a context manager, or call :meth:`start` and
    :meth:`stop`.
    """

    def __init__(
        self,
        config: Any,
        namespace: str,
        name: str,
        on_event: EventHandler,
        *,
        resource_version: str | None = None,
        on_error: Callable[[BaseException], bool] = _keep_watching,
        retry_pause: float = 0.2,
        server_timeout: int = 30,
        res: Any = None,
    ) -> None:
        self.config = config
        self.res = res
        self.namespace = namespace
        self.name = name
        self.on_event = on_event
        self.resource_version = resource_version
        self.on_error = on_error
        self.retry_pause = retry_pause
        self.server_timeout = server_timeout
        self._portal: contextlib.AbstractContextManager[Any] | None = None
        self._task: Any = None

    def start(self) -> DataServiceWatch:
        import anyio.from_thread

        if self._portal is not None:
            raise RuntimeError("this watch is already started")
        self._portal = anyio.from_thread.start_blocking_portal()
        portal = self._portal.__enter__()
        portal.call(self._name_thread)  # in the event loop's thread, which is running once entered
        self._task = portal.start_task_soon(self._run)
        return self

    def stop(self) -> None:
        """Cancel the watch, close its client, and join its thread (idempotent)."""
        portal, self._portal = self._portal, None
        if portal is None:
            return
        self._task.cancel()
        portal.__exit__(None, None, None)

    def __enter__(self) -> DataServiceWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _name_thread(self) -> None:
        threading.current_thread().name = f"d3os-watch-{self.namespace}/{self.name}"

    async def _run(self) -> None:
        import anyio
        from lightkube import AsyncClient

        client = AsyncClient(config=self.config, trust_env=False)
        try:
            while True:
                try:
                    await self._watch(client)
                except Exception as exc:
                    if not self.on_error(exc):
                        return
                    await anyio.sleep(self.retry_pause)
        finally:
            with anyio.CancelScope(shield=True):
                await client.close()

    async def _watch(self, client: Any) -> None:
        """Watch from ``self.resource_version`` (kept up to date) until a 410; then read the object afresh."""
        import httpx2
        from lightkube import ApiError

        from ..kube import DATASERVICE

        res = self.res if self.res is not None else DATASERVICE.res
        try:
            async with contextlib.aclosing(
                client.watch(
                    res,
                    namespace=self.namespace,
                    fields={"metadata.name": self.name},
                    resource_version=self.resource_version,
                    server_timeout=self.server_timeout,
                )
            ) as events:
                async for typ, obj in events:
                    data = dict(obj)
                    self.resource_version = data["metadata"]["resourceVersion"]
                    self.on_event(typ, data)
        except httpx2.HTTPStatusError as e:  # an ApiError (watch ERROR event), or the watch request's status
            if (e.status.code if isinstance(e, ApiError) else e.response.status_code) != 410:
                raise
        try:
            found = await client.get(res, self.name, namespace=self.namespace)
            current: dict[str, Any] | None = dict(found)
        except ApiError as e:
            if e.status.code != 404:
                raise
            current = None
        self.resource_version = None if current is None else str(current["metadata"]["resourceVersion"])
        self.on_event("RELIST", current)


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status of a failed request (an ApiError's, or the response's), else None."""
    status = getattr(exc, "status", None)
    code = getattr(status, "code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)
    try:
        code = getattr(response, "status_code", None)
    except RuntimeError:  # httpx: the response was never set
        return None
    return code if isinstance(code, int) else None


def states(
    config: Any,
    current: dict[str, Any] | None,
    namespace: str,
    name: str,
    deadline: float | None,
    clock: Callable[[], float] = time.monotonic,
    *,
    resources: Sequence[Any] = (),
) -> Generator[dict[str, Any] | None, None, None]:
    """``current`` (as just read), then the instance after every change (None when deleted), until
    ``deadline`` (a ``clock()`` value; None: no end). An error of the watch is raised here.

    ``resources``: the lightkube resources the instance may be of (default: the DataService's). One is
    watched per resource, so a name not found yet under any of several kinds is seen when it appears as one;
    of several, a kind the API server does not serve (404: its CRD is not installed) is left out, and only
    when none is served is that error raised.

    The watch stops when the iteration ends; close the generator (``contextlib.closing``) when leaving
    the loop early, so it stops at once rather than when the generator is collected.
    """
    yield current
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    kinds = tuple(resources) or (None,)
    unserved: list[BaseException] = []

    def failed(exc: BaseException) -> bool:
        if len(kinds) > 1 and _status_code(exc) == 404:
            unserved.append(exc)
            if len(unserved) < len(kinds):
                return False  # that kind is not served: watch the others
        events.put(("ERROR", exc))
        return False

    rv = (current or {}).get("metadata", {}).get("resourceVersion")
    with contextlib.ExitStack() as watches:
        for res in kinds:
            watches.enter_context(DataServiceWatch(config, namespace, name, lambda typ, obj: events.put((typ, obj)),
                                                   resource_version=rv, on_error=failed, res=res))
        while True:
            left = None if deadline is None else deadline - clock()
            if left is not None and left <= 0:
                return
            try:
                typ, data = events.get(timeout=left)
            except queue.Empty:
                return
            if typ == "ERROR":
                raise data
            yield None if typ == "DELETED" else data
