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
* **Untied weights with no smoothness** (θ_k = θ(t_k) + σ ξ_k, independent ξ_k per block): the
  network has no continuous limit of that kind. The per-block kicks average out like a random
  walk, so the error against the smooth ODE stops falling like 1/N.

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

__all__ = [
    "Dynamics", "ResNet", "euler_hidden_states", "ode_hidden_states", "DepthStudy", "depth_study",
    "WEIGHT_KINDS", "make_resnet", "fitted_slope",
]

WEIGHT_KINDS = ("tied", "untied, smooth in t", "untied, random")


def _check_depth(depth) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth N must be a positive integer number of blocks; got {depth!r}.")
    return int(depth)


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
        s = self.wobble * torch.sin(2 * math.pi * torch.as_tensor(t, dtype=self.W1.dtype))
        return self.W1 + s * self.dW1, self.b1, self.W2 + s * self.dW2, self.b2

    @staticmethod
    def apply(h, t, theta):
        """f(h, θ, t) for given weights θ = (W1, b1, W2, b2)."""
        W1, b1, W2, b2 = theta
        t_col = torch.as_tensor(t, dtype=h.dtype).expand(*h.shape[:-1], 1)
        inp = torch.cat((h, t_col), dim=-1)
        return torch.tanh(inp @ W1.T + b1) @ W2.T + b2

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
        self.depth = _check_depth(depth)
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


def make_resnet(dynamics: Dynamics, depth: int, weights: str = "tied", *, noise: float = 0.5, seed: int = 0) -> ResNet:
    """A ResNet of ``depth`` blocks whose weights come from ``dynamics``.

    ``weights``: ``"tied"`` (every block uses θ(0); needs ``dynamics.wobble == 0`` to match the
    ODE), ``"untied, smooth in t"`` (block k uses θ(t_k)) or ``"untied, random"`` (block k uses
    θ(t_k) plus independent Gaussian noise of size ``noise`` on W1 and W2, drawn from ``seed``
    and the depth, so the same arguments give the same network).
    """
    depth = _check_depth(depth)
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {WEIGHT_KINDS}; got {weights!r}.")
    if weights == "tied":
        return ResNet(depth, [dynamics.theta(0.0)], tied=True)
    step = 1.0 / depth
    thetas = [dynamics.theta(k * step) for k in range(depth)]
    if weights == "untied, random":
        gen = torch.Generator().manual_seed(seed * 100_003 + depth)
        noisy = []
        for W1, b1, W2, b2 in thetas:
            noisy.append((W1 + noise * torch.randn(W1.shape, generator=gen, dtype=W1.dtype),
                          b1,
                          W2 + noise * torch.randn(W2.shape, generator=gen, dtype=W2.dtype) / math.sqrt(W2.shape[1]),
                          b2))
        thetas = noisy
    return ResNet(depth, thetas, tied=False)


def euler_hidden_states(dynamics: nn.Module, h0: torch.Tensor, depth: int) -> torch.Tensor:
    """Euler's method with step 1/N on dh/dt = f(h, θ(t), t) over [0, 1], by the course's solver.

    Returns the states at t = 0, 1/N, …, 1: shape ``(N + 1, *h0.shape)``.
    """
    depth = _check_depth(depth)
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
    depths = np.asarray([_check_depth(int(n)) for n in depths])
    if h_end is None:
        h_end = ode_hidden_states(dynamics, h0, torch.tensor([0.0, 1.0], dtype=h0.dtype))[-1]
    errors = []
    with torch.no_grad():
        for n in depths:
            out = make_resnet(dynamics, int(n), weights, noise=noise, seed=seed)(h0)
            errors.append(float((out - h_end).abs().max()))
    errors = np.asarray(errors)
    return DepthStudy(weights, depths, errors, fitted_slope(depths, errors))
