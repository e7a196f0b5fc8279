"""docs/operations.md's one table of exit codes, checked case by case (issue 26 item 6): the codes are exactly
those of ``d3os_operator.usercli.errors``, and every example the table gives runs as written and exits with
its row's code -- here those that need no cluster (0, 2, 3, 4); those that do (1, 5, 6, 7, 130) in
tests/integration/test_cli_docs.py. 70 (a bug) has no command that makes it: test_cli_ux.py's
test_a_bug_is_one_line_too checks it."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from d3os_operator.usercli import errors
from tests.docs_commands import ROOT, exit_code_table

BIN = Path(sys.executable).parent
OFFLINE_CODES = (0, 2, 3, 4)
STOPPED = """apiVersion: v1
kind: Config
clusters: [{name: stopped, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: stopped, context: {cluster: stopped, user: u}}]
current-context: stopped
"""
CASES = [(row.code, example) for row in exit_code_table() if row.code in OFFLINE_CODES for example in row.examples]


def test_the_table_has_every_code_and_only_those() -> None:
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_") and isinstance(v, int)}
    rows = exit_code_table()
    assert sorted(r.code for r in rows) == sorted(codes)
    assert [r.code for r in rows if not r.examples] == [errors.EXIT_BUG]
    assert all(f"{r.code} " in errors.EXIT_CODES_HELP for r in rows)


@pytest.mark.parametrize(("code", "example"), CASES, ids=[f"{c}: {e}" for c, e in CASES])
def test_each_offline_case_exits_with_its_code(code: int, example: str, tmp_path: Path) -> None:
    """``stopped-cluster.kubeconfig``: a kubeconfig whose API server is not running (it is also the current
    kubeconfig, so that ``--context no-such-context`` has contexts to miss)."""
    (tmp_path / "stopped-cluster.kubeconfig").write_text(STOPPED)
    for part in ("examples", "README.md"):
        (tmp_path / part).symlink_to(ROOT / part)
    out = subprocess.run([str(BIN / "d3os"), *shlex.split(example)[1:]], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path,
                         env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path),
                              "KUBECONFIG": str(tmp_path / "stopped-cluster.kubeconfig")})
    assert out.returncode == code, (example, out.stderr)
    assert "Traceback" not in out.stderr
    if code:
        assert out.stderr.startswith(("d3os: error: ", "usage: ")), out.stderr
