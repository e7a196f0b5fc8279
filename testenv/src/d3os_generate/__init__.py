"""Build-time generators of the checked-in install artefacts: the Helm chart (:mod:`d3os_generate.chart`) and
the kustomize RBAC (:mod:`d3os_generate.rbac`), from the kinds table and the product files.

They run from a checkout, never in the operator (which does not import them): so they live in the
development-only ``d3os-testenv`` distribution, out of the operator's wheel and image. One command per
artefact: ``python -m d3os_generate.chart --write charts/d3os-operator``, ``python -m d3os_generate.rbac
--write config/rbac``, ``python -m d3os_generate.rbac --watch-namespace dataservice --write config/namespaced``.
"""
