"""Which addresses of the cluster the probe policy protects: a pure reading of the objects the shell watches.

A probe must not let a DataService author find out whether something of the cluster's own answers. So the
policy protects (:meth:`d3os_core.probe_policy.ProbePolicy.with_protected`), beyond its built-in refusals:

* the Kubernetes API server: the address the operator talks to, ``$KUBERNETES_SERVICE_HOST``, the
  ``kubernetes`` Service's ClusterIPs in ``default`` and its endpoints (EndpointSlices, or the Endpoints
  object) -- as they change (an API server added, moved or replaced);
* the operator's namespace: every Service's ClusterIPs (the metrics Service among them), every endpoint
  address of its EndpointSlices and every Pod IP there -- the standby replica, the metrics and health
  ports of both replicas; whatever runs in the operator's namespace is the operator's;
* the nodes: every address a Node reports (InternalIP, ExternalIP...), where each kubelet listens;
* the operator's own pod (``POD_IP``/``POD_IPS``).

The shell watches these objects and calls :func:`protected` on every change; an address that is gone is
no longer protected (unless a built-in refusal or a flag covers it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .probe_policy import parse_address

API_SERVER = "the Kubernetes API server"
OWN_POD = "the operator's own pod"
OPERATOR_NAMESPACE = "in the operator's namespace"
NODE = "a node (its kubelet)"


def _ips(values: Iterable[Any]) -> list[str]:
    out = []
    for value in values:
        text = str(value or "").strip()
        if text and text.lower() != "none" and parse_address(text) is not None:
            out.append(text)
    return out


def _service_ips(service: Mapping[str, Any]) -> list[str]:
    spec = service.get("spec") or {}
    return _ips([spec.get("clusterIP"), *(spec.get("clusterIPs") or [])])


def _slice_ips(endpoint_slice: Mapping[str, Any]) -> list[str]:
    return _ips(a for e in endpoint_slice.get("endpoints") or [] for a in (e or {}).get("addresses") or [])


def _endpoints_ips(endpoints: Mapping[str, Any]) -> list[str]:
    return _ips((a or {}).get("ip") for s in endpoints.get("subsets") or []
                for key in ("addresses", "notReadyAddresses") for a in (s or {}).get(key) or [])


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def protected(
    *,
    api_server: Sequence[str] = (),
    kubernetes_services: Sequence[Mapping[str, Any]] = (),
    kubernetes_endpoint_slices: Sequence[Mapping[str, Any]] = (),
    kubernetes_endpoints: Sequence[Mapping[str, Any]] = (),
    namespace_services: Sequence[Mapping[str, Any]] = (),
    namespace_endpoint_slices: Sequence[Mapping[str, Any]] = (),
    namespace_pods: Sequence[Mapping[str, Any]] = (),
    nodes: Sequence[Mapping[str, Any]] = (),
    own_pod: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """(address, what it is) for every protected address, each once (see the module docstring).

    ``api_server``: the addresses the operator talks to and ``$KUBERNETES_SERVICE_HOST``;
    ``kubernetes_*``: the ``kubernetes`` Service and its endpoints in ``default``; ``namespace_*``: the
    objects of the operator's namespace; ``own_pod``: ``POD_IP`` and ``POD_IPS``.
    """
    found: dict[str, str] = {}

    def add(addresses: Iterable[Any], what: str) -> None:
        for address in _ips(addresses):
            found.setdefault(address, what)

    add(api_server, API_SERVER)
    for service in kubernetes_services:
        add(_service_ips(service), API_SERVER)
    for endpoint_slice in kubernetes_endpoint_slices:
        add(_slice_ips(endpoint_slice), API_SERVER)
    for endpoints in kubernetes_endpoints:
        add(_endpoints_ips(endpoints), API_SERVER)
    add(own_pod, OWN_POD)
    for service in namespace_services:
        add(_service_ips(service), f"Service {_name(service)} {OPERATOR_NAMESPACE}")
    for endpoint_slice in namespace_endpoint_slices:
        add(_slice_ips(endpoint_slice), f"an endpoint of {_name(endpoint_slice)} {OPERATOR_NAMESPACE}")
    for pod in namespace_pods:
        status = pod.get("status") or {}
        add([status.get("podIP"), *[(p or {}).get("ip") for p in status.get("podIPs") or []]],
            f"Pod {_name(pod)} {OPERATOR_NAMESPACE}")
    for node in nodes:
        add(((a or {}).get("address") for a in (node.get("status") or {}).get("addresses") or []),
            f"{NODE} {_name(node)}")
    return list(found.items())
