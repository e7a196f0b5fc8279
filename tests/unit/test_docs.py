"""The documentation matches the code: the README's offline command blocks run, the docs name only files
that exist in the repository and nothing outside it, the reference's generic rows name no one component,
and nox picks a Python the project supports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "charts" / "d3os-operator" / "values.yaml",
        ROOT / "charts" / "d3os-operator" / "templates" / "NOTES.txt"]
OFFLINE = ("render", "validate", "plan", "crd", "reference")


def readme_offline_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 2 and words[0] == "d3os" and words[1] in OFFLINE:
                lines.append(" ".join(words))
    return lines


def test_the_readme_shows_the_offline_commands() -> None:
    assert {c.split()[1] for c in readme_offline_commands()} >= {"validate", "render", "plan", "crd"}


def test_the_readmes_offline_commands_run(tmp_path: Path) -> None:
    script = "set -e\n" + "\n".join(c.replace("/tmp/", f"{tmp_path}/") for c in readme_offline_commands())
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "apply:" in out.stdout and "kind: CustomResourceDefinition" not in out.stdout  # crd went to a file
    assert (tmp_path / "d3os-crd.yaml").read_text(encoding="utf-8").startswith("apiVersion: apiextensions")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_refer_to_nothing_outside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for pattern in (r"\.\./", r"\bshared/", r"/work/", r"DESIGN\.md", r"seed/000_"):
        assert not re.search(pattern, text), f"{doc.name}: {pattern}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_files_the_docs_name_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:src|testenv|docs|examples|config|charts|crds|tests|bench)/[\w./-]+?)`", text))
    missing = sorted(p for p in named if "*" not in p and not (ROOT / p.rstrip("/")).exists())
    assert missing == [], f"{doc.name} names files that do not exist"


def test_the_reference_keeps_component_specific_rules_out_of_generic_rows() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith(("| `spec.<middleware>", "| `spec.<microservice>")):
            assert not re.search(r"spec\.(mysql|uuc|eureka|api-manager)\.", line), line
    microservice_rows = [r for r in text.splitlines() if r.startswith("| `auth` |")]
    assert microservice_rows and "(required)" in microservice_rows[0].split("|")[5]


def test_nox_runs_on_any_supported_python() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        import noxfile
    finally:
        sys.path.remove(str(ROOT))
    assert noxfile.pick_python((3, 13), lambda _: None) == "3.13"
    assert noxfile.pick_python((3, 12), lambda _: None) == "3.12"
    assert noxfile.pick_python((3, 10), lambda name: name == "python3.12") == "3.12"
    assert noxfile.pick_python((3, 10), lambda name: name in ("python3.11", "python3.13")) == "3.13"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "3.11, 3.12 or 3.13" in readme
