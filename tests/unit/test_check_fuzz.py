"""Fuzz: whatever a resource says in ``checkCMD``, it is parsed into a check or refused; nothing runs."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d3os_core import validate_spec
from d3os_core.checks import CheckError, parse_check_cmd
from d3os_core.types import HttpCheck, TcpCheck

from .helpers import DATASERVICE, sample

EXAMPLES = int(os.environ.get("D3OS_FUZZ_EXAMPLES", "10000"))
CALLS: list[str] = []

SHELLISH = [";", "|", "&", "&&", "||", "$(", ")", "`", ">", "<", ">>", "\n", "\\", "'", '"', "*", "?", "#",
            "~", "!", "{", "}", "${IFS}", "%0a"]
WORDS = ["curl", "nc", "sh", "bash", "-c", "id", "rm", "-rf", "/", "--head", "--fail", "--silent", "-o",
         "--output", "/dev/null", "-m", "3", "-z", "-w", "host", "3306", "http://a", "https://id.cosmoplat.com/duc",
         "file:///etc/passwd", "--data", "@/etc/passwd", "-K", "--config", "-e", "/bin/sh", "wget", "python"]


def _forbidden(*args: Any, **kwargs: Any) -> Any:
    CALLS.append(repr(args)[:200])
    raise AssertionError("a check reached a subprocess or a shell")


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("Popen", "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"):
        monkeypatch.setattr(subprocess, name, _forbidden)
    for name in ("system", "popen", "execv", "execve", "execvp", "execvpe", "spawnv", "spawnve", "posix_spawn",
                 "posix_spawnp", "fork", "forkpty"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _forbidden)


commands = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(SHELLISH), st.text(max_size=12)), max_size=14)
    .map(" ".join),
    st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(SHELLISH)), max_size=10).map("".join),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cmd=commands)
def test_parser_returns_a_check_or_a_reason_and_never_runs_anything(cmd: str) -> None:
    try:
        check = parse_check_cmd(cmd)
    except CheckError as exc:
        assert str(exc)
        return
    assert isinstance(check, (HttpCheck, TcpCheck))
    assert not any(c in cmd for c in ";|&$`<>()\n\r\\"), f"shell syntax accepted: {cmd!r}"
    if isinstance(check, HttpCheck):
        assert check.url.startswith(("http://", "https://"))
    else:
        assert 1 <= check.port <= 65535


@settings(max_examples=max(EXAMPLES // 10, 100), deadline=None)
@given(cmd=commands)
def test_validation_of_a_whole_resource_never_runs_anything(cmd: str) -> None:
    spec = sample()["spec"]
    spec["uuc"]["thirdParty"]["checkCMD"] = cmd
    errors = validate_spec(spec, DATASERVICE)
    assert all(e.path.startswith("spec.uuc.thirdParty") for e in errors), errors


def test_the_tripwire_catches_a_process() -> None:
    """The guard the tests above rely on: starting a process or a shell fails the test, and is recorded."""
    with pytest.raises(AssertionError, match="subprocess or a shell"):
        subprocess.run(["true"], check=False)
    with pytest.raises(AssertionError, match="subprocess or a shell"):
        os.system("true")
    assert len(CALLS) == 2
    CALLS.clear()
