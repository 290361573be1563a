"""One explicit Runge–Kutta step for every tableau, and the two stepping loops that drive it.

``odeint`` is a drop-in for ``torchdiffeq.odeint`` for the methods in :mod:`odeteach.tableaux`;
``solve`` takes the same arguments and returns a :class:`Solution` that also carries the
solver's own statistics (NFE, steps accepted and rejected) and, on request, a trace of every
attempted step. Everything is ordinary autograd: gradients reach ``y0``, ``t`` and the
parameters of ``func``.

Read in this order: :func:`rk_step` (one step of any tableau), :func:`fixed_grid_loop` (steps on a
grid fixed in advance: euler, midpoint, heun, rk4) and :func:`adaptive_loop` (steps chosen by a
:class:`~odeteach.step_control.StepSizeController` from the embedded error estimate: bosh3, dopri5).
The inputs' checks live in :mod:`odeteach.inputs`, shared with the adjoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable

import torch

from .errors import SolverError
from .inputs import ADAPTIVE_OPTIONS, FIXED_OPTIONS, SolveInputs, StateFunc, check_inputs
from .step_control import StepSizeController, error_ratio, initial_step
from .tableaux import Tableau

__all__ = ["rk_step", "solve", "odeint", "Solution", "Stats", "StepRecord", "FIXED_OPTIONS", "ADAPTIVE_OPTIONS",
           "fixed_grid_loop", "adaptive_loop", "integrate"]

# A step that would end within this fraction of a step of the end is stretched to reach it
# (HNW's DOPRI5 code: "IF ((X+1.01D0*H-XEND)*POSNEG.GT.0.D0) H=XEND-X"), so no sliver of a step is left.
_STRETCH = 1.01
# A fixed-step grid point closer than this fraction of a step to an output time is dropped.
_GRID_MERGE = 1e-9


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Stats:
    """What the solver did. It counts these itself; ``func`` need not. ``a + b`` adds two solves' counts."""

    nfe: int = 0          # evaluations of func
    n_steps: int = 0      # attempted steps
    n_accepted: int = 0
    n_rejected: int = 0

    def __add__(self, other: "Stats") -> "Stats":
        if not isinstance(other, Stats):
            return NotImplemented
        return Stats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Stats)))


@dataclass
class StepRecord:
    """One attempted step, for plotting what the solver did."""

    t: float                 # where the step starts
    h: float                 # its (signed) size
    error_ratio: float | None  # error norm over tolerance; None for fixed-step methods
    accepted: bool
    stage_times: tuple[float, ...]  # t + c_i h


@dataclass
class Solution:
    """The result of :func:`solve`: ``ys[i]`` is the solution at ``ts[i]``."""

    ts: torch.Tensor
    ys: torch.Tensor | tuple[torch.Tensor, ...]
    stats: Stats
    method: str
    trace: list[StepRecord] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        shape = tuple(self.ys.shape) if isinstance(self.ys, torch.Tensor) else tuple(tuple(y.shape) for y in self.ys)
        stats = self.stats
        return (f"Solution(method={self.method!r}, ys shape {shape}, nfe={stats.nfe}, steps={stats.n_steps} "
                f"({stats.n_accepted} accepted, {stats.n_rejected} rejected))")


# --------------------------------------------------------------------------------------------
# The step


def _combine(y, h, terms, ks):
    """``y + h * sum_j w_j k_j`` over ``terms = ((j, w_j), ...)``; ``y=None`` means zero.

    With a float ``h`` and float weights this is a chain of fused ``add(…, alpha=h w_j)``; with a
    tensor ``h`` (when gradients must reach t) or tensor weights it is plain tensor arithmetic.
    Nothing is written in place, so autograd sees every operation.
    """
    if isinstance(h, float) and all(isinstance(w, float) for _, w in terms):
        out = y
        for j, w in terms:
            out = ks[j] * (h * w) if out is None else torch.add(out, ks[j], alpha=h * w)
        return out
    acc = None
    for j, w in terms:
        acc = ks[j] * w if acc is None else acc + ks[j] * w
    return h * acc if y is None else y + h * acc


def rk_step(func: Callable, t: torch.Tensor, y: torch.Tensor, h, tableau: Tableau, k1: torch.Tensor | None = None):
    """One step of the explicit Runge–Kutta method ``tableau`` from ``(t, y)`` with step ``h``.

    ``k_i = f(t + c_i h, y + h Σ_j A_ij k_j)`` and ``y_new = y + h Σ_i b_i k_i``.

    Returns ``(y_new, y_err, ks)``: ``y_err = h Σ_i b_err_i k_i`` is the embedded error estimate
    (``None`` for fixed-step methods) and ``ks`` are the stages. Pass ``k1 = f(t, y)`` when it is
    already known (FSAL) to save an evaluation. ``h`` is a float, or a 0-dim tensor when
    gradients must flow to the time points.
    """
    ks = [func(t, y) if k1 is None else k1]
    stage_time = {0.0: t}
    y_stage = y
    for i in range(1, tableau.stages):
        ci = tableau.c[i]
        if ci not in stage_time:
            stage_time[ci] = t + ci * h
        y_stage = _combine(y, h, tableau.stage_terms[i], ks)
        ks.append(func(stage_time[ci], y_stage))
    # With FSAL the last stage was evaluated at y_new itself.
    y_new = y_stage if tableau.fsal else _combine(y, h, tableau.b_terms, ks)
    if tableau.err_terms is None:
        return y_new, None, ks
    with torch.no_grad():
        y_err = _combine(None, h if isinstance(h, float) else h.detach(), tableau.err_terms, ks)
    return y_new, y_err, ks


def _interpolate(tableau: Tableau, y0, y1, ks, h, theta, f1):
    """The solution at ``t + θh`` inside an accepted step, without new evaluations of func.

    dopri5 uses its own continuous extension (order 4); other methods a cubic Hermite
    interpolant through ``(y0, f0)`` and ``(y1, f1)`` (order 3).
    """
    if tableau.dense is not None:
        terms = tuple((i, sum(coef * theta ** (p + 1) for p, coef in enumerate(row)))
                      for i, row in enumerate(tableau.dense) if any(row))
        return _combine(y0, h, terms, ks)
    h01 = theta * theta * (3 - 2 * theta)
    h10 = theta * (1 - theta) ** 2
    h11 = theta * theta * (theta - 1)
    return y0 + h01 * (y1 - y0) + h * (h10 * ks[0] + h11 * f1)


# --------------------------------------------------------------------------------------------
# The two loops


class _Times:
    """The output times three ways: floats for the loop's arithmetic, 0-dim tensors for func and autograd."""

    def __init__(self, t: torch.Tensor):
        self.floats = t.tolist()
        self.tensors = t.unbind(0)
        self.grad = t.requires_grad          # then h must be a tensor, so gradients reach t
        self.direction = 1.0 if self.floats[-1] > self.floats[0] else -1.0

    def at(self, value: float, index: int | None):
        """The tensor time for the float ``value``: output ``index`` itself, or an offset from t[0]."""
        return self.tensors[index] if index is not None else self.tensors[0] + (value - self.floats[0])


def _fixed_grid(t_out: list[float], step_size: float | None) -> tuple[list[float], list[int | None]]:
    """The fixed-step grid: output times, plus ``t0 + k h`` between them when a step size is given.

    Returns the grid and, for each grid point, the index of the output time it is (or None).
    Unlike torchdiffeq (which interpolates linearly between grid points), output times are
    grid points, so outputs carry the method's full order.
    """
    if step_size is None:
        return list(t_out), list(range(len(t_out)))
    t0, direction = t_out[0], math.copysign(1.0, t_out[-1] - t_out[0])
    grid, output_index = [t0], [0]
    merge = _GRID_MERGE * step_size
    k = 1
    for i in range(1, len(t_out)):
        while True:
            tk = t0 + direction * k * step_size
            if direction * (t_out[i] - tk) <= merge:
                break
            if direction * (tk - t_out[i - 1]) > merge:  # skip a point that sits on the previous output
                grid.append(tk)
                output_index.append(None)
            k += 1
        grid.append(t_out[i])
        output_index.append(i)
    return grid, output_index



def fixed_grid_loop(f: StateFunc, y0: torch.Tensor, t: torch.Tensor, tableau: Tableau, options: dict,
                    records: list[StepRecord] | None = None) -> tuple[list[torch.Tensor], Stats]:
    """Steps of a fixed-step method on a grid known in advance; returns the outputs at ``t`` and the Stats.

    The grid is ``t`` itself, or ``t0 + k h`` with ``options["step_size"] = h`` (plus the output times).
    Every step is accepted, so the only check is that the solution stays finite.
    """
    times = _Times(t)
    grid, output_index = _fixed_grid(times.floats, options.get("step_size"))
    n_steps, max_num_steps = len(grid) - 1, options["max_num_steps"]
    if n_steps > max_num_steps:
        raise SolverError(f"a step size of {options.get('step_size')} over [{grid[0]:g}, {grid[-1]:g}] needs {n_steps} steps, "
                          f"more than max_num_steps={max_num_steps}. Use a larger step_size, or raise options['max_num_steps'].")
    nfe_before = f.nfe
    outputs, y = [y0], y0
    t_now, t_now_tensor = grid[0], times.tensors[0]
    for t_next, index in zip(grid[1:], output_index[1:]):
        t_next_tensor = times.at(t_next, index)
        h_float = t_next - t_now
        h = (t_next_tensor - t_now_tensor) if times.grad else h_float
        y, _, _ = rk_step(f, t_now_tensor, y, h, tableau)
        with torch.no_grad():
            if not torch.isfinite(y).all():
                raise SolverError(
                    f"the solution became non-finite (NaN or inf) in the step from t={t_now:.6g} with h={h_float:.3g}. "
                    f"A fixed step that is too large for the problem's stability ({tableau.name}: see the stability "
                    "region) makes the solution blow up: use a smaller step_size, or an adaptive method.")
        if records is not None:
            records.append(StepRecord(t_now, h_float, None, True, tuple(t_now + c * h_float for c in tableau.c)))
        if index is not None:
            outputs.append(y)
        t_now, t_now_tensor = t_next, t_next_tensor
    return outputs, Stats(nfe=f.nfe - nfe_before, n_steps=n_steps, n_accepted=n_steps)


def adaptive_loop(f: StateFunc, y0: torch.Tensor, t: torch.Tensor, tableau: Tableau, rtol: float, atol: float,
                  options: dict, records: list[StepRecord] | None = None) -> tuple[list[torch.Tensor], Stats]:
    """Steps of an embedded pair, each accepted or rejected by the controller; returns the outputs and Stats.

    The solver proposes a step and its error estimate (:func:`rk_step`); the controller accepts or
    rejects it and chooses the next |h| (:class:`~odeteach.step_control.StepSizeController`). Output
    times inside an accepted step are filled in by the method's interpolant, at no extra cost.
    """
    times = _Times(t)
    t_end, direction, eps = times.floats[-1], times.direction, torch.finfo(t.dtype).eps
    controller = StepSizeController(tableau.error_order, options["safety"], options["ifactor"], options["dfactor"],
                                    options["min_step"], options["max_step"])
    nfe_before = f.nfe
    k1 = f(times.tensors[0], y0)
    with torch.no_grad():
        if not torch.isfinite(k1).all():
            raise SolverError(f"func returned a non-finite derivative (NaN or inf) at the initial time t={times.floats[0]:g}.")
    h_abs = options.get("first_step") or initial_step(f, times.tensors[0], y0, k1, direction, tableau.error_order, rtol, atol)
    h_abs = min(options["max_step"], max(options["min_step"], h_abs))
    stats, outputs, err = Stats(), [y0], None
    t_now, t_now_tensor, y = times.floats[0], times.tensors[0], y0
    while len(outputs) < len(times.floats):
        if stats.n_steps >= options["max_num_steps"]:
            raise SolverError(f"max_num_steps={options['max_num_steps']} reached at t={t_now:.6g} before the end t={t_end:g} "
                              f"({stats.n_accepted} accepted, {stats.n_rejected} rejected). Raise options['max_num_steps'], "
                              "loosen rtol/atol, or check whether the problem is stiff or blows up.")
        if direction * (t_now + direction * _STRETCH * h_abs - t_end) >= 0:   # reach the end, no sliver left
            t_next, t_next_tensor = t_end, times.tensors[-1]
        else:
            t_next, t_next_tensor = t_now + direction * h_abs, t_now_tensor + direction * h_abs
        if abs(t_next - t_now) <= 10 * eps * abs(t_now):  # HNW: 0.1|h| <= |t| uround
            raise _underflow(t_now, t_next - t_now, err)
        h_float = t_next - t_now
        h = (t_next_tensor - t_now_tensor) if times.grad else h_float
        y_new, y_err, ks = rk_step(f, t_now_tensor, y, h, tableau, k1)
        stats.n_steps += 1
        err = error_ratio(y_err, y, y_new, rtol, atol)
        accepted, h_abs_next = controller.decide(abs(h_float), err)
        if records is not None:
            records.append(StepRecord(t_now, h_float, err, accepted, tuple(t_now + c * h_float for c in tableau.c)))
        if not accepted:
            stats.n_rejected += 1
            _check_can_shrink(t_now, h_float, h_abs, h_abs_next, err, options["min_step"], eps)
            h_abs = h_abs_next
            continue
        stats.n_accepted += 1
        _outputs_in_step(outputs, times, f, tableau, (t_now, t_now_tensor, y), (t_next, t_next_tensor, y_new), h, ks)
        k1 = ks[-1] if tableau.fsal else None
        h_abs = h_abs_next
        t_now, t_now_tensor, y = t_next, t_next_tensor, y_new
    stats.nfe = f.nfe - nfe_before
    return outputs, stats


def _outputs_in_step(outputs, times: _Times, f, tableau: Tableau, start, end, h, ks) -> None:
    """Append the outputs at the times that the accepted step from ``start`` to ``end`` reached or passed."""
    (t_now, t_now_tensor, y), (t_next, t_next_tensor, y_new) = start, end
    first = len(outputs)
    last = first
    while last < len(times.floats) and times.direction * (times.floats[last] - t_next) <= 0:
        last += 1
    inside = [i for i in range(first, last) if times.floats[i] != t_next]
    if len(inside) > 1 and tableau.dense is not None and not times.grad:
        # Many outputs in one step (a plot's grid): the continuous extension at all of them in one product.
        thetas = [(times.floats[i] - t_now) / (t_next - t_now) for i in inside]
        inner = dict(zip(inside, _dense_outputs(tableau, y, ks, h, thetas).unbind(0)))
        outputs.extend(inner.get(i, y_new) for i in range(first, last))
        return
    f1 = ks[-1] if tableau.fsal else None
    for i in range(first, last):
        if times.floats[i] == t_next:
            outputs.append(y_new)
            continue
        if f1 is None:   # the Hermite interpolant needs f at the step's end
            f1 = f(t_next_tensor, y_new)
        theta = ((times.tensors[i] - t_now_tensor) / h) if times.grad else (times.floats[i] - t_now) / (t_next - t_now)
        outputs.append(_interpolate(tableau, y, y_new, ks, h, theta, f1))


def _dense_outputs(tableau: Tableau, y0, ks, h, thetas: list[float]) -> torch.Tensor:
    """:func:`_interpolate`'s continuous extension at several θ of one step at once: ``(len(thetas), *y0.shape)``.

    The weights ``w_i(θ) = Σ_p dense[i][p] θ^(p+1)`` form a matrix (outputs × stages), and the outputs are
    ``y0 + h W K`` with the stages ``K`` stacked: one matrix product instead of a sum per output.
    """
    rows = [i for i, row in enumerate(tableau.dense) if any(row)]
    coefficients = torch.tensor([tableau.dense[i] for i in rows], dtype=torch.float64)      # (stages, powers)
    powers = torch.tensor(thetas, dtype=torch.float64)[:, None] ** torch.arange(1, coefficients.shape[1] + 1)
    stages = torch.stack([ks[i] for i in rows])
    w = (h * powers @ coefficients.T).to(dtype=stages.dtype, device=stages.device)           # (outputs, stages)
    return y0 + torch.tensordot(w, stages, dims=1)


def _check_can_shrink(t_now, h_float, h_abs, h_abs_next, err, min_step, eps) -> None:
    """After a rejection: stop with a clear message when the step may not, or cannot, shrink further."""
    if h_abs <= min_step:
        raise SolverError(f"step size underflow at t={t_now:.10g}: a step of h={h_float:.3g} (options['min_step']="
                          f"{min_step:g}) was rejected (error ratio {err:.3g}) and may not shrink further. "
                          "Lower min_step, loosen rtol/atol, or check the ODE near this time.")
    if h_abs_next <= 10 * eps * abs(t_now):
        raise _underflow(t_now, h_float, err)


def _underflow(t_n, h, err):
    why = ("the last attempts gave non-finite values (NaN or inf): func may be undefined here, or the solution blows up"
           if err is not None and not math.isfinite(err) else
           "the solution may blow up near this time (a finite-time singularity), or the problem may be stiff")
    return SolverError(f"step size underflow at t={t_n:.10g}: h={h:.3g} is too small to make progress. "
                       f"{why[0].upper() + why[1:]}. Check the ODE near t={t_n:.6g}, shorten the time span, or loosen rtol/atol.")


# --------------------------------------------------------------------------------------------
# The public functions


def integrate(inputs: SolveInputs, trace: bool = False) -> tuple[torch.Tensor, Stats, list[StepRecord] | None]:
    """Run the loop that fits ``inputs.tableau`` on checked inputs; returns the stacked outputs, Stats and trace."""
    records = [] if trace else None
    f, y0, t = inputs.func, inputs.y0, inputs.t
    if t.numel() == 1:
        outputs, stats = [y0], Stats()
    elif inputs.tableau.adaptive:
        outputs, stats = adaptive_loop(f, y0, t, inputs.tableau, inputs.rtol, inputs.atol, inputs.options, records)
    else:
        outputs, stats = fixed_grid_loop(f, y0, t, inputs.tableau, inputs.options, records)
    return torch.stack(outputs), stats, records


def solve(func: Callable, y0, t, *, rtol: float = 1e-7, atol: float = 1e-9, method: str = "dopri5",
          options: dict | None = None, trace: bool = False) -> Solution:
    """Solve ``dy/dt = func(t, y)``, ``y(t[0]) = y0``, and report what the solver did.

    Takes the arguments of :func:`odeint` plus ``trace``. With ``trace=True`` the solution's
    ``.trace`` holds one :class:`StepRecord` per attempted step (accepted or rejected).
    """
    inputs = check_inputs(func, y0, t, rtol, atol, method, options)
    ys, stats, records = integrate(inputs, trace)
    return Solution(ts=inputs.t, ys=inputs.func.split_outputs(ys), stats=stats, method=method, trace=records)


def odeint(func: Callable, y0, t, *, rtol: float = 1e-7, atol: float = 1e-9, method: str = "dopri5",
           options: dict | None = None):
    """Solve ``dy/dt = func(t, y)`` from ``y(t[0]) = y0`` and return ``y`` at every time in ``t``.

    A drop-in for ``torchdiffeq.odeint`` with methods ``euler``, ``midpoint``, ``heun``, ``rk4``
    (fixed step), ``bosh3`` and ``dopri5`` (adaptive).

    Parameters
    ----------
    func : callable ``func(t, y) -> dy/dt`` (an ``nn.Module`` or a function), with ``t`` a 0-dim tensor.
    y0 : tensor of any shape, or a tuple of tensors.
    t : 1-D floating-point tensor, strictly increasing or strictly decreasing.
    rtol, atol : tolerances of the adaptive methods.
    method : one of ``odeteach.METHODS``.
    options : ``step_size`` for fixed-step methods; ``first_step``, ``max_num_steps``, ``safety``,
        ``ifactor``, ``dfactor``, ``min_step``, ``max_step`` for adaptive ones.

    Returns
    -------
    A tensor of shape ``(len(t), *y0.shape)`` (a tuple of such tensors for a tuple ``y0``).
    """
    return solve(func, y0, t, rtol=rtol, atol=atol, method=method, options=options).ys
