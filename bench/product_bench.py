"""Products as data, measured: plan time against the Python-literal era, a 200-component product file, and
two products sharing one operator.

* ``plan_time`` -- the core's plan for synthetic products of 12, 50 and 200 components (first pass and steady
  state, memo caches off so that every call plans), in this tree and in a baseline tree (a git ref, checked
  out to a temporary worktree), the two measured in alternating rounds on the same machine; CPU time of
  the planning process (``time.process_time``), not wall time, so that other processes on a busy machine
  do not count; median of the rounds' medians, and the ratio.
* ``load_200`` -- a synthetic 200-component product written as a product file, then loaded, validated and
  its CRD generated: in-process (the core's ``load_product`` + ``crd_size``, CPU time) and as the user runs
  it (``d3os product validate DIR``: wall clock and CPU time of the whole command, Python's start included).
  Over the CRD limit it must be refused with "CRD too large", fast.
* ``mixed`` -- (in :mod:`run`) 2 products x N/2 instances beside 1 product x N, with the operator as a
  subprocess: all-Ready time, requests per instance, peak RSS (``cluster_bench.bench_scale``).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from plantree import PRELUDE, tree_env

ROOT = Path(__file__).resolve().parents[1]

PLAN_SCRIPT = PRELUDE + r"""
import json, statistics, time
out = {}
for n in (12, 50, 200):
    prod = synthetic.product(n)
    ds = synthetic.dataservice(n)
    ready, obs = synthetic.converged(ds, prod)
    for label, parent, observed in (("first", ds, Observed()), ("steady", ready, obs)):
        times = []
        for _ in range(int(sys.argv[2]) if n < 200 else max(5, int(sys.argv[2]) // 4)):
            t = time.process_time()
            plan(parent, observed, synthetic.FACTS, prod, Caches.bounded())
            times.append(time.process_time() - t)
        out[f"{n}/{label}"] = statistics.median(times) * 1000
print(json.dumps(out))
"""


def _plan_round(tree: Path, calls: int) -> dict[str, float]:
    env = tree_env(tree)
    out = subprocess.run([sys.executable, "-c", PLAN_SCRIPT, str(tree), str(calls)], capture_output=True,
                         text=True, env=env, check=True, cwd=tree)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def plan_time(baseline_ref: str, rounds: int = 5, calls: int = 60) -> dict[str, Any]:
    """This tree against ``baseline_ref`` (see the module docstring); ms per plan call."""
    with tempfile.TemporaryDirectory(prefix="d3os-plan-baseline-") as tmp:
        base = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), baseline_ref], cwd=ROOT, check=True)
        try:
            commit = subprocess.run(["git", "rev-parse", baseline_ref], cwd=ROOT, capture_output=True, text=True,
                                    check=True).stdout.strip()
            runs: dict[str, list[dict[str, float]]] = {"this": [], "baseline": []}
            for _ in range(rounds):
                runs["baseline"].append(_plan_round(base, calls))
                runs["this"].append(_plan_round(ROOT, calls))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    cases = list(runs["this"][0])
    rows = {}
    for case in cases:
        this = statistics.median(r[case] for r in runs["this"])
        then = statistics.median(r[case] for r in runs["baseline"])
        rows[case] = {"this_ms": round(this, 3), "baseline_ms": round(then, 3), "ratio": round(this / then, 3)}
    return {"baseline_ref": baseline_ref, "baseline_commit": commit, "rounds": rounds, "calls": calls,
            "cases": rows, "worst_ratio": max(r["ratio"] for r in rows.values())}


def load_200(n: int = 200, runs: int = 5) -> dict[str, Any]:
    """A synthetic ``n``-component product file: load + validate + CRD, in-process and by the CLI."""
    sys.path.insert(0, str(ROOT / "bench"))
    import synthetic

    from d3os_core.productload import CRD_MAX_BYTES, ProductFileError, crd_size, dump_product, load_product

    product = synthetic.product(n)
    doc = dump_product(product)
    with tempfile.TemporaryDirectory(prefix="d3os-product-") as tmp:
        folder = Path(tmp) / product.name
        folder.mkdir()
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
        (folder / "product.yaml").write_text(text, encoding="utf-8")
        inproc: list[float] = []
        verdict = "valid"
        for _ in range(runs):
            t = time.process_time()
            try:
                loaded = load_product(yaml.safe_load(text), {}, str(folder / "product.yaml"))
                size = crd_size(loaded)
            except ProductFileError as e:
                verdict = str(e).splitlines()[0].replace(str(folder.parent), "…")
                size = None
            inproc.append(time.process_time() - t)
        cli: list[float] = []
        cli_cpu: list[float] = []
        out = subprocess.CompletedProcess[str]([], 0, "", "")
        for _ in range(runs):
            t, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run([sys.executable, "-m", "d3os_operator.usercli", "product", "validate", str(folder)],
                                 capture_output=True, text=True)
            cli.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cli_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {"components": n, "file_bytes": len(text.encode()), "crd_limit_bytes": CRD_MAX_BYTES,
            "crd_bytes": size, "verdict_in_process": verdict,
            "in_process_cpu_s": round(statistics.median(inproc), 3),
            "cli_exit": out.returncode, "cli_output": (out.stdout + out.stderr).strip()[:400],
            "cli_wall_s": round(statistics.median(cli), 3), "cli_cpu_s": round(statistics.median(cli_cpu), 3)}


if __name__ == "__main__":
    print(json.dumps({"load_200": load_200(), "plan_time": plan_time(sys.argv[1] if len(sys.argv) > 1 else "HEAD")},
                     indent=1))
