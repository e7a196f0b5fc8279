"""The snippets of docs/integrations.md, by name (``<!-- snippet: NAME -->`` before a fenced block), so the
tests run or check the very text a reader copies."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
MARKED = re.compile(r"<!-- snippet: ([\w-]+) -->\n```\w*\n(.*?)```", re.S)


def snippets() -> dict[str, str]:
    return {name: body for name, body in MARKED.findall(DOC.read_text(encoding="utf-8"))}


def snippet(name: str) -> str:
    return snippets()[name]


def command(name: str) -> list[str]:
    """A one-command snippet as argv (backslash-newlines joined)."""
    return shlex.split(snippet(name).replace("\\\n", " "))
