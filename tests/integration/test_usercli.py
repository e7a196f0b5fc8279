"""Issue 6: the CLI for people on the local control plane, with the operator running in-process.

``d3os apply --wait`` shows progress until Ready (exit 0) while ``d3os status --watch`` redraws;
``d3os status`` shows every component ready and the conditions; ``d3os diff`` shows nothing for an
unchanged file, and after editing one image exactly that change (the spec line and that Deployment).
The captured screens go to the figures output (see standin.figures_out).
"""

from __future__ import annotations

import contextlib
import copy
import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_operator import usercli

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import CHAIN, Env, figures_out  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def d3os(env: Env, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = usercli.main([*args, "-n", env.namespace, "--kubeconfig", str(env.cluster.kubeconfig)], out=out)
    return code, out.getvalue()


def _write(path: Path, manifest: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def test_apply_wait_status_and_diff(env: Env, sample: dict[str, Any], tmp_path: Path) -> None:
    name = sample["metadata"]["name"]
    # `d3os status --watch` as a person runs it, stopped as a person stops it (Ctrl-C), and waited for
    watch_file = tmp_path / "status-watch.txt"
    with watch_file.open("w", encoding="utf-8") as sink, _ctrl_c_inherited():
        watcher = subprocess.Popen(
            [sys.executable, "-m", "d3os_operator.usercli", "status", name, "--watch", "--timeout", "600",
             "-n", env.namespace, "--kubeconfig", str(env.cluster.kubeconfig)],
            stdout=sink, stderr=subprocess.PIPE, text=True,
        )
    try:
        _until(lambda: "--- " in watch_file.read_text(encoding="utf-8") or watcher.poll() is not None, 120)
        assert watcher.poll() is None, watcher.communicate()[1]
        applied, screen, diff = _apply_status_and_diff(env, sample, tmp_path)
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=60)
        assert watcher.returncode == 130, err  # Ctrl-C: the documented exit code of an interruption
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    screens = watch_file.read_text(encoding="utf-8")
    assert screens.count("--- ") >= 3 and "✓ ready" in screens
    figures_out(
        "usercli",
        {"apply_wait": applied, "status": screen, "diff_one_image": diff, "status_watch_last": screens[-3000:]},
    )


@contextlib.contextmanager
def _ctrl_c_inherited() -> Iterator[None]:
    """Children started meanwhile get Ctrl-C's default action, as from a terminal, even when this test runs as
    a background job: a shell without job control starts those with SIGINT ignored, which a child inherits
    (a handled signal is reset to its default at exec). Set here, in the test's own thread, rather than in a
    ``preexec_fn``, which is unsafe while the operator's threads run."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _until(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not done after {timeout}s"
        time.sleep(0.2)


def _apply_status_and_diff(env: Env, sample: dict[str, Any], tmp_path: Path) -> tuple[str, str, str]:
    name = sample["metadata"]["name"]
    code, applied = d3os(env, "apply", _write(tmp_path / "ds.yaml", sample), "--wait", "--timeout", "200")
    assert code == 0, applied
    assert "applied" in applied.splitlines()[0]
    assert "Ready" in applied.splitlines()[-1]
    assert any("[mysql]" in line for line in applied.splitlines()), applied

    code, screen = d3os(env, "status", name)
    assert code == 0
    assert "Ready" in screen and screen.count("✓ ready") == len(CHAIN), screen
    for key in CHAIN:
        assert key in screen

    # an unchanged file: nothing to show
    code, out = d3os(env, "diff", str(tmp_path / "ds.yaml"))
    assert (code, out) == (0, ""), out

    # one image edited: exactly that change
    edited = copy.deepcopy(sample)
    old = edited["spec"]["auth"]["image"]
    edited["spec"]["auth"]["image"] = old.rsplit(":", 1)[0] + ":v9.9.9"
    code, diff = d3os(env, "diff", _write(tmp_path / "edited.yaml", edited))
    assert code == 1, diff
    changes = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    new = old.rsplit(":", 1)[0] + ":v9.9.9"
    image_lines = [line.replace(" ", "") for line in changes if "image:" in line]
    # the DataService's spec, then the Deployment's container: that image and nothing else
    assert image_lines == [f"-image:{old}", f"+image:{new}"] * 2, diff
    assert diff.splitlines()[-1].endswith("would change: Deployment/auth"), diff
    other = [line for line in changes if "image:" not in line and "desired-hash" not in line]
    assert other == [], diff
    return applied, screen, diff


def test_apply_wait_times_out_without_an_operator(
    k8s_cluster: Any, k8s_namespace: str, crd: None, sample: dict[str, Any], tmp_path: Path
) -> None:
    out = io.StringIO()
    args = ["apply", _write(tmp_path / "ds.yaml", sample), "--wait", "--timeout", "1.5"]
    args += ["-n", k8s_namespace, "--kubeconfig", str(k8s_cluster.kubeconfig)]
    started = time.monotonic()
    code = usercli.main(args, out=out)
    assert code == 1, out.getvalue()
    assert "timed out after 1.5s waiting for Ready" in out.getvalue()
    assert time.monotonic() - started < 10
    out = io.StringIO()
    assert (
        usercli.main(
            ["status", "nothing-here", "-n", k8s_namespace, "--kubeconfig", str(k8s_cluster.kubeconfig)], out=out
        )
        == 1
    )
    assert "not found" in out.getvalue()
