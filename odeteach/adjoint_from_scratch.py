"""The adjoint method written out by hand, for lesson 3, and the references it is checked against.

:func:`scratch_adjoint` uses hand-written Jacobians and fixed RK4 steps both ways;
:func:`autograd_gradients` (through ``odeint_adjoint`` or backprop through ``odeint``) and
:func:`finite_difference_gradients` compute the same four gradients another way.

The backward pass integrates the article's full augmented state (Chen et al. 2018, appendix C,
Algorithm 2), with ``a(t) = ∂L/∂z(t)``:

    s = [z, a, a_θ, a_t],      ds/dt = [f, −aᵀ ∂f/∂z, −aᵀ ∂f/∂θ, −aᵀ ∂f/∂t],

from ``t1`` back to ``t0``, started at

    s(t1) = [z(t1), ∂L/∂z(t1), 0, −∂L/∂t1],      ∂L/∂t1 = a(t1)ᵀ f(z(t1), t1, θ).

Then ``a(t0) = ∂L/∂z(t0)``, ``a_θ(t0) = ∂L/∂θ`` and ``a_t(t0) = ∂L/∂t0``. The start of ``a_t`` has a
minus sign because ``a_t(t)`` is the gradient with respect to the *start time* of the integration
that remains after ``t`` (from the state ``z(t)``): at ``t = t1`` nothing remains, and starting the
remaining integration ``δ`` later means integrating for ``−δ``, which moves ``z(t1)`` by ``−δ f``.

For an autonomous field (``∂f/∂t = 0``) ``a_t`` stays constant, so ``∂L/∂t0 = −∂L/∂t1``.
:func:`scratch_adjoint` uses no autograd: the field brings its Jacobians (:class:`HandField`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .integrate import rk_step
from .tableaux import TABLEAUX

__all__ = ["HandField", "ScratchGradients", "driven_pendulum", "augmented_dynamics", "scratch_adjoint",
           "autograd_gradients", "finite_difference_gradients", "PENDULUM_PROBLEM", "GRADIENTS"]

# Lesson 3's problem: θ = (g/l, damping, forcing amplitude), z0 = (φ, φ'), t ∈ [t0, t1], L = |z(t1) − z*|².
PENDULUM_PROBLEM = {"theta": (2.0, 0.15, 0.8), "z0": (1.2, 0.0), "t0": 0.0, "t1": 3.0, "z_target": (0.0, 0.5)}
GRADIENTS = ("dL/dz0", "dL/dθ", "dL/dt0", "dL/dt1")


@dataclass(frozen=True)
class HandField:
    """A vector field ``f(t, z, θ)`` on a state ``z`` of shape ``(D,)``, with its Jacobians written by hand.

    ``f`` is written with torch operations, so autograd can check the hand-written Jacobians.
    ``jacobians(t, z, θ)`` returns ``(∂f/∂z, ∂f/∂θ, ∂f/∂t)`` of shapes ``(D, D)``, ``(D, P)``, ``(D,)``.
    """

    name: str
    f: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    jacobians: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple]


def driven_pendulum(frequency: float = 1.3) -> HandField:
    """φ'' = −θ₁ sin φ − θ₂ φ' + θ₃ cos(Ω t), state z = (φ, φ'), θ = (g/l, damping, forcing amplitude).

    With θ₃ = 0 the field does not depend on t (autonomous); otherwise it does.
    """
    omega = float(frequency)

    def f(t, z, theta):
        phi, v = z[..., 0], z[..., 1]
        return torch.stack((v, -theta[0] * torch.sin(phi) - theta[1] * v + theta[2] * torch.cos(omega * t)), dim=-1)

    def jacobians(t, z, theta):
        phi, v, t = float(z[0]), float(z[1]), float(t)
        th = [float(x) for x in theta]
        df_dz = torch.tensor([[0.0, 1.0], [-th[0] * math.cos(phi), -th[1]]], dtype=z.dtype)
        df_dtheta = torch.tensor([[0.0, 0.0, 0.0], [-math.sin(phi), -v, math.cos(omega * t)]], dtype=z.dtype)
        df_dt = torch.tensor([0.0, -th[2] * omega * math.sin(omega * t)], dtype=z.dtype)
        return df_dz, df_dtheta, df_dt

    return HandField(f"driven pendulum (Ω = {omega:g})", f, jacobians)


def augmented_dynamics(field: HandField, theta: torch.Tensor, t, s: torch.Tensor) -> torch.Tensor:
    """d/dt of ``s = [z (D), a (D), a_θ (P), a_t (1)]``: ``[f, −aᵀ ∂f/∂z, −aᵀ ∂f/∂θ, −aᵀ ∂f/∂t]``."""
    d = (s.numel() - theta.numel() - 1) // 2
    z, a = s[:d], s[d:2 * d]
    df_dz, df_dtheta, df_dt = field.jacobians(t, z, theta)
    return torch.cat((field.f(t, z, theta), -a @ df_dz, -a @ df_dtheta, (-a @ df_dt).reshape(1)))


@dataclass(frozen=True)
class ScratchGradients:
    """What :func:`scratch_adjoint` returns.

    ``dL_dt0`` is ``a_t(t0)``, integrated; ``a_t_start`` is ``a_t(t1) = −∂L/∂t1``. ``z_rebuilt`` is
    ``z(t0)`` as the backward pass reconstructed it (compare with ``z0``).
    """

    z1: torch.Tensor
    dL_dz0: torch.Tensor
    dL_dtheta: torch.Tensor
    dL_dt0: float
    dL_dt1: float
    a_t_start: float
    z_rebuilt: torch.Tensor

    def as_dict(self) -> dict:
        """``{"dL/dz0": …, "dL/dθ": …, "dL/dt0": …, "dL/dt1": …}``, as the reference functions return."""
        return dict(zip(GRADIENTS, (self.dL_dz0, self.dL_dtheta, self.dL_dt0, self.dL_dt1)))


def _rk4(rhs, t, y, h):
    return rk_step(rhs, torch.as_tensor(t, dtype=y.dtype), y, float(h), TABLEAUX["rk4"])[0]


def scratch_adjoint(field: HandField, theta, z0, t0: float, t1: float, loss_grad: Callable, n_steps: int = 400):
    """Gradients of ``L(z(t1))`` with respect to ``z0``, ``θ``, ``t0`` and ``t1`` by the adjoint method.

    Forward: ``n_steps`` RK4 steps from ``t0`` to ``t1``, keeping only the current state. Backward:
    ``n_steps`` RK4 steps of :func:`augmented_dynamics` from ``t1`` to ``t0``, started as the module
    docstring says. ``loss_grad(z1)`` returns ``∂L/∂z(t1)``. Returns a :class:`ScratchGradients`.
    """
    theta = torch.as_tensor(theta)
    z0 = torch.as_tensor(z0, dtype=theta.dtype)
    if z0.dim() != 1 or theta.dim() != 1:
        raise ValueError(f"scratch_adjoint works on one state vector and one parameter vector; got z0 of shape "
                         f"{tuple(z0.shape)} and theta of shape {tuple(theta.shape)}.")
    n_steps = int(n_steps)
    if n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps}.")
    t0, t1 = float(t0), float(t1)
    if t0 == t1:
        raise ValueError("t0 and t1 must differ: there is nothing to integrate.")
    h = (t1 - t0) / n_steps
    z = z0.clone()
    for k in range(n_steps):  # forward: only the current state is kept
        z = _rk4(lambda t, y: field.f(t, y, theta), t0 + k * h, z, h)
    a1 = torch.as_tensor(loss_grad(z), dtype=z.dtype).reshape(z.shape)
    dL_dt1 = float(a1 @ field.f(torch.tensor(t1, dtype=z.dtype), z, theta))
    s = torch.cat((z, a1, torch.zeros_like(theta), torch.tensor([-dL_dt1], dtype=z.dtype)))
    for k in range(n_steps):  # backward, t1 → t0, steps of −h
        s = _rk4(lambda t, y: augmented_dynamics(field, theta, t, y), t1 - k * h, s, -h)
    d, p = z.numel(), theta.numel()
    return ScratchGradients(z1=z, dL_dz0=s[d:2 * d], dL_dtheta=s[2 * d:2 * d + p], dL_dt0=float(s[-1]),
                            dL_dt1=dL_dt1, a_t_start=-dL_dt1, z_rebuilt=s[:d])


def _loss_at_end(field, theta, z0, t, loss, solver, **solver_kw):
    ys = solver(lambda tt, z: field.f(tt, z, theta), z0, t, **solver_kw)
    return loss(ys[-1])


def autograd_gradients(field: HandField, theta, z0, t0, t1, loss: Callable, solver, **solver_kw) -> dict:
    """The four gradients of ``loss(z(t1))`` by autograd through ``solver`` (``odeint`` or ``odeint_adjoint``).

    ``solver_kw`` go to the solver; ``odeint_adjoint`` gets ``adjoint_params=(θ,)``, since ``field.f`` is
    a plain function. Returns ``{"dL/dz0": …, "dL/dθ": …, "dL/dt0": …, "dL/dt1": …}``.
    """
    from .adjoint import odeint_adjoint

    theta = torch.as_tensor(theta).detach().clone().requires_grad_(True)
    z0 = torch.as_tensor(z0, dtype=theta.dtype).detach().clone().requires_grad_(True)
    t = torch.tensor([float(t0), float(t1)], dtype=theta.dtype, requires_grad=True)
    if solver is odeint_adjoint:
        solver_kw = {**solver_kw, "adjoint_params": (theta,)}
    _loss_at_end(field, theta, z0, t, loss, solver, **solver_kw).backward()
    return dict(zip(GRADIENTS, (z0.grad, theta.grad, float(t.grad[0]), float(t.grad[1]))))


def finite_difference_gradients(field: HandField, theta, z0, t0, t1, loss: Callable, solver, eps: float = 1e-6,
                                **solver_kw) -> tuple[dict, int]:
    """Central differences ``(L(x + ε) − L(x − ε)) / 2ε`` for every input; returns ``(gradients, number of solves)``."""
    theta = torch.as_tensor(theta)
    z0 = torch.as_tensor(z0, dtype=theta.dtype)
    inputs = {"dL/dz0": z0, "dL/dθ": theta, "dL/dt0": torch.tensor(float(t0), dtype=theta.dtype),
              "dL/dt1": torch.tensor(float(t1), dtype=theta.dtype)}
    n_solves = 0

    def L(changed):
        nonlocal n_solves
        n_solves += 1
        x = {**inputs, **changed}
        t = torch.stack((x["dL/dt0"], x["dL/dt1"]))
        with torch.no_grad():
            return float(_loss_at_end(field, x["dL/dθ"], x["dL/dz0"], t, loss, solver, **solver_kw))

    out = {}
    for key, x in inputs.items():
        e = torch.eye(x.numel(), dtype=x.dtype) * eps
        diffs = [(L({key: x + e[i].reshape(x.shape)}) - L({key: x - e[i].reshape(x.shape)})) / (2 * eps)
                 for i in range(x.numel())]
        out[key] = torch.tensor(diffs, dtype=x.dtype) if x.dim() else diffs[0]
    return out, n_solves
