"""The vector field ``f(z, t, θ)`` of a continuous normalizing flow: an MLP that sees the time at every layer."""

from __future__ import annotations

import torch
from torch import nn

from ..validation import integer

__all__ = ["ConcatTimeMLP"]


class ConcatTimeMLP(nn.Module):
    """f(z, t, θ): an MLP whose every layer also sees the time t (``concat-time``).

    Layer k maps ``[h, t] ↦ tanh(W_k [h, t] + b_k)``; the last layer is linear. With the time
    fed to every layer the field can change its shape over the flow, which a single
    time-independent field could not (FFJORD's ConcatLinear layers do the same).
    """

    def __init__(self, dim: int = 2, hidden: int = 64, layers: int = 3):
        super().__init__()
        self.dim, self.hidden, self.layers = (integer(name, value, minimum=1) for name, value in
                                              (("dim", dim), ("hidden", hidden), ("layers", layers)))
        sizes = [self.dim] + [self.hidden] * self.layers + [self.dim]
        self.linears = nn.ModuleList(nn.Linear(a + 1, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, t, z: torch.Tensor) -> torch.Tensor:
        """``t`` is one time (a number or 0-dim tensor), or one time per row of ``z``."""
        time = torch.as_tensor(t, dtype=z.dtype, device=z.device)
        time = time.expand(*z.shape[:-1], 1) if time.numel() == 1 else time.reshape(*z.shape[:-1], 1)
        h = z
        for k, linear in enumerate(self.linears):
            h = linear(torch.cat([h, time], dim=-1))
            if k < len(self.linears) - 1:
                h = torch.tanh(h)
        return h
