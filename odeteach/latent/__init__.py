"""Latent ODEs for irregularly sampled time series (Chen et al. 2018, section 5), and an RNN baseline.

A latent ODE explains a series by an initial state z_t0, drawn from a posterior that an RNN reads
backwards from the data, flowed by an ODE and decoded at every observation time; it is trained by
maximising the evidence lower bound (the story and the ELBO are in :mod:`~odeteach.latent.model`).

The baseline is an RNN that reads (x_ti, Δt) and predicts the next point; past the data it feeds
its own predictions back (autoregressively). Both are scored on the extrapolation window of
:mod:`odeteach.data.spirals`, which neither model sees in training.

Read it in this order:

- :mod:`~odeteach.latent.model`: the ELBO's pieces and the latent ODE (recognition RNN, dynamics, decoder);
- :mod:`~odeteach.latent.baseline`: the RNN baseline;
- :mod:`~odeteach.latent.training`: one iteration's loss for each, trained by :func:`odeteach.training.fit`;
- :mod:`~odeteach.latent.evaluation`: the extrapolation error (Table 2) and the sentences the lesson prints;
- :mod:`~odeteach.latent.checkpoints`: the course's spirals and the shipped models.

``python -m odeteach.train spirals`` retrains both from scratch and writes the shipped checkpoints.
"""

from ..training import TrainLog
from .baseline import RNNBaseline
from .checkpoints import (CHECKPOINT_DIR, DATA_SEED, LATENT_CHECKPOINT, LATENT_ITERATIONS, N_SPIRALS, N_TRAIN, QUICK,
                          RNN_CHECKPOINT, RNN_ITERATIONS, TRAIN_SEED, TRAIN_THETA0, load_model, load_pretrained,
                          spiral_data, train_checkpoints)
from .evaluation import (CALIBRATION_FACTOR, COVERAGE_TARGET, PAPER_TABLE2, TIE_TOLERANCE, describe_posterior,
                         describe_table, describe_training, extrapolation_rmse, join_counts, noise_floor,
                         placement_table, posterior_check, predictive_coverage, rmse_table, sample_spread,
                         trend, PARTS, FAN_SETTINGS, posterior_fan, describe_fan,
                         describe_coverage, compare_at, describe_placements)
from .report import FIT_SEED, coverage_diagnosis, describe_diagnosis, fit_observation_noise, spirals_report
from .model import (SOLVER, Decoder, LatentDynamics, LatentODE, RecognitionRNN, backward_inputs,
                    gaussian_log_likelihood, kl_standard_normal, reparameterize)
from .training import (FINAL_LR_FRACTION, ROLLOUT_HORIZON, latent_ode_loss, rnn_loss, rnn_rollout_loss, spiral_batches,
                       train_latent_ode, train_rnn)

__all__ = [
    # model
    "SOLVER", "backward_inputs", "reparameterize", "kl_standard_normal", "gaussian_log_likelihood",
    "RecognitionRNN", "LatentDynamics", "Decoder", "LatentODE",
    # baseline
    "RNNBaseline",
    # training
    "TrainLog", "FINAL_LR_FRACTION", "train_latent_ode", "train_rnn", "spiral_batches", "latent_ode_loss", "rnn_loss",
    "rnn_rollout_loss", "ROLLOUT_HORIZON",
    # evaluation
    "PAPER_TABLE2", "TIE_TOLERANCE", "CALIBRATION_FACTOR", "extrapolation_rmse", "rmse_table", "sample_spread",
    "posterior_check", "describe_posterior", "trend", "join_counts", "describe_table", "noise_floor",
    "describe_training", "predictive_coverage", "placement_table", "COVERAGE_TARGET", "spirals_report",
    "PARTS", "FAN_SETTINGS", "posterior_fan", "describe_fan", "describe_coverage", "compare_at", "describe_placements",
    # report
    "FIT_SEED", "fit_observation_noise", "coverage_diagnosis", "describe_diagnosis",
    # checkpoints
    "CHECKPOINT_DIR", "LATENT_CHECKPOINT", "RNN_CHECKPOINT", "DATA_SEED", "TRAIN_SEED", "N_SPIRALS", "N_TRAIN",
    "TRAIN_THETA0", "QUICK", "LATENT_ITERATIONS", "RNN_ITERATIONS", "spiral_data", "load_model", "load_pretrained", "train_checkpoints",
]
