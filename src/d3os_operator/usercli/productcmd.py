"""``d3os product ...``: check a product file and print what follows from it (offline).

``validate`` runs both passes of :mod:`d3os_core.productload` on folders (or product.yaml files) and, for
several, the catalogue rules (names unique across products); ``schema`` prints the product file's JSON Schema
for editors; ``crd``, ``reference`` and ``example`` print the CRD, the configuration reference and a sample
instance of one product, by folder or installed name.
"""

from __future__ import annotations

import argparse
import json
import sys

from d3os_core import productfile, rbacrules
from d3os_core.crd import crd_manifest
from d3os_core.productdiff import diff_products
from d3os_core.productload import ProductFileError, check_catalogue, crd_size
from d3os_core.reference import config_reference
from d3os_core.sample import sample
from d3os_core.yamlout import dump_all

from .. import products as product_files
from .offline import EXIT_INVALID, catalogue


def cmd_validate(args: argparse.Namespace) -> int:
    loaded = []
    bad = False
    folders = [d for target in args.folders for d in (product_files.product_dirs(target) or [target])]
    for folder in folders:
        try:
            p = product_files.load_dir(folder)
        except ProductFileError as exc:
            bad = True
            print(str(exc), file=sys.stderr)
            continue
        loaded.append(p)
        print(f"{folder}: valid product {p.name} {p.version} ({p.names.kind}, {len(p.components)} components, "
              f"CRD {crd_size(p)} bytes)")
    for err in check_catalogue(loaded):
        bad = True
        print(str(err), file=sys.stderr)
    return EXIT_INVALID if bad else 0


def cmd_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(json.dumps(productfile.schema(), indent=2) + "\n")
    return 0


def cmd_reference_file(args: argparse.Namespace) -> int:
    from d3os_core.productref import product_file_reference

    sys.stdout.write(product_file_reference())
    return 0


def cmd_crd(args: argparse.Namespace) -> int:
    sys.stdout.write(dump_all([crd_manifest(p) for p in catalogue(args.product)]))
    return 0


def cmd_rbac(args: argparse.Namespace) -> int:
    """The ClusterRole the operator needs for these products (:mod:`d3os_core.rbacrules`), and its binding."""
    products = [p for name in args.products for p in catalogue(name)]
    rules = [r.manifest() for r in (*rbacrules.cluster_rules(products), *rbacrules.crd_rules(products),
                                    *rbacrules.metrics_auth_rules())]
    sa = {"kind": "ServiceAccount", "name": args.service_account, "namespace": args.namespace}
    docs = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": args.role}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": args.role + "binding" if args.role.endswith("-role") else args.role + "-binding"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": args.role},
         "subjects": [sa]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "d3os-operator-leader-election-role", "namespace": args.namespace},
         "rules": [r.manifest() for r in rbacrules.leader_rules()]},
    ]
    sys.stdout.write(dump_all(docs))
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    sys.stdout.write("\n".join(config_reference(p) for p in catalogue(args.product)))
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    sys.stdout.write(dump_all([sample(p, args.name) for p in catalogue(args.product)]))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    (old,), (new,) = catalogue(args.old), catalogue(args.new)
    d = diff_products(old, new)
    print(f"{old.name} {d.old_version or '(no version)'} -> {new.name} {d.new_version or '(no version)'}")
    for err in d.breaking:
        print(f"refused: {err}", file=sys.stderr)
    if d.breaking:
        return EXIT_INVALID
    if d.removes:
        print("removes, from every instance once it is Ready (claims and their credentials are kept): "
              + ", ".join(d.removes))
    if d.rolls:
        print("rolls, in dependency order, on every instance: " + ", ".join(d.rolls))
    elif not d.removes:
        print("no component changes" + (" (the version does, and is recorded)" if d.changed else ""))
    return 1 if d.changed else 0


def add_command(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    pr = sub.add_parser(
        "product", help="check a product file; print its schema, CRD, reference or a sample instance (offline)",
        description="Products are data: products/<name>/product.yaml (and files/ beside it) defines a custom "
        "resource kind and everything the operator does for it. These commands check such a file and print "
        "what follows from it. PRODUCT is a product folder, its product.yaml, or an installed product's name.",
    )
    ps = pr.add_subparsers(dest="product_command", required=True, metavar="SUBCOMMAND",
                           help="validate, schema, reference-file, diff, rbac, crd, reference or example")
    v = ps.add_parser("validate", help="check product folders: exit 0, or 2 with one line per problem",
                      description="Check each product folder (schema, then meaning: references, order, clashes, "
                      "CRD size) and, together, that their kinds, plurals and short names are unique. Exit 0 "
                      "when valid; else 2 with one line per problem: 'FILE: path: problem; allowed: ...'.")
    v.add_argument("folders", nargs="+", metavar="FOLDER", help="a product folder, or a folder of them")
    v.set_defaults(func=cmd_validate)
    ps.add_parser("schema", help="print the product file's JSON Schema (for editors)").set_defaults(func=cmd_schema)
    ps.add_parser("reference-file", help="print the product file's field reference (Markdown)",
                  description="Print the reference of every product file field (docs/product-file.md), generated "
                  "from its schema.").set_defaults(func=cmd_reference_file)
    df = ps.add_parser("diff", help="what a new product file does to existing instances: exit 0 none, 1 changes, "
                       "2 refused", description="Compare two versions of a product (folders, product.yaml files or "
                       "installed names): the components every instance will roll, in dependency order; and the "
                       "changes that are refused because an existing instance could become invalid or lose what it "
                       "has (a component removed or added, allowed kinds narrowed, a role changed, the kind renamed). "
                       "Exit 0: no change, 1: changes, 2: refused.")
    df.add_argument("old", metavar="OLD", help="the product as installed")
    df.add_argument("new", metavar="NEW", help="the new product file")
    df.set_defaults(func=cmd_diff)
    rb = ps.add_parser("rbac", help="print the RBAC the operator needs to serve these products",
                       description="Print the ClusterRole (and its ClusterRoleBinding to the operator's "
                       "ServiceAccount, and the leader-election Role) with exactly the verbs the operator sends for "
                       "these products: the same rules as the shipped config/rbac and chart, for any product file.")
    rb.add_argument("products", nargs="+", metavar="PRODUCT", help="product folder, product.yaml or installed name")
    rb.add_argument("--namespace", default="d3os-operator-system", help="the operator's namespace")
    rb.add_argument("--service-account", default="d3os-operator-controller-manager", help="its ServiceAccount")
    rb.add_argument("--role", default="d3os-operator-manager-role", help="the ClusterRole's name")
    rb.set_defaults(func=cmd_rbac)
    for name, func, text in (
        ("crd", cmd_crd, "print the product's CustomResourceDefinition"),
        ("reference", cmd_reference, "print the product's configuration reference (Markdown)"),
        ("example", cmd_example, "print a sample instance of the product, every component at its defaults"),
    ):
        sp = ps.add_parser(name, help=text, description=text + ".")
        sp.add_argument("product", metavar="PRODUCT", help="product folder, product.yaml or installed name")
        if name == "example":
            sp.add_argument("--name", default=None, help="metadata.name (default: <product>-sample)")
        sp.set_defaults(func=func)
    return pr
