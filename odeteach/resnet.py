"""Residual networks are Euler steps.

A residual block maps the hidden state h_k to

    h_{k+1} = h_k + f(h_k, θ_k),

which is one step of Euler's method with step 1 on dh/dt = f(h, θ). Scale the N blocks of a
network by 1/N and feed each block its depth t_k = k/N,

    h_{k+1} = h_k + (1/N) f(h_k, θ_k, t_k),

and the network *is* Euler's method with step 1/N on dh/dt = f(h(t), θ(t), t) over t ∈ [0, 1],
provided θ_k = θ(t_k). As N grows the network's output converges to the ODE's solution h(1),
with global error O(1/N) (Euler has order 1). This module builds such networks and measures
that convergence.

* **Tied weights** (θ_k = θ for every block): the limit is the ODE with constant θ.
* **Untied weights that vary smoothly with depth** (θ_k = θ(t_k)): the limit is the ODE with
  θ(t); the error still falls like 1/N.
* **Untied random weights** (θ_k = θ(t_k) + σ ξ_k, independent standard Gaussian ξ_k per block,
  σ fixed, *not* shrinking with N): every block's update is still scaled by 1/N, so its random
  part is a kick of size O(σ/N); N independent kicks add up to O(σ/√N) and average out. What
  remains is the *mean* field f̄(h, t) = E_ξ f(h, θ(t) + σ ξ, t) (:class:`MeanField`), which is
  not f(h, θ(t), t) because the noise on W₁ passes through tanh. The network therefore converges
  to the ODE dh/dt = f̄(h, t), not to θ(t)'s ODE: its error against θ(t)'s ODE levels off at the
  distance between the two ODEs' solutions, and its error against the mean-field ODE keeps
  falling, at about N^(-1/2) (:func:`random_weights_study`).

The networks here are deliberately tiny (a 2-D hidden state, one hidden layer) so that a
learner can draw every hidden state h_0 … h_N in the plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .integrate import odeint
from .validation import integer

__all__ = [
    "Dynamics", "ResNet", "euler_hidden_states", "ode_hidden_states", "DepthStudy", "depth_study",
    "WEIGHT_KINDS", "make_resnet", "fitted_slope", "MeanField", "RandomWeightsStudy", "random_weights_study",
]

WEIGHT_KINDS = ("tied", "untied, smooth in t", "untied, random")


class Dynamics(nn.Module):
    """f(h, θ(t), t) = W₂(t) tanh(W₁(t) [h, t] + b₁(t)) + b₂(t): a one-hidden-layer field.

    The weights are θ(t) = θ₀ + sin(2π t)·θ₁·``wobble``: with ``wobble=0`` they are constant
    (a tied network's θ); otherwise they change smoothly with depth t. The initial state is
    drawn from ``seed``, so the same arguments give the same field. Works on a state of
    shape ``(dim,)`` or a batch ``(B, dim)``; float64 by default.
    """

    def __init__(self, dim: int = 2, hidden: int = 16, *, wobble: float = 0.0, scale: float = 1.5, seed: int = 0,
                 dtype=torch.float64):
        super().__init__()
        if dim < 1 or hidden < 1:
            raise ValueError(f"dim and hidden must be positive; got dim={dim}, hidden={hidden}.")
        gen = torch.Generator().manual_seed(seed)

        def draw(*shape, fan_in):
            return torch.randn(*shape, generator=gen, dtype=dtype) * (scale / math.sqrt(fan_in))

        self.dim, self.hidden, self.wobble = dim, hidden, float(wobble)
        # θ₀: the weights at every depth when wobble = 0.
        self.W1 = nn.Parameter(draw(hidden, dim + 1, fan_in=dim + 1))
        self.b1 = nn.Parameter(draw(hidden, fan_in=1) * 0.5)
        self.W2 = nn.Parameter(draw(dim, hidden, fan_in=hidden))
        self.b2 = nn.Parameter(draw(dim, fan_in=1) * 0.1)
        # θ₁: the direction in which the weights move with depth.
        self.register_buffer("dW1", draw(hidden, dim + 1, fan_in=dim + 1))
        self.register_buffer("dW2", draw(dim, hidden, fan_in=hidden))

    def theta(self, t) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The weights (W1, b1, W2, b2) at depth t."""
        if self.wobble == 0.0:
            return self.W1, self.b1, self.W2, self.b2
        wobble = self.wobble * torch.sin(2 * math.pi * torch.as_tensor(t, dtype=self.W1.dtype))
        return self.W1 + wobble * self.dW1, self.b1, self.W2 + wobble * self.dW2, self.b2

    @staticmethod
    def apply(h, t, theta):
        """f(h, θ, t) for given weights θ = (W1, b1, W2, b2)."""
        W1, b1, W2, b2 = theta
        t_col = torch.as_tensor(t, dtype=h.dtype).expand(*h.shape[:-1], 1)
        inp = torch.cat((h, t_col), dim=-1)
        # transpose(-2, -1), not .T: weights may carry a leading batch dimension (one set per seed)
        return torch.tanh(inp @ W1.transpose(-2, -1) + b1) @ W2.transpose(-2, -1) + b2

    def forward(self, t, h):
        """dh/dt = f(h(t), θ(t), t), with the solver's argument order ``func(t, y)``."""
        return self.apply(h, t, self.theta(t))


class ResNet(nn.Module):
    """N residual blocks scaled by 1/N: ``h_{k+1} = h_k + (1/N) f(h_k, θ_k, t_k)``, ``t_k = k/N``.

    ``thetas`` holds one weight tuple per block (untied) or a single one shared by all (tied).
    Build one with :func:`make_resnet`.
    """

    def __init__(self, depth: int, thetas, tied: bool):
        super().__init__()
        self.depth = integer("depth N", depth, minimum=1)
        self.tied = tied
        self._thetas = thetas if not tied else [thetas[0]]
        if not tied and len(thetas) != self.depth:
            raise ValueError(f"an untied ResNet of depth {self.depth} needs {self.depth} weight sets; got {len(thetas)}.")

    def block_times(self) -> list[float]:
        # t_k = t0 + k·(1/N), the same floating-point grid as the fixed-step solver's.
        step = 1.0 / self.depth
        return [k * step for k in range(self.depth + 1)]

    def hidden_states(self, h0: torch.Tensor) -> torch.Tensor:
        """All hidden states h_0, h_1, …, h_N: shape ``(N + 1, *h0.shape)``."""
        if not isinstance(h0, torch.Tensor) or not h0.is_floating_point():
            raise ValueError("h0 must be a floating-point tensor of shape (dim,) or (batch, dim).")
        ts = self.block_times()
        ts[-1] = 1.0
        t0 = torch.zeros((), dtype=h0.dtype)
        states = [h0]
        h = h0
        for k in range(self.depth):
            theta = self._thetas[0] if self.tied else self._thetas[k]
            # The block's step is the spacing of the grid (1/N up to rounding), as in the solver.
            h = torch.add(h, Dynamics.apply(h, t0 + ts[k], theta), alpha=ts[k + 1] - ts[k])
            states.append(h)
        return torch.stack(states)

    def forward(self, h0: torch.Tensor) -> torch.Tensor:
        return self.hidden_states(h0)[-1]


def _random_weights(dynamics: Dynamics, depth: int, noise: float, seeds) -> tuple[torch.Tensor, torch.Tensor]:
    """W1 and W2 of every block of ``"untied, random"`` networks: shapes ``(seeds, depth, …)``.

    Block k gets θ(t_k) plus independent Gaussian noise: standard deviation ``noise`` per entry of
    W1 and ``noise``/√hidden per entry of W2, the same size at every depth N (it does not shrink
    with N). The noise is drawn from the seed and the depth.
    """
    if not noise >= 0:
        raise ValueError(f"noise must be a number >= 0; got {noise!r}.")
    t = torch.arange(depth, dtype=dynamics.W1.dtype) * (1.0 / depth)
    wobble = (dynamics.wobble * torch.sin(2 * math.pi * t))[:, None, None]
    W1, W2 = dynamics.W1 + wobble * dynamics.dW1, dynamics.W2 + wobble * dynamics.dW2
    W1s, W2s = [], []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed * 100_003 + depth)
        W1s.append(W1 + noise * torch.randn(W1.shape, generator=gen, dtype=W1.dtype))
        W2s.append(W2 + noise * torch.randn(W2.shape, generator=gen, dtype=W2.dtype) / math.sqrt(W2.shape[-1]))
    return torch.stack(W1s), torch.stack(W2s)


def make_resnet(dynamics: Dynamics, depth: int, weights: str = "tied", *, noise: float = 0.5, seed: int = 0) -> ResNet:
    """A ResNet of ``depth`` blocks whose weights come from ``dynamics``.

    ``weights``: ``"tied"`` (every block uses θ(0); needs ``dynamics.wobble == 0`` to match the
    ODE), ``"untied, smooth in t"`` (block k uses θ(t_k)) or ``"untied, random"`` (block k uses
    θ(t_k) plus independent Gaussian noise on W1, standard deviation ``noise`` per entry, and on
    W2, ``noise``/√hidden, the same size at every depth; drawn from ``seed`` and the depth, so the
    same arguments give the same network).
    """
    depth = integer("depth N", depth, minimum=1)
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {WEIGHT_KINDS}; got {weights!r}.")
    if weights == "tied":
        return ResNet(depth, [dynamics.theta(0.0)], tied=True)
    if weights == "untied, random":
        W1s, W2s = _random_weights(dynamics, depth, noise, (seed,))
        return ResNet(depth, [(W1, dynamics.b1, W2, dynamics.b2) for W1, W2 in zip(W1s[0], W2s[0])], tied=False)
    step = 1.0 / depth
    thetas = [dynamics.theta(k * step) for k in range(depth)]
    return ResNet(depth, thetas, tied=False)


def euler_hidden_states(dynamics: nn.Module, h0: torch.Tensor, depth: int) -> torch.Tensor:
    """Euler's method with step 1/N on dh/dt = f(h, θ(t), t) over [0, 1], by the course's solver.

    Returns the states at t = 0, 1/N, …, 1: shape ``(N + 1, *h0.shape)``.
    """
    depth = integer("depth N", depth, minimum=1)
    step = 1.0 / depth
    t = torch.tensor([k * step for k in range(depth)] + [1.0], dtype=h0.dtype)
    return odeint(dynamics, h0, t, method="euler", options={"step_size": step})


def ode_hidden_states(dynamics: nn.Module, h0: torch.Tensor, t=None, *, rtol: float = 1e-10, atol: float = 1e-12):
    """The ODE's own solution h(t) (dopri5 at a tight tolerance), at ``t`` (default 101 times in [0, 1])."""
    if t is None:
        t = torch.linspace(0.0, 1.0, 101, dtype=h0.dtype)
    return odeint(dynamics, h0, t, rtol=rtol, atol=atol, method="dopri5")


def fitted_slope(x, y) -> float:
    """The slope of log y against log x, by least squares."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a log–log slope needs at least two points with positive x and y.")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


@dataclass
class DepthStudy:
    """Global error of ResNets of growing depth N against the ODE's solution at t = 1."""

    weights: str
    depths: np.ndarray
    errors: np.ndarray   # max over the batch of |h_N - h(1)|, max-norm
    slope: float         # fitted slope of log(error) against log(N)


def depth_study(dynamics: Dynamics, h0: torch.Tensor, depths=(2, 4, 8, 16, 32, 64, 128, 256), weights: str = "tied",
                *, noise: float = 0.5, seed: int = 0, h_end: torch.Tensor | None = None) -> DepthStudy:
    """Error of the depth-N ResNet's output against the exact flow h(1), for each N in ``depths``.

    ``h_end`` is the ODE's solution at t = 1 (computed with dopri5 at a tight tolerance when
    not given). For ``"untied, random"`` the reference is still the smooth ODE with θ(t).
    """
    depths = np.asarray([integer("depth N", int(n), minimum=1) for n in depths])
    if h_end is None:
        h_end = ode_hidden_states(dynamics, h0, torch.tensor([0.0, 1.0], dtype=h0.dtype))[-1]
    errors = []
    with torch.no_grad():
        for n in depths:
            out = make_resnet(dynamics, int(n), weights, noise=noise, seed=seed)(h0)
            errors.append(float((out - h_end).abs().max()))
    errors = np.asarray(errors)
    return DepthStudy(weights, depths, errors, fitted_slope(depths, errors))


class MeanField(nn.Module):
    """f̄(h, t) = E_ξ f(h, θ(t) + σ ξ, t): the field that random per-block weights average to.

    The noise of :func:`make_resnet`'s ``"untied, random"`` weights on W₂ has mean zero and enters
    f linearly, so it drops out of the mean. The noise on W₁ enters through tanh: hidden unit j
    sees the pre-activation a_j + σ ξ_j·x with x = [h, t] and σ ξ_j·x ~ N(0, σ²|x|²), so its
    tanh is averaged over that Gaussian, by Gauss–Hermite quadrature with ``nodes`` points.
    """

    def __init__(self, dynamics: Dynamics, noise: float = 0.5, *, nodes: int = 48):
        super().__init__()
        if not noise >= 0 or nodes < 1:
            raise ValueError(f"noise must be >= 0 and nodes positive; got noise={noise!r}, nodes={nodes!r}.")
        self.dynamics, self.noise = dynamics, float(noise)
        x, w = np.polynomial.hermite.hermgauss(nodes)
        dtype = dynamics.W1.dtype
        self.register_buffer("_x", torch.tensor(x * math.sqrt(2.0), dtype=dtype))
        self.register_buffer("_w", torch.tensor(w / math.sqrt(math.pi), dtype=dtype))

    def forward(self, t, h):
        W1, b1, W2, b2 = self.dynamics.theta(t)
        t_col = torch.as_tensor(t, dtype=h.dtype).expand(*h.shape[:-1], 1)
        inp = torch.cat((h, t_col), dim=-1)
        pre = (inp @ W1.T + b1)[..., None]
        spread = self.noise * inp.norm(dim=-1, keepdim=True)[..., None]
        mean_tanh = (torch.tanh(pre + spread * self._x) * self._w).sum(-1)
        return mean_tanh @ W2.T + b2


@dataclass
class RandomWeightsStudy:
    """ResNets with random per-block weights against two ODEs, for several seeds (rows) and depths (columns)."""

    depths: np.ndarray
    seeds: tuple
    ode_errors: np.ndarray         # max |h_N − h(1)| against θ(t)'s ODE
    mean_field_errors: np.ndarray  # max |h_N − h̄(1)| against the mean-field ODE dh/dt = f̄(h, t)
    ode_gap: float                 # max |h̄(1) − h(1)|: the distance between the two ODEs' solutions

    def rms_mean_field_errors(self) -> np.ndarray:
        """The error against the mean-field ODE, root mean square over the seeds, for each depth."""
        return np.sqrt((self.mean_field_errors ** 2).mean(axis=0))

    def rms_ode_errors(self) -> np.ndarray:
        """The error against θ(t)'s ODE, root mean square over the seeds, for each depth."""
        return np.sqrt((self.ode_errors ** 2).mean(axis=0))

    def mean_field_slope(self, min_depth: int = 1) -> float:
        """Fitted log–log slope of :meth:`rms_mean_field_errors` over the depths >= ``min_depth``."""
        keep = self.depths >= min_depth
        return fitted_slope(self.depths[keep], self.rms_mean_field_errors()[keep])


def random_weights_study(dynamics: Dynamics, h0: torch.Tensor, depths=(4, 16, 64, 256, 1024, 4096), *,
                         noise: float = 0.5, seeds=(0, 1, 2)) -> RandomWeightsStudy:
    """Errors of ``"untied, random"`` ResNets against θ(t)'s ODE and against the mean-field ODE."""
    depths = np.asarray([integer("depth N", int(n), minimum=1) for n in depths])
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("give at least one seed.")
    points = h0.reshape(-1, h0.shape[-1])    # one starting point, or a batch of them
    ends = torch.tensor([0.0, 1.0], dtype=h0.dtype)
    with torch.no_grad():
        h_end = ode_hidden_states(dynamics, points, ends)[-1]
        h_bar = ode_hidden_states(MeanField(dynamics, noise), points, ends)[-1]
        outs = []
        for n in depths:
            # all seeds at once: block k holds one weight set per seed; the points are repeated per seed
            W1s, W2s = _random_weights(dynamics, int(n), noise, seeds)
            thetas = [(W1s[:, k], dynamics.b1, W2s[:, k], dynamics.b2) for k in range(int(n))]
            outs.append(ResNet(int(n), thetas, tied=False)(points.expand(len(seeds), *points.shape)))
    # max over the points and coordinates of each seed's output: one number per (seed, depth)
    to_ode = torch.stack([(o - h_end).abs().amax(dim=(1, 2)) for o in outs], dim=1).numpy()
    to_mean = torch.stack([(o - h_bar).abs().amax(dim=(1, 2)) for o in outs], dim=1).numpy()
    return RandomWeightsStudy(depths, seeds, to_ode, to_mean, float((h_bar - h_end).abs().max()))
