"""What the plan benchmarks run in another tree (this one, or a baseline checked out to a worktree): a
script given the tree as its first argument, with only that tree's ``src`` and ``bench/synthetic.py``
importable -- so a baseline is measured with its own code, never this tree's."""

from __future__ import annotations

import os
from pathlib import Path

PRELUDE = r"""
import sys
sys.path.insert(0, sys.argv[1] + "/bench")
import synthetic
from d3os_core import plan
from d3os_core.caches import Caches
from d3os_core.types import Observed
"""
"""The head of every such script: ``synthetic`` and the core's plan, from the tree in ``sys.argv[1]``."""


def tree_env(tree: Path) -> dict[str, str]:
    """The environment of a script run in ``tree``: its ``src`` and ``bench`` first on the import path."""
    return {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree / 'bench'}"}
