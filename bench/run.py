"""``nox -s bench``: every benchmark in one run; writes JSON and prints a markdown table.

    python bench/run.py [--out bench/results.json] [--only core,rollout,alone,helm,scale,steady,seed,products]
                        [--sizes 50,200] [--steady-seconds 300] [--runs 3] [--seed-n 50]
                        [--seed-timeout 600] [--helm-parallel 10] [--quick]

1. core      ``plan`` and render time (median, p99): the seed's sample, synthetic products of 12/50/200.
2. rollout   the sample, apply -> Ready, in-process operator with a trace: per step the cluster's time
             (apply -> component ready) and the operator's added time (dependency ready -> next apply).
3. scale     N DataServices in N namespaces at once; ``d3os-operator run`` as a subprocess: time to all
             Ready, peak RSS, CPU seconds, API requests by verb and resource (audit log), highest queue depth.
4. steady    after N=max(sizes) are Ready: writes and non-watch reads in an idle window (audit log).
5. seed      the seed's loop (bench/seed_baseline.py) on the sample and on N DataServices, side by side.
6. alone     the cluster alone (bench/baselines.py): every rendered object of the sample / of N DataServices
             applied at once with server-side apply, no order, no operator; time until every workload is
             rolled out by the core's rules -- the physical limit, measured before each ``scale`` run.
7. helm      the same objects as a chart, one release per DataService, ``helm install --wait``
             (``--helm-parallel`` releases at a time), on the sample and on N.
8. products  products as data (bench/product_bench.py): one operator serving two products (N/2 DataServices +
             N/2 AnalyticsServices) beside one product (N DataServices) -- all Ready, requests per instance,
             peak RSS; plan time of synthetic 12/50/200-component products against ``--plan-baseline`` (the
             last Python-literal commit); load + validate + CRD of a 200-component product file.

Results are written after every part, so an interrupted run keeps what it measured. Goals are reported,
never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cluster_bench as cb
import plan_bench
import product_bench
import synthetic
import write_cost

from d3os_core import Observed, plan
from d3os_operator import __version__

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("core", "writes", "rollout", "alone", "helm", "scale", "steady", "seed", "products")
CORE_SIZES = (12, 50, 200)
MB = 1_000_000


# -- machine and versions -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU, memory and load: the figures mean little without them (the control plane shares the CPUs)."""
    info = plan_bench.machine()
    with contextlib.suppress(OSError):  # not Linux: the field is left out
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):  # not Linux: the field is left out
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_bytes"] = int(line.split()[1]) * 1024
    info["load_average_at_start"] = list(os.getloadavg())
    info["hostname"] = platform.node()
    return info


# -- 1. core ----------------------------------------------------------------------------------------------------


def timed(fn: Callable[[], object], budget_s: float, max_calls: int) -> dict[str, float]:
    """plan_bench.measure with a call count that fits the time budget (200 components cost ~50 ms a call)."""
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    calls = max(20, min(max_calls, int(budget_s / one)))
    return plan_bench.measure(fn, calls, warmup=min(20, calls // 4))


def bench_core(budget_s: float, max_calls: int, sizes: tuple[int, ...] = CORE_SIZES) -> dict[str, Any]:
    """``plan`` (first pass, steady state) and memo-free render, on the sample and on synthetic products."""
    out: dict[str, Any] = {"sample": {}, "synthetic": {}}
    for name, (ds, observed) in plan_bench.situations().items():
        out["sample"][f"plan: {name}"] = timed(
            lambda ds=ds, o=observed: plan(ds, o, plan_bench.FACTS, plan_bench.DATASERVICE), budget_s, max_calls)
    out["sample"]["render all objects"] = timed(plan_bench.render_all(plan_bench.sample()), budget_s, max_calls)
    for n in sizes:
        prod, ds = synthetic.product(n), synthetic.dataservice(n)
        ready, observed = synthetic.converged(ds, prod)
        empty = Observed()
        row = {
            "components": n,
            "layers": len(synthetic.layers(n)),
            "objects": sum(len(r.objects) for r in synthetic.render_all(ds, prod)()),
            "plan_first_pass": timed(lambda ds=ds, p=prod, e=empty: plan(ds, e, synthetic.FACTS, p), budget_s,
                                     max_calls),
            "plan_steady": timed(lambda r=ready, p=prod, o=observed: plan(r, o, synthetic.FACTS, p), budget_s,
                                 max_calls),
            "render": timed(synthetic.render_all(ds, prod), budget_s, max_calls),
        }
        cb.log(f"core n={n}: plan steady median {row['plan_steady']['median_ms']:.2f} ms")
        out["synthetic"][str(n)] = row
    return out


# -- goals ------------------------------------------------------------------------------------------------------


def _get(d: Any, *path: Any) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def ours_at(res: dict[str, Any], n: int) -> dict[str, Any] | None:
    """The operator's run at N (the scale part, or the seed part's own run of ours)."""
    s = _get(res, "scale", str(n))
    if s is None and _get(res, "seed", "ours_many", "n") == n:
        s = _get(res, "seed", "ours_many")
    return s


def requests_per_ds(run: dict[str, Any] | None) -> tuple[float | None, dict[str, float]]:
    """(total, by "verb resource") requests per DataService of a scale run (operator) from the audit log, until
    the operator went quiet after all Ready when measured (the Events' counts written at rest count too)."""
    reqs = _get(run, "requests_to_rest") or _get(run, "requests_during_rollout")
    n = _get(run, "n")
    if not reqs or not n:
        return None, {}
    return reqs["total"] / n, {k: v / n for k, v in reqs["by_verb_resource"].items()}


def side_by_side(res: dict[str, Any], sizes: list[int]) -> list[dict[str, Any]]:
    """Per N (1 = the sample): cluster alone, Helm and ours, with the ratios of ours to each."""
    rows = []
    alone1, helm1 = _get(res, "alone", "sample", "all_ready_s", "p50"), _get(res, "helm", "sample",
                                                                               "all_installed_s", "p50")
    helm1_core = _get(res, "helm", "sample", "core_rules_all_ready_s", "p50")
    ours1 = _get(res, "rollout", "apply_to_ready_s", "p50")
    rows.append({"n": 1, "alone_s": alone1, "helm_s": helm1, "helm_core_rules_s": helm1_core, "ours_s": ours1})
    for n in sizes:
        a, h, o = _get(res, "alone", str(n)), _get(res, "helm", str(n)), ours_at(res, n)
        rows.append({"n": n, "alone_s": _get(a, "all_ready_s"), "helm_s": _get(h, "all_installed_s")
                     if _get(h, "all_installed") else None,
                     "helm_core_rules_s": _get(h, "core_rules_all_ready_s"), "ours_s": _get(o, "all_ready_s")})
    for r in rows:
        r["ours_over_alone"] = r["ours_s"] / r["alone_s"] if r["ours_s"] and r["alone_s"] else None
        r["ours_over_helm"] = r["ours_s"] / r["helm_s"] if r["ours_s"] and r["helm_s"] else None
    return rows


def goals(res: dict[str, Any], sizes: list[int], seed_n: int) -> list[dict[str, Any]]:
    """The goals (issue 14, and the seed comparison), each with what was measured and whether it was met
    (None: not measured). Reported, never asserted."""
    rows: list[dict[str, Any]] = []

    def add(goal: str, target: str, value: Any, shown: str, met: bool | None) -> None:
        rows.append({"goal": goal, "target": target, "measured": value, "shown": shown, "met": met})

    sbs = {r["n"]: r for r in side_by_side(res, sizes)}
    for n in sizes:
        r = sbs[n]
        q = r["ours_over_alone"]
        add(f"N={n} all Ready / cluster alone (same run)", "≤ 1.3", q,
            f"{q:.2f} ({r['ours_s']:.1f} s vs {r['alone_s']:.1f} s)" if q else "not run", q <= 1.3 if q else None)
    big = max(sizes) if sizes else None
    s = ours_at(res, big) if big else None
    per, _ = requests_per_ds(s)
    add(f"operator requests per DataService, N={big}", "≤ 60", per,
        f"{per:.1f}" if per is not None else "not run", per <= 60 if per is not None else None)
    rss = _get(s, "peak_rss_bytes")
    add(f"operator peak RSS at N={big}", "≤ 150 MB", rss, f"{rss / MB:.0f} MB" if rss else "not run",
        rss <= 150 * MB if rss else None)
    ratio = _get(res, "rollout", "ratio", "p50")
    add("sample apply→Ready / Σ cluster times (median of runs)", "≤ 1.2", ratio,
        f"{ratio:.2f}" if ratio is not None else "not run", ratio <= 1.2 if ratio is not None else None)
    p95, med = _get(res, "rollout", "added_ms_per_step", "p95"), _get(res, "rollout", "added_ms_per_step", "p50")
    add("operator-added latency per step, p95", "≤ 50 ms", p95,
        f"{p95:.1f} ms (p50 {med:.1f} ms)" if p95 is not None else "not run", p95 <= 50 if p95 is not None else None)
    w, reads = _get(res, "steady", "writes"), _get(res, "steady", "non_watch_reads")
    win = _get(res, "steady", "window_s")
    add("steady state: writes and polling (non-watch) reads", "0 and 0", [w, reads],
        f"{w} writes, {reads} reads in {win:.0f} s" if w is not None else "not run",
        (w == 0 and reads == 0) if w is not None else None)
    ours = _get(res, "rollout", "apply_to_ready_s", "p50")
    seed = _get(res, "seed", "sample", "apply_to_done_s")
    up = seed / ours if ours and seed else None
    add("speed-up over the seed, sample", "> 1×", up,
        f"{up:.1f}× ({seed:.1f} s vs {ours:.1f} s)" if up else "not run", up > 1 if up else None)
    sm = _get(res, "seed", "many")
    ours_n = _get(ours_at(res, seed_n), "all_ready_s")
    if sm and ours_n:
        seed_t = sm.get("all_done_s")
        if seed_t:
            up_n, shown = seed_t / ours_n, f"{seed_t / ours_n:.1f}× ({seed_t:.0f} s vs {ours_n:.1f} s)"
        else:
            up_n = sm["timeout_s"] / ours_n
            rate = f", ~{sm['timeout_s'] * seed_n / sm['done']:.0f} s at its rate" if sm.get("done") else ""
            shown = (f"> {up_n:.1f}× (seed: {sm['done']}/{seed_n} done, did not finish in {sm['timeout_s']:.0f} s"
                     f"{rate}; ours {ours_n:.1f} s)")
        add(f"speed-up over the seed, N={seed_n}", "> 1×", up_n, shown, up_n > 1)
    elif "seed" in res:
        add(f"speed-up over the seed, N={seed_n}", "> 1×", None, "not run", None)
    return rows


# -- the table ------------------------------------------------------------------------------------------------


def _ms(r: dict[str, float] | None) -> str:
    return f"{r['median_ms']:.2f} / {r['p99_ms']:.2f}" if r else "-"


def _fmt(v: Any, unit: str = "", digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}{unit}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}×"


def _cp_cpu(run: dict[str, Any] | None) -> float | None:
    """CPU seconds of the control-plane processes during a run (the operator's excluded)."""
    by = _get(run, "cpu_during_rollout", "cpu_s_by_process")
    return sum(v for k, v in by.items() if k != "d3os-operator") if by else None


def baseline_table(res: dict[str, Any], sizes: list[int]) -> list[str]:
    """Cluster alone, Helm and ours side by side (same run), then requests per DataService by verb/resource."""
    if not (res.get("alone") or res.get("helm")):
        return []
    hp = _get(res, "helm", "parallel")
    lines = ["", "**side by side** (same run, same control plane; N = 1 is the sample, median of runs; Helm "
             f"installs {hp or '?'} releases at a time and its time is `helm install --wait`, i.e. Helm's "
             "readiness rules, its 2 s polling included)", "",
             "| N | cluster alone | Helm `--wait` | Helm, core's rules met | ours | ours / alone | ours / Helm |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in side_by_side(res, sizes):
        lines.append(f"| {r['n']} | {_fmt(r['alone_s'], ' s')} | {_fmt(r['helm_s'], ' s')} | "
                     f"{_fmt(r['helm_core_rules_s'], ' s')} | {_fmt(r['ours_s'], ' s')} | "
                     f"{_x(r['ours_over_alone'])} | {_x(r['ours_over_helm'])} |")
    lines += ["", "**work done**, CPU seconds until all were Ready / installed (less sensitive to a busy machine "
              "than wall time): control plane = kube-apiserver + etcd + kube-controller-manager + kube-scheduler + "
              "kwok; client = the operator, or the helm processes", "",
              "| N | cluster alone: control plane | Helm: control plane / client | ours: control plane / client |",
              "|---:|---:|---:|---:|"]
    for n in sizes:
        a, h, o = _get(res, "alone", str(n)), _get(res, "helm", str(n)), ours_at(res, n)
        lines.append(f"| {n} | {_fmt(_cp_cpu(a))} | {_fmt(_cp_cpu(h))} / {_fmt(_get(h, 'helm_cpu_s'))} | "
                     f"{_fmt(_cp_cpu(o))} / {_fmt(_get(o, 'cpu_s_during_rollout'))} |")
    big = str(max(sizes)) if sizes else None
    _, ours = requests_per_ds(ours_at(res, int(big))) if big else (None, {})
    helm = _get(res, "helm", big, "requests", "per_dataservice_by_verb_resource") or {}
    alone = _get(res, "alone", big, "requests", "per_dataservice_by_verb_resource") or {}
    if ours or helm or alone:
        def most(k: str) -> float:
            return max(ours.get(k, 0), helm.get(k, 0), alone.get(k, 0))

        # what rounds to 0.0 everywhere (a few watches over N DataServices) is left out of the rows
        keys = sorted((k for k in set(ours) | set(helm) | set(alone) if most(k) >= 0.05), key=lambda k: -most(k))
        tot = [sum(d.values()) if d else None for d in (ours, helm, alone)]
        lines += ["", f"**requests per DataService** at N={big} (kube-apiserver audit log, by User-Agent; "
                  "until all were Ready / installed)", "",
                  "| verb resource | ours | Helm | cluster alone |", "|---|---:|---:|---:|"]
        for k in keys:
            cells = [_fmt(d.get(k), "", 1) if d else "-" for d in (ours, helm, alone)]
            lines.append(f"| {k} | {' | '.join(cells)} |")
        lines.append(f"| **total** | {_fmt(tot[0])} | {_fmt(tot[1])} | {_fmt(tot[2])} |")
    for name, part in (("cluster alone", "alone"), ("Helm", "helm")):
        for n, r in (res.get(part) or {}).items():
            cpu = (r.get("cpu_during_rollout") or {}) if isinstance(r, dict) else {}
            if cpu.get("cpu_s_by_process"):
                procs = ", ".join(f"{k} {v:.1f}" for k, v in cpu["cpu_s_by_process"].items())
                extra = f", helm processes {r['helm_cpu_s']:.1f}" if r.get("helm_cpu_s") is not None else ""
                lines.append(f"\n{name} N={n}, CPU seconds: {procs}{extra}; whole machine busy "
                             f"{_fmt((cpu.get('machine_busy_fraction') or 0) * 100, ' %', 0)} of "
                             f"{cpu.get('machine_cpu_s_available')} CPU s")
    return lines


def writes_table(w: dict[str, Any] | None) -> list[str]:
    """What one write costs the API server, by kind (the ``writes`` part)."""
    if not w or not w.get("writes"):
        return []
    rows = w["writes"]
    base = (rows.get("ConfigMap apply (create)") or {}).get("apiserver_cpu_ms")
    lines = ["", f"**what one write costs the API server** ({w['n']} of each, one client, no operator running; CPU "
             "per request from /proc; × = API-server CPU relative to a ConfigMap apply)", "",
             "| write | API server CPU | × ConfigMap | etcd CPU | wall |", "|---|---:|---:|---:|---:|"]
    for label, r in rows.items():
        rel = f"{r['apiserver_cpu_ms'] / base:.1f}×" if base else "-"
        lines.append(f"| {label} | {r['apiserver_cpu_ms']:.1f} ms | {rel} | {r['etcd_cpu_ms']:.1f} ms | "
                     f"{r['wall_ms']:.1f} ms |")
    return lines


def products_table(prod: dict[str, Any]) -> list[str]:
    """Products as data: mixed products beside one, plan time against the Python-literal era, a 200-component
    product file."""
    lines: list[str] = []
    runs = {k: v for k, v in prod.items() if "x" in k and isinstance(v, dict) and "n" in v}
    if runs:
        lines += ["", "**products** (one operator, all namespaces): two products beside one, same N", "",
                  "| run | instances | all Ready | requests per instance (to rest) | peak RSS |",
                  "|---|---|---:|---:|---:|"]
        for label, r in runs.items():
            rest = (r.get("requests_to_rest") or {}).get("total")
            per = f"{rest / r['n']:.1f}" if rest else "-"
            inst = ", ".join(f"{v} {k}" for k, v in (r.get("instances") or {}).items() if v)
            ready = _fmt(r.get("all_ready_s"), " s") if r.get("all_ready") else f"{r.get('ready')}/{r['n']}"
            lines.append(f"| {label} | {inst} | {ready} | {per} | "
                         f"{_fmt((r.get('peak_rss_bytes') or 0) / MB, ' MB', 0)} |")
    pt = prod.get("plan_time")
    if pt:
        lines += ["", f"**plan time** (CPU ms per call, median of {pt['rounds']} alternating rounds) against "
                  f"{pt['baseline_ref']} ({pt['baseline_commit'][:7]})", "",
                  "| case | this | baseline | ratio |", "|---|---:|---:|---:|"]
        for case, row in pt["cases"].items():
            lines.append(f"| {case} | {row['this_ms']:.2f} | {row['baseline_ms']:.2f} | {row['ratio']:.2f} |")
    ld = prod.get("load_200")
    if ld:
        lines += ["", f"**a {ld['components']}-component product file** ({ld['file_bytes']} B): load + validate + "
                  f"CRD {ld['in_process_cpu_s']:.2f} CPU s in-process; `d3os product validate` "
                  f"{ld['cli_wall_s']:.2f} s wall, {ld['cli_cpu_s']:.2f} CPU s (exit {ld['cli_exit']}): "
                  f"{ld['verdict_in_process']}"]
    return lines


def table(res: dict[str, Any], sizes: list[int]) -> str:
    """Markdown: goals first, then the details of each part that ran."""
    m = res["machine"]
    lines = [f"## d3os-operator benchmarks — {res['started']}", "",
             f"{m.get('cpu_count')} CPUs ({m.get('cpu_model', '?')}), "
             f"{(m.get('memory_bytes') or 0) / 2**30:.0f} GiB, load average at start "
             f"{' '.join(f'{x:.2f}' for x in m['load_average_at_start'])}, at end "
             f"{' '.join(f'{x:.2f}' for x in res.get('load_average_at_end') or [])}; Python {m['python']}; "
             f"versions {res.get('versions')}", "",
             "| goal | target | measured | met |", "|---|---|---|---|"]
    merged = [f"Re-measured {', '.join(r['parts'])} on {r['started']} at commit {r.get('commit')} (load average "
              f"at start {' '.join(f'{x:.2f}' for x in r['machine']['load_average_at_start'])})."
              for r in res.get("merged_runs") or []]
    if merged:
        lines[2:2] = [*merged, ""]
    for g in res.get("goals", []):
        met = {True: "yes", False: "**no**", None: "-"}[g["met"]]
        lines.append(f"| {g['goal']} | {g['target']} | {g['shown']} | {met} |")
    lines += baseline_table(res, sizes)
    lines += writes_table(res.get("writes"))
    core = res.get("core")
    if core:
        lines += ["", "**core** (ms, median / p99 per call)", "",
                  "| case | plan, first pass | plan, steady state | render all |", "|---|---:|---:|---:|",
                  f"| seed sample (12) | {_ms(core['sample'].get('plan: empty namespace (first pass)'))} | "
                  f"{_ms(core['sample'].get('plan: steady state (Ready, nothing to do)'))} | "
                  f"{_ms(core['sample'].get('render all objects'))} |"]
        for n, row in core["synthetic"].items():
            lines.append(f"| synthetic {n} ({row['layers']} layers, {row['objects']} objects) | "
                         f"{_ms(row['plan_first_pass'])} | {_ms(row['plan_steady'])} | {_ms(row['render'])} |")
    ro = res.get("rollout")
    if ro:
        a, r, st = ro["apply_to_ready_s"], ro["ratio"], ro["added_ms_per_step"]
        lines += ["", f"**rollout** of the sample ({a['n']} runs): apply→Ready p50 {_fmt(a['p50'], ' s', 2)} "
                  f"(max {_fmt(a['max'], ' s', 2)}); ratio to the sum of cluster times p50 {_fmt(r['p50'], '', 2)}; "
                  f"operator-added per step p50 {_fmt(st['p50'], ' ms')}, p95 {_fmt(st['p95'], ' ms')}, "
                  f"max {_fmt(st['max'], ' ms')} (n={st['n']}); before the first apply p50 "
                  f"{_fmt(ro['start_ms']['p50'], ' ms')}, last ready→Ready p50 {_fmt(ro['finish_ms']['p50'], ' ms')}"]
    scale = res.get("scale") or {}
    if scale:
        lines += ["", "**scale** (operator as a subprocess, all namespaces)", "",
                  "| N | all Ready | per DS p50 / p95 | peak RSS | CPU s | requests by verb (audit) | max queue |",
                  "|---:|---:|---:|---:|---:|---|---:|"]
        for n, s in scale.items():
            per = s.get("ready_s_per_dataservice") or {}
            verbs = (s.get("requests_during_rollout") or {}).get("by_verb")
            all_ready = _fmt(s.get("all_ready_s"), " s") if s.get("all_ready") else \
                f"{s.get('ready')}/{n} in {s.get('timeout_s')} s"
            lines.append(f"| {n} | {all_ready} | {_fmt(per.get('p50'), ' s')} / {_fmt(per.get('p95'), ' s')} | "
                         f"{_fmt((s.get('peak_rss_bytes') or 0) / MB, ' MB', 0)} | "
                         f"{_fmt(s.get('cpu_s_during_rollout'))} | {verbs or '-'} | "
                         f"{_fmt(s.get('queue_depth_max'), '', 0)} |")
    for n, s in scale.items():
        cpu = s.get("cpu_during_rollout") or {}
        if cpu.get("cpu_s_by_process"):
            procs = ", ".join(f"{k} {v:.1f}" for k, v in cpu["cpu_s_by_process"].items())
            lines.append(f"\nN={n}, CPU seconds until all Ready: {procs}; whole machine busy "
                         f"{_fmt((cpu.get('machine_busy_fraction') or 0) * 100, ' %', 0)} of "
                         f"{cpu.get('machine_cpu_s_available')} CPU s")
    for n, s in scale.items():
        fp = s.get("cache_footprint") or {}
        if fp.get("kinds"):
            lines += ["", f"**what the informers store** at N={n} (live objects through `{fp.get('transform')}`; "
                      f"{fp['per_dataservice_objects']} objects and "
                      f"{fp['per_dataservice_heap_bytes'] / 1000:.0f} kB of Python heap per DataService, "
                      f"{fp['heap_bytes_stored'] / MB:.0f} MB in all; RSS at all Ready "
                      f"{_fmt((s.get('rss_at_ready_bytes') or 0) / MB, ' MB', 0)}, at the end "
                      f"{_fmt((s.get('rss_at_end_bytes') or 0) / MB, ' MB', 0)}, peak "
                      f"{_fmt((s.get('peak_rss_bytes') or 0) / MB, ' MB', 0)})", "",
                      "| kind | objects | JSON B raw → stored | heap B stored | heaviest stored fields (JSON B) |",
                      "|---|---:|---:|---:|---|"]
            for kind, k in fp["kinds"].items():
                heavy = ", ".join(f"{f} {b}" for f, b in k["heaviest_fields_json_bytes"].items())
                lines.append(f"| {kind} | {k['objects']} | {k['json_bytes_raw']} → {k['json_bytes_stored']} | "
                             f"{k['heap_bytes_stored']} | {heavy} |")
    lines += products_table(res.get("products") or {})
    stdy = res.get("steady")
    if stdy and stdy.get("source"):
        lines += ["", f"**steady state** N={stdy.get('n')}, {stdy['window_s']:.0f} s idle: writes {stdy['writes']} "
                  f"{stdy['writes_by_verb_resource'] or ''}, "
                  f"non-watch reads {stdy['non_watch_reads_per_min']:.1f}/min, "
                  f"by verb {stdy['by_verb']}"]
    seed = res.get("seed")
    if seed:
        sm, ss = seed.get("many") or {}, seed.get("sample") or {}
        lines += ["", f"**seed baseline**: sample apply→`web已部署` {_fmt(ss.get('apply_to_done_s'), ' s')} "
                  f"({ss.get('writes')} writes); N={sm.get('n')}: "
                  + (f"all done in {sm['all_done_s']:.0f} s" if sm.get("all_done_s") else
                     f"{sm.get('done')}/{sm.get('n')} done, did not finish in {sm.get('timeout_s')} s")
                  + f" (first done after {_fmt(sm.get('first_done_s'), ' s')}, {sm.get('writes')} writes)"]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--sizes", default=None, nargs="+",
                    help="scale sizes, comma- or space-separated (default 50,200; --quick 5,10)")
    ap.add_argument("--helm-parallel", type=int, default=10,
                    help="Helm baseline: releases installed at a time (default 10)")
    ap.add_argument("--alone-threads", type=int, default=8,
                    help="cluster-alone baseline: client threads sending the applies (default 8)")
    ap.add_argument("--steady-seconds", type=float, default=None, help="idle window (default 300; --quick 30)")
    ap.add_argument("--runs", type=int, default=None, help="rollout repetitions (default 3; --quick 2)")
    ap.add_argument("--seed-n", type=int, default=None, help="DataServices for the seed comparison (default 50)")
    ap.add_argument("--seed-timeout", type=float, default=None, help="cap of the seed's N run (default 600 s)")
    ap.add_argument("--scale-timeout", type=float, default=900.0, help="cap of each scale run (default 900 s)")
    ap.add_argument("--scrape-period", type=float, default=1.0,
                    help="seconds between /metrics scrapes of the operator during scale runs (default 1.0)")
    ap.add_argument("--operator-args", default="",
                    help="extra arguments for the operator in the scale runs, e.g. '--http2' (A/B runs of an option)")
    ap.add_argument("--profile-n", type=int, default=0,
                    help="also run N DataServices with the operator under cProfile (default off)")
    ap.add_argument("--cluster-name", default="bench", help="LocalCluster name (default bench)")
    ap.add_argument("--report", type=Path, default=None,
                    help="print the table of an existing results file (goals recomputed) and exit")
    ap.add_argument("--plan-baseline", default="a84fba2^",
                    help="git ref whose core the products part compares plan time with (default: the last commit "
                         "with dataservice as a Python literal)")
    ap.add_argument("--quick", action="store_true", help="small sizes and short windows, for development")
    ap.add_argument("--merge", action="store_true",
                    help="re-run the --only parts into the existing --out file, keeping its other figures")
    args = ap.parse_args(argv)
    q = args.quick
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    sizes = ",".join(args.sizes) if args.sizes else ("5,10" if q else "50,200")
    args.size_list = [int(x) for x in sizes.replace(" ", ",").split(",") if x]
    args.steady_seconds = args.steady_seconds if args.steady_seconds is not None else (30.0 if q else 300.0)
    args.runs = args.runs or (2 if q else 3)
    args.seed_n = args.seed_n or (min(args.size_list) if q else 50)
    args.seed_timeout = args.seed_timeout or (120.0 if q else 600.0)
    return args


def measured_sizes(res: dict[str, Any], asked: list[int]) -> list[int]:
    """Every N with a figure in ``res`` (scale or a baseline; a --merge run adds to earlier ones), else ``asked``."""
    found = {int(k) for part in ("scale", "alone", "helm") for k in (res.get(part) or {}) if str(k).isdigit()}
    return sorted(found | set(asked)) if found else asked


def report(path: Path, args: argparse.Namespace) -> int:
    """The table of an earlier run, without running anything."""
    res = json.loads(path.read_text(encoding="utf-8"))
    sizes = measured_sizes(res, [])
    seed_n = (res.get("seed") or {}).get("many", {}).get("n") or args.seed_n
    res["goals"] = goals(res, sizes, seed_n)
    print(table(res, sizes))
    return 0


def git_commit() -> str | None:
    """The checkout's commit, so a results file names the code it measured."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    # the results file itself does not count: --merge runs start from a modified one
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)bench/results.json"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def _part_of(name: str) -> str:
    """The --only part a recorded part name ("seed N=50", "ours N=50", "scale N=200") belongs to."""
    word = name.split()[0]
    return {"ours": "seed", "profile": "scale"}.get(word, word)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report, args)
    this_run: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "commit": git_commit(),
        "package_version": __version__,
        "machine": machine(),
        "parts": args.parts,
    }
    if args.merge and args.out.exists():
        # Re-run some parts into an earlier file: their figures are replaced, the rest kept, and the file
        # says which run (commit, time, load) measured what.
        res = json.loads(args.out.read_text(encoding="utf-8"))
        res.setdefault("merged_runs", []).append(this_run)
        res["errors"] = {k: v for k, v in (res.get("errors") or {}).items() if _part_of(k) not in args.parts}
    else:
        res = {**this_run, "errors": {}}

    def save() -> None:
        res["load_average_at_end"] = list(os.getloadavg())
        res["goals"] = goals(res, measured_sizes(res, args.size_list), args.seed_n)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(cb.dumps(res) + "\n", encoding="utf-8")

    def part(name: str, fn: Callable[[], Any]) -> None:
        """Run one part; a failure is recorded and the others still run."""
        cb.log(f"== {name}")
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:
            res["errors"][name] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        res.setdefault("durations_s", {})[name] = round(time.monotonic() - t0, 1)
        save()

    if "core" in args.parts:
        part("core", lambda: res.__setitem__("core", bench_core(0.5 if args.quick else 2.0,
                                                                  300 if args.quick else 2000)))
    if "products" in args.parts:
        res.setdefault("products", {})
        part("products load", lambda: res["products"].__setitem__("load_200", product_bench.load_200()))
        part("products plan", lambda: res["products"].__setitem__("plan_time", product_bench.plan_time(
            args.plan_baseline, rounds=2 if args.quick else 5)))
    cluster_parts = [p for p in args.parts if p != "core"]
    if cluster_parts or args.profile_n:
        env = cb.open_env(args.cluster_name)
        res["versions"] = env.versions
        res["cluster"] = {"owned": env.owned, "kubeconfig": str(env.kubeconfig),
                          "audit_log": str(env.audit_log) if env.audit_log else None}
        try:
            run_cluster_parts(args, env, res, part)
        finally:
            cb.close_env(env)
    save()
    print(table(res, measured_sizes(res, args.size_list)))
    print(f"\nwrote {args.out}")
    return 1 if res["errors"] else 0


def run_cluster_parts(args: argparse.Namespace, env: cb.Env, res: dict[str, Any],
                      part: Callable[[str, Callable[[], Any]], None]) -> None:
    """Rollout, seed, scale and steady, lightest first: each heavy run cleans up before the next begins."""
    if "writes" in args.parts:
        part("writes", lambda: res.__setitem__("writes", write_cost.bench_write_cost(env, 30 if args.quick else 100)))
    if "rollout" in args.parts:
        part("rollout", lambda: res.__setitem__("rollout", cb.bench_rollout(env, args.runs)))
    if "alone" in args.parts:
        res.setdefault("alone", {})
        part("alone sample", lambda: res["alone"].__setitem__("sample", cb.repeat(
            lambda: cb.bench_alone(env, 1, timeout=args.scale_timeout, threads=args.alone_threads), args.runs,
            "all_ready_s")))
    if "helm" in args.parts:
        res.setdefault("helm", {})
        res["helm"]["parallel"] = args.helm_parallel

        def helm_sample() -> None:
            out = cb.repeat(lambda: cb.bench_helm(env, 1, timeout=args.scale_timeout), args.runs, "all_installed_s")
            out["core_rules_all_ready_s"] = cb.summarize([r["core_rules_all_ready_s"] for r in out["runs"]
                                                          if r.get("core_rules_all_ready_s") is not None])
            res["helm"]["sample"] = out

        part("helm sample", helm_sample)
    if "seed" in args.parts:
        res["seed"] = {}
        part("seed sample", lambda: res["seed"].__setitem__("sample", cb.seed_sample(env)))
        part(f"seed N={args.seed_n}", lambda: res["seed"].__setitem__(
            "many", cb.seed_many(env, args.seed_n, args.seed_timeout)))
        if "scale" not in args.parts or args.seed_n not in args.size_list:
            part(f"ours N={args.seed_n}", lambda: res["seed"].__setitem__(
                "ours_many", cb.bench_scale(env, args.seed_n, timeout=args.scale_timeout,
                                        scrape_period=args.scrape_period)))
    if "scale" in args.parts or "steady" in args.parts:
        res.setdefault("scale", {})
        sizes = args.size_list if "scale" in args.parts else [max(args.size_list)]
        for n in sizes:
            _baselines(env, res, n, args, part)
            steady = args.steady_seconds if "steady" in args.parts and n == max(sizes) else None
            part(f"scale N={n}", lambda n=n, steady=steady: _scale(env, res, n, steady, args))
    else:
        for n in args.size_list:
            _baselines(env, res, n, args, part)


    if "products" in args.parts:
        # two products served by one operator (N/2 DataServices + N/2 AnalyticsServices) beside one product
        # (N DataServices), the same N, one after the other on the same control plane
        res.setdefault("products", {})
        n = max(args.size_list)
        for label, analytics in ((f"1x{n}", 0), (f"2x{n // 2}", n // 2)):
            part(f"products {label}", lambda label=label, analytics=analytics: res["products"].__setitem__(
                label, cb.bench_scale(env, n, timeout=args.scale_timeout, scrape_period=args.scrape_period,
                                      analytics=analytics)))

    if args.profile_n:
        part(f"profile N={args.profile_n}", lambda: res.__setitem__(
            "profile", cb.bench_scale(env, args.profile_n, timeout=args.scale_timeout, profile=True,
                                     scrape_period=args.scrape_period)))


def _baselines(env: cb.Env, res: dict[str, Any], n: int, args: argparse.Namespace,
               part: Callable[[str, Callable[[], Any]], None]) -> None:
    """Cluster alone and Helm at N, just before the operator's run at N (same control plane, same hour)."""
    if "alone" in args.parts:
        res.setdefault("alone", {})
        part(f"alone N={n}", lambda: res["alone"].__setitem__(str(n), cb.bench_alone(
            env, n, timeout=args.scale_timeout, threads=args.alone_threads)))
    if "helm" in args.parts:
        res.setdefault("helm", {})
        part(f"helm N={n}", lambda: res["helm"].__setitem__(str(n), cb.bench_helm(
            env, n, timeout=args.scale_timeout, parallel=args.helm_parallel)))


def _scale(env: cb.Env, res: dict[str, Any], n: int, steady: float | None, args: argparse.Namespace) -> None:
    out = cb.bench_scale(env, n, steady_seconds=steady, timeout=args.scale_timeout, scrape_period=args.scrape_period,
                         operator_args=args.operator_args.split())
    if "steady" in out:
        res["steady"] = {"n": n, **out["steady"]}
    res["scale"][str(n)] = out
    cb.log(f"scale N={n}: all ready {out.get('all_ready_s')}, peak RSS {out.get('peak_rss_bytes')}")


if __name__ == "__main__":
    raise SystemExit(main())
