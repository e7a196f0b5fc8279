"""The operator's one door to the API server: client setup, resource types, and the writes it makes.

Every object is handled as a plain dict in API JSON form (that is what the core reads and returns),
so builtin kinds are declared here as *unregistered* generic lightkube resources: they decode to dicts
and never clash with lightkube's typed models, which other code in the same process may load.
The DataService itself is the generic resource from
``lightkube.generic_resource.create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)``.

:class:`Kube` counts every request it sends (by HTTP method and by verb/kind), so tests and the
steady-state check can prove the operator wrote nothing.
"""

from __future__ import annotations

import collections
import os
import socket
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import msgspec
from lightkube import AsyncClient, KubeConfig
from lightkube.config.client_adapter import user_auth, verify_cluster
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core import decoders
from lightkube.core import resource as lkres
from lightkube.core.exceptions import ApiError
from lightkube.core.generic_client import ALL_NS
from lightkube.core.selector import build_selector
from lightkube.generic_resource import (
    GenericNamespacedResource,
    GenericNamespacedStatus,
    create_api_info,
    create_namespaced_resource,
)
from lightkube.types import PatchType

from d3os_core import api
from d3os_core.product import CrdNames
from d3os_core.times import format_time
from d3os_core.types import Event, ObjectRef

from . import __version__
from .apierrors import Answer, classify
from .netstreams import PooledTransport

USER_AGENT = f"d3os-operator/{__version__}"
ALL_NAMESPACES = ALL_NS


@dataclass(frozen=True)
class KindInfo:
    """One namespaced kind the operator reads or writes."""

    api_version: str
    kind: str
    plural: str
    res: type[GenericNamespacedResource]

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


def _unregistered_resource(api_version: str, kind: str, plural: str) -> type[GenericNamespacedResource]:
    group, _, version = api_version.rpartition("/")
    info = create_api_info(group, version, kind, plural)

    status_info = lkres.ApiInfo(
        resource=info.resource,
        parent=info.resource,
        plural=plural,
        verbs=["get", "patch", "put"],
        action="status",
    )
    status_cls = type(f"{kind}Status", (GenericNamespacedStatus,), {"_api_info": status_info})
    cls = type(kind, (GenericNamespacedResource,), {"_api_info": info, "Status": status_cls})
    return cast(type[GenericNamespacedResource], cls)


_PLURALS = api.PLURALS  # the core's kinds table

DataService = create_namespaced_resource(api.GROUP, api.VERSION, api.KIND, api.PLURAL)
DATASERVICE = KindInfo(api.API_VERSION, api.KIND, api.PLURAL, DataService)

OWNED: tuple[KindInfo, ...] = tuple(
    KindInfo(av, kind, _PLURALS[kind], _unregistered_resource(av, kind, _PLURALS[kind])) for av, kind in api.OWNED_KINDS
)
EVENT = KindInfo("v1", "Event", "events", _unregistered_resource("v1", "Event", "events"))

_BY_GVK: dict[tuple[str, str], KindInfo] = {(k.api_version, k.kind): k for k in (*OWNED, DATASERVICE, EVENT)}


def product_kind(names: CrdNames) -> KindInfo:
    """The :class:`KindInfo` of a product's custom resource (made once per kind, then found by apiVersion/kind)."""
    found = _BY_GVK.get((api.API_VERSION, names.kind))
    if found is None:
        res = create_namespaced_resource(api.GROUP, api.VERSION, names.kind, names.plural)
        found = KindInfo(api.API_VERSION, names.kind, names.plural, res)
        _BY_GVK[(api.API_VERSION, names.kind)] = found
    return found


def parent_kind(parent: Mapping[str, Any]) -> KindInfo:
    """The kind of a product instance (the informers stamp apiVersion and kind on every cached instance)."""
    return _BY_GVK[(str(parent.get("apiVersion") or api.API_VERSION), str(parent.get("kind") or api.KIND))]


def kind_info(api_version: str, kind: str) -> KindInfo:
    """The :class:`KindInfo` for ``apiVersion``/``kind``; builtin namespaced kinds are added on demand."""
    found = _BY_GVK.get((api_version, kind))
    if found is None:
        plural = _PLURALS.get(kind)
        if plural is None:
            raise KeyError(f"the operator does not know the kind {api_version}/{kind}")
        found = KindInfo(api_version, kind, plural, _unregistered_resource(api_version, kind, plural))
        _BY_GVK[(api_version, kind)] = found
    return found


def collection_path(info: KindInfo, namespace: str) -> str:
    """The REST path of a kind's collection in ``namespace`` (or every namespace: :data:`ALL_NAMESPACES`)."""
    root = f"/apis/{info.api_version}" if "/" in info.api_version else f"/api/{info.api_version}"
    if namespace == ALL_NAMESPACES:
        return f"{root}/{info.plural}"
    return f"{root}/namespaces/{namespace}/{info.plural}"


def object_path(info: KindInfo, namespace: str, name: str) -> str:
    return f"{collection_path(info, namespace)}/{name}"


class WatchEvent(msgspec.Struct):
    type: str
    object: dict[str, Any]


def raise_for_status(resp: httpx2.Response) -> None:
    """Raise an answer of 400 or more as lightkube's ApiError (a Status body) or httpx's own error."""
    if resp.status_code < 400:
        return
    try:
        error = ApiError(request=resp.request, response=resp)
    except Exception:  # not a Status body (a proxy's page, say)
        resp.raise_for_status()
        raise
    raise error


def load_config(kubeconfig: str | None = None, context: str | None = None, in_cluster: bool = False) -> KubeConfig:
    """Client configuration: ``--kubeconfig`` file, else the service account (in cluster),
    else ``$KUBECONFIG``, else ``~/.kube/config`` (lightkube's order)."""
    if kubeconfig:
        return KubeConfig.from_file(Path(kubeconfig))
    if in_cluster:
        return KubeConfig.from_service_account(service_account_dir())
    return KubeConfig.from_env()


def service_account_dir() -> str:
    """The pod's service account files (``$D3OS_SERVICE_ACCOUNT_DIR`` overrides, for tests)."""
    return os.environ.get("D3OS_SERVICE_ACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")


POOL = httpx2.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=60.0)
"""Connections for watches (HTTP/1.1, one each): unbounded, because every informer holds one watch open per
namespace (8 kinds x N namespaces with ``--namespace``); httpx's default of 100 starved lists and writes past
12 namespaces (PoolTimeout)."""
REQUESTS_POOL = httpx2.Limits(max_connections=16, max_keepalive_connections=16, keepalive_expiry=120.0)
"""Connections for every other request: HTTP/1.1 keep-alive connections, up to 16 (4 workers' waves, the
status writer and the Events in flight at once), each opened once. HTTP/2 (``--http2``) multiplexes them
over one connection instead, but a request costs more CPU that way: 1,500 ConfigMap applies, 8 at a time,
took 2.4 ms of this process's CPU and 3.7 ms of the API server's each over HTTP/2, 1.7 and 2.9 ms over
HTTP/1.1 (h2 and hpack are pure Python, and the server's HTTP/2 framing costs more than its HTTP/1.1)."""
REQUEST_TIMEOUT = httpx2.Timeout(15.0)
WATCH_TIMEOUT = httpx2.Timeout(15.0, read=None)
"""A watch stream may stay silent between events: no read timeout (the informer bounds each watch itself)."""


def _http2_available() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


class ApiTransport(httpx2.AsyncBaseTransport):
    """The operator's connections to the API server, built from the kubeconfig with public APIs only.

    TLS comes from lightkube's own ``verify_cluster`` (CA, client certificate), so it matches what lightkube
    would use. Every request passes through :meth:`handle_async_request`, which stamps the User-Agent and
    reports each request (counting, ``rest_client_*`` metrics) to the :class:`Kube` listening.
    """

    def __init__(self, config: SingleConfig, *, http2: bool, limits: httpx2.Limits) -> None:
        if config.user is None:
            raise ValueError("the kubeconfig context names no user")
        verify = verify_cluster(config.cluster, config.user, config.abs_file, trust_env=False)
        self.http2 = http2 and _http2_available()
        self._inner = PooledTransport(verify, http2=self.http2, limits=limits)
        self.user_agent = USER_AGENT
        self.on_request: Callable[[httpx2.Request], None] | None = None
        self.on_response: Callable[[httpx2.Request, httpx2.Response, float], None] | None = None
        self._closed = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["User-Agent"] = self.user_agent
        if self.on_request is not None:
            self.on_request(request)
        sent = time.monotonic()
        response = await self._inner.handle_async_request(request)
        if self.on_response is not None:
            self.on_response(request, response, time.monotonic() - sent)
        return response

    async def aclose(self) -> None:
        if not self._closed:  # shared by two clients: close once
            self._closed = True
            await self._inner.aclose()


@dataclass
class Connection:
    """What :class:`Kube` needs besides lightkube's client: the raw client for watches (HTTP/1.1, a
    connection each) and the transports whose requests it counts."""

    config: SingleConfig
    requests: ApiTransport
    watches: ApiTransport

    def raw_client(self, *, watches: bool) -> httpx2.AsyncClient:
        """A plain httpx client on one of the transports, for what lightkube's API does not offer
        (a watch stream as it comes, a delete with preconditions)."""
        return httpx2.AsyncClient(
            base_url=self.config.cluster.server, auth=user_auth(self.config.user),
            transport=self.watches if watches else self.requests,
            timeout=WATCH_TIMEOUT if watches else REQUEST_TIMEOUT, trust_env=False,
        )


_CONNECTIONS: weakref.WeakKeyDictionary[AsyncClient, Connection] = weakref.WeakKeyDictionary()


def make_client(
    config: KubeConfig | SingleConfig, *, context: str | None = None, timeout: float = 15.0, http2: bool = False
) -> AsyncClient:
    """lightkube's client on our transport (HTTP/1.1, or HTTP/2 with ``http2`` when the ``h2`` package is
    there: see :data:`REQUESTS_POOL`): lightkube's public ``transport`` parameter, never its private
    attributes."""
    single = config if isinstance(config, SingleConfig) else (config.get(context) if context else config.get())
    if single is None:
        raise ValueError("the kubeconfig has no current context")
    conn = Connection(
        single,
        ApiTransport(single, http2=http2, limits=REQUESTS_POOL),
        ApiTransport(single, http2=False, limits=POOL),
    )
    client = AsyncClient(single, timeout=httpx2.Timeout(timeout), trust_env=False, transport=conn.requests)
    _CONNECTIONS[client] = conn
    return client


CREATE_ONLY_VERSION = "1"
"""resourceVersion sent with a create-only server-side apply. The API server creates a missing object
whatever resourceVersion the apply carries, and refuses one that exists unless its resourceVersion matches
(409 Conflict). No object ever has resourceVersion 1: etcd's first write is revision 2."""


def _now_rfc3339() -> str:
    return format_time(time.time())


def plain(obj: Any) -> dict[str, Any]:
    """A decoded object as a plain dict (generic resources are already dict subclasses)."""
    if isinstance(obj, dict):
        return dict(obj)
    return cast(dict[str, Any], obj.to_dict())


class Kube:
    """Thin async wrapper that sends the operator's requests and counts them."""

    def __init__(
        self, client: AsyncClient, *, field_manager: str = api.FIELD_MANAGER, user_agent: str = USER_AGENT
    ) -> None:
        self.client = client
        self.field_manager = field_manager
        self.http_requests: collections.Counter[str] = collections.Counter()
        """Requests sent, by HTTP method (GET/POST/PATCH/PUT/DELETE), watches included."""
        self.writes: collections.Counter[tuple[str, str]] = collections.Counter()
        """Write requests sent, by (verb, kind): verb in apply/create/apply-status/patch/delete/..."""
        self.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
        conn = _CONNECTIONS.get(client)
        if conn is None:  # a client made elsewhere: its requests are not counted, watches get their own transport
            config = client.config
            if config is None:
                raise ValueError("the client has no configuration")
            conn = Connection(config, ApiTransport(config, http2=False, limits=REQUESTS_POOL),
                              ApiTransport(config, http2=False, limits=POOL))
        self.connection = conn
        for transport in (conn.requests, conn.watches):
            transport.user_agent = user_agent
            transport.on_request = self._count_request
            transport.on_response = self._count_response
        self._watch_http = conn.raw_client(watches=True)
        self._raw_http = conn.raw_client(watches=False)
        self.on_response: Callable[[int, str, str], None] | None = None
        """Called with (status code, method, host) for every response (``rest_client_requests_total``)."""
        self.on_duration: Callable[[str, str, float], None] | None = None
        """Called with (method, host, seconds from sending to the response headers) for every response."""

    @property
    def http(self) -> httpx2.AsyncClient:
        """A plain httpx client to the API server (base URL, credentials, counted), for paths lightkube has no
        resource for (``/api``, ``/.well-known``...)."""
        return self._raw_http

    @property
    def http2(self) -> bool:
        """True when ordinary requests go over HTTP/2 (watches always use HTTP/1.1 connections of their own)."""
        return self.connection.requests.http2

    def _count_request(self, request: httpx2.Request) -> None:
        self.http_requests[request.method] += 1

    def _count_response(self, request: httpx2.Request, response: httpx2.Response, seconds: float) -> None:
        host = request.url.netloc.decode("ascii", "replace")
        if self.on_response is not None:
            self.on_response(response.status_code, request.method, host)
        if self.on_duration is not None:
            self.on_duration(request.method, host, seconds)

    @property
    def write_count(self) -> int:
        return sum(self.writes.values())

    async def aclose(self) -> None:
        await self._watch_http.aclose()
        await self._raw_http.aclose()
        await self.client.aclose()

    # -- reads -------------------------------------------------------------------------------------------

    async def list_objects(
        self,
        info: KindInfo,
        namespace: str,
        labels: Mapping[str, Any] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """All objects of a kind in ``namespace`` (or :data:`ALL_NAMESPACES`), and the resourceVersion.

        ``fields``: a field selector (``{"metadata.name": "kubernetes"}``); the API server authorizes a
        list or watch with a single ``metadata.name=`` selector against a rule's resourceNames."""
        it = self.client.list(info.res, namespace=namespace, labels=dict(labels) if labels else None,
                              fields=dict(fields) if fields else None, chunk_size=500)
        items = [plain(o) async for o in it]
        try:
            rv = it.resourceVersion
        except Exception:  # an empty list may not set it when iteration yields no chunk
            rv = ""
        return items, rv

    async def watch(
        self,
        info: KindInfo,
        namespace: str,
        *,
        resource_version: str,
        labels: Mapping[str, Any] | None = None,
        fields: Mapping[str, str] | None = None,
        server_timeout: int = 300,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """One watch request: yields ``(type, object)`` until the server closes the stream.

        lightkube's own ``watch`` reconnects forever and hides where one request ends; the informer
        needs each request bounded (``timeoutSeconds`` plus its own overall deadline) and needs every
        error, a 410 above all, whether it comes as an HTTP status or as an ERROR event. BOOKMARK events
        (requested) are yielded too, so the caller can keep its resourceVersion fresh.
        """
        params: dict[str, Any] = {
            "watch": "true",
            "timeoutSeconds": server_timeout,
            "allowWatchBookmarks": "true",
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        if labels:
            params["labelSelector"] = build_selector(dict(labels))
        if fields:
            params["fieldSelector"] = build_selector(dict(fields), for_fields=True)
        req = self._watch_http.build_request("GET", collection_path(info, namespace), params=params)
        resp = await self._watch_http.send(req, stream=True)
        try:
            if resp.status_code >= 400:
                await resp.aread()
                raise_for_status(resp)
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                event = msgspec.json.decode(line, type=WatchEvent)
                if event.type == "ERROR":
                    raise ApiError(status=decoders.decode_status(msgspec.json.encode(event.object)))
                yield event.type, event.object
        finally:
            with anyio.CancelScope(shield=True):
                await resp.aclose()

    async def get_cluster_object(self, path: str) -> dict[str, Any] | None:
        """GET a cluster-scoped object by its REST path (a CRD at start); None when it does not exist."""
        resp = await self._raw_http.get(path)
        if resp.status_code == 404:
            return None
        raise_for_status(resp)
        answer = msgspec.json.decode(resp.content)
        return answer if isinstance(answer, dict) else None

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        info = kind_info(api_version, kind)
        try:
            return plain(await self.client.get(info.res, name, namespace=namespace))
        except ApiError as e:
            if classify(e) is Answer.GONE:
                return None
            raise

    # -- writes ------------------------------------------------------------------------------------------

    async def take_over_fields(self, live: Mapping[str, Any]) -> dict[str, Any] | None:
        """Move the fields that hand edits own (``kubectl edit/patch/apply...``) to our field manager.

        Server-side apply removes only fields its own manager set before: a list entry a person re-keyed
        by hand (say a Service port edited from 9085 to 9999) would otherwise stay beside the desired one,
        and the object could never be restored (the apply is even refused: two ports named ``http``).
        Reassigning those managedFields entries to our manager first lets the next apply remove whatever
        is not desired -- fluxcd's ``ssa`` does the same. Fields of controllers are never touched.
        Returns the updated object, or None when no hand-edited field was found.

        ``live`` may be an informer's copy, whose managedFields are only a summary without field sets
        (:mod:`d3os_operator.cachefilter`): when it names a hand edit, the object is read whole first.
        """
        meta = live.get("metadata") or {}
        entries = list(meta.get("managedFields") or [])
        human = [e for e in entries if is_hand_edit_manager(str(e.get("manager", "")))]
        if not human:
            return None
        if any("fieldsV1" not in e for e in human):
            full = await self.get(str(live.get("apiVersion")), str(live.get("kind")), meta.get("namespace") or "",
                                  meta["name"])
            if full is None:
                return None  # gone: the apply creates it anew
            meta = full.get("metadata") or {}
            entries = list(meta.get("managedFields") or [])
            human = [e for e in entries if is_hand_edit_manager(str(e.get("manager", "")))]
            if not human:
                return None
            live = full
        mine = [
            e
            for e in entries
            if e.get("manager") == self.field_manager and e.get("operation") == "Apply" and not e.get("subresource")
        ]
        others = [e for e in entries if e not in human and e not in mine]
        fields: dict[str, Any] = {}
        api_version = live.get("apiVersion")
        for e in (*mine, *[h for h in human if not h.get("subresource")]):
            _merge_fields(fields, e.get("fieldsV1") or {})
            api_version = e.get("apiVersion") or api_version
        merged = {
            "manager": self.field_manager,
            "operation": "Apply",
            "apiVersion": api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
            "time": _now_rfc3339(),
        }
        keep_sub = [h for h in human if h.get("subresource")]  # e.g. a hand-edited status: not ours
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
            {"op": "replace", "path": "/metadata/managedFields", "value": [*others, *keep_sub, merged]},
        ]
        info = kind_info(str(live.get("apiVersion")), str(live.get("kind")))
        self.writes[("take-over", info.kind)] += 1
        out = await self.client.patch(
            info.res, meta["name"], patch, namespace=meta.get("namespace"), patch_type=PatchType.JSON
        )
        return plain(out)

    async def apply(
        self, manifest: Mapping[str, Any], *, force: bool = True, create_only: bool = False
    ) -> dict[str, Any]:
        """Server-side apply ``manifest`` (a fresh desired object carrying apiVersion/kind/metadata).

        ``create_only``: create the object, or fail with 409 Conflict if anything already holds the name
        (:data:`CREATE_ONLY_VERSION`) -- one request instead of a GET then an apply, and still never a
        take-over of a stranger's object. The object is created by server-side apply, so its fields are
        owned by our Apply entry exactly as after any later apply (a POST would make them an Update entry's,
        which a later apply could never remove).
        """
        info = kind_info(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        body = dict(manifest)
        if create_only:
            body["metadata"] = {**meta, "resourceVersion": CREATE_ONLY_VERSION}
        self.writes[("create" if create_only else "apply", info.kind)] += 1
        out = await self.client.patch(
            info.res,
            meta["name"],
            body,
            namespace=meta["namespace"],
            patch_type=PatchType.APPLY,
            field_manager=self.field_manager,
            force=force,
        )
        return plain(out)

    async def delete(self, ref: ObjectRef) -> dict[str, Any] | None:
        """Delete with a uid precondition and foreground propagation.

        Returns what the API answered (the object, still finalizing, or a Status), None when the object
        was already gone (404). A failed uid precondition raises ApiError 409.
        """
        info = kind_info(ref.api_version, ref.kind)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Foreground",
        }
        if ref.uid:
            body["preconditions"] = {"uid": ref.uid}
        self.writes[("delete", info.kind)] += 1
        resp = await self._raw_http.request(
            "DELETE", object_path(info, ref.namespace, ref.name), content=msgspec.json.encode(body),
            headers={"Content-Type": "application/json"},
        )
        if resp.status_code == 404:
            return None
        raise_for_status(resp)
        try:
            answer = msgspec.json.decode(resp.content)
        except msgspec.DecodeError:
            return {}
        return answer if isinstance(answer, dict) else {}

    async def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
        """Write an instance's whole status through the status subresource (server-side apply:
        fields this manager set before and left out now are removed)."""
        meta = parent["metadata"]
        info = parent_kind(parent)
        body = {
            "apiVersion": info.api_version,
            "kind": info.kind,
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "status": dict(status),
        }
        self.writes[("apply-status", info.kind)] += 1
        out = await self.client.patch(
            info.res.Status,  # type: ignore[attr-defined]
            meta["name"],
            body,
            namespace=meta["namespace"],
            patch_type=PatchType.APPLY,
            field_manager=self.field_manager,
            force=True,
        )
        return plain(out)

    async def set_finalizers(self, parent: Mapping[str, Any], finalizers: list[str]) -> dict[str, Any]:
        """JSON merge patch of ``metadata.finalizers`` only, guarded by the resourceVersion we read."""
        meta = parent["metadata"]
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        info = parent_kind(parent)
        self.writes[("patch", info.kind)] += 1
        out = await self.client.patch(
            info.res, meta["name"], body, namespace=meta["namespace"], patch_type=PatchType.MERGE
        )
        return plain(out)

    async def create_event(
        self, parent: Mapping[str, Any], event: Event, *, count: int = 1, first: str | None = None,
        last: str | None = None,
    ) -> str:
        """Record a core/v1 Event on the instance; returns its name (for :meth:`update_event`)."""
        meta = parent["metadata"]
        info = parent_kind(parent)
        now = _now_rfc3339()
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": info.api_version,
                "kind": info.kind,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event.type,
            "reason": event.reason[:128],
            "message": event.message[:1024],
            "action": event.reason[:128],
            "source": {"component": api.FIELD_MANAGER},
            "reportingComponent": api.FIELD_MANAGER,
            "reportingInstance": self.reporting_instance[:128],
            "firstTimestamp": first or now,
            "lastTimestamp": last or now,
            "count": count,
        }
        self.writes[("create", "Event")] += 1
        out = await self.client.create(EVENT.res(**body))
        return str(plain(out)["metadata"]["name"])

    async def update_event(self, namespace: str, name: str, *, count: int, last: str, message: str) -> None:
        """Bring an Event up to date with its repeats (count, lastTimestamp, latest message), as client-go's
        event correlator does; raises ApiError 404 when the Event expired meanwhile."""
        body = {"count": count, "lastTimestamp": last, "message": message[:1024]}
        self.writes[("patch", "Event")] += 1
        await self.client.patch(EVENT.res, name, body, namespace=namespace, patch_type=PatchType.MERGE)


HAND_EDIT_MANAGERS = ("kubectl", "before-first-apply")
"""Field managers of people's edits (``kubectl``, ``kubectl-edit``, ``kubectl-patch``,
``kubectl-client-side-apply``, ...), whose fields a re-apply takes over; see :meth:`Kube.take_over_fields`."""


def is_hand_edit_manager(manager: str) -> bool:
    return any(manager == m or manager.startswith(m + "-") for m in HAND_EDIT_MANAGERS)


def _merge_fields(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    """Union of two FieldsV1 sets (nested dicts whose leaves are ``{}``)."""
    for k, v in more.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _merge_fields(into[k], v)
        elif isinstance(v, Mapping):
            into[k] = {}
            _merge_fields(into[k], v)
        else:
            into[k] = v


def api_error_text(e: BaseException) -> str:
    """A short description of an API or transport error for logs, events and status."""
    if isinstance(e, ApiError):
        return f"{e.status.code} {e.status.reason}: {e.status.message}"
    return f"{type(e).__name__}: {e}"
