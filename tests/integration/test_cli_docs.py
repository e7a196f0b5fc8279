"""The docs against the local control plane (issue 26, "Docs that match"):

- docs/operations.md's exit-code table, the cases that need a cluster (1, 5, 6, 7, 130), each example run as
  written (``team-a`` is the test's namespace) and exiting with its row's code;
- every ``d3os`` cluster command shown in README.md and docs/*.md, run with the operator running, in the order
  of the revision-history transcript: each exits as the docs say, and the transcripts' fixed lines (headers,
  the rollback's first and last lines, the revisions and their changes) are what the commands print;
- README.md's and docs/products.md's ``kubectl get`` tables: kubectl prints them so for such a status.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docs_commands import ROOT, exit_code_table, shown_commands

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import Env  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
SAMPLE = ROOT / "examples" / "dataservice-sample.yaml"
CLUSTER_CODES = (1, 5, 6, 7, 130)
CASES = [(row.code, example, row.text) for row in exit_code_table() if row.code in CLUSTER_CODES
         for example in row.examples]


def _env(kubeconfig: Path | str) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent-home", "KUBECONFIG": str(kubeconfig)}


def _kubectl(cluster: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args],
                          input=stdin, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("code", "example", "row"), CASES, ids=[f"{c}: {e}" for c, e, _ in CASES])
def test_each_cluster_case_exits_with_its_code(k8s_cluster: Any, k8s_namespace: str, crd: None, code: int,
                                               example: str, row: str) -> None:
    ns = k8s_namespace
    words = [w.replace("team-a", ns) for w in shlex.split(example)]
    kc = None
    if "no-rights.kubeconfig" in words:
        kc = k8s_cluster.service_account_kubeconfig(ns, "default")
        words[words.index("no-rights.kubeconfig")] = str(kc)
    if "after `kubectl apply -n team-a -f` a file with another `web` image" in row and code == 7:
        other = SAMPLE.read_text(encoding="utf-8").replace("dataservice-web:v1.4", "dataservice-web:v0.9")
        assert _kubectl(k8s_cluster, "apply", "-n", ns, "-f", "-", stdin=other).returncode == 0
    try:
        if code == 130:
            proc = subprocess.Popen([str(BIN / "d3os"), *words[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, cwd=ROOT, env=_env(k8s_cluster.kubeconfig))
            assert proc.stdout is not None
            first = proc.stdout.readline()  # the first screen: the watch is on
            assert first.startswith("--- "), first
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == code and "Traceback" not in err, err
            return
        out = subprocess.run([str(BIN / "d3os"), *words[1:]], capture_output=True, text=True, timeout=180,
                             cwd=ROOT, env=_env(k8s_cluster.kubeconfig))
        assert out.returncode == code, (example, out.stdout[-1000:], out.stderr)
        assert "Traceback" not in out.stderr
    finally:
        if kc is not None:
            Path(kc).unlink(missing_ok=True)


def _in_namespace(cluster: Any, ns: str, tmp_path: Path) -> Path:
    """A kubeconfig whose context's namespace is ``ns`` (the docs' commands without -n run there)."""
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text(encoding="utf-8"))
    for c in config["contexts"]:
        c["context"]["namespace"] = ns
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _shown(path: str) -> list[Any]:
    return [c for c in shown_commands() if not c.offline and str(c.path.relative_to(ROOT)) == path]


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_the_cluster_commands_run_as_the_docs_show(env: Env, sample: dict[str, Any], tmp_path: Path) -> None:
    ns = env.namespace
    kc = _in_namespace(env.cluster, ns, tmp_path)
    sample_file = tmp_path / "dataservice-sample.yaml"  # examples/dataservice-sample.yaml, uuc at the stand-in
    sample_file.write_text(yaml.safe_dump(sample, allow_unicode=True, sort_keys=False), encoding="utf-8")

    def d3os(command: str) -> subprocess.CompletedProcess[str]:
        command = command.replace("examples/dataservice-sample.yaml", str(sample_file))
        for placeholder, value in (("NAME", "dataservice-sample"), ("NS", ns), ("FILE", str(sample_file))):
            command = re.sub(rf"\b{placeholder}\b", value, command)
        return subprocess.run([str(BIN / "d3os"), *shlex.split(command)[1:]], capture_output=True, text=True,
                              timeout=300, cwd=ROOT, env=_env(kc))

    # the transcript's start: the sample Ready (revision 1), then api-manager +LOG_LEVEL, web v1.5 (revision 2)
    assert d3os(f"d3os apply {sample_file} --wait").returncode == 0
    edited = copy.deepcopy(sample)
    edited["spec"]["api-manager"].setdefault("env", {})["LOG_LEVEL"] = "debug"
    edited["spec"]["web"]["image"] = edited["spec"]["web"]["image"].replace(":v1.4", ":v1.5")
    edited_file = tmp_path / "edited.yaml"
    edited_file.write_text(yaml.safe_dump(edited, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert d3os(f"d3os apply {edited_file} --wait").returncode == 0

    transcripts = [c for c in _shown("docs/operations.md") if c.output]
    assert [c.command for c in transcripts] == ["d3os history dataservice-sample",
                                                "d3os rollback dataservice-sample --to-revision 1 --wait",
                                                "d3os history dataservice-sample"]
    for shown in transcripts:
        out = d3os(shown.command)
        assert out.returncode == 0, (shown.where(), out)
        printed = out.stdout.splitlines()
        if shown.subcommand == "history":
            assert printed[0] == shown.output[0], shown.where()  # the header, to the space
            mine = [(c[0], c[1] if len(c) == 5 else "", c[-1]) for c in map(_cells, printed[1:])]
            docs = [(c[0], c[1] if len(c) == 5 else "", c[-1]) for c in map(_cells, shown.output[1:])]
            assert mine == docs, shown.where()
        else:
            assert printed[0] == shown.output[0].replace("namespace demo", f"namespace {ns}"), shown.where()
            elapsed = re.compile(r"^\s*\d+\.\d+s\s+")
            assert elapsed.sub("", printed[-1]) == elapsed.sub("", shown.output[-1]), shown.where()

    expected = {"diff": (0, 1), "status": (0,), "get": (0,), "history": (0,), "rollback": (0,), "apply": (0,)}
    for shown in [*_shown("docs/operations.md"), *_shown("docs/integrations.md")]:
        if shown.output:
            continue
        out = d3os(shown.command)
        assert out.returncode in expected[shown.subcommand], (shown.where(), out.stdout[-2000:], out.stderr)
        assert "Traceback" not in out.stderr and (out.stdout or shown.subcommand == "diff"), shown.where()
    history = json.loads(d3os("d3os history NAME -o json").stdout)
    owned = json.loads(_kubectl(env.cluster, "get", "controllerrevisions", "-n", ns, "-o", "json").stdout)["items"]
    mine = {r["name"]: r["revision"] for r in history}
    assert mine == {o["metadata"]["name"]: o["revision"] for o in owned if any(  # kubectl the oracle
        ref["kind"] == "DataService" for ref in o["metadata"].get("ownerReferences") or [])}
    assert [r["current"] for r in history].count(True) == 1
    names = d3os("d3os history NAME -o name").stdout.split()
    assert sorted(names) == sorted(f"controllerrevision.apps/{n}" for n in mine)
    got = d3os("d3os get -n NS -o json")
    assert [i["status"]["summary"] for i in json.loads(got.stdout)["items"]] == ["Ready"]
    described = _kubectl(env.cluster, "describe", "dsvc", "dataservice-sample", "-n", ns).stdout
    status_part = described[described.index("\nStatus:"):]
    for key in ("api-manager", "ds-adapter", "gateway-master"):  # the component keys, as written
        assert re.search(rf"^\s+Name:\s+{re.escape(key)}$", status_part, re.M), status_part[:3000]


@pytest.mark.parametrize(("doc", "kind", "example"), [
    ("README.md", "dataservices", SAMPLE),
    ("docs/products.md", "analyticsservices", ROOT / "examples" / "analyticsservice-sample.yaml"),
])
def test_the_kubectl_get_tables_are_what_kubectl_prints(k8s_cluster: Any, k8s_namespace: str, crd: None,
                                                       doc: str, kind: str, example: Path) -> None:
    """The docs' ``kubectl get`` table (header and row, AGE aside): kubectl prints it so for the row's status."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("NAME ") and "STATUS" in line)
    row = text.splitlines()[text.splitlines().index(header) + 1]
    cells = dict(zip(_cells(header), _cells(row), strict=True))
    assert _kubectl(k8s_cluster, "apply", "-n", k8s_namespace, "-f", str(example)).returncode == 0
    status = {"summary": cells["STATUS"], "phase": cells["PHASE"], "message": cells["MESSAGE"],
              "ready": cells["READY"]}
    patched = _kubectl(k8s_cluster, "patch", kind, cells["NAME"], "-n", k8s_namespace, "--subresource=status",
                       "--type=merge", "-p", json.dumps({"status": status}))
    assert patched.returncode == 0, patched
    lines = _kubectl(k8s_cluster, "get", kind, "-n", k8s_namespace).stdout.splitlines()
    assert lines[0] == header
    age = re.compile(r"\S+$")
    assert age.sub("", lines[1]).rstrip() == age.sub("", row).rstrip()  # AGE is the one column left out
