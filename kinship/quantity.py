"""Kubernetes resource quantities ("2", "500m", "1Gi") as floats in base units (cores, bytes).

Shared by the extender (pod requests, node allocatable) and the predictor (declared requests of a
manifest), so both read a manifest's numbers the same way and neither imports the other: the data
flows producer -> API server -> extender, never between the components' code.

Parsing is the kubernetes client's `kubernetes.utils.quantity.parse_quantity` (Go's
resource.Quantity grammar, exact Decimal arithmetic). Around it: a cache and a float fast path,
rejection of booleans (YAML `true` is no count) and of values no float holds, and one ValueError
message whatever went wrong, which callers pass on naming the file or object.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from functools import lru_cache

Quantity = str | int | float  # as quantities arrive in JSON/YAML: "500m", 2, 0.5


def quantity(value: Quantity) -> float:
    """A Kubernetes quantity as a float in base units; ValueError naming the value when invalid."""
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}")
    if isinstance(value, int | float):
        return float(value)
    return _parse_quantity_str(value)


@lru_cache(maxsize=4096)
def _parse_quantity_str(text: str) -> float:
    # Quantities repeat across thousands of objects ("1", "8", "16Gi"): the cache makes the
    # library's Decimal parser free on the request path. Plain numbers (every GPU count) skip the
    # kubernetes client, whose import alone costs over a second of `kinship serve` start-up.
    try:
        plain = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(plain):
            return plain
        raise ValueError(f"invalid quantity {text!r}")
    from kubernetes.utils.quantity import parse_quantity

    try:
        parsed: Decimal = parse_quantity(text)
    except (ValueError, InvalidOperation, TypeError):
        raise ValueError(f"invalid quantity {text!r}") from None
    value = float(parsed)
    if not math.isfinite(value):  # "1e400" parses in Go but is no count of anything real
        raise ValueError(f"invalid quantity {text!r}")
    return value


def millis(value: Quantity) -> int:
    """A quantity in exact thousandths of its unit, rounded up as Go's `Quantity.MilliValue`:
    what the API server's admission plugins (LimitRanger) compare, where float sums are off by
    one ulp (0.7 + 0.1 < 0.8). ValueError naming the value when invalid."""
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}")
    from kubernetes.utils.quantity import parse_quantity

    try:
        exact = Decimal(value) if isinstance(value, int | float) else parse_quantity(value)
    except (ValueError, InvalidOperation, TypeError):
        raise ValueError(f"invalid quantity {value!r}") from None
    if not exact.is_finite():
        raise ValueError(f"invalid quantity {value!r}")
    return math.ceil(exact * 1000)
