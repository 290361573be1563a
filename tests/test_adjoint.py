"""The adjoint method against backprop through the solver, finite differences and closed forms."""

import math

import pytest
import torch

from odeteach import SolverError, odeint, odeint_adjoint, solve_adjoint

TOL = dict(rtol=1e-10, atol=1e-10)
F64 = torch.float64


# --- three problems: each returns (func, y0, t, params) ---------------------------------------

class Linear(torch.nn.Module):
    """dz/dt = A z: exact solution z(t) = exp(A t) z0."""

    def __init__(self):
        super().__init__()
        self.A = torch.nn.Parameter(torch.tensor([[-0.1, -1.0], [1.0, -0.1]], dtype=F64))

    def forward(self, t, z):
        return z @ self.A.T


class Pendulum(torch.nn.Module):
    """A damped pendulum θ'' = -(g/l) sin θ - c θ' with learnable g/l and c."""

    def __init__(self):
        super().__init__()
        self.g_over_l = torch.nn.Parameter(torch.tensor(2.0, dtype=F64))
        self.c = torch.nn.Parameter(torch.tensor(0.15, dtype=F64))

    def forward(self, t, z):
        theta, omega = z[..., 0], z[..., 1]
        return torch.stack((omega, -self.g_over_l * torch.sin(theta) - self.c * omega), dim=-1)


class TimeMLP(torch.nn.Module):
    """f(z, t, θ): a small MLP that also reads t, on a batch."""

    def __init__(self, dim=3, width=16):
        super().__init__()
        self.l1 = torch.nn.Linear(dim + 1, width)
        self.l2 = torch.nn.Linear(width, dim)

    def forward(self, t, z):
        tt = t.expand(*z.shape[:-1], 1)
        return self.l2(torch.tanh(self.l1(torch.cat((z, tt), dim=-1))))


def make(name):
    torch.manual_seed(0)
    if name == "linear":
        return Linear(), torch.tensor([1.0, 0.5], dtype=F64), torch.tensor([0.0, 1.0, 2.5, 4.0], dtype=F64)
    if name == "pendulum":
        return Pendulum(), torch.tensor([1.2, 0.0], dtype=F64), torch.tensor([0.0, 2.0, 5.0], dtype=F64)
    return TimeMLP().double(), torch.randn(8, 3, dtype=F64), torch.tensor([0.0, 0.3, 1.0], dtype=F64)


def loss_of(ys):
    weights = torch.linspace(0.5, 1.5, ys.numel(), dtype=ys.dtype).reshape(ys.shape)
    return (weights * ys).sum() + (ys ** 2).sum()


def gradients(solver, func, y0, t, **kw):
    y0 = y0.detach().clone().requires_grad_(True)
    t = t.detach().clone().requires_grad_(True)
    params = list(func.parameters())
    for p in params:
        p.grad = None
    loss_of(solver(func, y0, t, **kw)).backward()
    return [y0.grad, t.grad] + [p.grad.clone() for p in params]


def rel_err(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


@pytest.mark.parametrize("name", ["linear", "pendulum", "time_mlp"])
def test_adjoint_matches_backprop(name):
    func, y0, t = make(name)
    adj = gradients(odeint_adjoint, func, y0, t, **TOL)
    ref = gradients(odeint, func, y0, t, **TOL)
    assert len(adj) == len(ref) >= 3
    for what, a, b in zip(["y0", "t"] + [n for n, _ in func.named_parameters()], adj, ref):
        assert a is not None and a.shape == b.shape, what
        assert b.norm() > 0, what
        assert rel_err(a, b) <= 1e-6, (name, what, rel_err(a, b))


def test_linear_adjoint_matches_closed_form():
    """dL/dz0 = exp(A T)ᵀ dL/dz(T) for L = g · z(T)."""
    func, y0, _ = make("linear")
    t = torch.tensor([0.0, 3.0], dtype=F64)
    g = torch.tensor([0.7, -1.3], dtype=F64)
    y0 = y0.clone().requires_grad_(True)
    (odeint_adjoint(func, y0, t, **TOL)[-1] @ g).backward()
    exact = torch.linalg.matrix_exp(func.A.detach() * 3.0).T @ g
    assert rel_err(y0.grad, exact) <= 1e-8


def test_adjoint_matches_finite_differences():
    func, y0, _ = make("pendulum")
    t = torch.tensor([0.0, 0.8, 1.5], dtype=F64)
    (g_y0, g_t, g_gl, g_c) = gradients(odeint_adjoint, func, y0, t, **TOL)
    eps = 1e-6
    with torch.no_grad():
        def L(y0_=y0, t_=t):
            return loss_of(odeint(func, y0_, t_, **TOL)).item()
        for i in range(2):
            e = torch.zeros(2, dtype=F64)
            e[i] = eps
            assert abs((L(y0_=y0 + e) - L(y0_=y0 - e)) / (2 * eps) - g_y0[i].item()) < 1e-6 * max(1.0, abs(g_y0[i].item()))
        for i in range(len(t)):
            e = torch.zeros(len(t), dtype=F64)
            e[i] = eps
            assert abs((L(t_=t + e) - L(t_=t - e)) / (2 * eps) - g_t[i].item()) < 1e-6 * max(1.0, abs(g_t[i].item()))
        func.c += eps
        up = L()
        func.c -= 2 * eps
        down = L()
        func.c += eps
    assert abs((up - down) / (2 * eps) - g_c.item()) < 1e-6 * max(1.0, abs(g_c.item()))


def test_gradcheck():
    theta = torch.tensor([0.3, -0.8], dtype=F64, requires_grad=True)

    def f(t, z):
        return torch.stack((theta[0] * z[1], theta[1] * torch.sin(z[0]) + 0.1 * t * z[1]))

    def run(z0, t, th):
        # th is theta (passed so gradcheck perturbs it); f closes over the same tensor.
        return odeint_adjoint(f, z0, t, adjoint_params=(th,), **TOL)

    z0 = torch.tensor([0.5, 0.2], dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 0.7, 1.5], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(run, (z0, t, theta), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_unused_parameter_gets_zero_gradient():
    func = TimeMLP().double()
    func.unused = torch.nn.Parameter(torch.ones(4, dtype=F64))
    y0 = torch.randn(2, 3, dtype=F64)
    odeint_adjoint(func, y0, torch.tensor([0.0, 1.0], dtype=F64)).sum().backward()
    assert func.unused.grad is not None
    assert torch.equal(func.unused.grad, torch.zeros(4, dtype=F64))
    assert func.l1.weight.grad.abs().sum() > 0


def test_plain_function_needs_adjoint_params():
    theta = torch.tensor(-0.5, dtype=F64, requires_grad=True)
    f = lambda t, z: theta * z  # noqa: E731
    y0 = torch.tensor([1.0], dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    with pytest.raises(ValueError, match="adjoint_params"):
        odeint_adjoint(f, y0, t)
    # Listed, it gets its gradient: L = z(1) = e^θ, dL/dθ = e^θ.
    odeint_adjoint(f, y0, t, adjoint_params=(theta,), **TOL)[-1].sum().backward()
    assert theta.grad.item() == pytest.approx(math.exp(-0.5), rel=1e-8)
    assert y0.grad.item() == pytest.approx(math.exp(-0.5), rel=1e-8)
    # adjoint_params=() is allowed: gradients for y0 only.
    y1 = torch.tensor([2.0], dtype=F64, requires_grad=True)
    odeint_adjoint(lambda t, z: -z, y1, t, adjoint_params=())[-1].sum().backward()
    assert y1.grad.item() == pytest.approx(math.exp(-1.0), rel=1e-6)


@pytest.mark.parametrize("bad", [[1.0], "theta", [torch.zeros(1), 3]])
def test_bad_adjoint_params(bad):
    with pytest.raises(ValueError, match="adjoint_params"):
        odeint_adjoint(lambda t, z: -z, torch.ones(1), torch.tensor([0.0, 1.0]), adjoint_params=bad)


def test_unknown_adjoint_method_fails_before_backward():
    with pytest.raises(SolverError, match="adjoint_method"):
        odeint_adjoint(lambda t, z: -z, torch.ones(2), torch.tensor([0.0, 1.0]), adjoint_params=(), adjoint_method="rk45")


@pytest.mark.parametrize("bad_t", [torch.tensor([0.0, 1.0, 0.5]), torch.tensor([0, 1]), torch.tensor([[0.0, 1.0]])])
def test_bad_time_raises_solver_error(bad_t):
    with pytest.raises(SolverError):
        odeint_adjoint(lambda t, z: -z, torch.ones(2), bad_t, adjoint_params=())


def test_tuple_state_matches_backprop():
    func = Pendulum()

    def split(t, state):
        theta, omega = state
        d = func(t, torch.cat((theta, omega), dim=-1))
        return d[..., :1], d[..., 1:]

    y0 = (torch.tensor([1.0], dtype=F64), torch.tensor([0.3], dtype=F64))
    t = torch.tensor([0.0, 1.0, 2.0], dtype=F64)
    grads = []
    for solver, kw in ((odeint_adjoint, dict(adjoint_params=tuple(func.parameters()))), (odeint, {})):
        ys = tuple(y.clone().requires_grad_(True) for y in y0)
        for p in func.parameters():
            p.grad = None
        out = solver(split, ys, t, **TOL, **kw)
        assert isinstance(out, tuple) and out[0].shape == (3, 1)
        (out[0] ** 2).sum().add(out[1].sum()).backward()
        grads.append([ys[0].grad, ys[1].grad, func.g_over_l.grad.clone(), func.c.grad.clone()])
    for a, b in zip(*grads):
        assert rel_err(a, b) <= 1e-6


def test_decreasing_time_matches_backprop():
    func, y0, _ = make("pendulum")
    t = torch.tensor([3.0, 1.5, 0.0], dtype=F64)
    adj = gradients(odeint_adjoint, func, y0, t, **TOL)
    ref = gradients(odeint, func, y0, t, **TOL)
    for a, b in zip(adj, ref):
        assert rel_err(a, b) <= 1e-6


def test_float32_gradients():
    func64, y0, t = make("time_mlp")
    func32 = TimeMLP().float()
    func32.load_state_dict({k: v.float() for k, v in func64.state_dict().items()})
    g32 = gradients(odeint_adjoint, func32, y0.float(), t.float(), rtol=1e-5, atol=1e-6)
    g64 = gradients(odeint_adjoint, func64, y0, t, **TOL)
    for a, b in zip(g32, g64):
        assert a.dtype == torch.float32
        assert rel_err(a.double(), b) < 1e-3


@pytest.mark.parametrize("method,options", [("rk4", {"step_size": 0.02}), ("bosh3", None), ("midpoint", {"step_size": 0.01})])
def test_other_methods_close_to_backprop(method, options):
    func, y0, _ = make("pendulum")
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    kw = dict(method=method, options=options, rtol=1e-8, atol=1e-8)
    for a, b in zip(gradients(odeint_adjoint, func, y0, t, **kw), gradients(odeint, func, y0, t, **kw)):
        assert rel_err(a, b) < 1e-3


def test_solve_adjoint_reports_forward_and_backward_nfe():
    func, y0, t = make("time_mlp")
    sol = solve_adjoint(func, y0, t, rtol=1e-6, atol=1e-8)
    assert sol.backward_stats is None and sol.stats.nfe > 0
    assert sol.ys.shape == (3, 8, 3)
    assert torch.allclose(sol.ys, odeint(func, y0, t, rtol=1e-6, atol=1e-8), atol=1e-12)
    sol.ys.sum().backward()
    back = sol.backward_stats
    assert back is not None and sol.n_backward == 1
    assert back.nfe > 0 and back.n_accepted > 0 and back.n_steps == back.n_accepted + back.n_rejected
    assert "backward nfe" in repr(sol)


def test_forward_builds_no_graph_and_matches_odeint():
    func, y0, t = make("linear")
    y0 = y0.requires_grad_(True)
    ys = odeint_adjoint(func, y0, t, **TOL)
    # The whole solve is one node of the graph (plus the reshape to y0's shape): no per-step nodes.
    nodes, stack = set(), [ys.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in nodes:
            nodes.add(node)
            stack.extend(fn for fn, _ in node.next_functions)
    names = sorted(type(n).__name__ for n in nodes)
    assert any("AdjointFunction" in n for n in names) and len(nodes) <= 8, names
    exact = torch.stack([torch.linalg.matrix_exp(func.A.detach() * ti) @ y0.detach() for ti in t])
    assert rel_err(ys.detach(), exact) < 1e-9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA on this machine")
def test_cuda_matches_cpu():
    func, y0, t = make("time_mlp")
    cpu = gradients(odeint_adjoint, func, y0, t, **TOL)
    func = func.cuda()
    gpu = gradients(odeint_adjoint, func, y0.cuda(), t.cuda(), **TOL)
    for a, b in zip(gpu, cpu):
        assert a.is_cuda and rel_err(a.cpu(), b) < 1e-8


# --- lesson 3's explorers, studies and exercise checks ------------------------------------------

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")

from odeteach.exercises import lesson03  # noqa: E402
from odeteach.problems import van_der_pol  # noqa: E402
from odeteach import solve  # noqa: E402
from odeteach.adjoint_studies import MLPField, drift_study, lorenz, memory_study  # noqa: E402
from odeteach.widgets.adjoint import DriftExplorer, MemoryExplorer, NFEExplorer  # noqa: E402


def _drive(explorer, control):
    slider = getattr(explorer, control)
    seen = []
    for _, value in slider.options:
        slider.value = value
        assert explorer.message.value == "" or "⚠" in explorer.message.value
        assert "Traceback" not in explorer.message.value
        seen.append(explorer.last_update_s)
    return seen


def test_memory_study_and_explorer():
    pts = memory_study((2, 6), batch=4, width=4, timing=False)
    assert pts[1].backprop_bytes == 3 * pts[0].backprop_bytes  # every step saves the same tensors
    assert pts[0].adjoint_bytes == pts[1].adjoint_bytes > 0
    explorer = MemoryExplorer(steps=(2, 4), batch=4, width=4)
    _drive(explorer, "steps")
    p = explorer.point
    assert p.steps == 4 and p.backprop_seconds > 0 and p.max_grad_difference < 1e-2
    assert f"{p.backprop_bytes / p.adjoint_bytes:.0f}" in explorer.memory.value


def test_nfe_explorer_reports_what_solve_adjoint_counts():
    field = MLPField(width=4, seed=2)
    z0 = torch.randn(3, 2, dtype=F64)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    explorer = NFEExplorer({"tiny": (field, z0, t, None)}, tolerances=(1e-3, 1e-6))
    _drive(explorer, "tol")
    p = explorer.points[-1]
    sol = solve_adjoint(field, z0.clone().requires_grad_(True), t, rtol=1e-6, atol=1e-6)
    (sol.ys[-1] ** 2).sum().backward()
    assert (p.forward_nfe, p.backward_nfe) == (sol.stats.nfe, sol.backward_stats.nfe)
    assert f"<b>{p.forward_nfe}</b>" in explorer.nfe.value and f"{p.ratio:.2f}" in explorer.nfe.value
    assert explorer.points[0].forward_nfe < p.forward_nfe  # tighter tolerance, more work


def test_drift_grows_with_horizon_and_so_does_gradient_error():
    pts = drift_study(van_der_pol(1.0), (2.0, 8.0), n_points=30)
    assert pts[0].drift[-1] < 1e-12           # the reconstruction starts at z(T) itself
    assert pts[1].drift[0] > 10 * pts[0].drift[0]
    assert pts[1].grad_error > 10 * pts[0].grad_error
    assert pts[0].grad_error < 1e-4 and not pts[0].failure


def test_drift_explorer_shows_failures_without_raising():
    systems = {"vdp": (van_der_pol(1.0), (2.0, 12.0)), "vdp again": (van_der_pol(1.0), (1.0,))}
    explorer = DriftExplorer(systems, n_points=20, max_num_steps=30)
    _drive(explorer, "horizon")
    assert "max_num_steps" in explorer.message.value   # T = 12 needs more than 30 backward steps
    assert "blew up" in explorer.drift.value or "failed" in explorer.gradient.value
    explorer.system.value = "vdp again"                # fewer horizons: the slider follows
    assert [o[0] for o in explorer.horizon.options] == ["1"]
    assert "T = 1:" in explorer.drift.value


def _augmented_solution(f, t, z, a, theta):
    z, theta, t = (x.detach().requires_grad_(True) for x in (z, theta, t))
    with torch.enable_grad():
        dz = f(t, z, theta)
        vjps = torch.autograd.grad(dz, (z, theta, t), -a, allow_unused=True)
    return (dz.detach(), *(torch.zeros_like(x) if v is None else v for x, v in zip((z, theta, t), vjps)))


def _transposed_jacobian(f, t, z, a, theta):  # J a instead of aᵀ J
    dz, _, da_th, da_t = _augmented_solution(f, t, z, a, theta)
    J = torch.autograd.functional.jacobian(lambda y: f(t, y, theta), z)
    return dz, -(J @ a), da_th, da_t


@pytest.mark.parametrize("answer,hint", [
    (lambda f, t, z, a, th: (f(t, z, th), torch.zeros_like(a), torch.zeros_like(th), 0.0), "da/dt is off"),  # placeholder
    (lambda *args: tuple(x if i == 0 else -x for i, x in enumerate(_augmented_solution(*args))), "wrong sign"),
    (_transposed_jacobian, "aᵀ J is not J a"),
    (lambda *args: _augmented_solution(*args)[:3] + (torch.tensor(0.0, dtype=F64),), "da_t/dt is off"),  # no a_t
    (lambda *args: _augmented_solution(*args)[:3], "return four things"),  # the three-part system of algorithm 1
    (lambda *args: _augmented_solution(*args)[:3] + (-_augmented_solution(*args)[3],),
     "da_t/dt for a time-dependent field has the wrong sign"),
    (lambda *args: 1 / 0, "raised ZeroDivisionError"),
])
def test_check_augmented_dynamics_rejects_wrong_answers(answer, hint):
    result = lesson03.check_augmented_dynamics(answer)
    assert not result and hint in result.message
    assert "grad_outputs=-a" not in result.message and "Hint:" in result.message


def test_check_augmented_dynamics_passes_the_solution():
    assert lesson03.check_augmented_dynamics(_augmented_solution)
    assert "not attempted" in lesson03.check_augmented_dynamics(None).message


def _a0(f, t0, t1, z0, a_end):
    z = z0.clone().requires_grad_(True)
    a0, = torch.autograd.grad(odeint(f, z, torch.stack((t0, t1)), rtol=1e-10, atol=1e-10)[-1], z, a_end)
    return a0


def _time_grads_solution(f, t0, t1, z0, z1, a_end):
    return -(_a0(f, t0, t1, z0, a_end) * f(t0, z0)).sum(), (a_end * f(t1, z1)).sum()


def _old_a_t_start(f, t0, t1, z0, z1, a_end):  # a_t(t1) = +dL/dt1: a_t(t0) = -a0·f0 + 2 a1·f1
    dt1 = (a_end * f(t1, z1)).sum()
    return -(_a0(f, t0, t1, z0, a_end) * f(t0, z0)).sum() + 2 * dt1, dt1


@pytest.mark.parametrize("answer,hint", [
    (lambda *args: (0.0, 0.0), "dL/dt1 is off"),                             # the placeholder
    (lambda *args: (0.36211, -0.36211), "dL/dt1 is off"),                    # lesson 3's autonomous printout
    (lambda *args: (2.69401, -1.41078), "dL/dt1 is off"),                    # lesson 3's driven printout
    (lambda f, t0, t1, z0, z1, a: (-(a * f(t0, z0)).sum(), (a * f(t1, z1)).sum()), "You know a(t1), not a(t0)"),
    (lambda *args: tuple(-x for x in _time_grads_solution(*args)), "dL/dt1 has the wrong sign"),
    (lambda *args: (-_time_grads_solution(*args)[0], _time_grads_solution(*args)[1]), "dL/dt0 has the wrong sign"),
    (lambda *args: (-_time_grads_solution(*args)[1], _time_grads_solution(*args)[1]), "holds when f does not depend on t"),
    (_old_a_t_start, "dL/dt0"),
])
def test_check_time_gradients_rejects_wrong_answers(answer, hint):
    result = lesson03.check_time_gradients(answer)
    assert not result and hint in result.message


def test_check_time_gradients_passes_the_solution():
    assert lesson03.check_time_gradients(_time_grads_solution)
    assert not lesson03.check_time_gradients("dL/dt0")


_STAGES = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}


def _memory_solution(method, n_steps, batch, width):
    # One call of the field saves l1's input [z, t] (batch × 3) and tanh's output (batch × width),
    # which l2 saves again (same storage, counted once); float64 = 8 bytes.
    return _STAGES[method] * n_steps * 8 * batch * (2 + 1 + width)


@pytest.mark.parametrize("answer", [
    lambda m, n, b, w: 716_800,                                   # the placeholder: 10 RK4 steps as printed
    lambda m, n, b, w: 71_680 * n,                                # the printed bytes per step, scaled in n only
    lambda m, n, b, w: 17_920 * _STAGES[m] * n,                   # the printed bytes of one call, for any size
    lambda m, n, b, w: 2_064,                                     # the adjoint's flat answer
    lambda m, n, b, w: _STAGES[m] * n * 8 * b * (2 + w),          # forgets the time column of [z, t]
    lambda m, n, b, w: _STAGES[m] * n * 8 * b * (3 + 2 * w),      # counts tanh's output twice (the naive sum)
    lambda m, n, b, w: 4 * n * 8 * b * (3 + w),                   # four evaluations per step for every method
    lambda m, n, b, w: _memory_solution(m, n, b, w) + 8 * b * 2,  # counts the input batch as a fixed part
    lambda m, n, b, w: _memory_solution(m, n, b, w) / 2,          # float32
])
def test_check_memory_prediction_rejects_wrong_answers(answer):
    result = lesson03.check_memory_prediction(answer)
    assert not result and "is off by more than 0.1 %" in result.message


def test_check_memory_prediction_needs_a_prediction_not_a_measurement():
    assert lesson03.check_memory_prediction(_memory_solution)
    cheat = lesson03.check_memory_prediction(lambda m, n, b, w: lesson03.saved_by_backprop(m, n, b, w))
    assert not cheat and "returned 0 bytes" in cheat.message
    assert not lesson03.check_memory_prediction("12 kB")
    assert "not attempted" in lesson03.check_memory_prediction(None).message
    for method, n, b, w in lesson03.MEMORY_CASES:   # the cases are not the lesson's (RK4, batch 64 or 32, width 32)
        assert (method, b, w) not in {("rk4", 64, 32), ("rk4", 32, 32), ("rk4", 16, 32)}
        assert lesson03.saved_by_backprop(method, n, b, w) == _memory_solution(method, n, b, w)
    with pytest.raises(ValueError, match="method must be one of"):
        lesson03.saved_by_backprop("dopri5", 3, 2, 2)


def test_drift_backprop_differentiates_the_forward_solve_itself():
    """drift_study takes backprop's dL/dz0 from its forward solve on the plot's grid. That solve takes the same steps
    as one on [0, T] alone (outputs inside a step are interpolated), so the trajectory, the NFE and the gradient are
    bit for bit those of the two separate solves the study used to run."""
    for problem, T in ((van_der_pol(1.0), 4.0), (lorenz, 0.5)):
        (p,) = drift_study(problem, (T,), n_points=50)
        ts = torch.linspace(0.0, T, 50, dtype=F64)
        fwd = solve(problem, problem.initial(), ts, rtol=1e-6, atol=1e-6)
        assert np.array_equal(p.forward, fwd.ys.numpy()) and p.forward_nfe == fwd.stats.nfe
        z0 = problem.initial().requires_grad_(True)
        odeint(problem, z0, ts[[0, -1]], rtol=1e-6, atol=1e-6)[-1].sum().backward()
        assert np.array_equal(p.grad_backprop, z0.grad.numpy())


def test_drift_systems_compute_the_textbook_formulas_bit_for_bit():
    """The two systems' right-hand sides are written for speed (unbind, torch.rsub): the same floating-point operations
    as the formulas with indexing, so the same numbers, and the same gradients."""
    def vdp_textbook(y, mu=1.0):
        y1, y2 = y[..., 0], y[..., 1]
        return torch.stack((y2, mu * (1 - y1 * y1) * y2 - y1), dim=-1)

    def lorenz_textbook(y, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
        x, yy, z = y[..., 0], y[..., 1], y[..., 2]
        return torch.stack((sigma * (yy - x), x * (rho - z) - yy, x * yy - beta * z), dim=-1)

    g = torch.Generator().manual_seed(0)
    t = torch.tensor(0.0, dtype=F64)
    for problem, textbook, dim in ((van_der_pol(1.0), vdp_textbook, 2), (lorenz, lorenz_textbook, 3)):
        y = (torch.randn(5, dim, generator=g, dtype=F64) * 10).requires_grad_(True)
        ours, theirs = problem(t, y), textbook(y)
        assert torch.equal(ours, theirs)
        v = torch.randn(5, dim, generator=g, dtype=F64)
        assert torch.equal(torch.autograd.grad(ours, y, v)[0], torch.autograd.grad(theirs, y, v)[0])
