"""Installing the operator gives the core and the operator only; the development side (local control plane,
pytest plugin, harness, stand-in, demo, cryptography) is the separate ``d3os-testenv`` distribution.

An extra could not do it: it can neither leave a package out of the wheel nor make the ``pytest11`` entry
point conditional, so the plugin would load in every pytest run wherever the operator is installed.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
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


def test_the_wheel_holds_the_runtime_and_no_generator(tmp_path: Path) -> None:
    """Built for real (what the Dockerfile copies, offline: no build isolation), the operator's wheel holds the
    core, the operator and the product files; the build-time generators of the chart and the RBAC
    (``d3os_generate``, in the development distribution) and the development side are not in it."""
    src = tmp_path / "src-tree"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("src", "products"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=src, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = tmp_path.glob("d3os_operator-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"d3os_core", "d3os_operator", "d3os_products"}, tops
    modules = {n.rsplit("/", 1)[-1] for n in names if n.startswith("d3os_operator/")}
    assert {"cli.py", "kube.py", "products.py"} <= modules
    assert not {"chart.py", "rbac.py"} & modules, "the generators are build-time tools (d3os_generate)"
    assert "d3os_products/dataservice/product.yaml" in names and "d3os_products/analytics/product.yaml" in names


def test_the_generators_live_in_the_development_distribution() -> None:
    """``python -m d3os_generate.chart`` / ``.rbac``: in testenv/src, which only the dev set-up installs."""
    pkg = ROOT / "testenv" / "src" / "d3os_generate"
    want = ["__init__.py", "chart.py", "krew.py", "products.py", "rbac.py", "values.py"]
    assert sorted(p.name for p in pkg.glob("*.py")) == want
    assert not list((ROOT / "src").rglob("chart.py")) and not list((ROOT / "src").rglob("rbac.py"))
