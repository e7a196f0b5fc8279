"""The built tools a test needs (helm, kubectl, promtool, the Argo CD health checker): under nox -- the README's
test command and CI, which build them first -- a missing tool fails the test; only a bare ``pytest`` run on a
machine that never ran ``d3os-testenv build`` skips it (``D3OS_REQUIRE_TOOLS=1`` is nox's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def need(path: Path, what: str) -> Path:
    """``path`` when it exists; else fail (under nox) or skip (a bare pytest run), saying how to build it."""
    if path.exists():
        return path
    message = f"{what} not built ({path}); run d3os-testenv build"
    if os.environ.get("D3OS_REQUIRE_TOOLS") == "1":
        pytest.fail(message + " -- nox builds it before the tests, so its absence is a failure here")
    pytest.skip(message)
