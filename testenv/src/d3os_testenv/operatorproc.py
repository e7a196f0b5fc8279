"""``d3os-operator run`` as a subprocess: the one way the demo, the tests and the bench start a real operator.

A process of its own, so that its memory and CPU are its own (read from /proc), it can be killed with
SIGKILL mid-rollout, restarted, run twice beside itself (leader election, shards) -- and so that the flags
every caller needs are written once: JSON logs to a file, metrics and health servers on free loopback
ports (other operators, tests and benchmarks may run on this machine at the same time), and the probe
policy opened to 127.0.0.1/32, where the third-party stand-in listens (it refuses loopback by default).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SYNCED = "caches synced"
"""What the operator logs once every informer has listed: it is serving."""


class OperatorProcess:
    """One ``d3os-operator run``; see the module docstring. ``kubeconfig`` None with ``--in-cluster`` in
    ``extra``; ``namespaces`` empty: all of them. ``python_args`` go before ``-m`` (e.g. cProfile)."""

    def __init__(
        self,
        kubeconfig: Path | str | None,
        log: Path,
        *,
        namespaces: Sequence[str] = (),
        extra: Sequence[str] = (),
        log_format: str = "json",
        log_level: str = "info",
        metrics: str = "127.0.0.1:0",
        health: str = "127.0.0.1:0",
        allow_loopback: bool = True,
        env: Mapping[str, str] | None = None,
        python_args: Sequence[str] = (),
    ) -> None:
        self.log = log
        cmd = [sys.executable, *python_args, "-m", "d3os_operator.cli", "run"]
        if kubeconfig is not None:
            cmd += ["--kubeconfig", str(kubeconfig)]
        for ns in namespaces:
            cmd += ["--namespace", ns]
        cmd += ["--log-format", log_format, "--log-level", log_level,
                "--metrics-bind-address", metrics, "--health-probe-bind-address", health]
        if allow_loopback:
            cmd += ["--probe-allow-cidr", "127.0.0.1/32"]
        self.cmd = [*cmd, *extra]
        log.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.killed_at: float | None = None
        with open(log, "ab") as f:
            self.p = subprocess.Popen(self.cmd, stdout=f, stderr=subprocess.STDOUT,
                                      env=dict(env) if env is not None else None)

    @property
    def shown(self) -> str:
        """The command as a user would type it."""
        return " ".join(["d3os-operator", *self.cmd[self.cmd.index("run"):]])

    @property
    def pid(self) -> int:
        return self.p.pid

    @property
    def alive(self) -> bool:
        return self.p.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.p.poll()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, n: int = 3000) -> str:
        return self.text()[-n:]

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log, one dict per line (a line that is not JSON: ``{"msg": line, "level": "raw"}``)."""
        out: list[dict[str, Any]] = []
        for line in self.text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            out.append(record if isinstance(record, dict) else {"msg": line, "level": "raw"})
        return out

    def synced(self) -> bool:
        return SYNCED in self.text()

    def check(self) -> None:
        """Raise if the operator has exited."""
        if not self.alive:
            raise AssertionError(f"the operator exited ({self.p.returncode}): {self.tail()}")

    def wait_synced(self, timeout: float = 90.0) -> float:
        """Until it logs "caches synced"; returns seconds since it started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.synced():
                return time.monotonic() - self.started
            self.check()
            time.sleep(0.05)
        raise AssertionError(f"the operator did not sync its caches within {timeout}s: {self.tail()}")

    def logged_port(self, msg: str) -> int:
        """The port a server of it chose, from its JSON log (``serving health probes``, ``serving metrics``)."""
        for x in self.lines():
            if x.get("msg") == msg and x.get("port"):
                return int(x["port"])
        raise AssertionError(f"the operator has not logged {msg!r} with a port: {self.tail()}")

    def health_port(self) -> int:
        return self.logged_port("serving health probes")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye."""
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(30)
        self.killed_at = time.monotonic()

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def __enter__(self) -> OperatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
