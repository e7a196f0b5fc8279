"""One verdict, offline half: ``d3os validate`` refuses every corpus case that admission refuses or that the
operator reports as InvalidSpec, accepts the others and the examples, and says why with the field path.

The other half (the same files through a server-side dry-run create) is tests/integration/test_verdict.py.
"""

from __future__ import annotations

import io
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from d3os_operator import usercli as cli

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "corpus").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (rejected|invalid-spec|accepted|ready|known-gap)(?::\s*(.*))?$", re.M)


def offline_verdict(path: Path) -> tuple[bool, str]:
    """(valid, what ``d3os validate`` printed on stderr) for one file."""
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            code = cli.main(["validate", str(path)])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code == 0, err.getvalue()


def expectation(path: Path) -> tuple[str, str]:
    m = _EXPECT.search(path.read_text(encoding="utf-8"))
    assert m, f"{path.name}: no '# expect:' header"
    return m.group(1), (m.group(2) or "").strip()


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_offline_verdict_matches_the_corpus_label(path: Path) -> None:
    outcome, needle = expectation(path)
    valid, said = offline_verdict(path)
    if outcome in ("rejected", "invalid-spec"):
        assert not valid, f"d3os validate accepts what {outcome} refuses: {needle}"
        assert said.strip()
        if outcome == "invalid-spec":
            assert needle in said, said
        # a refusal names a field path, or (a YAML problem) the line
        assert re.search(r"^(spec|metadata)(\.|:|\[)|line \d+", said, re.M), said
    else:
        assert valid, said


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_are_valid_offline(path: Path) -> None:
    valid, said = offline_verdict(path)
    assert valid, said


def test_duplicate_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    valid, said = offline_verdict(ROOT / "tests" / "corpus" / "dup-yaml-key.yaml")
    assert not valid
    assert "key 'auth' is already set in this mapping" in said
    text = (ROOT / "tests" / "corpus" / "dup-yaml-key.yaml").read_text(encoding="utf-8").splitlines()
    first, second = (int(n) for n in re.findall(r"line (\d+)", said)[::-1])
    assert text[first - 1].strip() == "auth:" and text[second - 1].strip() == "auth:" and first < second


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ("    kind: 1\n", "spec.mysql.kind", "got \"1\""),
        ("    port: 9085\n", "spec.api-manager.port", "must be an integer, got \"9085\" (a string)"),
        ("    replica: 1\n", "spec.api-manager.replica", "must be an integer, got true (a boolean)"),
        ("    nodePort: 30180\n", "spec.web.nodePort", "must be an integer, got \"30180\" (a string)"),
    ],
)
def test_no_coercion(tmp_path: Path, change: str, path: str, words: str) -> None:
    sample = (ROOT / "examples" / "dataservice-sample.yaml").read_text(encoding="utf-8")
    quoted = {"    kind: 1\n": "    kind: '1'\n", "    port: 9085\n": "    port: '9085'\n",
              "    replica: 1\n": "    replica: true\n", "    nodePort: 30180\n": "    nodePort: '30180'\n"}[change]
    assert change in sample
    f = tmp_path / "ds.yaml"
    f.write_text(sample.replace(change, quoted, 1), encoding="utf-8")
    valid, said = offline_verdict(f)
    assert not valid
    assert f"{path}: " in said and words in said, said


def test_the_yaml_loader_refuses_only_real_duplicates() -> None:
    from d3os_core.yamlload import DuplicateKeyError, load

    assert load("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n") == {"base": {"x": 1, "y": 2},
                                                                          "other": {"x": 1, "y": 3}}
    assert load("a:\n  b: 1\nc:\n  b: 2\n") == {"a": {"b": 1}, "c": {"b": 2}}
    with pytest.raises(DuplicateKeyError) as info:
        load("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert "line 4: key 'c' is already set in this mapping (line 3)" in str(info.value)
