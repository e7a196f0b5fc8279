"""The product instances the operator serves, one informer per product kind, read as one cache.

A key is ``(namespace, name, kind)``: two products' instances of one name in one namespace are two keys, two
cached objects and two reconciles. The set of kinds is fixed when the operator starts (no informer is started
or stopped at run time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from d3os_core import api

from .informer import Informer

ParentKey = tuple[str, str, str]
"""(namespace, name, kind) of a product instance."""


def parent_key(obj: Mapping[str, Any], kind: str | None = None) -> ParentKey:
    """The key of a cached instance (``kind``: when the object does not say)."""
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""),
            str(kind or obj.get("kind") or api.KIND))


def fmt_key(key: tuple[str, ...]) -> str:
    """``ns/name`` for a DataService (as logs always said), ``ns/Kind/name`` for another product's instance."""
    if len(key) > 2 and key[2] != api.KIND:
        return f"{key[0]}/{key[2]}/{key[1]}"
    return f"{key[0]}/{key[1]}"


def stamped(info_api_version: str, kind: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A transform that makes sure a cached instance says its apiVersion and kind (writes go by them)."""

    def stamp(obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("kind") != kind or obj.get("apiVersion") != info_api_version:
            obj = {**obj, "apiVersion": info_api_version, "kind": kind}
        return obj

    return stamp


class ParentCaches:
    """Every product kind's informer behind one ``get``/``write_through``/``evict``."""

    def __init__(self, informers: Mapping[str, Informer]) -> None:
        self.by_kind = dict(informers)

    def get(self, namespace: str, name: str, kind: str = api.KIND) -> dict[str, Any] | None:
        informer = self.by_kind.get(kind)
        return informer.get(namespace, name) if informer is not None else None

    def write_through(self, obj: dict[str, Any]) -> bool:
        informer = self.by_kind.get(str(obj.get("kind") or api.KIND))
        return informer.write_through(obj) if informer is not None else False

    def evict(self, namespace: str, name: str, uid: str | None = None, kind: str = api.KIND) -> bool:
        informer = self.by_kind.get(kind)
        return informer.evict(namespace, name, uid) if informer is not None else False

    def __iter__(self) -> Iterator[Informer]:
        return iter(self.by_kind.values())

    def __len__(self) -> int:
        return sum(len(i) for i in self.by_kind.values())

    @property
    def labels(self) -> dict[str, Any] | None:
        """The label selector every instance informer lists with (a shard's), or None."""
        return next((i.labels for i in self.by_kind.values()), None)
