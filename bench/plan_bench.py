"""Micro-benchmark of the pure core: ``plan`` on the seed's sample in several observed situations.

    python bench/plan_bench.py [-n CALLS] [--profile] [--out bench/results-core.json]

Situations: an empty namespace (first pass), mid-rollout (mysql … auth ready, ds-adapter rolling out),
an upgrade in progress (every image bumped, mysql rolling), the fully Ready steady state (the pass every
resync costs), and rendering every object (what ``d3os render`` does). Prints a markdown table (median,
p99, mean, min per call) and writes the figures with machine information as JSON. The target is under
1 ms per ``plan``; ``--profile`` adds a cProfile of the steady state, sorted by own time.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import yaml

from d3os_core import FINALIZER, Facts, Observed, parse_spec, plan
from d3os_core.fake import FakeCluster
from d3os_core.render import Parent, render_component, resolve
from d3os_operator.products import installed_product

DATASERVICE = installed_product("dataservice")
"""The dataservice product as shipped (products/dataservice/product.yaml)."""
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "dataservice-sample.yaml"
TARGET_MS = 1.0
FACTS = Facts(now="2026-01-01T00:00:00Z", secret_seed="bench")


def sample() -> dict[str, Any]:
    ds: dict[str, Any] = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    ds["metadata"].update(namespace="default", uid="bench-uid", generation=1, finalizers=[FINALIZER])
    return ds


def drive(ds: dict[str, Any], fc: FakeCluster, passes: int) -> None:
    """``passes`` shell passes: plan, write status, carry out, let the controllers finish."""
    for _ in range(passes):
        p = plan(ds, fc.observed(), FACTS, DATASERVICE)
        ds["status"] = copy.deepcopy(p.status)
        fc.carry_out(p)
        fc.settle()


def situations() -> dict[str, tuple[dict[str, Any], Observed]]:
    out: dict[str, tuple[dict[str, Any], Observed]] = {}
    ds = sample()
    out["empty namespace (first pass)"] = (copy.deepcopy(ds), Observed())

    mid, fc = sample(), FakeCluster()
    drive(mid, fc, 5)
    p = plan(mid, fc.observed(), FACTS, DATASERVICE)  # ds-adapter applied, not rolled out yet
    mid["status"] = p.status
    fc.carry_out(p)
    out["mid-rollout (5/12 ready)"] = (mid, fc.observed())

    ready, fc = sample(), FakeCluster()
    drive(ready, fc, 14)
    last = plan(ready, fc.observed(), FACTS, DATASERVICE)
    assert not last.apply and not last.delete, "the sample did not converge"
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in ready["status"]["conditions"])
    out["steady state (Ready, nothing to do)"] = (copy.deepcopy(ready), fc.observed())

    upgrade = copy.deepcopy(ready)
    for comp in upgrade["spec"].values():
        if isinstance(comp, dict) and comp.get("image"):
            comp["image"] = comp["image"].replace(":v1.4", ":v1.5")
    upgrade["spec"]["mysql"]["image"] = "mysql:8.4"
    upgrade["metadata"]["generation"] += 1
    p = plan(upgrade, fc.observed(), FACTS, DATASERVICE)
    upgrade["status"] = p.status
    fc.carry_out(p)
    out["upgrade in progress (every image)"] = (upgrade, fc.observed())
    return out


def render_all(ds: dict[str, Any]) -> Callable[[], object]:
    parent = Parent(ds["metadata"]["name"], ds["metadata"]["namespace"], ds["metadata"]["uid"])

    def run() -> object:
        spec = parse_spec(ds["spec"], DATASERVICE)
        states = resolve(parent, spec, DATASERVICE)
        return [render_component(parent, spec, DATASERVICE, states, k, {}, FACTS.secret_seed)
                for k in DATASERVICE.keys]

    return run


def measure(fn: Callable[[], object], calls: int, warmup: int = 50) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    samples.sort()
    ms = [s / 1e6 for s in samples]
    return {
        "calls": calls,
        "median_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "mean_ms": statistics.fmean(ms),
        "min_ms": ms[0],
        "max_ms": ms[-1],
    }


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "pydantic": pydantic.VERSION,
    }


def profile(ds: dict[str, Any], observed: Observed, calls: int, top: int = 25) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        plan(ds, observed, FACTS, DATASERVICE)
    prof.disable()
    out = io.StringIO()
    out.write(f"{calls} calls of plan, steady state; by own time:\n")
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    out.write("by cumulative time, d3os_core only:\n")
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats("d3os_core", top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--calls", type=int, default=2000, help="timed calls per situation (default 2000)")
    ap.add_argument("--profile", action="store_true", help="cProfile the steady state (500 calls)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results-core.json")
    args = ap.parse_args(argv)

    rows: dict[str, dict[str, float]] = {}
    cases = situations()
    for name, (ds, observed) in cases.items():
        rows[f"plan: {name}"] = measure(lambda ds=ds, observed=observed: plan(ds, observed, FACTS, DATASERVICE),
                                        args.calls)
    rows["render all objects (parse + resolve + render 12 components)"] = measure(render_all(sample()), args.calls)
    raw_spec = sample()["spec"]
    rows["parse_spec only (validation)"] = measure(lambda: parse_spec(raw_spec, DATASERVICE), args.calls)

    info = machine()
    print(f"`plan` on the seed's sample, {args.calls} calls each — {info['platform']}, "
          f"Python {info['python']}, {info['cpu_count']} CPUs, pydantic {info['pydantic']}\n")
    print("| situation | median ms | p99 ms | mean ms | min ms |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} | {r['mean_ms']:.3f} | {r['min_ms']:.3f} |")
    plan_rows = {k: v for k, v in rows.items() if k.startswith("plan:")}
    worst = max(v["median_ms"] for v in plan_rows.values())
    verdict = "meets" if worst < TARGET_MS else "misses"
    print(f"\nworst plan median {worst:.3f} ms: {verdict} the {TARGET_MS:g} ms target")

    result: dict[str, Any] = {"machine": info, "target_ms": TARGET_MS, "results": rows}
    if args.profile:
        ds, observed = cases["steady state (Ready, nothing to do)"]
        text = profile(ds, observed, 500)
        print("\n```\n" + text + "```")
        result["profile_steady_state"] = text
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
