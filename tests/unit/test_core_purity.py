"""The core is pure: it imports no I/O library, opens no file, reads no clock, draws no random number.

Two checks (DESIGN.md §2: "pure library: no network, no clock, no randomness, no lightkube client"):

* **static** — the AST of every file of ``src/d3os_core`` (the YAML helpers in ``EXEMPT`` excepted) has no
  import of a forbidden module, no dynamic import, and no call of ``open``/``print``/``input`` nor any use
  of ``time.*``, ``datetime.now()`` and the like. The AST, not a text search: a string may hold a Python
  script (``import os`` inside a ConfigMap's content, as dataservice's product once did in code), which is
  data, not an import. Nor does the core read the product files: the shell loads them and hands the core a
  ``ProductDef``.
* **runtime** — importing every core module in a fresh interpreter loads none of the I/O client
  libraries, and loads no I/O, clock or randomness module beyond what pydantic (the core's one
  dependency) loads by itself. pydantic pulls in ``socket``, ``threading``, ``random``, ``secrets``,
  ``datetime``… transitively (``importlib.metadata`` → ``email``, ``uuid``, ``pydantic.types``), so for
  those the runtime check compares with a pydantic-only baseline; the static check is the strict one.

The ``d3os`` command line, which reads files and prints, is not in the core (``d3os_operator.usercli``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "src" / "d3os_core"
EXEMPT = {
    "yamlload.py": "the command line's YAML reader (PyYAML, refusing duplicate keys); plan never imports it",
    "yamlout.py": "YAML text for the command lines (PyYAML); nothing else in the core imports it",
}

FORBIDDEN_MODULES = (
    # network / cluster clients and event loops
    "lightkube", "httpx", "httpx2", "anyio", "asyncio", "socket", "socketserver", "ssl", "select",
    "selectors", "urllib.request", "http", "requests", "aiohttp", "ftplib", "smtplib",
    # processes, threads, the OS and files
    "subprocess", "os", "sys", "threading", "multiprocessing", "concurrent", "signal", "io", "pathlib",
    "shutil", "tempfile", "glob", "logging", "importlib",
    # clock and randomness
    "time", "datetime", "random", "secrets", "uuid",
)
FORBIDDEN_CALLS = ("open", "print", "input", "breakpoint", "__import__", "eval", "exec", "compile")
CLOCK_OR_CHANCE = ("time", "datetime", "date", "random", "secrets", "os", "sys", "socket", "subprocess")
CLOCK_METHODS = ("now", "utcnow", "today", "fromtimestamp")

RUNTIME_FORBIDDEN = (
    "lightkube", "httpx", "httpx2", "anyio", "asyncio", "urllib.request", "http.client", "http.server",
    "requests", "aiohttp", "subprocess", "multiprocessing", "concurrent.futures", "ssl", "yaml",
)
"""Not loaded at all once the core is imported (pydantic loads none of these either)."""
RUNTIME_BEYOND_PYDANTIC = (
    "socket", "threading", "random", "secrets", "time", "datetime", "select", "selectors", "signal",
    "tempfile", "logging", "uuid", "shutil",
)
"""Loaded by the core only if pydantic already loads them."""
PURE_STDLIB = (
    "shlex", "string", "textwrap", "difflib", "fnmatch", "heapq", "bisect", "itertools", "functools",
    "operator", "math", "statistics", "decimal", "fractions", "numbers", "graphlib", "ipaddress",
    "unicodedata", "html", "hmac", "hashlib", "json", "base64", "binascii", "copy", "re", "enum",
    "dataclasses", "typing", "collections", "urllib", "urllib.parse", "keyword", "pprint", "struct",
    "zlib", "_json", "_sha256", "_sha2", "_hashlib", "_blake2", "_bisect", "_heapq", "_struct",
)
"""What the core may load beyond pydantic and itself: deterministic, I/O-free standard modules."""


def _matches(module: str) -> str | None:
    for bad in FORBIDDEN_MODULES:
        if module == bad or module.startswith(bad + "."):
            return bad
    return None


def violations(source: str, filename: str = "<src>") -> list[str]:
    """Every impure construct in ``source``, as ``file:line: what``."""
    found: list[str] = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _matches(alias.name):
                    found.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the core (checked file by file)
                if node.module == "cli" or any(a.name == "cli" for a in node.names):
                    found.append(f"{where}: imports the CLI module")
                continue
            module = node.module or ""
            if _matches(module):
                found.append(f"{where}: from {module} import …")
            for alias in node.names:
                if _matches(f"{module}.{alias.name}"):
                    found.append(f"{where}: from {module} import {alias.name}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{where}: call of {func.id}()")
            elif isinstance(func, ast.Attribute):
                if func.attr == "open":
                    found.append(f"{where}: call of .open()")
                if func.attr in CLOCK_METHODS and _root_name(func.value) in ("datetime", "date"):
                    found.append(f"{where}: reads the clock ({_dotted(func)})")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in CLOCK_OR_CHANCE:
            found.append(f"{where}: uses {node.value.id}.{node.attr}")
    return found


def _root_name(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _dotted(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if p.name not in EXEMPT)


def test_the_exempt_files_exist() -> None:
    """An exemption for a file that is gone would hide nothing; keep the list honest."""
    for name in EXEMPT:
        assert (CORE / name).is_file(), f"{name} is exempt from the purity check but does not exist"


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.name)
def test_core_file_is_pure(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), path.name) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import lightkube",
        "import os.path",
        "from urllib import request",
        "from urllib.request import urlopen",
        "import http.client as hc",
        "from asyncio import sleep",
        "import time as t",
        "from datetime import datetime\nx = datetime.now()",
        "x = open('f')",
        "import pathlib\nx = pathlib.Path('f').open()",
        "x = __import__('socket')",
        "print('hello')",
        "from . import cli",
        "x = time.monotonic()",
        "x = datetime.datetime.utcnow()",
        "import random",
        "from secrets import token_hex",
        "import threading",
        "import subprocess",
    ],
)
def test_the_checker_catches(snippet: str) -> None:
    """The static check is not vacuous: each of these is flagged."""
    assert violations(snippet) != []


@pytest.mark.parametrize(
    "snippet",
    [
        "from urllib.parse import urlsplit",
        "import hashlib, json, base64, re, shlex, copy",
        "from . import api\nfrom .types import Facts",
        "TEXT = '''import os\\nos.environ.get(\"X\")'''",
        "def f(facts): return facts.now",
    ],
)
def test_the_checker_allows(snippet: str) -> None:
    assert violations(snippet) == []


_PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    from typing import Annotated
    import pydantic
    class _M(pydantic.BaseModel):  # exercise pydantic the way the core does
        a: Annotated[int, pydantic.Field(ge=0)] = 0
    _M.model_validate({"a": 1}); _M.model_json_schema()
    pydantic.create_model("X", a=(int, 0)).model_validate({})
    baseline = set(sys.modules)
    import d3os_core
    names = [m.name for m in pkgutil.walk_packages(d3os_core.__path__, "d3os_core.")]
    for name in names:
        if name.rsplit(".", 1)[-1] + ".py" not in EXEMPT:
            importlib.import_module(name)
    print(json.dumps({"names": names, "after": sorted(sys.modules), "baseline": sorted(baseline)}))
    """
)


def test_importing_the_core_loads_no_io_library() -> None:
    script = f"EXEMPT = {sorted(EXEMPT)!r}\n" + _PROBE
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    report = json.loads(out.stdout)
    after, baseline = set(report["after"]), set(report["baseline"])
    assert "d3os_core.planner" in report["names"] and "d3os_core.fake" in report["names"]

    def loaded(names: tuple[str, ...], among: set[str]) -> list[str]:
        return sorted(m for m in among if any(m == n or m.startswith(n + ".") for n in names))

    assert loaded(RUNTIME_FORBIDDEN, after) == [], "the core loads an I/O library"
    assert loaded(RUNTIME_BEYOND_PYDANTIC, after - baseline) == [], (
        "the core loads an I/O, clock or randomness module that pydantic alone does not"
    )
    extra = sorted(m for m in after - baseline if m != "d3os_core" and not m.startswith("d3os_core."))
    assert [m for m in extra if m.split(".")[0] not in PURE_STDLIB and m not in PURE_STDLIB] == [], (
        f"the core loads modules beyond pydantic that are not known pure standard modules: {extra}"
    )
