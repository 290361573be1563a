"""Step-size control for embedded Runge–Kutta pairs, as in the textbook.

The solver proposes a step and an estimate of its local error; this module decides
whether to accept it and how long the next step should be. It never looks at the
tableau except for the order of the error estimate.

Reference: E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential
Equations I*, 2nd ed., Springer 1993, §II.4 "Practical error estimation and step size
selection" (eqs. 4.10–4.13) and "Starting step size" (p. 169). Names follow the book.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "SAFETY", "IFACTOR", "DFACTOR", "error_ratio", "initial_step", "StepSizeController",
]

# fac in HNW (4.13): aim a little below the largest step the error estimate allows,
# so that the next step is likely to be accepted.
SAFETY = 0.9
# facmax: never grow the step by more than this factor at once (HNW suggest 1.5 to 5;
# 10 is torchdiffeq's default, kept so that the two solvers are compared like for like).
IFACTOR = 10.0
# facmin: never shrink the step by more than this factor at once.
DFACTOR = 0.2


def error_ratio(y_err: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, rtol: float, atol: float) -> float:
    """HNW (4.11): the RMS norm of the error, component by component over its tolerance.

    ``err = sqrt(mean((y_err / (atol + rtol * max(|y0|, |y1|)))**2))``; a step is accepted when ``err <= 1``.
    """
    with torch.no_grad():
        scale = atol + rtol * torch.maximum(y0.abs(), y1.abs())
        return torch.linalg.vector_norm(y_err / scale).item() / math.sqrt(y_err.numel())


def _rms(x: torch.Tensor, scale: torch.Tensor) -> float:
    return torch.linalg.vector_norm(x / scale).item() / math.sqrt(x.numel())


def initial_step(func, t0: torch.Tensor, y0: torch.Tensor, f0: torch.Tensor, direction: float,
                 order: int, rtol: float, atol: float) -> float:
    """HNW I, p. 169: a starting step from the size of ``y0``, ``f0`` and a second derivative estimate.

    Costs one evaluation of ``func`` (``f1`` below). Returns ``|h|``.
    """
    with torch.no_grad():
        sc = atol + rtol * y0.abs()
        d0 = _rms(y0, sc)
        d1 = _rms(f0, sc)
        # (a) a first guess: make the explicit Euler increment 1% of |y0|.
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        # (b) one explicit Euler step, (c) estimate the second derivative from it.
        y1 = y0 + (direction * h0) * f0
        f1 = func(t0 + direction * h0, y1)
        d2 = _rms(f1 - f0, sc) / h0
        # (d) choose h1 so that h1**(p+1) * max(d1, d2) = 0.01.
        if max(d1, d2) <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
        # (e) but never more than a hundred times the first guess.
        return min(100 * h0, h1)


@dataclass
class StepSizeController:
    """Accept or reject a step from its error ratio and propose the next |h| (HNW (4.13)).

    ``h_new = h * min(ifactor, max(dfactor, safety * err ** (-1 / (q + 1))))``, where ``q`` is the
    order of the embedded (lower-order) solution, so that ``err ~ C h**(q+1)``. Right after a
    rejection the step may not grow (HNW, p. 168: "facmax = 1 after a rejected step").
    """

    error_order: int
    safety: float = SAFETY
    ifactor: float = IFACTOR
    dfactor: float = DFACTOR
    min_step: float = 0.0
    max_step: float = math.inf

    def __post_init__(self):
        self.exponent = -1.0 / (self.error_order + 1)
        self.last_rejected = False

    def factor(self, err: float) -> float:
        """The factor by which to scale the step just tried, given its error ratio ``err``."""
        if err == 0.0:
            grow = self.ifactor
        else:
            grow = self.safety * err ** self.exponent
        facmax = 1.0 if self.last_rejected else self.ifactor
        return min(facmax, max(self.dfactor, grow))

    def decide(self, h: float, err: float) -> tuple[bool, float]:
        """Return (accepted, next |h|) for a step of size ``|h|`` with error ratio ``err``."""
        if not math.isfinite(err):
            # The step overflowed: shrink as hard as allowed and try again.
            accepted, h_next = False, h * self.dfactor
        else:
            accepted = err <= 1.0
            h_next = h * self.factor(err)
        self.last_rejected = not accepted
        return accepted, min(self.max_step, max(self.min_step, h_next))
