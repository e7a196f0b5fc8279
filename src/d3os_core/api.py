"""Names shared by the core, the shell, the CRD and the docs: one place, so they cannot drift."""

from __future__ import annotations

from collections.abc import Mapping
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
MANAGED_BY: Final = "d3os-operator"

ANNOTATION_HASH: Final = f"{GROUP}/desired-hash"
"""Hash of an object's desired content, written on every applied object."""
ANNOTATION_READY_AT: Final = f"{GROUP}/ready-at"
"""On a ControllerRevision: when its spec last became Ready (RFC 3339)."""
ANNOTATION_GENERATION: Final = f"{GROUP}/generation"
"""On a ControllerRevision: the DataService generation that reached Ready with it."""
ANNOTATION_CONFIG_HASH: Final = f"{GROUP}/config-hash"
"""Hash of the configuration a pod template consumes: a change rolls the pods."""

OWNED_KINDS: Final[tuple[tuple[str, str], ...]] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "ControllerRevision"),
)
"""Kinds the operator creates: the shell watches these (label ``managed-by``) and the RBAC covers them."""

OWNED_PLURALS: Final[dict[str, str]] = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "Service": "services",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "ControllerRevision": "controllerrevisions",
}
"""The API resource (plural) of each owned kind: URLs in the shell, resources in the RBAC rules."""


def owner_instance(obj: Mapping[str, Any]) -> str | None:
    """Name of the DataService that manages ``obj`` (from its labels), or None if none of ours."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        return None
    name = labels.get(LABEL_INSTANCE)
    return name if isinstance(name, str) else None
