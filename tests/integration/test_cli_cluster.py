"""The command lines against the real local control plane: kubectl finds the ``kubectl d3os`` plugin; a
forbidden request and a missing object are one-line errors with their documented exit codes; and
``d3os render`` output reads back the same through kubectl's own YAML reader (go-yaml) for many specs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from d3os_core.render import Parent, render_component, resolve
from d3os_core.spec import ENV_NAME_PATTERN
from d3os_core.validation import parse_spec
from d3os_core.yamlout import dump_all
from d3os_operator.usercli import errors as clierrors

from ..unit.helpers import DATASERVICE
from ..unit.strategies import specs

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "examples" / "dataservice-sample.yaml"


def run(cluster: Any, *cmd: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{BIN}:{cluster.bin_dir}:/usr/bin:/bin", "HOME": "/nonexistent-home",
           "KUBECONFIG": str(kubeconfig or cluster.kubeconfig)}
    return subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def one_line(out: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert out.returncode == code, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_kubectl_finds_the_plugin(k8s_cluster: Any, k8s_namespace: str, crd: None) -> None:
    listed = run(k8s_cluster, "kubectl", "plugin", "list")
    assert str(BIN / "kubectl-d3os") in listed.stdout, listed.stdout + listed.stderr
    out = run(k8s_cluster, "kubectl", "d3os", "status", "nothing-here", "-n", k8s_namespace)
    assert out.returncode == 1 and f"DataService {k8s_namespace}/nothing-here: not found" in out.stdout, out
    version = run(k8s_cluster, "kubectl", "d3os", "--version")
    assert version.stdout.startswith("kubectl d3os "), version


def test_forbidden_names_the_verb_and_resource(k8s_cluster: Any, k8s_namespace: str, crd: None) -> None:
    kc = k8s_cluster.service_account_kubeconfig(k8s_namespace, "default")
    try:
        out = run(k8s_cluster, str(BIN / "d3os"), "status", "x", "-n", k8s_namespace, "--kubeconfig", str(kc))
        one_line(out, clierrors.EXIT_FORBIDDEN, "forbidden", "cannot get", "dataservices", k8s_namespace)
        out = run(k8s_cluster, str(BIN / "d3os"), "apply", str(SAMPLE), "-n", k8s_namespace, "--kubeconfig", str(kc))
        one_line(out, clierrors.EXIT_FORBIDDEN, "forbidden", "cannot patch", "dataservices")
    finally:
        Path(kc).unlink(missing_ok=True)


def test_not_found_is_exit_6(k8s_cluster: Any, crd: None) -> None:
    out = run(k8s_cluster, str(BIN / "d3os"), "diff", str(SAMPLE), "-n", "no-such-namespace-d3os")
    one_line(out, clierrors.EXIT_NOT_FOUND, "not found", "no-such-namespace-d3os")


ANALYTICS = ROOT / "examples" / "analyticsservice-sample.yaml"


def test_cluster_commands_serve_every_installed_product(
    k8s_cluster: Any, k8s_namespace: str, crd: None, tmp_path: Path
) -> None:
    """apply/status/diff/history of an AnalyticsService (the file's kind, or the kind NAME is found under);
    one name under two kinds wants --kind; a name not there yet is watched for under every kind."""
    ns, name, d3os = k8s_namespace, "analyticsservice-sample", str(BIN / "d3os")
    out = run(k8s_cluster, d3os, "apply", str(ANALYTICS), "-n", ns)
    assert out.returncode == 0, out
    assert out.stdout == f"analyticsservice.d3os-product.com.d3os/{name} applied (namespace {ns}, generation 1)\n"
    out = run(k8s_cluster, d3os, "status", name, "-n", ns)
    assert out.returncode == 0 and out.stdout.startswith(f"AnalyticsService {ns}/{name}   generation 1"), out
    out = run(k8s_cluster, d3os, "status", name, "-n", ns, "--kind", "dsvc")
    assert (out.returncode, out.stdout) == (1, f"DataService {ns}/{name}: not found\n"), out
    out = run(k8s_cluster, d3os, "history", name, "-n", ns)
    assert out.returncode == 0 and out.stdout.startswith(f"AnalyticsService {ns}/{name}: no revisions yet"), out
    out = run(k8s_cluster, d3os, "diff", str(ANALYTICS), "-n", ns)
    assert out.returncode == 1, out  # its children do not exist (no operator here)
    assert out.stdout.splitlines()[-1].startswith("# 0 AnalyticsService, "), out.stdout[-500:]
    assert "+++ applied/Deployment/ingest-api" in out.stdout

    namesake = tmp_path / "namesake.yaml"
    namesake.write_text(SAMPLE.read_text(encoding="utf-8").replace("name: dataservice-sample", f"name: {name}"),
                        encoding="utf-8")
    assert run(k8s_cluster, d3os, "apply", str(namesake), "-n", ns).returncode == 0
    out = run(k8s_cluster, d3os, "status", name, "-n", ns)
    one_line(out, clierrors.EXIT_INVALID, "several kinds", "AnalyticsService", "DataService", "--kind")
    for kind, want in (("asvc", "AnalyticsService"), ("DataService", "DataService")):
        out = run(k8s_cluster, d3os, "status", name, "-n", ns, "--kind", kind)
        assert out.returncode == 0 and out.stdout.startswith(f"{want} {ns}/{name}   generation 1"), out

    out = run(k8s_cluster, d3os, "status", "nothing-yet", "-n", ns, "--watch", "--timeout", "3")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out
    assert f"DataService {ns}/nothing-yet: not found\nAnalyticsService {ns}/nothing-yet: not found\n" in out.stdout


def rendered(spec: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    s = parse_spec(spec, DATASERVICE)
    parent = Parent("dataservice-sample", namespace, "uid-1")
    states = resolve(parent, s, DATASERVICE)
    return [dict(o) for key in DATASERVICE.keys
            for o in render_component(parent, s, DATASERVICE, states, key, {}, "").objects]


TRICKY = ("9910e32967671646", "0x1F", "1e3", "yes", "off", "~", "null", "012", "1:20", "2001-12-14", ".inf", "_1")


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.generate))
@given(st.lists(st.tuples(specs(), st.sampled_from(("yes", "no", "on", "y", "null", "e3", "ns-1")),
                          st.sampled_from(TRICKY)), min_size=3, max_size=3))
def test_render_reads_back_the_same_in_kubectl(k8s_cluster: Any, cases: list[tuple[dict[str, Any], str, str]]) -> None:
    docs: list[dict[str, Any]] = []
    for spec, namespace, value in cases:
        env = {**(spec["auth"].get("env") or {}), "TRICKY": value}
        if re.match(ENV_NAME_PATTERN, value.upper()):
            env[value.upper()] = "v"  # a tricky key too
        spec["auth"]["env"] = env
        docs.extend(rendered(spec, namespace))
    out = subprocess.run([str(k8s_cluster.bin_dir / "kubectl"), f"--kubeconfig={k8s_cluster.kubeconfig}", "apply",
                          "--dry-run=client", "-o", "json", "-f", "-"], input=dump_all(docs), capture_output=True,
                         text=True, timeout=120, env={**os.environ})
    assert out.returncode == 0, out.stderr
    items, text, decoder = [], out.stdout.strip(), json.JSONDecoder()
    while text:  # one JSON object per document
        obj, end = decoder.raw_decode(text)
        items.extend(obj["items"] if obj.get("kind") == "List" else [obj])
        text = text[end:].strip()
    for item in items:  # what apply adds: its record of the applied configuration
        annotations = item["metadata"].get("annotations") or {}
        annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    assert items == docs


def _kubectl(cluster: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args],
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_apply_refuses_an_invalid_file_before_any_request(k8s_cluster: Any, k8s_namespace: str, crd: None,
                                                         tmp_path: Path) -> None:
    """Issue 26 item 3: the offline verdict first (exit 2, the field path), never the API server's
    ``failed to create typed patch object … expected numeric`` (exit 7); nothing is created."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(SAMPLE.read_text(encoding="utf-8").replace("port: 9085", 'port: "9085x"'), encoding="utf-8")
    for cmd in ("apply", "diff"):
        out = run(k8s_cluster, str(BIN / "d3os"), cmd, str(bad), "-n", k8s_namespace)
        one_line(out, clierrors.EXIT_INVALID, str(bad), "spec.api-manager.port", "must be an integer")
    got = _kubectl(k8s_cluster, "get", "dsvc", "-n", k8s_namespace, "-o", "name")
    assert got.returncode == 0 and got.stdout == "", got


def test_a_field_manager_conflict_is_explained(k8s_cluster: Any, k8s_namespace: str, crd: None,
                                               tmp_path: Path) -> None:
    """Issue 26 item 4: after a client-side ``kubectl apply`` (docs/install.md's path), ``d3os diff``/``apply`` of
    a changed image name the field, its manager and the resolving command; with ``--force-conflicts`` the diff
    shows the one real change (not ``+ nodePort: null`` for the sample's empty fields), and the command the
    message gives resolves it."""
    ns = k8s_namespace
    made = _kubectl(k8s_cluster, "apply", "-n", ns, "-f", str(SAMPLE))
    assert made.returncode == 0, made
    edited = tmp_path / "edited.yaml"
    edited.write_text(SAMPLE.read_text(encoding="utf-8").replace("dataservice-web:v1.4", "dataservice-web:v1.5"),
                      encoding="utf-8")
    for cmd in ("diff", "apply"):
        out = run(k8s_cluster, str(BIN / "d3os"), cmd, str(edited), "-n", ns)
        one_line(out, clierrors.EXIT_API, "conflict", ".spec.web.image", '"kubectl-client-side-apply"',
                 f"d3os apply {edited} -n {ns} --force-conflicts")
    out = run(k8s_cluster, str(BIN / "d3os"), "diff", str(edited), "-n", ns, "--force-conflicts")
    assert out.returncode == 1, out
    own = out.stdout.split("--- live/", 2)[1]  # the DataService's own diff (its children come after)
    changed = [line for line in own.splitlines()[2:] if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-    image: registry-edge.cosmoplat.com/dataservice/dataservice-web:v1.4",
                       "+    image: registry-edge.cosmoplat.com/dataservice/dataservice-web:v1.5"], own
    resolve = one_line_command(out_of=run(k8s_cluster, str(BIN / "d3os"), "apply", str(edited), "-n", ns))
    done = run(k8s_cluster, str(BIN / "d3os"), *resolve)
    assert done.returncode == 0, done
    image = _kubectl(k8s_cluster, "get", "dsvc", "dataservice-sample", "-n", ns, "-o", "jsonpath={.spec.web.image}")
    assert image.stdout.endswith(":v1.5"), image
    out = run(k8s_cluster, str(BIN / "d3os"), "diff", str(edited), "-n", ns)  # the DataService is as the file says
    assert "--- live/DataService/" not in out.stdout, out.stdout[:2000]


def one_line_command(out_of: subprocess.CompletedProcess[str]) -> list[str]:
    """The arguments of the ``d3os apply …`` command a conflict message gives."""
    match = re.search(r"to take them over: d3os (apply \S+ -n \S+ --force-conflicts)", out_of.stderr)
    assert match, out_of.stderr
    return match.group(1).split(" ")


def test_diff_into_a_closed_pipe_still_says_changes(k8s_cluster: Any, k8s_namespace: str, crd: None) -> None:
    """Issue 26 item 6: ``d3os diff FILE | head -1`` exits 1 (changes), as the unpiped diff does, not 0."""
    shell = (f"{BIN / 'd3os'} diff {SAMPLE} -n {k8s_namespace} | head -1; "
             'echo "exit=${PIPESTATUS[0]}"')
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent-home",
                              "KUBECONFIG": str(k8s_cluster.kubeconfig)})
    assert out.stdout.splitlines() == ["--- live/DataService/dataservice-sample", "exit=1"], out
    assert out.stderr == "", out.stderr


def test_get_lists_every_product_kind_and_output_formats_match_kubectl(
    k8s_cluster: Any, k8s_namespace: str, crd: None, tmp_path: Path
) -> None:
    """Issue 26 item 5, kubectl the oracle: ``d3os get [-n NS | -A] -o name|json`` lists what ``kubectl get
    dsvc,asvc`` lists; ``status -o json`` is the object kubectl returns; the STATUS column (item 8) shows the
    status' summary in kubectl's table and in ``d3os get``."""
    ns, d3os = k8s_namespace, str(BIN / "d3os")
    other = f"{ns}-b"
    assert _kubectl(k8s_cluster, "create", "namespace", other).returncode == 0
    try:
        for path, where in ((SAMPLE, ns), (ANALYTICS, ns), (SAMPLE, other)):
            assert run(k8s_cluster, d3os, "apply", str(path), "-n", where).returncode == 0
        for scope in (["-n", ns], ["-A"]):
            mine = run(k8s_cluster, d3os, "get", *scope, "-o", "name")
            theirs = _kubectl(k8s_cluster, "get", "dataservices,analyticsservices", *scope, "-o", "name")
            assert mine.returncode == 0 and theirs.returncode == 0, (mine, theirs)
            assert sorted(mine.stdout.splitlines()) == sorted(theirs.stdout.splitlines()), (mine, theirs)
            listed = json.loads(run(k8s_cluster, d3os, "get", *scope, "-o", "json").stdout)
            kubectl_listed = json.loads(_kubectl(k8s_cluster, "get", "dataservices,analyticsservices", *scope,
                                                 "-o", "json").stdout)
            key = lambda o: (o["metadata"]["namespace"], o["kind"], o["metadata"]["name"])  # noqa: E731
            assert sorted(map(key, listed["items"])) == sorted(map(key, kubectl_listed["items"]))
        assert len(run(k8s_cluster, d3os, "get", "-A", "-o", "name").stdout.splitlines()) >= 3
        mine = json.loads(run(k8s_cluster, d3os, "status", "dataservice-sample", "-n", ns, "-o", "json").stdout)
        theirs = json.loads(_kubectl(k8s_cluster, "get", "dsvc", "dataservice-sample", "-n", ns, "-o", "json").stdout)
        assert mine == theirs
        patch = json.dumps({"status": {"summary": "Degraded", "ready": "11/12", "phase": "web已部署"}})
        done = _kubectl(k8s_cluster, "patch", "dsvc", "dataservice-sample", "-n", ns, "--subresource=status",
                        "--type=merge", "-p", patch)
        assert done.returncode == 0, done
        header, line = _kubectl(k8s_cluster, "get", "dsvc", "dataservice-sample", "-n", ns).stdout.splitlines()[:2]
        assert header.split()[:2] == ["NAME", "STATUS"] and line.split()[:2] == ["dataservice-sample", "Degraded"]
        table = run(k8s_cluster, d3os, "get", "-n", ns).stdout.splitlines()
        assert table[0].split() == ["NAME", "KIND", "STATUS", "READY", "PHASE", "AGE"], table
        assert [r.split()[:4] for r in table[1:]] == [
            ["analyticsservice-sample", "AnalyticsService", "-", "-"],
            ["dataservice-sample", "DataService", "Degraded", "11/12"]], table
        out = run(k8s_cluster, d3os, "get", "nothing-here", "-n", ns)
        assert out.returncode == 1 and "DataService" in out.stdout and "not found" in out.stdout, out
        one_line(run(k8s_cluster, d3os, "get", "-A", "-n", ns), clierrors.EXIT_INVALID, "-A", "-n")
    finally:
        _kubectl(k8s_cluster, "delete", "namespace", other, "--wait=false")


def test_plan_names_objects_as_kubectl_does(k8s_cluster: Any) -> None:
    """``d3os plan FILE -o name``: the objects of ``-o wide``'s manifests, named as ``kubectl create -o name``."""
    wide = subprocess.run([str(BIN / "d3os"), "plan", str(SAMPLE), "-o", "wide"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    names = subprocess.run([str(BIN / "d3os"), "plan", str(SAMPLE), "-o", "name"], capture_output=True, text=True,
                           timeout=120, cwd=ROOT)
    manifests = yaml.safe_load(wide.stdout)["apply"]
    kubectl = _kubectl(k8s_cluster, "create", "--dry-run=client", "-o", "name", "-f", "-", stdin=dump_all(manifests))
    assert kubectl.returncode == 0, kubectl.stderr
    assert names.returncode == 0 and names.stdout == kubectl.stdout and len(manifests) >= 5, (names, kubectl)


def test_kubectl_d3os_completes_names_from_the_cluster(k8s_cluster: Any, k8s_namespace: str, crd: None) -> None:
    """Issue 26 item 7, kubectl the oracle: ``kubectl d3os <TAB>`` runs ``kubectl_complete-d3os`` (found on PATH)
    and completes instance names, namespaces and contexts from the cluster; the bash script does the same."""
    ns = k8s_namespace
    assert run(k8s_cluster, str(BIN / "d3os"), "apply", str(ANALYTICS), "-n", ns).returncode == 0

    def kubectl_complete(*words: str) -> list[str]:
        out = run(k8s_cluster, "kubectl", "__complete", "d3os", *words)
        assert out.returncode == 0, out
        *candidates, directive = out.stdout.splitlines()
        assert directive == ":4", out.stdout
        return candidates

    assert kubectl_complete("status", "-n", ns, "") == ["analyticsservice-sample"]
    assert kubectl_complete("history", "--kind", "dsvc", "-n", ns, "") == []
    assert kubectl_complete("get", "-A", "ana") == ["analyticsservice-sample"]
    assert ns in kubectl_complete("status", "-n", "")
    contexts = run(k8s_cluster, "kubectl", "config", "get-contexts", "-o", "name").stdout.split()
    assert kubectl_complete("status", "--context", "") == contexts and contexts
    script = run(k8s_cluster, str(BIN / "d3os"), "completion", "bash").stdout
    words = ["d3os", "status", "-n", ns, "analy"]
    cmd = (f"{script}\nCOMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}; _d3os; "
           'printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120,
                         env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent-home",
                              "KUBECONFIG": str(k8s_cluster.kubeconfig)})
    assert out.stdout.split() == ["analyticsservice-sample"], out
