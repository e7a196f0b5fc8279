"""Reading product folders (``<dir>/<name>/product.yaml`` and ``files/``) into the core's :class:`ProductDef`.

The I/O half of products as data: the core (:mod:`d3os_core.productload`) judges text it is given; this
module finds and reads it, so ``d3os product validate`` and ``d3os-operator run --products`` reach one verdict.
Imports neither lightkube nor an HTTP client: the offline commands use it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

from d3os_core.product import ProductDef
from d3os_core.productload import ProductFileError, check_catalogue, load_product
from d3os_core.validation import FieldError
from d3os_core.yamlload import DuplicateKeyError
from d3os_core.yamlload import load as load_yaml

PRODUCT_FILE = "product.yaml"
FILES_DIR = "files"
MAX_FILE_BYTES = 262144
"""One included file: at most 256 KiB (it lands in a ConfigMap of at most 1 MiB)."""


def installed_root() -> Path:
    """The product folders shipped with the package (``products/`` of the repository)."""
    return Path(str(resources.files("d3os_products")))


def _read_files(folder: Path, source: str) -> dict[str, str]:
    files: dict[str, str] = {}
    base = folder / FILES_DIR
    if not base.is_dir():
        return files
    errors: list[FieldError] = []
    for path in sorted(base.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(base).as_posix()
        raw = path.read_bytes()
        if len(raw) > MAX_FILE_BYTES:
            errors.append(FieldError(f"files/{name}", f"{len(raw)} bytes; at most {MAX_FILE_BYTES} (256 KiB)"))
            continue
        try:
            files[name] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(FieldError(f"files/{name}", f"not UTF-8 text (byte {exc.start}); included files are text"))
    if errors:
        raise ProductFileError(errors, source)
    return files


def load_dir(folder: str | Path) -> ProductDef:
    """The product in ``folder`` (a product folder, or its product.yaml); :class:`ProductFileError` if not."""
    path = Path(folder)
    file = path if path.is_file() else path / PRODUCT_FILE
    path = file.parent
    source = str(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ProductFileError([FieldError("(file)", f"cannot read: {exc.strerror or exc}")], source) from None
    try:
        doc = load_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProductFileError([FieldError("(file)", f"not UTF-8 text (byte {exc.start})")], source) from None
    except DuplicateKeyError as exc:
        raise ProductFileError([FieldError("(file)", str(exc.problem))], source) from None
    except yaml.YAMLError as exc:
        raise ProductFileError([FieldError("(file)", f"not valid YAML: {exc}".replace("\n", " "))], source) from None
    return load_product(doc, _read_files(path, source), source)


def product_dirs(root: str | Path) -> list[Path]:
    """Every product folder under ``root`` (a folder holding product.yaml), by name; ``root`` itself if it
    is one."""
    base = Path(root)
    if (base / PRODUCT_FILE).is_file():
        return [base]
    return sorted(p.parent for p in base.glob(f"*/{PRODUCT_FILE}"))


def load_catalogue(root: str | Path | None = None) -> tuple[ProductDef, ...]:
    """Every product under ``root`` (default: the installed ones), each valid and none clashing with another.

    :class:`ProductFileError` lists every problem of every file."""
    folders = product_dirs(root if root is not None else installed_root())
    if not folders:
        raise ProductFileError([FieldError("(folder)", f"no */{PRODUCT_FILE} under it")], str(root))
    products: list[ProductDef] = []
    errors: list[FieldError] = []
    for folder in folders:
        try:
            products.append(load_dir(folder))
        except ProductFileError as exc:
            errors += [FieldError(f"{exc.source}: {e.path}", e.message) for e in exc.errors]
    errors += check_catalogue(products)
    if errors:
        raise ProductFileError(errors, "")
    return tuple(products)


@functools.cache
def installed() -> tuple[ProductDef, ...]:
    """The products shipped with the package (read once per process)."""
    return load_catalogue()


def by_kind(products: Sequence[ProductDef], kind: str) -> ProductDef | None:
    """The product whose custom resource is ``kind`` (None when none is)."""
    return next((p for p in products if p.names.kind == kind), None)


def by_resource_name(products: Sequence[ProductDef], word: str) -> ProductDef | None:
    """The product whose custom resource ``word`` names as kubectl would take it: its kind, plural, singular
    or a short name, in any case (``DataService``, ``dataservices``, ``dsvc``); None when none does."""
    want = word.lower()
    for p in products:
        n = p.names
        if want in (n.kind.lower(), n.plural, n.singular, *(s.lower() for s in n.short_names)):
            return p
    return None


def installed_product(name: str) -> ProductDef:
    """The installed product named ``name`` (``dataservice``, ``analytics``); KeyError naming the installed
    ones when there is none."""
    found = next((p for p in installed() if p.name == name), None)
    if found is None:
        raise KeyError(f"no installed product {name!r}; installed: {', '.join(p.name for p in installed())}")
    return found
