"""d3os_core: the pure library behind d3os-operator.

``plan(parent, observed, facts, product)`` says what should exist and happen next for an instance of a
product (a :class:`ProductDef`: the core reads no product file, the shell loads them and hands them in); it
does no I/O, reads no clock and draws no random numbers, so every rule is a plain unit test.
``desired(...)`` (the objects a spec wants) and ``up_to_date(desired, live)`` (the operator's test of a live
object) are the same functions the planner uses, for tools that show what the operator would do
(``d3os render``/``diff``).
"""

from .api import API_VERSION, FIELD_MANAGER, FINALIZER, GROUP, KIND, PLURAL, VERSION
from .caches import Caches
from .children import up_to_date
from .desired import desired
from .planner import plan
from .product import ProductDef, WorkloadKind
from .types import (
    Apply,
    Check,
    Event,
    Facts,
    HttpCheck,
    ObjectRef,
    Observed,
    Plan,
    ProbeRequest,
    ProbeResult,
    TcpCheck,
)
from .validation import FieldError, SpecError, parse_spec, validate_spec
from .waves import apply_waves

__all__ = [
    "API_VERSION",
    "FIELD_MANAGER",
    "FINALIZER",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Apply",
    "Caches",
    "Check",
    "Event",
    "Facts",
    "FieldError",
    "HttpCheck",
    "ObjectRef",
    "Observed",
    "Plan",
    "ProbeRequest",
    "ProbeResult",
    "ProductDef",
    "SpecError",
    "TcpCheck",
    "WorkloadKind",
    "apply_waves",
    "desired",
    "parse_spec",
    "plan",
    "up_to_date",
    "validate_spec",
]
