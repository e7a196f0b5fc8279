"""``d3os __complete WORD...``: what the shells (and kubectl, through ``kubectl_complete-d3os``) ask to
complete a command line, answered as cobra's ``__complete`` answers kubectl's: one candidate per line, then
``:DIRECTIVE`` (0: the shell may fall back to file names; 4: it may not).

The words are the command line after the program's name, the last one the word being completed (maybe
empty). Subcommands, options and fixed choices come from the parser (so they never drift from it); values
that live in the cluster come from it, with the options already on the line (``-n``, ``--kind``,
``--kubeconfig``, ``--context``, ``--product``): instance names, namespaces, contexts, revision numbers;
``--kind`` completes the installed products' kinds. A lookup that fails (no cluster, no rights) completes
nothing rather than printing an error into the user's command line.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

FILES = 0
"""Directive: the shell completes file names when no candidate is given."""
NO_FILES = 4
"""Directive: no file names (cobra's ``ShellCompDirectiveNoFileComp``)."""
HIDDEN = "__complete"

NAME_COMMANDS = ("status", "history", "rollback", "get")
FILE_OPTIONS = ("--kubeconfig", "--observed", "--product")
CLUSTER_OPTIONS = ("-n", "--namespace", "--kind", "--kubeconfig", "--context", "--product")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {name: sp for name, sp in action.choices.items() if name != HIDDEN}
    return {}


def _takes_value(parser: argparse.ArgumentParser, option: str) -> bool:
    action = parser._option_string_actions.get(option)
    return action is not None and action.nargs != 0


def _scan(parser: argparse.ArgumentParser, words: Sequence[str]) -> tuple[str | None, dict[str, str], list[str]]:
    """(subcommand, {option: value} given before the last word, positionals given)."""
    subs = subcommands(parser)
    command: str | None = None
    options: dict[str, str] = {}
    positionals: list[str] = []
    current = parser
    i = 0
    while i < len(words) - 1:
        word = words[i]
        if word.startswith("-") and word != "-":
            name, eq, value = word.partition("=")
            if eq:
                options[name] = value
            elif _takes_value(current, name) and i + 1 < len(words) - 1:
                options[name] = words[i + 1]
                i += 1
            elif _takes_value(current, name):
                options[name] = ""
            else:
                options[name] = "true"
        elif command is None and word in subs:
            command, current = word, subs[word]
        else:
            positionals.append(word)
        i += 1
    return command, options, positionals


def _option_values(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]]]:
    opts: list[str] = []
    choices: dict[str, list[str]] = {}
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        opts.extend(o for o in action.option_strings if o.startswith("--") or len(action.option_strings) == 1)
        if action.option_strings and action.choices:
            for o in action.option_strings:
                choices[o] = [str(c) for c in action.choices]
    return opts, choices


def _positional_choices(parser: argparse.ArgumentParser) -> list[str]:
    return [str(c) for a in parser._actions if not a.option_strings and a.choices
            and not isinstance(a, argparse._SubParsersAction) for c in a.choices]


class Cluster:
    """The cluster lookups of a completion, with the options on the command line; each returns [] on error."""

    def __init__(self, options: dict[str, str]) -> None:
        self.options = options

    def _args(self) -> argparse.Namespace:
        o = self.options
        return argparse.Namespace(kubeconfig=o.get("--kubeconfig") or None, context=o.get("--context") or None,
                                  namespace=o.get("-n") or o.get("--namespace") or None,
                                  kind=o.get("--kind") or None, product=o.get("--product") or None)

    def contexts(self) -> list[str]:
        from . import kubeconfig

        with contextlib.suppress(Exception):
            merged = kubeconfig.merge([kubeconfig.read(p) for p in _existing(self._args().kubeconfig)])
            return [str(c["name"]) for c in merged["contexts"]]
        return []

    def _client(self) -> Any:
        from . import connect

        return connect.client(connect.kubeconfig(self._args()))

    def namespaces(self) -> list[str]:
        from lightkube.resources.core_v1 import Namespace

        with contextlib.suppress(Exception), self._client() as client:
            return sorted(str(n.metadata.name) for n in client.list(Namespace))
        return []

    def names(self) -> list[str]:
        from lightkube import ALL_NS

        from ..kube import product_kind
        from . import connect

        found: set[str] = set()
        with contextlib.suppress(Exception), self._client() as client:
            args = self._args()
            ns = connect.namespace(args, client) if not self.options.get("-A") and not self.options.get(
                "--all-namespaces") else ALL_NS
            for p in connect.kinds_to_try(args.kind, args.product):
                with contextlib.suppress(Exception):
                    found.update(str(o["metadata"]["name"]) for o in client.list(product_kind(p.names).res,
                                                                                 namespace=ns))
        return sorted(found)

    def revisions(self, name: str) -> list[str]:
        from . import connect, history

        with contextlib.suppress(Exception), self._client() as client:
            args = self._args()
            ns = connect.namespace(args, client)
            found = connect.find(client, name, ns, args.kind, args.product)
            if found.instance is not None:
                revs = history._revisions(client, name, ns, str(found.instance["metadata"]["uid"]))
                return [str(r.number) for r in revs]
        return []


def _existing(explicit: str | None) -> list[Any]:
    import os

    from . import kubeconfig

    paths, _ = kubeconfig.files(explicit, os.environ)
    return [p for p in paths if p.is_file()]


def kinds(product: str | None) -> list[str]:
    """Every installed product's kind, plural and short names (``--kind``'s values)."""
    from . import connect

    with contextlib.suppress(Exception):
        return sorted({w for p in connect.kinds_to_try(None, product)
                       for w in (p.names.kind, p.names.plural, *p.names.short_names)})
    return []


def complete(parser: argparse.ArgumentParser, words: Sequence[str],
             cluster: Callable[[dict[str, str]], Cluster] = Cluster) -> tuple[list[str], int]:
    """The candidates for the last of ``words`` (the command line after the program's name), and the directive."""
    words = list(words) or [""]
    current = words[-1]
    command, options, positionals = _scan(parser, words)
    sub = subcommands(parser).get(command or "")
    target = sub or parser
    opts, choices = _option_values(target)
    prev = words[-2] if len(words) > 1 else ""
    if prev.startswith("-") and "=" not in prev and _takes_value(target, prev):
        values, directive = _value_of(prev, choices, options, positionals, command, cluster)
        return [v for v in values if v.startswith(current)], directive
    if current.startswith("-"):
        if "=" in current:
            name, _, partial = current.partition("=")
            values, directive = _value_of(name, choices, options, positionals, command, cluster)
            return [f"{name}={v}" for v in values if v.startswith(partial)], directive
        return [o for o in opts if o.startswith(current)], NO_FILES
    if sub is None:
        return [c for c in subcommands(parser) if c.startswith(current)], NO_FILES
    fixed = _positional_choices(sub)
    if fixed:
        return [c for c in fixed if c.startswith(current)] if not positionals else [], NO_FILES
    if command in NAME_COMMANDS:
        if positionals:
            return [], NO_FILES
        return [n for n in cluster(options).names() if n.startswith(current)], NO_FILES
    return [], FILES  # a file argument (validate, render, plan, apply, diff)


def _value_of(option: str, choices: dict[str, list[str]], options: dict[str, str], positionals: list[str],
              command: str | None, cluster: Callable[[dict[str, str]], Cluster]) -> tuple[list[str], int]:
    if option in choices:
        return choices[option], NO_FILES
    if option in ("-n", "--namespace"):
        return cluster(options).namespaces(), NO_FILES
    if option == "--context":
        return cluster(options).contexts(), NO_FILES
    if option == "--kind":
        return kinds(options.get("--product") or None), NO_FILES
    if option == "--to-revision" and positionals:
        return cluster(options).revisions(positionals[0]), NO_FILES
    if option == "--product":
        from .. import products

        with contextlib.suppress(Exception):
            return [p.name for p in products.installed()], FILES  # or a folder
        return [], FILES
    if option in FILE_OPTIONS:
        return [], FILES
    return [], NO_FILES


def answer(parser: argparse.ArgumentParser, words: Sequence[str]) -> str:
    """The text ``__complete`` prints: candidates, one per line, then ``:DIRECTIVE``."""
    candidates, directive = complete(parser, words)
    return "".join(f"{c}\n" for c in candidates) + f":{directive}\n"
