"""What both models predict for one held-out spiral observed at some of its points: lesson 5's explorer reads this.

:class:`SpiralPredictions` answers "spiral s, observed at n points placed so, with draw number ``seed``" with a
:class:`SpiralPrediction`: the observed points, the latent ODE's posterior-mean trajectory and
:data:`MAX_SAMPLES` posterior samples (one batched solve), the RNN baseline's one-step predictions and its
roll-out, and both extrapolation errors against the noise-free spiral. Each state is computed once and kept,
so showing more or fewer samples, or coming back to a spiral, computes nothing. The models run as
:func:`display_copies`: the same numbers, bit for bit, with fewer Python calls per evaluation.

The draw follows :func:`~odeteach.latent.posterior_check`: one generator seeded with ``seed`` picks the
observed points (:func:`~odeteach.data.spirals.subsample`, the same points for every spiral), then the
posterior samples. The samples shown are always the first ``k`` of the same :data:`MAX_SAMPLES`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.spirals import PLACEMENTS, Spirals, observe, subsample
from ..validation import integer
from .baseline import RNNBaseline
from .evaluation import sample_spread
from .model import SOLVER, LatentODE

__all__ = ["MAX_SAMPLES", "SpiralPrediction", "SpiralPredictions", "display_copies"]

# Posterior samples solved with the mean in every state; a view shows the first k of them.
MAX_SAMPLES = 20
# States kept (each holds 1 + MAX_SAMPLES paths of 150 points: about 25 kB).
CACHE_SIZE = 1000
# Sets of observed points for which the RNN's roll-outs of every spiral are kept.
RNN_BATCHES = 50


def _trim(cache: OrderedDict, size: int) -> None:
    """Drop the oldest entries of ``cache`` beyond ``size``."""
    while len(cache) > size:
        cache.popitem(last=False)


@dataclass(frozen=True)
class SpiralPrediction:
    """Both models on one spiral, as NumPy arrays ready to plot.

    ``times`` (n,) and ``points`` (n, 2): the observations. ``t_display`` (T,): the decoded times, the
    first ``n_window`` in the observed window. ``mean_path`` (T, 2): the posterior mean's decoded
    trajectory; ``sample_paths`` (MAX_SAMPLES, T, 2): the posterior samples'. ``nfe``: the evaluations of
    the one dopri5 solve (:data:`~odeteach.latent.SOLVER`) of the mean and all samples together.
    ``rnn_steps`` (n − 1, 2): the RNN's one-step predictions of points 2..n; ``rnn_extrapolation`` (m, 2):
    its roll-out to the extrapolation times. ``clean`` (n_grid, 2) and ``clean_extrapolate`` (m, 2): the
    noise-free spiral. ``rmse_latent`` and ``rmse_rnn``: each model's RMSE against ``clean_extrapolate``.
    """

    spiral: int
    clockwise: bool
    times: np.ndarray
    points: np.ndarray
    t_display: np.ndarray
    n_window: int
    mean_path: np.ndarray
    sample_paths: np.ndarray
    nfe: int
    rnn_steps: np.ndarray
    rnn_extrapolation: np.ndarray
    clean: np.ndarray
    clean_extrapolate: np.ndarray
    rmse_latent: float
    rmse_rnn: float

    @property
    def n_observed(self) -> int:
        return self.points.shape[0]

    def spread(self, n_samples: int) -> float:
        """The first ``n_samples`` samples' spread in the extrapolation window (:func:`sample_spread`);
        NaN for fewer than 2."""
        n_samples = integer("n_samples", n_samples, minimum=0, maximum=self.sample_paths.shape[0])
        if n_samples < 2:
            return float("nan")
        return sample_spread(torch.from_numpy(self.sample_paths[:n_samples, self.n_window:]))


class SpiralPredictions:
    """Both models' predictions for the spirals of ``data``, one state at a time, each computed once.

    ``get(spiral, n_observed, placement, seed)`` returns a :class:`SpiralPrediction`. The models are
    only read (in eval mode, without gradients); replace them and make a new ``SpiralPredictions``.
    """

    def __init__(self, latent: LatentODE, rnn: RNNBaseline, data: Spirals, *, cache_size: int = CACHE_SIZE):
        if not isinstance(latent, LatentODE) or not isinstance(rnn, RNNBaseline):
            raise TypeError("SpiralPredictions needs a LatentODE and an RNNBaseline "
                            "(see odeteach.latent.load_pretrained); got "
                            f"{type(latent).__name__} and {type(rnn).__name__}.")
        if not isinstance(data, Spirals) or len(data) == 0:
            raise TypeError("data must be a non-empty odeteach.data.spirals.Spirals set.")
        self.latent, self.rnn, self.data = latent.eval(), rnn.eval(), data
        self._latent, self._rnn_model, self.fast = display_copies(self.latent, self.rnn, data)
        self.n_grid = data.t.shape[0]
        # Decoded at every grid time of both windows, as the lesson's evaluation does. Every second window time
        # would save a third of the solver's interpolations, but the drawn line would then move by up to 1.6 px
        # (median 0.7 px) at device pixel ratio 1 (measured over 200 states): not far below a line's width.
        self.t_display, self.n_window = torch.cat([data.t, data.t_extrapolate]), data.t.shape[0]
        self.cache_size = integer("cache_size", cache_size, minimum=1)
        self.computed = 0    # states computed so far (not found in the cache)
        self._states: OrderedDict = OrderedDict()
        self._rnn_one: OrderedDict = OrderedDict()     # (spiral, observed indices) -> RNN arrays
        self._rnn_seen: OrderedDict = OrderedDict()    # observed indices read for one spiral so far
        self._rnn_all: OrderedDict = OrderedDict()     # observed indices -> RNN arrays of every spiral

    def check(self, spiral, n_observed, placement) -> tuple[int, int, str]:
        """The state's arguments, checked: a clear ValueError for a spiral, count or placement out of range."""
        spiral = integer("spiral", spiral, minimum=0, maximum=len(self.data) - 1)
        n_observed = integer("n_observed", n_observed, minimum=1, maximum=self.n_grid)
        if placement not in PLACEMENTS:
            raise ValueError(f"Unknown placement {placement!r}. Valid placements: {', '.join(PLACEMENTS)}.")
        return spiral, n_observed, placement

    def get(self, spiral: int, n_observed: int, placement: str, seed: int = 0) -> SpiralPrediction:
        """The prediction for this state, from the cache or computed now."""
        key = (*self.check(spiral, n_observed, placement), integer("seed", seed))
        if key in self._states:
            self._states.move_to_end(key)
            return self._states[key]
        prediction = self._compute(*key)
        self.computed += 1
        self._states[key] = prediction
        _trim(self._states, self.cache_size)
        return prediction

    def _rnn(self, spiral: int, indices: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The RNN's one-step predictions and roll-out for ``spiral`` observed at ``indices``.

        The RNN depends on the observed points only (not on the posterior draw). The first spiral asked
        for under a set of points is read alone; the second one reads every spiral under those points at
        once (a batch of all of them costs about two single ones), so moving the spiral slider finds the
        roll-out ready.
        """
        key = tuple(indices.tolist())
        if key in self._rnn_all:
            self._rnn_all.move_to_end(key)
            steps, rolled = self._rnn_all[key]
            return steps[spiral], rolled[spiral]
        if (spiral, key) in self._rnn_one:
            return self._rnn_one[(spiral, key)]
        batch = key in self._rnn_seen
        steps, rolled = self._roll_out(self.data if batch else self.data[spiral], indices)
        if batch:
            self._rnn_all[key] = (steps, rolled)
            _trim(self._rnn_all, RNN_BATCHES)
            return steps[spiral], rolled[spiral]
        self._rnn_seen[key] = None
        self._rnn_one[(spiral, key)] = steps[0], rolled[0]
        _trim(self._rnn_seen, self.cache_size)
        _trim(self._rnn_one, self.cache_size)
        return steps[0], rolled[0]

    def _roll_out(self, spirals: Spirals, indices: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        times, x = observe(spirals, indices)
        steps, rolled = self._rnn_model.read_and_extrapolate(times, x, self.data.t_extrapolate)
        if not (torch.isfinite(steps).all() and torch.isfinite(rolled).all()):
            raise ValueError("the RNN produced non-finite values for these observed points.")
        return steps.numpy(), rolled.numpy()

    @torch.inference_mode()
    def _compute(self, spiral: int, n_observed: int, placement: str, seed: int) -> SpiralPrediction:
        one = self.data[spiral]
        gen = torch.Generator().manual_seed(seed)   # first the observed points, then the posterior samples
        indices = subsample(self.n_grid, n_observed, placement, generator=gen)
        times, x = observe(one, indices)
        mean_path, samples = self._latent.predict(times, x, self.t_display, n_samples=MAX_SAMPLES, generator=gen)
        nfe = self._latent.last_nfe
        if not (torch.isfinite(mean_path).all() and torch.isfinite(samples).all()):
            raise ValueError(f"the latent ODE produced non-finite values for spiral {spiral} observed at these points.")
        rnn_steps, rnn_extrapolation = self._rnn(spiral, indices)
        mean_path, samples = mean_path[0].numpy(), samples[:, 0].numpy()
        clean, target = one.clean[0].numpy(), one.clean_extrapolate[0].numpy()
        rmse = lambda pred: float(np.sqrt(((pred - target) ** 2).mean()))  # noqa: E731
        return SpiralPrediction(
            spiral=spiral, clockwise=bool(one.clockwise[0]), times=times[0].numpy(), points=x[0].numpy(),
            t_display=self.t_display.numpy(), n_window=self.n_window, mean_path=mean_path, sample_paths=samples,
            nfe=int(nfe), rnn_steps=rnn_steps, rnn_extrapolation=rnn_extrapolation, clean=clean,
            clean_extrapolate=target, rmse_latent=rmse(mean_path[self.n_window:]), rmse_rnn=rmse(rnn_extrapolation))

    def solver_description(self) -> str:
        """The solve that ``SpiralPrediction.nfe`` counts, in words."""
        return (f"{SOLVER['method']} at rtol {SOLVER['rtol']:g}, atol {SOLVER['atol']:g}; "
                f"the posterior mean and {MAX_SAMPLES} samples in one batch")


# --------------------------------------------------------------------------------------------
# Display copies of the models: the same numbers, fewer Python calls per evaluation
#
# A state's cost is mostly per-call overhead, not arithmetic: 80 or so evaluations of the latent field (each six
# nested nn.Module calls around five tiny tensor operations) and a 50-step roll-out of the RNN (each step three
# module calls and a dozen small tensor operations around one GRU cell). The copies below run each model's own
# ``predict``, ``teacher_forced`` and ``read_and_extrapolate`` with two pieces replaced by plain functions of the
# same weights, calling the same kernels on the same numbers: the field's MLP (each Linear as the ``addmm`` that
# ``F.linear`` runs, each activation in place on the fresh tensor the layer before made), and the RNN's roll-out
# (``torch.gru_cell`` and the output layer, the gaps between the times taken in one ``diff``). Measured on the
# development machine (benchmarks/README.md): a call of the field 44 µs as the nn.Sequential, 17 µs in this form;
# the RNN's read and roll-out for one state 3.7 ms with one-step module calls, 2.5 ms in this form.
# :func:`display_copies` keeps a copy only when it gives bit-for-bit the original's outputs on a probe.

# Elementwise layers: (out-of-place, in-place) forms; in place only on a tensor the field itself made.
_ELEMENTWISE = {nn.ELU: lambda m: (lambda z: F.elu(z, m.alpha), lambda z: F.elu_(z, m.alpha)),
                nn.ReLU: lambda m: (F.relu, torch.relu_), nn.Tanh: lambda m: (torch.tanh, torch.tanh_),
                nn.Sigmoid: lambda m: (torch.sigmoid, torch.sigmoid_),
                nn.Softplus: lambda m: (lambda z: F.softplus(z, m.beta, m.threshold),) * 2}


class _PlainField(nn.Module):
    """``f(t, z) = net(z)`` for an ``nn.Sequential`` ``net`` of Linear layers and elementwise activations,
    evaluated as one function of the layers' tensors (no nested module calls)."""

    def __init__(self, net: nn.Sequential):
        super().__init__()
        self.layers = []
        fresh = False   # whether z is a tensor made here (not the solver's state), which may change in place
        for m in net:
            if type(m) is nn.Linear:
                w, b = m.weight.detach(), None if m.bias is None else m.bias.detach()
                # F.linear(z, w, b) is addmm(b, z, w.t()) for a 2-D z (mm without a bias): the same kernel, no wrapper
                self.layers.append((lambda z, wt=w.t(): torch.mm(z, wt)) if b is None else
                                   (lambda z, b=b, wt=w.t(): torch.addmm(b, z, wt)))
                fresh = True
            elif type(m) in _ELEMENTWISE:
                out_of_place, in_place = _ELEMENTWISE[type(m)](m)
                self.layers.append(in_place if fresh else out_of_place)
                fresh = True
            elif type(m) is not nn.Identity:
                raise TypeError(f"no plain form for a {type(m).__name__} layer")

    def forward(self, t, z):
        shape = z.shape   # (samples, batch, latent): as F.linear does for a contiguous input, one 2-D product
        z = z.reshape(-1, shape[-1])
        for layer in self.layers:
            z = layer(z)
        return z.view(*shape[:-1], z.shape[-1])

    # The solver calls the field 80 or so times per state; nothing sets hooks on a display copy, so the call goes
    # straight to forward (nn.Module.__call__ would look for hooks first: a few µs a call).
    __call__ = forward


class _PlainRollOut(RNNBaseline):
    """:class:`RNNBaseline` whose roll-out runs ``torch.gru_cell`` and the output layer on the model's own weights.

    Each step is what :meth:`RNNBaseline.step` computes (the GRU's one-step update from the point and the gap to
    the next time, then the point plus the output layer's change), in four tensor operations instead of a dozen.
    """

    def _roll_out(self, current, t_now, h, t_future):
        gru = self.rnn
        if h is None or gru.num_layers != 1 or gru.bidirectional or not gru.batch_first or not gru.bias:
            return super()._roll_out(current, t_now, h, t_future)
        weights = (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
        times = torch.cat([t_now[:, None], t_future.expand(t_now.shape[0], -1)], dim=1)
        gaps = torch.diff(times, dim=1)[..., None].unbind(1)   # t_next - t_now of each step, (B, 1) each
        state, preds = h[0], []
        for gap in gaps:
            state = torch.gru_cell(torch.cat([current, gap], dim=-1), state, *weights)
            current = current + F.linear(state, self.out.weight, self.out.bias)
            preds.append(current)
        return torch.stack(preds, dim=1)


def display_copies(latent: LatentODE, rnn: RNNBaseline, data: Spirals) -> tuple[LatentODE, RNNBaseline, bool]:
    """Copies of the two models for the explorer, faster per call, and whether they are the fast ones.

    Each copy is used only if it reproduces the original exactly (``torch.equal``, and the same NFE) on a probe:
    the first spiral of ``data`` observed at 10 random points, with 3 posterior samples. Otherwise (a changed
    model, a layer without a plain form) the originals are returned, and ``False``.

    The copies are made outside inference mode: weights copied inside it are inference tensors, on which torch's
    GRU takes another path for large batches and can differ from the original in the last bit.
    """
    try:
        fast_latent = copy.deepcopy(latent).eval()
        fast_latent.dynamics = _PlainField(fast_latent.dynamics.net)
        fast_rnn = _PlainRollOut(**rnn.config)
        fast_rnn.load_state_dict(rnn.state_dict())
        fast_rnn.eval()
    except Exception:   # a copy that cannot be made is no copy: the originals still work
        return latent, rnn, False
    with torch.inference_mode():
        same = _same_outputs(latent, rnn, fast_latent, fast_rnn, data)
    return (fast_latent, fast_rnn, True) if same else (latent, rnn, False)


def _same_outputs(latent, rnn, fast_latent, fast_rnn, data: Spirals) -> bool:
    """Whether the copies give the originals' outputs exactly on :func:`display_copies`'s probe."""
    times, x = observe(data[0], subsample(data.t.shape[0], min(10, data.t.shape[0]), "random",
                                          generator=torch.Generator().manual_seed(0)))
    t_out = torch.cat([data.t, data.t_extrapolate])
    try:
        runs = []
        for model in (latent, fast_latent):
            paths = model.predict(times, x, t_out, n_samples=3, generator=torch.Generator().manual_seed(1))
            runs.append((*paths, model.last_nfe))
        same = all(torch.equal(a, b) for a, b in zip(runs[0][:2], runs[1][:2])) and runs[0][2] == runs[1][2]
        for method in ("teacher_forced", "extrapolate"):
            args = (times, x) if method == "teacher_forced" else (times, x, data.t_extrapolate)
            same = same and torch.equal(getattr(rnn, method)(*args), getattr(fast_rnn, method)(*args))
        return same
    except Exception:   # a copy that cannot run is no copy: the originals still work
        return False
