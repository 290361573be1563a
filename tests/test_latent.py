"""Lesson 5: the latent ODE, the RNN baseline, their checkpoints and the exercise checks (the explorer: test_widgets_latent.py)."""

import math

import matplotlib
import numpy as np

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from odeteach import latent as L  # noqa: E402
from odeteach.data.spirals import OBSERVED_COUNTS, make_spirals, observe, subsample  # noqa: E402
from odeteach.exercises import lesson05 as ex  # noqa: E402
from odeteach.train import TARGETS  # noqa: E402


@pytest.fixture(scope="module")
def small():
    return make_spirals(40, seed=5)


@pytest.fixture(scope="module")
def pretrained():
    return L.load_pretrained()


@pytest.fixture(scope="module")
def held_out():
    return L.spiral_data()[1]


# ---------------------------------------------------------------- the ELBO's pieces
def test_backward_inputs_by_hand():
    times = torch.tensor([[0.5, 1.0, 1.75]])
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    want = torch.tensor([[[5.0, 6.0, 0.75], [3.0, 4.0, 0.5], [1.0, 2.0, 0.5]]])
    assert torch.equal(L.backward_inputs(times, x), want)
    with pytest.raises(ValueError, match="increasing"):
        L.backward_inputs(torch.tensor([[1.0, 0.5]]), x[:, :2])
    with pytest.raises(ValueError, match="shape|same"):
        L.backward_inputs(times, x[:, :2])


def test_kl_closed_form_against_monte_carlo():
    mean, logvar = torch.tensor([[0.7, -1.2]], dtype=torch.float64), torch.tensor([[-0.5, 0.9]], dtype=torch.float64)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    z = q.sample((200000,))
    mc = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert float(L.kl_standard_normal(mean, logvar)) == pytest.approx(float(mc), rel=0.02)
    assert float(L.kl_standard_normal(torch.zeros(1, 4), torch.zeros(1, 4))) == 0.0


def test_gaussian_log_likelihood_matches_torch():
    gen = torch.Generator().manual_seed(0)
    x, m = torch.randn(3, 7, 2, generator=gen), torch.randn(3, 7, 2, generator=gen)
    want = torch.distributions.Normal(m, 0.3).log_prob(x).sum(dim=(1, 2))
    assert torch.allclose(L.gaussian_log_likelihood(x, m, 0.3), want, atol=1e-5)


def test_reparameterize_moments_and_gradient():
    mean = torch.tensor([1.0, -3.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(0.09)], requires_grad=True)
    z = L.reparameterize(mean, logvar, n_samples=50000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (50000, 2)
    assert torch.allclose(z.mean(0), mean.detach(), atol=0.02) and torch.allclose(z.std(0), torch.tensor([1.0, 0.3]), rtol=0.02)
    z.sum().backward()
    assert torch.allclose(mean.grad, torch.full((2,), 50000.0)) and logvar.grad.abs().min() > 0


# ---------------------------------------------------------------- models
def test_model_shapes_and_sizes(small):
    model = L.LatentODE()
    idx = subsample(100, 30, "random", generator=torch.Generator().manual_seed(0), batch=len(small))
    times, x = observe(small, idx)
    elbo, log_lik, kl = model.elbo(small.t, idx, times, x)
    assert elbo.shape == log_lik.shape == kl.shape == (40,)
    assert torch.allclose(elbo, log_lik - kl) and (kl >= 0).all()
    path, samples = model.predict(times, x, small.t_extrapolate.new_tensor([0.0, 1.0, 2.5]), n_samples=3)
    assert path.shape == (40, 3, 2) and samples.shape == (3, 40, 3, 2) and model.last_nfe > 0
    assert model.encoder.rnn.hidden_size == 25 and model.config["latent_dim"] == 4
    assert model.dynamics.net[0].out_features == 20 and model.decoder.net[0].out_features == 20
    rnn = L.RNNBaseline()
    assert rnn.rnn.hidden_size == 25
    assert rnn.extrapolate(times, x, small.t_extrapolate).shape == (40, 50, 2)
    assert rnn.teacher_forced(times, x).shape == (40, 29, 2)


def test_recognition_rnn_reads_time_gaps(small):
    # The same points at different times must give a different posterior: Δt is an input.
    enc = L.RecognitionRNN()
    idx = subsample(100, 20, "uniform", batch=2)
    times, x = observe(small[:2], idx)
    m1, _ = enc(times, x)
    m2, _ = enc(times * 0.5, x)
    assert not torch.allclose(m1, m2)


@pytest.mark.parametrize("trainer", [L.train_latent_ode, L.train_rnn])
def test_short_training_is_seeded_and_moves_the_weights(small, trainer):
    kwargs = dict(batch_size=16, seed=3, progress=False, n_observed=(10, 20))
    model1, log1 = trainer(small, 4, **kwargs)
    _, log2 = trainer(small, 4, **kwargs)
    torch.manual_seed(3)
    fresh = type(model1)()  # the same seeded initialisation, untrained
    assert log1.losses == log2.losses and len(log1.losses) == 4  # seeded
    assert all(math.isfinite(v) for v in log1.losses)
    assert any(not torch.equal(a, b) for a, b in zip(model1.state_dict().values(), fresh.state_dict().values()))


def test_rnn_short_training_lowers_loss(small):
    _, log = L.train_rnn(small, 25, batch_size=16, seed=3, progress=False, n_observed=(10, 20))
    assert sum(log.losses[-8:]) < 0.8 * sum(log.losses[:8])


def test_shipped_training_curves_went_down(pretrained):
    _, _, latent_log, rnn_log = pretrained
    first, last = (sum(v) / len(v) for v in (latent_log.losses[:50], latent_log.losses[-50:]))
    assert first > 50 and last < 0  # −ELBO per point: from a blank decoder to near the noise level
    assert sum(rnn_log.losses[-50:]) < 0.5 * sum(rnn_log.losses[:50])


@pytest.mark.parametrize("kwargs, match", [({"iterations": 0}, "iterations"), ({"iterations": 2.5}, "iterations"),
                                           ({"iterations": 2, "batch_size": 0}, "batch_size"),
                                           ({"iterations": 2, "lr": -1.0}, "lr")])
def test_bad_training_arguments(small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.train_latent_ode(small, progress=False, **kwargs)


# ---------------------------------------------------------------- checkpoints and the Table-2 target
@pytest.mark.parametrize("path, kind", [(L.LATENT_CHECKPOINT, "latent_ode"), (L.RNN_CHECKPOINT, "rnn")])
def test_checkpoints_small_and_safe_to_load(path, kind):
    assert path.exists() and path.stat().st_size <= 1_000_000
    blob = torch.load(path, weights_only=True)
    assert blob["kind"] == kind and len(blob["log"]["losses"]) > 100 and blob["log"]["seconds"] > 0


def test_latent_ode_beats_rnn_on_held_out(pretrained, held_out):
    latent, rnn, _, _ = pretrained
    table = L.rmse_table(latent, rnn, held_out)
    for n in OBSERVED_COUNTS:
        assert 0 < table["Latent ODE"][n] < table["RNN"][n], (n, table)
    assert table["RNN"][100] < table["RNN"][30]  # the RNN needs many points; the latent ODE much fewer
    # The noisy targets add the noise variance σ² (independent noise) to the clean MSE.
    clean = L.extrapolation_rmse(latent, held_out, 50, against="clean")
    assert table["Latent ODE"][50] ** 2 == pytest.approx(clean ** 2 + held_out.noise_std ** 2, rel=0.1)


def test_extrapolation_rmse_rejects_bad_input(pretrained, held_out):
    with pytest.raises(TypeError, match="LatentODE or an RNNBaseline"):
        L.extrapolation_rmse(torch.nn.Linear(2, 2), held_out, 30)
    with pytest.raises(ValueError, match="against"):
        L.extrapolation_rmse(pretrained[0], held_out, 30, against="both")


def test_missing_checkpoint_has_clear_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m odeteach.train spirals"):
        L.load_pretrained(tmp_path / "none.pt")


def test_train_command_writes_loadable_checkpoints(tmp_path, capsys):
    assert TARGETS["spirals"][:2] == ("odeteach.latent", "train_checkpoints")
    table = L.train_checkpoints(tmp_path, latent_iterations=3, rnn_iterations=3, progress=False)
    latent, rnn, llog, rlog = L.load_pretrained(tmp_path / L.LATENT_CHECKPOINT.name, tmp_path / L.RNN_CHECKPOINT.name)
    assert len(llog.losses) == 3 and len(rlog.losses) == 3
    assert set(table) == {"RNN", "Latent ODE"} and "held-out" in capsys.readouterr().out


# ---------------------------------------------------------------- the explorer: tests/test_widgets_latent.py


# ---------------------------------------------------------------- what the measurements say (computed sentences)
def test_sample_spread_is_the_rms_standard_deviation():
    gen = torch.Generator().manual_seed(0)
    samples = torch.randn(4000, 3, 5, generator=gen, dtype=torch.float64) * torch.tensor([0.5, 1.0, 2.0])[:, None]
    assert L.sample_spread(samples) == pytest.approx(math.sqrt((0.25 + 1 + 4) / 3), rel=0.02)
    with pytest.raises(ValueError, match="at least 2 samples"):
        L.sample_spread(samples[:1])


def test_posterior_check_rejects_one_sample(pretrained, small):
    with pytest.raises(ValueError, match="n_samples"):
        L.posterior_check(pretrained[0], small, 30, n_samples=1)


_VERDICTS = ("overconfident", "about the size of the error", "underconfident")


@pytest.mark.parametrize("ratio, verdict, words", [(11.4, "overconfident", ["11.4× the spread", "hide under the mean"]),
                                                   (1.3, "about the size of the error", ["error / spread = 1.30"]),
                                                   (0.2, "underconfident", ["5.0× the error"])])
def test_describe_posterior_follows_the_ratio(ratio, verdict, words):
    text = L.describe_posterior({"spread": 0.1, "rmse": 0.1 * ratio, "ratio": ratio})
    assert text.startswith(f"posterior spread 0.100, error of the posterior mean {0.1 * ratio:.3f}")
    for w in [verdict, *words]:
        assert w in text, text
    assert not any(v in text for v in _VERDICTS if v != verdict), text


@pytest.mark.parametrize("first, last, want", [(0.2, 0.3, "rises"), (0.3, 0.2, "falls"), (0.2, 0.203, "stays about level"),
                                               (0.2, 0.197, "stays about level")])
def test_trend_reports_small_changes_as_ties(first, last, want):
    assert L.trend(first, last) == want


def test_describe_table_chooses_words_from_the_numbers():
    paper = {"RNN": {30: 0.4, 50: 0.3, 100: 0.2}, "Latent ODE": {30: 0.16, 50: 0.15, 100: 0.13}}
    ours = {"RNN": {30: 0.7, 50: 0.5, 100: 0.22}, "Latent ODE": {30: 0.2, 50: 0.5, 100: 0.3}}
    wins, rnn, latent = L.describe_table(ours, paper)
    assert wins == ("the latent ODE's error is below the RNN's at 30; level with it at 50; above it at 100 observed points "
                    "(the paper's: below the RNN's at 30, 50 and 100)")
    assert rnn == "from 30 to 100 observed points the RNN's error falls (0.700 → 0.220), as the paper's does (0.4000 → 0.2000)"
    assert latent == ("from 30 to 100 observed points the latent ODE's error rises (0.200 → 0.300), "
                      "unlike the paper's, which falls (0.1600 → 0.1300)")


def test_noise_floor_is_the_expected_loss_of_an_exact_decoder():
    gen = torch.Generator().manual_seed(0)
    clean = torch.randn(2000, 50, 2, generator=gen, dtype=torch.float64)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    per_point = -L.gaussian_log_likelihood(noisy, clean, 0.1).mean() / 50
    assert L.noise_floor(0.1) == pytest.approx(float(per_point), abs=0.01)
    assert L.noise_floor(0.1) == pytest.approx(-1.767, abs=1e-3)


@pytest.mark.parametrize("final, words", [(-0.75, ["ended at -0.75", "1.02 above the noise floor", "not trained down"]),
                                          (-1.70, ["ended at -1.70", "at the noise floor"])])
def test_describe_training_against_the_floor(final, words):
    text = L.describe_training(L.TrainLog([100.0] * 10 + [final] * 50, seconds=1.0), 0.1)
    for w in words:
        assert w in text, text


# ---------------------------------------------------------------- exercise checks
def assert_fails(result, *words):
    assert not result and str(result).startswith("❌"), result
    for w in words:
        assert w in result.message, result.message


def _kl_solution(mean, logvar):  # the worked solution, as in the solutions notebook
    return 0.5 * (mean ** 2 + logvar.exp() - logvar - 1).sum(dim=-1)


def test_check_kl_passes_the_solution():
    assert ex.check_kl(_kl_solution)
    assert ex.check_kl(L.kl_standard_normal)
    assert ex.check_kl(lambda m, lv: torch.distributions.kl_divergence(  # the library's own KL, another right answer
        torch.distributions.Normal(m, (0.5 * lv).exp()), torch.distributions.Normal(0.0, 1.0)).sum(-1))


@pytest.mark.parametrize("wrong, words", [
    (None, ["not attempted"]),
    (lambda m, lv: torch.zeros(m.shape[0]), ["returns 0 for every row", "placeholder"]),  # the notebook's placeholder
    (lambda m, lv: torch.full((m.shape[0],), 0.033), ["differ from the closed form"]),  # the lesson's printed KL, copied
    (lambda m, lv: (m ** 2 + lv.exp() - lv - 1).sum(-1), ["factor of 2"]),
    (lambda m, lv: 0.5 * (m ** 2 + lv.exp() - lv).sum(-1), ["constant term"]),  # forgot the −1
    (lambda m, lv: 0.5 * (m ** 2 + lv.exp() - lv - 1).mean(-1), ["averaged over the latent dimensions"]),
    (lambda m, lv: -0.5 * (m ** 2 + lv.exp() - lv - 1).sum(-1), ["sign"]),
    (lambda m, lv: 0.5 * ((1 + m ** 2) / lv.exp() + lv - 1).sum(-1), ["other direction"]),  # KL(p ‖ q)
    (lambda m, lv: 0.5 * (m ** 2 + lv - lv.exp() - 1).sum(-1), ["negative"]),  # σ² and log σ² swapped
    (lambda m, lv: 0.5 * (m ** 2 + (0.5 * lv).exp() - lv - 1).sum(-1), ["σ² = exp(logvar)"]),  # σ for σ²
    (lambda m, lv: 0.5 * (m ** 2 + lv.exp() - lv - 1), ["one KL per row"]),  # not summed
    (lambda m, lv: 0.5 * (m ** 2 + lv.exp() - lv - 1).sum(), ["one KL per row"]),  # summed over the batch too
    (lambda m, lv: 1 / 0, ["ZeroDivisionError"]),
    (3.0, ["not a float"]),
])
def test_check_kl_rejects(wrong, words):
    assert_fails(ex.check_kl(wrong), *words)


def _sample_solution(mean, logvar):  # the worked solution, as in the solutions notebook
    return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


@pytest.mark.parametrize("answer", [
    _sample_solution,
    lambda m, lv: torch.distributions.Normal(m, (0.5 * lv).exp()).rsample(),
    lambda m, lv: m + lv.exp().sqrt() * torch.randn(m.shape, dtype=m.dtype),
    lambda m, lv: m + (0.5 * lv).exp() * torch.from_numpy(np.random.randn(*m.shape)),  # NumPy's RNG is seeded too
])
def test_check_reparameterize_passes_right_answers(answer):
    assert ex.check_reparameterize(answer)


@pytest.mark.parametrize("seed", range(20))
def test_check_reparameterize_passes_the_solution_for_any_seed(monkeypatch, seed):
    # The verdict does not rest on a lucky seed: the margins hold for every one of these draws.
    monkeypatch.setattr(ex, "_SEED", seed)
    assert ex.check_reparameterize(_sample_solution)


def test_check_reparameterize_leaves_the_learners_random_state_alone():
    torch.manual_seed(99)
    np.random.seed(99)
    before = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(99)
    np.random.seed(99)
    ex.check_reparameterize(_sample_solution)
    after = (torch.rand(3), np.random.rand(3))
    assert torch.equal(before[0], after[0]) and (before[1] == after[1]).all()


_UNIT = math.sqrt(3.0)  # uniform noise on [−√3, √3] has variance 1


@pytest.mark.parametrize("wrong, words", [
    (None, ["not attempted"]),
    (lambda m, lv: m, ["equal the mean", "placeholder"]),  # the notebook's placeholder
    (lambda m, lv: m + (0.5 * lv).exp() * (2 * torch.rand_like(m) - 1) * _UNIT, ["not Gaussian"]),  # uniform, variance 1
    (lambda m, lv: m + (0.5 * lv).exp() * (2 * torch.randint_like(m, 2) - 1), ["not Gaussian"]),  # ±1 noise
    (lambda m, lv: m + lv.exp() * torch.randn_like(m), ["σ², not σ"]),  # logvar read as log σ
    (lambda m, lv: m + lv * torch.randn_like(m), ["scaled by logvar itself"]),  # logvar read as σ
    (lambda m, lv: m + lv.sqrt() * torch.randn_like(m), ["NaN"]),  # logvar read as σ²
    (lambda m, lv: m + (0.5 * lv).exp() * torch.rand_like(m), ["not centred"]),  # uniform on [0, 1)
    (lambda m, lv: m + (0.5 * lv).exp() * torch.randn(m.shape[-1], dtype=m.dtype), ["same noise"]),  # one ε for all rows
    (lambda m, lv: m + (0.5 * lv).exp() * torch.randn(m.shape[0], 1, dtype=m.dtype), ["move together"]),
    (lambda m, lv: torch.distributions.Normal(m, (0.5 * lv).exp()).sample(), ["no gradient reaches"]),
    (lambda m, lv: m + (0.5 * lv).exp().detach() * torch.randn_like(m), ["no gradient reaches logvar"]),
    (lambda m, lv: m.detach() + (0.5 * lv).exp() * torch.randn_like(m), ["one-for-one with μ"]),
    (lambda m, lv: (m + (0.5 * lv).exp() * torch.randn_like(m))[:, :2], ["shaped like mean"]),
    (lambda m, lv: 1 / 0, ["ZeroDivisionError"]),
])
def test_check_reparameterize_rejects(wrong, words):
    assert_fails(ex.check_reparameterize(wrong), *words)


def _inputs_solution(times, x):  # the worked solution, as in the solutions notebook
    previous = torch.cat([torch.zeros_like(times[:, :1]), times[:, :-1]], dim=1)
    return torch.cat([x, (times - previous)[..., None]], dim=-1).flip(1)


def test_check_backward_inputs_passes_the_solution():
    assert ex.check_backward_inputs(_inputs_solution)
    assert ex.check_backward_inputs(L.backward_inputs)
    assert ex.check_backward_inputs(lambda t, x: _inputs_solution(t.double(), x.double()))  # another dtype is fine


def _gaps(times):
    return torch.diff(times, dim=1, prepend=torch.zeros_like(times[:, :1]))


@pytest.mark.parametrize("wrong, words", [
    (None, ["not attempted"]),  # the notebook's placeholder
    (lambda t, x: _inputs_solution(t, x).flip(1), ["reversed", "last"]),
    (lambda t, x: torch.cat([x, torch.diff(t, dim=1, prepend=t[:, :1])[..., None]], -1).flip(1), ["Δt", "t0 = 0"]),
    (lambda t, x: torch.cat([x, t[..., None]], -1).flip(1), ["Δt", "t0 = 0"]),  # the times, not the gaps
    (lambda t, x: torch.cat([x, -_gaps(t)[..., None]], -1).flip(1), ["wrong sign"]),
    (lambda t, x: torch.cat([x.flip(1), _gaps(t)[..., None]], -1), ["forward order", "own x_i"]),  # only x reversed
    (lambda t, x: torch.cat([x, _gaps(t).flip(1)[..., None]], -1), ["gaps are reversed"]),  # only Δt reversed
    (lambda t, x: torch.cat([_gaps(t)[..., None], x], -1).flip(1), ["columns", "then Δt"]),
    (lambda t, x: x.flip(1), ["return shape"]),
    (lambda t, x: 1 / 0, ["ZeroDivisionError"]),
])
def test_check_backward_inputs_rejects(wrong, words):
    assert_fails(ex.check_backward_inputs(wrong), *words)
