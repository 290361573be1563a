"""The solver core: accuracy, order, statistics, shapes, dtypes and autograd."""

import math

import pytest
import torch

import odeteach as ot
from odeteach import problems as P
from odeteach.convergence import empirical_order
from odeteach.tableaux import TABLEAUX

FIXED = [m for m, tab in TABLEAUX.items() if not tab.adaptive]
ADAPTIVE = [m for m, tab in TABLEAUX.items() if tab.adaptive]


def opts_for(method, step_size=0.01):
    return {"step_size": step_size} if method in FIXED else None


# ---------------------------------------------------------------- tableaux


@pytest.mark.parametrize("name", ot.METHODS)
def test_tableaux_are_consistent(name):
    tab = TABLEAUX[name]
    for ci, row in zip(tab.c, tab.A):
        assert sum(row) == pytest.approx(ci, abs=1e-14)
    assert sum(tab.b) == pytest.approx(1.0, abs=1e-14)
    if tab.adaptive:
        assert sum(tab.b_err) == pytest.approx(0.0, abs=1e-14)


def test_methods_listed():
    assert set(ot.METHODS) == {"euler", "midpoint", "heun", "rk4", "bosh3", "dopri5"}


@pytest.mark.parametrize("broken, message", [
    (dict(c=(0.0, 0.5), A=((), (0.4,)), b=(0.0, 1.0), order=2), "row 1 of A sums"),
    (dict(c=(0.0, 0.5), A=((), (0.5,)), b=(0.2, 0.7), order=2), "b sums"),
    (dict(c=(0.0, 1.0), A=((), (1.0,)), b=(0.5, 0.5), order=2, b_err=(0.1, 0.0), error_order=1), "b_err sums"),
    (dict(c=(0.1,), A=((),), b=(1.0,), order=1), r"c\[0\] is 0.1"),
])
def test_tableau_typo_raises_value_error(broken, message):
    with pytest.raises(ValueError, match=message):
        ot.Tableau(name="typo", **broken)


def test_dopri5_dense_output_reproduces_the_step_at_theta_one():
    tab = TABLEAUX["dopri5"]
    for row, bi in zip(tab.dense, tab.b):
        assert sum(row) == pytest.approx(bi, abs=1e-13)


# ---------------------------------------------------------------- accuracy and order


@pytest.mark.parametrize("method", ot.METHODS)
@pytest.mark.parametrize("problem, refine", [(P.damped_spiral, 1), (P.detest_a3, 4)], ids=["damped_spiral", "detest_a3"])
def test_empirical_order_of_convergence(method, problem, refine):
    tab = TABLEAUX[method]
    # Step sizes in the asymptotic range: small enough to converge, large enough to stay above round-off.
    span = problem.t1 - problem.t0
    base = refine * {1: 64, 2: 64, 3: 32, 4: 16, 5: 8}[tab.order]
    result = empirical_order(method, problem, [span / base / 2 ** k for k in range(5)])
    assert abs(result.order - tab.order) <= 0.3, (method, result.order, result.errors)


@pytest.mark.parametrize("method", ADAPTIVE)
@pytest.mark.parametrize("problem", [P.damped_spiral, P.detest_a2, P.detest_a3, P.kepler(0.5, t1=2 * math.pi)],
                         ids=lambda p: p.name)
def test_adaptive_error_shrinks_as_tolerance_tightens(method, problem):
    tols = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]
    errors, nfes = [], []
    for tol in tols:
        sol = ot.solve(problem, problem.initial(), problem.times(2), rtol=tol, atol=tol, method=method)
        errors.append((sol.ys[-1] - problem.exact_end()).abs().max().item())
        nfes.append(sol.stats.nfe)
    # Tightening by three decades always buys at least one decade of accuracy (global errors
    # need not fall at every single step: they can cancel by luck at a loose tolerance), ...
    for coarse, fine in zip(errors, errors[3:]):
        assert fine < coarse / 10, errors
    assert errors[-1] < errors[0] / 1e5
    # ... the work grows with the accuracy asked for, and the end result is accurate.
    assert nfes == sorted(nfes)
    assert errors[-1] < 1e-6


def test_dense_output_is_accurate_between_steps_and_costs_nothing():
    prob = P.damped_spiral
    few = ot.solve(prob, prob.initial(), prob.times(2), rtol=1e-8, atol=1e-10)
    many = ot.solve(prob, prob.initial(), prob.times(501), rtol=1e-8, atol=1e-10)
    assert many.stats.nfe == few.stats.nfe  # outputs never force extra steps
    assert torch.allclose(many.ys, prob.exact(many.ts), atol=1e-7)


def test_bosh3_interpolation_is_accurate():
    prob = P.detest_a3
    sol = ot.solve(prob, prob.initial(), prob.times(201), rtol=1e-9, atol=1e-9, method="bosh3")
    assert torch.allclose(sol.ys, prob.exact(sol.ts), atol=1e-6)


@pytest.mark.parametrize("method", ot.METHODS)
def test_decreasing_time_runs_backwards(method):
    prob = P.exponential_decay(-1.0)
    t = torch.tensor([2.0, 1.5, 0.0], dtype=torch.float64)
    y_end = torch.tensor([math.exp(-2.0)], dtype=torch.float64)
    ys = ot.odeint(prob, y_end, t, method=method, options=opts_for(method, 0.001), rtol=1e-9, atol=1e-12)
    assert ys[-1].item() == pytest.approx(1.0, rel=1e-3 if method == "euler" else 1e-5)
    assert ys[1].item() == pytest.approx(math.exp(-1.5), rel=1e-3 if method == "euler" else 1e-5)


def test_fixed_step_grid_lands_on_outputs_and_counts_steps():
    prob = P.exponential_decay(-1.0)
    t = torch.linspace(0, 2, 5, dtype=torch.float64)  # outputs at 0.5 intervals, steps of 0.01
    sol = ot.solve(prob, prob.initial(), t, method="euler", options={"step_size": 0.01})
    assert sol.stats.n_steps == 200 and sol.stats.nfe == 200
    # An output between grid points is a grid point itself: full order, no interpolation.
    sol = ot.solve(prob, prob.initial(), torch.tensor([0.0, 0.333, 1.0], dtype=torch.float64),
                   method="rk4", options={"step_size": 0.1})
    assert sol.ys[1].item() == pytest.approx(math.exp(-0.333), rel=1e-6)
    assert sol.stats.n_steps == 11  # 0.1, 0.2, 0.3, 0.333, 0.4, …, 1.0


def test_without_step_size_fixed_methods_step_on_t():
    prob = P.exponential_decay(-1.0)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    sol = ot.solve(prob, prob.initial(), t, method="euler")
    assert sol.stats.n_steps == 10
    assert sol.ys[-1].item() == pytest.approx(0.9 ** 10)


def test_agrees_with_torchdiffeq_reference():
    torchdiffeq = pytest.importorskip("torchdiffeq")  # a reference-test dependency (installed by the test extra)
    prob = P.van_der_pol(1.0)
    t = prob.times(21)
    ours = ot.odeint(prob, prob.initial(), t, rtol=1e-10, atol=1e-10)
    theirs = torchdiffeq.odeint(prob, prob.initial(), t, rtol=1e-10, atol=1e-10)
    assert torch.allclose(ours, theirs, atol=1e-7)
    t = prob.times(201)
    for method in ("euler", "midpoint"):  # same grid, same method: the same numbers
        ours = ot.odeint(prob, prob.initial(), t, method=method)
        theirs = torchdiffeq.odeint(prob, prob.initial(), t, method=method)
        assert torch.allclose(ours, theirs, atol=1e-12)


def test_agrees_with_scipy_reference():
    integrate = pytest.importorskip("scipy.integrate")
    prob = P.lotka_volterra()
    t = prob.times(11)
    ours = ot.odeint(prob, prob.initial(), t, rtol=1e-10, atol=1e-12)
    ref = integrate.solve_ivp(lambda tt, y: prob(torch.tensor(tt), torch.tensor(y)).numpy(), (prob.t0, prob.t1),
                              list(prob.y0), method="DOP853", t_eval=t.numpy(), rtol=1e-12, atol=1e-12)
    assert torch.allclose(ours, torch.tensor(ref.y.T), atol=1e-7)


# ---------------------------------------------------------------- statistics and trace


class CountingField(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, t, y):
        self.calls += 1
        return -y + torch.sin(t) * y.flip(-1)


@pytest.mark.parametrize("method", ot.METHODS)
@pytest.mark.parametrize("trace", [False, True])
def test_nfe_equals_the_calls_func_saw(method, trace):
    func = CountingField()
    y0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    sol = ot.solve(func, y0, torch.linspace(0, 3, 7, dtype=torch.float64), method=method,
                   options=opts_for(method, 0.05), rtol=1e-6, atol=1e-8, trace=trace)
    assert sol.stats.nfe == func.calls > 0
    assert sol.stats.n_steps == sol.stats.n_accepted + sol.stats.n_rejected


def test_trace_records_every_attempt():
    prob = P.kepler(0.9)
    sol = ot.solve(prob, prob.initial(), prob.times(2), rtol=1e-6, atol=1e-6, trace=True)
    assert len(sol.trace) == sol.stats.n_steps
    assert sum(r.accepted for r in sol.trace) == sol.stats.n_accepted
    assert sol.stats.n_rejected > 0  # this orbit's pericentre forces rejections
    for r in sol.trace:
        assert (r.error_ratio <= 1.0) == r.accepted
        assert r.stage_times[0] == r.t and r.stage_times[-1] == pytest.approx(r.t + r.h)
    accepted = [r for r in sol.trace if r.accepted]
    for a, b in zip(accepted, accepted[1:]):
        assert b.t == pytest.approx(a.t + a.h)  # accepted steps tile the interval
    assert accepted[-1].t + accepted[-1].h == pytest.approx(prob.t1)
    # No growth right after a rejection (HNW II.4).
    for a, b in zip(sol.trace, sol.trace[1:]):
        if not a.accepted:
            assert abs(b.h) <= abs(a.h) * (1 + 1e-12)
    # dopri5 is FSAL: 6 evaluations per attempt, plus f(t0) and one for the initial step.
    assert sol.stats.nfe == 6 * sol.stats.n_steps + 2


def test_trace_is_off_by_default():
    prob = P.damped_spiral
    assert ot.solve(prob, prob.initial(), prob.times(2)).trace is None


# ---------------------------------------------------------------- shapes and dtypes


class Linear(torch.nn.Module):
    """dy/dt = -a y + b sin(t): any shape, time-dependent, with parameters."""

    def __init__(self, dtype):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.7, dtype=dtype))
        self.b = torch.nn.Parameter(torch.tensor(0.3, dtype=dtype))

    def forward(self, t, y):
        return -self.a * y + self.b * torch.sin(t).to(y.dtype)


@pytest.mark.parametrize("shape", [(3,), (4, 3), (2, 3, 4, 4)], ids=["D", "BxD", "BxCxHxW"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", ["rk4", "bosh3", "dopri5"])
def test_state_shapes_and_dtypes(shape, dtype, method):
    torch.manual_seed(0)
    y0 = torch.randn(shape, dtype=dtype)
    t = torch.linspace(0, 1, 4, dtype=dtype)
    ys = ot.odeint(Linear(dtype), y0, t, method=method, options=opts_for(method, 0.05), rtol=1e-6, atol=1e-7)
    assert ys.shape == (4, *shape) and ys.dtype == dtype
    # Exact: y(t) = e^{-a t} y0 + b ∫ e^{-a (t - s)} sin s ds
    a, b, tt = 0.7, 0.3, t.double()
    forced = b * (a * torch.sin(tt) - torch.cos(tt) + torch.exp(-a * tt)) / (1 + a * a)
    exact = torch.exp(-a * tt).view(-1, *[1] * len(shape)) * y0.double() + forced.view(-1, *[1] * len(shape))
    tol = 1e-5 if dtype == torch.float32 else 1e-6
    assert torch.allclose(ys.double(), exact, atol=tol)


def test_float64_time_with_float32_state():
    y0 = torch.ones(3, dtype=torch.float32)
    t = torch.linspace(0, 1, 3, dtype=torch.float64)
    seen = []

    def f(tt, y):
        seen.append(tt.dtype)
        return -y

    ys = ot.odeint(f, y0, t)
    assert ys.dtype == torch.float32 and set(seen) == {torch.float64}
    assert ys[-1, 0].item() == pytest.approx(math.exp(-1), rel=1e-6)


def test_tuple_state():
    # (position, velocity) of the harmonic oscillator, as two tensors of different shapes.
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    v0 = torch.tensor([0.0, 0.0], dtype=torch.float64)

    def f(t, state):
        x, v = state
        return v.view(1, 2), -x.view(2)

    t = torch.linspace(0, 3, 5, dtype=torch.float64)
    xs, vs = ot.odeint(f, (x0, v0), t, rtol=1e-10, atol=1e-10)
    assert xs.shape == (5, 1, 2) and vs.shape == (5, 2)
    assert torch.allclose(xs[:, 0, :], torch.cos(t)[:, None] * x0[0], atol=1e-8)
    assert torch.allclose(vs, -torch.sin(t)[:, None] * x0[0], atol=1e-8)
    xs4, _ = ot.odeint(f, (x0, v0), t, method="rk4", options={"step_size": 0.01})
    assert torch.allclose(xs4, xs, atol=1e-8)


def test_single_time_returns_y0():
    y0 = torch.randn(2, 3)
    ys = ot.odeint(lambda t, y: y, y0, torch.tensor([0.5]))
    assert ys.shape == (1, 2, 3) and torch.equal(ys[0], y0)
    xs, vs = ot.odeint(lambda t, s: s, (y0, y0[0]), torch.tensor([0.5]))
    assert xs.shape == (1, 2, 3) and vs.shape == (1, 3)


# ---------------------------------------------------------------- autograd


class Field(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[-0.5, 1.0], [-1.0, -0.2]], dtype=torch.float64))
        self.c = torch.nn.Parameter(torch.tensor([0.1, -0.3], dtype=torch.float64))

    def forward(self, t, y):
        return torch.tanh(y @ self.w.T) + self.c * torch.cos(t)


@pytest.mark.parametrize("method, options, rtol", [("rk4", {"step_size": 0.1}, None), ("dopri5", None, 1e-10),
                                                    ("bosh3", None, 1e-8), ("midpoint", None, None)])
def test_gradcheck_through_the_solver(method, options, rtol):
    func = Field()
    kw = dict(method=method, options=options)
    if rtol:
        kw.update(rtol=rtol, atol=rtol)

    def run(y0, t, w, c):
        with torch.no_grad():
            func.w.copy_(w)
            func.c.copy_(c)
        # Route the parameters through the graph functionally so gradcheck can perturb them.
        f = lambda tt, y: torch.tanh(y @ w.T) + c * torch.cos(tt)  # noqa: E731
        return ot.odeint(f, y0, t, **kw)

    y0 = torch.tensor([1.0, -0.5], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.35, 1.0], dtype=torch.float64, requires_grad=True)
    w = func.w.detach().clone().requires_grad_()
    c = func.c.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(run, (y0, t, w, c), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_gradients_reach_module_parameters():
    func = Field()
    y0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
    ot.odeint(func, y0, torch.tensor([0.0, 1.0], dtype=torch.float64))[-1].sum().backward()
    assert func.w.grad is not None and func.w.grad.abs().sum() > 0
    assert func.c.grad is not None and func.c.grad.abs().sum() > 0


def test_gradient_with_respect_to_end_time_is_the_derivative():
    prob = P.damped_spiral
    t = torch.tensor([0.0, 2.0], dtype=torch.float64, requires_grad=True)
    ys = ot.odeint(prob, prob.initial(), t, rtol=1e-10, atol=1e-10)
    (grad_t,) = torch.autograd.grad(ys[-1, 0], t)
    assert grad_t[1].item() == pytest.approx(prob(t[1], ys[-1])[0].item(), rel=1e-6)
