"""YAML loading that refuses what the API server refuses: a key given twice in one mapping.

PyYAML keeps the last value of a repeated key without a word; ``kubectl apply`` (strict field validation)
refuses the document. ``d3os validate`` must say the same, naming the key and both lines.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import IO, Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode


class DuplicateKeyError(ConstructorError):
    """A mapping repeats a key; ``str()`` names the key and the lines of both occurrences."""


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys in a mapping (merge keys ``<<`` keep their meaning)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:  # before merging: a key may override one from ``<<: *anchor``
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader reports it itself below
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise DuplicateKeyError(
                        None, None,
                        f"line {line}: key {key!r} is already set in this mapping (line {first}); "
                        "each key may appear once",
                        key_node.start_mark,
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_all(stream: str | bytes | IO[str] | IO[bytes]) -> Iterator[Any]:
    """Every document of ``stream``, as ``yaml.safe_load_all`` but refusing duplicate keys."""
    return yaml.load_all(stream, Loader=StrictSafeLoader)  # a SafeLoader subclass: no arbitrary objects


def load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """One document, as ``yaml.safe_load`` but refusing duplicate keys."""
    return yaml.load(stream, Loader=StrictSafeLoader)  # a SafeLoader subclass: no arbitrary objects
