"""The one path every solve's inputs take: checks with messages that say what to change, and one wrapper for ``func``.

:func:`check_inputs` serves :func:`~odeteach.solve` and :func:`~odeteach.solve_adjoint` alike (as
torchdiffeq's ``_check_inputs`` serves its ``odeint`` and ``odeint_adjoint``). It validates the
method, the state, the times, the tolerances and the options, and wraps ``func`` in a
:class:`StateFunc`, which counts evaluations, checks the first output's shape, and lets the
stepping loops see a tuple state as one tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .errors import SolverError
from .step_control import DFACTOR, IFACTOR, SAFETY
from .tableaux import METHODS, TABLEAUX, Tableau
from .validation import integer, positive_number

__all__ = ["FIXED_OPTIONS", "ADAPTIVE_OPTIONS", "DEFAULT_MAX_NUM_STEPS", "StateFunc", "SolveInputs",
           "check_inputs", "check_method"]

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


class StateFunc:
    """The user's ``func`` as the stepping loops call it.

    It counts its evaluations (``nfe``), checks the shape of the first derivative it returns, and,
    for a tuple state or when ``flatten`` is asked for (the adjoint joins [z, a, ∂L/∂θ] into one
    vector), joins the state's tensors into one flat vector and splits it again for ``func``.
    """

    def __init__(self, func: Callable, states: tuple[torch.Tensor, ...], tuple_state: bool, flatten: bool = False):
        self.func = func
        self.shapes = [y.shape for y in states]
        self.numels = [y.numel() for y in states]
        self.tuple_state = tuple_state
        self.flat = tuple_state or flatten
        self.nfe = 0
        self.checked = False

    def join(self, states) -> torch.Tensor:
        """The solver's state for ``states`` (the user's tensor, or tuple of tensors)."""
        if not self.flat:
            return states
        parts = states if self.tuple_state else (states,)
        return torch.cat([y.reshape(-1) for y in parts])

    def split(self, y: torch.Tensor):
        """The user's view of the solver's state ``y``."""
        if not self.flat:
            return y
        parts = tuple(part.view(shape) for part, shape in zip(torch.split(y, self.numels), self.shapes))
        return parts if self.tuple_state else parts[0]

    def split_outputs(self, ys: torch.Tensor):
        """The user's view of a stack of states, shape ``(len(t), *y0.shape)`` (a tuple for a tuple state)."""
        if not self.flat:
            return ys
        n = ys.shape[0]
        parts = tuple(p.reshape(n, *shape) for p, shape in zip(torch.split(ys, self.numels, dim=1), self.shapes))
        return parts if self.tuple_state else parts[0]

    def __call__(self, t, y):
        self.nfe += 1
        out = self.func(t, self.split(y))
        if not self.checked:
            self._check(out)
        if not self.flat:
            return out
        return torch.cat([o.reshape(-1) for o in (out if self.tuple_state else (out,))])

    def _check(self, out) -> None:
        want = [tuple(s) for s in self.shapes]
        if self.tuple_state:
            if not isinstance(out, (tuple, list)) or len(out) != len(self.shapes):
                raise SolverError(f"func must return a tuple of {len(self.shapes)} tensors (one per state tensor); "
                                  f"got {type(out).__name__}.")
            got = [tuple(o.shape) if isinstance(o, torch.Tensor) else type(o).__name__ for o in out]
        else:
            if not isinstance(out, torch.Tensor):
                raise SolverError(f"func(t, y) must return a tensor dy/dt; got {type(out).__name__}.")
            got = [tuple(out.shape)]
        if got != want:
            raise SolverError(f"func(t, y) must return dy/dt with the shape of y: expected "
                              f"{want if self.tuple_state else want[0]}, got {got if self.tuple_state else got[0]}.")
        self.checked = True


@dataclass
class SolveInputs:
    """Everything a stepping loop needs, checked: the wrapped func, the joined state and the settings."""

    func: StateFunc
    y0: torch.Tensor
    t: torch.Tensor
    method: str
    tableau: Tableau
    rtol: float
    atol: float
    options: dict


def check_method(method, what: str = "method") -> Tableau:
    if method not in TABLEAUX:
        raise SolverError(f"Unknown {what} {method!r}. Valid methods: {', '.join(METHODS)}.")
    return TABLEAUX[method]


def check_inputs(func: Callable, y0, t, rtol, atol, method: str, options: dict | None, *,
                 flatten: bool = False) -> SolveInputs:
    """Check every argument of a solve and prepare it for the stepping loops."""
    tableau = check_method(method)
    tuple_state = isinstance(y0, (tuple, list))
    states = _check_states(y0, tuple_state)
    t = _check_time(t, states[0].device)
    rtol = positive_number("rtol", rtol, allow_zero=True, error=SolverError)
    atol = positive_number("atol", atol, allow_zero=True, error=SolverError)
    if tableau.adaptive and rtol == 0 and atol == 0:
        raise SolverError("rtol and atol are both 0: an adaptive method needs a positive tolerance, e.g. rtol=1e-6, atol=1e-8.")
    options = _check_options(method, tableau, options)
    f = StateFunc(func, states, tuple_state, flatten)
    return SolveInputs(f, f.join(tuple(states) if tuple_state else states[0]), t, method, tableau, rtol, atol, options)


def _check_states(y0, tuple_state: bool) -> tuple[torch.Tensor, ...]:
    states = tuple(y0) if tuple_state else (y0,)
    if tuple_state and not states:
        raise SolverError("y0 is an empty tuple; give at least one state tensor.")
    for i, y in enumerate(states):
        what = f"y0[{i}]" if tuple_state else "y0"
        if not isinstance(y, torch.Tensor):
            raise SolverError(f"{what} must be a torch.Tensor (or a tuple of tensors); got {type(y).__name__}. "
                              "Wrap numbers with torch.tensor([...]).")
        if not y.is_floating_point():
            raise SolverError(f"{what} must be floating point (float32 or float64), but it has dtype {y.dtype}. "
                              "Use y0.float() or y0.double().")
        with torch.no_grad():
            if not torch.isfinite(y).all():
                raise SolverError(f"{what} holds NaN or inf values; the initial state must be finite.")
    if any(y.dtype != states[0].dtype or y.device != states[0].device for y in states):
        raise SolverError("all tensors of a tuple state must share one dtype and device; got "
                          f"{[(str(y.dtype), str(y.device)) for y in states]}.")
    return states


def _check_time(t, device) -> torch.Tensor:
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

    def number(key, default=None, **kind):
        return positive_number(f"options[{key!r}]", options.get(key, default), error=SolverError, **kind)

    out = {"max_num_steps": integer("options['max_num_steps']", options.get("max_num_steps", DEFAULT_MAX_NUM_STEPS),
                                    minimum=1, error=SolverError)}
    if options.get("step_size") is not None:
        out["step_size"] = number("step_size")
    if not tableau.adaptive:
        return out
    if options.get("first_step") is not None:
        out["first_step"] = number("first_step")
    out.update(safety=number("safety", SAFETY), ifactor=number("ifactor", IFACTOR), dfactor=number("dfactor", DFACTOR),
               min_step=number("min_step", 0.0, allow_zero=True), max_step=number("max_step", math.inf, allow_inf=True))
    if out["safety"] > 1:
        raise SolverError(f"options['safety'] must be in (0, 1]; got {out['safety']}.")
    if out["ifactor"] < 1:
        raise SolverError(f"options['ifactor'] must be ≥ 1 (it bounds growth); got {out['ifactor']}.")
    if out["dfactor"] > 1:
        raise SolverError(f"options['dfactor'] must be in (0, 1] (it bounds shrinking); got {out['dfactor']}.")
    if out["min_step"] > out["max_step"]:
        raise SolverError(f"options['min_step'] ({out['min_step']}) is larger than options['max_step'] ({out['max_step']}).")
    return out
