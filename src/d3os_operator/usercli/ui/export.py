"""``d3os graph NAME -o svg|dot|mermaid``: the picture of an instance for documents and issues.

The three formats carry the same content: the core's layers (:mod:`d3os_core.graphview`), one node per
component with its kind, replicas and state in words, one edge per dependency (from what is needed to what
needs it). DOT keeps each layer on one rank; Mermaid draws top-down and colours by state with a class.
"""

from __future__ import annotations

from d3os_core.graphview import InstanceGraph

from .draw import COLOURS, MARKS, kind_line, spoken, svg

FORMATS = ("svg", "dot", "mermaid")


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(graph: InstanceGraph) -> str:
    """Graphviz DOT: ``dot -Tsvg`` draws it."""
    title = f"{graph.kind} {graph.namespace}/{graph.name}"
    heading = f"{title}   PHASE {graph.phase or '-'}   MESSAGE {graph.message or '-'}"
    lines = [
        f"digraph {_dot_str(title)} {{",
        "  rankdir=TB;",
        f"  label={_dot_str(heading)};",
        "  labelloc=t;",
        '  node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=11];',
    ]
    for layer in graph.layers:
        for key in layer:
            node = graph.nodes[key]
            fill, stroke = COLOURS.get(node.state, COLOURS["Pending"])
            label = f"{key}\n{kind_line(node)}\n{MARKS.get(node.state, '?')} {node.state}"
            extra = ", penwidth=3" if node.current else ""
            lines.append(f"  {_dot_str(key)} [label={_dot_str(label)}, fillcolor={_dot_str(fill)}, "
                         f"color={_dot_str(stroke)}, tooltip={_dot_str(spoken(node))}{extra}];")
    for layer in graph.layers:
        if len(layer) > 1:
            lines.append("  { rank=same; " + " ".join(f"{_dot_str(k)};" for k in layer) + " }")
    lines += [f"  {_dot_str(a)} -> {_dot_str(b)};" for a, b in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    """Mermaid's entity codes for the characters its label syntax reserves."""
    for ch, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(ch, code)
    return text


def mermaid(graph: InstanceGraph) -> str:
    """A Mermaid flowchart (GitHub and GitLab render it in Markdown)."""
    ids = {key: f"n{i}" for i, key in enumerate(k for layer in graph.layers for k in layer)}
    lines = ["flowchart TD"]
    for layer in graph.layers:
        for key in layer:
            node = graph.nodes[key]
            label = "<br/>".join(_mermaid_text(t) for t in (
                key, kind_line(node), f"{MARKS.get(node.state, '?')} {node.state}"
                + (" (at this step)" if node.current else "")))
            lines.append(f'  {ids[key]}["{label}"]:::{node.state}')
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in graph.edges]
    used = sorted({n.state for n in graph.nodes.values()})
    lines += [f"  classDef {s} fill:{COLOURS[s][0]},stroke:{COLOURS[s][1]},color:#111827" for s in used]
    return "\n".join(lines) + "\n"


def render(graph: InstanceGraph, fmt: str) -> str:
    if fmt == "svg":
        return svg(graph) + "\n"
    if fmt == "dot":
        return dot(graph)
    if fmt == "mermaid":
        return mermaid(graph)
    raise ValueError(f"unknown format {fmt}; one of {', '.join(FORMATS)}")
