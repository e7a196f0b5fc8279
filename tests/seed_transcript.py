"""The seed's ``kubectl get dataservice`` transcript, word for word: the oracle for PHASE and MESSAGE.

``seed-kubectl-get.txt`` beside this file is copied literally from the seed's expected output (13 runs of
``kubectl get dataservice`` during the rollout of its sample; the first before any status was written).
Its columns are read at the header's offsets, as kubectl's tabwriter aligned them (one column per rune),
so nothing here rebuilds a line the way the operator does.

One stated difference (README, docs/comparison.md): the seed's status line spells the third microservice
``da-adapter`` while its resource key, and ours, is ``ds-adapter``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TRANSCRIPT = Path(__file__).with_name("seed-kubectl-get.txt")
STATED_DIFFERENCE = ("da-adapter", "ds-adapter")
"""(the seed's spelling, ours): the only change made to the literal lines."""


@dataclass(frozen=True)
class Row:
    name: str
    phase: str
    message: str
    age: str


def rows() -> list[Row]:
    """Every ``kubectl get dataservice`` row of the transcript, in order, with the stated difference applied."""
    lines = TRANSCRIPT.read_text(encoding="utf-8").splitlines()
    out: list[Row] = []
    for i, line in enumerate(lines):
        if not line.endswith("kubectl get dataservice"):
            continue
        header, row = lines[i + 1], lines[i + 2]
        starts = [m.start() for m in re.finditer(r"\S+", header)]
        assert header.split() == ["NAME", "PHASE", "MESSAGE", "AGE"], header
        cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        seed, ours = STATED_DIFFERENCE
        out.append(Row(*(c.replace(seed, ours) for c in cells)))
    return out


def phases() -> list[tuple[str, str]]:
    """(PHASE, MESSAGE) of every row that shows a step (the seed's 12, one per component)."""
    return [(r.phase, r.message) for r in rows() if r.phase or r.message]


def chain() -> tuple[str, ...]:
    """The components in the seed's order, as its last MESSAGE lists them."""
    return tuple(k.strip("[]") for k in phases()[-1][1].split("->"))


def step(current: str) -> tuple[str, str]:
    """The transcript's (PHASE, MESSAGE) while ``current`` is the step under way (its name in brackets)."""
    found = [p for p in phases() if f"[{current}]" in p[1].split("->")]
    assert len(found) == 1, f"the transcript has no single step for {current!r}"
    return found[0]
