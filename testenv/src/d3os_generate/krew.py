"""The ``kubectl d3os`` krew plugin: a self-contained binary, its archive and its krew manifest.

Krew installs self-contained executables; ``d3os`` is Python. :func:`build_binary` freezes the CLI with
PyInstaller into one file ``kubectl-d3os`` (Python, the dependencies, the installed products of
``d3os_products`` and the UI's static files inside), :func:`pack` puts it in
``dist/kubectl-d3os_linux_amd64.tar.gz``, :func:`manifest` writes the krew ``Plugin`` with the archive's
sha256. ``nox -s krew`` runs all three (:func:`release`); tests/integration/test_krew.py runs the same
function, checks the manifest with krew's ``validate-krew-manifest`` and installs it with ``krew install
--manifest=... --archive=...``.

``python -m d3os_generate.krew --archive dist/kubectl-d3os_linux_amd64.tar.gz --write plugins/krew`` writes
the manifest for an archive already built; ``--build`` builds the binary and the archive first (``nox -s
krew`` runs ``--build --write plugins/krew``; add ``-- --base-url URL`` for another download location).

The manifest is not checked in: a PyInstaller binary is byte-reproducible only in one environment (two
builds in the same virtualenv gave the same sha256, ``PYTHONHASHSEED=0``), not across machines and
dependency versions (the dependencies are ranges, the bundled Python is the build machine's), so its
sha256 -- and the manifest's -- belongs to the environment that built it. The archive itself is packed
reproducibly (sorted, mtime 0, owner root) so that only the binary varies.

The one binary dispatches on the name it is run by, as the pip-installed console scripts do:
``kubectl-d3os`` (krew's link) is ``kubectl d3os``, a ``kubectl_complete-d3os`` link to it completes
``kubectl d3os <TAB>``, a ``d3os`` link is ``d3os``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
"""The repository (testenv/src/d3os_generate/krew.py)."""

PLUGIN = "d3os"
BINARY = "kubectl-d3os"
PLATFORM = ("linux", "amd64")
ARCHIVE = f"{BINARY}_{PLATFORM[0]}_{PLATFORM[1]}.tar.gz"
HOMEPAGE = "https://github.com/d3os/d3os-operator"
BASE_URL = f"{HOMEPAGE}/releases/download/v{{version}}"
"""Where a release's archives are downloaded from (``{version}``: the package version, no ``v``)."""
LICENSE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md")

ENTRY = '''\
"""kubectl-d3os (PyInstaller entry): the console script its name is (pyproject's [project.scripts])."""
import os
import sys

from d3os_operator.usercli import kubectl_complete, kubectl_main, main

_name = os.path.basename(sys.argv[0])
if _name.startswith("kubectl_complete-"):
    sys.exit(kubectl_complete())
sys.exit(main() if _name == "d3os" else kubectl_main())
'''


def version(repo: Path = REPO) -> str:
    """The package version (``d3os_operator.__version__``, which ``--version`` prints)."""
    for line in (repo / "src" / "d3os_operator" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("no __version__ in src/d3os_operator/__init__.py")


def _data(repo: Path) -> list[tuple[Path, str]]:
    """What the CLI reads through importlib.resources, as (source, destination in the bundle): the product
    folders of ``d3os_products`` (pyproject's package-data: ``*/product.yaml``, ``*/files/**``) and the
    UI's static files."""
    out: list[tuple[Path, str]] = []
    for product in sorted((repo / "products").glob("*/product.yaml")):
        out.append((product, f"d3os_products/{product.parent.name}"))
        if (product.parent / "files").is_dir():
            out.append((product.parent / "files", f"d3os_products/{product.parent.name}/files"))
    static = repo / "src" / "d3os_operator" / "usercli" / "ui" / "static"
    out.append((static, "d3os_operator/usercli/ui/static"))
    return out


def build_binary(repo: Path = REPO, out_dir: Path | None = None, python: str = sys.executable) -> Path:
    """Freeze the CLI into one executable ``<out_dir>/kubectl-d3os`` with PyInstaller (run by ``python``,
    whose environment holds the dependencies) and return its path. The packages are taken from the
    repository's sources, never from how they are installed (an editable install maps ``d3os_products``
    to ``products/`` through an import hook PyInstaller does not follow)."""
    out_dir = out_dir or repo / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="d3os-krew-") as tmp:
        work = Path(tmp)
        (work / "entry.py").write_text(ENTRY)
        (work / "pkgs").mkdir()
        (work / "pkgs" / "d3os_products").symlink_to(repo / "products")
        cmd = [
            python, "-m", "PyInstaller", "--onefile", "--noconfirm", "--clean", "--log-level=WARN",
            "--name", BINARY, "--distpath", str(out_dir), "--workpath", str(work / "build"),
            "--specpath", str(work), "--paths", str(repo / "src"), "--paths", str(work / "pkgs"),
            "--hidden-import", "d3os_products",
            # `d3os ui` (the ui extra) imports its server lazily; uvicorn picks its loop and protocols by name
            "--collect-submodules", "uvicorn",
        ]
        for src, dest in _data(repo):
            cmd += ["--add-data", f"{src}{os.pathsep}{dest}"]
        subprocess.run([*cmd, str(work / "entry.py")], check=True, cwd=work,
                       env={**os.environ, "PYTHONHASHSEED": "0"})
    binary = out_dir / BINARY
    if not binary.is_file():
        raise RuntimeError(f"PyInstaller wrote no {binary}")
    return binary


def _license(repo: Path) -> Path | None:
    return next((repo / n for n in LICENSE_NAMES if (repo / n).is_file()), None)


def pack(binary: Path, archive: Path, license_file: Path | None = None) -> Path:
    """``archive`` (.tar.gz) holding ``binary`` as ``kubectl-d3os`` (mode 755) and the license if any; the
    same inputs give the same bytes (sorted, mtime 0, owner root, gzip without a timestamp)."""
    members = [(BINARY, binary, 0o755)] + ([(license_file.name, license_file, 0o644)] if license_file else [])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path, mode in sorted(members):
            info = tarfile.TarInfo(name)
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    archive.parent.mkdir(parents=True, exist_ok=True)
    with archive.open("wb") as f, gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(buf.getvalue())
    return archive


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def archive_names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return sorted(tar.getnames())


def manifest(archive: Path, base_url: str = BASE_URL, pkg_version: str | None = None) -> dict[str, object]:
    """The krew ``Plugin`` for ``archive`` (linux/amd64): its download URL under ``base_url`` (``{version}``
    is replaced), its sha256, and the files it holds."""
    v = pkg_version or version()
    files: list[dict[str, str]] = [{"from": BINARY, "to": "."}]
    files += [{"from": n, "to": "."} for n in archive_names(archive) if n in LICENSE_NAMES]
    return {
        "apiVersion": "krew.googlecontainertools.github.com/v1alpha2",
        "kind": "Plugin",
        "metadata": {"name": PLUGIN},
        "spec": {
            "version": f"v{v}",
            "homepage": HOMEPAGE,
            "shortDescription": "Install and watch d3os DataServices in dependency order",
            "description": (
                "The d3os CLI as a kubectl plugin: validate, render and plan a DataService offline, apply it "
                "and follow each step until Ready, show its status, diff, revision history and rollback, and a "
                "live web page of every instance (kubectl d3os ui). The cluster commands need the d3os-operator "
                "running in the cluster."
            ),
            "platforms": [
                {
                    "selector": {"matchLabels": {"os": PLATFORM[0], "arch": PLATFORM[1]}},
                    "uri": f"{base_url.rstrip('/').format(version=v)}/{archive.name}",
                    "sha256": sha256(archive),
                    "bin": BINARY,
                    "files": files,
                }
            ],
        },
    }


def write_manifest(archive: Path, directory: Path, base_url: str = BASE_URL) -> Path:
    """``<directory>/d3os.yaml`` (krew wants the file named after the plugin)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{PLUGIN}.yaml"
    text = yaml.safe_dump(manifest(archive, base_url), sort_keys=False, default_flow_style=False, width=120)
    path.write_text("# Generated by `nox -s krew` (python -m d3os_generate.krew); not checked in: the sha256 is\n"
                    "# of one build's archive (the same only in the same environment).\n" + text)
    return path


def release(repo: Path = REPO, dist: Path | None = None, plugins: Path | None = None, base_url: str = BASE_URL,
            python: str = sys.executable, archive_name: str = ARCHIVE) -> tuple[Path, Path]:
    """Build the binary, pack it and write the manifest: (archive, manifest). ``nox -s krew`` and the
    integration test both run this."""
    dist = dist or repo / "dist"
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="d3os-krew-bin-") as tmp:
        binary = build_binary(repo, Path(tmp), python)
        size = binary.stat().st_size
        archive = pack(binary, dist / archive_name, _license(repo))
    path = write_manifest(archive, plugins or repo / "plugins" / "krew", base_url)
    print(f"{BINARY}: {size / 1e6:.1f} MB binary, {archive.stat().st_size / 1e6:.1f} MB {archive} "
          f"(sha256 {sha256(archive)}), manifest {path}, in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return archive, path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m d3os_generate.krew", description=__doc__.splitlines()[0])
    p.add_argument("--archive", type=Path, default=REPO / "dist" / ARCHIVE, help=f"the archive ({ARCHIVE})")
    p.add_argument("--write", metavar="DIR", type=Path,
                   help="write DIR/d3os.yaml (plugins/krew) instead of printing the manifest")
    p.add_argument("--base-url", default=BASE_URL,
                   help="where the release's archives are downloaded from; {version} is the package version "
                        f"(default {BASE_URL})")
    p.add_argument("--build", action="store_true", help="build the binary and the archive first (PyInstaller)")
    args = p.parse_args(argv)
    if args.build and args.write:
        release(REPO, args.archive.parent, args.write, args.base_url, archive_name=args.archive.name)
        return 0
    if args.build:
        with tempfile.TemporaryDirectory(prefix="d3os-krew-bin-") as tmp:
            pack(build_binary(REPO, Path(tmp)), args.archive, _license(REPO))
    if not args.archive.is_file():
        p.error(f"{args.archive}: no such archive (build it: nox -s krew, or --build)")
    if args.write:
        print(write_manifest(args.archive, args.write, args.base_url))
    else:
        sys.stdout.write(yaml.safe_dump(manifest(args.archive, args.base_url), sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
