"""Issue 26 item 7: ``kubectl d3os`` as a krew plugin that really installs.

The oracle is krew itself (built from the Go module proxy by ``d3os-testenv build``): the binary, archive and
manifest are built by the code ``nox -s krew`` runs (``d3os_generate.krew.release``: PyInstaller, about a
minute on 2 cores), krew's ``validate-krew-manifest`` checks the manifest, ``krew install --manifest=...
--archive=...`` installs it into a temporary ``KREW_ROOT``, and kubectl (from the testenv cache) runs the
plugin from ``$KREW_ROOT/bin``: its output must be what the pip-installed ``kubectl-d3os`` prints, for the
offline commands that read the installed products and their files (validate, render, plan, crd). A manifest whose
sha256 is not the archive's is refused by krew.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.tools import need

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SAMPLE = "examples/dataservice-sample.yaml"


def _krew_tool(name: str) -> Path:
    from d3os_testenv.build import GO_TOOLS, cache_root

    return need(GO_TOOLS["krew"].binary(cache_root(), name), f"{name} (krew)")


def _kubectl() -> Path:
    from d3os_testenv.build import Toolchain

    return need(Toolchain().binary("kubectl"), "kubectl")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(archive, manifest) of one PyInstaller build, as ``nox -s krew`` makes them."""
    from d3os_generate import krew

    out = tmp_path_factory.mktemp("krew-release")
    archive, manifest = krew.release(REPO, out / "dist", out / "plugins" / "krew")
    yield archive, manifest


def _krew_env(root: Path) -> dict[str, str]:
    return {**os.environ, "KREW_ROOT": str(root), "KREW_NO_UPGRADE_CHECK": "1",
            "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def _install(manifest: Path, archive: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(_krew_tool("krew")), "install", f"--manifest={manifest}", f"--archive={archive}"],
                          env=_krew_env(root), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_manifest_is_valid_for_krew(built: tuple[Path, Path]) -> None:
    _, manifest = built
    doc = yaml.safe_load(manifest.read_text())
    assert manifest.name == "d3os.yaml"
    assert doc["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2" and doc["kind"] == "Plugin"
    assert doc["metadata"]["name"] == "d3os"
    from d3os_operator import __version__

    assert doc["spec"]["version"] == f"v{__version__}"
    (platform,) = doc["spec"]["platforms"]
    assert platform["selector"] == {"matchLabels": {"os": "linux", "arch": "amd64"}}
    assert platform["bin"] == "kubectl-d3os"
    assert platform["uri"].endswith(f"/v{__version__}/kubectl-d3os_linux_amd64.tar.gz")
    # krew's own validator (the krew-index CI's); the download is replaced by krew install --archive below
    run = subprocess.run([str(_krew_tool("validate-krew-manifest")), "-manifest", str(manifest), "-skip-install"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "structural validation OK" in run.stderr


def test_krew_installs_and_kubectl_runs_it(built: tuple[Path, Path], tmp_path: Path) -> None:
    archive, manifest = built
    root = tmp_path / "krew"
    run = _install(manifest, archive, root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Installed plugin: d3os" in run.stdout + run.stderr
    assert (root / "bin" / "kubectl-d3os").exists()
    pip_installed = Path(sys.executable).parent / "kubectl-d3os"
    assert pip_installed.exists(), "the tests' environment has the console script kubectl-d3os"
    env = {**_krew_env(root), "D3OS_DEBUG": ""}
    for args in (["--version"], ["validate", SAMPLE], ["render", SAMPLE], ["plan", SAMPLE], ["crd"]):
        plugin = subprocess.run([str(_kubectl()), "d3os", *args], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=120)
        python = subprocess.run([str(pip_installed), *args], cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=120)
        assert plugin.returncode == python.returncode == 0, (args, plugin.stderr, python.stderr)
        assert plugin.stdout == python.stdout, args
        assert plugin.stdout.strip(), args
    version = subprocess.run([str(_kubectl()), "d3os", "--version"], env=env, capture_output=True, text=True,
                             timeout=60)
    from d3os_operator import __version__

    assert version.stdout == f"kubectl d3os {__version__}\n"


def test_krew_refuses_a_wrong_sha256(built: tuple[Path, Path], tmp_path: Path) -> None:
    """The manifest's sha256 is what krew checks: one digit off and nothing is installed."""
    archive, manifest = built
    doc = yaml.safe_load(manifest.read_text())
    sha = doc["spec"]["platforms"][0]["sha256"]
    doc["spec"]["platforms"][0]["sha256"] = ("0" if sha[0] != "0" else "1") + sha[1:]
    wrong = tmp_path / "wrong" / "d3os.yaml"
    wrong.parent.mkdir()
    wrong.write_text(yaml.safe_dump(doc))
    root = tmp_path / "krew"
    run = _install(wrong, archive, root)
    assert run.returncode != 0
    assert "checksum does not match" in run.stderr, run.stderr
    assert not (root / "bin" / "kubectl-d3os").exists()
