"""Regularised CNF dynamics (Finlay et al. 2020, "How to train your neural ODE"), and what they buy, measured.

A CNF's training cost is its solver's: every iteration integrates ``(z, Δ)`` from 0 to 1 and backpropagates
through every step. Finlay et al. add two integrals along the same path to the loss,

* the kinetic energy ``E_K = ∫₀¹ ‖f(z(t), t)‖² dt`` (straight, slow paths), and
* the Jacobian's Frobenius norm ``E_J = ∫₀¹ ‖∂f/∂z‖²_F dt`` (gentle, non-stiff fields),

so that the learned flow is one an adaptive solver crosses in fewer steps. Both are solved with the state as two
more components. In 2-D the exact trace already computes every row of ``∂f/∂z``, so ``E_J`` here is exact with the
exact trace (and Hutchinson's ``‖εᵀ ∂f/∂z‖²`` with the Hutchinson trace). As in
:mod:`odeteach.regularisation` (lesson 7's classifier), each is the mean over the state's elements, so
``λ = (λ_K, λ_J)`` keeps its meaning at any dimension.

:func:`regularised_log_prob` is :meth:`CNF.log_prob` with the two integrals; :func:`compare_regularised` trains a
plain and a regularised CNF on the same batches and reports NFE, seconds per iteration and test NLL.
"""

from __future__ import annotations

import time

import torch

from ..integrate import solve
from ..regularisation import Regularisation
from .cnf import CNF, CNFDynamics, base_log_prob, check_estimator, check_points, draw_noise
from .evaluation import test_points

__all__ = ["RegularisedCNFDynamics", "regularised_log_prob", "compare_regularised", "describe_regularised"]


class RegularisedCNFDynamics(CNFDynamics):
    """``(z, Δ, E_K, E_J) ↦ (f, −tr ∂f/∂z, mean ‖f‖², mean ‖∂f/∂z‖²_F)``, row by row of a batch.

    With the exact estimator ``E_J``'s integrand is exact (the D rows of the Jacobian that the trace needs);
    with Hutchinson's it is ``‖εᵀ ∂f/∂z‖² / D``, unbiased for ``‖∂f/∂z‖²_F / D``.
    """

    def _rates(self, f, z, keep_graph):
        dim = f.shape[-1]
        if self.estimator == "exact":
            rows = [torch.autograd.grad(f[..., i].sum(), z, create_graph=keep_graph, retain_graph=True)[0]
                    for i in range(dim)]
            trace = sum(row[..., i] for i, row in enumerate(rows))
            frobenius = sum(row.pow(2).sum(-1) for row in rows)
        else:
            vjp = torch.autograd.grad((f * self.e).sum(), z, create_graph=keep_graph, retain_graph=True)[0]
            trace = (vjp * self.e).sum(-1)
            frobenius = vjp.pow(2).sum(-1)
        return f, -trace, f.pow(2).mean(-1), frobenius / dim


def regularised_log_prob(cnf: CNF, x: torch.Tensor, *, estimator: str = "exact", noise: str = "gaussian",
                         generator: torch.Generator | None = None, rtol=None, atol=None, method=None, options=None):
    """``(log p₀(x), E_K, E_J, nfe)``: the log-density of :meth:`CNF.log_prob` and, per point, the two integrals
    along the same path (one solve of the four components together)."""
    x = check_points(x, cnf.dim)
    check_estimator(estimator, noise)
    e = None
    if estimator == "hutchinson":
        e = draw_noise(x.shape, noise, generator=generator, dtype=x.dtype).to(x.device)
    zero = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    times = torch.tensor([0.0, 1.0], dtype=x.dtype, device=x.device)
    solution = solve(RegularisedCNFDynamics(cnf.field, estimator, e), (x, zero, zero, zero), times,
                     **cnf.solver_settings(rtol, atol, method, options))
    zs, deltas, kinetic, jacobian = solution.ys
    return base_log_prob(zs[-1]) - deltas[-1], kinetic[-1], jacobian[-1], solution.stats.nfe


def compare_regularised(data: str, *, iterations: int, regularisation=(0.01, 0.01), seed: int = 0,
                        progress: bool = True, **train_options) -> dict:
    """Train a plain CNF and a regularised one on ``data`` with the same seed (so the same batches and the same
    initial weights), then score both on :func:`~odeteach.flows.test_points`.

    Returns ``{"plain": row, "regularised": row, "regularisation": [λ_K, λ_J], "iterations": …}`` where each
    row holds ``test_nll``, ``nfe_first`` and ``nfe_last`` (the training solve's forward NFE at the first and
    last iteration), ``nfe_mean`` (over the run), ``seconds_per_iteration`` (wall), ``cpu_seconds_per_iteration``
    (this process's CPU time: the fairer measure on a shared machine) and ``eval_nfe`` (the test solve's).
    """
    from .training import train_cnf   # here: .training imports this module
    weights = Regularisation.of(regularisation)
    if not weights:
        raise ValueError("regularisation must have λ_K > 0 or λ_J > 0 to compare anything; e.g. (0.01, 0.01).")
    rows = {}
    for label, reg in (("plain", None), ("regularised", weights)):
        cpu = time.process_time()
        result = train_cnf(data, iterations=iterations, seed=seed, progress=progress, regularisation=reg,
                           **train_options)
        cpu = time.process_time() - cpu
        with torch.no_grad():
            log_p, nfe = result.cnf.log_prob(test_points(data), return_nfe=True)
        nfes = result.nfe
        rows[label] = {"test_nll": -float(log_p.mean()), "nfe_first": nfes[0], "nfe_last": nfes[-1],
                       "nfe_mean": sum(nfes) / len(nfes), "seconds_per_iteration": result.seconds / iterations,
                       "cpu_seconds_per_iteration": cpu / iterations, "eval_nfe": int(nfe)}
    return {**rows, "regularisation": weights.as_list(), "iterations": int(iterations), "data": data}


def describe_regularised(study: dict, tie: float = 0.02) -> str:
    """The sentence about :func:`compare_regularised`'s numbers: cost per iteration, and the NLL it cost or saved."""
    plain, reg = study["plain"], study["regularised"]
    nfe_ratio = reg["nfe_mean"] / plain["nfe_mean"]
    timing = "cpu_seconds_per_iteration" if "cpu_seconds_per_iteration" in reg else "seconds_per_iteration"
    time_ratio = reg[timing] / plain[timing]
    gap = reg["test_nll"] - plain["test_nll"]
    nll = ("the same test NLL" if abs(gap) <= tie else
           f"a test NLL {gap:.3f} nats {'worse' if gap > 0 else 'better'}")
    return (f"{study['data']}, {study['iterations']} iterations, λ_K = {study['regularisation'][0]:g}, "
            f"λ_J = {study['regularisation'][1]:g}: the regularised run needed {nfe_ratio:.2f}× the plain run's "
            f"forward NFE per iteration ({reg['nfe_mean']:.0f} against {plain['nfe_mean']:.0f}) and "
            f"{time_ratio:.2f}× its {'CPU ' if timing.startswith('cpu') else ''}time per iteration, and ended with {nll} "
            f"({reg['test_nll']:.3f} against {plain['test_nll']:.3f}; NFE of the test solve {reg['eval_nfe']} "
            f"against {plain['eval_nfe']})")
