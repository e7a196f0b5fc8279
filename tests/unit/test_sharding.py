"""Sharding: the --watch-label-selector grammar, its matching (ours and the API server's encoding agree),
the Lease each shard elects on, and the DataService cache of a shard as DataServices move in and out."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lightkube.core.selector import build_selector

from d3os_core import api
from d3os_operator.cli import build_parser, main
from d3os_operator.controller import Operator, Settings
from d3os_operator.informer import Informer
from d3os_operator.kube import DATASERVICE
from d3os_operator.leader import DEFAULT_ID
from d3os_operator.sharding import (
    SHARD_KEY,
    LabelSelector,
    Requirement,
    check_lease_name,
    labels_match,
    lease_name,
    parse_selector,
)


def test_blank_is_no_selector() -> None:
    assert parse_selector(None) is None
    assert parse_selector("") is None
    assert parse_selector("   ") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sharding.d3os.io/key=shard1", [Requirement(SHARD_KEY, "=", ("shard1",))]),
        ("sharding.d3os.io/key == shard1", [Requirement(SHARD_KEY, "=", ("shard1",))]),
        ("sharding.d3os.io/key!=shard1", [Requirement(SHARD_KEY, "!=", ("shard1",))]),
        ("!sharding.d3os.io/key", [Requirement(SHARD_KEY, "!")]),
        ("sharding.d3os.io/key", [Requirement(SHARD_KEY, "exists")]),
        ("sharding.d3os.io/key in (shard2, shard1)", [Requirement(SHARD_KEY, "in", ("shard1", "shard2"))]),
        ("sharding.d3os.io/key notin (shard1,shard2)", [Requirement(SHARD_KEY, "notin", ("shard1", "shard2"))]),
        ("tier=gold, !sharding.d3os.io/key", [Requirement(SHARD_KEY, "!"), Requirement("tier", "=", ("gold",))]),
        ("team in (a,b),env", [Requirement("env", "exists"), Requirement("team", "in", ("a", "b"))]),
        ("x=", [Requirement("x", "=", ("",))]),
    ],
)
def test_parses_kubectl_syntax(text: str, expected: list[Requirement]) -> None:
    sel = parse_selector(text)
    assert sel is not None and list(sel.requirements) == expected


def test_two_spellings_of_one_selector_are_equal_and_print_alike() -> None:
    a = parse_selector("sharding.d3os.io/key notin (shard2,shard1), tier=gold")
    b = parse_selector("tier==gold,sharding.d3os.io/key notin (shard1, shard2)")
    assert a == b and str(a) == str(b) == "sharding.d3os.io/key notin (shard1,shard2),tier=gold"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("sharding.d3os.io/key in ()", "needs at least one value"),
        ("a=1,,b=2", "empty requirement"),
        ("a=1,", "empty requirement"),
        ("a in (x", "unbalanced '('"),
        ("a in x)", "unbalanced ')'"),
        ("a=1,a=2", "appears twice"),
        ("Bad Key=1", "cannot parse"),
        ("a>3", "'<' and '>' are not supported"),
        ("-a=1", "the name must be"),
        ("Sharding.D3OS.io/key=x", "the prefix must be a DNS subdomain"),
        ("/key=x", "prefix before '/' is empty"),
        ("key=" + "v" * 64, "at most 63 characters"),
        ("key=-v", "starting and ending with a letter or digit"),
        ("key in (ok, bad!)", "value 'bad!' of 'key'"),
    ],
)
def test_a_bad_selector_is_refused_naming_the_flag_and_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="--watch-label-selector") as e:
        parse_selector(text)
    assert says in str(e.value), str(e.value)


def test_the_cli_refuses_a_bad_selector_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "--watch-label-selector", "sharding.d3os.io/key in ()"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--watch-label-selector 'sharding.d3os.io/key in ()'" in err and "at least one value" in err
    with pytest.raises(SystemExit) as e:
        main(["run", "--leader-election-id", "Not_A_Lease"])
    assert e.value.code == 2
    assert "--leader-election-id 'Not_A_Lease': must be a DNS subdomain" in capsys.readouterr().err
    assert build_parser().parse_args(["run"]).watch_label_selector is None


def test_matching_follows_kubernetes_semantics() -> None:
    def m(text: str, labels: dict[str, str]) -> bool:
        sel = parse_selector(text)
        assert sel is not None
        return sel.matches(labels)

    key = SHARD_KEY
    assert m(f"{key}=shard1", {key: "shard1"}) and not m(f"{key}=shard1", {}) and not m(f"{key}=shard1", {key: "x"})
    assert m(f"{key}!=shard1", {}) and m(f"{key}!=shard1", {key: "x"}) and not m(f"{key}!=shard1", {key: "shard1"})
    assert m(f"!{key}", {}) and not m(f"!{key}", {key: ""})
    assert m(key, {key: ""}) and not m(key, {})
    assert m(f"{key} in (a,b)", {key: "b"}) and not m(f"{key} in (a,b)", {})
    # the default shard: unlabelled DataServices and those labelled for a shard that is not listed
    default = f"{key} notin (shard1,shard2)"
    assert m(default, {}) and m(default, {key: "shard3"}) and not m(default, {key: "shard2"})


def test_the_convention_splits_every_labelling_between_the_shards_exactly_once() -> None:
    shards = [parse_selector(f"{SHARD_KEY}=shard1"), parse_selector(f"{SHARD_KEY}=shard2"),
              parse_selector(f"{SHARD_KEY} notin (shard1,shard2)")]
    for labels in ({}, {SHARD_KEY: "shard1"}, {SHARD_KEY: "shard2"}, {SHARD_KEY: "other"}, {"x": "y"}):
        assert sum(1 for s in shards if s is not None and s.matches(labels)) == 1, labels


_names = st.sampled_from(["a", "b", "c", SHARD_KEY])
_values = st.sampled_from(["", "x", "y", "shard1"])
_req = st.one_of(
    st.builds(lambda k: Requirement(k, "exists"), _names),
    st.builds(lambda k: Requirement(k, "!"), _names),
    st.builds(lambda k, v, op: Requirement(k, op, (v,)), _names, _values, st.sampled_from(["=", "!="])),
    st.builds(
        lambda k, vs, op: Requirement(k, op, tuple(sorted(set(vs)))),
        _names,
        st.lists(st.sampled_from(["x", "y", "shard1"]), min_size=1, max_size=3),
        st.sampled_from(["in", "notin"]),
    ),
)
_selectors = st.dictionaries(_names, _req).map(
    lambda d: LabelSelector(tuple(sorted((Requirement(k, r.op, r.values) for k, r in d.items()), key=lambda r: r.key)))
)


@given(_selectors, st.dictionaries(_names, _values))
def test_what_the_server_is_sent_and_what_write_through_checks_agree(
    sel: LabelSelector, labels: dict[str, str]
) -> None:
    """The labelSelector the informer sends (lightkube's encoding) parses back to the same selector, and
    the informer's write-through check matches exactly what the selector matches."""
    if sel.requirements:
        assert parse_selector(build_selector(sel.as_labels())) == sel
        assert parse_selector(str(sel)) == sel
    assert labels_match(sel.as_labels(), labels) == sel.matches(labels)


def test_labels_match_keeps_the_plain_forms_the_owned_informers_use() -> None:
    managed = {"app.kubernetes.io/managed-by": "d3os-operator"}
    assert labels_match(managed, managed) and not labels_match(managed, {})
    assert not labels_match(managed, {"app.kubernetes.io/managed-by": "helm"})
    assert labels_match({"a": None}, {"a": ""}) and not labels_match({"a": None}, {})
    assert labels_match({"a": ("x", "y")}, {"a": "y"}) and not labels_match({"a": ("x", "y")}, {"a": "z"})


# -- the Lease of each shard --------------------------------------------------------------------------------


def test_lease_names() -> None:
    assert lease_name(None, None, DEFAULT_ID) == DEFAULT_ID == "d3os-operator.d3os-product.com.d3os"
    assert lease_name(parse_selector(f"{SHARD_KEY}=shard1")) == "d3os-operator-shard1.d3os-product.com.d3os"
    assert lease_name(parse_selector(f"{SHARD_KEY} in (shard1)")) == "d3os-operator-shard1.d3os-product.com.d3os"
    assert lease_name(parse_selector(f"{SHARD_KEY}=shard1"), "mine") == "mine"
    default = lease_name(parse_selector(f"{SHARD_KEY} notin (shard2,shard1)"))
    assert default == lease_name(parse_selector(f"{SHARD_KEY} notin (shard1, shard2)")), "replicas agree"
    assert default.startswith("d3os-operator-sel-") and default.endswith(".d3os-product.com.d3os")
    check_lease_name(default)
    # a shard name that is a label value but not a DNS label (Lease names are) gets a digest, never a clash
    upper = lease_name(parse_selector(f"{SHARD_KEY}=Shard1"))
    under = lease_name(parse_selector(f"{SHARD_KEY}=shard_1"))
    assert len({upper, under, lease_name(parse_selector(f"{SHARD_KEY}=shard1"))}) == 3
    check_lease_name(upper)
    check_lease_name(under)


def test_different_selectors_never_share_a_lease() -> None:
    texts = [f"{SHARD_KEY}=shard1", f"{SHARD_KEY}=shard2", f"!{SHARD_KEY}", f"{SHARD_KEY} notin (shard1,shard2)",
             f"{SHARD_KEY} notin (shard1)", "tier=gold", f"tier=gold,{SHARD_KEY}=shard1", f"{SHARD_KEY}!=shard1"]
    assert len({lease_name(parse_selector(t)) for t in texts}) == len(texts)


# -- a shard's DataService cache ------------------------------------------------------------------------


def _ds(name: str, rv: int, shard: str | None, uid: str = "u1") -> dict[str, Any]:
    labels = {SHARD_KEY: shard} if shard else {}
    return {"metadata": {"name": name, "namespace": "a", "resourceVersion": str(rv), "uid": uid, "labels": labels}}


def _shard(selector: str, seen: list[tuple[str, str]]) -> Informer:
    sel = parse_selector(selector)
    assert sel is not None
    return Informer(
        None,  # type: ignore[arg-type]
        DATASERVICE,
        None,
        handler=lambda t, o, old: seen.append((t, o["metadata"]["name"])),
        labels=sel.as_labels(),
    )


def test_a_dataservice_moved_out_and_back_is_cached_again() -> None:
    """The server sends DELETED (with the new resourceVersion) when a DataService leaves the watch's
    selector and ADDED when it comes back: the shard must take it back, not treat it as dead."""
    seen: list[tuple[str, str]] = []
    inf = _shard(f"{SHARD_KEY}=shard1", seen)
    inf._apply_event("ADDED", _ds("db", 10, "shard1"))
    inf._apply_event("DELETED", _ds("db", 11, "shard1"))  # relabelled to shard2 at 11
    assert inf.get("a", "db") is None
    assert not inf.write_through(_ds("db", 11, "shard1")), "nothing older than the move comes back"
    assert not inf.write_through(_ds("db", 12, "shard2")), "a write answer outside the selector is not cached"
    inf._apply_event("ADDED", _ds("db", 20, "shard1"))  # moved back
    assert inf.get("a", "db") is not None
    assert seen == [("ADDED", "db"), ("DELETED", "db"), ("ADDED", "db")]


def test_a_dataservice_gone_from_a_relist_comes_back_when_it_matches_again() -> None:
    seen: list[tuple[str, str]] = []
    inf = _shard(f"!{SHARD_KEY}", seen)
    inf._apply_event("ADDED", _ds("db", 10, None))

    async def lists(*_: Any, **__: Any) -> tuple[list[dict[str, Any]], str]:
        return [], "30"

    inf.kube = SimpleNamespace(list_objects=lists)  # type: ignore[assignment]
    import anyio

    anyio.run(inf._relist, inf.scopes[0])
    assert inf.get("a", "db") is None and seen[-1] == ("DELETED", "db")
    inf._apply_event("ADDED", _ds("db", 25, None))  # a late event from before the list: stays out
    assert inf.get("a", "db") is None
    inf._apply_event("ADDED", _ds("db", 31, None))  # unlabelled again after the list
    assert inf.get("a", "db") is not None


def test_a_really_deleted_dataservice_stays_dead() -> None:
    inf = _shard(f"{SHARD_KEY}=shard1", [])
    inf._apply_event("ADDED", _ds("db", 10, "shard1"))
    inf._apply_event("DELETED", _ds("db", 12, "shard1"))
    inf._apply_event("MODIFIED", _ds("db", 11, "shard1"))  # older, in flight
    assert not inf.write_through(_ds("db", 12, "shard1"))
    assert inf.get("a", "db") is None
    inf.evict("a", "db", uid="u1")  # after a 404: for good, whatever version turns up
    assert not inf.write_through(_ds("db", 99, "shard1"))


def test_the_operator_lists_and_watches_dataservices_with_the_selector() -> None:
    sel = parse_selector(f"{SHARD_KEY} notin (shard1)")
    op = Operator(
        SimpleNamespace(on_response=None, field_manager="m"),  # type: ignore[arg-type]
        Settings(watch_label_selector=sel),
    )
    assert build_selector(op.parents.labels or {}) == f"{SHARD_KEY} notin (shard1)"
    # the owned kinds keep their own filter (the managed-by label), whatever the shard
    assert all(i.labels == {api.LABEL_MANAGED_BY: api.MANAGED_BY} for i in op.owned.values())
    assert Operator(SimpleNamespace(on_response=None, field_manager="m")).parents.labels is None  # type: ignore[arg-type]
