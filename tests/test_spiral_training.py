"""Issue 12, the latent ODE and its baseline: the training data, the batches, the baseline's roll-out loss,
and the scores the lesson and ``python -m odeteach.evaluate spirals`` report (coverage, irregular sampling)."""

import math

import pytest
import torch

from odeteach import latent as L
from odeteach.data.spirals import PLACEMENTS, THETA0_HIGH, THETA0_LOW, make_spirals


@pytest.fixture(scope="module")
def data():
    return L.spiral_data()


@pytest.fixture(scope="module")
def small():
    return make_spirals(24, seed=5, n_grid=30, n_extrapolate=10)


# ---------------------------------------------------------------- the data
def test_held_out_spirals_are_the_course_set_and_training_never_sees_them(data):
    train, held_out = data
    course = make_spirals(L.N_SPIRALS, seed=L.DATA_SEED)
    assert torch.equal(held_out.x, course.x[L.N_TRAIN:]) and len(held_out) == 200   # unchanged by the retraining
    assert len(train) == L.N_TRAIN and L.TRAIN_SEED != L.DATA_SEED
    # No training spiral is a held-out one: every pair of starting angles differs (same shape otherwise).
    gaps = (train.theta0[:, None] - held_out.theta0[None, :]).abs()
    assert gaps.min() > 1e-6


def test_training_windows_reach_every_radius_the_extrapolation_needs(data):
    train, held_out = data
    radius = lambda clean: clean.norm(dim=-1)  # noqa: E731
    needed = radius(held_out.clean_extrapolate)
    beyond = float((needed > radius(train.clean).max()).float().mean())
    assert beyond < 0.001, beyond          # measured: 4 of 10,000 points, at the very end of the latest-starting spirals
    # ... which the course's own range does not: windows from θ₀ ≤ 4π stop short of one point in seven.
    course_range = radius(make_spirals(L.N_TRAIN, seed=L.TRAIN_SEED).clean).max()
    assert float((needed > course_range).float().mean()) > 0.14
    assert train.theta0.min() >= THETA0_LOW - 1e-6 and train.theta0.max() > THETA0_HIGH


def test_theta0_range_is_checked():
    with pytest.raises(ValueError, match="theta0_range"):
        make_spirals(4, theta0_range=(5.0, 1.0))
    with pytest.raises(ValueError, match="theta0_range"):
        make_spirals(4, theta0_range=(-1.0, 1.0))
    s = make_spirals(50, theta0_range=(2.0, 2.0))
    assert torch.allclose(s.theta0, torch.full((50,), 2.0))


# ---------------------------------------------------------------- the batches
def test_batches_use_every_placement_and_only_the_ones_asked_for(small):
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _, (indices, times, x) in zip(range(30), L.spiral_batches(small, 8, gen, 6, 12)):
        gaps = torch.diff(indices, dim=1)
        uniform = (indices == torch.linspace(0, small.t.shape[0] - 1, indices.shape[1]).round().long()).all()
        seen.add("uniform" if uniform else "other")
        assert (gaps > 0).all() and x.shape[:2] == indices.shape
    assert seen == {"uniform", "other"}
    only = L.spiral_batches(small, 8, torch.Generator().manual_seed(0), 6, 6, placements=("uniform",))
    for _, (indices, _, _) in zip(range(5), only):
        assert (indices == indices[0]).all()
    with pytest.raises(ValueError, match="placements"):
        next(L.spiral_batches(small, 8, gen, 6, 6, placements=("evenly",)))
    rows, *_ = next(L.spiral_batches(small, 8, gen, 6, 6, with_rows=True))
    assert rows.shape == (8,) and rows.dtype == torch.int64


# ---------------------------------------------------------------- the baseline's roll-out loss
def test_rollout_loss_by_hand(small):
    """Read 3 points, roll out 4 grid steps: the loss is the teacher-forced part plus the masked roll-out MSE."""
    torch.manual_seed(0)
    rnn = L.RNNBaseline()
    rows = torch.tensor([0, 1])
    indices = torch.tensor([[0, 4, 9, 20, 27], [2, 5, 25, 26, 28]])
    grid, window = small.t, small.x[rows]
    times = grid[indices]
    x = torch.gather(window, 1, indices[..., None].expand(-1, -1, 2))
    loss = L.rnn_rollout_loss(rnn, grid, window, (rows, indices, times, x), read=3, horizon=4)
    # By hand.
    preds, h = rnn.read(times[:, :3], x[:, :3])
    teacher = ((preds - x[:, 1:3]) ** 2).mean()
    sq, count = 0.0, 0
    current, t_now = x[:, 2], times[:, 2]
    for k in range(1, 5):
        j = (indices[:, 2] + k).clamp(max=29)
        current, h = rnn.step(current, grid[j] - t_now, h)
        t_now = grid[j]
        for b in range(2):
            if indices[b, 2] + k <= 29:          # row 1's last read point is 25: steps past 29 are masked out
                sq = sq + ((current[b] - window[b, j[b]]) ** 2).sum()
                count += 2
    assert count == 2 * (4 + 4)  # both rows have room for 4 steps (9 + 4, 25 + 4 = 29)
    assert torch.allclose(loss, teacher + sq / count)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rnn.parameters())


def test_rollout_loss_masks_steps_past_the_window(small):
    torch.manual_seed(0)
    rnn = L.RNNBaseline()
    rows = torch.tensor([0])
    indices = torch.tensor([[3, 28]])
    times = small.t[indices]
    x = torch.gather(small.x[rows], 1, indices[..., None].expand(-1, -1, 2))
    short = L.rnn_rollout_loss(rnn, small.t, small.x[rows], (rows, indices, times, x), read=2, horizon=1)
    long = L.rnn_rollout_loss(rnn, small.t, small.x[rows], (rows, indices, times, x), read=2, horizon=10)
    assert torch.allclose(short, long)   # one grid point (29) after 28: the other 9 steps are masked
    assert math.isfinite(float(long.detach()))


def test_rnn_training_is_seeded_and_learns_to_extrapolate(small):
    kwargs = dict(batch_size=12, seed=2, progress=False, n_observed=(6, 20), horizon=8)
    _, a = L.train_rnn(small, 30, **kwargs)
    _, b = L.train_rnn(small, 30, **kwargs)
    assert a.losses == b.losses
    assert sum(a.losses[-8:]) < 0.7 * sum(a.losses[:8])
    with pytest.raises(ValueError, match="horizon"):
        L.train_rnn(small, 2, horizon=0, progress=False)


# ---------------------------------------------------------------- the scores
@pytest.fixture(scope="module")
def tiny_models(small):
    latent, _ = L.train_latent_ode(small, 6, batch_size=12, seed=1, progress=False, n_observed=(10, 20))
    rnn, _ = L.train_rnn(small, 6, batch_size=12, seed=1, progress=False, n_observed=(10, 20), horizon=5)
    return latent.eval(), rnn.eval()


def test_coverage_grows_with_the_band_and_with_the_noise(tiny_models, small):
    latent, _ = tiny_models
    counts = (10, 20)
    at = lambda **kw: L.predictive_coverage(latent, small, counts, n_samples=40, **kw)["coverage"]  # noqa: E731
    c90, c50 = at(level=0.9), at(level=0.5)
    assert 0 <= c50 < c90 <= 1
    result = L.predictive_coverage(latent, small, counts, n_samples=40)
    assert set(result["by_count"]) == set(counts)
    assert result["coverage"] == pytest.approx(sum(result["by_count"].values()) / 2)
    noisy = L.LatentODE(**{**latent.config, "obs_std": 10.0})
    noisy.load_state_dict(latent.state_dict())
    assert L.predictive_coverage(noisy.eval(), small, counts, n_samples=40)["coverage"] > 0.97  # σ = 10: the band is huge
    with pytest.raises(ValueError, match="level"):
        L.predictive_coverage(latent, small, counts, level=90)
    with pytest.raises(TypeError, match="LatentODE"):
        L.predictive_coverage(tiny_models[1], small, counts)


def test_the_fitted_noise_is_the_rms_miss_of_the_decoded_samples(tiny_models, small):
    """σ̂ by hand, for one count: observe with the fit's seed, decode the posterior samples, take the RMS miss."""
    from odeteach.data.spirals import observe, subsample
    latent, _ = tiny_models
    sigma = L.fit_observation_noise(latent, small, (12,), n_samples=5, seed=3)
    gen = torch.Generator().manual_seed(3)
    idx = subsample(small.t.shape[0], 12, "random", generator=gen, batch=len(small))
    times, x = observe(small, idx)
    _, samples = latent.predict(times, x, small.t, n_samples=5, generator=gen)
    by_hand = torch.stack([((samples[k, b, idx[b]] - x[b]) ** 2) for k in range(5) for b in range(len(small))])
    assert sigma == pytest.approx(float(by_hand.mean().sqrt()), rel=1e-5)
    # A wider band covers more: the fitted σ goes into the band in place of the likelihood's.
    counts = (10, 20)
    at = lambda s: L.predictive_coverage(latent, small, counts, n_samples=40, obs_std=s)["coverage"]  # noqa: E731
    assert at(0.01) <= at(0.3) <= at(3.0) and at(3.0) > 0.97
    assert L.predictive_coverage(latent, small, counts, n_samples=40, obs_std=latent.obs_std) == \
        L.predictive_coverage(latent, small, counts, n_samples=40)
    with pytest.raises(ValueError, match="obs_std"):
        L.predictive_coverage(latent, small, counts, obs_std=-1.0)
    with pytest.raises(TypeError, match="LatentODE"):
        L.fit_observation_noise(tiny_models[1], small)


def _diagnosis(train, held, sigma_fitted, fitted=0.85):
    cov = lambda c: {"coverage": c, "by_count": {30: c - 0.02, 50: c, 100: c + 0.02}}  # noqa: E731
    return {"sigma": 0.1, "sigma_fitted": sigma_fitted, "train": cov(train), "held_out": cov(held),
            "held_out_fitted": cov(fitted)}


def test_the_diagnosis_sentences_follow_the_numbers_both_ways():
    same, overfit, harder = (L.describe_diagnosis(_diagnosis(*a)) for a in
                             ((0.74, 0.739, 0.124), (0.86, 0.74, 0.124), (0.70, 0.74, 0.1)))
    assert "about as on the held-out ones" in same[0] and "not overfitting" in same[0]
    assert "part of this is overfitting" in overfit[0] and "86.0%" in overfit[0]
    assert "harder" in harder[0]
    assert "1.24× the σ = 0.1" in same[1] and "no term for" in same[1]
    assert "no misfit to hide" in harder[1]
    assert "σ̂ = 0.124" in same[2] and "85.0%" in same[2] and "within the 80–97%" in same[2]
    assert "too narrow" in L.describe_diagnosis(_diagnosis(0.7, 0.7, 0.11, fitted=0.75))[2]


def test_placement_table_and_report_agree_with_the_table(tiny_models, small):
    latent, rnn = tiny_models
    counts = (10, 20)
    table = L.placement_table(latent, rnn, small, counts)
    assert set(table) == set(PLACEMENTS)
    assert table["random"] == L.rmse_table(latent, rnn, small, counts)   # the Table 2 placement
    # At every point of the window, placement no longer matters.
    full = L.placement_table(latent, rnn, small, (small.t.shape[0],))
    values = {p: full[p]["Latent ODE"][small.t.shape[0]] for p in PLACEMENTS}
    assert len(set(values.values())) == 1
