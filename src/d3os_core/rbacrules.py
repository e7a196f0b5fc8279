"""Which verbs on which resources the operator needs for a set of products: the rules of its RBAC, declared
once and pure, so that the build-time generator (config/rbac, the chart) and ``d3os product rbac`` (the rules
of any product file, for a platform team's review) print the same. Why each verb: see the generator's
docstring (testenv/src/d3os_generate/rbac.py); tests/unit/test_rbac_calls.py holds these rules to the calls
the operator's shell makes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import api
from .credentials import deletes_secrets
from .product import ProductDef


@dataclass(frozen=True)
class Rule:
    """One RBAC rule, with why the operator needs it."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    names: tuple[str, ...] = ()
    """resourceNames: the rule grants only these objects (empty: every object)."""

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"apiGroups": [self.group], "resources": list(self.resources)}
        if self.names:
            out["resourceNames"] = list(self.names)
        out["verbs"] = list(self.verbs)
        return out


OWNED_VERBS = ("get", "list", "watch", "create", "patch", "delete")
"""Children: read (informer, name look-up), server-side apply (create/patch), take-over patch, prune."""
NEVER_DELETED = frozenset(k.kind for k in api.KINDS if k.owned and not k.deletable)
"""Claims keep the data: the operator creates them but never deletes one. Secrets: ``delete`` only when a
served product has a credentials Secret that is an instance's own child (:func:`d3os_core.credentials.
deletes_secrets`); a claim's credentials are never deleted by the operator."""


def owned_rules(products: Sequence[ProductDef]) -> list[Rule]:
    """The children's kinds: read, server-side apply, take-over patch, prune (not claims; Secrets only when a
    product deletes one)."""
    by_group: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for k in api.KINDS:  # the kinds table: what the operator creates, and whether it may delete it
        if not k.owned:
            continue
        deletes = k.deletable and (k.kind != "Secret" or any(deletes_secrets(p) for p in products))
        verbs = tuple(v for v in OWNED_VERBS if v != "delete" or deletes)
        by_group.setdefault((k.group, verbs), []).append(k.plural)
    return [
        Rule(group, tuple(resources), verbs, "the children it renders")
        for (group, verbs), resources in sorted(by_group.items())
    ]


def cluster_rules(products: Sequence[ProductDef]) -> list[Rule]:
    """The ClusterRole (or a Role per watched namespace): everything the operator does in the namespaces it
    serves, for these products."""
    plurals = tuple(p.names.plural for p in products)
    return [
        Rule(api.GROUP, plurals, ("list", "watch", "patch"), "informer; finalizer (merge patch)"),
        Rule(api.GROUP, tuple(f"{p}/status" for p in plurals), ("patch",), "status (server-side apply)"),
        Rule(api.GROUP, tuple(f"{p}/finalizers" for p in plurals), ("update",),
             "ownerReferences with blockOwnerDeletion"),
        *owned_rules(products),
        Rule("", (api.PLURALS["Pod"],), ("list",), "why a component past its progress deadline is stuck"),
        Rule("", (api.PLURALS["Event"],), ("create", "patch"), "Events on DataServices (a repeat patches the count)"),
    ]


def crd_rules(products: Sequence[ProductDef]) -> list[Rule]:
    """Cluster-wide, by name: each served product's CRD, read once at start to compare its fingerprint with the
    product file's (the operator never writes a CRD)."""
    names = tuple(f"{p.names.plural}.{api.GROUP}" for p in products)
    return [Rule("apiextensions.k8s.io", ("customresourcedefinitions",), ("get",), "the products' CRDs, by name",
                 names)]


def metrics_auth_rules() -> list[Rule]:
    """Cluster-wide, in every install mode: who may read /metrics is asked of the API server
    (``--metrics-auth``: a TokenReview of the caller's token, then a SubjectAccessReview of its right)."""
    why = "/metrics callers authenticated and authorized by the API server (--metrics-auth)"
    return [Rule("authentication.k8s.io", ("tokenreviews",), ("create",), why),
            Rule("authorization.k8s.io", ("subjectaccessreviews",), ("create",), why)]


def metrics_reader_rule() -> dict[str, Any]:
    """The scraper's right: ``get`` on the non-resource URL /metrics (what the SubjectAccessReview asks)."""
    return {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}


def leader_rules() -> list[Rule]:
    """The Role in the operator's own namespace: its leader-election Lease."""
    return [Rule("coordination.k8s.io", ("leases",), ("get", "create", "patch"), "leader election")]


def probe_target_rules() -> list[Rule]:
    """The Role in ``default``: the API server's addresses, which the probe policy refuses (by name only).

    ``get`` at start (the Service, its EndpointSlice, else the Endpoints); ``list`` and ``watch`` of the
    Service and EndpointSlice afterwards, selected by the field selector ``metadata.name=kubernetes``, which
    the API server authorizes against resourceNames: nothing else in ``default`` is readable."""
    why = "the API server's addresses, refused to third-party probes"
    follow = "the API server's addresses as they change (watched by name: fieldSelector metadata.name)"
    return [
        Rule("", ("endpoints",), ("get",), why, ("kubernetes",)),
        Rule("", ("services",), ("get", "list", "watch"), f"{why}; {follow}", ("kubernetes",)),
        Rule("discovery.k8s.io", ("endpointslices",), ("get", "list", "watch"), f"{why}; {follow}",
             ("kubernetes",)),
    ]


def probe_node_rules() -> list[Rule]:
    """A ClusterRole, in every install mode: the nodes' addresses (their kubelets), refused to third-party
    probes as Nodes come and go. Read only (``list``, ``watch``; no ``get``, never a write, no ``nodes/proxy``);
    removing it is safe: the watch is then skipped with one log line (name node CIDRs with
    ``--probe-deny-cidr``)."""
    return [Rule("", ("nodes",), ("list", "watch"), "the nodes' addresses (kubelets), refused to third-party probes")]


def own_namespace_probe_rules() -> list[Rule]:
    """The Role in the operator's own namespace: what runs there (the standby replica, the metrics Service's
    ClusterIP), refused to third-party probes as it changes."""
    why = "the operator's namespace (its replicas, the metrics Service), refused to third-party probes"
    return [
        Rule("", ("pods", "services"), ("list", "watch"), why),
        Rule("discovery.k8s.io", ("endpointslices",), ("list", "watch"), why),
    ]
