"""Names shared by the core, the shell, the CRD and the docs: one place, so they cannot drift."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

GROUP: Final = "d3os-product.com.d3os"
VERSION: Final = "v1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "DataService"
PLURAL: Final = "dataservices"
SINGULAR: Final = "dataservice"
SHORT_NAMES: Final = ("dsvc",)
CATEGORIES: Final = ("d3os",)

FINALIZER: Final = f"{GROUP}/finalizer"
FIELD_MANAGER: Final = "d3os-operator"

LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_PRODUCT: Final = f"{GROUP}/product"
"""The product an object belongs to, on every child of every product but DataService (whose children predate
it): part of the pod selector, so two products' instances of one name never select each other's pods."""
MANAGED_BY: Final = "d3os-operator"

ANNOTATION_HASH: Final = f"{GROUP}/desired-hash"
"""Hash of an object's desired content, written on every applied object."""
ANNOTATION_READY_AT: Final = f"{GROUP}/ready-at"
"""On a ControllerRevision: when its spec last became Ready (RFC 3339)."""
ANNOTATION_GENERATION: Final = f"{GROUP}/generation"
"""On a ControllerRevision: the DataService generation that reached Ready with it."""
ANNOTATION_PRODUCT_VERSION: Final = f"{GROUP}/product-version"
"""On a product's CRD: the version of the product file it was generated from."""
ANNOTATION_FINGERPRINT: Final = f"{GROUP}/fingerprint"
"""On a product's CRD: a digest of its spec, which the operator compares at start with its own product file's."""
ANNOTATION_CONFIG_HASH: Final = f"{GROUP}/config-hash"
"""Hash of the configuration a pod template consumes: a change rolls the pods."""

@dataclass(frozen=True, slots=True)
class KindDef:
    """One Kubernetes kind the operator deals with: where its API lives and what the operator does with it."""

    group: str
    """API group ("" for the core group)."""
    version: str
    kind: str
    plural: str
    """The API resource: URLs in the shell, ``resources`` in the RBAC rules."""
    owned: bool = True
    """Created by the operator for a DataService: watched (label ``managed-by``) and granted in the RBAC."""
    workload: bool = False
    """Runs the component's pods (its readiness follows ``kubectl rollout status``)."""
    deletable: bool = True
    """The operator may delete it (a claim keeps the data: never)."""
    leaf: bool = False
    """Its manifest refers to no other object the operator writes (a workload mounts ConfigMaps and Secrets,
    a claim records its credentials Secret; a ConfigMap, Service or Secret needs nothing): it may be sent
    together with the other leaves of its component, ahead of the rest (:func:`d3os_core.waves.apply_waves`)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS: Final[tuple[KindDef, ...]] = (
    KindDef("apps", "v1", "Deployment", "deployments", workload=True),
    KindDef("apps", "v1", "StatefulSet", "statefulsets", workload=True),
    KindDef("apps", "v1", "DaemonSet", "daemonsets", workload=True),
    KindDef("", "v1", "Service", "services", leaf=True),
    KindDef("", "v1", "ConfigMap", "configmaps", leaf=True),
    KindDef("", "v1", "Secret", "secrets", leaf=True),
    KindDef("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", deletable=False),
    KindDef("apps", "v1", "ControllerRevision", "controllerrevisions"),
    KindDef("", "v1", "Event", "events", owned=False),
    KindDef("", "v1", "Pod", "pods", owned=False),
    KindDef("", "v1", "ServiceAccount", "serviceaccounts", owned=False),
)
"""The one kinds table: every kind the core renders, the fake cluster stores, the shell watches or writes and
the RBAC grants (each kind name appears once, so a kind name alone finds its group and version)."""

KINDS_BY_NAME: Final[dict[str, KindDef]] = {k.kind: k for k in KINDS}


def kind_def(kind: str) -> KindDef:
    """The table's entry for ``kind`` (KeyError for a kind the operator does not deal with)."""
    return KINDS_BY_NAME[kind]


OWNED_KINDS: Final[tuple[tuple[str, str], ...]] = tuple((k.api_version, k.kind) for k in KINDS if k.owned)
"""(apiVersion, kind) of the kinds the operator creates: the shell watches these and the RBAC covers them."""

OWNED_PLURALS: Final[dict[str, str]] = {k.kind: k.plural for k in KINDS if k.owned}
"""The API resource (plural) of each owned kind."""

PLURALS: Final[dict[str, str]] = {k.kind: k.plural for k in KINDS}
"""The API resource (plural) of every kind in the table."""

WORKLOAD_KINDS: Final[tuple[str, ...]] = tuple(k.kind for k in KINDS if k.workload)
"""Kinds that run a component's pods: ``("Deployment", "StatefulSet", "DaemonSet")``."""


def owner_instance(obj: Mapping[str, Any]) -> str | None:
    """Name of the DataService that manages ``obj`` (from its labels), or None if none of ours."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        return None
    name = labels.get(LABEL_INSTANCE)
    return name if isinstance(name, str) else None
