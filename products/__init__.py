"""The product files shipped with d3os-operator (one folder per product): the operator's default ``--products``."""
