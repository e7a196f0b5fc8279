"""The page's operations, each the CLI's own: history and rollback are ``d3os history``'s and ``d3os
rollback``'s code (:mod:`..history`); suspend and resume set ``spec.suspend`` as ``kubectl patch`` would.

They run with the user's kubeconfig, so the API server decides what the user may do; a refusal comes back
with the API server's own message (:func:`..errors.describe`). Each opens its own synchronous client: the
server calls them in a worker thread.
"""

from __future__ import annotations

import argparse
import difflib
import io
from typing import Any

from d3os_core import api
from d3os_core.revisions import changes

from .. import connect, errors, history


class ActionError(Exception):
    """A refused or failed operation: an HTTP status for the page and the one-line message the CLI prints."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


HTTP_OF_EXIT = {errors.EXIT_FORBIDDEN: 403, errors.EXIT_NOT_FOUND: 404, errors.EXIT_INVALID: 400,
                errors.EXIT_UNREACHABLE: 502, errors.EXIT_CONFIG: 500, errors.EXIT_API: 409}


def _refusal(exc: BaseException) -> ActionError:
    found = errors.describe(exc)
    if found is None:
        raise exc
    code, message = found
    return ActionError(HTTP_OF_EXIT.get(code, 500), message)


def _args(name: str, namespace: str, kind: str, **more: Any) -> argparse.Namespace:
    """The arguments the CLI's own commands read, as its parser would give them (no ``--product`` file: the
    page serves installed products)."""
    return argparse.Namespace(name=name, namespace=namespace, kind=kind, product=None, output=None, **more)


def revisions(config: Any, kind: str, namespace: str, name: str) -> dict[str, Any]:
    """``d3os history``'s rows, and each revision's spec (for a diff between two)."""
    try:
        with connect.client(config) as client:
            out = io.StringIO()
            loaded = history._load(_args(name, namespace, kind), client, out)
    except Exception as exc:
        raise _refusal(exc) from exc
    if loaded is None:
        raise ActionError(404, out.getvalue().strip())
    _, _, instance, revs = loaded
    current = str((instance.get("status") or {}).get("currentRevision") or "")
    rows = []
    previous = None
    for r in revs:
        rows.append({"number": r.number, "name": r.name, "current": r.name == current, "readyAt": r.ready_at,
                     "generation": r.generation,
                     "change": "; ".join(changes(previous.spec, r.spec)) if previous is not None
                     else "initial" if r.number == 1 else "(first revision kept)"})
        previous = r
    return {"revisions": rows, "specs": {str(r.number): dict(r.spec) for r in revs},
            "text": history.format_history(revs, current, name, namespace, kind)}


def spec_diff(a: dict[str, Any], b: dict[str, Any], label_a: str, label_b: str) -> str:
    """A unified diff of two specs as YAML."""
    from d3os_core.yamlout import dump

    return "".join(difflib.unified_diff(dump(a, sort_keys=True).splitlines(keepends=True),
                                        dump(b, sort_keys=True).splitlines(keepends=True), label_a, label_b))


def rollback(config: Any, kind: str, namespace: str, name: str, revision: int) -> str:
    """``d3os rollback NAME --to-revision N``: what it prints, or :class:`ActionError`."""
    out = io.StringIO()
    try:
        with connect.client(config) as client:
            code = history._rollback(_args(name, namespace, kind, to_revision=revision, wait=False, timeout=0),
                                     config, client, out)
    except Exception as exc:
        raise _refusal(exc) from exc
    text = out.getvalue().strip()
    if code != 0:
        raise ActionError(404 if code == 1 else 400, text.removeprefix("error: "))
    return text


def suspend(config: Any, kind: str, namespace: str, name: str, value: bool) -> str:
    """Set ``spec.suspend`` (a merge patch, field manager ``kubectl-d3os``: no other field is touched)."""
    from lightkube.types import PatchType

    from ...kube import product_kind

    try:
        with connect.client(config) as client:
            found = connect.find(client, name, namespace, kind)
            if found.product is None:
                raise ActionError(404, found.not_found(namespace, name).strip())
            client.patch(product_kind(found.product.names).res, name, {"spec": {"suspend": value}},
                         namespace=namespace, patch_type=PatchType.MERGE, field_manager=connect.FIELD_MANAGER)
    except ActionError:
        raise
    except Exception as exc:
        raise _refusal(exc) from exc
    return f"{kind.lower()}.{api.GROUP}/{name} {'suspended' if value else 'resumed'} (namespace {namespace})"
