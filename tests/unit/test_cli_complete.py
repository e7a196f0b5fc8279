"""Issue 26 item 7 (offline part): ``d3os __complete`` answers as cobra's ``__complete`` does (candidates, then
``:DIRECTIVE``), from the parser and the installed products; the bash script ``d3os completion bash`` prints
runs it for every word, so a real bash completes what the engine answers. Names from the cluster and
``kubectl d3os <TAB>`` (kubectl the oracle): tests/integration/test_cli_cluster.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent-home", "KUBECONFIG": "/nonexistent/kc"}


def ask(*words: str, prog: str = "d3os") -> tuple[list[str], str]:
    args = ["__complete", *words] if prog == "d3os" else list(words)
    out = subprocess.run([str(BIN / prog), *args], capture_output=True, text=True, timeout=60, env=ENV, cwd=ROOT)
    assert out.returncode == 0 and out.stderr == "", out
    *candidates, directive = out.stdout.splitlines()
    return candidates, directive


CASES = [
    (("",), {"render", "validate", "plan", "crd", "reference", "product", "get", "status", "diff", "apply",
             "history", "rollback", "completion", "graph", "ui"}, ":4"),
    (("st",), {"status"}, ":4"),
    (("completion", ""), {"bash", "zsh", "fish"}, ":4"),
    (("plan", "--third-party", ""), {"up", "down", "unknown"}, ":4"),
    (("plan", "--third-party", "d"), {"down"}, ":4"),
    (("get", "-o", ""), {"json", "yaml", "wide", "name"}, ":4"),
    (("status", "--kind", ""), {"DataService", "dataservices", "dsvc", "AnalyticsService", "analyticsservices",
                                "asvc"}, ":4"),
    (("status", "--kind", "a"), {"analyticsservices", "asvc"}, ":4"),  # case-sensitive, as the shells
    (("status", "--kind", "A"), {"AnalyticsService"}, ":4"),
    (("history", "--out"), {"--output"}, ":4"),
    (("get", "--output=y"), {"--output=yaml"}, ":4"),
    (("apply", ""), set(), ":0"),  # a file: the shell completes file names
    (("apply", "--kubeconfig", ""), set(), ":0"),
    (("status", ""), set(), ":4"),  # names from the cluster: none reachable here, and never an error
    (("status", "-n", ""), set(), ":4"),
    (("__complete",), set(), ":4"),
]


@pytest.mark.parametrize(("words", "expected", "directive"), CASES, ids=[" ".join(c[0]) or "(empty)" for c in CASES])
def test_the_engine_answers(words: tuple[str, ...], expected: set[str], directive: str) -> None:
    candidates, said = ask(*words)
    assert (set(candidates), said) == (expected, directive)


def test_kubectl_complete_d3os_is_the_same_engine() -> None:
    assert ask("status", "--kind", "", prog="kubectl_complete-d3os") == ask("status", "--kind", "")


def test_the_hidden_command_is_hidden() -> None:
    help_text = subprocess.run([str(BIN / "d3os"), "--help"], capture_output=True, text=True, env=ENV).stdout
    assert "__complete" not in help_text


@pytest.mark.parametrize(("line", "expected"), [
    ("d3os st", {"status"}),
    ("d3os status --kind as", {"asvc"}),
    ("d3os completion f", {"fish"}),
    ("d3os get -o j", {"json"}),
])
def test_bash_completes_what_the_engine_answers(line: str, expected: set[str]) -> None:
    script = subprocess.run([str(BIN / "d3os"), "completion", "bash"], capture_output=True, text=True, env=ENV,
                            check=True).stdout
    words = line.split(" ")
    cmd = (f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; _d3os; "
           'printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True, env=ENV)
    assert set(out.stdout.split()) == expected


SHELL_LINES = [("d3os st", {"status"}), ("d3os status --kind as", {"asvc"}), ("d3os completion f", {"fish"}),
               ("d3os get -o j", {"json"})]


@pytest.mark.parametrize(("line", "expected"), SHELL_LINES)
def test_fish_completes_what_the_engine_answers(line: str, expected: set[str], tmp_path: Path) -> None:
    """fish's own ``complete -C`` (what a TAB shows) with the script ``d3os completion fish`` prints loaded."""
    script = tmp_path / "d3os.fish"
    script.write_text(subprocess.run([str(BIN / "d3os"), "completion", "fish"], capture_output=True, text=True,
                                     env=ENV, check=True).stdout)
    out = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
                         capture_output=True, text=True, check=True, env=ENV)
    assert {ln.split("\t")[0] for ln in out.stdout.splitlines()} == expected, out


@pytest.mark.parametrize(("line", "expected"), SHELL_LINES)
def test_zsh_completes_what_the_engine_answers(line: str, expected: set[str], tmp_path: Path) -> None:
    """zsh with the script ``d3os completion zsh`` prints, the function called as zsh's bashcompinit calls it
    (``compgen -F``, under ``emulate sh``): an earlier script ran in bash only (``${a[@]:1:COMP_CWORD}`` is a
    zsh history modifier)."""
    script = subprocess.run([str(BIN / "d3os"), "completion", "zsh"], capture_output=True, text=True, env=ENV,
                            check=True).stdout
    words = line.split(" ")
    cmd = (f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
           f"compgen -F _d3os -- {words[-1]!r}")
    out = subprocess.run(["zsh", "-f", "-c", cmd], capture_output=True, text=True, check=True,
                         env={**ENV, "ZDOTDIR": str(tmp_path)}, cwd=tmp_path)
    assert set(out.stdout.split()) == expected, out


def test_bash_falls_back_to_files_only_where_a_file_goes(tmp_path: Path) -> None:
    (tmp_path / "my-instance.yaml").write_text("")
    script = subprocess.run([str(BIN / "d3os"), "completion", "bash"], capture_output=True, text=True, env=ENV,
                            check=True).stdout
    for words, expected in ((["d3os", "apply", "my-"], {"my-instance.yaml"}), (["d3os", "status", "my-"], set())):
        cmd = (f"{script}\nCOMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}; _d3os; "
               'printf "%s\\n" "${COMPREPLY[@]}"')
        out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True, env=ENV, cwd=tmp_path)
        assert set(out.stdout.split()) == expected, words


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_every_shell_script_asks_the_engine(shell: str) -> None:
    for prog, command in (("d3os", "d3os"), ("kubectl-d3os", "kubectl-d3os")):
        out = subprocess.run([str(BIN / prog), "completion", shell], capture_output=True, text=True, env=ENV)
        assert out.returncode == 0 and f"{command} __complete" in out.stdout, out
