"""The kubeconfig as kubectl reads it: one ``--kubeconfig`` file, else the colon-separated ``$KUBECONFIG``
list merged (the first file to set a cluster, user or context name wins it; ``current-context`` comes from
the first file that sets one; files in the list that do not exist are skipped), else ``~/.kube/config``.

lightkube reads one file and crashes on a malformed one (a ``ParserError``, ``AttributeError`` or
``KeyError`` with a traceback). Here every problem is one :class:`~.errors.CliError` (exit 3) naming the
file and what is wrong with it. :func:`merge` is pure (documents in, one document out); :func:`load` reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EXIT_CONFIG, CliError

if TYPE_CHECKING:
    from lightkube import KubeConfig

SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))
"""(list name, key of each entry's body) of the kubeconfig's named lists."""
PATH_FIELDS = {"cluster": ("certificate-authority",), "user": ("client-certificate", "client-key", "tokenFile")}
"""File references that are relative to the kubeconfig file that holds them (kubectl's ResolveLocalPaths)."""
DEFAULT = "~/.kube/config"


def _fail(source: str, problem: str) -> CliError:
    return CliError(EXIT_CONFIG, f"kubeconfig {source}: {problem}")


def _absolute(body: Mapping[str, Any], fields: Sequence[str], base: Path) -> dict[str, Any]:
    out = dict(body)
    for f in fields:
        value = out.get(f)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            out[f] = str(base / value)
    return out


def check(doc: Any, source: str, base: Path | None = None) -> dict[str, Any]:
    """One file's document, checked for shape (a mapping of named lists), its relative file references made
    absolute against ``base`` (the file's folder). An empty file is an empty kubeconfig, as for kubectl."""
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise _fail(source, f"not a kubeconfig: expected a mapping (apiVersion: v1, kind: Config, clusters, "
                              f"users, contexts), found a {type(doc).__name__}")
    out = dict(doc)
    for section, body_key in SECTIONS:
        entries = doc.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise _fail(source, f"{section}: expected a list of {{name, {body_key}}}, found a {type(entries).__name__}")
        checked = []
        for i, entry in enumerate(entries):
            where = f"{section}[{i}]"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"]:
                raise _fail(source, f"{where}: expected a mapping with a name and a {body_key}")
            body = entry.get(body_key)
            if body is None and body_key == "user":
                body = {}
            if not isinstance(body, Mapping):
                raise _fail(source, f"{where} ({entry['name']}): {body_key}: expected a mapping, found "
                               f"{type(body).__name__ if body is not None else 'nothing'}")
            if base is not None and body_key in PATH_FIELDS:
                body = _absolute(body, PATH_FIELDS[body_key], base)
            checked.append({**entry, body_key: dict(body)})
        out[section] = checked
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        raise _fail(source, f"current-context: expected a string, found a {type(current).__name__}")
    return out


def merge(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """kubectl's merge of a ``$KUBECONFIG`` list (each document already :func:`check`-ed): the first file to
    set a name in ``clusters``, ``users`` or ``contexts`` wins it; ``current-context`` is the first non-empty
    one."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    current = ""
    for doc in docs:
        for section, _ in SECTIONS:
            names = {e["name"] for e in merged[section]}
            merged[section] += [e for e in doc.get(section) or [] if e["name"] not in names]
        current = current or str(doc.get("current-context") or "")
    if current:
        merged["current-context"] = current
    return merged


def files(explicit: str | None, env: Mapping[str, str], variables: Sequence[str] = ("D3OS_KUBECONFIG", "KUBECONFIG"),
          ) -> tuple[list[Path], bool]:
    """The files to read and whether each must exist: ``--kubeconfig`` (one file, must exist), else the first
    of ``variables`` set, a list (missing files skipped, as kubectl does), else ``~/.kube/config``."""
    if explicit:
        return [Path(explicit).expanduser()], True
    for variable in variables:
        listed = [p for p in env.get(variable, "").split(os.pathsep) if p]
        if listed:
            return [Path(p).expanduser() for p in listed], False
    return [Path(DEFAULT).expanduser()], True


def read(path: Path) -> dict[str, Any]:
    """One kubeconfig file, checked (:func:`check`); unreadable, not text or not YAML: one line, exit 3."""
    import yaml

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(str(path), exc.strerror or str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(str(path), f"not text (byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8)") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise _fail(str(path), f"not valid YAML{where}: {problem}") from None
    return check(doc, str(path), path.parent.resolve())


def source_of(paths: Sequence[Path]) -> str:
    return os.pathsep.join(str(p) for p in paths)


def load(explicit: str | None, context: str | None, env: Mapping[str, str] | None = None,
         variables: Sequence[str] = ("D3OS_KUBECONFIG", "KUBECONFIG")) -> KubeConfig:
    """The merged kubeconfig (a lightkube ``KubeConfig``) with ``context`` (default: the current one) checked:
    it exists, and so do its cluster (with a server) and its user. Any problem: one line naming the file(s)."""
    from lightkube import KubeConfig

    paths, must_exist = files(explicit, os.environ if env is None else env, variables)
    found = [p for p in paths if p.is_file()] if not must_exist else paths
    if not found:
        raise CliError(EXIT_CONFIG, f"no usable kubeconfig: none of {source_of(paths)} exists (use --kubeconfig "
                                    "FILE, $D3OS_KUBECONFIG or $KUBECONFIG, or ~/.kube/config)")
    if must_exist and not found[0].is_file():
        raise CliError(EXIT_CONFIG, f"no usable kubeconfig: {found[0]} not found (use --kubeconfig FILE, "
                                    "$D3OS_KUBECONFIG or $KUBECONFIG, or ~/.kube/config)")
    merged = merge([read(p) for p in found])
    source = source_of(found)
    name = context or merged.get("current-context")
    contexts = {e["name"]: e["context"] for e in merged["contexts"]}
    if not name:
        raise _fail(source, "no current-context is set: pass --context NAME"
                    + (f" (contexts: {', '.join(contexts)})" if contexts else " (it has no contexts)"))
    if name not in contexts:
        raise _fail(source, f"context {name!r} not found; contexts: {', '.join(contexts) or 'none'}")
    ctx = contexts[name]
    clusters = {e["name"]: e["cluster"] for e in merged["clusters"]}
    users = {e["name"]: e["user"] for e in merged["users"]}
    if not isinstance(ctx.get("cluster"), str) or ctx["cluster"] not in clusters:
        raise _fail(source, f"context {name!r}: cluster {ctx.get('cluster')!r} not found; clusters: "
                            f"{', '.join(clusters) or 'none'}")
    if not isinstance(clusters[ctx["cluster"]].get("server"), str) or not clusters[ctx["cluster"]]["server"]:
        raise _fail(source, f"cluster {ctx['cluster']!r}: no server")
    if ctx.get("user") and ctx["user"] not in users:
        raise _fail(source, f"context {name!r}: user {ctx['user']!r} not found; users: {', '.join(users) or 'none'}")
    for what, body, key in (("cluster", clusters[ctx["cluster"]], ctx["cluster"]),
                            ("user", users.get(ctx.get("user") or "", {}), ctx.get("user"))):
        for field in PATH_FIELDS[what]:
            ref = body.get(field)
            if isinstance(ref, str) and ref and not Path(ref).expanduser().is_file():
                raise _fail(source, f"{what} {key!r}: {field} {ref}: no such file")
    try:
        config = KubeConfig.from_dict(merged, fname=found[0])
        config.current_context = name
        config.get(name)
    except Exception as exc:  # a field of the wrong type: msgspec names it
        raise _fail(source, f"context {name!r}: {exc}") from None
    return config


def for_operator(explicit: str | None, context: str | None, in_cluster: bool, service_account: str) -> KubeConfig:
    """``d3os-operator run``'s configuration: ``--kubeconfig``, else the pod's service account (``--in-cluster``,
    or when its files exist), else ``$KUBECONFIG`` (a list, merged) or ``~/.kube/config`` as above."""
    from lightkube import ConfigError, KubeConfig

    if not explicit:
        try:
            return KubeConfig.from_service_account(service_account)
        except (ConfigError, KeyError) as exc:  # KeyError: no KUBERNETES_SERVICE_HOST/PORT
            if in_cluster:
                raise CliError(EXIT_CONFIG, f"no usable in-cluster configuration in {service_account}: "
                               f"{exc}") from None
    return load(explicit, context, variables=("KUBECONFIG",))
