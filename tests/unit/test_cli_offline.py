"""The offline ``d3os`` commands need only the core's dependencies (pydantic, PyYAML): with lightkube, the
HTTP clients and anyio made unimportable they still run; ``d3os --help`` lists the offline and the
cluster commands under their own headings; the CLI's modules import each other without a cycle."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from d3os_operator.usercli import build_parser
from d3os_operator.usercli.parser import CLUSTER, OFFLINE

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "dataservice-sample.yaml"
BLOCKED = ("lightkube", "httpx", "httpx2", "anyio")

_RUN_WITHOUT = textwrap.dedent(
    """
    import runpy, sys
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the offline commands must not need it")
            return None
    sys.meta_path.insert(0, Blocker())
    sys.argv = ["d3os", *ARGS]
    runpy.run_module("d3os_operator.usercli", run_name="__main__")
    """
)


def run_without_cluster_libraries(*args: str) -> subprocess.CompletedProcess[str]:
    script = f"BLOCKED = {BLOCKED!r}\nARGS = {list(args)!r}\n" + _RUN_WITHOUT
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("validate", str(SAMPLE)), "valid DataService dataservice-sample"),
        (("render", str(SAMPLE)), "kind: StatefulSet"),
        (("plan", str(SAMPLE)), "apply:"),
        (("crd",), "kind: CustomResourceDefinition"),
        (("--help",), "offline commands"),
    ],
)
def test_offline_commands_run_without_the_cluster_libraries(args: tuple[str, ...], expected: str) -> None:
    out = run_without_cluster_libraries(*args)
    assert out.returncode == 0, out.stderr
    assert expected in out.stdout


def test_a_cluster_command_needs_them() -> None:
    """The blocker is not vacuous: a cluster command does import lightkube."""
    out = run_without_cluster_libraries("status", "x", "--kubeconfig", "/nonexistent")
    assert out.returncode != 0 and "is blocked" in out.stderr, out


def test_help_lists_each_command_once_under_its_heading() -> None:
    text = build_parser().format_help()
    offline_at, cluster_at = text.index("\noffline commands:\n"), text.index("\ncluster commands:\n")
    assert offline_at < cluster_at and "positional arguments" not in text
    for names, (start, end) in ((OFFLINE, (offline_at, cluster_at)), (CLUSTER, (cluster_at, len(text)))):
        section = text[start:end]
        for name in names:
            assert sum(line.split()[:1] == [name] for line in section.splitlines()) == 1, (name, section)
    assert "$D3OS_KUBECONFIG" in text[cluster_at:] and "no cluster needed" in text[offline_at:cluster_at]


def test_the_cli_modules_import_each_other_without_a_cycle() -> None:
    package = ROOT / "src" / "d3os_operator" / "usercli"
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        deps = graph.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:  # `from . import x` / `from .x import y`
                deps.update([node.module] if node.module else [a.name for a in node.names])
    deps_of_status = graph["status"]
    assert "watch" in deps_of_status and "connect" in deps_of_status  # the graph is read, not empty
    graphlib.TopologicalSorter({m: d - {"__init__"} for m, d in graph.items()}).prepare()  # CycleError if any
