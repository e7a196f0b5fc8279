"""The ``d3os`` commands the docs show, read from the docs themselves, so that tests run them as written:

- :func:`exit_code_table`: docs/operations.md's one table of exit codes -- (code, meaning, example commands);
- :func:`shown_commands`: every ``d3os …`` command line in a fenced code block of README.md and docs/*.md
  (``$ `` prompts and trailing ``# comments`` removed), with the file and line it is on, and the output lines
  the docs show after it (a transcript), if any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
OFFLINE = ("validate", "render", "plan", "crd", "reference", "product", "completion")
"""Subcommands that need no cluster (the parser's offline group)."""


@dataclass(frozen=True)
class Row:
    code: int
    meaning: str
    examples: tuple[str, ...]
    """The ``d3os …`` commands of the "for example" column, each with what the row says around it."""
    text: str


def exit_code_table() -> list[Row]:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("### Exit codes"):]
    section = section[: section.index("\n## ")]
    rows = []
    for line in section.splitlines():
        m = re.match(r"^\| (\d+) \| (.*) \| (.*) \|$", line)
        if m:
            examples = tuple(e for e in re.findall(r"`([^`]+)`", m.group(3)) if e.startswith("d3os "))
            rows.append(Row(int(m.group(1)), m.group(2), examples, m.group(3)))
    return rows


@dataclass(frozen=True)
class Shown:
    path: Path
    line: int
    command: str
    output: tuple[str, ...]
    block: int
    """The line of the code block's opening fence: the commands of one block run in order, in one place."""

    @property
    def subcommand(self) -> str:
        return self.command.split()[1]

    @property
    def offline(self) -> bool:
        return self.subcommand in OFFLINE

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.command}"


def _strip(line: str) -> str:
    line = line.strip()
    line = line[2:] if line.startswith("$ ") else line
    return re.sub(r"\s+#.*$", "", line).strip()


def shown_commands() -> list[Shown]:
    found: list[Shown] = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        in_block = False
        fence = 0
        i = 0
        while i < len(lines):
            raw = lines[i]
            if raw.startswith("```"):
                in_block = not in_block
                fence = i + 1
                i += 1
                continue
            cmd = _strip(raw) if in_block else ""
            if in_block and cmd.startswith("d3os "):
                output: list[str] = []
                j = i + 1
                while raw.lstrip().startswith("$ ") and j < len(lines) and not lines[j].startswith(("```", "$ ")) \
                        and lines[j].strip():
                    output.append(lines[j])
                    j += 1
                found.append(Shown(path, i + 1, cmd, tuple(output), fence))
            i += 1
    return found
