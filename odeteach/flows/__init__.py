"""Continuous normalizing flows (Chen et al. 2018, §4; FFJORD, Grathwohl et al. 2019).

A point ``z(t)`` moved by ``dz/dt = f(z(t), t, θ)`` carries its density with it; the log-density
along the path obeys the *instantaneous change of variables*

    d log p(z(t)) / dt = −tr(∂f/∂z(t)),

so ``(z, log p)`` is one ODE, integrated jointly here with :func:`odeteach.solve` on the tuple
state ``(z, Δ)`` with ``dΔ/dt = −tr(∂f/∂z)``. Nothing needs to be invertible and no determinant
is taken: the trace is a sum of ``D`` diagonal entries of the Jacobian (exact, one
vector–Jacobian product per dimension), or FFJORD's Hutchinson estimate ``εᵀ(∂f/∂z)ε`` with one
product, whatever ``D`` is.

Time convention (FFJORD's): data lives at ``t = 0`` and the base density N(0, I) at ``t = 1``.
The log-likelihood of a data point integrates forward from 0 to 1,

    log p₀(x) = log N(z(1); 0, I) − Δ(1),     z(0) = x,  Δ(0) = 0,

and sampling integrates backwards from ``z(1) ~ N(0, I)`` to ``t = 0``. ``python -m odeteach.train
flows`` retrains the shipped checkpoints ``odeteach/checkpoints/flows_<name>.pt``.

The package, read in order: :mod:`.field` (the network ``f``), :mod:`.cnf` (the trace estimators, the joint
dynamics and :class:`CNF`), :mod:`.evaluation` (densities on a grid, the cost of a trace, the fit report),
:mod:`.training` (:func:`train_cnf`, on :func:`odeteach.training.fit`), :mod:`.regularised` (Finlay et al.'s
penalties on the dynamics, and what they buy) and :mod:`.checkpoints`; :mod:`.report` writes
lesson 6's sentences about the shipped models from their measured numbers.
"""

from .checkpoints import (CHECKPOINT_DIR, CHECKPOINT_ITERATIONS, QUICK, load_checkpoint, pretrained, save_checkpoint,
                          train_checkpoints)
from .cnf import (CNF, ESTIMATORS, NOISES, CNFDynamics, FlowResult, base_log_prob, check_estimator, check_points,
                  draw_noise, exact_trace, hutchinson_trace)
from .evaluation import (ENTROPY_POINTS, GAP_TARGETS, N_TEST, TEST_SEED, FitReport, fit_report, gaussian_fit_nll,
                         grid_mass, grid_points, log_prob_frames, log_prob_grid, nll_table, test_points, trace_cost)
from .field import ConcatTimeMLP
from .report import (describe_log_p_path, describe_nll_table, describe_support, describe_trace_study,
                     describe_tolerance_sweep, format_nll_table, meets_target, support_fraction)
from .regularised import RegularisedCNFDynamics, compare_regularised, describe_regularised, regularised_log_prob
from .training import TrainResult, train_cnf, training_seed

__all__ = [
    "ESTIMATORS", "NOISES", "ConcatTimeMLP", "CNF", "CNFDynamics", "FlowResult", "base_log_prob", "exact_trace",
    "hutchinson_trace", "draw_noise", "check_points", "check_estimator",
    "grid_points", "log_prob_frames", "log_prob_grid", "grid_mass", "trace_cost", "gaussian_fit_nll", "FitReport",
    "fit_report", "TEST_SEED", "N_TEST", "ENTROPY_POINTS", "GAP_TARGETS", "test_points", "nll_table",
    "meets_target", "format_nll_table", "describe_nll_table", "support_fraction", "describe_support",
    "describe_log_p_path", "describe_tolerance_sweep", "describe_trace_study",
    "train_cnf", "TrainResult", "training_seed",
    "RegularisedCNFDynamics", "regularised_log_prob", "compare_regularised", "describe_regularised",
    "save_checkpoint", "load_checkpoint", "pretrained", "train_checkpoints", "CHECKPOINT_DIR", "CHECKPOINT_ITERATIONS",
    "QUICK",
]
