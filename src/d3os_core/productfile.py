"""The product file (``products/<name>/product.yaml``) as pydantic models: its first validation pass.

This pass checks shape and spelling (types, patterns, unknown fields, ranges); meaning -- references,
order, clashes, size -- is :mod:`d3os_core.productload`'s second pass. The JSON Schema editors use
(``d3os product schema``) is generated from these models, so it cannot drift from what the loader accepts.

There are no functions, loops or conditionals: text may hold ``${namespace}``, ``${<key>.name|host|port|url}``,
``${self.name|host|port|url}`` and ``${vars.X}``, and a whole value may be ``@files/<path>`` (a file beside the
product file). That is all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .spec import ENV_NAME_PATTERN, FILE_NAME_PATTERN, QUANTITY_PATTERN

API_VERSION = "d3os-product.com.d3os/v1"
KIND = "Product"
MAX_COMPONENTS = 200
"""The most components a product may have (the bench's synthetic product)."""

KEY_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
KIND_NAME_PATTERN = r"^[A-Z][A-Za-z0-9]*$"
RESOURCE_NAME_PATTERN = r"^[a-z]([a-z0-9]*)$"
VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$"
VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SUFFIX_PATTERN = r"^-[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
PATH_PATTERN = r"^/[-._a-zA-Z0-9/]*$"

_Key = Annotated[str, Field(min_length=1, max_length=40, pattern=KEY_PATTERN)]
_Text = Annotated[str, Field(max_length=262144)]
_Env = Annotated[str, Field(max_length=253, pattern=ENV_NAME_PATTERN)]
_Quantity = Annotated[str, Field(max_length=32, pattern=QUANTITY_PATTERN)]
_WorkloadKind = Annotated[int, Field(ge=0, le=3)]


def to_camel(name: str) -> str:
    """``config_mount_path`` -> ``configMountPath``: the file's field names, as Kubernetes spells them."""
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True,
                              alias_generator=to_camel)


class Metadata(_File):
    """Who the product is."""

    name: _Key = Field(description="The product's name (a DNS label), e.g. dataservice.")
    version: str = Field(pattern=VERSION_PATTERN, max_length=64,
                         description="Semantic version of this file, e.g. 1.4.0: a new version rolls every instance.")
    part_of: str | None = Field(None, max_length=63, pattern=KEY_PATTERN,
                                description="app.kubernetes.io/part-of of every object (default: name).")
    description: str = Field("", max_length=1024, description="One line about the product.")


class Names(_File):
    """The custom resource's names; the group is always d3os-product.com.d3os and the version v1."""

    kind: str = Field(max_length=63, pattern=KIND_NAME_PATTERN, description="CamelCase kind, e.g. DataService.")
    plural: str = Field(max_length=63, pattern=RESOURCE_NAME_PATTERN,
                        description="Lowercase plural, e.g. dataservices.")
    singular: str = Field(max_length=63, pattern=RESOURCE_NAME_PATTERN,
                          description="Lowercase singular: the kind in lower case, e.g. dataservice.")
    short_names: list[Annotated[str, Field(max_length=63, pattern=RESOURCE_NAME_PATTERN)]] = Field(
        default_factory=list, max_length=8, description="kubectl short names, e.g. [dsvc].")
    categories: list[Annotated[str, Field(max_length=63, pattern=RESOURCE_NAME_PATTERN)]] = Field(
        default_factory=lambda: ["d3os"], max_length=8, description="kubectl categories (default [d3os]).")


class Resources(_File):
    requests: dict[Annotated[str, Field(max_length=63)], _Quantity] = Field(default_factory=dict, max_length=8)
    limits: dict[Annotated[str, Field(max_length=63)], _Quantity] = Field(default_factory=dict, max_length=8)


class Generate(_File):
    """A credential drawn at random, once, when the instance is installed."""

    generate: Literal[True]


class ConfigMapFile(_File):
    """A ConfigMap beside the component's own, named <component name><suffix>, mounted as files."""

    suffix: str = Field(max_length=30, pattern=SUFFIX_PATTERN, description="e.g. -init")
    data: dict[Annotated[str, Field(max_length=253, pattern=FILE_NAME_PATTERN)], _Text] = Field(
        max_length=32, description="File name to content (text or @files/...).")
    mount_path: str = Field(max_length=512, pattern=PATH_PATTERN, description="Where the files appear.")
    files_from_spec: bool = Field(False, description="The instance's spec.<key>.files replace data.")


class StorageFile(_File):
    """One claim per pod, kept across kind switches and deletion."""

    mount_path: str = Field(max_length=512, pattern=PATH_PATTERN)
    size: _Quantity = "8Gi"
    claim_prefix: str = Field("data", max_length=20, pattern=KEY_PATTERN)


class RoleDefaults(_File):
    """Settings every component of a role takes unless it sets its own (a field replaces, never merges)."""

    image: str | None = Field(None, max_length=512)
    port: int | None = Field(None, ge=1, le=65535)
    resources: Resources | None = None
    config: dict[Annotated[str, Field(max_length=253, pattern=FILE_NAME_PATTERN)], _Text] | None = None
    env: dict[_Env, _Text] | None = None
    port_name: str | None = Field(None, max_length=15, pattern=KEY_PATTERN)
    run_as_user: int | None = Field(None, ge=1, le=2147483647)


class Component(_File):
    """One component: a middleware (kind 0-3) or a microservice (a Deployment and a Service)."""

    key: _Key = Field(description="The key in the custom resource's spec, e.g. mysql.")
    role: Literal["middleware", "microservice"]
    name: str | None = Field(None, max_length=63, pattern=KEY_PATTERN,
                             description="Default object name (default: the key).")
    port: int | None = Field(None, ge=1, le=65535, description="Default port (required in the spec when absent).")
    image: str | None = Field(None, max_length=512,
                              description="Default image (may use ${vars.X}), e.g. ${vars.registry}/auth:v1.4.")
    kind: _WorkloadKind | None = Field(None, description="Middleware only: the default kind, 0-3 (default 0).")
    allowed_kinds: list[_WorkloadKind] | None = Field(
        None, min_length=1, max_length=4, description="Middleware only: kinds a user may choose (default all).")
    uses: list[_Key] = Field(default_factory=list, max_length=64,
                             description="Components whose exports this one's configuration receives.")
    depends_on: list[_Key] | None = Field(None, max_length=64,
                                          description="Components this one waits for (default: the one before).")
    exports: dict[_Env, _Text] = Field(default_factory=dict, max_length=64,
                                       description="Env entries this component gives those that use it.")
    secret_exports: dict[_Env, Annotated[str, Field(max_length=253, pattern=FILE_NAME_PATTERN)]] = Field(
        default_factory=dict, max_length=16, description="Env name to a key of this component's credentials.")
    credentials: dict[Annotated[str, Field(max_length=253, pattern=FILE_NAME_PATTERN)],
                      Annotated[str, Field(max_length=1024)] | Generate] | None = Field(
        None, max_length=16, description="Keys of the <name>-credentials Secret: text, or {generate: true}.")
    config: dict[Annotated[str, Field(max_length=253, pattern=FILE_NAME_PATTERN)], _Text] | None = Field(
        None, max_length=128, description="The component's own ConfigMap: env (or files with configMountPath).")
    config_mount_path: str | None = Field(None, max_length=512, pattern=PATH_PATTERN)
    env: dict[_Env, _Text] | None = Field(None, max_length=128, description="Fixed env of the container.")
    secret_env: dict[_Env, Annotated[str, Field(max_length=253, pattern=FILE_NAME_PATTERN)]] = Field(
        default_factory=dict, max_length=16, description="Env name to a key of this component's credentials.")
    config_maps: list[ConfigMapFile] = Field(default_factory=list, max_length=8)
    storage: StorageFile | None = None
    port_name: str | None = Field(None, max_length=15, pattern=KEY_PATTERN)
    resources: Resources | None = None
    third_party_path: str = Field("", max_length=256, pattern=r"^(/[-._~a-zA-Z0-9/]*)?$")
    run_as_user: int | None = Field(None, ge=1, le=2147483647)


class Defaults(_File):
    """Settings each component of a role takes unless it sets its own."""

    middleware: RoleDefaults | None = Field(None, description="For every middleware.")
    microservice: RoleDefaults | None = Field(None, description="For every microservice.")


class ProductFile(_File):
    """A d3os product: everything its custom resource, validation, RBAC and docs follow from."""

    api_version: Literal["d3os-product.com.d3os/v1"]
    kind: Literal["Product"]
    metadata: Metadata
    names: Names
    selector_names_product: bool = Field(
        True, description="Pod selectors carry the product label (keep true; false only for DataService, "
        "whose selectors predate it).")
    vars: dict[Annotated[str, Field(max_length=63, pattern=VAR_NAME_PATTERN)],
               Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=64, description="Plain text named once and used as ${vars.<name>}.")
    defaults: Defaults = Field(default_factory=Defaults, description="Settings per role (middleware, microservice).")
    components: list[Component] = Field(min_length=1, max_length=MAX_COMPONENTS,
                                        description="In deployment order (each waits for the one before unless "
                                        "dependsOn says otherwise).")
    removed: list[_Key] = Field(default_factory=list, max_length=MAX_COMPONENTS,
                                description="Keys of components an earlier version had and this one removes on "
                                "purpose: every instance deletes their objects once it is Ready (claims and their "
                                "credentials are kept), and `d3os product diff` and the operator's start accept "
                                "the removal (a component that disappears without being listed here is refused).")


def schema() -> dict[str, Any]:
    """The JSON Schema of the product file (draft 2020-12), for editors."""
    out = ProductFile.model_json_schema(by_alias=True)
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["$id"] = "https://d3os-product.com.d3os/schemas/product-v1.json"
    return out

