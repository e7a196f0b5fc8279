"""``d3os history`` / ``d3os rollback`` decisions that need no cluster: the table and the revision picked."""

from __future__ import annotations

from d3os_core.revisions import Revision
from d3os_operator.usercli.history import format_history, pick, target_spec


def rev(n: int, image: str, name: str | None = None) -> Revision:
    spec = {"web": {"name": "web", "image": f"web:{image}", "port": 80}}
    return Revision(name or f"ds-{n}", n, spec, f"2026-01-01T00:00:0{n}Z", n, f"uid-{n}")


def test_history_table() -> None:
    text = format_history([rev(1, "v1"), rev(2, "v2"), rev(3, "v3")], "ds-2", "ds", "ns")
    lines = text.splitlines()
    assert lines[0].split() == ["REVISION", "CURRENT", "READY", "AT", "GENERATION", "CHANGE"]
    assert lines[1].split() == ["1", "2026-01-01T00:00:01Z", "1", "initial"]
    assert lines[2].split()[:2] == ["2", "*"] and lines[2].endswith("web image web:v1 -> web:v2")
    assert "no revisions yet" in format_history([], "", "ds", "ns")
    assert format_history([rev(4, "v4")], "ds-4", "ds", "ns").splitlines()[1].endswith("(first revision kept)")


def test_rollback_picks_the_revision_before_the_current_by_default() -> None:
    revs = [rev(1, "v1"), rev(2, "v2"), rev(3, "v3")]
    assert pick(revs, "ds-3", None) == revs[1]
    assert pick(revs, "ds-2", None) == revs[0]
    assert pick(revs, "ds-3", 1) == revs[0]
    assert pick(revs, "ds-1", None) == "revision 1 is the oldest kept: no revision before it"
    assert pick(revs, "ds-3", 7) == "revision 7 not found; revisions: 1, 2, 3"
    assert pick([], "", None) == "no revisions yet: nothing to roll back to"


def test_rollback_keeps_suspend_as_it_is() -> None:
    r = rev(1, "v1")
    assert target_spec(r, {"suspend": True, "web": {}}) == {**r.spec, "suspend": True}
    assert target_spec(r, {"web": {}}) == dict(r.spec)
