"""Sessions: tests (everything), unit, integration, lint, demo, bench, chaos, krew."""

from __future__ import annotations

import os
import shutil
import sys

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]

SUPPORTED = ("3.13", "3.12", "3.11")
"""Python versions the project supports (requires-python >= 3.11), newest first."""


def pick_python(running: tuple[int, int] = sys.version_info[:2], which: object = shutil.which) -> str:
    """The Python nox runs on when it is supported, else the newest supported ``pythonX.Y`` on PATH, so
    ``python3 -m nox`` works on any machine with Python 3.11-3.13 (set ``D3OS_NOX_PYTHON`` to choose)."""
    wanted = os.environ.get("D3OS_NOX_PYTHON")
    if wanted:
        return wanted
    here = f"{running[0]}.{running[1]}"
    if here in SUPPORTED:
        return here
    for version in SUPPORTED:
        if which(f"python{version}"):  # type: ignore[operator]
            return version
    return SUPPORTED[-1]  # nox then says it cannot find it


PYTHON = pick_python()


SYSTEM_PACKAGES = {
    "/usr/bin/chromium": "chromium",
    "/usr/bin/dot": "graphviz",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc": "fonts-wqy-zenhei",
    "/usr/bin/fish": "fish",
    "/usr/bin/zsh": "zsh",
}
"""What the UI and graph export tests run besides Python: the distribution's Chromium (driven by Playwright,
never a browser build downloaded at run time), a CJK font for it (the seed's PHASE, ``mysql已部署``, in the
screenshots), Graphviz's ``dot`` (the outside parser of ``d3os graph -o dot``) and the fish and zsh shells (the
completion scripts run in them), by the path each is used at and its Debian package."""


REQUIRE_TOOLS = {"D3OS_REQUIRE_TOOLS": "1"}
"""After ``d3os-testenv build`` a test whose tool (helm, kubectl, promtool...) is missing fails instead of
skipping (tests/tools.py): nothing skips in CI."""


def system_packages(session: nox.Session) -> None:
    """Install the missing :data:`SYSTEM_PACKAGES` with apt-get (as root, as on CI); else say what is missing."""
    missing = sorted({pkg for path, pkg in SYSTEM_PACKAGES.items() if not os.path.exists(path)})
    if not missing:
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        session.error(f"the tests need {', '.join(missing)} from the distribution's packages "
                      f"(missing: {', '.join(p for p, k in SYSTEM_PACKAGES.items() if k in missing)}): "
                      f"run as root, or install them: sudo apt-get install -y {' '.join(missing)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run_install("apt-get", "update", "-q", external=True, env=env)
    session.run_install("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing, external=True, env=env)


def _install(session: nox.Session, extra: str = "test") -> None:
    """The operator (with the extra's tools) and the development-only ``d3os-testenv`` distribution beside it
    (the local control plane, the pytest plugin, the harness, the demo): never part of the operator's wheel."""
    session.install("-e", f".[{extra}]", "-e", "./testenv")


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """Unit tests of the pure core (no cluster)."""
    _install(session)
    system_packages(session)
    session.run("pytest", "tests/unit", "-q", *session.posargs)


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Integration tests against the real local control plane (built and started by d3os_testenv)."""
    _install(session)
    system_packages(session)
    session.run("d3os-testenv", "build")
    session.run("pytest", "tests/integration", "-q", "-m", "integration", *session.posargs, env=REQUIRE_TOOLS)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Everything: lint-free core, unit tests, and integration tests on the local control plane."""
    _install(session, "dev")
    system_packages(session)
    session.run("ruff", "check", "src", "testenv", "tests", "noxfile.py")
    session.run("mypy", "--strict", "src/d3os_core")
    session.run("d3os-testenv", "build")
    session.run("pytest", "tests", "-q", *session.posargs, env=REQUIRE_TOOLS)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff on everything, mypy --strict on the core."""
    _install(session, "dev")
    session.run("ruff", "check", "src", "testenv", "tests", "noxfile.py")
    session.run("mypy", "--strict", "src/d3os_core")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Local control plane + operator + the seed's sample, with live progress."""
    _install(session)
    session.run("python", "-m", "d3os_testenv.demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks on the local control plane -- the operator beside the cluster alone and Helm, same run:
    prints a markdown table and writes bench/results.json (helm is built on first use, like the binaries)."""
    _install(session)
    session.run("d3os-testenv", "build")
    session.run("python", "bench/run.py", "--out", "bench/results.json", *session.posargs)


@nox.session(python=PYTHON)
def chaos(session: nox.Session) -> None:
    """Chaos at full size (30 operator SIGKILLs over 20 DataServices, apiserver down 20 s, a flapping check).

    The normal test run has the short version of the same tests."""
    _install(session)
    session.run("d3os-testenv", "build")
    session.run(
        "pytest", "tests/integration/test_chaos.py", "-v", "-s", *session.posargs, env={"D3OS_CHAOS": "full"}
    )


@nox.session(python=PYTHON)
def krew(session: nox.Session) -> None:
    """The krew plugin for linux/amd64: ``kubectl-d3os`` frozen by PyInstaller (the CLI with the ui extra and
    the installed products), packed as dist/kubectl-d3os_linux_amd64.tar.gz, and its manifest
    plugins/krew/d3os.yaml (``-- --base-url URL`` sets where the release's archives are downloaded from)."""
    session.install("-e", ".[ui,release]", "-e", "./testenv")
    session.run("python", "-m", "d3os_generate.krew", "--build", "--write", "plugins/krew", *session.posargs)
