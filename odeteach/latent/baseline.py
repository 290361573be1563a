"""The latent ODE's baseline: an RNN that reads (x_ti, Δt) and predicts the next point.

Past the data it feeds its own predictions back (autoregressively). It is scored on the same
extrapolation window of :mod:`odeteach.data.spirals` as the latent ODE, which neither model sees in training.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RNNBaseline"]


class RNNBaseline(nn.Module):
    """A GRU that reads (x_ti, t_{i+1} − t_i) and predicts x_{t(i+1)}; past the data it feeds back its predictions."""

    def __init__(self, obs_dim: int = 2, hidden: int = 25):
        super().__init__()
        self.config = dict(obs_dim=obs_dim, hidden=hidden)
        self.rnn = nn.GRU(obs_dim + 1, hidden, batch_first=True)
        self.out = nn.Linear(hidden, obs_dim)

    def read(self, times, x, h=None):
        """Read x_t1 .. x_t(n−1), each with the gap to the next time: predictions (B, n−1, d) and the state."""
        inputs = torch.cat([x[:, :-1], torch.diff(times, dim=1)[..., None]], dim=-1)
        states, h = self.rnn(inputs, h)
        return x[:, :-1] + self.out(states), h  # each output is the change to the next point

    def teacher_forced(self, times, x):
        """Predictions of x_t2 .. x_tn, each from the true points before it: (B, n − 1, d)."""
        return self.read(times, x)[0]

    def step(self, x, dt, h):
        """One step from the point x (B, d) across the gap dt (B,): the predicted next point and the state."""
        state, h = self.rnn(torch.cat([x, dt[:, None]], dim=-1)[:, None], h)
        return x + self.out(state[:, 0]), h

    @torch.no_grad()
    def extrapolate(self, times, x, t_future):
        """Read the observations, then roll out autoregressively to the times ``t_future`` (m,): (B, m, d)."""
        return self.read_and_extrapolate(times, x, t_future)[1]

    @torch.no_grad()
    def read_and_extrapolate(self, times, x, t_future):
        """:meth:`teacher_forced` and :meth:`extrapolate` from one reading of the observations:
        ``(one-step predictions (B, n − 1, d), roll-out (B, m, d))``."""
        steps, h = self.read(times, x) if x.shape[1] > 1 else (x[:, :0], None)
        return steps, self._roll_out(x[:, -1], times[:, -1], h, t_future)

    def _roll_out(self, current, t_now, h, t_future):
        preds = []
        for t_next in t_future:
            current, h = self.step(current, t_next - t_now, h)
            t_now = t_next.expand_as(t_now)
            preds.append(current)
        return torch.stack(preds, dim=1)
