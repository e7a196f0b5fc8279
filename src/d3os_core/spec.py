"""The DataService spec as pydantic v2 models: the single source of truth for validation and the CRD.

The models accept the seed's sample exactly (hyphenated component keys, ``thirdParty``, ``checkCMD``,
``nodePort`` null = ClusterIP). The top-level model is built from a :class:`ProductDef`, so each product
gets its own keys without code of its own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from .checks import (
    HTTP_URL_PATTERN,
    NO_SECRET_QUERY_RULE,
    TCP_HOST_PATTERN,
    THIRD_PARTY_URL_PATTERN,
    check_no_secret_query,
)
from .memo import Memo
from .product import ComponentDef, ProductDef

NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_RULE = (
    "a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending with a "
    "letter or digit, at most 63 characters"
)
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
IMAGE_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$"
"""An image reference's characters: registry[:port]/name[:tag][@digest]; nothing a shell would read."""
QUANTITY_PATTERN = (r"^([0-9]{1,18}(\.[0-9]+)?m?|[0-9]{1,15}(\.[0-9]+)?(k|Ki)|[0-9]{1,12}(\.[0-9]+)?(M|Mi)"
                    r"|[0-9]{1,9}(\.[0-9]+)?(G|Gi)|[0-9]{1,6}(\.[0-9]+)?(T|Ti)|[0-9]{1,3}(\.[0-9]+)?(P|Pi))$")
"""A non-negative Kubernetes quantity (``500m``, ``1.5Gi``, ``8Gi``) below 1.2 x 10^18 units.

Bounded by digits before the point per suffix, so a pattern (the CRD's) can say it: every amount stays
far below 2^63, which the API server keeps exactly (it silently caps larger binary amounts) and the
renderer's arithmetic handles."""
QUANTITY_RULE = ("a Kubernetes quantity below 1.2 x 10^18 units: digits, an optional fraction and an optional suffix; "
                 "at most 18 digits before the point with no suffix or m, 15 with k or Ki, 12 with M or Mi, "
                 "9 with G or Gi, 6 with T or Ti, 3 with P or Pi (E and Ei are not accepted); e.g. 500m, 2, 8Gi")
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
FILE_NAME_PATTERN = r"^[-_a-zA-Z0-9][-._a-zA-Z0-9]*$"
"""A ConfigMap key that is not hidden ('..data' is what kubelet uses for its own symlinks)."""


def _none_as_empty(value: Any) -> Any:
    """YAML ``env:`` with nothing after it is null; treat it as an empty map, as a user means."""
    return {} if value is None else value


_Name = Annotated[str, Field(min_length=1, max_length=63, pattern=NAME_PATTERN, description=NAME_RULE)]
_Port = Annotated[int, Field(ge=1, le=65535)]
_EnvMap = Annotated[
    dict[Annotated[str, Field(max_length=253, pattern=ENV_NAME_PATTERN)], Annotated[str, Field(max_length=32768)]],
    BeforeValidator(_none_as_empty),
    Field(max_length=128),
]


FILES_MAX_BYTES = 262144
"""``files`` of one component, names and contents together, in UTF-8: 256 KiB (a quarter of the size limit
of the ConfigMap that holds them)."""


def _files_total(value: dict[str, str] | None) -> dict[str, str] | None:
    total = sum(len(k.encode()) + len(v.encode()) for k, v in (value or {}).items())
    if total > FILES_MAX_BYTES:
        raise ValueError(f"files hold {total} bytes in UTF-8 (names and contents); at most {FILES_MAX_BYTES} "
                         "(256 KiB)")
    return value


def _no_secret_query(text: str | None) -> str | None:
    return text if text is None else check_no_secret_query(text, what="")


_NoSecretQuery = AfterValidator(_no_secret_query)
"""A URL or checkCMD without a secret-named query value (``?token=…``): refused here and, by the same
pattern, at admission (:data:`d3os_core.checks.NO_SECRET_QUERY_RULE`)."""


class _Strict(BaseModel):
    # strict: no coercion ('1' is not a kind, true is not a replica), as the API server's schema says
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True, strict=True)


class HttpCheckSpec(_Strict):
    """A structured HTTP(S) health check."""

    url: Annotated[str, _NoSecretQuery] = Field(
                     min_length=1, max_length=2048, pattern=HTTP_URL_PATTERN,
                     json_schema_extra={"x-kubernetes-validations": [NO_SECRET_QUERY_RULE]},
                     description="Absolute http:// or https:// URL: printable ASCII, an ASCII host (xn-- form "
                     "for internationalised names) or [IPv6], port 1-65535.")
    method: Literal["GET", "HEAD"] = Field("GET", description="HTTP method: GET or HEAD (default GET).")
    insecure: bool = Field(False, description="Skip TLS certificate verification (default false; curl --insecure).")
    follow_redirects: bool = Field(False, alias="followRedirects",
                                   description="Follow 3xx redirects (default false; curl -L).")
    timeout_seconds: float = Field(5.0, alias="timeoutSeconds", gt=0, le=300,
                                   description="Seconds before the check fails, more than 0 and at most 300 "
                                   "(default 5). Example: 2.5.")
    fail_on_http_error: bool = Field(True, alias="failOnHttpError",
                                     description="A status of 400 or more fails the check (default true; curl --fail).")


class TcpCheckSpec(_Strict):
    """A structured TCP connect check."""

    host: str = Field(min_length=1, max_length=253, pattern=TCP_HOST_PATTERN,
                      description="An ASCII DNS name (xn-- form for internationalised names), IPv4 or IPv6 address.")
    port: _Port = Field(description="TCP port, 1-65535. Example: 3306.")
    timeout_seconds: float = Field(5.0, alias="timeoutSeconds", gt=0, le=300,
                                   description="Seconds before the connect fails, more than 0 and at most 300 "
                                   "(default 5).")


class CheckSpec(_Strict):
    """Exactly one of ``http`` or ``tcp``: the structured alternative to ``checkCMD``."""

    model_config = ConfigDict(
        populate_by_name=True, extra="forbid", frozen=True,
        json_schema_extra={"x-kubernetes-validations": [{
            "rule": "has(self.http) != has(self.tcp)",
            "message": "thirdParty.check: set exactly one of http or tcp",
        }]},
    )

    http: HttpCheckSpec | None = None
    tcp: TcpCheckSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CheckSpec:
        if (self.http is None) == (self.tcp is None):
            raise ValueError("set exactly one of http or tcp")
        return self


class ThirdParty(_Strict):
    """An existing service used instead of a workload (``kind: 3``)."""

    check: CheckSpec | None = Field(
        None, description="Structured health check (preferred over checkCMD for new resources)."
    )

    check_cmd: Annotated[str | None, _NoSecretQuery] = Field(
        None,
        alias="checkCMD",
        max_length=2048,
        json_schema_extra={"x-kubernetes-validations": [{
            "rule": r"!self.matches('[;|&$`<>()\n\r\\\\]')",
            "message": "checkCMD is parsed, never run by a shell: it may not contain ; | & $ ` < > ( ) \\ "
                       "or line breaks; supported: curl [flags] URL or nc -z HOST PORT",
        }, NO_SECRET_QUERY_RULE]},
        description="Health check, a curl/nc subset that is parsed, never run by a shell: "
        "curl [--head] [--fail] [--silent] [--insecure] [-L] [--output /dev/null] [--max-time S] URL, "
        "or nc -z [-w S] HOST PORT.",
    )
    url: Annotated[str | None, _NoSecretQuery] = Field(
        None,
        max_length=2048,
        pattern=THIRD_PARTY_URL_PATTERN,
        json_schema_extra={"x-kubernetes-validations": [NO_SECRET_QUERY_RULE]},
        description="Where dependents reach the service: http(s)://…, jdbc:mysql://HOST[:PORT]/…, "
        "mysql://HOST[:PORT], tcp://HOST:PORT or HOST:PORT. Checked by HTTP GET or TCP connect when "
        "checkCMD is not set.",
    )


class Resources(_Strict):
    """Container resources; quantities as in Kubernetes (``500m``, ``1Gi``)."""

    requests: dict[
        Annotated[str, Field(max_length=63)], Annotated[str, Field(max_length=32, pattern=QUANTITY_PATTERN)]
    ] = Field(default_factory=dict, max_length=8,
              description="Resource name to the quantity the scheduler reserves (at most 8 entries); default: "
              "the product's (cpu 100m, memory 256Mi). Example: {cpu: 250m, memory: 512Mi}.")
    limits: dict[
        Annotated[str, Field(max_length=63)], Annotated[str, Field(max_length=32, pattern=QUANTITY_PATTERN)]
    ] = Field(default_factory=dict, max_length=8,
              description="Resource name to the most the container may use (at most 8 entries); default: none. "
              "Example: {memory: 1Gi}.")


class Storage(_Strict):
    """Persistent volume claim of a middleware that keeps data (mysql)."""

    size: str = Field("8Gi", max_length=32, pattern=QUANTITY_PATTERN,
                      description="Claim size, a Kubernetes quantity (default 8Gi). Example: 20Gi.")
    storage_class_name: str | None = Field(
        None, alias="storageClassName", max_length=253, pattern=DNS_SUBDOMAIN_PATTERN,
        description="Storage class (a DNS subdomain name); default: the cluster's.",
    )


class _Component(_Strict):
    name: _Name
    replica: int | None = Field(None, ge=0, le=1000, description="Pod count, 0-1000 (default 1). Example: 2.")
    env: _EnvMap = Field(default_factory=dict, description="Extra environment variables of the container, name to "
                         "string value (at most 128). Example: {JAVA_OPTS: -Xmx512m}.")
    depends_on: list[Annotated[str, Field(max_length=63)]] | None = Field(
        None,
        alias="dependsOn",
        max_length=32,
        description="Component keys this one waits for; default: its predecessor in the product order. "
        "Example: [mysql, eureka].",
    )
    resources: Resources | None = Field(
        None, description="CPU and memory of the container; default: requests cpu 100m, memory 256Mi."
    )


class Middleware(_Component):
    """A middleware: Deployment (0), StatefulSet (1), DaemonSet (2) or third-party service (3)."""

    kind: int = Field(
        ge=0, le=3, description="0 Deployment, 1 StatefulSet, 2 DaemonSet, 3 thirdParty (existing service)."
    )
    third_party: ThirdParty | None = Field(
        None, alias="thirdParty",
        description="The existing service used when kind is 3: where it is (url) and how to check it "
        "(check or checkCMD).",
    )
    image: str | None = Field(None, min_length=1, max_length=512, pattern=IMAGE_PATTERN,
                              description="Container image, registry/name:tag or @digest; default: the product's. "
                              "Example: mysql:8.0.36.")
    port: _Port | None = Field(None, description="Service and container port, 1-65535; default: the product's "
                               "(mysql 3306, uuc 8080, eureka 8761).")
    storage: Storage | None = Field(None, description="Data volume of a component that keeps data (mysql): "
                                    "one PersistentVolumeClaim, never deleted by the operator.")


class Microservice(_Component):
    """A microservice: always a Deployment with a Service (NodePort when ``nodePort`` is set)."""

    image: str = Field(min_length=1, max_length=512, pattern=IMAGE_PATTERN,
                       description="Container image, registry/name:tag or @digest (required). "
                       "Example: registry-edge.cosmoplat.com/dataservice/auth:v1.4.")
    port: _Port = Field(description="Container and Service port, 1-65535 (required). Example: 8080.")
    node_port: int | None = Field(
        None, alias="nodePort", ge=30000, le=32767,
        description="NodePort of the Service, 30000-32767; null or absent = a ClusterIP Service. Example: 30080.",
    )
    files: Annotated[
        dict[Annotated[str, Field(max_length=253, pattern=FILE_NAME_PATTERN)],
             Annotated[str, Field(max_length=FILES_MAX_BYTES)]] | None,
        AfterValidator(_files_total),
    ] = Field(
        None, max_length=32,
        description="File name to content of the component's extra ConfigMap (trd-adapter-py), at most 32 files "
        f"and {FILES_MAX_BYTES} bytes (256 KiB) in UTF-8 in all, names and contents; default: the product's files.",
        json_schema_extra={"x-kubernetes-validations": [{
            "rule": f"self.map(k, size(bytes(k)) + size(bytes(self[k]))).sum() <= {FILES_MAX_BYTES}",
            "message": f"files may hold at most {FILES_MAX_BYTES} bytes (256 KiB) in UTF-8 in all, names and "
                       "contents",
        }]},
    )


Component = Middleware | Microservice


class SpecBase(_Strict):
    """Common top-level fields; the component keys are added per product by :func:`spec_model`."""

    image_pull_secrets: list[Annotated[str, Field(max_length=253, pattern=NAME_PATTERN)]] = Field(
        default_factory=list, alias="imagePullSecrets", max_length=16,
        description="Names of Secrets (in the DataService's namespace) for pulling images, added to every "
        "pod; at most 16. Example: [registry-cred].",
    )
    pod_security: Literal["baseline", "restricted"] = Field(
        "baseline", alias="podSecurity",
        description="The Pod Security Standard the pods are rendered for: baseline (default; the images run "
        "as they are built) or restricted (for namespaces that enforce it, e.g. OpenShift-like clusters: "
        "runAsNonRoot with the product's non-root user where an image needs one, such as mysql 999, all "
        "capabilities dropped, RuntimeDefault seccomp, no privilege escalation).",
    )
    progress_deadline_seconds: int = Field(
        600, alias="progressDeadlineSeconds", ge=10, le=86400,
        description="Seconds a component may take to become ready at a new desired state (for a third party: "
        "how long its check may fail) before the DataService reports Degraded, reason ProgressDeadlineExceeded. "
        "The rollout keeps waiting. Also set on the rendered Deployments. 10-86400, default 600.",
    )
    revision_history_limit: int = Field(
        10, alias="revisionHistoryLimit", ge=1, le=1000,
        description="How many revisions (ControllerRevisions, one per spec that reached Ready) to keep, the "
        "current one included; older ones are pruned. 1-1000, default 10.",
    )
    rollback_on_failure: bool = Field(
        False, alias="rollbackOnFailure",
        description="When a step of an upgrade passes its progress deadline, roll every component back to "
        "the last Ready revision, in order, without changing this spec (Degraded, reason RolledBack). "
        "A new generation of the spec tries again. Default false.",
    )
    suspend: bool = Field(
        False,
        description="While true the operator writes nothing to any child object (status only). Set it back "
        "to false and the rollout continues from what is observed. Default false.",
    )

    def component(self, key: str) -> Component:
        value = getattr(self, field_name(key))
        assert isinstance(value, (Middleware, Microservice))
        return value


def field_name(key: str) -> str:
    return key.replace("-", "_")


def _component_field(c: ComponentDef) -> tuple[Any, Any]:
    model: type[Middleware] | type[Microservice] = Middleware if c.role == "middleware" else Microservice
    return (model, Field(alias=c.key, description=f"{c.role} {c.key}"))


_MODELS: Memo[type[SpecBase]] = Memo(16)
"""Spec models by product fingerprint (a digest of the definition, so an equal product shares its model)."""


def spec_model(product: ProductDef) -> type[SpecBase]:
    """The spec model of ``product``: one required field per component key (built once per product)."""
    hit = _MODELS.get(product.fingerprint)
    if hit is not None:
        return hit
    fields = {field_name(c.key): _component_field(c) for c in product.components}
    model: type[SpecBase] = create_model(  # type: ignore[call-overload]
        f"{product.name.title().replace('-', '')}Spec", __base__=SpecBase, **fields
    )
    return _MODELS.put(product.fingerprint, model)
