"""Under nox (which builds the tools first) a missing tool fails a test instead of skipping it (issue 24, C13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools import need


def test_a_missing_tool_fails_under_nox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("D3OS_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="helm not built"):
        need(tmp_path / "helm", "helm")


def test_a_missing_tool_skips_a_bare_pytest_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("D3OS_REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception):
        need(tmp_path / "helm", "helm")
    (tmp_path / "helm").write_text("")
    assert need(tmp_path / "helm", "helm") == tmp_path / "helm"


def test_nox_requires_the_tools_where_it_builds_them() -> None:
    text = (Path(__file__).resolve().parents[2] / "noxfile.py").read_text(encoding="utf-8")
    assert text.count("env=REQUIRE_TOOLS") == 2, "the integration and tests sessions"
