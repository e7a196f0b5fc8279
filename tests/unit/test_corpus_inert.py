"""The corpus's pure half, no control plane needed: its size and coverage, and every admitted case as the
core sees it (the expected verdict; the shell syntax in it rendered as inert data, never a command)."""

from __future__ import annotations

import collections
import json

from d3os_core.validation import validate_spec

from ..corpus_cases import CASES, assert_inert, injected
from .helpers import DATASERVICE


def test_corpus_size_and_coverage() -> None:
    counts = collections.Counter(c.outcome for c in CASES)
    assert len(CASES) >= 60, counts
    assert counts["rejected"] and counts["invalid-spec"] and counts["accepted"] and counts["ready"] == 1, counts
    for prefix in ("type-", "null-", "range-", "huge-", "name-", "dup-", "unknown-", "cycle-", "kind3-", "inject-"):
        assert any(c.name.startswith(prefix) for c in CASES), prefix
    assert any(c.name == "mysql-daemonset" for c in CASES)


def test_admitted_cases_as_the_core_sees_them() -> None:
    wrong = {}
    inert = 0
    for case in CASES:
        if case.outcome not in ("invalid-spec", "accepted", "ready", "known-gap"):
            continue
        errors = "; ".join(str(e) for e in validate_spec(case.doc["spec"], DATASERVICE))
        if case.outcome == "invalid-spec":
            if case.needle not in errors:
                wrong[case.name] = errors or "(valid)"
        elif errors:
            wrong[case.name] = (
                f"the core now refuses it ({errors}): re-label the case" if case.outcome == "known-gap" else errors
            )
        else:
            assert_inert(case.doc)
            inert += bool(injected(case.doc))
    assert wrong == {}, json.dumps(wrong, indent=1, ensure_ascii=False)
    assert inert >= 9, "the inert check saw too few admitted cases with shell syntax to mean anything"
