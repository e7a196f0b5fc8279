"""Helm 4's ``--wait`` (kstatus) on a chart that contains a DataService (examples/helm/dataservice): the
install returns only once the DataService is Ready, and fails fast, with the operator's message, when the
DataService is Stalled -- long before its ``--timeout``."""

from __future__ import annotations

import copy
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin")
from tests.docsnippets import command  # noqa: E402

from .standin import Env  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "examples" / "helm" / "dataservice"
NAME = "dataservice-sample"


def test_helm_install_wait_returns_once_ready_and_fails_fast_when_stalled(
    env: Env, sample: dict[str, Any], helm_binary: str, tmp_path: Path
) -> None:
    helm_env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(env.cluster.kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "cache"), "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }

    def helm(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
        t0 = time.monotonic()
        out = subprocess.run([helm_binary, *args], capture_output=True, text=True, env=helm_env, timeout=300)
        return out, time.monotonic() - t0

    values = {"name": NAME, "spec": sample["spec"]}  # uuc pointed at the local stand-in
    good = tmp_path / "values.yaml"
    good.write_text(yaml.safe_dump(values, allow_unicode=True))
    # docs/integrations.md: `helm install ds examples/helm/dataservice -n apps --wait --timeout 120s`
    argv = command("helm-install-wait")[1:]
    argv = [str(ROOT / a) if a.startswith("examples/") else a for a in argv]
    argv[argv.index("-n") + 1] = env.namespace
    assert argv[:2] == ["install", "ds"] and "--wait" in argv and str(CHART) in argv
    done, took = helm(*argv, "-f", str(good))
    assert done.returncode == 0, done.stderr
    ds = env.ds()
    assert ds is not None and harness.is_ready(ds), "helm returned before the DataService was Ready"
    assert ds["status"]["observedGeneration"] == ds["metadata"]["generation"]
    print(f"\nhelm install --wait: Ready after {took:.1f} s")
    gone, _ = helm("uninstall", "ds", "-n", env.namespace, "--wait", "--timeout", "120s")
    assert gone.returncode == 0, gone.stderr
    assert env.ds() is None

    stuck = copy.deepcopy(values)
    stuck["spec"]["progressDeadlineSeconds"] = 10
    stuck["spec"]["mysql"]["resources"] = {"requests": {"cpu": "5000"}}  # never scheduled
    bad = tmp_path / "stuck.yaml"
    bad.write_text(yaml.safe_dump(stuck, allow_unicode=True))
    failed, took = helm("install", "ds2", str(CHART), "-n", env.namespace, "--wait", "--timeout", "120s",
                        "-f", str(bad))
    print(f"helm install --wait on a DataService that stalls: exit {failed.returncode} after {took:.1f} s\n"
          f"{failed.stderr.strip()}")
    assert failed.returncode != 0
    assert took < 60, f"helm waited {took:.0f} s: it should fail as soon as the DataService is Stalled"
    assert f"DataService/{env.namespace}/{NAME} not ready. status: Failed" in failed.stderr, failed.stderr
    assert "mysql: 0 of 1 pods ready: mysql-dataservice-0 Pending" in failed.stderr, failed.stderr
