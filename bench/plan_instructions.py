"""Plan cost in instructions (valgrind's callgrind), this tree against a baseline git ref: a load-proof answer.

Wall and CPU times of a plan call move with whatever else the machine runs; an instruction count does not
(the same binary, inputs and environment give the same total). For each synthetic product (12, 50, 200
components) and each case (first pass on an empty namespace; steady state, converged), a Python process
plans once and then three times under callgrind; the difference of the two totals, halved, is the cost of
one plan call -- start-up, imports and the first call's warm-up cancel out. The converged states are
computed natively first (by each tree for itself) and loaded from a pickle.

    python bench/plan_instructions.py [BASELINE_REF] [--out bench/results-plan-instructions.json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from plantree import PRELUDE, tree_env

ROOT = Path(__file__).resolve().parents[1]

PREP = PRELUDE + r"""
import pickle
out = {}
for n in (12, 50, 200):
    ds = synthetic.dataservice(n)
    out[n] = (ds, *synthetic.converged(ds, synthetic.product(n)))
pickle.dump(out, open(sys.argv[2], "wb"))
"""

RUN = PRELUDE + r"""
import pickle
data, n, case, k = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
ds, ready, obs = pickle.load(open(data, "rb"))[n]
parent, observed = (ds, Observed()) if case == "first" else (ready, obs)
for _ in range(k):
    plan(parent, observed, synthetic.FACTS, synthetic.product(n), Caches.bounded())
"""


def _instructions(tree: Path, data: Path, n: int, case: str, k: int, tmp: Path) -> int:
    env = tree_env(tree)
    out = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp / 'cg.out'}", sys.executable,
                          "-c", RUN, str(tree), str(data), str(n), case, str(k)],
                         capture_output=True, text=True, env=env, cwd=tree, check=True)
    return int(re.findall(r"Collected : (\d+)", out.stderr)[-1])


def measure(tree: Path, tmp: Path) -> dict[str, float]:
    data = tmp / f"{tree.name}.pkl"
    env = tree_env(tree)
    subprocess.run([sys.executable, "-c", PREP, str(tree), str(data)], env=env, cwd=tree, check=True)
    out = {}
    for n in (12, 50, 200):
        for case in ("first", "steady"):
            once, thrice = (_instructions(tree, data, n, case, k, tmp) for k in (1, 3))
            out[f"{n}/{case}"] = (thrice - once) / 2
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("baseline", nargs="?", default="a84fba2^", help="git ref to compare with (default: the last "
                    "commit with dataservice as a Python literal)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results-plan-instructions.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="d3os-plan-instr-") as t:
        tmp = Path(t)
        base = tmp / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.baseline], cwd=ROOT, check=True)
        try:
            this, then = measure(ROOT, tmp), measure(base, tmp)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    rev = subprocess.run(["git", "rev-parse", "HEAD", args.baseline], cwd=ROOT, capture_output=True, text=True).stdout
    head, baseline = rev.split()
    res: dict[str, Any] = {"commit": head, "baseline_ref": args.baseline, "baseline_commit": baseline,
                           "unit": "instructions per plan call (callgrind)",
                           "cases": {c: {"this": this[c], "baseline": then[c], "ratio": round(this[c] / then[c], 3)}
                                     for c in this}}
    args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print("| case | this (M instr.) | baseline (M instr.) | ratio |\n|---|---:|---:|---:|")
    for c, r in res["cases"].items():
        print(f"| {c} | {r['this'] / 1e6:.1f} | {r['baseline'] / 1e6:.1f} | {r['ratio']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
