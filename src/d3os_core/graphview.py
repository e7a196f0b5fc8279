"""What a picture of one product instance shows: its components in dependency layers, each with the state,
kind, replicas and message its status carries, and the step(s) the rollout is at.

``d3os ui`` and ``d3os graph`` draw this; they never order anything themselves. The dependencies are the
planner's own (:func:`d3os_core.ordering.dependencies`: ``dependsOn``, else the product's chain), the states
are the status's (what the operator last wrote), and the marked step is the one MESSAGE brackets
(:func:`d3os_core.status.current_steps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .graph import topo_order
from .lifecycle import SUSPENDED
from .ordering import dependencies
from .product import ProductDef, WorkloadKind
from .spec import Middleware, SpecBase
from .status import current_steps, find_condition
from .types import JSON
from .validation import SpecError, parse_spec

NodeState = Literal["Pending", "Waiting", "Progressing", "Ready", "Failed", "Conflict", "Suspended"]
NODE_STATES: tuple[NodeState, ...] = ("Pending", "Waiting", "Progressing", "Ready", "Failed", "Conflict",
                                      "Suspended")
InstanceState = Literal["Ready", "Progressing", "Degraded", "Suspended", "Unknown"]
INSTANCE_STATES: tuple[InstanceState, ...] = ("Ready", "Progressing", "Degraded", "Suspended", "Unknown")
NO_STATUS = "no status yet: is the operator running?"


def layers(keys: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """The keys in dependency layers: a key's layer is one past its deepest dependency's (the roots are layer
    0), so every edge points down and a layer's keys may roll out side by side. Within a layer, the planner's
    order (:func:`d3os_core.graph.topo_order`)."""
    order = topo_order(keys, deps)
    depth: dict[str, int] = {}
    for key in order:
        depth[key] = 1 + max((depth[d] for d in deps.get(key, ()) if d in depth), default=-1)
    out: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for key in order:
        out[depth[key]].append(key)
    return out


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One component as the picture shows it."""

    key: str
    kind: str
    """Deployment, StatefulSet, DaemonSet or ThirdParty: the status's, else the spec's."""
    replicas: str
    """``"2"`` for a Deployment or StatefulSet, ``"per node"`` for a DaemonSet, ``""`` for a third party."""
    object: str
    state: NodeState
    message: str
    reason: str
    layer: int
    depends_on: tuple[str, ...]
    current: bool
    """The rollout is at this step (MESSAGE's brackets) and the rest waits on it."""

    def to_json(self) -> JSON:
        return {"key": self.key, "kind": self.kind, "replicas": self.replicas, "object": self.object,
                "state": self.state, "message": self.message, "reason": self.reason, "layer": self.layer,
                "dependsOn": list(self.depends_on), "current": self.current}


@dataclass(frozen=True, slots=True)
class InstanceGraph:
    """One instance: the seed's columns as its status carries them, then its component graph."""

    kind: str
    namespace: str
    name: str
    phase: str
    message: str
    ready: str
    state: InstanceState
    layers: tuple[tuple[str, ...], ...]
    nodes: Mapping[str, GraphNode]
    edges: tuple[tuple[str, str], ...]
    """``(dependency, dependent)`` pairs: an edge from what is needed to what needs it."""
    spec_problem: str = ""
    """Why the spec could not be read (the product's own chain and defaults are drawn instead)."""

    @property
    def current(self) -> tuple[str, ...]:
        return tuple(k for layer in self.layers for k in layer if self.nodes[k].current)

    def to_json(self) -> JSON:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "phase": self.phase,
                "message": self.message, "ready": self.ready, "state": self.state,
                "layers": [list(layer) for layer in self.layers],
                "nodes": [self.nodes[k].to_json() for layer in self.layers for k in layer],
                "edges": [list(e) for e in self.edges], "current": list(self.current),
                "specProblem": self.spec_problem}


def node_state(entry: Mapping[str, Any] | None) -> NodeState:
    """A component's state as drawn: the status's, except a component held by ``spec.suspend`` (Waiting,
    reason Suspended) is Suspended; no entry yet is Pending."""
    if not entry:
        return "Pending"
    state = str(entry.get("state") or "Pending")
    if state == "Waiting" and entry.get("reason") == SUSPENDED:
        return "Suspended"
    for known in NODE_STATES:
        if state == known:
            return known
    return "Pending"


def instance_state(instance: Mapping[str, Any]) -> InstanceState:
    """One word for the overview's state filter, from the conditions the operator wrote (and ``spec.suspend``)."""
    status = instance.get("status") or {}
    if (instance.get("spec") or {}).get("suspend") is True:
        return "Suspended"
    conds = status.get("conditions") if isinstance(status, Mapping) else None
    if not conds:
        return "Unknown"
    if find_condition(conds, "Ready").get("status") == "True":
        return "Ready"
    if find_condition(conds, "Degraded").get("status") == "True":
        return "Degraded"
    return "Progressing"


def _replicas(spec: SpecBase | None, key: str, kind: str) -> str:
    if kind == WorkloadKind.DAEMONSET.k8s_kind:
        return "per node"
    if kind == WorkloadKind.THIRD_PARTY.k8s_kind or spec is None:
        return ""
    replica = spec.component(key).replica
    return str(replica if replica is not None else 1)


def _spec_kind(spec: SpecBase | None, product: ProductDef, key: str) -> str:
    comp = product.component(key)
    if spec is not None:
        c = spec.component(key)
        if isinstance(c, Middleware) and c.kind is not None:
            return WorkloadKind(c.kind).k8s_kind
    return comp.default_kind.k8s_kind if comp.role == "middleware" else WorkloadKind.DEPLOYMENT.k8s_kind


def instance_graph(instance: Mapping[str, Any], product: ProductDef) -> InstanceGraph:
    """The picture of ``instance`` (an object of ``product``'s kind as the API server returns it)."""
    meta = instance.get("metadata") or {}
    status = instance.get("status") or {}
    problem = ""
    spec: SpecBase | None
    try:
        spec = parse_spec(instance.get("spec") or {}, product)
        deps = dependencies(spec, product)
    except SpecError as exc:
        spec, deps = None, product.default_dependencies()
        problem = str(exc)
    entries = {str(c["name"]): c for c in status.get("components") or []
               if isinstance(c, Mapping) and "name" in c}
    states = {k: node_state(entries.get(k)) for k in product.keys}
    current = current_steps(product.keys, states)
    grouped = layers(product.keys, deps)
    nodes: dict[str, GraphNode] = {}
    for depth, layer in enumerate(grouped):
        for key in layer:
            entry = entries.get(key) or {}
            kind = str(entry.get("kind") or _spec_kind(spec, product, key))
            nodes[key] = GraphNode(
                key=key, kind=kind, replicas=_replicas(spec, key, kind), object=str(entry.get("object") or ""),
                state=states[key], message=str(entry.get("message") or ("" if entries else NO_STATUS)),
                reason=str(entry.get("reason") or ""), layer=depth, depends_on=tuple(deps.get(key, ())),
                current=key in current)
    edges = tuple((d, k) for layer in grouped for k in layer for d in deps.get(k, ()))
    return InstanceGraph(
        kind=str(instance.get("kind") or product.names.kind), namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""), phase=str(status.get("phase") or ""),
        message=str(status.get("message") or ""), ready=str(status.get("ready") or ""),
        state=instance_state(instance), layers=tuple(tuple(layer) for layer in grouped), nodes=nodes,
        edges=edges, spec_problem=problem)
