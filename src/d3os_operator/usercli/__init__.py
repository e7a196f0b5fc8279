"""``d3os`` (and ``kubectl d3os``): the command line for people, one package with one parser.

- offline commands (:mod:`.offline`): ``render``, ``validate``, ``plan``, ``crd``, ``reference``; they
  read a file and call the core, and import no cluster client;
- cluster commands: ``status`` (:mod:`.status`), ``apply`` (:mod:`.apply`), ``diff`` (:mod:`.diff`),
  ``history`` and ``rollback`` (:mod:`.history`); they reach the cluster through :mod:`.connect`, and
  ``status --watch``, ``apply --wait``, ``rollback --wait`` follow the instance with :mod:`.watch`; a
  file's kind, or the kind NAME is found under (``--kind``), picks the product;
- :mod:`.parser` holds every command, flag and help text; :mod:`.errors` the one-line errors and exit
  codes, :mod:`.completion` the shell completion (both used by ``d3os-operator`` and ``d3os-testenv`` too).

Errors are one line with an exit code of :mod:`.errors`; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from . import complete, completion, errors
from .parser import OFFLINE, build_parser

__all__ = ["build_parser", "kubectl_complete", "kubectl_main", "main"]


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, prog: str = "d3os") -> int:
    """Run one command; its output goes to ``out`` (default stdout; offline commands write to stdout)."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    stream = out or sys.stdout
    if words[:1] == [complete.HIDDEN]:  # the shells' (and kubectl's) question: never an error, never a traceback
        stream.write(complete.answer(parser, words[1:]))
        return 0
    debug, rest = errors.debug_requested(words)
    args = parser.parse_args(rest)
    if args.command == "completion":
        stream.write(completion.script(args.shell, parser, prog.replace(" ", "-"), dynamic=True))
        return 0
    if args.command in OFFLINE:
        return errors.run(prog, lambda: int(args.func(args)), debug)
    return errors.run(prog, lambda: int(args.func(args, stream)), debug)


def kubectl_main() -> int:
    """``kubectl d3os ...``: kubectl runs the ``kubectl-d3os`` executable it finds on PATH."""
    return main(prog="kubectl d3os")


def kubectl_complete() -> int:
    """``kubectl d3os <TAB>``: kubectl's completion runs ``kubectl_complete-d3os WORD...`` (the words after
    ``d3os``) and reads cobra's answer, which ``d3os __complete`` gives."""
    return main([complete.HIDDEN, *sys.argv[1:]], prog="kubectl d3os")
