"""Value types exchanged between the pure core and the shell that runs it.

The shell reads the cluster into an :class:`Observed`, calls :func:`d3os_core.plan`, and carries out the
returned :class:`Plan`. Manifests and live objects are plain JSON-like dicts, exactly as the Kubernetes
API speaks them, so the core never depends on a client library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import api
from .redact import redact_url

JSON = dict[str, Any]
ObjKey = tuple[str, str]
"""(kind, name) of an object in the DataService's namespace, e.g. ``("Deployment", "web")``: the kinds table
(:data:`d3os_core.api.KINDS`) holds each kind name once, so it names one group/version (:meth:`ObjectRef.of`)."""


@dataclass(frozen=True, slots=True)
class Parent:
    """Identity of the product instance (the custom resource) the objects belong to.

    ``product`` is the value of the product label its children carry ("" for DataService, whose children
    predate the label): with it, two products' instances of one name never claim each other's objects."""

    name: str
    namespace: str
    uid: str
    kind: str = api.KIND
    product: str = ""

    @property
    def product_labels(self) -> dict[str, str]:
        return {api.LABEL_PRODUCT: self.product} if self.product else {}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Outcome of the last run of one third-party check, as observed by the shell."""

    ok: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class Observed:
    """What the shell saw: live objects of the parent's namespace and third-party probe results.

    ``objects`` holds every object the shell knows under a desired name or owned by the parent,
    keyed by (kind, name); ``probes`` is keyed by :attr:`ProbeRequest.key`; ``refused`` names applies
    the API server refused, so status can say why a component is stuck.
    """

    objects: Mapping[ObjKey, Mapping[str, Any]] = field(default_factory=dict)
    probes: Mapping[str, ProbeResult] = field(default_factory=dict)
    refused: Mapping[ObjKey, str] = field(default_factory=dict)
    """Objects whose last apply the API server refused (invalid, forbidden), with its message."""
    pods: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    """Pods of a component (key: component key), read only when a plan asked for them (:class:`PodQuery`)."""


@dataclass(frozen=True, slots=True)
class Facts:
    """Inputs from the outside world that a pure function may not fetch itself.

    ``now`` (RFC 3339, UTC) stamps condition transitions. ``secret_seed`` is random material the shell
    draws once per reconcile; the core uses it only to create credentials that do not exist yet.
    """

    now: str = "1970-01-01T00:00:00Z"
    secret_seed: str = ""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A live object to delete; ``uid`` is a precondition so a re-created namesake is never hit."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str | None = None
    component: str = ""

    @classmethod
    def of(cls, kind: str, name: str, namespace: str, uid: str | None = None, component: str = "") -> ObjectRef:
        """A reference whose apiVersion comes from the kinds table (never guessed from the kind's name)."""
        return cls(api.kind_def(kind).api_version, kind, name, namespace, uid, component)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(group, version, kind, name): what the object is, whatever the namespace."""
        group, _, version = self.api_version.rpartition("/")
        return group, version, self.kind, self.name


@dataclass(frozen=True, slots=True)
class Apply:
    """One manifest to server-side apply.

    ``create`` is True when the object is not observed at all: the shell must then make sure the name
    is free (an object the shell does not watch may hold it) before applying, and report a holder back
    as an observed object so the core can name the conflict.
    """

    manifest: JSON
    component: str
    create: bool = False


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event to record on the DataService."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """An HTTP(S) request; success = a response below 400 (``fail``) or any response."""

    url: str
    method: Literal["GET", "HEAD"] = "GET"
    insecure: bool = False
    follow_redirects: bool = False
    timeout_seconds: float = 5.0
    fail_on_http_error: bool = True

    def describe(self) -> str:
        return f"HTTP {self.method} {redact_url(self.url)}"


@dataclass(frozen=True, slots=True)
class TcpCheck:
    """A TCP connect to host:port."""

    host: str
    port: int
    timeout_seconds: float = 5.0

    def describe(self) -> str:
        return f"TCP connect {self.host}:{self.port}"


Check = HttpCheck | TcpCheck


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """A third-party check the shell must keep running for this DataService."""

    key: str
    component: str
    check: Check
    period_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class PodQuery:
    """Pods the core wants to read to say why a component is stuck: those matching ``labels``.

    Asked only for a component past its progress deadline, so the cost is one list per stuck component.
    """

    component: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Plan:
    """The next step for one DataService.

    ``finalizer`` tells the shell to add or remove the DataService's finalizer; ``status`` is the whole
    status subresource to write (the shell writes it only when it differs from the live one).
    """

    apply: tuple[Apply, ...] = ()
    delete: tuple[ObjectRef, ...] = ()
    status: JSON = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    probes: tuple[ProbeRequest, ...] = ()
    requeue_after: float | None = None
    finalizer: Literal["add", "remove"] | None = None
    inspect: tuple[PodQuery, ...] = ()
    """Pods to read and plan again with (in :attr:`Observed.pods`) when they were not observed."""
