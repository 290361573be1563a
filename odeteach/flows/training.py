"""Training a CNF by maximum likelihood, on the course's one training loop (:func:`odeteach.training.fit`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.densities import DENSITIES, sample as sample_density
from ..regularisation import Regularisation
from ..training import SNAPSHOT_EVERY, TrainLog, fit, seed_everything
from ..validation import integer, positive_number
from .cnf import CNF, check_estimator, check_points
from .regularised import regularised_log_prob

__all__ = ["TrainResult", "train_cnf", "training_seed"]

# The learning rate decays (cosine) from lr to lr / 20 over the run.
FINAL_LR_FRACTION = 0.05


@dataclass
class TrainResult:
    """A trained CNF and its :class:`~odeteach.training.TrainLog`: the mean negative log-likelihood per
    iteration (``losses``, nats), the forward NFE per iteration (``nfe``) and the time spent (``seconds``)."""

    cnf: CNF
    log: TrainLog

    @property
    def losses(self) -> list[float]:
        return self.log.losses

    @property
    def nfe(self) -> list[int]:
        return self.log.nfe

    @property
    def seconds(self) -> float:
        return self.log.seconds


def training_seed(seed: int, i: int) -> int:
    """The sample seed of iteration ``i``'s batch in a run seeded by ``seed``. A run of seed 0 draws seeds 0, 1, …,
    iterations − 1: test samples must use seeds beyond every run's length (``tests/test_flow_scores.py`` checks
    the shipped runs against :data:`odeteach.flows.evaluation.TEST_SEED` and lesson 6's seed)."""
    return seed * 100_003 + i


def _batch_source(data, batch: int, seed: int):
    """``(draw, generators)``: ``draw(i)`` is the batch of iteration ``i``, a fresh sample of the named density
    (seeded by :func:`training_seed`), or ``batch`` random rows of the ``(N, 2)`` tensor ``data`` drawn by a
    generator of its own (seeded by ``seed``, and returned in ``generators`` so that a snapshot keeps it)."""
    if isinstance(data, str):
        if data not in DENSITIES:
            raise ValueError(f"Unknown density {data!r}. Valid names: {', '.join(DENSITIES)}.")
        return (lambda i: sample_density(data, batch, seed=training_seed(seed, i))), ()
    data = check_points(data, 2, "data")
    rows = torch.Generator().manual_seed(seed)
    return (lambda i: data[torch.randint(0, data.shape[0], (batch,), generator=rows)]), (rows,)


def train_cnf(data, *, iterations: int = 1000, batch: int = 256, lr: float = 3e-3, seed: int = 0,
              hidden: int = 64, layers: int = 3, rtol: float = 1e-5, atol: float = 1e-5,
              estimator: str = "exact", noise: str = "gaussian", cnf: CNF | None = None,
              progress: bool = True, device=None, snapshot=None,
              snapshot_every: int = SNAPSHOT_EVERY, regularisation=None) -> TrainResult:
    """Fit a CNF to ``data`` (a name in ``DENSITIES`` or an ``(N, 2)`` tensor) by maximum likelihood.

    Each iteration draws a fresh batch (a new sample of the named density, or a random subset of
    the tensor), integrates ``(x, 0)`` from 0 to 1 and minimises ``−mean log p₀(x)`` with Adam
    (cosine-decayed learning rate). Gradients come by backpropagation through the solver.
    ``device`` (default: where ``cnf`` is, else the CPU) is where the model trains; the batches and the
    Hutchinson noise are drawn on the CPU and moved there, so a seed gives the same data on any device.
    ``snapshot`` (a path) makes the run resumable (see :func:`odeteach.training.fit`): stopped and started
    again with the same arguments, it continues where its last snapshot left it and ends with the same weights.
    ``regularisation`` (a pair ``(λ_K, λ_J)`` or a :class:`~odeteach.regularisation.Regularisation`) adds
    Finlay et al.'s kinetic-energy and Jacobian penalties to the loss (:mod:`odeteach.flows.regularised`); the
    logged losses then include them.
    """
    iterations, batch = integer("iterations", iterations, minimum=1), integer("batch", batch, minimum=1)
    lr = positive_number("lr", lr)
    check_estimator(estimator, noise)
    weights = Regularisation.of(regularisation)
    draw, generators = _batch_source(data, batch, seed)      # checks the data before anything is seeded
    seed_everything(seed)                       # torch's global generator draws the initial weights
    if cnf is None:
        cnf = CNF(2, hidden, layers, rtol=rtol, atol=atol)
    if device is not None:
        cnf = cnf.to(device)
    noise_generator = torch.Generator().manual_seed(seed + 7)

    def negative_log_likelihood(i):
        x = draw(i).to(cnf.device)
        if weights:
            log_p, kinetic, jacobian, nfe = regularised_log_prob(cnf, x, estimator=estimator, noise=noise,
                                                                 generator=noise_generator)
            return -log_p.mean() + weights.kinetic * kinetic.mean() + weights.jacobian * jacobian.mean(), nfe
        log_p, nfe = cnf.log_prob(x, estimator=estimator, noise=noise, generator=noise_generator, return_nfe=True)
        return -log_p.mean(), nfe

    log = fit(cnf, negative_log_likelihood, iterations, lr=lr, final_lr_fraction=FINAL_LR_FRACTION,
              desc="CNF training", progress=progress, snapshot=snapshot, snapshot_every=snapshot_every,
              generators=(*generators, noise_generator),
              settings={"regularisation": weights.as_list()} if weights else None)
    return TrainResult(cnf, log)
