"""Initial value problems for the lessons, tests and benchmarks, most with exact solutions.

Each :class:`Problem` is callable as ``func(t, y)`` and works on a state of shape ``(D,)`` or a
batch ``(..., D)``. Where the solution is known in closed form, ``exact(t)`` returns it with
shape ``(len(t), D)``; ``y_end`` is the exact state at ``t1`` when only that is known.

Sources: the DETEST set (Hull, Enright, Fellen, Sedgwick, "Comparing numerical methods for
ordinary differential equations", SIAM J. Numer. Anal. 9 (1972) 603–637), problems A2, A3 and
D (two-body orbits); the Arenstorf orbit and the Van der Pol oscillator from Hairer–Nørsett–
Wanner I, §II.0 and §II.10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

__all__ = [
    "Problem", "exponential_decay", "damped_spiral", "harmonic_oscillator", "detest_a2", "detest_a3",
    "kepler", "arenstorf", "van_der_pol", "lotka_volterra", "blow_up",
]


@dataclass(frozen=True)
class Problem:
    """An initial value problem ``dy/dt = rhs(t, y)``, ``y(t0) = y0``, on ``[t0, t1]``."""

    name: str
    description: str
    rhs: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    y0: tuple[float, ...]
    t0: float
    t1: float
    exact_fn: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)
    y_end: tuple[float, ...] | None = None

    def __call__(self, t, y):
        return self.rhs(t, y)

    @property
    def dim(self) -> int:
        return len(self.y0)

    def initial(self, dtype=torch.float64, device=None) -> torch.Tensor:
        return torch.tensor(self.y0, dtype=dtype, device=device)

    def times(self, n: int = 2, dtype=torch.float64, device=None) -> torch.Tensor:
        return torch.linspace(self.t0, self.t1, n, dtype=dtype, device=device)

    @property
    def has_exact(self) -> bool:
        return self.exact_fn is not None

    def exact(self, t: torch.Tensor) -> torch.Tensor:
        """The exact solution at times ``t`` (shape ``(len(t), D)``)."""
        if self.exact_fn is None:
            raise ValueError(f"The problem {self.name!r} has no closed-form solution; compare with a tight-tolerance solve instead.")
        return self.exact_fn(torch.as_tensor(t, dtype=torch.float64)).to(torch.as_tensor(t).dtype)

    def exact_end(self, dtype=torch.float64) -> torch.Tensor:
        """The exact state at ``t1``."""
        if self.y_end is not None:
            return torch.tensor(self.y_end, dtype=dtype)
        return self.exact(torch.tensor([self.t1], dtype=dtype))[0]


def _linear_2d(name, description, a, b, t1):
    """dy/dt = M y with M = [[a, -b], [b, a]]: y(t) = e^{a t} R(b t) y0, a rotation R."""
    def rhs(t, y):
        y1, y2 = y[..., 0], y[..., 1]
        return torch.stack((a * y1 - b * y2, b * y1 + a * y2), dim=-1)

    def exact(t):
        r, th = torch.exp(a * t), b * t
        return torch.stack((r * torch.cos(th), r * torch.sin(th)), dim=-1)

    return Problem(name, description, rhs, (1.0, 0.0), 0.0, t1, exact)


def exponential_decay(lam: float = -1.0, t1: float = 2.0) -> Problem:
    """dy/dt = λ y, y(0) = 1: y(t) = e^{λ t}. The test equation of stability theory."""
    return Problem("exponential_decay", f"dy/dt = {lam:g} y", lambda t, y: lam * y, (1.0,), 0.0, t1,
                   lambda t: torch.exp(lam * t)[:, None])


damped_spiral = _linear_2d("damped_spiral", "a damped spiral: dy/dt = [[-0.1, -1], [1, -0.1]] y", -0.1, 1.0, 10.0)
harmonic_oscillator = _linear_2d("harmonic_oscillator", "the harmonic oscillator: y1' = -y2, y2' = y1", 0.0, 1.0, 10.0)

detest_a2 = Problem("detest_a2", "DETEST A2: dy/dt = -y³/2, y(0) = 1", lambda t, y: -0.5 * y ** 3, (1.0,), 0.0, 20.0,
                    lambda t: (1.0 / torch.sqrt(1.0 + t))[:, None])
detest_a3 = Problem("detest_a3", "DETEST A3: dy/dt = y cos t, y(0) = 1", lambda t, y: y * torch.cos(t), (1.0,), 0.0, 20.0,
                    lambda t: torch.exp(torch.sin(t))[:, None])


def kepler(e: float = 0.5, t1: float = 20.0) -> Problem:
    """DETEST D-class: a two-body orbit of eccentricity e; exact through Kepler's equation."""
    def rhs(t, y):
        x, yy, vx, vy = y[..., 0], y[..., 1], y[..., 2], y[..., 3]
        r3 = (x * x + yy * yy) ** 1.5
        return torch.stack((vx, vy, -x / r3, -yy / r3), dim=-1)

    def exact(t):
        E = t.clone()  # eccentric anomaly: solve E - e sin E = t by Newton's method
        for _ in range(50):
            E = E - (E - e * torch.sin(E) - t) / (1 - e * torch.cos(E))
        s, c = torch.sin(E), torch.cos(E)
        q, d = math.sqrt(1 - e * e), 1 - e * torch.cos(E)
        return torch.stack((c - e, q * s, -s / d, q * c / d), dim=-1)

    return Problem(f"kepler_e{e:g}", f"two-body orbit, eccentricity {e:g} (DETEST D)", rhs,
                   (1 - e, 0.0, 0.0, math.sqrt((1 + e) / (1 - e))), 0.0, t1, exact)


_MU = 0.012277471
_ARENSTORF_T = 17.0652165601579625588917206249


def _arenstorf_rhs(t, y):
    y1, y2, v1, v2 = y[..., 0], y[..., 1], y[..., 2], y[..., 3]
    mu, nu = _MU, 1 - _MU
    d1 = ((y1 + mu) ** 2 + y2 ** 2) ** 1.5
    d2 = ((y1 - nu) ** 2 + y2 ** 2) ** 1.5
    a1 = y1 + 2 * v2 - nu * (y1 + mu) / d1 - mu * (y1 - nu) / d2
    a2 = y2 - 2 * v1 - nu * y2 / d1 - mu * y2 / d2
    return torch.stack((v1, v2, a1, a2), dim=-1)


_ARENSTORF_Y0 = (0.994, 0.0, 0.0, -2.00158510637908252240537862224)
arenstorf = Problem("arenstorf", "the Arenstorf orbit (HNW I, §II.0): periodic, so y(T) = y(0)", _arenstorf_rhs,
                    _ARENSTORF_Y0, 0.0, _ARENSTORF_T, None, _ARENSTORF_Y0)


def van_der_pol(mu: float = 1.0, t1: float = 10.0) -> Problem:
    """The Van der Pol oscillator y1'' = μ (1 - y1²) y1' - y1, a limit cycle; no closed form."""
    def rhs(t, y):
        # unbind: one view op, not two index ops; torch.rsub(a, 1) = 1 - a without Tensor.__rsub__'s Python
        # wrapper. Each saves a few µs a call, and an adaptive solve calls rhs thousands of times.
        y1, y2 = y.unbind(-1)
        return torch.stack((y2, mu * torch.rsub(y1 * y1, 1) * y2 - y1), dim=-1)

    return Problem(f"van_der_pol_mu{mu:g}", f"Van der Pol, μ = {mu:g}", rhs, (2.0, 0.0), 0.0, t1)


def lotka_volterra(a=1.5, b=1.0, c=3.0, d=1.0, t1: float = 10.0) -> Problem:
    """Predator and prey: x' = a x - b x y, y' = -c y + d x y; no closed form."""
    def rhs(t, y):
        x, p = y[..., 0], y[..., 1]
        return torch.stack((a * x - b * x * p, -c * p + d * x * p), dim=-1)

    return Problem("lotka_volterra", "Lotka–Volterra predator and prey", rhs, (1.0, 1.0), 0.0, t1)


blow_up = Problem("blow_up", "dy/dt = y², y(0) = 1: y = 1/(1 - t) blows up at t = 1", lambda t, y: y * y, (1.0,), 0.0, 0.9,
                  lambda t: (1.0 / (1.0 - t))[:, None])
