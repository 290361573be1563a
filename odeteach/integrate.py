"""One explicit Runge–Kutta step for every tableau, and one stepping loop for every method.

``odeint`` is a drop-in for ``torchdiffeq.odeint`` for the methods in :mod:`odeteach.tableaux`;
``solve`` takes the same arguments and returns a :class:`Solution` that also carries the
solver's own statistics (NFE, steps accepted and rejected) and, on request, a trace of every
attempted step. Everything is ordinary autograd: gradients reach ``y0``, ``t`` and the
parameters of ``func``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .errors import SolverError
from .step_control import StepSizeController, initial_step, error_ratio, SAFETY, IFACTOR, DFACTOR
from .tableaux import METHODS, TABLEAUX, Tableau

__all__ = ["rk_step", "solve", "odeint", "Solution", "Stats", "StepRecord", "FIXED_OPTIONS", "ADAPTIVE_OPTIONS"]

# Options each kind of method understands, with a one-line meaning for error messages and docs.
FIXED_OPTIONS = {
    "step_size": "the step h; without it the steps are the intervals of t itself",
    "max_num_steps": "the most steps allowed before giving up (default 100000)",
}
ADAPTIVE_OPTIONS = {
    "first_step": "the first step's |h|; without it, chosen as in Hairer–Nørsett–Wanner II.4",
    "max_num_steps": "the most attempted steps before giving up (default 100000)",
    "safety": f"safety factor of the step-size controller (default {SAFETY})",
    "ifactor": f"the most a step may grow at once (default {IFACTOR})",
    "dfactor": f"the most a step may shrink at once (default {DFACTOR})",
    "min_step": "the smallest |h| allowed (default 0)",
    "max_step": "the largest |h| allowed (default inf)",
}
DEFAULT_MAX_NUM_STEPS = 100_000

# A step that would end within this fraction of a step of the end is stretched to reach it
# (HNW's DOPRI5 code: "IF ((X+1.01D0*H-XEND)*POSNEG.GT.0.D0) H=XEND-X"), so no sliver of a step is left.
_STRETCH = 1.01
# A fixed-step grid point closer than this fraction of a step to an output time is dropped.
_GRID_MERGE = 1e-9


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Stats:
    """What the solver did. It counts these itself; ``func`` need not."""

    nfe: int = 0          # evaluations of func
    n_steps: int = 0      # attempted steps
    n_accepted: int = 0
    n_rejected: int = 0


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
        s = self.stats
        return (f"Solution(method={self.method!r}, ys shape {shape}, nfe={s.nfe}, steps={s.n_steps} "
                f"({s.n_accepted} accepted, {s.n_rejected} rejected))")


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
# Input checks


def _as_time(t, device) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        try:
            t = torch.as_tensor(t)
        except Exception as exc:
            raise SolverError(f"t must be a 1-D tensor of times, e.g. torch.linspace(0, 1, 11); got {type(t).__name__}.") from exc
    if not t.is_floating_point():
        raise SolverError(f"t must be floating point, but it has dtype {t.dtype}. "
                          "Write e.g. torch.tensor([0., 1.]) or t.double().")
    if t.ndim != 1:
        raise SolverError(f"t must be 1-D (a sequence of times), but it has shape {tuple(t.shape)}.")
    if t.numel() == 0:
        raise SolverError("t is empty: give at least the initial time, e.g. torch.tensor([0., 1.]).")
    with torch.no_grad():
        if not torch.isfinite(t).all():
            raise SolverError(f"t must be finite, but it holds {t.tolist()}.")
        if t.numel() > 1:
            dt = t[1:] - t[:-1]
            if (dt == 0).any():
                i = int((dt == 0).nonzero()[0])
                raise SolverError(f"t has a repeated time {t[i].item()} at positions {i} and {i + 1}; "
                                  "times must be strictly increasing or strictly decreasing.")
            if not ((dt > 0).all() or (dt < 0).all()):
                raise SolverError("t must be strictly increasing or strictly decreasing (monotonic); "
                                  f"it goes up and down: {t.tolist()[:8]}{' …' if t.numel() > 8 else ''}. Sort it first.")
    return t.to(device)


def _check_state(y, what="y0") -> None:
    if not isinstance(y, torch.Tensor):
        raise SolverError(f"{what} must be a torch.Tensor (or a tuple of tensors); got {type(y).__name__}. "
                          "Wrap numbers with torch.tensor([...]).")
    if not y.is_floating_point():
        raise SolverError(f"{what} must be floating point (float32 or float64), but it has dtype {y.dtype}. "
                          "Use y0.float() or y0.double().")
    with torch.no_grad():
        if not torch.isfinite(y).all():
            raise SolverError(f"{what} holds NaN or inf values; the initial state must be finite.")


def _positive_number(name, value, *, allow_zero=False, allow_inf=False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise SolverError(f"{name} must be a number; got {value!r}.") from exc
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero) or (math.isinf(value) and not allow_inf):
        need = "≥ 0" if allow_zero else "> 0"
        raise SolverError(f"{name} must be a finite number {need}; got {value}.")
    return value


def _check_options(method: str, tableau: Tableau, options) -> dict:
    options = {} if options is None else dict(options)
    valid = ADAPTIVE_OPTIONS if tableau.adaptive else FIXED_OPTIONS
    other = FIXED_OPTIONS if tableau.adaptive else ADAPTIVE_OPTIONS
    for key in options:
        if key not in valid:
            kind = "adaptive" if tableau.adaptive else "fixed-step"
            why = (f" It applies to {'fixed-step' if tableau.adaptive else 'adaptive'} methods only."
                   if key in other else "")
            raise SolverError(f"Unknown option {key!r} for the {kind} method {method!r}.{why} "
                              f"Valid options: {', '.join(sorted(valid))}.")
    out = {}
    if "step_size" in options and options["step_size"] is not None:
        out["step_size"] = _positive_number("options['step_size']", options["step_size"])
    max_steps = options.get("max_num_steps", DEFAULT_MAX_NUM_STEPS)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise SolverError(f"options['max_num_steps'] must be a positive integer; got {max_steps!r}.")
    out["max_num_steps"] = max_steps
    if tableau.adaptive:
        if options.get("first_step") is not None:
            out["first_step"] = _positive_number("options['first_step']", options["first_step"])
        out["safety"] = _positive_number("options['safety']", options.get("safety", SAFETY))
        out["ifactor"] = _positive_number("options['ifactor']", options.get("ifactor", IFACTOR))
        out["dfactor"] = _positive_number("options['dfactor']", options.get("dfactor", DFACTOR))
        out["min_step"] = _positive_number("options['min_step']", options.get("min_step", 0.0), allow_zero=True)
        out["max_step"] = _positive_number("options['max_step']", options.get("max_step", math.inf), allow_inf=True)
        if out["safety"] > 1:
            raise SolverError(f"options['safety'] must be in (0, 1]; got {out['safety']}.")
        if out["ifactor"] < 1:
            raise SolverError(f"options['ifactor'] must be ≥ 1 (it bounds growth); got {out['ifactor']}.")
        if out["dfactor"] > 1:
            raise SolverError(f"options['dfactor'] must be in (0, 1] (it bounds shrinking); got {out['dfactor']}.")
        if out["min_step"] > out["max_step"]:
            raise SolverError(f"options['min_step'] ({out['min_step']}) is larger than options['max_step'] ({out['max_step']}).")
    return out


class _Func:
    """Wraps the user's func: counts evaluations, checks the first output, joins tuple states."""

    def __init__(self, func, shapes, numels, tuple_state):
        self.func = func
        self.shapes = shapes
        self.numels = numels
        self.tuple_state = tuple_state
        self.nfe = 0
        self.checked = False

    def split(self, y):
        return tuple(part.view(shape) for part, shape in zip(torch.split(y, self.numels), self.shapes))

    def __call__(self, t, y):
        self.nfe += 1
        if self.tuple_state:
            out = self.func(t, self.split(y))
            if not self.checked:
                self._check(out)
            return torch.cat([o.reshape(-1) for o in out])
        out = self.func(t, y)
        if not self.checked:
            self._check(out)
        return out

    def _check(self, out):
        if self.tuple_state:
            if not isinstance(out, (tuple, list)) or len(out) != len(self.shapes):
                raise SolverError(f"func must return a tuple of {len(self.shapes)} tensors (one per state tensor); "
                                  f"got {type(out).__name__}.")
            got = [tuple(o.shape) if isinstance(o, torch.Tensor) else type(o).__name__ for o in out]
        else:
            if not isinstance(out, torch.Tensor):
                raise SolverError(f"func(t, y) must return a tensor dy/dt; got {type(out).__name__}.")
            got = [tuple(out.shape)]
        want = [tuple(s) for s in self.shapes]
        if got != want:
            raise SolverError(f"func(t, y) must return dy/dt with the shape of y: expected {want if self.tuple_state else want[0]}, "
                              f"got {got if self.tuple_state else got[0]}.")
        self.checked = True


# --------------------------------------------------------------------------------------------
# The loop


def _fixed_grid(t_out: list[float], step_size: float | None) -> tuple[list[float], list[int | None]]:
    """The fixed-step grid: output times, plus ``t0 + k h`` between them when a step size is given.

    Returns the grid and, for each grid point, the index of the output time it is (or None).
    Unlike torchdiffeq (which interpolates linearly between grid points), output times are
    grid points, so outputs carry the method's full order.
    """
    if step_size is None:
        return list(t_out), list(range(len(t_out)))
    t0, direction = t_out[0], math.copysign(1.0, t_out[-1] - t_out[0])
    grid, owner = [t0], [0]
    merge = _GRID_MERGE * step_size
    k = 1
    for i in range(1, len(t_out)):
        while True:
            tk = t0 + direction * k * step_size
            if direction * (t_out[i] - tk) <= merge:
                break
            if direction * (tk - t_out[i - 1]) > merge:  # skip a point that sits on the previous output
                grid.append(tk)
                owner.append(None)
            k += 1
        grid.append(t_out[i])
        owner.append(i)
    return grid, owner


def _solve_flat(f: _Func, y0: torch.Tensor, t: torch.Tensor, tableau: Tableau, rtol: float, atol: float,
                opts: dict, trace: bool):
    """Integrate the (single-tensor) state ``y0`` over ``t``; returns (list of outputs, Stats, trace)."""
    time_grad = t.requires_grad
    t_f = t.tolist()
    t_tensors = t.unbind(0)
    n_out = len(t_f)
    direction = 1.0 if t_f[-1] > t_f[0] else -1.0
    eps = torch.finfo(t.dtype).eps
    stats = Stats()
    records: list[StepRecord] | None = [] if trace else None
    outputs = [y0]
    max_num_steps = opts["max_num_steps"]

    if tableau.adaptive:
        controller = StepSizeController(tableau.error_order, opts["safety"], opts["ifactor"], opts["dfactor"],
                                        opts["min_step"], opts["max_step"])
        k1 = f(t_tensors[0], y0)
        with torch.no_grad():
            if not torch.isfinite(k1).all():
                raise SolverError(f"func returned a non-finite derivative (NaN or inf) at the initial time t={t_f[0]:g}.")
        h_abs = opts.get("first_step")
        if h_abs is None:
            h_abs = initial_step(f, t_tensors[0], y0, k1, direction, tableau.error_order, rtol, atol)
        h_abs = min(opts["max_step"], max(opts["min_step"], h_abs))
    else:
        grid, owner = _fixed_grid(t_f, opts.get("step_size"))
        if len(grid) - 1 > max_num_steps:
            raise SolverError(f"a step size of {opts.get('step_size')} over [{t_f[0]:g}, {t_f[-1]:g}] needs {len(grid) - 1} steps, "
                              f"more than max_num_steps={max_num_steps}. Use a larger step_size, or raise options['max_num_steps'].")
        k1 = None

    t_n, tt_n, y = t_f[0], t_tensors[0], y0
    out_i, grid_i = 1, 0
    last_err = None
    while out_i < n_out:
        if stats.n_steps >= max_num_steps:
            raise SolverError(f"max_num_steps={max_num_steps} reached at t={t_n:.6g} before the end t={t_f[-1]:g} "
                              f"({stats.n_accepted} accepted, {stats.n_rejected} rejected). Raise options['max_num_steps'], "
                              "loosen rtol/atol, or check whether the problem is stiff or blows up.")
        # Where this step ends: as a float for the controller, as a tensor for func and autograd.
        if tableau.adaptive:
            if direction * (t_n + direction * _STRETCH * h_abs - t_f[-1]) >= 0:
                t_next, tt_next = t_f[-1], t_tensors[-1]
            else:
                t_next = t_n + direction * h_abs
                tt_next = tt_n + direction * h_abs
            if abs(t_next - t_n) <= 10 * eps * abs(t_n):  # HNW: 0.1|h| <= |t| uround
                raise _underflow(t_n, t_next - t_n, last_err)
        else:
            t_next = grid[grid_i + 1]
            tt_next = t_tensors[owner[grid_i + 1]] if owner[grid_i + 1] is not None else t_tensors[0] + (t_next - t_f[0])
        h_float = t_next - t_n
        h = (tt_next - tt_n) if time_grad else h_float

        y_new, y_err, ks = rk_step(f, tt_n, y, h, tableau, k1)
        stats.n_steps += 1

        if tableau.adaptive:
            err = error_ratio(y_err, y, y_new, rtol, atol)
            last_err = err
            accepted, h_abs_next = controller.decide(abs(h_float), err)
        else:
            err = None
            accepted = True
            with torch.no_grad():
                if not torch.isfinite(y_new).all():
                    raise SolverError(
                        f"the solution became non-finite (NaN or inf) in the step from t={t_n:.6g} with h={h_float:.3g}. "
                        f"A fixed step that is too large for the problem's stability ({tableau.name}: see the stability "
                        "region) makes the solution blow up: use a smaller step_size, or an adaptive method.")
        if records is not None:
            records.append(StepRecord(t_n, h_float, err, accepted, tuple(t_n + c * h_float for c in tableau.c)))

        if not accepted:
            stats.n_rejected += 1
            if h_abs <= opts["min_step"]:
                raise SolverError(f"step size underflow at t={t_n:.10g}: a step of h={h_float:.3g} (options['min_step']="
                                  f"{opts['min_step']:g}) was rejected (error ratio {err:.3g}) and may not shrink further. "
                                  "Lower min_step, loosen rtol/atol, or check the ODE near this time.")
            if h_abs_next <= 10 * eps * abs(t_n):
                raise _underflow(t_n, h_float, err)
            h_abs = h_abs_next
            continue

        stats.n_accepted += 1
        # Outputs that this step reached or passed.
        if tableau.adaptive:
            f1 = ks[-1] if tableau.fsal else None
            while out_i < n_out and direction * (t_f[out_i] - t_next) <= 0:
                if t_f[out_i] == t_next:
                    outputs.append(y_new)
                else:
                    if f1 is None:
                        f1 = f(tt_next, y_new)
                    theta = ((t_tensors[out_i] - tt_n) / h) if time_grad else (t_f[out_i] - t_n) / h_float
                    outputs.append(_interpolate(tableau, y, y_new, ks, h, theta, f1))
                out_i += 1
            k1 = ks[-1] if tableau.fsal else None
            h_abs = h_abs_next
        else:
            grid_i += 1
            if owner[grid_i] is not None:
                outputs.append(y_new)
                out_i += 1
        t_n, tt_n, y = t_next, tt_next, y_new

    stats.nfe = f.nfe
    return outputs, stats, records


def _underflow(t_n, h, err):
    why = ("the last attempts gave non-finite values (NaN or inf): func may be undefined here, or the solution blows up"
           if err is not None and not math.isfinite(err) else
           "the solution may blow up near this time (a finite-time singularity), or the problem may be stiff")
    return SolverError(f"step size underflow at t={t_n:.10g}: h={h:.3g} is too small to make progress. "
                       f"{why[0].upper() + why[1:]}. Check the ODE near t={t_n:.6g}, shorten the time span, or loosen rtol/atol.")


def solve(func: Callable, y0, t, *, rtol: float = 1e-7, atol: float = 1e-9, method: str = "dopri5",
          options: dict | None = None, trace: bool = False) -> Solution:
    """Solve ``dy/dt = func(t, y)``, ``y(t[0]) = y0``, and report what the solver did.

    Takes the arguments of :func:`odeint` plus ``trace``. With ``trace=True`` the solution's
    ``.trace`` holds one :class:`StepRecord` per attempted step (accepted or rejected).
    """
    if method not in TABLEAUX:
        raise SolverError(f"Unknown method {method!r}. Valid methods: {', '.join(METHODS)}.")
    tableau = TABLEAUX[method]
    tuple_state = isinstance(y0, (tuple, list))
    states = tuple(y0) if tuple_state else (y0,)
    if tuple_state and not states:
        raise SolverError("y0 is an empty tuple; give at least one state tensor.")
    for i, y in enumerate(states):
        _check_state(y, f"y0[{i}]" if tuple_state else "y0")
    t = _as_time(t, states[0].device)
    rtol = _positive_number("rtol", rtol, allow_zero=True)
    atol = _positive_number("atol", atol, allow_zero=True)
    if tableau.adaptive and rtol == 0 and atol == 0:
        raise SolverError("rtol and atol are both 0: an adaptive method needs a positive tolerance, e.g. rtol=1e-6, atol=1e-8.")
    opts = _check_options(method, tableau, options)

    if tuple_state:
        dtype = states[0].dtype
        if any(y.dtype != dtype or y.device != states[0].device for y in states):
            raise SolverError("all tensors of a tuple state must share one dtype and device; got "
                              f"{[(str(y.dtype), str(y.device)) for y in states]}.")
        f = _Func(func, [y.shape for y in states], [y.numel() for y in states], True)
        flat = torch.cat([y.reshape(-1) for y in states])
    else:
        f = _Func(func, [y0.shape], [y0.numel()], False)
        flat = y0

    if t.numel() == 1:
        outputs, stats, records = [flat], Stats(), ([] if trace else None)
    else:
        outputs, stats, records = _solve_flat(f, flat, t, tableau, rtol, atol, opts, trace)
    ys = torch.stack(outputs)
    if tuple_state:
        ys = tuple(part.reshape(len(outputs), *y.shape)
                   for part, y in zip(torch.split(ys, [y.numel() for y in states], dim=1), states))
    return Solution(ts=t, ys=ys, stats=stats, method=method, trace=records)


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
