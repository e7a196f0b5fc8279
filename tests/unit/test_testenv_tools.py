"""d3os_testenv's tool recipes (helm): the wrapper go.mod and the version override, without building."""

from __future__ import annotations

from pathlib import Path

import pytest

from d3os_testenv.build import GO_TOOLS, HELM_VERSION, GoTool, tool_wrapper_gomod

HELM_GO_MOD = """module helm.sh/helm/v3

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
    assert f"require helm.sh/helm/v3 {HELM_VERSION}" in text
    assert "\tgithub.com/docker/distribution => github.com/docker/distribution v0.0.0-2019121604" in text
    assert "\tgithub.com/a/b => github.com/a/b v1.2.3\n" in text
    assert "../thing" not in text


def test_version_override_and_cache_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    helm = GO_TOOLS["helm"]
    assert helm.binary(tmp_path) == tmp_path / f"helm-{HELM_VERSION}" / "helm"
    monkeypatch.setenv("D3OS_TESTENV_HELM_VERSION", "v3.21.4")
    assert helm.resolved().version == "v3.21.4"
    assert helm.binary(tmp_path) == tmp_path / "helm-v3.21.4" / "helm"
    assert GoTool("x", "m", "m/cmd", "v1").resolved().version == "v1"


def test_helm_ldflags_stamp_the_versions() -> None:
    flags = GO_TOOLS["helm"].ldflags.format(version="v3.22.0", k8s_major=1, k8s_minor=37)
    assert "internal/version.version=v3.22.0" in flags
    assert "pkg/chartutil.k8sVersionMinor=37" in flags and "pkg/lint/rules.k8sVersionMinor=37" in flags
