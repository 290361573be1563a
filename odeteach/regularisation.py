"""Regularised dynamics (Finlay et al. 2020, "How to train your neural ODE"): pay for how hard ``f`` is to solve.

A solver's cost depends on the path ``h(t)`` it must follow. Two integrals along that path measure how
hard it is:

* the kinetic energy ``E_K = ∫₀¹ ‖f(h(t), t)‖² dt``: fast, curved paths need small steps;
* the Jacobian's Frobenius norm ``E_J = ∫₀¹ ‖∂f/∂h‖²_F dt``: a stiff, quickly changing field needs small steps.

Training on ``loss + λ_K·E_K + λ_J·E_J`` favours straight, gentle paths that an adaptive solver crosses
in fewer steps and a fixed-step solver crosses more accurately. Both integrals are solved with the state,
as two more components: ``d E_K/dt = ‖f‖²`` and ``d E_J/dt = ‖εᵀ ∂f/∂h‖²``, whose expectation over a
noise ``ε`` with ``E[εεᵀ] = I`` is ``‖∂f/∂h‖²_F`` (Hutchinson's estimator; one vector–Jacobian product per
evaluation). Here each is the mean over the state's elements (not the sum), so that λ does not depend on
the layer's width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .validation import positive_number

__all__ = ["Regularisation", "RegularisedDynamics"]


@dataclass(frozen=True)
class Regularisation:
    """The weights ``λ_K`` (kinetic energy) and ``λ_J`` (Jacobian Frobenius norm) of the two penalties."""

    kinetic: float = 0.0
    jacobian: float = 0.0

    def __post_init__(self):
        positive_number("kinetic", self.kinetic, allow_zero=True)
        positive_number("jacobian", self.jacobian, allow_zero=True)

    def __bool__(self) -> bool:
        return self.kinetic > 0 or self.jacobian > 0

    def as_list(self) -> list[float]:
        return [float(self.kinetic), float(self.jacobian)]

    @classmethod
    def of(cls, value) -> "Regularisation":
        """``None`` (no penalty), a :class:`Regularisation`, or a pair ``(λ_K, λ_J)``."""
        if value is None:
            return cls()
        if isinstance(value, Regularisation):
            return value
        try:
            kinetic, jacobian = value
        except (TypeError, ValueError):
            raise ValueError(f"regularisation must be None or a pair (λ_K, λ_J), e.g. (0.1, 0.1); got {value!r}.") from None
        return cls(float(kinetic), float(jacobian))


class RegularisedDynamics(nn.Module):
    """``(h, E_K, E_J) ↦ (f(t, h), mean ‖f‖², mean ‖εᵀ ∂f/∂h‖²)``, row by row of a batch.

    ``func(t, h)`` must treat the rows of ``h`` independently (per-sample layers, as the classifier's
    GroupNorm dynamics do), so that one vector–Jacobian product gives every row its own ``εᵀ ∂f/∂h``.
    ``noise`` (the shape of ``h``) is drawn once per solve and held fixed along the path, as in FFJORD.
    Autograd is switched on inside, so the penalty's graph exists under the adjoint's no-grad forward too.
    """

    def __init__(self, func: nn.Module, noise: torch.Tensor):
        super().__init__()
        self.func = func
        self.noise = noise

    def forward(self, t, state):
        h = state[0]
        if not (torch.is_grad_enabled() and h.requires_grad):
            # the adjoint's forward solve runs without grad: h is then a view cut off from any graph
            h = h.detach().requires_grad_(True)
        with torch.enable_grad():
            f = self.func(t, h)
            vjp = torch.autograd.grad(f, h, self.noise, create_graph=True)[0]
        kinetic = f.pow(2).flatten(1).mean(1)
        jacobian = vjp.pow(2).flatten(1).mean(1)
        return f, kinetic, jacobian
