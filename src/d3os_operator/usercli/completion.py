"""Shell completion scripts (bash, zsh, fish) generated from an argparse parser, so they never drift from it.

``d3os completion bash``, ``d3os-operator completion bash`` and ``d3os-testenv completion bash`` print
one; ``source <(d3os completion bash)`` (zsh: ``source <(d3os completion zsh)``; fish: ``d3os completion fish
| source``) turns it on. ``d3os``'s scripts ask ``d3os __complete`` (:mod:`.complete`) for every word, so they
complete names from the cluster too; the others' scripts are static: subcommands, each subcommand's options,
the values of options and positionals with a fixed set of choices, else file names. zsh uses the bash script
through ``bashcompinit``.
"""

from __future__ import annotations

import argparse
import re
import shlex

SHELLS = ("bash", "zsh", "fish")


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


def _function(command: str) -> str:
    return "_" + re.sub(r"[^a-zA-Z0-9_]", "_", command)


def dynamic_bash(command: str) -> str:
    """A bash completion that asks ``COMMAND __complete WORD...`` (cobra's protocol: candidates, then ``:N``;
    directive 4 = no file names)."""
    fn = _function(command)
    return "\n".join([
        f"# {command} completion: each word is asked of `{command} __complete` (names come from the cluster)",
        f"{fn}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" out directive',
        f'    out=$({shlex.quote(command)} __complete "${{COMP_WORDS[@]:1:$COMP_CWORD}}" 2>/dev/null) || return',
        '    directive="${out##*:}"',
        '    out="${out%:*}"',
        '    local IFS=$\'\\n\'',
        '    COMPREPLY=($(compgen -W "$out" -- "$cur"))',
        '    if [[ ${#COMPREPLY[@]} -eq 0 && $((directive & 4)) -eq 0 ]]; then',
        '        COMPREPLY=($(compgen -f -- "$cur"))',
        "    fi",
        "}",
        f"complete -o default -F {fn} {shlex.quote(command)}",
        "",
    ])


def dynamic_fish(command: str) -> str:
    """A fish completion that asks ``COMMAND __complete WORD...``, as :func:`dynamic_bash`."""
    fn = _function(command)
    q = shlex.quote(command)
    return "\n".join([
        f"# {command} completion: each word is asked of `{command} __complete` (names come from the cluster)",
        f"function {fn}",
        "    set -l words (commandline -opc)[2..-1] (commandline -ct)",
        f"    set -l out ({q} __complete $words 2>/dev/null)",
        "    or return",
        "    set -l directive (string sub -s 2 -- $out[-1])",
        "    set -e out[-1]",
        "    printf '%s\\n' $out",
        '    if test (count $out) -eq 0 -a "$directive" = 0',
        "        __fish_complete_path (commandline -ct)",
        "    end",
        "end",
        f"complete -c {q} -f -a '({fn})'",
        "",
    ])


def fish_script(parser: argparse.ArgumentParser, command: str | None = None) -> str:
    """A static fish completion for ``parser``: subcommands, options, fixed choices."""
    command = command or parser.prog
    q = shlex.quote(command)
    subs = _subparsers(parser)
    lines = [f"# {command} completion (generated from its argument parser)", f"complete -c {q} -f"]
    lines.append(f"complete -c {q} -n __fish_use_subcommand -a {_words(list(subs))}")
    for name, sp in subs.items():
        cond = shlex.quote(f"__fish_seen_subcommand_from {name}")
        for action in sp._actions:
            longs = [o[2:] for o in action.option_strings if o.startswith("--")]
            shorts = [o[1:] for o in action.option_strings if len(o) == 2]
            if not action.option_strings:
                if action.choices:
                    lines.append(f"complete -c {q} -n {cond} -a {_words([str(c) for c in action.choices])}")
                continue
            flags = " ".join([*(f"-l {lo}" for lo in longs), *(f"-s {so}" for so in shorts)])
            values = f" -x -a {_words([str(c) for c in action.choices])}" if action.choices else (
                " -r -F" if action.nargs != 0 else "")
            lines.append(f"complete -c {q} -n {cond} {flags}{values}")
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser, command: str | None = None, dynamic: bool = False) -> str:
    """The completion script for ``shell`` (bash, zsh or fish); ``dynamic``: ask ``COMMAND __complete``."""
    command = command or parser.prog
    if shell == "bash":
        return dynamic_bash(command) if dynamic else bash_script(parser, command)
    if shell == "zsh":
        return (
            "# zsh: the bash completion through bashcompinit\n"
            "autoload -U +X compinit && compinit\n"
            "autoload -U +X bashcompinit && bashcompinit\n"
            + (dynamic_bash(command) if dynamic else bash_script(parser, command))
        )
    if shell == "fish":
        return dynamic_fish(command) if dynamic else fish_script(parser, command)
    raise ValueError(f"unknown shell {shell!r}: one of {', '.join(SHELLS)}")


def add_command(sub: argparse._SubParsersAction, prog: str) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add ``completion bash|zsh`` to a parser's subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description=f"Print a completion script for {prog}. Turn it on with `source <({prog} completion bash)` "
        f"(zsh: `source <({prog} completion zsh)`; fish: `{prog} completion fish | source`), or save it in your "
        "shell's completion directory.",
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    return p
