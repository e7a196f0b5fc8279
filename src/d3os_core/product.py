"""What a product is, as data: its components, their order, defaults and wiring.

The planner and renderer read a :class:`ProductDef` and know nothing about dataservice itself, so a
second product is a second definition (a product file, ``products/<name>/product.yaml``, loaded by
:mod:`d3os_core.productload`), not new planner code.

Text templates (exports, extra ConfigMaps) may reference ``${namespace}`` and, for any component key
``k``, ``${k.name}``, ``${k.host}``, ``${k.port}`` and ``${k.url}`` (the component's base URL: its
third-party ``url``, or ``http://host:port`` in the cluster).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

Role = Literal["middleware", "microservice"]


class WorkloadKind(IntEnum):
    """The seed's ``kind`` numbers for a middleware."""

    DEPLOYMENT = 0
    STATEFULSET = 1
    DAEMONSET = 2
    THIRD_PARTY = 3

    @property
    def k8s_kind(self) -> str:
        return ("Deployment", "StatefulSet", "DaemonSet", "ThirdParty")[self.value]


@dataclass(frozen=True, slots=True)
class SecretRef:
    """An env var a dependent gets from a key of a Secret the providing component owns."""

    env: str
    secret_suffix: str
    key: str


@dataclass(frozen=True, slots=True)
class ExtraConfigMap:
    """A ConfigMap beside the component's own one, named ``<component name><suffix>``.

    ``files_from_spec``: the component's ``files`` from the resource replace the default data.
    """

    suffix: str
    data: Mapping[str, str]
    mount_path: str
    files_from_spec: bool = False


@dataclass(frozen=True, slots=True)
class StorageDef:
    """Persistent data of a component: one claim per pod, kept across kind switches and deletion."""

    mount_path: str
    size: str = "8Gi"
    claim_prefix: str = "data"


@dataclass(frozen=True, slots=True)
class ComponentDef:
    """One component of a product."""

    key: str
    role: Role
    default_name: str
    default_port: int | None = None
    default_image: str | None = None
    default_kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    allowed_kinds: tuple[WorkloadKind, ...] = tuple(WorkloadKind)
    uses: tuple[str, ...] = ()
    """Middlewares whose exports this component's ConfigMap receives."""
    exports: Mapping[str, str] = field(default_factory=dict)
    """Env entries (templates) this component gives the components that use it."""
    secret_exports: tuple[SecretRef, ...] = ()
    generated_secret: Mapping[str, str] | None = None
    """Keys of a credentials Secret ``<name>-credentials`` to create once; value = fixed text or
    ``"<random>"`` for generated material."""
    config: Mapping[str, str] = field(default_factory=dict)
    """Data of the component's own ConfigMap (templates)."""
    config_mount_path: str | None = None
    """Where the own ConfigMap is mounted as files; None = consumed as env (envFrom)."""
    container_env: Mapping[str, str] = field(default_factory=dict)
    container_secret_env: tuple[SecretRef, ...] = ()
    extra_configmaps: tuple[ExtraConfigMap, ...] = ()
    storage: StorageDef | None = None
    port_name: str = "http"
    default_resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {"requests": {"cpu": "100m", "memory": "256Mi"}}
    )
    third_party_path: str = ""
    """Path appended to ``http://host:port`` for the in-cluster base URL (e.g. eureka's ``/eureka``)."""
    run_as_user: int | None = None
    """Under ``podSecurity: restricted``: the non-root uid (and gid, fsGroup) the image needs; None = the
    image's own USER, which must then be non-root."""
    depends_on: tuple[str, ...] | None = None
    """Components this one waits for (a DAG); None = its predecessor in the product's list (the chain)."""


@dataclass(frozen=True, slots=True)
class CrdNames:
    """The names of a product's custom resource (group ``d3os-product.com.d3os``, version ``v1``)."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ("d3os",)


DATASERVICE_NAMES = CrdNames("DataService", "dataservices", "dataservice", ("dsvc",))
"""The seed's names: the default of a :class:`ProductDef` built in code (tests, benches)."""


@dataclass(frozen=True, slots=True)
class ProductDef:
    """A product: components in their default deployment order (each depends on the one before)."""

    name: str
    components: tuple[ComponentDef, ...]
    part_of: str = ""
    version: str = ""
    """The product file's version: recorded in status and revisions; a change rolls every instance."""
    names: CrdNames = DATASERVICE_NAMES
    selector_names_product: bool = False
    """Pod selectors carry the product label too, so two products' instances of one name never select each
    other's pods. False only for DataService, whose workloads' selectors are immutable and predate it."""
    removed: tuple[str, ...] = field(default=(), repr=False)
    """Keys of components an earlier version had and this one removes on purpose (their objects are pruned
    like any object the spec no longer wants); only :mod:`d3os_core.productdiff` reads it, so it stays out of
    the fingerprint, which keys what planning caches."""
    fingerprint: str = field(init=False, repr=False, compare=False, default="")
    """Digest of the whole definition: what caches key a product by (never ``id()``)."""

    def __post_init__(self) -> None:
        keys = [c.key for c in self.components]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate component keys in product {self.name}")
        object.__setattr__(self, "fingerprint", hashlib.sha256(repr(self).encode("utf-8")).hexdigest())

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.components)

    def component(self, key: str) -> ComponentDef:
        for c in self.components:
            if c.key == key:
                return c
        raise KeyError(key)

    def default_dependencies(self) -> dict[str, tuple[str, ...]]:
        """Each component's ``depends_on``, or its predecessor in the list (the chain) when it has none."""
        keys = self.keys
        return {c.key: (c.depends_on if c.depends_on is not None else ((keys[i - 1],) if i else ()))
                for i, c in enumerate(self.components)}

    @property
    def kind(self) -> str:
        return self.names.kind
