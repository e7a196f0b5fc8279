"""Live updates by watch, with the user's kubeconfig: the overview follows every installed product's kind
(one namespace, or all with ``-A``); an instance's page follows that instance and the Events of its
namespace. Each is an async generator of ``(event, data)`` pairs the server sends as server-sent events.

A watch ending (the API server's timeout) is resumed from the last resourceVersion; an expired one (410)
starts over with a ``reset``; a kind the API server does not serve (its CRD not installed, 404) is left
out; a refusal (403) is told to the page once, with the API server's message.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import anyio.abc

from d3os_core.product import ProductDef

from .. import errors
from . import views

RETRY_PAUSE = 1.0
SERVER_TIMEOUT = 240


def _code(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    code = getattr(status, "code", None)
    if isinstance(code, int):
        return code
    try:
        response = getattr(exc, "response", None)
        code = getattr(response, "status_code", None)
    except RuntimeError:
        return None
    return code if isinstance(code, int) else None


async def _follow(client: Any, res: Any, namespace: str, send: anyio.abc.ObjectSendStream[tuple[str, Any]],
                  label: str, fields: dict[str, str] | None = None) -> None:
    """Send ``("reset", label)``, then ``(type, object)`` for every object and change, for ever."""
    rv: str | None = None
    while True:
        if rv is None:
            await send.send(("reset", label))
        try:
            async with contextlib.aclosing(client.watch(res, namespace=namespace, fields=fields,
                                                        resource_version=rv, server_timeout=SERVER_TIMEOUT)) as w:
                async for typ, obj in w:
                    data = dict(obj)
                    rv = str((data.get("metadata") or {}).get("resourceVersion") or "") or rv
                    await send.send((typ, data))
        except Exception as exc:
            code = _code(exc)
            if code == 410:
                rv = None
                continue
            if code in (401, 403, 404):
                described = errors.describe(exc)
                if code != 404:
                    await send.send(("refused", described[1] if described else str(exc)))
                return
            await send.send(("trouble", (errors.describe(exc) or (0, f"{type(exc).__name__}: {exc}"))[1]))
            await anyio.sleep(RETRY_PAUSE)


async def overview(client: Any, products: Sequence[ProductDef], namespace: str) -> AsyncIterator[tuple[str, Any]]:
    """``reset`` (a kind is listed afresh: its rows go), ``rows`` (rows added or changed, as many as arrived
    together: a list of 200 instances is one message), ``remove`` (a key), ``refused``/``trouble`` (a line)."""
    send, receive = anyio.create_memory_object_stream[tuple[str, Any]](10000)
    async with anyio.create_task_group() as tg:
        for p in products:
            tg.start_soon(_follow_kind, client, p, namespace, send.clone())
        send.close()
        batch: list[dict[str, Any]] = []
        async with receive:
            async for event, data in receive:
                if event == "row":
                    batch.append(data)
                else:
                    if batch:
                        yield "rows", batch
                        batch = []
                    yield event, data
                if batch and receive.statistics().current_buffer_used == 0:
                    yield "rows", batch
                    batch = []
        tg.cancel_scope.cancel()


async def _follow_kind(client: Any, product: ProductDef, namespace: str,
                       out: anyio.abc.ObjectSendStream[tuple[str, Any]]) -> None:
    from ...kube import product_kind

    kind = product.names.kind
    send, receive = anyio.create_memory_object_stream[tuple[str, Any]](1000)
    async with out, anyio.create_task_group() as tg:
        tg.start_soon(_follow, client, product_kind(product.names).res, namespace, send, kind)
        async with receive:
            async for typ, data in receive:
                if typ == "reset":
                    await out.send(("reset", kind))
                elif typ in ("refused", "trouble"):
                    await out.send((typ, f"{kind}: {data}"))
                elif typ == "DELETED":
                    meta = data.get("metadata") or {}
                    await out.send(("remove", views.key_of(kind, meta.get("namespace", ""), meta.get("name", ""))))
                else:
                    await out.send(("row", views.row(data, kind)))


async def instance(client: Any, product: ProductDef, namespace: str, name: str) -> AsyncIterator[tuple[str, Any]]:
    """``instance`` (the picture) on every change of the instance, ``gone`` when deleted, ``events`` whenever
    an Event about it or its workloads changes."""
    from ...kube import EVENT, product_kind

    kind = product.names.kind
    send, receive = anyio.create_memory_object_stream[tuple[str, Any]](1000)
    current: dict[str, Any] | None = None
    seen: dict[str, dict[str, Any]] = {}
    last_events: list[dict[str, Any]] | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(_follow, client, product_kind(product.names).res, namespace, send.clone(), "instance",
                      {"metadata.name": name})
        tg.start_soon(_follow, client, EVENT.res, namespace, send.clone(), "events")
        send.close()
        async with receive:
            async for typ, data in receive:
                if typ == "reset" or typ in ("refused", "trouble"):
                    if typ == "reset" and data == "events":
                        seen.clear()
                    elif typ != "reset":
                        yield typ, data
                    continue
                if data.get("kind") == "Event" or "involvedObject" in data:
                    uid = str((data.get("metadata") or {}).get("uid") or "")
                    if typ == "DELETED":
                        seen.pop(uid, None)
                    else:
                        seen[uid] = data
                else:
                    if typ == "DELETED":
                        current = None
                        yield "gone", views.key_of(kind, namespace, name)
                    else:
                        current = data
                        yield "instance", views.instance(data, product)
                if current is not None and receive.statistics().current_buffer_used == 0:
                    shown = views.events(seen, views.involved_objects(current, kind))
                    if shown != last_events:
                        last_events = shown
                        yield "events", shown
        tg.cancel_scope.cancel()
