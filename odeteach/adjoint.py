"""Gradients through an ODE solve by solving a second ODE backwards: the adjoint method.

For ``dz/dt = f(z(t), t, θ)`` and a loss ``L`` of the outputs ``z(t_0), …, z(t_N)``, the adjoint
``a(t) = ∂L/∂z(t)`` obeys (Chen et al. 2018, eqs. 4–5; Pontryagin et al. 1962)

    da/dt = -a(t)ᵀ ∂f/∂z,        d(∂L/∂θ)/dt = -a(t)ᵀ ∂f/∂θ,

started at ``t_N`` from ``a(t_N) = ∂L/∂z(t_N)`` and ``∂L/∂θ = 0``. Integrating the augmented
state ``[z, a, ∂L/∂θ]`` from ``t_N`` back to ``t_0`` (``z`` is recomputed backwards alongside,
so nothing of the forward pass is stored) gives ``∂L/∂z(t_0) = a(t_0)`` and ``∂L/∂θ``. With
several output times the backward solve goes one interval at a time and adds ``∂L/∂z(t_i)``
to ``a`` at each ``t_i``. The time gradients need no extra ODE:
``∂L/∂t_i = ∂L/∂z(t_i) · f(z(t_i), t_i)`` for ``i ≥ 1`` and ``∂L/∂t_0 = -a(t_0⁺) · f(z(t_0), t_0)``,
where ``a(t_0⁺)`` is the adjoint arriving at ``t_0`` (before the output ``z(t_0) = y0`` adds its own term).

:func:`odeint_adjoint` is a drop-in for ``torchdiffeq.odeint_adjoint``. :func:`solve_adjoint`
takes the same arguments and returns an :class:`AdjointSolution` whose ``backward_stats`` is
filled in when ``backward()`` runs, so a lesson can put forward NFE next to backward NFE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .inputs import StateFunc, check_inputs, check_method
from .integrate import Stats, integrate, solve

__all__ = ["odeint_adjoint", "solve_adjoint", "AdjointSolution", "adjoint_parameters"]


@dataclass
class AdjointSolution:
    """The result of :func:`solve_adjoint`.

    ``ys`` is differentiable (through the adjoint, not through the solver's steps); ``stats`` are
    the forward solve's. ``backward_stats`` is ``None`` until ``backward()`` has run through
    ``ys``, then it sums the backward solves' statistics: ``nfe`` counts every call of ``func``
    during backward (each step of the augmented ODE calls ``func`` once and back-propagates through
    that call once; with gradients for ``t`` add one call per output time). ``n_backward`` counts
    how many backward passes have been added up (normally 1).
    """

    ts: torch.Tensor
    ys: torch.Tensor | tuple[torch.Tensor, ...]
    stats: Stats
    method: str
    adjoint_method: str
    backward_stats: Stats | None = None
    n_backward: int = 0
    params: tuple[torch.Tensor, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        back = "not run yet" if self.backward_stats is None else f"nfe={self.backward_stats.nfe}"
        return (f"AdjointSolution(method={self.method!r}, forward nfe={self.stats.nfe}, "
                f"backward {back})")


def adjoint_parameters(func, adjoint_params=None) -> tuple[torch.Tensor, ...]:
    """The tensors whose gradients the backward pass computes.

    ``adjoint_params`` when given; otherwise ``func.parameters()`` for an ``nn.Module``. A plain
    function has no parameters we could find, so it needs ``adjoint_params`` (``()`` for none).
    Tensors that do not require grad are left out.
    """
    if adjoint_params is None:
        if isinstance(func, torch.nn.Module):
            adjoint_params = tuple(func.parameters())
        else:
            raise ValueError(
                f"odeint_adjoint cannot find the parameters of func ({type(func).__name__} is not a torch.nn.Module). "
                "Pass them explicitly, e.g. adjoint_params=(theta,), or adjoint_params=() if func has none "
                "and you only need gradients for y0 and t.")
    try:
        params = tuple(adjoint_params)
    except TypeError as exc:
        raise ValueError(f"adjoint_params must be a sequence of tensors; got {type(adjoint_params).__name__}.") from exc
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise ValueError(f"adjoint_params[{i}] must be a torch.Tensor; got {type(p).__name__}.")
    # The same tensor listed twice would get its gradient twice.
    seen, unique = set(), []
    for p in params:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            unique.append(p)
    return tuple(unique)


class _AugmentedDynamics:
    """The right-hand side of the backward ODE for the flat state ``[z, a, ∂L/∂θ]``."""

    def __init__(self, flat: StateFunc, params, n):
        self.flat = flat
        self.params = params
        self.n = n
        self.sizes = [n, n] + [p.numel() for p in params]

    def __call__(self, t, aug):
        z, a = aug[: self.n], aug[self.n: 2 * self.n]
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            f = self.flat(t, z)
            inputs = (z, *self.params)
            if f.requires_grad:
                vjps = torch.autograd.grad(f, inputs, -a, allow_unused=True)
            else:  # f depends on neither z nor θ
                vjps = (None,) * len(inputs)
        parts = [f.detach()]
        for x, v in zip(inputs, vjps):
            parts.append(torch.zeros(x.numel(), dtype=aug.dtype, device=aug.device) if v is None
                         else v.reshape(-1).to(aug.dtype))
        return torch.cat(parts)


class _AdjointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, y0, t, settings, handle, *params):
        with torch.no_grad():   # y0 and t are inputs.y0 and inputs.t, passed again so autograd sees them
            ys, handle.stats, _ = integrate(inputs)
        flat = inputs.func
        ctx.flat, ctx.settings, ctx.handle = flat, settings, handle
        ctx.save_for_backward(t, ys, *params)
        return ys

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_ys):
        t, ys, *params = ctx.saved_tensors
        flat, s, handle = ctx.flat, ctx.settings, ctx.handle
        need_t = ctx.needs_input_grad[2]
        n = ys.shape[1]
        dynamics = _AugmentedDynamics(flat, params, n)
        n_theta = sum(p.numel() for p in params)
        aug = torch.cat([ys[-1], grad_ys[-1], ys.new_zeros(n_theta)])
        time_grad = torch.zeros_like(t) if need_t else None
        stats = Stats()
        with torch.no_grad():
            for i in range(len(t) - 1, 0, -1):
                if need_t:  # ∂L/∂t_i = ∂L/∂z(t_i) · f(z(t_i), t_i)
                    time_grad[i] = torch.dot(flat(t[i], ys[i]), grad_ys[i]).to(t.dtype)
                    stats.nfe += 1
                back = solve(dynamics, aug, torch.stack((t[i], t[i - 1])), rtol=s["adjoint_rtol"],
                             atol=s["adjoint_atol"], method=s["adjoint_method"], options=s["adjoint_options"])
                stats = stats + back.stats
                aug = back.ys[-1]
                a_carried = aug[n: 2 * n]  # the adjoint just after t_{i-1}, before its own ∂L/∂z(t_{i-1})
                # Restart z from the stored forward output (as torchdiffeq does) and add ∂L/∂z(t_{i-1}).
                aug = torch.cat([ys[i - 1], aug[n: 2 * n] + grad_ys[i - 1], aug[2 * n:]])
            a0 = aug[n: 2 * n]
            if need_t and len(t) > 1:  # ∂L/∂t_0 = -a(t_0⁺) · f(z(t_0), t_0); z(t_0) = y0 itself does not move with t_0
                time_grad[0] = -torch.dot(flat(t[0], ys[0]), a_carried).to(t.dtype)
                stats.nfe += 1
        handle.backward_stats = stats if handle.backward_stats is None else handle.backward_stats + stats
        handle.n_backward += 1
        param_grads = []
        offset = 2 * n
        for p in params:
            param_grads.append(aug[offset: offset + p.numel()].view_as(p).to(p.dtype))
            offset += p.numel()
        return (None, a0, time_grad, None, None, *param_grads)


def solve_adjoint(func: Callable, y0, t, *, rtol: float = 1e-7, atol: float = 1e-9, method: str = "dopri5",
                  options: dict | None = None, adjoint_rtol: float | None = None, adjoint_atol: float | None = None,
                  adjoint_method: str | None = None, adjoint_options: dict | None = None,
                  adjoint_params=None) -> AdjointSolution:
    """Like :func:`odeint_adjoint`, but returns an :class:`AdjointSolution` with the solver's statistics.

    After ``loss(sol.ys).backward()``, ``sol.backward_stats`` holds the backward pass's NFE and steps.
    """
    params = adjoint_parameters(func, adjoint_params)
    inputs = check_inputs(func, y0, t, rtol, atol, method, options, flatten=True)   # the same checks as solve()
    adjoint_method = method if adjoint_method is None else adjoint_method
    check_method(adjoint_method, "adjoint_method")   # fail now, not in the middle of backward()
    if adjoint_options is None and adjoint_method == method:
        adjoint_options = options
    settings = dict(adjoint_rtol=rtol if adjoint_rtol is None else adjoint_rtol,
                    adjoint_atol=atol if adjoint_atol is None else adjoint_atol,
                    adjoint_method=adjoint_method, adjoint_options=adjoint_options)
    handle = AdjointSolution(ts=inputs.t, ys=None, stats=Stats(), method=method, adjoint_method=adjoint_method,
                             params=params)
    ys = _AdjointFunction.apply(inputs, inputs.y0, inputs.t, settings, handle, *params)
    handle.ys = inputs.func.split_outputs(ys)
    return handle


def odeint_adjoint(func: Callable, y0, t, *, rtol: float = 1e-7, atol: float = 1e-9, method: str = "dopri5",
                   options: dict | None = None, adjoint_rtol: float | None = None, adjoint_atol: float | None = None,
                   adjoint_method: str | None = None, adjoint_options: dict | None = None, adjoint_params=None):
    """Solve like :func:`odeteach.odeint`; back-propagate by the adjoint method, at O(1) memory in the steps.

    A drop-in for ``torchdiffeq.odeint_adjoint``. The forward solve builds no graph; ``backward()``
    integrates ``[z, a, ∂L/∂θ]`` from ``t[-1]`` back to ``t[0]``, one output interval at a time.

    Parameters
    ----------
    func, y0, t, rtol, atol, method, options : as for :func:`odeteach.odeint`.
    adjoint_rtol, adjoint_atol, adjoint_method : the backward solve's; default the forward's.
    adjoint_options : the backward solve's options; default the forward's when the method is the same.
    adjoint_params : the tensors to differentiate besides ``y0`` and ``t``; default ``func.parameters()``
        for an ``nn.Module``. A plain function needs them (``()`` for none): else ``ValueError``.

    Returns
    -------
    ``y`` at every time in ``t``: shape ``(len(t), *y0.shape)``, or a tuple for a tuple ``y0``.
    Parameters listed but unused by ``func`` get zero gradients.
    """
    return solve_adjoint(func, y0, t, rtol=rtol, atol=atol, method=method, options=options,
                         adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol, adjoint_method=adjoint_method,
                         adjoint_options=adjoint_options, adjoint_params=adjoint_params).ys
