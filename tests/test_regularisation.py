"""Regularised dynamics (odeteach.regularisation; lesson 7's ODE-Net trained for tunability)."""

import math

import pytest
import torch
from torch.nn import functional as F

from odeteach import solve
from odeteach.classifier import (REGULARISATION, REGULARISED, SHIPPED, TrainConfig, checkpoint_path, load_pretrained,
                                 make_model, save_checkpoint, train)
from odeteach.classifier.training import History
from odeteach.regularisation import Regularisation, RegularisedDynamics
from odeteach.train import OUT_ARGUMENT, TARGETS


class Linear(torch.nn.Module):
    """f(t, h) = A h, row by row: E_K and E_J have closed forms."""

    def __init__(self, a):
        super().__init__()
        self.a = torch.nn.Parameter(torch.as_tensor(a, dtype=torch.float64))

    def forward(self, t, h):
        return h @ self.a.T


def test_integrals_match_closed_forms_for_a_linear_field():
    """f = A h with A = −I: h(t) = h0 e^{−t}, so ∫‖f‖²/D dt = mean(h0²)(1 − e^{−2})/2, and with ε fixed,
    ‖εᵀA‖²/D = mean(ε²) at every t."""
    torch.manual_seed(0)
    h0 = torch.randn(5, 3, dtype=torch.float64)
    noise = torch.randn(5, 3, dtype=torch.float64)
    dynamics = RegularisedDynamics(Linear(-torch.eye(3)), noise)
    zero = torch.zeros(5, dtype=torch.float64)
    sol = solve(dynamics, (h0, zero, zero.clone()), torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-10, atol=1e-10)
    h1, kinetic, jacobian = (y[-1] for y in sol.ys)
    assert torch.allclose(h1, h0 * math.exp(-1.0), atol=1e-8)
    assert torch.allclose(kinetic, h0.pow(2).mean(1) * (1 - math.exp(-2.0)) / 2, atol=1e-8)
    assert torch.allclose(jacobian, noise.pow(2).mean(1), atol=1e-8)


class Tanh(torch.nn.Module):
    """A smooth field that treats rows independently: f(t, h) = tanh(W h + b t)."""

    def __init__(self, dim=3):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(dim, dim, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.randn(dim, dtype=torch.float64))

    def forward(self, t, h):
        return torch.tanh(h @ self.w.T + self.b * t)


def test_penalty_gradients_agree_between_adjoint_and_backprop():
    """On a smooth field, ∂(E_K + E_J)/∂θ by the adjoint equals backprop through the solver (tight tolerances)."""
    from odeteach import odeint_adjoint
    torch.manual_seed(0)
    field = Tanh()
    h0 = torch.randn(4, 3, dtype=torch.float64)
    noise = torch.randn(4, 3, dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    zero = torch.zeros(4, dtype=torch.float64)
    grads = []
    for integrate in (lambda d, s: odeint_adjoint(d, s, t, rtol=1e-10, atol=1e-10),
                      lambda d, s: solve(d, s, t, rtol=1e-10, atol=1e-10).ys):
        field.zero_grad()
        _, kinetic, jacobian = integrate(RegularisedDynamics(field, noise), (h0, zero, zero.clone()))
        (kinetic[-1].sum() + 2 * jacobian[-1].sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in field.parameters()]))
    assert grads[0].abs().max() > 1e-3
    assert torch.allclose(grads[0], grads[1], rtol=1e-6, atol=1e-9)


def test_classifier_penalty_gradient_by_the_adjoint_points_where_backprop_does():
    """The classifier's field has ReLU kinks, so the two gradients differ by the discretisation (about 1 %
    here), not more: they point the same way."""
    torch.manual_seed(0)
    model = make_model("odenet", regularisation=(1.0, 1.0), method="rk4", step_size=0.05).double()
    model.train()
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    grads = {}
    for adjoint in (True, False):
        model.ode_block.adjoint = adjoint
        model.zero_grad()
        torch.manual_seed(1)                         # the same noise ε in both runs
        model(x)
        model.ode_block.penalty.backward()
        grads[adjoint] = torch.cat([p.grad.flatten() for p in model.ode_block.func.parameters()])
    cosine = F.cosine_similarity(grads[True], grads[False], dim=0)
    assert cosine > 0.999 and grads[True].abs().max() > 0


def test_evaluation_solves_the_plain_ode():
    """At evaluation (eval mode or no grad) the block has no penalty and costs what an unregularised one does."""
    plain = make_model("odenet", seed=3)
    regularised = make_model("odenet", seed=3, regularisation=(0.1, 0.1))
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(plain(x), regularised(x))
    assert regularised.ode_block.penalty is None
    assert regularised.ode_block.nfe_forward == plain.ode_block.nfe_forward
    regularised.train()
    regularised(x)
    assert regularised.ode_block.penalty is not None and regularised.ode_block.penalty > 0


def test_training_adds_the_penalty_and_records_it(tmp_path):
    from odeteach.data.digits import load_digits
    data = load_digits()
    small = type(data)(data.x_train[:64], data.y_train[:64], data.x_test[:16], data.y_test[:16])
    model = make_model("odenet", regularisation=(0.1, 0.1), rtol=1e-2, atol=1e-2)
    history = train(model, small, TrainConfig(epochs=1, batch_size=32), progress=False)
    assert len(history.penalty) == 2 and all(p > 0 for p in history.penalty)
    path = save_checkpoint(model, tmp_path / "digits_odenet_regularised.pt", train_config=TrainConfig(epochs=1),
                           history=history, name=REGULARISED)
    loaded, loaded_history, config = load_pretrained(REGULARISED, directory=tmp_path)
    assert path.exists() and config["model"]["regularisation"] == [0.1, 0.1]
    assert loaded.ode_block.regularisation == Regularisation(0.1, 0.1)
    assert loaded_history.penalty == pytest.approx(history.penalty)
    with torch.no_grad():
        assert torch.equal(loaded(small.x_test), model.eval()(small.x_test))
    plain_history = History()
    assert plain_history.penalty == []


def test_shipped_regularised_checkpoint():
    assert REGULARISED in SHIPPED
    path = checkpoint_path(REGULARISED)
    assert path.stat().st_size < 1_000_000
    blob = torch.load(path, weights_only=True)
    assert blob["kind"] == f"digits_{REGULARISED}"
    model, history, config = load_pretrained(REGULARISED)
    assert config["model"]["regularisation"] == list(REGULARISATION)
    assert config["train"] == load_pretrained("odenet")[2]["train"]      # the ODE-Net's recipe and seed
    assert len(history.penalty) == len(history.loss) > 0


def test_retrain_command_is_registered():
    module, function, _ = TARGETS["digits_regularised"]
    assert (module, function) == ("odeteach.classifier", "train_regularised")
    assert OUT_ARGUMENT["digits_regularised"] == "directory"


@pytest.mark.parametrize("bad", [(-1.0, 0.0), (0.1,), "strong", (float("nan"), 0.1)])
def test_bad_weights_are_refused(bad):
    with pytest.raises(ValueError, match="regularisation|kinetic|jacobian"):
        Regularisation.of(bad)


def test_resnet_refuses_regularisation():
    with pytest.raises(ValueError, match="regularisation"):
        make_model("resnet", regularisation=(0.1, 0.1))


def test_unregularised_loss_is_unchanged():
    """A plain ODE-Net's training loss is its cross-entropy alone (the penalty is None)."""
    model = make_model("odenet", rtol=1e-2, atol=1e-2)
    model.train()
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    loss = F.cross_entropy(model(x), y)
    assert model.ode_block.penalty is None and torch.isfinite(loss)


def test_regularised_backprop_counts_one_vjp_per_evaluation_in_the_backward_pass():
    """Training with the penalty under backprop: nfe_backward counts the backward pass's VJPs through f (one per
    evaluation the loss depends on: all of RK4's), not the penalty's own VJPs taken during the forward solve."""
    torch.manual_seed(0)
    model = make_model("odenet", channels=8, regularisation=(0.1, 0.1), method="rk4", step_size=0.25)
    model.train()
    out = model(torch.rand(3, 1, 8, 8))
    block = model.ode_block
    assert block.nfe_forward == 16 and block.nfe_backward == 0          # nothing counted before backward
    (F.cross_entropy(out, torch.tensor([0, 1, 2])) + block.penalty).backward()
    assert block.nfe_backward == 16
