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
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import msgspec
from lightkube import AsyncClient, KubeConfig
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
from d3os_core.times import format_time
from d3os_core.types import Event, ObjectRef

from . import __version__

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
"""Connections to the API server: unbounded, because every informer holds one watch open per namespace
(8 kinds x N namespaces with ``--namespace``); httpx's default of 100 starved lists and writes past 12
namespaces (PoolTimeout). Idle ones are kept longer, so busy workers do not pay a TLS handshake each."""


def make_client(config: KubeConfig, *, context: str | None = None, timeout: float = 15.0) -> AsyncClient:
    single = config.get(context) if context else config.get()
    client = AsyncClient(single, timeout=httpx2.Timeout(timeout), trust_env=False)
    # lightkube builds the httpx client with the default pool; swap in a transport with the same TLS
    # settings (CA, client certificate) and our limits.
    http = client._client._client
    ssl_context = http._transport._pool._ssl_context
    http._transport = httpx2.AsyncHTTPTransport(verify=ssl_context or True, trust_env=False, limits=POOL)
    return client


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
        """Write requests sent, by (verb, kind): verb in apply/apply-status/patch/create/delete."""
        self.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
        http = self._http()
        http.headers["User-Agent"] = user_agent
        http.event_hooks["request"].append(self._count_request)
        http.event_hooks["response"].append(self._count_response)
        self.on_response: Callable[[int, str, str], None] | None = None
        """Called with (status code, method, host) for every response (``rest_client_requests_total``)."""
        self.on_duration: Callable[[str, str, float], None] | None = None
        """Called with (method, host, seconds from sending to the response headers) for every response."""

    def _http(self) -> httpx2.AsyncClient:
        return self.client._client._client

    async def _count_request(self, request: httpx2.Request) -> None:
        self.http_requests[request.method] += 1
        request.extensions["d3os_sent_at"] = time.monotonic()

    async def _count_response(self, response: httpx2.Response) -> None:
        req = response.request
        host = req.url.netloc.decode("ascii", "replace")
        if self.on_response is not None:
            self.on_response(response.status_code, req.method, host)
        sent = req.extensions.get("d3os_sent_at")
        if self.on_duration is not None and sent is not None:
            self.on_duration(req.method, host, time.monotonic() - sent)

    @property
    def write_count(self) -> int:
        return sum(self.writes.values())

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- reads -------------------------------------------------------------------------------------------

    async def list_objects(
        self, info: KindInfo, namespace: str, labels: Mapping[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """All objects of a kind in ``namespace`` (or :data:`ALL_NAMESPACES`), and the resourceVersion."""
        it = self.client.list(info.res, namespace=namespace, labels=dict(labels) if labels else None, chunk_size=500)
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
        server_timeout: int = 300,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """One watch request: yields ``(type, object)`` until the server closes the stream.

        lightkube's own ``watch`` reconnects forever and hides where one request ends; the informer
        needs each request bounded (``timeoutSeconds`` plus its own overall deadline) and needs every
        error, a 410 above all, whether it comes as an HTTP status or as an ERROR event. BOOKMARK events
        (requested) are yielded too, so the caller can keep its resourceVersion fresh.
        """
        inner = self.client._client
        params: dict[str, Any] = {
            "timeoutSeconds": server_timeout,
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version or None,
            "labelSelector": build_selector(dict(labels)) if labels else None,
        }
        br = inner.prepare_request("list", res=info.res, namespace=namespace, watch=True, params=params)
        req = inner._client.build_request(br.method, br.url, params=br.params, timeout=inner._watch_timeout)
        resp = await inner.send(req, stream=True)  # type: ignore[no-untyped-call]
        try:
            if resp.status_code >= 400:
                await resp.aread()
                inner.raise_for_status(resp)  # type: ignore[no-untyped-call]
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                event = decoders.decode_watch_event(line)
                if event.type == "ERROR":
                    raise ApiError(status=decoders.decode_status(event.object))
                yield event.type, msgspec.json.decode(event.object)
        finally:
            with anyio.CancelScope(shield=True):
                await resp.aclose()

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        info = kind_info(api_version, kind)
        try:
            return plain(await self.client.get(info.res, name, namespace=namespace))
        except ApiError as e:
            if e.status.code == 404:
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

    async def apply(self, manifest: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply ``manifest`` (a fresh desired object carrying apiVersion/kind/metadata)."""
        info = kind_info(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        self.writes[("apply", info.kind)] += 1
        out = await self.client.patch(
            info.res,
            meta["name"],
            dict(manifest),
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
        inner = self.client._client
        br = inner.prepare_request("delete", res=info.res, name=ref.name, namespace=ref.namespace)
        br.data = body
        self.writes[("delete", info.kind)] += 1
        req = inner.build_adapter_request(br)
        resp = await inner.send(req)  # type: ignore[no-untyped-call]
        try:
            inner.raise_for_status(resp)  # type: ignore[no-untyped-call]
        except ApiError as e:
            if e.status.code == 404:
                return None
            raise
        try:
            answer = resp.json()
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}

    async def apply_status(self, parent: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
        """Write the DataService's whole status through the status subresource (server-side apply:
        fields this manager set before and left out now are removed)."""
        meta = parent["metadata"]
        body = {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "status": dict(status),
        }
        self.writes[("apply-status", api.KIND)] += 1
        out = await self.client.patch(
            DataService.Status,
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
        self.writes[("patch", api.KIND)] += 1
        out = await self.client.patch(
            DataService, meta["name"], body, namespace=meta["namespace"], patch_type=PatchType.MERGE
        )
        return plain(out)

    async def create_event(self, parent: Mapping[str, Any], event: Event) -> None:
        """Record a core/v1 Event on the DataService."""
        meta = parent["metadata"]
        now = _now_rfc3339()
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": api.API_VERSION,
                "kind": api.KIND,
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
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.writes[("create", "Event")] += 1
        await self.client.create(EVENT.res(**body))


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
