"""Argument validators, written once: each returns the clean value or raises a message that says what to change.

In the spirit of scipy's ``validate_tol`` and ``validate_max_step``. ``error`` picks the exception
class, so the solver raises :class:`~odeteach.errors.SolverError` and other modules a plain
``ValueError`` (``SolverError`` is one).
"""

from __future__ import annotations

import math
import numbers

__all__ = ["positive_number", "integer"]


def positive_number(name: str, value, *, allow_zero: bool = False, allow_inf: bool = False,
                    error: type[Exception] = ValueError) -> float:
    """``value`` as a float that is > 0 (≥ 0 with ``allow_zero``), finite unless ``allow_inf``."""
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise error(f"{name} must be a number; got {value!r}.") from exc
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero) or (math.isinf(value) and not allow_inf):
        need = "≥ 0" if allow_zero else "> 0"
        raise error(f"{name} must be a finite number {need}; got {value}.")
    return value


def integer(name: str, value, *, minimum: int | None = None, maximum: int | None = None,
            error: type[Exception] = ValueError) -> int:
    """``value`` as an int in ``[minimum, maximum]``; ``True``/``False`` and floats such as ``3.0`` are refused.

    NumPy integers are accepted (a slider or ``np.arange`` gives them).
    """
    if minimum is not None and maximum is not None:
        what = f"an integer from {minimum} to {maximum}"
    elif minimum is not None:
        what = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
    elif maximum is not None:
        what = f"an integer ≤ {maximum}"
    else:
        what = "an integer"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{name} must be {what}; got {value!r} ({type(value).__name__}).")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise error(f"{name} must be {what}; got {value}.")
    return value
