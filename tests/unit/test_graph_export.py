"""``d3os graph -o svg|dot|mermaid``: each format read back by an outside parser -- Graphviz's ``dot`` (Debian's
graphviz, installed by nox) for DOT, the standard library's XML parser for SVG -- and compared with the product
files' dependencies and the status the planner wrote, never with the exporter's own output."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import itertools

import synthetic

from d3os_core.graphview import instance_graph
from d3os_operator.products import installed_product
from d3os_operator.usercli.ui import export

from .helpers import DATASERVICE, ORDER, Driver, sample

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def _analytics() -> tuple[dict, dict[str, list[str]]]:
    doc = yaml.safe_load((ROOT / "products/analytics/product.yaml").read_text(encoding="utf-8"))
    keys = [c["key"] for c in doc["components"]]
    deps = {c["key"]: c.get("dependsOn", [keys[i - 1]] if i else []) for i, c in enumerate(doc["components"])}
    return yaml.safe_load((ROOT / "examples/analyticsservice-sample.yaml").read_text(encoding="utf-8")), deps


def _mid_rollout() -> dict:
    d = Driver(sample())
    for _ in range(4):
        d.step()
    return d.ds


def _plain(dot_text: str) -> tuple[dict[str, tuple[float, str, str]], set[tuple[str, str]]]:
    """Graphviz's own reading of DOT (``dot -Tplain``): node -> (y, label, fill colour), and the edges."""
    dot = shutil.which("dot")
    assert dot, "graphviz's dot is missing: nox installs Debian's graphviz (python3 -m nox -s tests)"
    out = subprocess.run([dot, "-Tplain"], input=dot_text, capture_output=True, text=True, check=True).stdout
    nodes: dict[str, tuple[float, str, str]] = {}
    edges: set[tuple[str, str]] = set()
    for line in out.splitlines():
        parts = re.findall(r'"(?:[^"\\]|\\.)*"|\S+', line)
        if parts[0] == "node":
            nodes[parts[1].strip('"')] = (float(parts[3]), parts[6].strip('"'), parts[-1].strip('"'))
        elif parts[0] == "edge":
            edges.add((parts[1].strip('"'), parts[2].strip('"')))
    return nodes, edges


def test_dot_read_by_graphviz_has_the_dependencies_and_the_layers() -> None:
    instance, deps = _analytics()
    nodes, edges = _plain(export.dot(instance_graph(instance, installed_product("analytics"))))
    assert set(nodes) == set(deps)
    assert edges == {(d, k) for k, ds in deps.items() for d in ds}
    assert nodes["ingest-api"][0] == nodes["stream-processor"][0]  # one layer, one rank
    for a, b in edges:  # TB: a dependency is drawn above (greater y in plain output)
        assert nodes[a][0] > nodes[b][0]


def test_dot_keeps_the_cores_layers_where_graphviz_would_choose_others() -> None:
    # d needs nothing, c needs b and d: Graphviz alone ranks d next to b (a shorter edge); the core's layer 0
    # (a root) is kept with rank=same.
    prod = synthetic.product(4)
    ds = synthetic.dataservice(4)
    a, b, c, d = (synthetic.key(i) for i in range(4))
    ds["spec"][b]["dependsOn"], ds["spec"][c]["dependsOn"], ds["spec"][d]["dependsOn"] = [a], [b, d], []
    nodes, _ = _plain(export.dot(instance_graph(ds, prod)))
    assert nodes[d][0] == nodes[a][0] > nodes[b][0] > nodes[c][0]


def test_dot_labels_carry_state_and_kind_as_the_status_says() -> None:
    ds = _mid_rollout()
    nodes, _ = _plain(export.dot(instance_graph(ds, DATASERVICE)))
    fills: dict[str, set[str]] = {}
    for c in ds["status"]["components"]:
        label = nodes[c["name"]][1]
        assert c["state"] in label and c["kind"] in label, (label, c)
        fills.setdefault(c["state"], set()).add(nodes[c["name"]][2])
    assert len(fills) >= 3 and all(len(f) == 1 for f in fills.values())  # one colour per state...
    assert len({f for fs in fills.values() for f in fs}) == len(fills)  # ...and no two states alike


def test_dot_of_the_200_component_product_parses() -> None:
    nodes, edges = _plain(export.dot(instance_graph(synthetic.dataservice(200), synthetic.product(200))))
    assert len(nodes) == 200
    assert edges == {(d, k) for k, ds in synthetic.dependencies(200).items() for d in ds}


def test_svg_parses_as_xml_with_one_node_per_component_and_edges_pointing_down() -> None:
    ds = _mid_rollout()
    root = ET.fromstring(export.render(instance_graph(ds, DATASERVICE), "svg"))
    assert root.tag == f"{SVG}svg"
    groups = {g.get("data-key"): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert list(groups) == ORDER
    by_status = {c["name"]: c for c in ds["status"]["components"]}
    for key, g in groups.items():
        assert g.get("data-state") == by_status[key]["state"]
        assert g.get("tabindex") == "0" and by_status[key]["state"] in g.get("aria-label", "")
        texts = "".join(g.itertext())
        assert by_status[key]["state"] in texts  # the state in words, beside the colour
    top = {k: float(g.find(f"{SVG}rect").get("y")) for k, g in groups.items()}
    drawn = [(p.get("data-from"), p.get("data-to")) for p in root.iter(f"{SVG}path") if p.get("data-from")]
    assert drawn == list(itertools.pairwise(ORDER))
    assert all(top[a] < top[b] for a, b in drawn)
    marked = {k for k, g in groups.items() if g.get("data-current") == "true"}
    assert marked == set(re.findall(r"\[([^\]]+)\]", ds["status"]["message"]))


def test_svg_escapes_what_a_message_carries() -> None:
    ds = _mid_rollout()
    ds["status"]["components"][0]["message"] = '<script>alert("x")</script> & more'
    root = ET.fromstring(export.svg(instance_graph(ds, DATASERVICE)))
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    labels = [g.get("aria-label") for g in root.iter(f"{SVG}g") if g.get("data-key") == "mysql"]
    assert labels and '<script>alert("x")</script> & more' in labels[0]


def test_mermaid_has_one_node_per_component_and_one_arrow_per_dependency() -> None:
    instance, deps = _analytics()
    text = export.mermaid(instance_graph(instance, installed_product("analytics")))
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    ids = dict(re.findall(r'^\s+(n\d+)\["([^<"]+)<br/>', text, re.M))
    assert sorted(ids.values()) == sorted(deps)
    arrows = {(ids[a], ids[b]) for a, b in re.findall(r"^\s+(n\d+) --> (n\d+)$", text, re.M)}
    assert arrows == {(d, k) for k, ds in deps.items() for d in ds}
    assert '"' not in "".join(re.findall(r'\["(.*)"\]', text))  # labels carry no raw quote


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="svg, dot, mermaid"):
        export.render(instance_graph(sample(), DATASERVICE), "png")
