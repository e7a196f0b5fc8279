"""d3os_core: the pure library behind d3os-operator.

``plan(parent, observed, facts)`` says what should exist and happen next for a DataService; it does no
I/O, reads no clock and draws no random numbers, so every rule is a plain unit test.
"""

from .api import API_VERSION, FIELD_MANAGER, FINALIZER, GROUP, KIND, PLURAL, VERSION
from .dataservice import DATASERVICE
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

__all__ = [
    "API_VERSION",
    "DATASERVICE",
    "FIELD_MANAGER",
    "FINALIZER",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Apply",
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
    "parse_spec",
    "plan",
    "validate_spec",
]
