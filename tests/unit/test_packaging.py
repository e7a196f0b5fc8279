"""Installing the operator gives the core and the operator only; the development side (local control plane,
pytest plugin, harness, stand-in, demo, cryptography) is the separate ``d3os-testenv`` distribution.

An extra could not do it: it can neither leave a package out of the wheel nor make the ``pytest11`` entry
point conditional, so the plugin would load in every pytest run wherever the operator is installed.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("d3os_core", "d3os_operator")


def _project(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    return data


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s;\[=<>!~]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_operator_distribution_packages_the_runtime_only() -> None:
    main = _project(ROOT / "pyproject.toml")
    setuptools = main["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"": "src", "d3os_products": "products"}
    on_disk = sorted(p.name for p in (ROOT / "src").iterdir() if (p / "__init__.py").is_file())
    assert on_disk == list(RUNTIME), "src/ holds the runtime packages only"
    subpackages = sorted(
        ".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src").rglob("__init__.py"))
    assert sorted(setuptools["packages"]) == sorted([*subpackages, "d3os_products"]), "every package, and no other"
    assert setuptools["package-data"]["d3os_products"] == ["*/product.yaml", "*/files/**/*"]
    project = main["project"]
    assert "cryptography" not in _names(project["dependencies"])
    assert "pytest11" not in project.get("entry-points", {}), "the pytest plugin would load wherever the operator is"
    assert set(project["scripts"]) == {"d3os", "d3os-operator", "kubectl-d3os", "kubectl_complete-d3os"}


def test_the_testenv_distribution_holds_the_development_side() -> None:
    main = _project(ROOT / "pyproject.toml")["project"]
    dev = _project(ROOT / "testenv" / "pyproject.toml")["project"]
    assert dev["name"] == "d3os-testenv"
    assert f"d3os-operator=={main['version']}" in dev["dependencies"], "released together with the operator"
    assert "cryptography" in _names(dev["dependencies"])
    assert dev["entry-points"]["pytest11"] == {"d3os_testenv": "d3os_testenv.pytest_plugin"}
    assert dev["scripts"] == {"d3os-testenv": "d3os_testenv.cli:main"}
    pkg = ROOT / "testenv" / "src" / "d3os_testenv"
    for module in ("harness", "standin", "demo", "pytest_plugin", "cluster", "build", "certs"):
        assert (pkg / f"{module}.py").is_file(), module


def test_the_runtime_never_imports_the_development_side() -> None:
    offenders = []
    for pkg in RUNTIME:
        for path in sorted((ROOT / "src" / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("d3os_testenv",
                              "cryptography", "pytest")]
    assert offenders == []


def test_the_image_installs_the_runtime_only() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copies = [ln.split()[1:-1] for ln in text.splitlines() if ln.startswith("COPY ") and "--from" not in ln]
    assert sorted(s for c in copies for s in c) == ["README.md", "products", "pyproject.toml", "src"], (
        "testenv/ stays out")
    installs = [ln for ln in text.splitlines() if "pip install" in ln]
    assert installs and all("testenv" not in ln and "[" not in ln for ln in installs), installs
