"""Linear stability of explicit Runge–Kutta methods, computed from the tableau.

Apply a method with step h to the test equation dy/dt = λ y. One step multiplies y by the
*stability function* evaluated at z = h·λ:

    y_{n+1} = R(z) y_n,     R(z) = 1 + z bᵀ (I − z A)⁻¹ 𝟙

(HNW I, §IV.2, eq. (2.3) of Hairer–Wanner II). The numerical solution stays bounded when
|R(h·λ)| ≤ 1: the set of such z is the method's *stability region*. The exact solution decays
whenever Re λ < 0, so a step with h·λ outside the region makes the numerical solution grow
although the true one shrinks: "unstable at h·λ = …".

Nothing here is written per method: R comes from ``tableau.A`` and ``tableau.b``, so a new
tableau gets its region for free. For an explicit method A is strictly lower triangular and
(I − zA)⁻¹𝟙 is found by forward substitution, for a whole grid of z at once.

References: E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed.,
Springer 1996, §IV.2; Hairer–Nørsett–Wanner I, §II.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass

import numpy as np
import torch

from .problems import Problem
from .tableaux import TABLEAUX, Tableau

__all__ = [
    "stability_function", "stability_region", "max_stable_step", "real_stability_limit",
    "StabilityCheck", "check_step", "stiff_forced_decay",
]

# |R| may exceed 1 by rounding alone on the boundary itself (e.g. Euler at z = -2).
_BOUNDARY_SLACK = 1e-12
# An exit from the region closer to z = 0 than this counts as no stable step at all.
_TANGENT_Z = 1e-2


def _tableau(method) -> Tableau:
    if isinstance(method, Tableau):
        return method
    if isinstance(method, str) and method in TABLEAUX:
        return TABLEAUX[method]
    raise ValueError(f"Unknown method {method!r}: give a Tableau or one of {', '.join(TABLEAUX)}.")


def stability_function(method, z):
    """R(z) = 1 + z bᵀ(I − zA)⁻¹𝟙 for a tableau (or method name), at complex ``z`` of any shape.

    Returns a complex ndarray of the shape of ``z`` (a Python complex for a scalar ``z``).
    """
    tab = _tableau(method)
    z_arr = np.asarray(z, dtype=complex)
    # x = (I - zA)^{-1} 1 by forward substitution: x_i = 1 + z Σ_{j<i} A_ij x_j.
    xs = []
    for i in range(tab.stages):
        acc = np.zeros_like(z_arr)
        for j, a in tab.stage_terms[i]:
            acc = acc + a * xs[j]
        xs.append(1 + z_arr * acc)
    weighted = np.zeros_like(z_arr)
    for j, w in tab.b_terms:
        weighted = weighted + w * xs[j]
    R = 1 + z_arr * weighted
    return complex(R) if np.ndim(z) == 0 else R


def stability_region(method, re=(-5.0, 1.0), im=(-3.5, 3.5), n=241):
    """|R(z)| on a grid of the complex plane: returns ``(X, Y, abs_R)``, each ``(n, n)``.

    The stability region is where ``abs_R <= 1``; draw it with ``contourf(X, Y, abs_R, [0, 1])``.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2 grid points per axis; got {n}.")
    x = np.linspace(re[0], re[1], n)
    y = np.linspace(im[0], im[1], n)
    X, Y = np.meshgrid(x, y)
    return X, Y, np.abs(stability_function(method, X + 1j * Y))


def _amplification(method):
    """|R(z)| as a function of z, for a tableau, a method name or a stability function ``R`` itself."""
    if callable(method) and not isinstance(method, Tableau):
        return lambda z: np.abs(np.asarray(method(z), dtype=complex))
    tab = _tableau(method)
    return lambda z: np.abs(stability_function(tab, z))


def max_stable_step(method, lam: complex, z_limit: float = 50.0, n_scan: int = 5000) -> float:
    """The largest h such that every step in (0, h] keeps h·λ inside the stability region.

    ``method`` is a tableau, a method name, or a stability function ``R(z)`` (a callable that
    takes complex z, scalar or array). Scans the ray z = s·λ/|λ| outwards from 0 (in z, so the
    answer does not depend on the size of λ) up to ``|z| = z_limit``, refines the first exit by
    bisection and returns h = |z|/|λ|. Returns ``0.0`` when the region only touches the ray at 0
    (e.g. Euler on a purely imaginary λ: |1 + ih| > 1 for every h > 0) and ``math.inf`` when no
    exit is found (λ = 0).
    """
    amplification = _amplification(method)
    lam = complex(lam)
    if not (math.isfinite(lam.real) and math.isfinite(lam.imag)):
        raise ValueError(f"λ must be finite; got {lam}.")
    if lam == 0:
        return math.inf
    direction = lam / abs(lam)
    radii = np.linspace(0.0, z_limit, n_scan + 1)[1:]   # |z| along the ray through lam
    unstable = amplification(radii * direction) > 1 + _BOUNDARY_SLACK
    if not unstable.any():
        return math.inf
    k = int(np.argmax(unstable))
    lo, hi = (0.0 if k == 0 else radii[k - 1]), radii[k]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if amplification(mid * direction) > 1 + _BOUNDARY_SLACK:
            hi = mid
        else:
            lo = mid
    # An exit this close to 0 is the region touching the ray tangentially (|R| - 1 ~ |z|^(p+1)
    # falls below rounding slack near 0): no positive step is stable.
    if lo < _TANGENT_Z:
        return 0.0
    return lo / abs(lam)


def real_stability_limit(method) -> float:
    """Where the stability region meets the negative real axis: the largest stable h for λ = −1."""
    return max_stable_step(method, -1.0)


@dataclass(frozen=True)
class StabilityCheck:
    """Whether a step h is stable for the test equation dy/dt = λ y."""

    method: str
    h: float
    lam: complex
    z: complex            # h·λ
    amplification: float  # |R(h·λ)|: what one step multiplies |y| by
    stable: bool

    @property
    def message(self) -> str:
        z = _fmt_complex(self.z)
        if self.stable:
            return f"stable: |R(h·λ)| = {self.amplification:.3g} ≤ 1 at h·λ = {z}"
        exact = abs(cmath.exp(self.z))
        return (f"unstable at h·λ = {z}: |R(h·λ)| = {self.amplification:.3g} > 1, so {self.method} multiplies |y| by "
                f"{self.amplification:.3g} each step while the exact solution multiplies it by {exact:.3g}")


def _fmt_complex(z: complex) -> str:
    sign = "−" if z.imag < 0 else "+"
    return f"{z.real:.3g} {sign} {abs(z.imag):.3g}i"


def check_step(method, h: float, lam: complex) -> StabilityCheck:
    """Is the step ``h`` stable for dy/dt = λ y with this method? (the explorer's h·λ check)."""
    tab = _tableau(method)
    h = float(h)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"the step h must be a finite number > 0; got {h}.")
    lam = complex(lam)
    z = h * lam
    amp = abs(stability_function(tab, z))
    return StabilityCheck(tab.name, h, lam, z, amp, amp <= 1 + _BOUNDARY_SLACK)


def stiff_forced_decay(lam: float = -1000.0, t1: float = 2.0) -> Problem:
    """dy/dt = λ (y − cos t), y(0) = 0: a stiff problem for λ ≪ −1.

    After a transient of length ~1/|λ| the solution follows cos t closely and is as smooth as
    cos t, so accuracy alone would allow long steps; but every step of an explicit method must
    keep h·λ inside its stability region, h ≤ limit/|λ|.
    """
    lam = float(lam)
    if not (math.isfinite(lam) and lam < 0):
        raise ValueError(f"λ must be a finite negative number; got {lam}.")
    return Problem(f"stiff_forced_decay_{lam:g}", f"dy/dt = {lam:g} (y − cos t), y(0) = 0",
                   lambda t, y: lam * (y - torch.cos(t)), (0.0,), 0.0, float(t1))
