"""``-o json|yaml|wide|name``: the output formats the reading commands share, as kubectl spells them.

json and yaml print the objects (a list as kubectl's ``List``), name prints ``kind.group/name`` per line,
wide the command's table with its extra columns; without ``-o``, the command's own table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from d3os_core import api
from d3os_core.yamlout import dump

FORMATS = ("json", "yaml", "wide", "name")


def add_option(sp: argparse.ArgumentParser, wide: str) -> None:
    """``-o/--output`` on a subcommand; ``wide`` says what the wide table adds."""
    sp.add_argument("-o", "--output", choices=FORMATS, default=None,
                    help=f"json or yaml: the objects; name: kind.group/name per line; wide: {wide} "
                         "(default: the table)")


def as_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several objects as kubectl prints them with ``-o json|yaml``."""
    return {"apiVersion": "v1", "kind": "List", "items": [dict(i) for i in items], "metadata": {}}


def document(doc: Any, fmt: str) -> str:
    """``doc`` as JSON (indented, as kubectl) or YAML."""
    if fmt == "json":
        return json.dumps(doc, indent=4, ensure_ascii=False) + "\n"
    return dump(doc)


def resource_name(obj: Mapping[str, Any]) -> str:
    """``dataservice.d3os-product.com.d3os/NAME`` (kubectl's ``-o name``), for the products' kinds and others."""
    kind = str(obj.get("kind") or "")
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    if not group and kind != "List" and obj.get("apiVersion") == api.API_VERSION:
        group = api.GROUP
    return f"{kind.lower()}{'.' + group if group else ''}/{(obj.get('metadata') or {}).get('name', '')}"


def shown(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object as ``kubectl get -o json|yaml`` shows it: without ``metadata.managedFields``."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def write_objects(items: Sequence[Mapping[str, Any]], fmt: str, out: TextIO, single: bool = False) -> None:
    """json/yaml/name output of ``items`` (``single``: one object, printed as itself rather than a List)."""
    if fmt == "name":
        out.write("".join(resource_name(i) + "\n" for i in items))
    else:
        out.write(document(shown(items[0]) if single and items else as_list([shown(i) for i in items]), fmt))
