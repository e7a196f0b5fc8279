"""Issue 26 items 2, 3 and 6 (offline part): input that is not an instance is refused in one line, exit 2, saying
what was found; ``apply``/``diff`` give the offline verdict before any request (the kubeconfig here points at
a port nothing listens on, so a request would be exit 4); ``plan`` of an invalid spec is exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from d3os_operator.usercli import errors as clierrors

MAX_INSTANCE_BYTES = 3 * 1024 * 1024  # the API server's request body limit

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "examples" / "dataservice-sample.yaml"
UNREACHABLE = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""
COMMANDS = ("validate", "render", "plan", "apply", "diff")


def run(*cmd: str, kubeconfig: Path | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent-home"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    out = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, timeout=120, env=env, cwd=ROOT,
                         input=stdin)
    return subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode(), out.stderr.decode())


def lines_of(out: subprocess.CompletedProcess[str], code: int, *words: str) -> list[str]:
    assert out.returncode == code, out
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    for w in words:
        assert w in lines[0], lines[0]
    return lines


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    kc = tmp_path / "kc"
    kc.write_text(UNREACHABLE)
    return kc


@pytest.mark.parametrize("command", COMMANDS)
def test_a_binary_file_is_not_text(tmp_path: Path, kubeconfig: Path, command: str) -> None:
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    lines = lines_of(run("d3os", command, str(binary), kubeconfig=kubeconfig), clierrors.EXIT_INVALID,
                     f"d3os: error: {binary}: not a YAML text file: byte 0x89 at offset 0 is not UTF-8")
    assert len(lines) == 1


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_too_large_to_apply_is_refused_before_it_is_parsed(tmp_path: Path, kubeconfig: Path,
                                                                  command: str) -> None:
    """10 MB of one scalar: refused by size (the API server takes 3 MiB at most), not after PyYAML parsed it."""
    big = tmp_path / "big.yaml"
    big.write_text(SAMPLE.read_text(encoding="utf-8") + "    note: " + "a" * 10_000_000 + "\n", encoding="utf-8")
    lines = lines_of(run("d3os", command, str(big), kubeconfig=kubeconfig), clierrors.EXIT_INVALID,
                     f"{big}: larger than 3 MiB")
    assert len(lines) == 1
    stdin = run("d3os", command, "-", kubeconfig=kubeconfig, stdin=b"a: " + b"b" * (MAX_INSTANCE_BYTES + 1))
    lines_of(stdin, clierrors.EXIT_INVALID, "-: larger than 3 MiB")


@pytest.mark.parametrize(("content", "found"), [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n", "found a ConfigMap (settings)"),
    ("", "found nothing (no YAML document)"),
    ("just a string\n", "found a string"),
    ("- a\n- b\n", "found a list"),
    ("name: x\n", "found a mapping without a kind"),
    ("kind: Secret\n---\nkind: Pod\nmetadata: {name: p}\n", "found a Secret, a Pod (p)"),
])
def test_what_was_found_is_said(tmp_path: Path, content: str, found: str) -> None:
    f = tmp_path / "f.yaml"
    f.write_text(content, encoding="utf-8")
    for command in ("validate", "render", "plan"):
        lines = lines_of(run("d3os", command, str(f)), clierrors.EXIT_INVALID, "expected exactly one", found)
        assert len(lines) == 1 and "found 0" not in lines[0]


@pytest.mark.parametrize("command", ["apply", "diff", "plan", "render"])
def test_an_invalid_spec_is_refused_offline_with_the_field_path(tmp_path: Path, kubeconfig: Path,
                                                                command: str) -> None:
    """Items 3 and 6: what ``d3os validate`` says, before any request (a request would be exit 4 here)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(SAMPLE.read_text(encoding="utf-8").replace("port: 9085", 'port: "9085x"')
                   .replace("replica: 1\n", "replica: -1\n", 1), encoding="utf-8")
    validate = run("d3os", "validate", str(bad))
    assert validate.returncode == clierrors.EXIT_INVALID
    expected = [f"d3os: error: {bad}: {line}" for line in validate.stderr.splitlines()]
    assert len(expected) == 2
    out = run("d3os", command, str(bad), kubeconfig=kubeconfig)
    assert lines_of(out, clierrors.EXIT_INVALID, "spec.") == expected
    assert out.stdout == ""
