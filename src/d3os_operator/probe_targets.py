"""The addresses the probe policy protects beyond its built-in refusals, found once at start.

The Kubernetes API server (the address the operator itself talks to, the ``kubernetes`` Service's
ClusterIP in ``default`` and that Service's EndpointSlice, or Endpoints) and the operator's own pod (``POD_IP`` /
``POD_IPS`` from the downward API): a DataService author must not learn through a probe whether they
answer. Each source is best effort -- a read the operator may not make (RBAC) is logged and skipped, the
others still count -- and nothing here can stop the operator from starting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import anyio

from d3os_core.probe_policy import ip_literal

from .kube import Kube
from .probes import Resolver, system_resolver

log = logging.getLogger("d3os_operator.probes")

API_SERVER = "the Kubernetes API server"
OWN_POD = "the operator's own pod"
READ_TIMEOUT = 10.0


async def protected_addresses(
    kube: Kube, *, resolver: Resolver = system_resolver, env: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(address, what) pairs for :meth:`d3os_core.probe_policy.ProbePolicy.with_protected`."""
    env = os.environ if env is None else env
    found: list[tuple[str, str]] = []

    def add(address: Any, what: str) -> None:
        text = str(address or "").strip()
        if text and text.lower() != "none" and (text, what) not in found:
            found.append((text, what))

    http = kube.http
    host = http.base_url.host
    if host:
        literal = ip_literal(host)
        if literal is not None:
            add(literal, API_SERVER)
        else:
            try:
                with anyio.fail_after(READ_TIMEOUT):
                    for address in await resolver(host, http.base_url.port or 443):
                        add(address, API_SERVER)
            except Exception as e:
                log.warning("probe policy: cannot resolve the API server's host", extra={"host": host, "error": str(e)})
    add(env.get("KUBERNETES_SERVICE_HOST"), API_SERVER)

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
    if service is not None:
        spec = service.get("spec") or {}
        add(spec.get("clusterIP"), API_SERVER)
        for ip in spec.get("clusterIPs") or []:
            add(ip, API_SERVER)
    # the API server keeps an EndpointSlice "kubernetes" (and, on older versions, the Endpoints) of itself
    endpoint_slice = await read("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
    for endpoint in (endpoint_slice or {}).get("endpoints") or []:
        for ip in (endpoint or {}).get("addresses") or []:
            add(ip, API_SERVER)
    endpoints = None if endpoint_slice is not None else await read("/api/v1/namespaces/default/endpoints/kubernetes")
    if endpoints is not None:
        for subset in endpoints.get("subsets") or []:
            for address in (subset or {}).get("addresses") or []:
                add((address or {}).get("ip"), API_SERVER)
    add(env.get("POD_IP"), OWN_POD)
    for ip in (env.get("POD_IPS") or "").split(","):
        add(ip, OWN_POD)
    return found
