"""Lesson 5's explorer (LatentSpiralExplorer) and what it reads (odeteach.latent.predictive): Agg backend, no kernel."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from odeteach import latent as L  # noqa: E402
from odeteach.data.spirals import PLACEMENTS, observe, subsample  # noqa: E402
from odeteach.latent.predictive import MAX_SAMPLES, SpiralPredictions, display_copies  # noqa: E402
from odeteach.widgets.base import Explorer, slider_values  # noqa: E402
from odeteach.widgets.latent import LatentSpiralExplorer  # noqa: E402
from widget_support import IPYMPL, Browser, redrawn_from_scratch  # noqa: E402


@pytest.fixture(scope="module")
def models():
    latent, rnn, _, _ = L.load_pretrained()
    return latent, rnn


@pytest.fixture(scope="module")
def held_out():
    return L.spiral_data()[1]


@pytest.fixture(scope="module")
def explorer(models, held_out):
    return LatentSpiralExplorer(*models, held_out, n_samples=4)


def _state(e):
    return e.spiral.value, e.n_observed.value, e.placement.value


# ---------------------------------------------------------------- what the explorer reads
def test_a_state_is_both_models_on_the_observed_points(models, held_out):
    """The numbers are the models' own: latent.predict (mean and samples, one generator as posterior_check
    draws them) and the RNN's teacher_forced and extrapolate, scored against the noise-free spiral."""
    latent, rnn = models
    p = SpiralPredictions(latent, rnn, held_out).get(7, 12, "bunched", seed=3)
    gen = torch.Generator().manual_seed(3)
    times, x = observe(held_out[7], subsample(100, 12, "bunched", generator=gen))
    t_all = torch.cat([held_out.t, held_out.t_extrapolate])
    mean, samples = latent.predict(times, x, t_all, n_samples=MAX_SAMPLES, generator=gen)
    assert np.array_equal(p.points, x[0].numpy()) and np.array_equal(p.times, times[0].numpy())
    assert np.array_equal(p.mean_path, mean[0].numpy()) and np.array_equal(p.sample_paths, samples[:, 0].numpy())
    assert p.nfe == latent.last_nfe
    rolled = rnn.extrapolate(times, x, held_out.t_extrapolate)[0]
    assert np.allclose(p.rnn_extrapolation, rolled.numpy(), atol=1e-6)
    assert np.allclose(p.rnn_steps, rnn.teacher_forced(times, x)[0].detach().numpy(), atol=1e-6)
    target = held_out.clean_extrapolate[7]
    assert p.rmse_latent == pytest.approx(float(((mean[0, 100:] - target) ** 2).mean().sqrt()), rel=1e-5)
    assert p.rmse_rnn == pytest.approx(float(((rolled - target) ** 2).mean().sqrt()), rel=1e-5)
    assert p.spread(6) == pytest.approx(L.sample_spread(samples[:6, :, 100:]), rel=1e-5)
    assert math.isnan(p.spread(1))


def test_display_copies_are_exact_and_fall_back_for_a_model_they_do_not_know(models, held_out):
    latent, rnn = models
    fast_latent, fast_rnn, fast = display_copies(latent, rnn, held_out)
    assert fast and fast_latent is not latent and fast_rnn is not rnn
    odd = L.LatentODE(**latent.config)
    odd.load_state_dict(latent.state_dict())
    odd.dynamics.net[1] = nn.GELU()   # a layer without a plain form: the originals are used
    slow_latent, slow_rnn, fast = display_copies(odd, rnn, held_out)
    assert not fast and slow_latent is odd and slow_rnn is rnn


def test_display_copies_compute_the_same_numbers_bit_for_bit(models, held_out):
    """The plain field and roll-out call the same kernels on the same numbers: equal, not close, for every
    spiral at once (the RNN's batched read), for one observed point (no state to start the roll-out from)."""
    latent, rnn = models
    fast_latent, fast_rnn, fast = display_copies(latent, rnn, held_out)
    assert fast
    gen = torch.Generator().manual_seed(5)
    for n in (1, 2, 40):
        times, x = observe(held_out, subsample(100, n, "bunched", generator=gen))
        for a, b in zip(rnn.read_and_extrapolate(times, x, held_out.t_extrapolate),
                        fast_rnn.read_and_extrapolate(times, x, held_out.t_extrapolate)):
            assert torch.equal(a, b), n
    with torch.inference_mode():
        for z in (torch.randn(7, 4, generator=gen), torch.randn(21, 3, 4, generator=gen)):
            kept = z.clone()
            assert torch.equal(fast_latent.dynamics(0.0, z), latent.dynamics(0.0, z))
            assert torch.equal(z, kept)      # the activations run in place on the field's own tensors only


def test_a_plain_field_never_changes_its_input():
    """An activation in place right on the solver's state would corrupt it: the first layer runs out of place."""
    from odeteach.latent.predictive import _PlainField
    net = nn.Sequential(nn.ELU(), nn.Linear(4, 4), nn.Tanh())
    z = torch.randn(5, 4) - 1
    kept = z.clone()
    with torch.inference_mode():
        assert torch.equal(_PlainField(net)(0.0, z), net(z))
    assert torch.equal(z, kept)


def test_the_rnn_reads_every_spiral_once_a_second_one_is_asked_for(models, held_out):
    """A state is computed once; the RNN's roll-outs of all spirals under one set of points come in one batch."""
    p = SpiralPredictions(*models, held_out)
    first = p.get(0, 30, "uniform", 0)
    assert p.get(0, 30, "uniform", 0) is first and p.computed == 1
    p.get(5, 30, "uniform", 0)
    one = p.get(150, 30, "uniform", 9)      # uniform: the same points for every draw
    alone = SpiralPredictions(*models, held_out).get(150, 30, "uniform", 9)
    assert np.allclose(one.rnn_extrapolation, alone.rnn_extrapolation, atol=1e-6)
    assert p.computed == 3


@pytest.mark.parametrize("args, error", [((200, 30, "random"), "spiral"), ((0, 0, "random"), "n_observed"),
                                         ((0, 101, "random"), "n_observed"), ((0, 30, "evenly"), "placement"),
                                         ((0.5, 30, "random"), "spiral")])
def test_a_state_out_of_range_is_a_clear_error(models, held_out, args, error):
    with pytest.raises(ValueError, match=error):
        SpiralPredictions(*models, held_out).get(*args)


# ---------------------------------------------------------------- the explorer
def test_explorer_draws_everything(explorer):
    assert isinstance(explorer, Explorer)
    explorer.spiral.value, explorer.n_observed.value, explorer.placement.value = 0, 30, "random"
    n = explorer.n_grid
    assert explorer.recon.get_xydata().shape == (n, 2) and explorer.extra.get_xydata().shape == (51, 2)
    for points in explorer.artists["points"]:
        assert points.get_xydata().shape == (30, 2)
    assert len(explorer.samples.get_segments()) == explorer.n_samples.value == 4
    assert explorer.rnn_recon.get_xydata().shape == (29, 2) and explorer.rnn_extra.get_xydata().shape == (51, 2)
    text = explorer.readout.value
    assert text.startswith("spiral 0 (") and "30 observed points, random" in text
    assert f"<b>latent ODE {explorer.rmse_latent:.3f}</b>, <b>RNN {explorer.rmse_rnn:.3f}</b>" in text
    nfe = explorer.predictions.get(*_state(explorer), explorer.seed).nfe
    assert f"NFE {nfe} (dopri5 at rtol 0.001, atol 0.0001; the posterior mean and {MAX_SAMPLES} samples" in text
    assert explorer.message.value == ""


def test_explorer_readout_compares_spread_with_error(explorer):
    explorer.n_samples.value = 6
    explorer.spiral.value = 0
    assert explorer.spread > 0
    assert f"posterior spread in the extrapolation {explorer.spread:.3f}" in explorer.readout.value
    assert f"the latent ODE's error is {explorer.rmse_latent / explorer.spread:.1f}× that" in explorer.readout.value


def test_samples_and_resample(explorer):
    explorer.placement.value, explorer.n_observed.value = "random", 30
    computed = explorer.predictions.computed
    for k in (0, 1, 2, MAX_SAMPLES):
        explorer.n_samples.value = k
        assert len(explorer.samples.get_segments()) == k
        assert ("posterior spread" in explorer.readout.value) == (k > 1)
    assert explorer.predictions.computed == computed     # showing more or fewer samples computes nothing
    before = explorer.artists["points"][0].get_xydata().copy()
    explorer.resample.click()
    assert not np.array_equal(explorer.artists["points"][0].get_xydata(), before)
    explorer.spiral.value = 7
    assert explorer.readout.value.startswith("spiral 7")


def test_every_control_position_shows_no_error(explorer):
    for placement in PLACEMENTS:
        explorer.placement.value = placement
        for n in slider_values(explorer.n_observed):
            explorer.n_observed.value = n
            assert explorer.message.value == "", (placement, n)
            assert explorer.artists["points"][1].get_xydata().shape == (n, 2)
            assert f"{n} observed points, {placement}" in explorer.readout.value
            assert math.isfinite(explorer.rmse_latent) and math.isfinite(explorer.rmse_rnn)
    for s in slider_values(explorer.spiral)[::7] + [199]:
        explorer.spiral.value = s
        assert explorer.message.value == "" and explorer.readout.value.startswith(f"spiral {s} ")
    for k in slider_values(explorer.n_samples):
        explorer.n_samples.value = k
        assert explorer.message.value == ""
    for _ in range(3):
        explorer.resample.click()
        assert explorer.message.value == ""


def test_moves_blit_and_the_picture_equals_a_full_redraw(explorer):
    """After the first full draw every control only blits; the blitted picture is what savefig draws."""
    e = explorer
    e.spiral.value, e.n_observed.value, e.placement.value, e.n_samples.value = 10, 30, "random", 6
    canvas = e.fig.canvas
    canvas.draw()
    draws, blits = e.full_draws, e.blits
    e.spiral.value, e.n_observed.value, e.placement.value, e.n_samples.value = 11, 17, "bunched", 9
    e.resample.click()
    assert e.full_draws == draws and e.blits == blits + 5
    blitted = np.asarray(canvas.buffer_rgba()).copy()
    saved = redrawn_from_scratch(e)
    assert np.array_equal(blitted, saved)
    canvas.draw()
    assert e.full_draws == draws + 1 and np.array_equal(np.asarray(canvas.buffer_rgba()), blitted)


def test_the_true_spiral_is_drawn_once_per_spiral(explorer, monkeypatch):
    """Moves that keep the spiral restore the layer with its true lines instead of drawing them again; the
    picture is still what savefig draws."""
    e = explorer
    e.spiral.value, e.n_observed.value, e.placement.value = 20, 30, "random"
    e.fig.canvas.draw()
    e.spiral.value = 21                  # a new spiral: its true lines are drawn into a new layer
    drawn = []
    for artist in e._spiral_artists:
        monkeypatch.setattr(artist, "draw", lambda renderer, a=artist: drawn.append(a))
    e.n_observed.value = 12
    e.resample.click()
    e.n_samples.value = 3
    assert drawn == [] and e._layer[1] == 21
    monkeypatch.undo()
    assert np.array_equal(np.asarray(e.fig.canvas.buffer_rgba()), redrawn_from_scratch(e))
    e.spiral.value = 22
    assert e._layer[1] == 22
    assert np.array_equal(np.asarray(e.fig.canvas.buffer_rgba()), redrawn_from_scratch(e))


def test_the_browser_shows_the_figure_after_every_move_at_ratio_2(models, held_out):
    """ipympl at device pixel ratio 2, the browser played (widget_support.Browser): after each move (a new
    spiral, which makes a new layer, and moves that reuse it) the browser's picture is the figure."""
    previous, e = matplotlib.get_backend(), None
    plt.switch_backend(IPYMPL)
    try:
        e = LatentSpiralExplorer(*models, held_out, n_samples=4)
        browser = Browser(e.fig.canvas, 2.0)
        assert browser.shows_the_figure()
        draws = e.full_draws
        moves = [("spiral", 5), ("n_observed", 12), ("resample", None), ("n_samples", 9), ("spiral", 6),
                 ("placement", "bunched"), ("n_observed", 60)]
        for name, value in moves:
            if value is None:
                e.resample.click()
            else:
                getattr(e, name).value = value
            browser.answer()
            assert browser.shows_the_figure(), (name, value)
        assert e.full_draws == draws and all(mode == "diff" for mode, _ in browser.frames[1:])
    finally:
        if e is not None:
            plt.close(e.fig)      # only this figure: the module's explorer keeps its Agg canvas
        plt.switch_backend(previous)


def test_axes_hold_every_spiral(explorer, held_out):
    lo, hi = explorer.axes[0].get_xlim()
    clean = torch.cat([held_out.clean, held_out.clean_extrapolate], dim=1).abs().max()
    assert -lo == hi and hi > float(clean) and explorer.axes[0].get_ylim() == (lo, hi)


def test_a_failed_update_is_a_message_and_an_empty_picture(explorer, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(explorer.predictions, "get", broken)
    explorer.spiral.value = 3
    assert "RuntimeError: boom" in explorer.message.value and explorer.readout.value == ""
    assert len(explorer.recon.get_xdata()) == 0 and len(explorer.samples.get_segments()) == 0
    assert math.isnan(explorer.rmse_latent)
    monkeypatch.undo()
    explorer.spiral.value = 4
    assert explorer.message.value == "" and explorer.readout.value.startswith("spiral 4")


def test_bad_arguments_are_clear_errors(models, held_out):
    latent, rnn = models
    with pytest.raises(TypeError, match="LatentODE"):
        LatentSpiralExplorer(rnn, rnn, held_out)
    with pytest.raises(TypeError, match="Spirals"):
        LatentSpiralExplorer(latent, rnn, held_out.x)
    with pytest.raises(ValueError, match="spiral"):
        LatentSpiralExplorer(latent, rnn, held_out, spiral=200)
    with pytest.raises(ValueError, match="placement"):
        LatentSpiralExplorer(latent, rnn, held_out, placement="evenly")
    with pytest.raises(ValueError, match="n_samples"):
        LatentSpiralExplorer(latent, rnn, held_out, n_samples=MAX_SAMPLES + 1)
