"""The addresses the probe policy protects beyond its built-in refusals: found at start, then followed.

At start (:func:`protected_addresses`): what the generated RBAC lets the operator read, once. Then
(:class:`ClusterAddresses`): watches of the ``kubernetes`` Service and EndpointSlice in ``default`` (by name:
the field selector ``metadata.name=kubernetes``, so that the generated Role there grants these two objects
and nothing else; the API server keeps every API server's address in that one slice), the nodes, and the
Services, EndpointSlices and Pods of the operator's namespace, so API servers added or moved, the standby
replica, the metrics Service's ClusterIP and every kubelet are protected as they change; the decision of
what is protected is the core's (:mod:`d3os_core.protected`). The generated RBAC grants each of these
watches (:mod:`d3os_core.rbacrules`: ``probe_target_rules``, ``probe_node_rules``,
``own_namespace_probe_rules``).

The Kubernetes API server (the address the operator itself talks to, the ``kubernetes`` Service's
ClusterIP in ``default`` and that Service's EndpointSlice, or Endpoints) and the operator's own pod (``POD_IP`` /
``POD_IPS`` from the downward API): a DataService author must not learn through a probe whether they
answer. Each source is best effort -- a read the operator may not make (RBAC) is logged and skipped, the
others still count -- and nothing here can stop the operator from starting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from d3os_core.probe_policy import ip_literal
from d3os_core.protected import API_SERVER as API_SERVER
from d3os_core.protected import OWN_POD as OWN_POD
from d3os_core.protected import protected

from .informer import Informer
from .kube import ALL_NAMESPACES, KindInfo, Kube, _unregistered_resource
from .probes import Resolver, system_resolver

log = logging.getLogger("d3os_operator.probes")

READ_TIMEOUT = 10.0


async def protected_addresses(
    kube: Kube, *, resolver: Resolver = system_resolver, env: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(address, what) pairs for :meth:`d3os_core.probe_policy.ProbePolicy.with_protected`, read once."""
    env = os.environ if env is None else env
    api_server: list[str] = []
    http = kube.http
    host = http.base_url.host
    if host:
        literal = ip_literal(host)
        if literal is not None:
            api_server.append(str(literal))
        else:
            try:
                with anyio.fail_after(READ_TIMEOUT):
                    api_server.extend(await resolver(host, http.base_url.port or 443))
            except Exception as e:
                log.warning("probe policy: cannot resolve the API server's host", extra={"host": host, "error": str(e)})
    api_server.append(env.get("KUBERNETES_SERVICE_HOST") or "")

    async def read(path: str) -> dict[str, Any] | None:
        try:
            with anyio.fail_after(READ_TIMEOUT):
                resp = await http.get(path)
        except Exception as e:
            log.info("probe policy: cannot read %s", path, extra={"error": str(e) or type(e).__name__})
            return None
        if resp.status_code != 200:
            # the operator's RBAC need not allow it (nor the cluster have it): info, not a warning per start
            log.info(
                "probe policy: cannot read %s (HTTP %s); name those addresses with --probe-deny-cidr",
                path,
                resp.status_code,
            )
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    service = await read("/api/v1/namespaces/default/services/kubernetes")
    # the API server keeps an EndpointSlice "kubernetes" (and, on older versions, the Endpoints) of itself
    endpoint_slice = await read("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
    endpoints = None if endpoint_slice is not None else await read("/api/v1/namespaces/default/endpoints/kubernetes")
    return protected(
        api_server=api_server,
        kubernetes_services=[service] if service else [],
        kubernetes_endpoint_slices=[endpoint_slice] if endpoint_slice else [],
        kubernetes_endpoints=[endpoints] if endpoints else [],
        own_pod=[env.get("POD_IP") or "", *(env.get("POD_IPS") or "").split(",")],
    )


# -- following the cluster ------------------------------------------------------------------------------------

SERVICE = KindInfo("v1", "Service", "services", _unregistered_resource("v1", "Service", "services"))
ENDPOINT_SLICE = KindInfo("discovery.k8s.io/v1", "EndpointSlice", "endpointslices",
                          _unregistered_resource("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"))
POD = KindInfo("v1", "Pod", "pods", _unregistered_resource("v1", "Pod", "pods"))
NODE = KindInfo("v1", "Node", "nodes", _unregistered_resource("v1", "Node", "nodes"))
KUBERNETES = {"metadata.name": "kubernetes"}
"""The field selector of the ``default`` watches: the API server's ``kubernetes`` Service and the EndpointSlice
it keeps of itself, by name -- a list or watch with a single ``metadata.name=`` field selector is authorized
against a rule's resourceNames, so the Role in ``default`` grants these objects only
(:func:`d3os_core.rbacrules.probe_target_rules`)."""
WATCH_BACKOFF = 300.0
"""Longest wait between two tries of a watch the operator may not make (RBAC): the start's set still holds."""


def operator_namespace(env: Mapping[str, str] | None = None) -> str | None:
    """The operator's namespace in a cluster (``POD_NAMESPACE``, else the service account's); None outside."""
    env = os.environ if env is None else env
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    from .kube import service_account_dir

    try:
        with open(os.path.join(service_account_dir(), "namespace"), encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


class ClusterAddresses:
    """Watches what :mod:`d3os_core.protected` reads and keeps ``target.policy`` protecting exactly what it
    says, plus what was found at start (:func:`protected_addresses`; a protection never lapses because a
    watch is refused). ``target`` is the probe manager (anything with a ``policy`` attribute)."""

    def __init__(self, kube: Kube, target: Any, start: Sequence[tuple[str, str]], namespace: str | None) -> None:
        self.kube = kube
        self.target = target
        self.start = list(start)
        self.namespace = namespace
        self.changed = anyio.Event()
        self.updates = 0

        def informer(info: KindInfo, namespaces: list[str] | None, fields: Mapping[str, str] | None = None) -> Informer:
            return Informer(kube, info, namespaces, handler=self._on_change, fields=fields, max_backoff=WATCH_BACKOFF)

        self.informers: dict[str, Informer] = {
            "kubernetes_services": informer(SERVICE, ["default"], KUBERNETES),
            "kubernetes_endpoint_slices": informer(ENDPOINT_SLICE, ["default"], KUBERNETES),
            "nodes": informer(NODE, None),
        }
        if namespace:
            self.informers.update({
                "namespace_services": informer(SERVICE, [namespace]),
                "namespace_endpoint_slices": informer(ENDPOINT_SLICE, [namespace]),
                "namespace_pods": informer(POD, [namespace]),
            })

    def _on_change(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self.changed.set()

    def pairs(self) -> list[tuple[str, str]]:
        """What is protected now: the start's set and the watched objects' (pure: :func:`protected`)."""
        def cached(name: str) -> list[dict[str, Any]]:
            informer = self.informers.get(name)
            return list(informer.store.values()) if informer is not None else []

        watched = protected(
            kubernetes_services=cached("kubernetes_services"),
            kubernetes_endpoint_slices=cached("kubernetes_endpoint_slices"),
            namespace_services=cached("namespace_services"),
            namespace_endpoint_slices=cached("namespace_endpoint_slices"),
            namespace_pods=cached("namespace_pods"),
            nodes=cached("nodes"),
        )
        seen = {a for a, _ in self.start}
        return self.start + [(a, w) for a, w in watched if a not in seen]

    def apply(self) -> None:
        policy = self.target.policy
        new = policy.protecting(self.pairs())
        if new != policy:
            self.target.policy = new
            self.updates += 1
            log.info("probe policy: protected addresses changed",
                     extra={"protected": ",".join(f"{n.network_address}" for n, _ in new.protected)})

    async def allowed(self, informer: Informer) -> bool:
        """May the operator list and watch what ``informer`` reads? Asked first (a SelfSubjectAccessReview,
        which every user may send), so a watch the RBAC does not grant is skipped with one line, not retried
        against refusals: what start found still holds."""
        group = informer.info.group
        namespace = "" if informer.scopes == (ALL_NAMESPACES,) else informer.scopes[0]
        # by name (a metadata.name field selector): asked as the API server authorizes that list and watch
        name = (informer.fields or {}).get("metadata.name")
        for verb in ("list", "watch"):
            attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": informer.info.plural}
            if name:
                attributes["name"] = name
            try:
                with anyio.fail_after(READ_TIMEOUT):
                    resp = await self.kube.http.post(
                        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                        json={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                              "spec": {"resourceAttributes": attributes}})
                ok = resp.status_code in (200, 201) and bool(((resp.json() or {}).get("status") or {}).get("allowed"))
            except Exception as e:  # cannot tell: try the watch (it backs off on its own)
                log.info("probe policy: cannot check access", extra={"error": str(e) or type(e).__name__})
                return True
            if not ok:
                log.info(
                    "probe policy: not following %s%s in %s (the operator's RBAC does not grant %s); name their "
                    "addresses with --probe-deny-cidr", informer.info.plural, f" {name}" if name else "",
                    namespace or "the cluster", verb)
                return False
        return True

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            for informer in self.informers.values():
                if await self.allowed(informer):
                    tg.start_soon(informer.run)
            while True:
                await self.changed.wait()
                self.changed = anyio.Event()
                await anyio.sleep(0.05)  # a burst of events is one update
                self.apply()
