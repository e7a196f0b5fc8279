"""The docs cannot drift from the command line (issue 26, "Docs that match"): every offline ``d3os`` command
shown in README.md and docs/*.md runs here as written (in a folder holding the repository's examples and
products), exits 0 -- or the code its docs give -- and where the docs show its output, prints exactly that.
The commands that need a cluster run in tests/integration/test_cli_docs.py; the exit-code table is checked
case by case in test_docs_exit_codes.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docs_commands import ROOT, Shown, shown_commands

BIN = Path(sys.executable).parent
OFFLINE = [c for c in shown_commands() if c.offline]


def _typo_in_uses(folder: Path) -> None:
    """products.md, step 6: "a typo in `uses`" (the second component's)."""
    f = folder / "products" / "analytics" / "product.yaml"
    f.write_text(f.read_text(encoding="utf-8").replace("uses: [kafka]", "uses: [kafak]", 1), encoding="utf-8")


def _new_version(folder: Path) -> None:
    """products.md, step 8: "Edit the file (...), raise `metadata.version`"."""
    f = folder / "products" / "analytics" / "product.yaml"
    text = f.read_text(encoding="utf-8").replace("version: 2.0.0", "version: 2.1.0", 1)
    text = text.replace("    uses: [kafka]\n", "    uses: [kafka]\n    config:\n      LOG_FORMAT: json\n")
    f.write_text(text, encoding="utf-8")


SETUP: dict[str, Callable[[Path], None]] = {
    "docs/products.md:173": _typo_in_uses,
    "docs/products.md:222": _new_version,
}
"""Commands the docs show on an edited file (the prose before them says which edit)."""
EXIT: dict[str, int] = {"docs/products.md:173": 2, "docs/products.md:222": 1}
"""Exit codes the docs give beside the command (2: refused; ``product diff``: 1 = changes)."""
KUBECTL_PIPES = {"docs/products.md:202"}
"""``… | kubectl apply``: the cluster half runs in tests/integration/test_cli_docs.py; here the d3os half."""


def _run(shown: Shown, folder: Path) -> subprocess.CompletedProcess[str]:
    command = shown.command.split(" | kubectl")[0] if key(shown) in KUBECTL_PIPES else shown.command
    if "path/to/new/analytics" in command:  # README: "a new version" of the folder; the unchanged one says 0
        command = command.replace("path/to/new/analytics", "products/analytics")
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=300,
                          cwd=folder, env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(folder)})


def key(c: Shown) -> str:
    return f"{c.path.relative_to(ROOT)}:{c.line}"


def test_the_docs_show_offline_commands() -> None:
    assert len(OFFLINE) >= 20 and {c.path.name for c in OFFLINE} >= {"README.md", "products.md"}
    assert set(SETUP) | set(EXIT) | KUBECTL_PIPES <= {key(c) for c in OFFLINE}, "a listed line moved"


@pytest.mark.parametrize("shown", OFFLINE, ids=key)
def test_an_offline_command_runs_as_shown(shown: Shown, tmp_path: Path) -> None:
    for part in ("examples", "README.md", "docs"):
        (tmp_path / part).symlink_to(ROOT / part)
    shutil.copytree(ROOT / "products", tmp_path / "products")
    SETUP.get(key(shown), lambda _: None)(tmp_path)
    before = [c for c in OFFLINE if c.path == shown.path and c.block == shown.block and c.line < shown.line]
    for earlier in before:  # what the block did before this line (`… > my.yaml`, then `d3os validate my.yaml`)
        assert _run(earlier, tmp_path).returncode == EXIT.get(key(earlier), 0), earlier.where()
    out = _run(shown, tmp_path)
    assert out.returncode == EXIT.get(key(shown), 0), (shown.where(), out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    if shown.output:
        printed = (out.stdout + out.stderr).splitlines()
        assert printed == list(shown.output), shown.where()
