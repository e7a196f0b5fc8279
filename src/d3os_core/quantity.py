"""Kubernetes quantities in the API server's canonical form (``resource.Quantity.String()``).

The API server stores ``cpu: "5000"`` as ``5k`` and ``1024Mi`` as ``1Gi``. A manifest that says otherwise
never looks up to date (the live value differs from the desired one), so the renderer writes the canonical
form: the same amount, the way the server will give it back.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, localcontext

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|)$")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}


def _decimal_si(value: Decimal) -> str:
    value = value.quantize(Decimal("1e-9"), rounding=ROUND_CEILING)  # nano is the finest the server keeps
    if value == 0:
        return "0"
    for exp in range(18, -12, -3):
        mantissa = value.scaleb(-exp)
        if mantissa == mantissa.to_integral_value():
            return f"{int(mantissa)}{_DECIMAL_SUFFIX[exp]}"
    raise AssertionError("unreachable: every value is a whole number of nano")  # pragma: no cover


def canonical(text: str) -> str:
    """``text`` as the API server returns it; text that is not a plain quantity is returned unchanged.

    The arithmetic is exact for any length: the spec bounds quantities, but a renderer that raised on an
    amount it was handed would retry forever."""
    m = _QUANTITY.match(text.strip())
    if m is None:
        return text
    with localcontext() as ctx:  # digits of the number, up to 19 more for Ei, 9 kept after the point
        ctx.prec = len(text) + 40
        return _canonical(Decimal(m.group(1)), m.group(2))


def _canonical(number: Decimal, suffix: str) -> str:
    if suffix in _BINARY:
        value = number * (Decimal(1024) ** _BINARY[suffix])
        if value < 1024 or value != value.to_integral_value():
            return _decimal_si(value)
        whole = int(value)
        power = 0
        while power < 6 and whole % 1024 == 0:
            whole //= 1024
            power += 1
        return f"{whole}{_BINARY_SUFFIX[power]}" if power else str(whole)
    return _decimal_si(number.scaleb(_DECIMAL[suffix]))
