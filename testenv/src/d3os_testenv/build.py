"""Build (or find in the cache) the pinned control-plane binaries and tools from the Go module proxy.

Every binary is built with the machine's Go toolchain by one function, :func:`build`, from a recipe
(:class:`Recipe`: a Go module, its main packages, a version, link flags, how its wrapper module is made).
The recipes are data: :data:`CONTROL_PLANE` (kube-apiserver, kube-controller-manager, kube-scheduler and
kubectl from ``k8s.io/kubernetes``; etcd; kwok, the simulated kubelet) and :data:`GO_TOOLS` (``helm``, ``krew`` ...,
built by ``d3os-testenv build`` or on first use through :func:`ensure_tool`, never by ``up``).

Each recipe is built in its own wrapper module, so that version selection of one never moves the
dependencies of another. Wrappers come in three kinds (:data:`WRAPPERS`): ``kubernetes`` replaces every
staging module (``k8s.io/api`` ...) with its published ``v0.x`` version (a dependency's own ``replace``
lines are ignored by Go, so the wrapper must add them), ``replaces`` repeats the module's own non-local
``replace`` lines (helm), ``bare`` is an empty module that ``go get`` fills (etcd and kwok, whose go.mod
has replace lines, so ``go install ...@version`` is refused), ``local`` is a module of this package
(``gotools/<name>/``: main.go, go.mod, go.sum), versioned by a hash of its files. Binaries are cached
outside the repository, keyed by name and version: ``${XDG_CACHE_HOME:-~/.cache}/d3os-testenv/<recipe>-<version>/``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"

HELM_VERSION = "v4.3.2"
PROMETHEUS_VERSION = "v0.316.0"
KREW_VERSION = "v0.4.3"
"""The Go module version of Prometheus 3.16.0 (its modules are numbered v0.3MINOR.PATCH)."""
GOTOOLS_DIR = Path(__file__).resolve().parent / "gotools"
"""The tests' own small Go programs, one module each (built from the Go module proxy's dependencies)."""

ProgressFn = Callable[[str], None]


class BuildError(RuntimeError):
    """A build step failed; the message names what is missing or what failed."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "d3os-testenv"


def _staging_version(k8s_version: str) -> str:
    m = re.fullmatch(r"v1\.(\d+)\.(\d+)", k8s_version)
    if not m:
        raise BuildError(f"unsupported Kubernetes version {k8s_version!r} (want v1.MINOR.PATCH)")
    return f"v0.{m.group(1)}.{m.group(2)}"


def _is_exe(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def _say(progress: ProgressFn | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


def _fmt_secs(s: float) -> str:
    m, sec = divmod(int(s), 60)
    return f"{m}m{sec:02d}s" if m else f"{sec}s"


def find_go() -> str:
    explicit = os.environ.get("D3OS_TESTENV_GO")
    if explicit:
        if not _is_exe(Path(explicit)):
            raise BuildError(f"D3OS_TESTENV_GO={explicit} is not an executable Go toolchain")
        return explicit
    go = shutil.which("go")
    if not go:
        for cand in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
            if _is_exe(Path(cand)):
                go = cand
                break
    if not go:
        raise BuildError(
            "Go toolchain not found: install Go >= 1.26 (https://go.dev/dl or `apt-get install golang`) "
            "and put `go` on PATH, or set D3OS_TESTENV_GO=/path/to/go"
        )
    return go


def _go_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-buildvcs=false")
    env["CGO_ENABLED"] = "0"
    # Keep resolution honest: never let a workspace file from a parent directory interfere.
    env["GOWORK"] = "off"
    # The k8s go.mod states `go 1.26.0`; do not try to download another toolchain.
    env.setdefault("GOTOOLCHAIN", "local")
    if extra:
        env.update(extra)
    return env


def _run_go(
    go: str,
    args: Sequence[str],
    cwd: Path,
    log: Path,
    what: str,
    progress: ProgressFn | None,
    env: dict[str, str] | None = None,
    heartbeat: float = 30.0,
    unit: str = "output lines",
    total: int = 0,
) -> str:
    """Run ``go <args>``; stream into ``log``; print a heartbeat; raise BuildError naming ``what``."""
    cmd = [go, *args]
    start = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    with log.open("a") as lf:
        lf.write(f"\n$ (cd {cwd} && {' '.join(cmd)})\n")
        lf.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env or _go_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        done = threading.Event()
        count = [0]

        def beat() -> None:
            while not done.wait(heartbeat):
                of = f"/{total}" if total else ""
                _say(
                    progress,
                    f"  ... {what}: {_fmt_secs(time.monotonic() - start)} elapsed, {count[0]}{of} {unit} (log: {log})",
                )

        t = threading.Thread(target=beat, daemon=True)
        t.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            lf.write(line)
            lines.append(line)
            count[0] += 1
        rc = proc.wait()
        done.set()
        t.join()
    out = "".join(lines)
    if rc != 0:
        tail = "\n".join(out.splitlines()[-25:])
        raise BuildError(
            f"{what} failed (exit {rc}): `{' '.join(cmd)}` in {cwd}\n{tail}\n(full log: {log}){_diagnose(out)}"
        )
    return out


def _diagnose(out: str) -> str:
    hints = []
    refused = r"(403 Forbidden|410 Gone|404 Not Found|not available|not found: |unknown revision|invalid version)"
    if re.search(refused, out):
        hints.append("a module or version is not served by the module proxy (GOPROXY) -- see the line above")
    if re.search(r"(dial tcp|no such host|i/o timeout|connection refused|TLS handshake)", out):
        hints.append("the module proxy could not be reached (check network / GOPROXY)")
    if "requires go >=" in out or "toolchain" in out:
        hints.append("the Go toolchain is too old for this module; install a newer Go")
    return "".join(f"\nhint: {h}" for h in hints)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _go_version_line(go: str) -> str:
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout
    m = re.match(r"go(\d+\.\d+)", out.strip())
    return m.group(1) if m else "?"


# --------------------------------------------------------------------------- recipes (data)


@dataclass(frozen=True)
class Recipe:
    """One cache entry ``<name>-<version>/``: the ``binaries`` (name, main package) of Go module ``module``.

    ``ldflags`` may use ``{version}``, ``{major}``/``{minor}`` (of ``version``), ``{build_date}`` and
    ``{k8s_major}``/``{k8s_minor}`` (the Kubernetes version of the k8s.io/client-go the module requires, as
    Kubernetes tools stamp it: v0.37.x -> 1, 37). ``version_env`` names the variable that overrides the
    version; ``wrapper`` is a key of :data:`WRAPPERS`; ``note`` is said before compiling (how long).
    A ``local`` recipe's ``module`` is its directory under :data:`GOTOOLS_DIR` and its main package ``.``.
    ``tags``: Go build tags (promtool's ``remove_all_sd`` leaves out the service discoveries it never needs).
    """

    name: str
    module: str
    binaries: tuple[tuple[str, str], ...]
    version: str
    ldflags: str = "-s -w"
    version_env: str = ""
    wrapper: str = "replaces"
    note: str = ""
    tags: str = ""

    @property
    def package(self) -> str:
        """The main package of the first binary (a tool has one)."""
        return self.binaries[0][1]

    def resolved(self, version: str | None = None) -> Recipe:
        """The recipe pinned at ``version``, else at the version ``$<version_env>`` asks for, else as it is."""
        wanted = version or (os.environ.get(self.version_env) if self.version_env else None)
        return dataclasses.replace(self, version=wanted, version_env="") if wanted else self

    def directory(self, root: Path) -> Path:
        return root / f"{self.name}-{self.resolved().version}"

    def binary(self, root: Path, name: str | None = None) -> Path:
        return self.directory(root) / (name or self.binaries[0][0])

    def link_flags(self, module_go_mod: str | None) -> str:
        m = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", self.version)
        major, minor = (m.group(1), m.group(2)) if m else ("1", "0")
        client_go = re.search(r"k8s\.io/client-go v0\.(\d+)\.", module_go_mod or "")
        return self.ldflags.format(
            version=self.version,
            major=major,
            minor=minor,
            build_date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            k8s_major=1,
            k8s_minor=client_go.group(1) if client_go else "0",
        )


K8S_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

_K8S_VERSION_FLAGS = " ".join(
    f"-X {pkg}.{key}={value}"
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    for key, value in (
        ("gitVersion", "{version}"),
        ("gitMajor", "{major}"),
        ("gitMinor", "{minor}"),
        ("gitTreeState", "clean"),
        ("buildDate", "{build_date}"),
    )
)

CONTROL_PLANE: dict[str, Recipe] = {
    "kubernetes": Recipe(
        name="kubernetes",
        module="k8s.io/kubernetes",
        binaries=tuple((b, f"k8s.io/kubernetes/cmd/{b}") for b in K8S_BINARIES),
        version=KUBERNETES_VERSION,
        ldflags=f"-s -w {_K8S_VERSION_FLAGS}",
        version_env="D3OS_TESTENV_KUBERNETES_VERSION",
        wrapper="kubernetes",
        note="cold: 10-30 min on 2 cores",
    ),
    "etcd": Recipe(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        binaries=(("etcd", "go.etcd.io/etcd/server/v3"),),
        version=ETCD_VERSION,
        ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-{version}",
        version_env="D3OS_TESTENV_ETCD_VERSION",
        wrapper="bare",
    ),
    "kwok": Recipe(
        name="kwok",
        module="sigs.k8s.io/kwok",
        binaries=(("kwok", "sigs.k8s.io/kwok/cmd/kwok"),),
        version=KWOK_VERSION,
        version_env="D3OS_TESTENV_KWOK_VERSION",
        wrapper="bare",
    ),
}
"""The control plane's binaries, by the :class:`Versions` field that pins each."""

ALL_BINARIES = tuple(b for r in CONTROL_PLANE.values() for b, _ in r.binaries)

def source_version(directory: Path) -> str:
    """The version of a ``local`` module: a hash of its files, so that an edit rebuilds it."""
    digest = hashlib.sha256()
    for f in sorted(p for p in directory.iterdir() if p.is_file() and p.name in LOCAL_FILES):
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return "src-" + digest.hexdigest()[:12]


LOCAL_FILES = ("main.go", "go.mod", "go.sum")


def _local(name: str, note: str) -> Recipe:
    return Recipe(name=name, module=name, binaries=((name, "."),), version=source_version(GOTOOLS_DIR / name),
                  wrapper="local", note=note)


GO_TOOLS: dict[str, Recipe] = {
    "helm": Recipe(
        name="helm",
        module="helm.sh/helm/v4",
        binaries=(("helm", "helm.sh/helm/v4/cmd/helm"),),
        version=HELM_VERSION,
        # as helm's Makefile; Helm 4 takes the Kubernetes version `helm template` and `helm lint` assume
        # without a cluster from the k8s.io/client-go it is built with, so there is nothing else to stamp
        ldflags="-s -w -X helm.sh/helm/v4/internal/version.version={version} "
        "-X helm.sh/helm/v4/internal/version.gitTreeState=clean",
        version_env="D3OS_TESTENV_HELM_VERSION",
    ),
    "promtool": Recipe(
        name="promtool",
        module="github.com/prometheus/prometheus",
        binaries=(("promtool", "github.com/prometheus/prometheus/cmd/promtool"),),
        version=PROMETHEUS_VERSION,
        ldflags="-s -w -X github.com/prometheus/common/version.Version={version}",
        version_env="D3OS_TESTENV_PROMETHEUS_VERSION",
        tags="remove_all_sd",
        note="the largest tool after Helm: `promtool check rules` for the chart's alerts",
    ),
    "krew": Recipe(
        name="krew",
        module="sigs.k8s.io/krew",
        # krew installs the kubectl plugin from its manifest and archive as a user does; its manifest
        # validator (the one the krew-index CI runs) checks the manifest first
        binaries=(
            ("krew", "sigs.k8s.io/krew/cmd/krew"),
            ("validate-krew-manifest", "sigs.k8s.io/krew/cmd/validate-krew-manifest"),
        ),
        version=KREW_VERSION,
        # as krew's hack/make-binaries.sh
        ldflags="-s -w -X sigs.k8s.io/krew/internal/version.gitTag={version}",
        version_env="D3OS_TESTENV_KREW_VERSION",
        note="about a minute cold: cobra and k8s.io/apimachinery",
    ),
    "kstatus": _local("kstatus", "about 1 min cold: sigs.k8s.io/cli-utils' kstatus and k8s.io/apimachinery"),
    "luahealth": _local("luahealth", "seconds: gopher-lua"),
}
"""Tools beside the control plane: Helm (the chart's tests and the bench install with it); promtool (checks
the chart's alert rules); krew and ``validate-krew-manifest`` (install the ``kubectl d3os`` plugin from
its krew manifest and archive, tests/integration/test_krew.py); ``kstatus``
(kstatus' verdict on objects, from sigs.k8s.io/cli-utils) and ``luahealth`` (an Argo CD health script run
in gopher-lua, as Argo CD runs it), which the tests use to check the status with the tools' own code."""


@dataclass(frozen=True)
class Versions:
    """The control plane's versions (what a run records in its state.json)."""

    kubernetes: str = KUBERNETES_VERSION
    etcd: str = ETCD_VERSION
    kwok: str = KWOK_VERSION

    @classmethod
    def from_env(cls) -> Versions:
        """The pinned versions, each overridable by its recipe's ``version_env``."""
        return cls(**{name: recipe.resolved().version for name, recipe in CONTROL_PLANE.items()})

    def recipe(self, name: str) -> Recipe:
        """The control-plane recipe ``name`` at this version."""
        return CONTROL_PLANE[name].resolved(getattr(self, name))


@dataclass
class Toolchain:
    """Where the binaries of one set of versions live."""

    versions: Versions = field(default_factory=Versions)
    root: Path = field(default_factory=cache_root)

    def component_dir(self, component: str) -> Path:
        return self.versions.recipe(component).directory(self.root)

    @property
    def bin_dir(self) -> Path:
        """One directory with all binaries (symlinks), suitable for PATH."""
        v = self.versions
        return self.root / f"bin-{v.kubernetes}-etcd{v.etcd}-kwok{v.kwok}"

    def binary(self, name: str) -> Path:
        """The executable to run for ``name`` (honours D3OS_TESTENV_ETCD for etcd)."""
        if name == "etcd" and os.environ.get("D3OS_TESTENV_ETCD"):
            return Path(os.environ["D3OS_TESTENV_ETCD"])
        return self.bin_dir / name

    def _real_binary(self, name: str) -> Path:
        recipe = next(r for r in CONTROL_PLANE if name in dict(CONTROL_PLANE[r].binaries))
        return self.component_dir(recipe) / name

    @property
    def kwok_stages(self) -> Path:
        """kwok's default stages (node-initialize, node heartbeat with lease, pod fast) from its module."""
        return self.component_dir("kwok") / "stages.yaml"

    def missing(self) -> list[str]:
        out = [n for n in ALL_BINARIES if not _is_exe(self._real_binary(n))]
        if "etcd" in out and _is_exe(self.binary("etcd")):  # D3OS_TESTENV_ETCD given
            out.remove("etcd")
        if "kwok" not in out and not self.kwok_stages.is_file():
            out.append("kwok")
        return out

    def is_built(self) -> bool:
        return not self.missing() and all(_is_exe(self.binary(n)) for n in ALL_BINARIES)

    def link_bin_dir(self) -> None:
        """Symlink the built binaries into bin_dir (never an override: bin_dir is shared by clusters).
        Tools of :data:`GO_TOOLS` that are built are linked too, so `d3os-testenv env` puts them on PATH."""
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        tools = {t.binaries[0][0]: t.binary(self.root) for t in GO_TOOLS.values()}
        for name in (*ALL_BINARIES, *tools):
            target = tools[name] if name in tools else self._real_binary(name)
            if not _is_exe(target):
                continue
            link = self.bin_dir / name
            if link.is_symlink() or link.exists():
                if link.resolve() == target.resolve():
                    continue
                link.unlink()
            link.symlink_to(target)


# --------------------------------------------------------------------------- wrapper modules


def kubernetes_wrapper_gomod(k8s_go_mod: str, k8s_version: str) -> str:
    """Derive the wrapper go.mod from k8s.io/kubernetes's own go.mod text."""
    staging = sorted(set(re.findall(r"^\s*(k8s\.io/[\w.\-/]+)\s*=>\s*\./staging/", k8s_go_mod, re.M)))
    if not staging:
        raise BuildError("could not find the staging replace lines in k8s.io/kubernetes's go.mod")
    go_line = re.search(r"^go\s+(\S+)\s*$", k8s_go_mod, re.M)
    godebug = re.findall(r"^godebug\s+.*$", k8s_go_mod, re.M)
    godebug_block = re.search(r"^godebug\s*\((.*?)^\)", k8s_go_mod, re.M | re.S)
    sv = _staging_version(k8s_version)
    parts = [
        "// Generated by d3os_testenv.build -- wrapper module to build Kubernetes binaries.",
        "module d3os.local/testenv/kubernetes",
        "",
        f"go {go_line.group(1) if go_line else '1.26.0'}",
        "",
    ]
    parts += godebug
    if godebug_block:
        parts.append(f"godebug ({godebug_block.group(1)})")
    parts += ["", f"require k8s.io/kubernetes {k8s_version}", "", "replace ("]
    parts += [f"\t{m} => {m} {sv}" for m in staging]
    parts += [")", ""]
    return "\n".join(parts)


def tool_wrapper_gomod(tool: Recipe, tool_go_mod: str) -> str:
    """The wrapper go.mod for ``tool``: require it, and repeat its own non-local ``replace`` lines."""
    go_line = re.search(r"^go\s+(\S+)\s*$", tool_go_mod, re.M)
    replaces = re.findall(r"^replace\s+(\S+(?:\s+\S+)?\s*=>\s*\S+\s+\S+)\s*$", tool_go_mod, re.M)
    block = re.search(r"^replace\s*\((.*?)^\)", tool_go_mod, re.M | re.S)
    if block:
        replaces += [line.split("//")[0].strip() for line in block.group(1).splitlines()]
    replaces = [r for r in replaces if r and "=>" in r and not r.split("=>")[1].strip().startswith((".", "/"))]
    parts = [
        f"// Generated by d3os_testenv.build -- wrapper module to build {tool.name}.",
        f"module d3os.local/testenv/{tool.name}",
        "",
        f"go {go_line.group(1) if go_line else '1.24'}",
        "",
        f"require {tool.module} {tool.version}",
        "",
    ]
    if replaces:
        parts += ["replace (", *[f"\t{r}" for r in replaces], ")", ""]
    return "\n".join(parts)


def bare_wrapper_gomod(recipe: Recipe, _module_go_mod: str | None) -> str:
    """An empty module that ``go get`` fills: for modules whose own ``replace`` lines point inside their
    repository (etcd, kwok): ``go install pkg@version`` refuses those, a dependency's are ignored."""
    return (
        f"// Generated by d3os_testenv.build -- wrapper module to build {recipe.name}.\n"
        f"module d3os.local/testenv/{recipe.name}\n\ngo 1.24\n"
    )


WRAPPERS: dict[str, Callable[[Recipe, str | None], str]] = {
    "kubernetes": lambda r, go_mod: kubernetes_wrapper_gomod(go_mod or "", r.version),
    "replaces": lambda r, go_mod: tool_wrapper_gomod(r, go_mod or ""),
    "bare": bare_wrapper_gomod,
    "local": lambda r, _go_mod: (GOTOOLS_DIR / r.module / "go.mod").read_text(),
}
"""How a recipe's wrapper go.mod is made from the module's own go.mod (``bare`` does not fetch it)."""


# --------------------------------------------------------------------------- the one build function


def _module_go_mod(recipe: Recipe, go: str, src: Path, log: Path, progress: ProgressFn | None) -> str:
    v = recipe.version
    _say(progress, f"{recipe.name} {v}: fetching {recipe.module}@{v} go.mod from the module proxy")
    raw = _run_go(go, ["mod", "download", "-json", f"{recipe.module}@{v}"], src, log,
                  f"`go mod download {recipe.module}@{v}`", progress)
    info = json.loads(raw[raw.index("{") :])
    if info.get("Error"):
        raise BuildError(f"module proxy refused {recipe.module}@{v}: {info['Error']}")
    return Path(info["GoMod"]).read_text()


def build(recipe: Recipe, root: Path, go: str, progress: ProgressFn | None, jobs: int) -> Path:
    """Build ``recipe`` into ``root/<name>-<version>/`` unless all its binaries are there; return that dir."""
    v = recipe.version
    out_dir = recipe.directory(root)
    names = [b for b, _ in recipe.binaries]
    if all(_is_exe(out_dir / b) for b in names):
        _say(progress, f"{recipe.name} {v}: cached in {out_dir}")
        return out_dir
    src = root / "src" / f"{recipe.name}-{v}"
    log = root / "logs" / f"{recipe.name}-{v}.log"
    src.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    go_mod = None if recipe.wrapper in ("bare", "local") else _module_go_mod(recipe, go, src, log, progress)
    _write(src / "go.mod", WRAPPERS[recipe.wrapper](recipe, go_mod))
    pkgs = [p for _, p in recipe.binaries]
    if recipe.wrapper == "local":  # its go.sum pins every dependency: `go build` downloads what it lacks
        for f in LOCAL_FILES:
            _write(src / f, (GOTOOLS_DIR / recipe.module / f).read_text())
    else:
        _say(progress, f"{recipe.name} {v}: resolving dependencies (go get; downloads modules on a cold cache)")
        _run_go(go, ["get", *[f"{p}@{v}" for p in pkgs]], src, log, f"resolving {recipe.name} {v}", progress)
    _say(progress, f"{recipe.name} {v}: compiling {', '.join(names)}{f' ({recipe.note})' if recipe.note else ''}")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    out = tmp / names[0] if len(names) == 1 else Path(str(tmp) + "/")  # `-o dir/`: one binary per package
    _compile(go, src, log, f"compiling {recipe.name} {v}", progress, jobs, recipe.link_flags(go_mod), out, pkgs,
             recipe.tags)
    _finish(tmp, out_dir)
    _say(progress, f"{recipe.name} {v}: built in {_fmt_secs(time.monotonic() - t0)} -> {out_dir}")
    return out_dir


# The stages `kwokctl` configures by default (pkg/kwokctl/runtime/cluster.go: getDefaultNodeStages with
# lease, getDefaultPodStages). The `kwok` binary refuses to start without stages ("no stages found").
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


def write_kwok_stages(tc: Toolchain, go: str, progress: ProgressFn | None) -> None:
    v = tc.versions.kwok
    src = tc.root / "src" / f"kwok-{v}"
    log = tc.root / "logs" / f"kwok-{v}.log"
    src.mkdir(parents=True, exist_ok=True)
    raw = _run_go(
        go,
        ["mod", "download", "-json", f"sigs.k8s.io/kwok@{v}"],
        src,
        log,
        f"`go mod download sigs.k8s.io/kwok@{v}`",
        progress,
    )
    info = json.loads(raw[raw.index("{") :])
    if info.get("Error"):
        raise BuildError(f"module proxy refused sigs.k8s.io/kwok@{v}: {info['Error']}")
    mod_dir = Path(info["Dir"])
    docs = []
    for rel in KWOK_STAGE_FILES:
        f = mod_dir / rel
        if not f.is_file():
            raise BuildError(f"kwok {v}: stage file {rel} not found in {mod_dir}")
        docs.append(f"# from sigs.k8s.io/kwok@{v}/{rel}\n" + f.read_text().strip() + "\n")
    tc.kwok_stages.parent.mkdir(parents=True, exist_ok=True)
    tmp = tc.kwok_stages.with_suffix(".tmp")
    tmp.write_text("---\n".join(docs))
    tmp.rename(tc.kwok_stages)


def _compile(
    go: str,
    src: Path,
    log: Path,
    what: str,
    progress: ProgressFn | None,
    jobs: int,
    ldflags: str,
    out: Path,
    pkgs: Sequence[str],
    tags: str = "",
) -> None:
    """``go build`` with a progress line: packages compiled so far of the packages needed."""
    total = 0
    tag_args = [f"-tags={tags}"] if tags else []
    try:
        listed = subprocess.run(
            [go, "list", "-deps", *tag_args, *pkgs],
            cwd=src,
            env=_go_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        total = len(listed.stdout.split()) if listed.returncode == 0 else 0
    except subprocess.TimeoutExpired:
        pass
    _say(progress, f"{what}: {total or '?'} packages to compile or take from the Go build cache")
    _run_go(
        go,
        ["build", "-v", f"-p={jobs}", "-trimpath", *tag_args, "-ldflags", ldflags, "-o", str(out), *pkgs],
        src,
        log,
        what,
        progress,
        unit="packages compiled",
        total=total,
    )


def _system_etcd() -> Path | None:
    """An etcd installed by the OS (e.g. Debian's etcd-server), never one of our own cache."""
    found = shutil.which("etcd")
    if found and cache_root() not in Path(found).resolve().parents:
        return Path(found)
    return None


def _finish(tmp: Path, out_dir: Path) -> None:
    """Atomically publish a freshly built component directory."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


# --------------------------------------------------------------------------- tools and the control plane


def _jobs(jobs: int | None) -> int:
    if jobs is not None:
        return jobs
    return int(os.environ.get("D3OS_TESTENV_BUILD_JOBS", "0")) or min(2, os.cpu_count() or 1)


def ensure_tool(
    name: str, progress: ProgressFn | None = None, jobs: int | None = None, root: Path | None = None
) -> Path:
    """The binary of tool ``name`` (see :data:`GO_TOOLS`), built first if missing, and linked into the
    control plane's bin dir (so ``d3os-testenv env`` puts it on PATH)."""
    if name not in GO_TOOLS:
        raise BuildError(f"unknown tool {name!r}: one of {', '.join(GO_TOOLS)}")
    root = root or cache_root()
    tool = GO_TOOLS[name].resolved()
    binary = tool.binary(root)
    if not _is_exe(binary):
        build(tool, root, find_go(), progress, _jobs(jobs))
    Toolchain(Versions.from_env(), root).link_bin_dir()
    return binary


BUILD_ORDER = ("kwok", "etcd", "kubernetes")
"""Small ones first: a failure in the proxy shows up quickly."""


def ensure_built(
    versions: Versions | None = None,
    progress: ProgressFn | None = None,
    jobs: int | None = None,
    root: Path | None = None,
) -> Toolchain:
    """Build whatever is missing; return the toolchain (idempotent, fast when cached)."""
    tc = Toolchain(versions or Versions.from_env(), root or cache_root())
    if tc.is_built():
        return tc
    missing = tc.missing()
    if missing:
        go = find_go()
        gov = _go_version_line(go)
        _say(progress, f"building {', '.join(missing)} with {go} (go {gov}); cache: {tc.root}")
        t0 = time.monotonic()
        for name in BUILD_ORDER:
            recipe = tc.versions.recipe(name)
            if not any(b in missing for b, _ in recipe.binaries):  # kwok is missing too without its stages
                continue
            try:
                build(recipe, tc.root, go, progress, _jobs(jobs))
            except BuildError as e:
                system = _system_etcd() if name == "etcd" else None
                if system is None:
                    raise
                # Debian's etcd-server (3.4) as the documented fallback: it runs, but lacks 3.5+
                # features such as reliable watch progress notifications.
                _say(progress, f"WARNING: {e}\nWARNING: falling back to the system etcd {system}")
                os.environ["D3OS_TESTENV_ETCD"] = str(system)
            if name == "kwok" and not tc.kwok_stages.is_file():
                write_kwok_stages(tc, go, progress)
        _say(progress, f"all binaries ready in {_fmt_secs(time.monotonic() - t0)}")
    tc.link_bin_dir()
    still = tc.missing()
    if still:
        raise BuildError(f"binaries still missing after build: {', '.join(still)}")
    return tc


def stderr_progress(msg: str) -> None:
    print(f"[d3os-testenv {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
