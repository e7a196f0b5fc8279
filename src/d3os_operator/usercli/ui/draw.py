"""The picture of an instance as SVG, drawn on the server from the core's layers (:mod:`d3os_core.graphview`).

The page and ``d3os graph -o svg`` show the same drawing. Layers are rows, top to bottom, in the core's order;
within a row the only choice made here is where each node sits (next to what it depends on, to cross fewer
edges), never which row it is in. Every node says its state in words beside its colour, and is focusable
(``tabindex``) with an ``aria-label`` that reads it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from d3os_core.graphview import GraphNode, InstanceGraph

NODE_W = 184
NODE_H = 66
GAP_X = 24
GAP_Y = 54
MARGIN = 16
MAX_LABEL = 24
"""Characters of a key or kind shown in a node; the whole text is in its title and aria-label."""

COLOURS = {  # state: (fill, stroke)
    "Pending": ("#e5e7eb", "#6b7280"),
    "Waiting": ("#f3f4f6", "#9ca3af"),
    "Progressing": ("#bfdbfe", "#1d4ed8"),
    "Ready": ("#bbf7d0", "#15803d"),
    "Failed": ("#fecaca", "#b91c1c"),
    "Conflict": ("#fed7aa", "#c2410c"),
    "Suspended": ("#e9d5ff", "#7e22ce"),
}
MARKS = {"Pending": "·", "Waiting": "…", "Progressing": "↻", "Ready": "✓", "Failed": "✗", "Conflict": "⚠",
         "Suspended": "‖"}
CURRENT_MARK = "◀ now"
"""Beside the state of the step the rollout is at (its aria-label says it in full)."""


@dataclass(frozen=True, slots=True)
class Placed:
    """A node's top-left corner in the drawing."""

    x: float
    y: float


def place(graph: InstanceGraph) -> tuple[dict[str, Placed], float, float]:
    """Where each node goes (rows = the core's layers), and the drawing's width and height.

    Within a row, nodes are sorted by the mean position of what they depend on (ties: the core's order), the
    one pass of the barycentre heuristic, so edges run mostly straight down."""
    centre: dict[str, float] = {}
    rows: list[list[str]] = []
    for layer in graph.layers:
        def mean_of_deps(item: tuple[int, str]) -> tuple[float, int]:
            index, key = item
            xs = [centre[d] for d in graph.nodes[key].depends_on if d in centre]
            return (sum(xs) / len(xs) if xs else float(index), index)

        row = [key for _, key in sorted(enumerate(layer), key=mean_of_deps)]
        rows.append(row)
        for i, key in enumerate(row):
            centre[key] = i - (len(row) - 1) / 2
    widest = max((len(r) for r in rows), default=0)
    width = 2 * MARGIN + widest * NODE_W + max(widest - 1, 0) * GAP_X
    height = 2 * MARGIN + len(rows) * NODE_H + max(len(rows) - 1, 0) * GAP_Y
    out: dict[str, Placed] = {}
    for depth, row in enumerate(rows):
        row_w = len(row) * NODE_W + (len(row) - 1) * GAP_X
        left = (width - row_w) / 2
        for i, key in enumerate(row):
            out[key] = Placed(left + i * (NODE_W + GAP_X), MARGIN + depth * (NODE_H + GAP_Y))
    return out, width, height


def short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kind_line(node: GraphNode) -> str:
    """``StatefulSet ×1``, ``DaemonSet per node``, ``ThirdParty``."""
    if node.replicas == "per node":
        return f"{node.kind} per node"
    return f"{node.kind} ×{node.replicas}" if node.replicas else node.kind


def state_line(node: GraphNode) -> str:
    return f"{MARKS.get(node.state, '?')} {node.state}"


def spoken(node: GraphNode) -> str:
    """What a screen reader says of a node (and its tooltip)."""
    parts = [f"{node.key}: {node.state}", kind_line(node)]
    if node.current:
        parts.append("the rollout is at this step")
    if node.message:
        parts.append(node.message)
    return "; ".join(parts)


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;", "\n": "&#10;"})


def svg(graph: InstanceGraph) -> str:
    """The drawing as one standalone SVG document (colours as attributes: no stylesheet needed)."""
    at, width, height = place(graph)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="d3os-graph" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" font-family="system-ui, sans-serif" font-size="13" role="group" '
        f'aria-label="{_attr(f"{graph.kind} {graph.namespace}/{graph.name}: components in dependency order")}">',
        f"<title>{escape(f'{graph.kind} {graph.namespace}/{graph.name}')}</title>",
        '<g class="edges" fill="none" stroke="#6b7280" stroke-width="1.3">',
    ]
    for dep, key in graph.edges:
        a, b = at[dep], at[key]
        x1, y1 = a.x + NODE_W / 2, a.y + NODE_H
        x2, y2 = b.x + NODE_W / 2, b.y
        mid = (y2 - y1) / 2
        out.append(f'<path class="edge" data-from="{_attr(dep)}" data-to="{_attr(key)}" '
                   f'd="M{x1:g},{y1:g} C{x1:g},{y1 + mid:g} {x2:g},{y2 - mid:g} {x2:g},{y2 - 4:g}"/>')
        out.append(f'<path d="M{x2 - 4:g},{y2 - 8:g} L{x2:g},{y2:g} L{x2 + 4:g},{y2 - 8:g}"/>')
    out.append("</g>")
    for layer in graph.layers:
        for key in layer:
            node = graph.nodes[key]
            p = at[key]
            fill, stroke = COLOURS.get(node.state, COLOURS["Pending"])
            dash = ' stroke-dasharray="5 3"' if node.state in ("Waiting", "Pending", "Suspended") else ""
            width_ = 3.5 if node.current else 1.5
            current = ' data-current="true"' if node.current else ""
            out.append(
                f'<g class="node" id="node-{_attr(key)}" data-key="{_attr(key)}" data-state="{node.state}" '
                f'data-kind="{_attr(node.kind)}"{current} tabindex="0" role="button" '
                f'aria-label="{_attr(spoken(node))}">'
                f"<title>{escape(spoken(node))}</title>"
                f'<rect x="{p.x:g}" y="{p.y:g}" width="{NODE_W}" height="{NODE_H}" rx="7" fill="{fill}" '
                f'stroke="{"#111827" if node.current else stroke}" stroke-width="{width_}"{dash}/>'
                f'<text x="{p.x + 10:g}" y="{p.y + 19:g}" font-weight="600" fill="#111827">{escape(short(key))}</text>'
                f'<text class="kind" x="{p.x + 10:g}" y="{p.y + 37:g}" fill="#374151">'
                f"{escape(short(kind_line(node)))}</text>"
                f'<text class="state" x="{p.x + 10:g}" y="{p.y + 56:g}" fill="{stroke}" font-weight="600">'
                f"{escape(state_line(node))}"
                + "</text>"
                + (f'<text class="here" x="{p.x + NODE_W - 8:g}" y="{p.y + 56:g}" text-anchor="end" '
                   f'font-weight="700" fill="#111827">{CURRENT_MARK}</text>' if node.current else "")
                + "</g>"
            )
    out.append("</svg>")
    return "".join(out)
