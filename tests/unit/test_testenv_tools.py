"""d3os_testenv's build recipes: the wrapper go.mod, the version override, and what one cold build runs and
where it puts the binaries (the cache layout other runs reuse), with a stand-in for ``go``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from d3os_testenv import build
from d3os_testenv.build import GO_TOOLS, HELM_VERSION, Recipe, Versions, tool_wrapper_gomod

HELM_GO_MOD = """module helm.sh/helm/v4

go 1.25.0

require (
\tk8s.io/client-go v0.37.0
)

replace github.com/docker/distribution => github.com/docker/distribution v0.0.0-20191216044856-a8371794149d

replace (
\tgithub.com/a/b => github.com/a/b v1.2.3 // pinned
\tgithub.com/local/thing => ../thing
)
"""


def test_wrapper_requires_the_tool_and_repeats_its_remote_replaces() -> None:
    text = tool_wrapper_gomod(GO_TOOLS["helm"], HELM_GO_MOD)
    assert "module d3os.local/testenv/helm" in text and "go 1.25.0" in text
    assert f"require helm.sh/helm/v4 {HELM_VERSION}" in text
    assert "\tgithub.com/docker/distribution => github.com/docker/distribution v0.0.0-2019121604" in text
    assert "\tgithub.com/a/b => github.com/a/b v1.2.3\n" in text
    assert "../thing" not in text


def test_version_override_and_cache_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    helm = GO_TOOLS["helm"]
    assert helm.binary(tmp_path) == tmp_path / f"helm-{HELM_VERSION}" / "helm"
    monkeypatch.setenv("D3OS_TESTENV_HELM_VERSION", "v4.2.4")
    assert helm.resolved().version == "v4.2.4"
    assert helm.binary(tmp_path) == tmp_path / "helm-v4.2.4" / "helm"
    assert Recipe("x", "m", (("x", "m/cmd"),), "v1").resolved().version == "v1"
    assert helm.resolved("v3.0.0").directory(tmp_path) == tmp_path / "helm-v3.0.0", "a pinned version wins"


def test_helm_is_helm_4_and_its_ldflags_stamp_the_version() -> None:
    helm = GO_TOOLS["helm"]
    assert helm.module == "helm.sh/helm/v4" and HELM_VERSION.startswith("v4.")
    flags = helm.ldflags.format(version="v4.3.2", k8s_major=1, k8s_minor=37)
    assert "-X helm.sh/helm/v4/internal/version.version=v4.3.2 " in flags
    assert "helm/v3" not in flags, "Helm 4 has no v3 package paths: a stale -X is silently ignored by the linker"


K8S_GO_MOD = """module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""


def test_one_cold_build_runs_each_recipe_into_its_cache_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("D3OS_TESTENV_ETCD", "D3OS_TESTENV_KUBERNETES_VERSION", "D3OS_TESTENV_ETCD_VERSION",
                "D3OS_TESTENV_KWOK_VERSION", "D3OS_TESTENV_HELM_VERSION", "D3OS_TESTENV_PROMETHEUS_VERSION"):
        monkeypatch.delenv(var, raising=False)
    mods = tmp_path / "mods"
    (mods / "k8s.mod").parent.mkdir()
    (mods / "k8s.mod").write_text(K8S_GO_MOD)
    (mods / "helm.mod").write_text(HELM_GO_MOD)
    for rel in build.KWOK_STAGE_FILES:
        (mods / "kwok" / rel).parent.mkdir(parents=True, exist_ok=True)
        (mods / "kwok" / rel).write_text(f"kind: Stage  # {rel}\n")
    gets: list[list[str]] = []
    compiled: dict[str, tuple[str, str, list[str]]] = {}
    tagged: dict[str, str] = {}

    def fake_go(go: str, args: list[str], cwd: Path, log: Path, what: str, progress: Any, **kw: Any) -> str:
        if args[:2] == ["mod", "download"]:
            module = args[-1].split("@")[0]
            go_mod = {"k8s.io/kubernetes": "k8s.mod", "helm.sh/helm/v4": "helm.mod",
                      "github.com/prometheus/prometheus": "helm.mod"}.get(module, "none")
            return "go: downloading\n" + json.dumps({"GoMod": str(mods / go_mod), "Dir": str(mods / "kwok")})
        gets.append(args)
        return ""

    def fake_compile(go: str, src: Path, log: Path, what: str, progress: Any, jobs: int, ldflags: str, out: Path,
                     pkgs: list[str], tags: str = "") -> None:
        compiled[src.name] = ((src / "go.mod").read_text(), ldflags, pkgs)
        tagged[src.name] = tags
        for name in [p.rsplit("/", 1)[-1] for p in pkgs] if len(pkgs) > 1 else [out.name]:
            exe = (out if len(pkgs) > 1 else out.parent) / name
            exe.write_text("#!/bin/sh\n")
            exe.chmod(0o755)

    monkeypatch.setattr(build, "_run_go", fake_go)
    monkeypatch.setattr(build, "_compile", fake_compile)
    monkeypatch.setattr(build, "find_go", lambda: "go")
    monkeypatch.setattr(build, "_go_version_line", lambda go: "1.26")
    tc = build.ensure_built(Versions(), jobs=1, root=tmp_path)
    build.ensure_tool("helm", jobs=1, root=tmp_path)
    build.ensure_tool("promtool", jobs=1, root=tmp_path)

    v = Versions()
    entries = {p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*-v*/*") if "bin-" not in p.parent.name}
    assert entries == {
        *(f"kubernetes-{v.kubernetes}/{b}" for b in build.K8S_BINARIES),
        f"etcd-{v.etcd}/etcd", f"kwok-{v.kwok}/kwok", f"kwok-{v.kwok}/stages.yaml", f"helm-{HELM_VERSION}/helm",
        f"promtool-{build.PROMETHEUS_VERSION}/promtool",
    }
    assert tc.is_built() and tc.bin_dir == tmp_path / f"bin-{v.kubernetes}-etcd{v.etcd}-kwok{v.kwok}"
    assert (tc.bin_dir / "helm").resolve() == tmp_path / f"helm-{HELM_VERSION}" / "helm"
    assert [g[1].split("@")[0] for g in gets] == [  # small ones first
        "sigs.k8s.io/kwok/cmd/kwok", "go.etcd.io/etcd/server/v3", "k8s.io/kubernetes/cmd/kube-apiserver",
        "helm.sh/helm/v4/cmd/helm", "github.com/prometheus/prometheus/cmd/promtool",
    ]
    assert tagged[f"promtool-{build.PROMETHEUS_VERSION}"] == "remove_all_sd", "no service discovery in promtool"
    assert tagged[f"helm-{HELM_VERSION}"] == ""
    k8s_mod, k8s_flags, k8s_pkgs = compiled[f"kubernetes-{v.kubernetes}"]
    assert "\tk8s.io/api => k8s.io/api v0.36.3" in k8s_mod and "godebug default=go1.26" in k8s_mod
    assert len(k8s_pkgs) == 4 and "k8s.io/component-base/version.gitVersion=v1.36.3" in k8s_flags
    assert re.search(r"client-go/pkg/version\.gitMinor=36 ", k8s_flags)
    etcd_mod, etcd_flags, _ = compiled[f"etcd-{v.etcd}"]
    assert etcd_mod.endswith("module d3os.local/testenv/etcd\n\ngo 1.24\n")
    assert etcd_flags == f"-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-{v.etcd}"
    assert compiled[f"kwok-{v.kwok}"][1] == "-s -w"
    assert f"internal/version.version={HELM_VERSION}" in compiled[f"helm-{HELM_VERSION}"][1]
    assert "kustomize/stage/pod/fast/pod-ready.yaml" in tc.kwok_stages.read_text()

    gets.clear()
    assert build.ensure_built(Versions(), jobs=1, root=tmp_path).is_built() and gets == [], "all cached"


def test_the_tests_own_go_tools_build_from_their_checked_in_module(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """kstatus and luahealth: their go.mod and go.sum pin every dependency (no `go get`), and the cache
    entry is named by a hash of their files, so an edit of main.go builds anew."""
    ran: list[list[str]] = []
    compiled: dict[str, list[str]] = {}

    def fake_go(go: str, args: list[str], cwd: Path, log: Path, what: str, progress: Any, **kw: Any) -> str:
        ran.append(args)
        return ""

    def fake_compile(go: str, src: Path, log: Path, what: str, progress: Any, jobs: int, ldflags: str, out: Path,
                     pkgs: list[str], tags: str = "") -> None:
        compiled[src.name] = sorted(p.name for p in src.iterdir())
        out.write_text("#!/bin/sh\n")
        out.chmod(0o755)

    monkeypatch.setattr(build, "_run_go", fake_go)
    monkeypatch.setattr(build, "_compile", fake_compile)
    monkeypatch.setattr(build, "find_go", lambda: "go")
    for name in ("kstatus", "luahealth"):
        tool = GO_TOOLS[name]
        assert tool.wrapper == "local" and tool.version == build.source_version(build.GOTOOLS_DIR / name)
        path = build.ensure_tool(name, jobs=1, root=tmp_path)
        assert path == tmp_path / f"{name}-{tool.version}" / name
        assert compiled[f"{name}-{tool.version}"] == ["go.mod", "go.sum", "main.go"]
        mod = (build.GOTOOLS_DIR / name / "go.mod").read_text()
        assert (tmp_path / "src" / f"{name}-{tool.version}" / "go.mod").read_text() == mod
    assert ran == [], "nothing resolved at build time: go.sum pins it"
    assert "sigs.k8s.io/cli-utils v0.37.2" in (build.GOTOOLS_DIR / "kstatus" / "go.mod").read_text()
    assert "github.com/yuin/gopher-lua v1.1.2" in (build.GOTOOLS_DIR / "luahealth" / "go.mod").read_text()
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in build.LOCAL_FILES:
        (copy / f).write_bytes((build.GOTOOLS_DIR / "kstatus" / f).read_bytes())
    assert build.source_version(copy) == GO_TOOLS["kstatus"].version
    (copy / "main.go").write_text((copy / "main.go").read_text() + "\n// edited\n")
    assert build.source_version(copy) != GO_TOOLS["kstatus"].version
