"""The demo: a local control plane, the operator, and the seed's sample rolling out live.

``python -m d3os_testenv.demo`` (the nox session ``demo`` runs it):

1. starts a local Kubernetes control plane (d3os_testenv: etcd, kube-apiserver, controllers, scheduler,
   kwok kubelets; the binaries are built from the Go module proxy on first use and cached);
2. installs the DataService CRD;
3. starts a local HTTP stand-in for uuc -- the seed's uuc is a third party on the internet, which this
   machine cannot reach, so uuc's ``url`` and ``checkCMD`` are pointed at the stand-in (said on screen);
4. runs ``d3os-operator run`` as a subprocess (its log goes to a file);
5. applies ``examples/dataservice-sample.yaml`` (verbatim, but for that uuc patch) and prints PHASE and
   MESSAGE each time they change, like the seed's transcript;
6. ends with ``kubectl get dataservice`` and ``kubectl get all``, then stops everything
   (``--keep`` leaves the cluster running and prints how to reach it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from d3os_core.text import display_width

from . import harness
from .operatorproc import OperatorProcess
from .standin import StandIn, point_uuc_at

BOLD = "\033[1m" if sys.stdout.isatty() else ""
DIM = "\033[2m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""


def say(msg: str = "") -> None:
    print(msg, flush=True)


def step(msg: str) -> None:
    say(f"\n{BOLD}== {msg}{RESET}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m d3os_testenv.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="demo", help="local cluster name (default demo)")
    parser.add_argument("--namespace", default="default", help="namespace for the sample (default: default)")
    parser.add_argument("--sample", default=None, help="DataService file (default: examples/dataservice-sample.yaml)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Ready (default 300)")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    args = parser.parse_args(argv)

    from d3os_testenv.cluster import LocalCluster

    step("1/6 local Kubernetes control plane (d3os-testenv)")
    cluster = LocalCluster(args.name, progress=lambda m: say(f"{DIM}  {m}{RESET}"))
    cluster.start()
    operator: OperatorProcess | None = None
    standin = StandIn()
    ok = False
    try:
        client = harness.sync_client(cluster.kubeconfig)
        if args.namespace != "default":
            cluster.kubectl("create", "namespace", args.namespace, check=False)

        step("2/6 DataService CRD")
        harness.install_crd(client)
        crd_table = cluster.kubectl("get", "crd", "dataservices.d3os-product.com.d3os").stdout.rstrip()
        say("\n".join(f"  {line}" for line in crd_table.splitlines()))

        step("3/6 third party uuc -> local stand-in")
        standin.up()
        sample_path = Path(args.sample) if args.sample else harness.find_sample()
        sample = harness.load_sample(sample_path)
        third = (sample.get("spec", {}).get("uuc") or {}).get("thirdParty") or {}
        say(f"  The sample's uuc is a third-party service on the internet: {third.get('url')}")
        say("  This machine has no internet access, so the demo points uuc at a local HTTP stand-in:")
        patched = point_uuc_at(sample, standin)
        say(f"    spec.uuc.thirdParty.url:      {patched['spec']['uuc']['thirdParty']['url']}")
        say(f"    spec.uuc.thirdParty.checkCMD: {patched['spec']['uuc']['thirdParty']['checkCMD']}")
        say(f"  Everything else is {sample_path} verbatim.")

        step("4/6 d3os-operator run")
        log_path = cluster.run_dir / "logs" / "d3os-operator.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # the stand-in listens on loopback, which the probe policy refuses by default: allow_loopback
        operator = OperatorProcess(cluster.kubeconfig, log_path, namespaces=[args.namespace], log_format="text")
        say(f"  {operator.shown}")
        say(f"  operator log: {log_path}")
        operator.wait_synced(60)
        say("  operator is watching (caches synced)")

        step(f"5/6 kubectl apply -f {sample_path.name} (uuc patched) -- progress, live")
        name = patched["metadata"]["name"]
        created: list[float] = []

        def show(change: dict[str, Any]) -> None:
            if change["type"] == "DELETED":
                return
            if not created:
                created.append(change["t"])
            ready = change["conditions"].get("Ready", {})
            line = f"  {change['t'] - created[0]:6.1f}s  {_pad(change['phase'] or '-', 20)} {change['message'] or '-'}"
            if ready.get("status") == "True":
                line += f"   {BOLD}Ready{RESET}"
            say(line)

        say(f"  {'time':>7}  {_pad('PHASE', 20)} MESSAGE")
        with harness.StatusRecorder(cluster.kubeconfig, args.namespace, name, on_change=_dedup(show)) as rec:
            start = time.monotonic()
            cluster.kubectl("apply", "-n", args.namespace, "-f", "-", input=yaml.safe_dump(patched, allow_unicode=True))
            try:
                rec.wait_for(harness.is_ready, args.timeout, "Ready=True")
                ok = True
                ready_at = next(c["t"] for c in rec.changes if c["conditions"].get("Ready", {}).get("status") == "True")
                say(
                    f"\n  {BOLD}Ready {ready_at - rec.changes[0]['t']:.1f}s after the DataService was created{RESET} "
                    f"({ready_at - start:.1f}s after `kubectl apply` started); "
                    "the seed's polling operator took 63 s for the same 12 steps"
                )
            except TimeoutError as e:
                say(f"\n  NOT Ready: {e}")
                if not operator.alive:
                    say(f"  the operator exited with {operator.returncode}; see {log_path}")

        step("6/6 the result")
        say(f"$ kubectl get dataservice -n {args.namespace}")
        say(cluster.kubectl("get", "dataservice", "-n", args.namespace).stdout.rstrip())
        say(f"\n$ kubectl get all -n {args.namespace}")
        say(cluster.kubectl("get", "all", "-n", args.namespace).stdout.rstrip())
    finally:
        if operator is not None:
            operator.stop(10)
        standin.down()
        if args.keep:
            say(f"\nThe cluster {args.name!r} keeps running (the operator and the stand-in are stopped):")
            say(f"  export KUBECONFIG={cluster.kubeconfig}; export PATH={cluster.bin_dir}:$PATH")
            say(f"  stop it with: d3os-testenv down --name {args.name}")
        else:
            step("stopping the local control plane")
            cluster.stop()
    return 0 if ok else 1


def _width(text: str) -> int:
    """Terminal columns of ``text`` (CJK characters take two)."""
    return display_width(text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _dedup(show: Any) -> Any:
    last: list[tuple[str, str, str]] = []

    def inner(change: dict[str, Any]) -> None:
        key = (change["phase"], change["message"], change["conditions"].get("Ready", {}).get("status", ""))
        if last and last[-1] == key:
            return
        last.append(key)
        show(change)

    return inner


if __name__ == "__main__":
    sys.exit(main())
