"""Shell completion scripts (bash, zsh) generated from an argparse parser, so they never drift from it.

``d3os completion bash``, ``d3os-operator completion bash`` and ``d3os-testenv completion bash`` print
one; ``source <(d3os completion bash)`` (zsh: ``source <(d3os completion zsh)``) turns it on. The script
completes subcommands, each subcommand's options, the values of options and positionals with a fixed set
of choices, and falls back to file names. zsh uses the same script through ``bashcompinit``.
"""

from __future__ import annotations

import argparse
import re
import shlex

SHELLS = ("bash", "zsh")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(option strings, option -> its choices, choices of positionals)."""
    opts: list[str] = []
    choices: dict[str, list[str]] = {}
    positional: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if action.option_strings:
            opts.extend(action.option_strings)
            if action.choices:
                for o in action.option_strings:
                    choices[o] = [str(c) for c in action.choices]
        elif action.choices:
            positional.extend(str(c) for c in action.choices)
    return opts, choices, positional


def _words(words: list[str]) -> str:
    return shlex.quote(" ".join(words))


def bash_script(parser: argparse.ArgumentParser, command: str | None = None) -> str:
    """A bash completion function for ``parser`` (registered for ``command``, default the parser's prog)."""
    command = command or parser.prog
    fn = "_" + re.sub(r"[^a-zA-Z0-9_]", "_", command)
    subs = _subparsers(parser)
    top_opts, top_choices, _ = _options(parser)
    lines = [
        f"# {command} completion (generated from its argument parser)",
        f"{fn}() {{",
        '    local cur prev cmd i',
        '    cur="${COMP_WORDS[COMP_CWORD]}"',
        '    prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    cmd=""',
        '    for ((i = 1; i < COMP_CWORD; i++)); do',
        '        case "${COMP_WORDS[i]}" in',
        '            -*) ;;',
        f'            *) if [[ " {" ".join(subs)} " == *" ${{COMP_WORDS[i]}} "* ]]; then cmd="${{COMP_WORDS[i]}}"; '
        'break; fi ;;',
        '        esac',
        '    done',
        '    local words=""',
        '    case "$cmd" in',
    ]
    cases: list[tuple[str, list[str], dict[str, list[str]], list[str]]] = [
        ('""', [*subs, *top_opts], top_choices, [])
    ]
    for name, sp in subs.items():
        opts, choices, positional = _options(sp)
        cases.append((shlex.quote(name), opts, choices, positional))
    for label, words, choices, positional in cases:
        lines.append(f"        {label})")
        if choices:
            lines.append('            case "$prev" in')
            for opt, values in choices.items():
                reply = f'COMPREPLY=($(compgen -W {_words(values)} -- "$cur")); return ;;'
                lines.append(f"                {shlex.quote(opt)}) {reply}")
            lines.append("            esac")
        lines.append(f"            words={_words([*words, *positional])} ;;")
    lines += [
        "    esac",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
        f"complete -o default -F {fn} {shlex.quote(command)}",
        "",
    ]
    return "\n".join(lines)


def script(shell: str, parser: argparse.ArgumentParser, command: str | None = None) -> str:
    """The completion script for ``shell`` (bash or zsh)."""
    if shell == "bash":
        return bash_script(parser, command)
    if shell == "zsh":
        return (
            "# zsh: the bash completion through bashcompinit\n"
            "autoload -U +X compinit && compinit\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(parser, command)
        )
    raise ValueError(f"unknown shell {shell!r}: one of {', '.join(SHELLS)}")


def add_command(sub: argparse._SubParsersAction, prog: str) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add ``completion bash|zsh`` to a parser's subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description=f"Print a completion script for {prog}. Turn it on with `source <({prog} completion bash)` "
        f"(zsh: `source <({prog} completion zsh)`), or save it in your shell's completion directory.",
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    return p
