"""The product-file corpus (issue 23): every refused case names the path and the text of the problem it expects.

``tests/corpus/products/refused/*.yaml`` are product files the loader must refuse. Each starts with comments:

    # <what is wrong, in one line>
    # path: <the FieldError's exact path, e.g. components[1].uses[0] or (file)>
    # message: <a distinctive fragment of its message>
    # xfail: <why the loader does not do this yet>          (optional: the case is a known loader gap)

``tests/corpus/products/accepted/*.yaml`` are product files it must accept. A case's included files, if any, are
in ``<case>.files/`` beside it (they become ``files/`` of the product folder).

Each case is read as ``d3os product validate`` and the operator read it: copied into a product folder and loaded
with :func:`d3os_operator.products.load_dir` (so YAML problems, such as a key given twice, are part of it).
Every refusal is a :class:`ProductFileError` -- never another exception -- of one-line messages, all of them
``<file>: <path>: <problem>``, and no traceback. Catalogue clashes (two products served together) are
:func:`check_catalogue`'s and are tested at the end.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from d3os_core.productload import CRD_MAX_BYTES, ProductFileError, check_catalogue, crd_size, dump_product, load_product
from d3os_core.validation import FieldError
from d3os_operator.products import load_catalogue, load_dir

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "products"
REFUSED = sorted((CORPUS / "refused").glob("*.yaml"))
ACCEPTED = sorted((CORPUS / "accepted").glob("*.yaml"))
_HEADER = re.compile(r"^# (path|message|xfail): (.*)$", re.M)


def header(path: Path) -> dict[str, str]:
    return dict(_HEADER.findall(path.read_text(encoding="utf-8")))


def folder(case: Path, tmp_path: Path) -> Path:
    """The case as a product folder: ``product.yaml`` and, when the case has some, ``files/``."""
    out = tmp_path / case.stem
    out.mkdir()
    shutil.copyfile(case, out / "product.yaml")
    files = case.with_suffix(".files")
    if files.is_dir():
        shutil.copytree(files, out / "files")
    return out


def refusal(case: Path, tmp_path: Path) -> ProductFileError:
    """What loading ``case`` raises; fails the test when it loads or raises anything else."""
    try:
        product = load_dir(folder(case, tmp_path))
    except ProductFileError as exc:
        return exc
    except Exception as exc:  # a traceback for the user: the worst verdict
        pytest.fail(f"{case.name}: the loader raised {type(exc).__name__}: {exc} (not a ProductFileError)")
    pytest.fail(f"{case.name}: accepted ({len(product.components)} components)")


def _param(case: Path) -> Any:
    reason = header(case).get("xfail")
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case.stem, marks=marks)


# -- the corpus is what it says it is ----------------------------------------------------------------------------


def test_corpus_size() -> None:
    assert len(REFUSED) >= 30, len(REFUSED)
    assert len(ACCEPTED) >= 5, len(ACCEPTED)
    for case in REFUSED:
        fields = header(case)
        assert fields.get("path") and fields.get("message"), f"{case.name}: no '# path:' and '# message:' header"
    for case in ACCEPTED:
        assert "path" not in header(case), f"{case.name}: an accepted case names no problem"


# -- refused ------------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Field name .* shadows an attribute:UserWarning")  # reserved-key-component
@pytest.mark.parametrize("case", [_param(c) for c in REFUSED])
def test_refused_case_names_its_path_and_problem(case: Path, tmp_path: Path) -> None:
    want = header(case)
    exc = refusal(case, tmp_path)
    found = [f"{e.path}: {e.message}" for e in exc.errors]
    assert any(e.path == want["path"] and want["message"] in e.message for e in exc.errors), (
        f"{case.name}: expected {want['path']}: …{want['message']}…; got {found}")


@pytest.mark.filterwarnings("ignore:Field name .* shadows an attribute:UserWarning")
@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.stem)
def test_every_refusal_is_one_line_per_problem_and_no_traceback(case: Path, tmp_path: Path) -> None:
    """Whatever else is refused (an accepted case or another exception is the test above's to report)."""
    try:
        load_dir(folder(case, tmp_path))
    except ProductFileError as exc:
        text = str(exc)
        assert exc.errors, "a refusal without errors"
        assert "Traceback" not in text and 'File "' not in text
        lines = text.split("\n")
        assert len(lines) == len(exc.errors)
        for line, err in zip(lines, exc.errors, strict=True):
            assert isinstance(err, FieldError)
            assert "\n" not in err.path and "\n" not in err.message, repr(err)
            assert err.path.strip() and err.message.strip(), repr(err)
            assert line == f"{exc.source}: {err.path}: {err.message}", line
    except Exception as exc:  # reported by test_refused_case_names_its_path_and_problem
        pytest.skip(f"not a ProductFileError: {type(exc).__name__}")


# -- accepted -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.stem)
def test_accepted_case_loads_and_survives_a_round_trip(case: Path, tmp_path: Path) -> None:
    product = load_dir(folder(case, tmp_path))
    assert load_product(dump_product(product)) == product
    assert dump_product(load_product(dump_product(product))) == dump_product(product)
    assert crd_size(product) <= CRD_MAX_BYTES


def test_includes_are_read_and_resolved(tmp_path: Path) -> None:
    product = load_dir(folder(CORPUS / "accepted" / "includes.yaml", tmp_path))
    proxy = product.component("proxy")
    assert "proxy_pass http://${backend.host}:${backend.port};" in proxy.config["default.conf"]
    assert "listen ${proxy.port};" in proxy.config["default.conf"]  # ${self.X} is the component's own
    scripts, static = proxy.extra_configmaps
    assert scripts.data["hello.sh"] == "#!/bin/sh\necho hello from ${namespace}\n"  # vars resolved, namespace kept
    assert scripts.files_from_spec and not static.files_from_spec
    assert static.data == {"index.html": "<p>hello</p>"}


def test_defaults_are_replaced_not_merged(tmp_path: Path) -> None:
    product = load_dir(folder(CORPUS / "accepted" / "defaults-and-vars.yaml", tmp_path))
    assert product.component("cart").config == {"SERVER_PORT": "${cart.port}", "APP_NAME": "${cart.name}"}
    assert product.component("store").config == {"ONLY": "mine"}
    assert product.component("cart").default_port == 8080 and product.component("mysql").default_port == 3306
    assert product.component("cart").default_image == "registry.example/shop/cart:v3"
    assert product.component("mysql").generated_secret == {"username": "shop", "password": "<random>"}


# -- the catalogue: products served together ------------------------------------------------------------------------


def _product(tmp_path: Path, stem: str, **names: Any) -> Any:
    """An accepted case, renamed: ``metadata`` name and ``names`` fields from ``names``."""
    import yaml

    doc = yaml.safe_load((CORPUS / "accepted" / f"{stem}.yaml").read_text(encoding="utf-8"))
    if "name" in names:
        doc["metadata"]["name"] = names.pop("name")
    doc["names"].update(names)
    return load_product(doc)


def test_catalogue_clashes_are_refused(tmp_path: Path) -> None:
    base = _product(tmp_path, "base")  # demo: Demo, demos, [dm]
    same_kind = _product(tmp_path, "minimal", name="other", kind="Demo", plural="others", singular="demo")
    same_plural = _product(tmp_path, "minimal", name="other", kind="Other", plural="demos", singular="other")
    short_is_plural = _product(tmp_path, "minimal", name="other", kind="Other", plural="others", singular="other",
                               shortNames=["demos"])
    same_short = _product(tmp_path, "minimal", name="other", kind="Other", plural="others", singular="other",
                          shortNames=["dm"])
    plural_is_short = _product(tmp_path, "minimal", name="other", kind="Other", plural="dm", singular="other")
    cases = [
        (same_kind, "other: names.kind", "'Demo' is already taken by product demo"),
        (same_plural, "other: names.plural", "'demos' is already taken by product demo"),
        (short_is_plural, "other: names.shortNames", "'demos' is already taken by product demo"),
        (same_short, "other: names.shortNames", "'dm' is already taken by product demo"),
        (plural_is_short, "other: names.plural", "'dm' is already taken by product demo"),
    ]
    for other, path, message in cases:
        errors = check_catalogue([base, other])
        assert any(e.path == path and message in e.message for e in errors), (path, errors)
        assert all("\n" not in str(e) for e in errors)
    fine = _product(tmp_path, "minimal", name="other", kind="Other", plural="others", singular="other",
                    shortNames=["ot"])
    assert check_catalogue([base, fine]) == []


def test_catalogue_refuses_two_products_of_one_name(tmp_path: Path) -> None:
    base = _product(tmp_path, "base")
    namesake = _product(tmp_path, "minimal", name="demo", kind="Other", plural="others", singular="other")
    assert any(e.path.endswith("metadata.name") for e in check_catalogue([base, namesake]))


def test_catalogue_folder_with_a_clash_is_refused_with_paths(tmp_path: Path) -> None:
    for stem in ("base", "minimal"):
        folder(CORPUS / "accepted" / f"{stem}.yaml", tmp_path)
    text = (tmp_path / "minimal" / "product.yaml").read_text(encoding="utf-8")
    (tmp_path / "minimal" / "product.yaml").write_text(text.replace("plural: tinies", "plural: demos"),
                                                       encoding="utf-8")
    with pytest.raises(ProductFileError) as info:
        load_catalogue(tmp_path)
    assert "tiny: names.plural: 'demos' is already taken by product demo" in str(info.value)
    assert "Traceback" not in str(info.value)
