"""The latent ODE (Chen et al. 2018, section 5): recognition RNN, latent dynamics, decoder, and the ELBO's pieces.

The generative story, in the article's notation::

    z_t0 ~ p(z_t0) = N(0, I)
    z_t1, ..., z_tN = ODESolve(z_t0, f, θ_f, t0, ..., tN)
    each x_ti ~ p(x | z_ti, θ_x)            (a decoder network; here a Gaussian of fixed std σ)

The recognition model q(z_t0 | x_t1..tN) = N(μ, diag σ_z²) is an RNN run **backwards in time**
over the pairs (x_ti, Δt_i). Training maximises the evidence lower bound

    ELBO = E_q[ Σ_i log p(x_ti | z_ti) ] − KL( q(z_t0 | x) ‖ N(0, I) ),

with one reparameterised sample z_t0 = μ + σ_z ε per series and the KL in closed form.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..integrate import solve

__all__ = ["SOLVER", "backward_inputs", "reparameterize", "kl_standard_normal", "gaussian_log_likelihood",
           "RecognitionRNN", "LatentDynamics", "Decoder", "LatentODE"]

# The solver every latent trajectory uses: dopri5 at a loose tolerance. The decoded outputs at the
# data's 100+ grid times come from dopri5's dense output, so the solver takes a few large steps
# instead of one per grid interval (RK4 stepping on the grid needed ~13x the time per training
# iteration here). A relative error of 1e-3 in z(t) is far below the data's noise (σ = 0.1).
SOLVER = {"method": "dopri5", "rtol": 1e-3, "atol": 1e-4}


# --------------------------------------------------------------------------------------------
# Pieces of the ELBO


def backward_inputs(times: torch.Tensor, x: torch.Tensor, t0: float = 0.0) -> torch.Tensor:
    """The recognition RNN's input sequence: (x_ti, Δt_i) from the **last** observation to the first.

    ``times`` (B, n) increasing, ``x`` (B, n, d) -> (B, n, d + 1), where row k holds observation
    i = n − k together with Δt_i = t_i − t_{i−1} (and Δt_1 = t_1 − t0), the gap the RNN is about
    to cross going back in time.
    """
    if times.ndim != 2 or x.ndim != 3 or x.shape[:2] != times.shape:
        raise ValueError(f"times must be (B, n) and x (B, n, d) with the same B and n; got {tuple(times.shape)} and {tuple(x.shape)}.")
    previous = torch.cat([torch.full_like(times[:, :1], t0), times[:, :-1]], dim=1)
    dt = times - previous
    if (dt < 0).any():
        raise ValueError("times must be increasing along each row (and not before t0).")
    return torch.cat([x, dt[..., None]], dim=-1).flip(1)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, n_samples: int | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ ε with ε ~ N(0, I) and σ = exp(logvar / 2): a sample that gradients flow through.

    With ``n_samples`` the result gets a leading dimension of that size.
    """
    shape = mean.shape if n_samples is None else (n_samples, *mean.shape)
    eps = torch.randn(shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + torch.exp(0.5 * logvar) * eps


def kl_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(μ, diag σ²) ‖ N(0, I) ) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), summed over the last dim."""
    return 0.5 * (mean ** 2 + logvar.exp() - logvar - 1).sum(dim=-1)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x | mean, std² I), summed over every dimension after the first (one number per series)."""
    log_density = -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    return log_density.reshape(log_density.shape[0], -1).sum(dim=1)


# --------------------------------------------------------------------------------------------
# The latent ODE


class RecognitionRNN(nn.Module):
    """q(z_t0 | x): a GRU run backwards over (x_ti, Δt_i); its last state gives μ and log σ²."""

    def __init__(self, obs_dim: int = 2, hidden: int = 25, latent_dim: int = 4):
        super().__init__()
        self.rnn = nn.GRU(obs_dim + 1, hidden, batch_first=True)  # the whole sequence in one fused call
        self.out = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, times: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, h = self.rnn(backward_inputs(times, x))  # h: the state after reading x_t1, the earliest point
        mean, logvar = self.out(h[-1]).chunk(2, dim=-1)
        return mean, logvar


class LatentDynamics(nn.Module):
    """f(z(t), θ_f): the latent ODE's right-hand side, an MLP (autonomous: it ignores t)."""

    def __init__(self, latent_dim: int = 4, hidden: int = 20):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                 nn.Linear(hidden, latent_dim))

    def forward(self, t, z):
        return self.net(z)


class Decoder(nn.Module):
    """The mean of p(x | z): an MLP from the latent state to the observation space."""

    def __init__(self, latent_dim: int = 4, hidden: int = 20, obs_dim: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, obs_dim))

    def forward(self, z):
        return self.net(z)


class LatentODE(nn.Module):
    """Recognition RNN + latent dynamics + decoder, with a Gaussian likelihood of fixed std ``obs_std``."""

    def __init__(self, obs_dim: int = 2, latent_dim: int = 4, rnn_hidden: int = 25, ode_hidden: int = 20,
                 decoder_hidden: int = 20, obs_std: float = 0.1):
        super().__init__()
        self.config = dict(obs_dim=obs_dim, latent_dim=latent_dim, rnn_hidden=rnn_hidden, ode_hidden=ode_hidden,
                           decoder_hidden=decoder_hidden, obs_std=float(obs_std))
        self.encoder = RecognitionRNN(obs_dim, rnn_hidden, latent_dim)
        self.dynamics = LatentDynamics(latent_dim, ode_hidden)
        self.decoder = Decoder(latent_dim, decoder_hidden, obs_dim)
        self.obs_std = float(obs_std)
        self.last_nfe = 0

    def encode(self, times, x):
        """μ, log σ² of q(z_t0 | x) for observations ``x`` (B, n, d) at ``times`` (B, n)."""
        return self.encoder(times, x)

    def latent_path(self, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """z(t) for every time in ``t`` (which starts at t0 = 0): shape (len(t), *z0.shape).

        The solver's NFE is kept in ``self.last_nfe``.
        """
        solution = solve(self.dynamics, z0, t, **SOLVER)
        self.last_nfe = solution.stats.nfe
        return solution.ys

    def decode(self, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The decoded mean trajectory, with time moved to the second-to-last axis: (..., len(t), d)."""
        return self.decoder(self.latent_path(z0, t)).movedim(0, -2)

    def elbo(self, grid: torch.Tensor, indices: torch.Tensor, times: torch.Tensor, x: torch.Tensor):
        """Per-series (ELBO, log-likelihood, KL) with one reparameterised sample each.

        ``grid`` is the shared time grid, ``indices`` (B, n) which grid points were observed,
        ``times`` (B, n) = grid[indices] and ``x`` (B, n, d) the observations.
        """
        mean, logvar = self.encode(times, x)
        z0 = reparameterize(mean, logvar)
        path = self.decode(z0, grid)                                          # (B, len(grid), d)
        predicted = torch.gather(path, 1, indices[..., None].expand(-1, -1, path.shape[-1]))
        log_lik = gaussian_log_likelihood(x, predicted, self.obs_std)
        kl = kl_standard_normal(mean, logvar)
        return log_lik - kl, log_lik, kl

    @torch.no_grad()
    def predict(self, times, x, t_out, n_samples: int = 0, generator=None):
        """Decoded trajectory at ``t_out`` from the posterior mean, and from ``n_samples`` posterior samples.

        Returns ``(mean_path (B, len(t_out), d), samples (n_samples, B, len(t_out), d) or None)``.
        """
        mean, logvar = self.encode(times, x)
        z0 = mean if not n_samples else torch.cat([mean[None], reparameterize(mean, logvar, n_samples, generator)])
        paths = self.decode(z0, t_out)
        return (paths, None) if not n_samples else (paths[0], paths[1:])
