"""Issue 26 item 1: the kubeconfig as kubectl reads it. A colon-separated ``$KUBECONFIG`` is merged as kubectl
merges it (kubectl itself is the oracle: ``kubectl config view --minify --raw``), and a malformed file is one
line naming the file and the problem, exit 3, for ``d3os`` and ``d3os-operator run`` alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from d3os_operator.usercli import errors as clierrors
from d3os_operator.usercli import kubeconfig

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

A = """apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:1", certificate-authority: ca.crt}
contexts:
- name: ctxA
  context: {cluster: c1, user: u1, namespace: team-a}
users:
- name: u1
  user: {token: aaa}
"""
B = """apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:2"}
- name: c2
  cluster: {server: "https://127.0.0.1:3"}
contexts:
- name: ctxB
  context: {cluster: c2, user: u1, namespace: team-b}
- name: ctxC
  context: {cluster: c1, user: u2}
users:
- name: u1
  user: {token: bbb}
- name: u2
  user: {token: ccc}
current-context: ctxB
"""
C = """apiVersion: v1
kind: Config
current-context: ctxA
"""


def _kubectl() -> Path:
    from d3os_testenv.build import Toolchain

    return Toolchain().binary("kubectl")


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    (tmp_path / "sub").mkdir()
    a, b, c = tmp_path / "a.yaml", tmp_path / "sub" / "b.yaml", tmp_path / "c.yaml"
    a.write_text(A)
    b.write_text(B)
    c.write_text(C)
    (tmp_path / "ca.crt").write_text("")  # named by a.yaml's cluster, relative to a.yaml
    return a, b, c


def _kubectl_view(kubeconfig_env: str, context: str | None) -> dict[str, Any]:
    cmd = [str(_kubectl()), "config", "view", "--minify", "--raw", "-o", "json"]
    out = subprocess.run(cmd + (["--context", context] if context else []), capture_output=True, text=True,
                         env={"KUBECONFIG": kubeconfig_env, "HOME": "/nonexistent-home"}, timeout=60, check=True)
    view: dict[str, Any] = json.loads(out.stdout)
    return view


@pytest.mark.parametrize("order", ["abc", "ba", "cba", "a-b"])
@pytest.mark.parametrize("context", [None, "ctxA", "ctxC"])
def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(tmp_path: Path, order: str, context: str | None) -> None:
    a, b, c = _files(tmp_path)
    paths = {"a": str(a), "b": str(b), "c": str(c), "-": str(tmp_path / "missing.yaml")}
    env = ":".join(paths[x] for x in order)
    view = _kubectl_view(env, context)
    config = kubeconfig.load(None, context, env={"KUBECONFIG": env})
    single = config.get(context)
    assert single is not None
    assert single.context_name == view["current-context"]
    assert single.cluster.server == view["clusters"][0]["cluster"]["server"]
    assert (single.user.token if single.user else None) == view["users"][0]["user"].get("token")
    assert single.namespace == (view["contexts"][0]["context"].get("namespace") or "default")


def test_relative_files_are_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    a, b, _ = _files(tmp_path)
    single = kubeconfig.load(None, "ctxA", env={"KUBECONFIG": f"{a}:{b}"}).get("ctxA")
    assert single is not None and single.cluster.certificate_auth == str(tmp_path / "ca.crt")


def test_d3os_kubeconfig_comes_before_kubeconfig(tmp_path: Path) -> None:
    a, b, _ = _files(tmp_path)
    single = kubeconfig.load(None, "ctxA", env={"D3OS_KUBECONFIG": str(a), "KUBECONFIG": str(b)}).get("ctxA")
    assert single is not None and single.cluster.server == "https://127.0.0.1:1"
    with pytest.raises(clierrors.CliError, match="context 'ctxB' not found"):
        kubeconfig.load(None, "ctxB", env={"D3OS_KUBECONFIG": str(a), "KUBECONFIG": str(b)})


BAD = {
    "invalid-yaml": ("clusters: [\n  - name: x\n", "not valid YAML at line 2, column 3"),
    "empty-mapping": ("{}\n", "no current-context is set"),
    "no-clusters": ("contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n", "cluster 'c' not found"),
    "a-list": ("- a\n- b\n", "not a kubeconfig: expected a mapping"),
    "clusters-not-a-list": ("clusters: {c: 1}\n", "clusters: expected a list"),
    "context-body-missing": ("contexts: [{name: x}]\n", "contexts[0] (x): context: expected a mapping"),
    "unknown-current": (A + "current-context: nope\n", "context 'nope' not found; contexts: ctxA"),
    "no-server": ("clusters: [{name: c, cluster: {}}]\ncontexts: [{name: x, context: {cluster: c}}]\n"
                  "current-context: x\n", "cluster 'c': no server"),
}


def run(*cmd: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent-home"}
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=60,
                          env={**base, **env}, cwd=ROOT)


def one_line(out: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert out.returncode == code, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_kubeconfig_is_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    text, problem = BAD[case]
    bad = tmp_path / f"{case}.yaml"
    bad.write_text(text)
    with pytest.raises(clierrors.CliError) as caught:
        kubeconfig.load(str(bad), None)
    assert caught.value.code == clierrors.EXIT_CONFIG
    assert str(bad) in caught.value.message and problem in caught.value.message, caught.value.message


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    """a.yaml's cluster names ca.crt beside it, which does not exist: kubectl refuses it too."""
    a, _, _ = _files(tmp_path)
    (tmp_path / "ca.crt").unlink()
    out = run("d3os", "status", "x", "--context", "ctxA", env={"KUBECONFIG": str(a)})
    one_line(out, clierrors.EXIT_CONFIG, str(a), f"certificate-authority {tmp_path / 'ca.crt'}: no such file")
    view = subprocess.run([str(_kubectl()), "get", "ns", "--context", "ctxA"], capture_output=True, text=True,
                          env={"KUBECONFIG": str(a), "HOME": "/nonexistent-home"}, timeout=60)
    assert view.returncode != 0 and "ca.crt" in view.stderr, view


def test_binary_kubeconfig(tmp_path: Path) -> None:
    bad = tmp_path / "bin"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(clierrors.CliError) as caught:
        kubeconfig.load(None, None, env={"KUBECONFIG": f"{tmp_path / 'none'}:{bad}"})
    assert f"kubeconfig {bad}: not text" in caught.value.message


@pytest.mark.parametrize("case", ["invalid-yaml", "empty-mapping", "no-clusters"])
def test_the_command_lines_say_it_in_one_line(tmp_path: Path, case: str) -> None:
    """What the issue saw: a multi-line ParserError/AttributeError/KeyError, exit 70, from d3os and the operator."""
    bad = tmp_path / "kc"
    bad.write_text(BAD[case][0])
    a, _, _ = _files(tmp_path)
    for env in ({"KUBECONFIG": str(bad)}, {"KUBECONFIG": f"{bad}:{a}"}):
        one_line(run("d3os", "status", "x", env=env), clierrors.EXIT_CONFIG, str(bad))
        one_line(run("kubectl-d3os", "history", "x", env=env), clierrors.EXIT_CONFIG, str(bad))
    out = run("d3os-operator", "run", "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
              env={"KUBECONFIG": f"{bad}:{a}"})
    one_line(out, clierrors.EXIT_CONFIG, str(bad))


def test_the_operator_merges_the_list_too(tmp_path: Path) -> None:
    """KUBECONFIG=b:a names the first file's cluster c1 (unreachable here, which shows which one was used)."""
    a, b, _ = _files(tmp_path)
    out = run("d3os-operator", "run", "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
              "--context", "ctxA", env={"KUBECONFIG": f"{tmp_path / 'missing'}:{b}:{a}"})
    one_line(out, clierrors.EXIT_UNREACHABLE, "https://127.0.0.1:2")
    out = run("d3os", "status", "x", env={"KUBECONFIG": f"{a}:{b}"})
    one_line(out, clierrors.EXIT_UNREACHABLE, "https://127.0.0.1:3")
