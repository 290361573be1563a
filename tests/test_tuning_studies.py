"""Issue 14, lesson 7's two studies: the ResNet that drops blocks against the ODE-Net at matching NFE, and the
training-memory budget (backprop or the adjoint). Both run on the shipped checkpoints, on small batches."""

import math
import random

import pytest
import torch
from torch.nn import functional as F

from odeteach.classifier import load_pretrained
from odeteach.data.digits import load_digits
from odeteach.memory import format_bytes
from odeteach.tuning import Setting
from odeteach.tuning_studies import (BlockDropRow, BlockDroppingStudy, GradientCost, block_dropping_study,
                                     choose_gradient, describe_block_dropping, describe_gradient_choice,
                                     resnet_with_blocks, training_memory_study)

MiB = 2 ** 20


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def resnet():
    return load_pretrained("resnet")[0]


@pytest.fixture(scope="module")
def odenet():
    return load_pretrained("odenet")[0]


def snapshot(model):
    """Everything a study could leave changed: weights, mode, feature module, solver settings, gradients."""
    block = model.ode_block
    settings = None if block is None else (block.method, block.rtol, block.atol, block.step_size, block.adjoint)
    return ({k: v.clone() for k, v in model.state_dict().items()}, model.training, model.feature, settings,
            [None if p.grad is None else p.grad.clone() for p in model.parameters()])


def assert_unchanged(model, before):
    weights, training, feature, settings, grads = before
    now = snapshot(model)
    assert now[0].keys() == weights.keys() and all(torch.equal(now[0][k], v) for k, v in weights.items())
    assert now[1:4] == (training, feature, settings)
    for g_now, g_before in zip(now[4], grads):
        assert (g_now is None and g_before is None) or torch.equal(g_now, g_before)


# ---------------------------------------------------------------- the ResNet with fewer blocks
def test_all_blocks_is_the_plain_resnet_and_fewer_blocks_are_the_first_ones(resnet, digits):
    x = digits.x_test[:40]
    before = snapshot(resnet)
    blocks = list(resnet.feature)
    with torch.no_grad():
        plain = resnet(x)
        with resnet_with_blocks(resnet, len(blocks)):
            assert torch.equal(resnet(x), plain)
        h = resnet.downsampling(x)
        for k in range(len(blocks)):
            with resnet_with_blocks(resnet, k):
                assert len(resnet.feature) == k and not resnet.feature.training
                assert torch.allclose(resnet(x), resnet.head(h), atol=1e-6)
            h = blocks[k](h)
        with pytest.raises(RuntimeError, match="inside"):
            with resnet_with_blocks(resnet, 2):
                raise RuntimeError("an error inside the block")
    assert_unchanged(resnet, before)


def test_dropping_blocks_refuses_what_it_cannot_do(resnet, odenet):
    for k in (-1, len(resnet.feature) + 1):
        with pytest.raises(ValueError, match="k must be an integer from 0"):
            with resnet_with_blocks(resnet, k):
                pass
    with pytest.raises(ValueError, match="k must be"):
        with resnet_with_blocks(resnet, 2.0):
            pass
    with pytest.raises(TypeError, match="ResNet"):
        with resnet_with_blocks(odenet, 1):
            pass


def test_block_dropping_study_measures_both_models_and_leaves_them_as_they_were(resnet, odenet, digits):
    x, y = digits.x_test[:48], digits.y_test[:48]
    resnet.train()           # a mode the study must restore
    before = snapshot(resnet), snapshot(odenet)
    try:
        study = block_dropping_study(resnet, odenet, x, y, counts=[4, 1, 2, 1], repeats=2)
        assert_unchanged(resnet, before[0])
        assert_unchanged(odenet, before[1])
    finally:
        resnet.eval()
    accuracy = lambda model: float((model(x).argmax(1) == y).float().mean())  # noqa: E731
    with torch.no_grad():
        assert study.resnet_full == accuracy(resnet) and study.odenet_full == accuracy(odenet)
        assert study.odenet_full_nfe == odenet.ode_block.nfe_forward
        assert [r.cost for r in study.rows] == [1, 2, 4]
        for row in study.rows:
            assert row.odenet_nfe == row.cost                       # "matching NFE", measured
            with resnet_with_blocks(resnet, row.cost):
                assert row.resnet_accuracy == accuracy(resnet)
            with Setting("euler", steps=row.cost).applied(odenet):
                assert row.odenet_accuracy == accuracy(odenet)
            assert 0 < row.resnet_ms < math.inf and 0 < row.odenet_ms < math.inf
    # the extra points: every midpoint and RK4 setting with NFE ≤ the largest cost (4)
    assert {m.label: m.nfe for m in study.extra} == {"midpoint, 1 step": 2, "midpoint, 2 steps": 4, "rk4, 1 step": 4}
    assert study.batch_size == 48
    losses = [100 * (study.resnet_full - r.resnet_accuracy) for r in study.rows]
    assert study.resnet_mean_loss == pytest.approx(sum(losses) / len(losses))


def test_block_dropping_study_refuses_bad_input(resnet, odenet, digits):
    x, y = digits.x_test[:8], digits.y_test[:8]
    with pytest.raises(ValueError, match="counts must be an integer from 1 to 6"):
        block_dropping_study(resnet, odenet, x, y, counts=[0, 1])
    with pytest.raises(ValueError, match="at least one"):
        block_dropping_study(resnet, odenet, x, y, counts=[])
    with pytest.raises(TypeError, match="ResNet"):
        block_dropping_study(odenet, odenet, x, y)
    with pytest.raises(TypeError, match="ODE-Net"):
        block_dropping_study(resnet, resnet, x, y)
    with pytest.raises(ValueError, match="same, non-zero number"):
        block_dropping_study(resnet, odenet, x, y[:5])


def planted_study(resnet_accuracies, odenet_accuracies, resnet_full=0.975, odenet_full=0.983):
    rows = tuple(BlockDropRow(k, r, o, k, 2.0 * k, 3.0 * k)
                 for k, (r, o) in enumerate(zip(resnet_accuracies, odenet_accuracies), start=1))
    return BlockDroppingStudy(rows, (), resnet_full, odenet_full, "dopri5, rtol 0.001", 26, 359)


def test_the_block_dropping_sentence_follows_the_numbers():
    odenet_wins = planted_study([0.60, 0.90, 0.95, 0.975], [0.95, 0.97, 0.98, 0.98])
    text = describe_block_dropping(odenet_wins)
    assert "keeps 95.0%, 97.0%, 98.0% (at full cost, dopri5, rtol 0.001, NFE 26: 98.3%)" in text
    assert "keeps 60.0%, 90.0%, 95.0% (all blocks: 97.5%)" in text
    resnet_loss, odenet_loss = odenet_wins.resnet_mean_loss, odenet_wins.odenet_mean_loss
    assert resnet_loss == pytest.approx(100 * (0.975 - (0.60 + 0.90 + 0.95 + 0.975) / 4))
    assert f"the ODE-Net gives up {odenet_loss:.1f} points" in text and f"the ResNet {resnet_loss:.1f}" in text
    assert f"the ODE-Net degrades more gracefully, by {resnet_loss - odenet_loss:.1f} points" in text
    assert "takes 2.0 ms (ResNet) and 3.0 ms (ODE-Net)" in text and "359 images" in text

    resnet_wins = planted_study([0.97, 0.975, 0.975], [0.50, 0.80, 0.95])
    text = describe_block_dropping(resnet_wins, first=2)
    assert "the ResNet degrades more gracefully" in text and "ODE-Net degrades" not in text
    assert "At 1, 2 evaluations" in text and "keeps 50.0%, 80.0% (at full cost" in text

    alike = planted_study([0.90, 0.95], [0.89, 0.96], resnet_full=0.97, odenet_full=0.97)
    assert "the two degrade alike" in describe_block_dropping(alike)


# ---------------------------------------------------------------- the training-memory budget
def test_training_memory_study_backprop_grows_with_steps_and_the_adjoint_does_not(odenet, digits):
    x, y = digits.x_train[:16], digits.y_train[:16]
    odenet.zero_grad(set_to_none=True)
    before_none = snapshot(odenet)
    steps = (1, 2, 4)
    rows = training_memory_study(odenet, x, y, [Setting("rk4", steps=n) for n in steps], repeats=1)
    assert_unchanged(odenet, before_none)
    assert [(r.setting.steps, r.gradient) for r in rows] == [(n, g) for n in steps for g in ("backprop", "adjoint")]
    backprop = [r for r in rows if r.gradient == "backprop"]
    adjoint = [r for r in rows if r.gradient == "adjoint"]
    assert all(r.error is None and 0 < r.ms_per_step < math.inf and r.batch_size == 16 for r in rows)
    assert all(r.nfe_forward == r.nfe_backward == 4 * r.setting.steps for r in rows)
    saved = [r.saved_bytes for r in backprop]
    assert saved == sorted(set(saved)), f"backprop's saved bytes should grow with the steps: {saved}"
    flat = [r.saved_bytes for r in adjoint]
    assert max(flat) - min(flat) <= 0.01 * min(flat), f"the adjoint's saved bytes should not grow: {flat}"
    assert all(b.saved_bytes > a.saved_bytes for b, a in zip(backprop[1:], adjoint[1:]))

    # gradients that were there before the study are there after it, untouched; the mode and flag come back too
    for p in odenet.parameters():
        p.grad = torch.randn_like(p)
    odenet.train()
    odenet.ode_block.adjoint = False
    before = snapshot(odenet)
    try:
        settings = (Setting("euler", steps=n) for n in (1, 2))        # any iterable of settings
        rows = training_memory_study(odenet, x[:4], y[:4], settings, gradients=("adjoint",), repeats=1)
        assert [(r.setting.steps, r.gradient, r.nfe_forward) for r in rows] == [(1, "adjoint", 1), (2, "adjoint", 2)]
        assert_unchanged(odenet, before)
    finally:
        odenet.zero_grad(set_to_none=True)
        odenet.eval()
        odenet.ode_block.adjoint = True


def test_the_measured_step_is_a_training_step(odenet, digits):
    """The bytes are those of forward + cross-entropy: the same as measuring that computation directly."""
    from odeteach.memory import measure_saved
    x, y = digits.x_train[:8], digits.y_train[:8]
    [row] = training_memory_study(odenet, x, y, [Setting("rk4", steps=2)], gradients=("backprop",), repeats=1)
    with Setting("rk4", steps=2).applied(odenet):
        odenet.ode_block.adjoint = False
        try:
            direct = measure_saved(lambda: F.cross_entropy(odenet(x), y), exclude=[*odenet.parameters(), x], cuda=False)
        finally:
            odenet.ode_block.adjoint = True
    assert row.saved_bytes == direct.saved_bytes


def test_training_memory_study_refuses_bad_input(resnet, odenet, digits):
    x, y = digits.x_train[:4], digits.y_train[:4]
    with pytest.raises(TypeError, match="ODE-Net"):
        training_memory_study(resnet, x, y)
    with pytest.raises(ValueError, match="gradients must be some of backprop, adjoint"):
        training_memory_study(odenet, x, y, gradients=("checkpointing",))
    with pytest.raises(TypeError, match="Setting objects"):
        training_memory_study(odenet, x, y, settings=[("rk4", 2)])
    with pytest.raises(ValueError, match="same, non-zero number"):
        training_memory_study(odenet, x, y[:3])


def row(gradient, saved, ms, setting=Setting("dopri5", tol=1e-3), error=None):
    return GradientCost(setting, gradient, saved, 26, 20, ms, 64, error)


def test_choose_gradient_fits_misses_ties_and_ignores_order():
    backprop, adjoint = row("backprop", 20 * MiB, 100.0), row("adjoint", 1 * MiB, 170.0)
    rows = [backprop, adjoint]
    assert choose_gradient(rows, 64 * MiB).chosen is backprop          # both fit: the faster
    assert choose_gradient(rows, 2 * MiB).chosen is adjoint            # only the adjoint fits
    assert choose_gradient(rows, 20 * MiB).chosen is backprop          # a budget equal to the bytes fits
    none = choose_gradient(rows, 0.5 * MiB)
    assert none.chosen is None and none.closest is adjoint and none.over == MiB // 2
    assert "nothing fits in 512.0 KiB" in none.why and "the adjoint" in none.why and "512.0 KiB over" in none.why
    # ties in time go to the smaller, then by label; the order of the rows does not matter
    tied = [row("backprop", 5 * MiB, 100.0), row("adjoint", 3 * MiB, 100.0)]
    assert choose_gradient(tied, 8 * MiB).chosen is tied[1]
    many = [row(g, s * MiB, ms, Setting("rk4", steps=n)) for g, s, ms, n in
            [("backprop", 9, 40.0, 2), ("adjoint", 1, 60.0, 2), ("backprop", 16, 70.0, 4), ("adjoint", 1, 105.0, 4)]]
    for seed in range(5):
        shuffled = many[:]
        random.Random(seed).shuffle(shuffled)
        assert choose_gradient(shuffled, 10 * MiB).chosen is many[0]
        assert choose_gradient(shuffled, 4 * MiB).chosen is many[1]
        assert "adjoint, rk4, 2 steps" in choose_gradient(shuffled, 4 * MiB).why   # several settings: full labels
    # failed rows are left out
    assert choose_gradient([row("backprop", 1, 1.0, error="SolverError: …"), adjoint], 64 * MiB).chosen is adjoint
    assert choose_gradient([row("backprop", 1, 1.0, error="SolverError: …")], MiB).chosen is None


@pytest.mark.parametrize("budget,error", [(0, ValueError), (-1.0, ValueError), (math.nan, ValueError),
                                          ("2 MiB", TypeError), (True, TypeError), (None, TypeError)])
def test_a_budget_must_be_a_positive_number_of_bytes(budget, error):
    with pytest.raises(error, match="max_bytes must be a number of bytes"):
        choose_gradient([row("adjoint", 1, 1.0)], budget)


def test_the_gradient_sentence_follows_the_numbers():
    backprop, adjoint = row("backprop", 20 * MiB, 100.0), row("adjoint", 1 * MiB, 170.0)
    text = describe_gradient_choice([backprop, adjoint], 2 * MiB)
    assert text.startswith("For dopri5, tol 0.001 on 64 images, with 2.0 MiB, ")
    assert "backprop does not fit (20.0 MiB saved)" in text
    assert ("the adjoint fits (1.0 MiB saved) and costs 1.7× the time per step of backprop (170.0 against 100.0 ms)"
            in text)
    text = describe_gradient_choice([adjoint, backprop], 32 * MiB)
    assert "the adjoint fits too" in text and "backprop fits (20.0 MiB saved) and is the fastest" in text
    text = describe_gradient_choice([backprop, adjoint], 100_000)
    assert "nothing fits" in text and f"{format_bytes(MiB - 100_000)} over the budget" in text
    # a planted case where the adjoint is the faster one: then the budget costs nothing
    quick_adjoint = row("adjoint", 1 * MiB, 80.0)
    text = describe_gradient_choice([backprop, quick_adjoint], 2 * MiB)
    assert "the adjoint fits (1.0 MiB saved) and is the fastest: the budget costs no time" in text
    # several settings: one must be named
    rk4 = row("backprop", 9 * MiB, 40.0, Setting("rk4", steps=2))
    with pytest.raises(ValueError, match="one solver setting"):
        describe_gradient_choice([backprop, adjoint, rk4], 2 * MiB)
    text = describe_gradient_choice([backprop, adjoint, rk4], 16 * MiB, setting=Setting("rk4", steps=2))
    assert text.startswith("For rk4, 2 steps on 64 images, with 16.0 MiB, backprop fits (9.0 MiB saved)")
    with pytest.raises(ValueError, match="no rows are for euler"):
        describe_gradient_choice([backprop], MiB, setting=Setting("euler", steps=1))
