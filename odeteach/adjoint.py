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

from .errors import SolverError
from .integrate import Stats, solve
from .tableaux import METHODS, TABLEAUX

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


class _Flat:
    """``func`` on a flat state: splits the vector into the user's shapes and joins the result."""

    def __init__(self, func, shapes, tuple_state):
        self.func = func
        self.shapes = [torch.Size(s) for s in shapes]
        self.numels = [s.numel() for s in self.shapes]
        self.tuple_state = tuple_state

    def split(self, y):
        parts = tuple(p.view(s) for p, s in zip(torch.split(y, self.numels), self.shapes))
        return parts if self.tuple_state else parts[0]

    def __call__(self, t, y):
        out = self.func(t, self.split(y))
        outs = tuple(out) if self.tuple_state and isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(self.shapes) or any(not isinstance(o, torch.Tensor) or o.shape != s
                                                for o, s in zip(outs, self.shapes)):
            got = [tuple(o.shape) if isinstance(o, torch.Tensor) else type(o).__name__ for o in outs]
            raise SolverError(f"func(t, y) must return dy/dt with the shape of y: expected "
                              f"{[tuple(s) for s in self.shapes] if self.tuple_state else tuple(self.shapes[0])}, got "
                              f"{got if self.tuple_state else got[0]}.")
        return torch.cat([o.reshape(-1) for o in outs])


class _AugmentedDynamics:
    """The right-hand side of the backward ODE for the flat state ``[z, a, ∂L/∂θ]``."""

    def __init__(self, flat: _Flat, params, n):
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
    def forward(ctx, flat, y0, t, settings, handle, *params):
        with torch.no_grad():
            sol = solve(flat, y0, t, rtol=settings["rtol"], atol=settings["atol"], method=settings["method"],
                        options=settings["options"])
        ys = sol.ys
        handle.stats = sol.stats
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
                for name in ("nfe", "n_steps", "n_accepted", "n_rejected"):
                    setattr(stats, name, getattr(stats, name) + getattr(back.stats, name))
                aug = back.ys[-1]
                a_carried = aug[n: 2 * n]  # the adjoint just after t_{i-1}, before its own ∂L/∂z(t_{i-1})
                # Restart z from the stored forward output (as torchdiffeq does) and add ∂L/∂z(t_{i-1}).
                aug = torch.cat([ys[i - 1], aug[n: 2 * n] + grad_ys[i - 1], aug[2 * n:]])
            a0 = aug[n: 2 * n]
            if need_t and len(t) > 1:  # ∂L/∂t_0 = -a(t_0⁺) · f(z(t_0), t_0); z(t_0) = y0 itself does not move with t_0
                time_grad[0] = -torch.dot(flat(t[0], ys[0]), a_carried).to(t.dtype)
                stats.nfe += 1
        if handle.backward_stats is None:
            handle.backward_stats = stats
        else:
            for name in ("nfe", "n_steps", "n_accepted", "n_rejected"):
                setattr(handle.backward_stats, name, getattr(handle.backward_stats, name) + getattr(stats, name))
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
    tuple_state = isinstance(y0, (tuple, list))
    states = tuple(y0) if tuple_state else (y0,)
    if tuple_state and not states:
        raise SolverError("y0 is an empty tuple; give at least one state tensor.")
    for i, y in enumerate(states):
        if not isinstance(y, torch.Tensor):
            what = f"y0[{i}]" if tuple_state else "y0"
            raise SolverError(f"{what} must be a torch.Tensor (or a tuple of tensors); got {type(y).__name__}.")
    if tuple_state and any(y.dtype != states[0].dtype or y.device != states[0].device for y in states):
        raise SolverError("all tensors of a tuple state must share one dtype and device; got "
                          f"{[(str(y.dtype), str(y.device)) for y in states]}.")
    if not isinstance(t, torch.Tensor):
        try:
            t = torch.as_tensor(t)
        except Exception as exc:
            raise SolverError(f"t must be a 1-D tensor of times; got {type(t).__name__}.") from exc
    t = t.to(states[0].device)
    adjoint_method = method if adjoint_method is None else adjoint_method
    if adjoint_method not in TABLEAUX:  # fail now, not in the middle of backward()
        raise SolverError(f"Unknown adjoint_method {adjoint_method!r}. Valid methods: {', '.join(METHODS)}.")
    if adjoint_options is None and adjoint_method == method:
        adjoint_options = options
    settings = dict(rtol=rtol, atol=atol, method=method, options=options,
                    adjoint_rtol=rtol if adjoint_rtol is None else adjoint_rtol,
                    adjoint_atol=atol if adjoint_atol is None else adjoint_atol,
                    adjoint_method=adjoint_method, adjoint_options=adjoint_options)
    flat = _Flat(func, [y.shape for y in states], tuple_state)
    y0_flat = torch.cat([y.reshape(-1) for y in states])
    handle = AdjointSolution(ts=t, ys=None, stats=Stats(), method=method, adjoint_method=adjoint_method, params=params)
    ys = _AdjointFunction.apply(flat, y0_flat, t, settings, handle, *params)
    if tuple_state:
        handle.ys = tuple(part.reshape(len(t), *y.shape)
                          for part, y in zip(torch.split(ys, flat.numels, dim=1), states))
    else:
        handle.ys = ys.reshape(len(t), *states[0].shape)
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
