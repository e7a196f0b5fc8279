"""The command lines meet people where they are: --version, completion, a description for every
subcommand and help for every argument, one-line errors with documented exit codes (a traceback only
with --debug). Errors that need a cluster (forbidden, not found) are in tests/integration/test_cli_cluster.py."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from d3os_operator import __version__
from d3os_operator.cli import build_parser as operator_parser
from d3os_operator.usercli import build_parser as user_parser
from d3os_operator.usercli import errors as clierrors
from d3os_operator.usercli.completion import script
from d3os_testenv import cli as testenv_cli

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "examples" / "dataservice-sample.yaml"
PARSERS = {"d3os": user_parser, "d3os-operator": operator_parser, "d3os-testenv": testenv_cli.build_parser}

UNREACHABLE = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def run(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent-home"}
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})}, cwd=ROOT)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@pytest.mark.parametrize("prog", [*PARSERS, "kubectl-d3os"])
def test_version(prog: str) -> None:
    out = run(prog, "--version")
    assert out.returncode == 0 and out.stdout.strip().endswith(__version__), out


@pytest.mark.parametrize("prog", PARSERS)
def test_every_subcommand_has_a_description_and_every_argument_help(prog: str) -> None:
    top = PARSERS[prog]()
    subs = subcommands(top)
    assert subs
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {a.dest: a.help for a in action._choices_actions}
            assert all(listed.get(n) and "see d3os" not in str(listed[n]) for n in subs), listed
    for name, sp in subs.items():
        assert sp.description and len(sp.description) > 20, f"{prog} {name}: no description"
        for action in sp._actions:
            assert action.help, f"{prog} {name} {action.option_strings or action.dest}: no help"


def test_help_texts_say_what_is_true() -> None:
    subs = subcommands(user_parser())
    ns = {a.dest: a.help for a in subs["status"]._actions}
    assert "file" not in str(ns["namespace"])
    assert "$D3OS_KUBECONFIG" in str(ns["kubeconfig"])
    assert "``" not in testenv_cli.build_parser().format_help()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize(
    ("prog", "line", "expected"),
    [
        ("d3os", "d3os st", {"status"}),
        ("d3os", "d3os plan --third-party ", {"up", "down", "unknown"}),
        ("d3os", "d3os completion ", {"bash", "zsh", "fish", "-h", "--help"}),
        ("d3os-testenv", "d3os-testenv component st", {"stop", "start"}),
        ("d3os-operator", "d3os-operator run --log-format ", {"text", "json"}),
    ],
)
def test_bash_completion(prog: str, line: str, expected: set[str]) -> None:
    words = line.split(" ")
    text = script("bash", PARSERS[prog](), prog)
    fn = "_" + prog.replace("-", "_")
    cmd = (f"{text}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; {fn}; "
           'printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True)
    assert set(out.stdout.split()) == expected


def test_completion_commands_print_scripts() -> None:
    for prog in ("d3os", "d3os-operator", "d3os-testenv", "kubectl-d3os"):
        for shell in ("bash", "zsh"):
            out = run(prog, "completion", shell)
            assert out.returncode == 0 and "complete -o default -F" in out.stdout, (prog, shell, out.stderr)
            assert shell != "zsh" or "bashcompinit" in out.stdout


def one_line_error(out: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert out.returncode == code, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("prog", ["d3os", "kubectl-d3os"])
def test_no_kubeconfig(prog: str) -> None:
    one_line_error(run(prog, "status", "x"), clierrors.EXIT_CONFIG, "kubeconfig", "$D3OS_KUBECONFIG")
    one_line_error(run(prog, "apply", str(SAMPLE), "--kubeconfig", "/nonexistent/kc"), clierrors.EXIT_CONFIG,
                   "/nonexistent/kc")


def test_operator_without_kubeconfig() -> None:
    out = run("d3os-operator", "run", "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
    one_line_error(out, clierrors.EXIT_CONFIG, "kubeconfig")


def test_unknown_context(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text(UNREACHABLE)
    one_line_error(run("d3os", "status", "x", "--kubeconfig", str(kc), "--context", "nope"), clierrors.EXIT_CONFIG,
                   "nope")


def test_unreachable_server(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text(UNREACHABLE)
    for cmd in (("status", "x"), ("diff", str(SAMPLE)), ("apply", str(SAMPLE))):
        one_line_error(run("d3os", *cmd, "--kubeconfig", str(kc)), clierrors.EXIT_UNREACHABLE, "127.0.0.1:1")
    out = run("d3os-operator", "run", "--kubeconfig", str(kc), "--metrics-bind-address", "0",
              "--health-probe-bind-address", "0")
    one_line_error(out, clierrors.EXIT_UNREACHABLE, "https://127.0.0.1:1")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text(UNREACHABLE)
    out = run("d3os", "--debug", "status", "x", "--kubeconfig", str(kc))
    assert out.returncode == clierrors.EXIT_UNREACHABLE and "Traceback" in out.stderr
    out = run("d3os", "status", "x", "--kubeconfig", str(kc), env={"D3OS_DEBUG": "1"})
    assert "Traceback" in out.stderr


def test_invalid_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    one_line_error(run("d3os", "apply", str(bad)), clierrors.EXIT_INVALID, "not valid YAML")
    one_line_error(run("d3os", "diff", str(tmp_path / "missing.yaml")), clierrors.EXIT_INVALID, "missing.yaml")
    one_line_error(run("d3os", "render", str(tmp_path / "missing.yaml")), clierrors.EXIT_INVALID, "missing.yaml")


def test_a_bug_is_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> int:
        raise TypeError("unexpected")

    assert clierrors.run("d3os", boom, debug=False) == clierrors.EXIT_BUG
    err = capsys.readouterr().err
    assert err == "d3os: error: internal error: TypeError: unexpected (--debug shows the traceback)\n"
    assert clierrors.run("d3os", boom, debug=True) == clierrors.EXIT_BUG
    assert "Traceback" in capsys.readouterr().err


def test_exit_codes_are_documented() -> None:
    docs = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for code in (clierrors.EXIT_CONFIG, clierrors.EXIT_UNREACHABLE, clierrors.EXIT_FORBIDDEN,
                 clierrors.EXIT_NOT_FOUND, clierrors.EXIT_API, clierrors.EXIT_BUG):
        assert f"| {code} |" in docs, f"docs/operations.md: exit code {code} is not in the table"


def test_a_resource_the_server_does_not_serve_is_not_found_with_a_hint() -> None:
    """What a cluster without the CRD answers: a plain-text 404 for the resource path."""
    import httpx2

    url = "https://127.0.0.1:6443/apis/d3os-product.com.d3os/v1/namespaces/team-a/dataservices/x"
    request = httpx2.Request("GET", url)
    response = httpx2.Response(404, text="404 page not found", request=request)
    exc = httpx2.HTTPStatusError("Client error '404 Not Found'", request=request, response=response)
    code, message = clierrors.describe(exc) or (0, "")
    assert code == clierrors.EXIT_NOT_FOUND
    assert "get dataservices/x in namespace team-a" in message and "CRD" in message
