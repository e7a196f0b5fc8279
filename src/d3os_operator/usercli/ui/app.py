"""The web application of ``d3os ui`` (Starlette): the page, its live streams, its reads and its operations,
behind :mod:`.guard`'s checks.

Routes (every one needs the token; POSTs need it in the header, from this origin):

- ``GET /``: the page (``?token=`` once: the answer keeps it in a cookie for this port);
- ``GET /static/...``: its script and stylesheet (shipped in the package: no CDN, no Node);
- ``GET /api/overview``: server-sent events for the overview (:func:`.live.overview`);
- ``GET /api/i/{kind}/{namespace}/{name}``: server-sent events for one instance (:func:`.live.instance`);
- ``GET /api/i/.../history``, ``.../diff?a=N&b=M``, ``.../export/{svg|dot|mermaid}``;
- ``POST /api/i/.../rollback`` ``{"revision": N}``, ``POST /api/i/.../suspend`` ``{"suspend": true|false}``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from d3os_core.graphview import instance_graph
from d3os_core.product import ProductDef

from . import actions, export, live
from .guard import TOKEN_QUERY, Guard

STATIC = resources.files(__package__) / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
PING_SECONDS = 15.0
CLOSING_CHECK = 0.25
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Settings:
    """What the server serves: whose cluster (a lightkube ``KubeConfig``, never sent anywhere), which
    namespace (``*``: all), which products' kinds."""

    config: Any
    namespace: str
    products: Sequence[ProductDef]
    guard: Guard
    closing: threading.Event = field(default_factory=threading.Event)
    """Set when the server stops: the live streams end, so no connection outlives it."""


class Guarded:
    """ASGI middleware: :meth:`Guard.check` on every HTTP request before the application sees it."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            refusal = self.guard.check(request.method, {k.lower(): v for k, v in request.headers.items()},
                                       dict(request.query_params), dict(request.cookies))
            if refusal is not None:
                await PlainTextResponse(refusal.reason + "\n", refusal.status, headers=SECURITY_HEADERS)(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def _stream(events: AsyncIterator[tuple[str, Any]], closing: threading.Event) -> AsyncIterator[str]:
    """Server-sent events, with a comment line every :data:`PING_SECONDS` so a closed tab is noticed; ends
    when ``closing`` is set (looked at every :data:`CLOSING_CHECK` seconds while nothing is sent)."""
    send, receive = anyio.create_memory_object_stream[str](100)

    async def pump() -> None:
        async with send, contextlib.aclosing(events) as source:  # type: ignore[type-var]
            async for event, data in source:
                await send.send(_sse(event, data))

    async with anyio.create_task_group() as tg:
        tg.start_soon(pump)
        yield ": d3os ui\n\n"
        async with receive:
            quiet = 0.0
            while not closing.is_set():
                with anyio.move_on_after(CLOSING_CHECK) as waited:
                    try:
                        chunk = await receive.receive()
                    except anyio.EndOfStream:
                        break
                if not waited.cancelled_caught:
                    quiet = 0.0
                    yield chunk
                    continue
                quiet += CLOSING_CHECK
                if quiet >= PING_SECONDS:
                    quiet = 0.0
                    yield ": ping\n\n"
        tg.cancel_scope.cancel()


def build(settings: Settings) -> ASGIApp:
    """The application, guarded."""
    from lightkube import AsyncClient

    from ..connect import FIELD_MANAGER

    by_kind = {p.names.kind: p for p in settings.products}
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state["client"] = AsyncClient(config=settings.config, trust_env=False, field_manager=FIELD_MANAGER)
        try:
            yield
        finally:
            await state["client"].close()

    def product(request: Request) -> ProductDef:
        kind = request.path_params["kind"]
        if kind not in by_kind:
            raise actions.ActionError(404, f"{kind}: not the kind of a product this page serves "
                                           f"({', '.join(by_kind)})")
        return by_kind[kind]

    def where(request: Request) -> tuple[str, str, str]:
        p = request.path_params
        return p["kind"], p["namespace"], p["name"]

    async def page(request: Request) -> Response:
        if TOKEN_QUERY in request.query_params:  # keep it in a cookie for this port, and out of the address bar
            response: Response = RedirectResponse("/", 303, headers=SECURITY_HEADERS)
            response.set_cookie(settings.guard.cookie, settings.guard.token, httponly=True, samesite="strict")
            return response
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        html = html.replace("{{token}}", settings.guard.token).replace(
            "{{namespace}}", "all namespaces" if settings.namespace == "*" else f"namespace {settings.namespace}")
        return Response(html, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["file"]
        suffix = name[name.rfind("."):]
        if "/" in name or suffix not in STATIC_TYPES or not (STATIC / name).is_file():
            return PlainTextResponse("not found\n", 404)
        return Response((STATIC / name).read_bytes(), media_type=STATIC_TYPES[suffix], headers=SECURITY_HEADERS)

    def streaming(events: AsyncIterator[tuple[str, Any]]) -> Response:
        return StreamingResponse(_stream(events, settings.closing), media_type="text/event-stream",
                                 headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"})

    async def overview(request: Request) -> Response:
        return streaming(live.overview(state["client"], settings.products, settings.namespace))

    async def one(request: Request) -> Response:
        _kind, ns, name = where(request)
        return streaming(live.instance(state["client"], product(request), ns, name))

    async def history(request: Request) -> Response:
        kind, ns, name = where(request)
        product(request)
        data = await anyio.to_thread.run_sync(actions.revisions, settings.config, kind, ns, name)
        data.pop("specs")
        return JSONResponse(data, headers=SECURITY_HEADERS)

    async def diff(request: Request) -> Response:
        kind, ns, name = where(request)
        product(request)
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        data = await anyio.to_thread.run_sync(actions.revisions, settings.config, kind, ns, name)
        specs = data["specs"]
        missing = [n for n in (a, b) if n not in specs]
        if missing:
            raise actions.ActionError(404, f"revision {missing[0] or '(none)'} not found; revisions: "
                                           f"{', '.join(specs) or 'none'}")
        return JSONResponse({"a": a, "b": b, "diff": actions.spec_diff(specs[a], specs[b], f"revision {a}",
                                                                        f"revision {b}")}, headers=SECURITY_HEADERS)

    async def exported(request: Request) -> Response:
        _kind, ns, name = where(request)
        prod = product(request)
        fmt = request.path_params["fmt"]
        if fmt not in export.FORMATS:
            raise actions.ActionError(404, f"format {fmt}: one of {', '.join(export.FORMATS)}")
        from ...kube import product_kind

        obj = dict(await state["client"].get(product_kind(prod.names).res, name, namespace=ns))
        text = export.render(instance_graph(obj, prod), fmt)
        media = "image/svg+xml" if fmt == "svg" else "text/plain; charset=utf-8"
        return Response(text, media_type=media, headers=SECURITY_HEADERS)

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise actions.ActionError(400, "the body must be a JSON object")
        return data

    async def rollback(request: Request) -> Response:
        kind, ns, name = where(request)
        product(request)
        revision = (await body(request)).get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool):
            raise actions.ActionError(400, "revision: a revision number")
        text = await anyio.to_thread.run_sync(actions.rollback, settings.config, kind, ns, name, revision)
        return JSONResponse({"message": text}, headers=SECURITY_HEADERS)

    async def suspend(request: Request) -> Response:
        kind, ns, name = where(request)
        product(request)
        value = (await body(request)).get("suspend")
        if not isinstance(value, bool):
            raise actions.ActionError(400, "suspend: true or false")
        text = await anyio.to_thread.run_sync(actions.suspend, settings.config, kind, ns, name, value)
        return JSONResponse({"message": text}, headers=SECURITY_HEADERS)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, actions.ActionError)
        return JSONResponse({"error": exc.message}, exc.status, headers=SECURITY_HEADERS)

    async def api_error(request: Request, exc: Exception) -> Response:
        try:
            raise actions._refusal(exc)
        except actions.ActionError as refusal:
            return await refused(request, refusal)

    from lightkube import ApiError

    base = "/api/i/{kind}/{namespace}/{name}"
    app = Starlette(
        routes=[
            Route("/", page),
            Route("/static/{file}", static),
            Route("/api/overview", overview),
            Route(base, one),
            Route(base + "/history", history),
            Route(base + "/diff", diff),
            Route(base + "/export/{fmt}", exported),
            Route(base + "/rollback", rollback, methods=["POST"]),
            Route(base + "/suspend", suspend, methods=["POST"]),
        ],
        exception_handlers={actions.ActionError: refused, ApiError: api_error},
        lifespan=lifespan,
    )
    return Guarded(app, settings.guard)
