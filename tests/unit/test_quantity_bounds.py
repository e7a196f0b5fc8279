"""Quantities are bounded, with one verdict offline and at admission, and nothing admitted breaks the render.

``10E``, ``20E`` or a 20-digit amount once matched both the CRD and the core, then made the renderer raise
(``decimal.InvalidOperation``) on every pass. Also offline: a key that is no Unicode text is told with its
path, not as an internal error.
"""

from __future__ import annotations

import io
import math
import re
from contextlib import redirect_stderr, redirect_stdout
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from d3os_core.quantity import canonical
from d3os_core.validation import validate_spec
from d3os_operator import usercli as cli

from .helpers import DATASERVICE, crd_pattern, crd_spec, sample

INT64_MAX = 2**63 - 1
"""The API server keeps a quantity exactly only up to this many units (it caps larger binary amounts)."""
MULTIPLIER = {"": 1, "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "k": 10**3,
              "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
              "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def amount(text: str) -> Fraction:
    """The amount a quantity stands for, by plain arithmetic (independent of d3os_core.quantity)."""
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text)
    assert m, text
    return Fraction(m.group(1)) * MULTIPLIER[m.group(2)]


def crd_quantity_patterns() -> dict[str, str]:
    props = crd_spec()
    return {
        "spec.mysql.storage.size": crd_pattern(props["mysql"]["properties"]["storage"]["properties"]["size"]),
        "spec.web.resources.requests.*": crd_pattern(
            props["web"]["properties"]["resources"]["properties"]["requests"]["additionalProperties"]),
        "spec.web.resources.limits.*": crd_pattern(
            props["web"]["properties"]["resources"]["properties"]["limits"]["additionalProperties"]),
    }


TOO_BIG = ["10E", "20E", "1E", "8Ei", "1Ei", "99999999999999999999", "1" + "0" * 18, "1000P", "1000Pi",
           "1000000000000000k", "10000000000000G", "9223372036854775807", "9223372036854775808"]
FITS = ["0", "500m", "2", "8Gi", "1.5Gi", "999999999999999999", "999999999999999999m", "999999999999999k",
        "999999999999999Ki", "999999999999Mi", "999999999Gi", "999999Ti", "999Pi", "999.999P", "0.000000001"]


def offline(q: str) -> list[str]:
    ds = sample()
    ds["spec"]["mysql"]["storage"] = {"size": q}
    ds["spec"]["web"]["resources"] = {"requests": {"cpu": q}, "limits": {"memory": q}}
    return [str(e) for e in validate_spec(ds["spec"], DATASERVICE)]


@pytest.mark.parametrize("q", TOO_BIG)
def test_a_huge_quantity_is_refused_offline_with_the_rule(q: str) -> None:
    said = offline(q)
    for path in ("spec.mysql.storage.size", "spec.web.resources.requests.cpu", "spec.web.resources.limits.memory"):
        assert any(s.startswith(f"{path}: {q!r} is not a Kubernetes quantity below") for s in said), said
    assert all("3 with P or Pi (E and Ei are not accepted)" in s for s in said), said


@pytest.mark.parametrize("q", FITS)
def test_quantities_within_the_bound_are_valid(q: str) -> None:
    assert offline(q) == []
    assert amount(q) < INT64_MAX


@pytest.mark.parametrize("q", TOO_BIG + FITS)
def test_admission_gives_the_same_verdict(q: str) -> None:
    valid = not offline(q)
    for where, pattern in crd_quantity_patterns().items():
        assert (re.fullmatch(pattern, q) is not None) == valid, (where, q)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_whatever_admission_accepts_is_below_int64_and_renders(data: st.DataObject) -> None:
    pattern = crd_quantity_patterns()["spec.mysql.storage.size"]
    q = data.draw(st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) <= 32))
    assert amount(q) < INT64_MAX, q
    nano = Fraction(math.ceil(amount(q) * 10**9), 10**9)  # the server keeps nano at most, rounding up
    assert amount(canonical(q)) == nano, q


@pytest.mark.parametrize(("given_", "stored"), [
    ("20E", "20E"), ("10E", "10E"), ("1" + "0" * 24, "1000000E"), ("99999999999999999999999999999999Ei",
                                                                     "99999999999999999999999999999999Ei"),
    ("0." + "0" * 30 + "1", "1n"),
])
def test_canonical_never_raises_on_a_long_amount(given_: str, stored: str) -> None:
    """The renderer's arithmetic is exact at any length (it raised ``InvalidOperation`` past 28 digits)."""
    assert canonical(given_) == stored


def run_cli(*args: str) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return int(code), err.getvalue()


@pytest.mark.parametrize("command", ["validate", "render"])
def test_cli_refuses_a_huge_size_instead_of_an_internal_error(tmp_path: Path, command: str) -> None:
    ds = sample()
    ds["spec"]["mysql"]["storage"] = {"size": "20E"}
    f = tmp_path / "ds.yaml"
    f.write_text(yaml.safe_dump(ds), encoding="utf-8")
    code, said = run_cli(command, str(f))
    assert code != 0 and "internal error" not in said, said
    assert "spec.mysql.storage.size: '20E' is not a Kubernetes quantity" in said, said


def test_a_key_that_is_no_unicode_text_is_named_not_an_internal_error(tmp_path: Path) -> None:
    text = Path(__file__).resolve().parents[2].joinpath("examples", "dataservice-sample.yaml").read_text("utf-8")
    assert "\nspec:\n" in text
    f = tmp_path / "ds.yaml"
    f.write_text(text.replace("\nspec:\n", '\nspec:\n  "\\ud800x": 1\n', 1), encoding="utf-8")
    code, said = run_cli("validate", str(f))
    assert "internal error" not in said, said
    assert code == 2 and "spec: key '\\ud800x' is not valid Unicode text" in said, said


def test_a_value_that_is_no_unicode_text_is_named_once() -> None:
    ds = sample()
    ds["spec"]["web"]["env"] = {"A": "x\ud800"}
    assert [str(e) for e in validate_spec(ds["spec"], DATASERVICE)] == [
        "spec.web.env.A: 'x\\ud800' is not valid Unicode text (it holds a lone surrogate); the API server "
        "accepts UTF-8 text only"]
