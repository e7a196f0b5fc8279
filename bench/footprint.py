"""What the operator's informers store per object, measured on the live objects of a scale run.

The operator strips each object before caching it (``d3os_operator.cachefilter.strip``: managedFields,
the last-applied annotation). This lists the objects of every owned kind in the run's namespaces (the
informers' label selector), passes each through that same function, and reports per kind the JSON size
before and after and the Python heap size of what is stored (dicts, lists and strings, shared ones
counted once), and which top-level fields of the stored form weigh most -- so "what is stored per
object" is a figure, and the candidates for more stripping are named with their weight.
"""

from __future__ import annotations

import collections
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from lightkube import Client
from lightkube.core.resource_registry import resource_registry

from d3os_core import api

MANAGED = {api.LABEL_MANAGED_BY: api.MANAGED_BY}


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes of ``obj`` and everything it holds (dict, list, tuple, str, numbers), each object once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        size += sum(deep_size(v, seen) for v in obj)
    return size


def interned(obj: Any, table: dict[str, str]) -> Any:
    """``obj`` with every dict key and every string value of up to 64 characters shared through ``table``
    (what ``sys.intern`` would give): the same labels, keys and values repeat in every object."""
    if isinstance(obj, dict):
        return {table.setdefault(k, k): interned(v, table) for k, v in obj.items()}
    if isinstance(obj, list):
        return [interned(v, table) for v in obj]
    if isinstance(obj, str) and len(obj) <= 64:
        return table.setdefault(obj, obj)
    return obj


def _strip_function() -> Any:
    """The operator's own cache transform (None when this version of the operator has none)."""
    try:
        from d3os_operator.cachefilter import strip
    except ImportError:
        return None
    return strip


def _field_weights(obj: dict[str, Any]) -> dict[str, int]:
    """JSON bytes of the second-level fields (``metadata.annotations``, ``spec.template``, ...)."""
    out: dict[str, int] = {}
    for top, value in obj.items():
        if isinstance(value, dict):
            for k, v in value.items():
                out[f"{top}.{k}"] = len(json.dumps(v, separators=(",", ":")))
        else:
            out[top] = len(json.dumps(value, separators=(",", ":")))
    return out


def measure(client: Client, namespaces: Sequence[str]) -> dict[str, Any]:
    """Per owned kind: objects, mean JSON bytes raw / stored, mean heap bytes stored, heaviest fields."""
    strip = _strip_function()
    wanted = set(namespaces)
    kinds: dict[str, Any] = {}
    total_heap = total_objects = 0
    table: dict[str, str] = {}
    shared_seen: set[int] = set()
    shared_heap = 0
    alive: list[Any] = []  # ids in shared_seen must not be reused while it is in use
    for api_version, kind in api.OWNED_KINDS:
        res = resource_registry.load(api_version, kind)
        objs = [o for o in _list(client, res) if o["metadata"]["namespace"] in wanted]
        if not objs:
            continue
        raw = [len(json.dumps(o, separators=(",", ":"))) for o in objs]
        stored = [strip(json.loads(json.dumps(o))) if strip else o for o in objs]
        kept = [len(json.dumps(o, separators=(",", ":"))) for o in stored]
        heap = [deep_size(json.loads(json.dumps(o))) for o in stored]  # as parsed from the wire, per object
        # the same objects with strings shared across all of them (counted once over every kind)
        shared = [interned(json.loads(json.dumps(o)), table) for o in stored]
        shared_heap += sum(deep_size(o, shared_seen) for o in shared)
        alive.append(shared)
        weights: collections.Counter[str] = collections.Counter()
        for o in stored:
            weights.update(_field_weights(o))
        n = len(objs)
        kinds[kind] = {
            "objects": n, "json_bytes_raw": round(sum(raw) / n), "json_bytes_stored": round(sum(kept) / n),
            "heap_bytes_stored": round(sum(heap) / n),
            "heaviest_fields_json_bytes": {k: round(v / n) for k, v in weights.most_common(6)},
        }
        total_heap += sum(heap)
        total_objects += n
    return {"kinds": kinds, "objects": total_objects, "heap_bytes_stored": total_heap,
            "per_dataservice_objects": round(total_objects / max(1, len(namespaces)), 1),
            "per_dataservice_heap_bytes": round(total_heap / max(1, len(namespaces))),
            "heap_bytes_stored_if_strings_shared": shared_heap,
            "transform": "d3os_operator.cachefilter.strip" if strip else None}


def _list(client: Client, res: Any) -> Iterable[dict[str, Any]]:
    """Raw JSON of every object of ``res`` with our label, all namespaces (as the informers read it: typed
    models would drop or reshape fields)."""
    info = res._api_info
    group, version = info.resource.group, info.resource.version
    path = f"/apis/{group}/{version}/{info.plural}" if group else f"/api/{version}/{info.plural}"
    selector = ",".join(f"{k}={v}" for k, v in MANAGED.items())
    resp = client._client._client.get(path, params={"labelSelector": selector})
    resp.raise_for_status()
    for item in resp.json().get("items") or []:
        yield {"apiVersion": f"{group}/{version}" if group else version, "kind": info.resource.kind, **item}
