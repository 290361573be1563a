"""The three classifiers' layers and the factory that builds them, and where they run (the device).

All three share one shape::

    image (1×8×8) ─ downsampling (conv 3×3, GroupNorm, ReLU, conv 4×4 stride 2) ─ 4×4 feature maps
                  ─ feature block ─ head (GroupNorm, ReLU, global average pool, linear) ─ 10 logits

and differ only in the feature block: 6 :class:`ResBlock` (ResNet), or one :class:`ODEBlock` on the
dynamics :class:`ODEFunc`, solved by fixed-step RK4 (RK-Net) or by adaptive dopri5 (ODE-Net).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..adjoint import odeint_adjoint
from ..integrate import solve
from ..regularisation import Regularisation, RegularisedDynamics
from ..tableaux import TABLEAUX
from ..validation import integer

__all__ = ["KINDS", "CHANNELS", "GROUPS", "N_RES_BLOCKS", "N_CLASSES", "RKNET_STEP", "resolve_device", "synchronize",
           "group_norm", "ConcatConv2d", "ODEFunc", "ResBlock", "ODEBlock", "Classifier", "make_model",
           "count_parameters"]

KINDS = ("resnet", "rknet", "odenet")
CHANNELS = 32          # feature maps in every layer (the paper's MNIST net uses 64 on 28×28 images)
GROUPS = 8             # GroupNorm groups: 4 channels per group (the paper: min(32, channels))
N_RES_BLOCKS = 6       # the paper's ResNet has 6 residual blocks after downsampling
N_CLASSES = 10
RKNET_STEP = 0.25      # RK-Net: 4 fixed RK4 steps on [0, 1], 16 evaluations of f per forward pass


def resolve_device(device=None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but torch sees no CUDA device here. Use device='cpu'.")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for the GPU to finish its queued work, so that a timer measures it (nothing to do on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------------------------
# Layers


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with :data:`GROUPS` groups (fewer when there are fewer channels)."""
    return nn.GroupNorm(min(GROUPS, channels), channels)


class ConcatConv2d(nn.Module):
    """A 3×3 convolution of ``[t, h]``: the time t enters as one more constant input channel."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv = nn.Conv2d(channels_in + 1, channels_out, kernel_size=3, padding=1)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        t_channel = torch.ones_like(h[:, :1]) * t
        return self.conv(torch.cat([t_channel, h], dim=1))


class ODEFunc(nn.Module):
    """The dynamics f(h(t), θ, t): norm, ReLU, conv[t, ·], norm, ReLU, conv[t, ·], norm.

    ``nfe`` counts evaluations of f; ``vjp`` counts vector–Jacobian products that backprop took
    through an evaluation (when ``count_vjp`` is on).
    """

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.norm1 = group_norm(channels)
        self.conv1 = ConcatConv2d(channels, channels)
        self.norm2 = group_norm(channels)
        self.conv2 = ConcatConv2d(channels, channels)
        self.norm3 = group_norm(channels)
        self.nfe = 0
        self.vjp = 0
        self.count_vjp = False

    def _count_vjp(self, grad):
        self.vjp += 1
        return grad

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        out = self.conv1(t, F.relu(self.norm1(h)))
        out = self.conv2(t, F.relu(self.norm2(out)))
        out = self.norm3(out)
        if self.count_vjp and out.requires_grad:
            out.register_hook(self._count_vjp)
        return out


class ResBlock(nn.Module):
    """One residual block h + f(h, θ_t): the same layers as :class:`ODEFunc`, without t."""

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.norm1 = group_norm(channels)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.norm2 = group_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.norm3 = group_norm(channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(h)))
        out = self.conv2(F.relu(self.norm2(out)))
        return h + self.norm3(out)


class ODEBlock(nn.Module):
    """h(1) = h(0) + ∫₀¹ f(h(t), θ, t) dt, solved by ``method`` at ``rtol``/``atol``.

    Parameters
    ----------
    func : the dynamics (an :class:`ODEFunc`).
    method : an adaptive method (``"dopri5"``, ``"bosh3"``) or a fixed-step one (``"rk4"`` …, then
        ``step_size`` sets h).
    rtol, atol : tolerances of an adaptive method; change them any time, e.g. at test time.
    adjoint : gradients by the adjoint method (O(1) memory in the number of steps) instead of
        backprop through every operation of the solver.
    regularisation : ``None``, or ``(λ_K, λ_J)``: while training (grad enabled, ``model.train()``), the
        solve also integrates the kinetic energy and the Jacobian's Frobenius norm along the path
        (:mod:`odeteach.regularisation`), and ``penalty`` holds ``λ_K·E_K + λ_J·E_J`` (batch mean) for the
        loss to add. At evaluation the block solves the plain ODE: the same cost as an unregularised one.

    After each forward pass ``nfe_forward`` is the number of evaluations of f it took; after a
    backward pass ``nfe_backward`` is the number the backward pass took: evaluations of f on the
    augmented adjoint system with ``adjoint=True``, and vector–Jacobian products through the
    recorded evaluations of f (one per evaluation that the loss depends on) without it.
    """

    def __init__(self, func: ODEFunc, *, method: str = "dopri5", rtol: float = 1e-3, atol: float = 1e-3,
                 adjoint: bool = False, step_size: float | None = None, max_num_steps: int = 1000,
                 regularisation=None):
        super().__init__()
        if method not in TABLEAUX:
            raise ValueError(f"Unknown method {method!r}. Valid methods: {', '.join(TABLEAUX)}.")
        if not TABLEAUX[method].adaptive and step_size is None:
            raise ValueError(f"the fixed-step method {method!r} needs a step_size, e.g. step_size=0.25.")
        self.func = func
        self.method = method
        self.rtol = rtol
        self.atol = atol
        self.adjoint = bool(adjoint)
        self.step_size = step_size
        self.max_num_steps = max_num_steps
        self.regularisation = Regularisation.of(regularisation)
        self.penalty = None
        self.register_buffer("integration_time", torch.tensor([0.0, 1.0]), persistent=False)
        self._nfe_at_forward_end = 0
        self._vjp_at_forward_start = 0
        self.nfe_forward = 0

    @property
    def nfe_backward(self) -> int:
        if self.adjoint:
            return self.func.nfe - self._nfe_at_forward_end
        return self.func.vjp - self._vjp_at_forward_start

    def options(self) -> dict:
        if TABLEAUX[self.method].adaptive:
            return {"max_num_steps": self.max_num_steps}
        return {"step_size": self.step_size, "max_num_steps": self.max_num_steps}

    def forward(self, h0: torch.Tensor) -> torch.Tensor:
        t = self.integration_time.to(h0.dtype)
        start = self.func.nfe
        self._vjp_at_forward_start = self.func.vjp
        kwargs = dict(rtol=self.rtol, atol=self.atol, method=self.method, options=self.options())
        self.penalty = None
        if self.regularisation and self.training and torch.is_grad_enabled():
            h1 = self._regularised_solve(h0, t, kwargs)
        elif self.adjoint and torch.is_grad_enabled():
            self.func.count_vjp = False
            h1 = odeint_adjoint(self.func, h0, t, **kwargs)[-1]
        else:
            self.func.count_vjp = torch.is_grad_enabled()
            h1 = solve(self.func, h0, t, **kwargs).ys[-1]
            self.func.count_vjp = False
        self._nfe_at_forward_end = self.func.nfe
        self.nfe_forward = self.func.nfe - start
        return h1

    def _regularised_solve(self, h0, t, kwargs):
        """Solve ``(h, E_K, E_J)`` together (noise drawn from torch's global generator, which training seeds);
        set :attr:`penalty` and return h(1)."""
        dynamics = RegularisedDynamics(self.func, torch.randn_like(h0))
        zero = h0.new_zeros(h0.shape[0])
        state = (h0, zero, zero.clone())
        if self.adjoint:
            self.func.count_vjp = False
            hs, kinetic, jacobian = odeint_adjoint(dynamics, state, t, **kwargs)
        else:
            # Count the backward pass's VJPs through f's outputs, not the penalty's own VJPs during this solve.
            self.func.count_vjp = True
            hs, kinetic, jacobian = solve(dynamics, state, t, **kwargs).ys
            self.func.count_vjp = False
            self._vjp_at_forward_start = self.func.vjp
        weights = self.regularisation
        self.penalty = weights.kinetic * kinetic[-1].mean() + weights.jacobian * jacobian[-1].mean()
        return hs[-1]

    def extra_repr(self) -> str:
        how = f"step_size={self.step_size}" if self.step_size is not None else f"rtol={self.rtol:g}, atol={self.atol:g}"
        extra = f", regularisation=({self.regularisation.kinetic:g}, {self.regularisation.jacobian:g})" \
            if self.regularisation else ""
        return f"method={self.method!r}, {how}, adjoint={self.adjoint}{extra}"


class Classifier(nn.Module):
    """downsampling → feature block (6 ResBlocks or one ODEBlock) → head. ``kind`` names which."""

    def __init__(self, kind: str, feature: nn.Module, channels: int = CHANNELS, in_channels: int = 1):
        super().__init__()
        self.kind = kind
        self.downsampling = nn.Sequential(
            nn.Conv2d(in_channels, channels, kernel_size=3, padding=1),
            group_norm(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=4, stride=2, padding=1),
        )
        self.feature = feature
        self.head = nn.Sequential(group_norm(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(channels, N_CLASSES))

    @property
    def ode_block(self) -> ODEBlock | None:
        return self.feature if isinstance(self.feature, ODEBlock) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.downsampling[0].in_channels:
            raise ValueError(f"expected images of shape (N, {self.downsampling[0].in_channels}, H, W); "
                             f"got {tuple(x.shape)}.")
        return self.head(self.feature(self.downsampling(x)))


def make_model(kind: str, *, channels: int = CHANNELS, method: str | None = None, rtol: float = 1e-3,
               atol: float = 1e-3, adjoint: bool | None = None, step_size: float | None = None,
               regularisation=None, seed: int | None = 0, device=None) -> Classifier:
    """A fresh model of ``kind`` (``"resnet"``, ``"rknet"`` or ``"odenet"``), initialised from ``seed``.

    ODE-Net defaults: dopri5 at rtol = atol = 1e-3 with the adjoint. RK-Net: rk4 with step 0.25 and
    backprop through the solver. The ODE options are rejected for the ResNet. ``regularisation``
    ``(λ_K, λ_J)`` penalises the ODE-Net's dynamics while it trains (:class:`ODEBlock`).
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown model kind {kind!r}. Valid kinds: {', '.join(KINDS)}.")
    channels = integer("channels", channels, minimum=1)
    if channels > GROUPS and channels % GROUPS:
        raise ValueError(f"channels must be a multiple of {GROUPS} (GroupNorm splits them into {GROUPS} groups); got {channels}.")
    if seed is not None:
        torch.manual_seed(seed)
    if kind == "resnet":
        if method is not None or adjoint is not None or step_size is not None or regularisation is not None:
            raise ValueError("method, adjoint, step_size and regularisation apply to the ODE blocks (rknet, odenet), not to the resnet.")
        feature = nn.Sequential(*(ResBlock(channels) for _ in range(N_RES_BLOCKS)))
    elif kind == "rknet":
        if adjoint:
            raise ValueError("RK-Net is defined by backprop through a fixed-step solver: adjoint must be False.")
        feature = ODEBlock(ODEFunc(channels), method=method or "rk4", step_size=step_size or RKNET_STEP, adjoint=False,
                           regularisation=regularisation)
    else:
        feature = ODEBlock(ODEFunc(channels), method=method or "dopri5", rtol=rtol, atol=atol,
                           adjoint=True if adjoint is None else adjoint, step_size=step_size,
                           regularisation=regularisation)
    return Classifier(kind, feature, channels).to(resolve_device(device))


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
