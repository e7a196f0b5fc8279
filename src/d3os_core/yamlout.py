"""YAML that every reader reads back as the same objects.

PyYAML quotes a string only when *its own* YAML 1.1 resolver would take it for something else. Other
readers resolve more: kubectl's (sigs.k8s.io/yaml on go-yaml) reads ``9910e32967671646`` as a float, so
an unquoted hash annotation fails with "cannot unmarshal number into ... of type string". This dumper
quotes every string that a YAML 1.1 *or* 1.2 reader (core schema, go-yaml's extensions) could resolve
to a null, bool, int, float, timestamp or merge key, and never writes anchors or aliases (a shared
Python object is written out again; Kubernetes tooling and people read it more easily).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

AMBIGUOUS = re.compile(
    r"""^(?:
      ~ | null | Null | NULL                                                  # null (1.1, 1.2)
    | y | Y | yes | Yes | YES | n | N | no | No | NO                          # bool (1.1)
    | true | True | TRUE | false | False | FALSE | on | On | ON | off | Off | OFF
    | [-+]?[0-9_]+                                                             # int ('_' alone: ruamel)
    | [-+]?0[bB][01_]+                                                         # int: binary
    | [-+]?0[oO]?[0-7_]+                                                       # int: octal (0o17, 017)
    | [-+]?0[xX][0-9a-fA-F_]+                                                  # int: hex
    | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?                         # base 60 (1.1)
    | [-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9_]+)?       # int, float, 1e3, 99e16
    | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)                              # float specials
    | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9].*)?                 # timestamp (1.1)
    | = | <<                                                                   # value and merge keys
    )$""",
    re.X,
)
"""Plain scalars some YAML reader resolves to a non-string (the union of YAML 1.1, 1.2 and go-yaml)."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    node = dumper.represent_str(value)
    if AMBIGUOUS.match(value):
        node.style = "'"
    return node


_Dumper.add_representer(str, _represent_str)


def dump_all(docs: Iterable[Any], *, sort_keys: bool = False, width: int = 120) -> str:
    """A YAML stream of ``docs`` that any YAML reader parses to the same objects."""
    return yaml.dump_all(
        list(docs), Dumper=_Dumper, sort_keys=sort_keys, allow_unicode=True, width=width, default_flow_style=False
    )


def dump(doc: Any, *, sort_keys: bool = False, width: int = 120) -> str:
    """One document, as :func:`dump_all`."""
    return dump_all([doc], sort_keys=sort_keys, width=width)
