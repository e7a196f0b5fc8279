"""N DataServices rolled out by one operator, then by two shards, on the same local control plane.

    python bench/shard_bench.py --sizes 50 [--shards 1,2] [--out bench/results-sharding.json]

Each run: N namespaces, one seed sample each, all applied at once; with two shards half of them are labelled
``sharding.d3os.io/key=shard1`` (shard1: ``--watch-label-selector sharding.d3os.io/key=shard1``) and the
others are left to the default shard (``sharding.d3os.io/key notin (shard1)``). Measured: the time until a
watch has seen every DataService Ready, the CPU seconds of each operator process and of the control plane
(the machine's bound), each operator's peak RSS and the requests they sent (audit log). Uses the helpers of
``cluster_bench``; the operators run as subprocesses (``d3os-operator run``), like its scale benchmark.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Any

import cluster_bench as cb

from d3os_operator.sharding import SHARD_KEY

SELECTORS = {1: [None], 2: [f"{SHARD_KEY}=shard1", f"{SHARD_KEY} notin (shard1)"]}


def run(env: cb.Env, n: int, shards: int, timeout: float) -> dict[str, Any]:
    from d3os_testenv import audit

    prefix = f"shb-{shards}s{n}-{uuid.uuid4().hex[:4]}-"
    namespaces = [f"{prefix}{i:03d}" for i in range(n)]
    cb.create_namespaces(env.client, namespaces)
    env.cluster.ensure_pvs(n + 4)
    manifests = []
    for i, ns in enumerate(namespaces):
        m = env.sample()
        if shards == 2 and i % 2 == 0:
            m["metadata"]["labels"] = {SHARD_KEY: "shard1"}
        manifests.append((ns, m))
    logs = Path(env.kubeconfig).parent / "logs"
    procs = [
        cb.OperatorProcess(env, logs / f"shard-bench-{shards}-{k}-{n}.log",
                           extra_args=["--watch-label-selector", sel] if sel else [])
        for k, sel in enumerate(SELECTORS[shards])
    ]
    out: dict[str, Any] = {"n": n, "shards": shards, "selectors": SELECTORS[shards]}
    try:
        for p in procs:
            p.wait_ready(120.0)
        ledger = cb.CpuLedger(env, procs[0].pid)
        if shards == 2:
            ledger.pids["d3os-operator-2"] = procs[1].pid
        with cb.make_clients(env) as clients, cb.ReadyWatcher(env, cb.harness.is_ready, prefix) as watcher:
            ledger.start()
            t0_wall, t0 = time.time(), time.monotonic()
            cb.apply_all(env, manifests, clients)

            def alive() -> None:
                for p in procs:
                    p.check()

            done = watcher.wait(n, timeout, alive=alive)
            t_ready, ready_wall = time.monotonic(), time.time()
            out["cpu_during_rollout"] = ledger.stop(t_ready - t0)
            out.update(all_ready=done, ready=len(watcher.ready_at),
                       all_ready_s=round(t_ready - t0, 1) if done else None,
                       ready_s_per_dataservice=cb.summarize(sorted(t - t0 for t in watcher.ready_at.values())))
        out["peak_rss_mb"] = [round(cb.proc_stats(p.pid).get("VmHWM", 0) / 2**20, 1) for p in procs]
        reqs = cb.audit_requests(env, t0_wall, ready_wall + 0.001)
        if reqs is not None:
            out["requests"] = audit.summary(reqs)
            out["requests_per_dataservice"] = round(len(reqs) / n, 1)
    finally:
        for p in procs:
            p.stop()
        cb.cleanup(env, namespaces, wait=300.0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50", help="comma-separated N (default 50)")
    ap.add_argument("--shards", default="1,2", help="comma-separated shard counts, 1 and/or 2 (default 1,2)")
    ap.add_argument("--timeout", type=float, default=1200.0)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON there")
    args = ap.parse_args(argv)
    env = cb.open_env("shardbench")
    results = []
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            for s in [int(x) for x in args.shards.split(",")]:
                cb.log(f"N={n}, {s} shard(s)")
                r = run(env, n, s, args.timeout)
                cpu = r.get("cpu_during_rollout", {})
                cb.log(f"  all Ready in {r.get('all_ready_s')} s; CPU s {cpu.get('cpu_s_by_process')}; "
                       f"busy {cpu.get('machine_busy_fraction')}; RSS MB {r.get('peak_rss_mb')}; "
                       f"requests/DS {r.get('requests_per_dataservice')}")
                results.append(r)
    finally:
        cb.close_env(env)  # stops the cluster it started
    text = json.dumps({"versions": env.versions, "results": results}, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
