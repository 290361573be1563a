"""odeteach's solvers against torchdiffeq, side by side in one process on the same workloads.

(a) Work and precision: NFE and end-point error at each tolerance on classic non-stiff problems
    with exact solutions (DETEST A2, A3, two-body orbits of DETEST D, the Arenstorf orbit, and
    two linear systems).
(b) Wall time and solver overhead. Overhead = solve time / time of the same number of bare
    func calls (for forward + backward: bare calls plus a backward through them). Workloads:
    a 2-D toy system and a 64-wide MLP field on a batch of 128; rk4 and dopri5; forward alone
    and forward + backward (backprop through the solver).

Targets (issue 2): NFE ≤ torchdiffeq's at equal tolerance with error ≤ 1.5× theirs; overhead
≤ 1.5× (rk4) and ≤ 3× (dopri5) on the MLP; wall time ≤ 0.8× torchdiffeq's (geometric mean).

    .venv/bin/python benchmarks/bench_solvers.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torchdiffeq

import odeteach as ot
from odeteach import problems as P

torch.set_num_threads(1)  # both solvers alike; fewer threads, less noise from a shared machine


# ------------------------------------------------------------------ (a) work and precision

def work_precision(tolerances):
    problems = [P.detest_a2, P.detest_a3, P.damped_spiral, P.harmonic_oscillator, P.kepler(0.5), P.kepler(0.9), P.arenstorf]
    rows = []
    for prob in problems:
        y0, t, exact = prob.initial(), prob.times(2), prob.exact_end()
        for method in ("dopri5", "bosh3"):
            for tol in tolerances:
                ours = ot.solve(prob, y0, t, rtol=tol, atol=tol, method=method)
                calls = [0]

                def counted(tt, y):
                    calls[0] += 1
                    return prob(tt, y)

                theirs = torchdiffeq.odeint(counted, y0, t, rtol=tol, atol=tol, method=method)
                rows.append(dict(problem=prob.name, method=method, tol=tol, nfe=ours.stats.nfe, nfe_td=calls[0],
                                 err=(ours.ys[-1] - exact).abs().max().item(), err_td=(theirs[-1] - exact).abs().max().item()))
    print("\n(a) Work and precision at equal tolerance (rtol = atol); error = max-norm end-point error")
    print(f"{'problem':20s} {'method':7s} {'tol':>6s} {'NFE':>6s} {'NFE td':>6s} {'ratio':>6s} {'error':>9s} {'err td':>9s} {'ratio':>6s}  both targets")
    met = 0
    for r in rows:
        ok = r["nfe"] <= r["nfe_td"] and r["err"] <= 1.5 * r["err_td"]
        met += ok
        print(f"{r['problem']:20s} {r['method']:7s} {r['tol']:6.0e} {r['nfe']:6d} {r['nfe_td']:6d} {r['nfe'] / r['nfe_td']:6.2f} "
              f"{r['err']:9.2e} {r['err_td']:9.2e} {r['err'] / r['err_td']:6.2f}  {'yes' if ok else 'no'}")
    geo = lambda xs: math.exp(statistics.fmean(math.log(x) for x in xs))  # noqa: E731
    nfe_ratio = geo([r["nfe"] / r["nfe_td"] for r in rows])
    err_ratio = geo([r["err"] / r["err_td"] for r in rows])
    print(f"per workload, both targets met: {met} of {len(rows)}")
    # At equal accuracy instead of equal tolerance: fit log NFE against log error for each solver
    # (per problem and method) and ask what NFE ours needs to reach each error torchdiffeq reached.
    import numpy as np
    matched = []
    for key in sorted({(r["problem"], r["method"]) for r in rows}):
        sel = [r for r in rows if (r["problem"], r["method"]) == key]
        fit = np.polyfit(np.log([r["err"] for r in sel]), np.log([r["nfe"] for r in sel]), 1)
        matched += [math.exp(np.polyval(fit, math.log(r["err_td"]))) / r["nfe_td"] for r in sel]
    print(f"at equal accuracy (work–precision fit): our NFE / torchdiffeq's NFE, geometric mean "
          f"{math.exp(statistics.fmean(math.log(x) for x in matched)):.3f}, worst {max(matched):.2f}")
    print(f"geometric mean over workloads: NFE ratio {nfe_ratio:.3f} (target ≤ 1), error ratio {err_ratio:.3f} (target ≤ 1.5)")
    return nfe_ratio, err_ratio


# ------------------------------------------------------------------ (b) wall time and overhead

class MLP(torch.nn.Module):
    def __init__(self, dim=2, width=64):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(dim, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
                                       torch.nn.Tanh(), torch.nn.Linear(width, dim))

    def forward(self, t, y):
        return self.net(y)


def toy(t, y):
    """A 2-D spiral with a nonlinearity: cheap, so the solver's own cost dominates."""
    return torch.stack((-0.1 * y[..., 0] - y[..., 1] ** 3, y[..., 0] ** 3 - 0.1 * y[..., 1]), dim=-1)


# With one torch thread, the process's CPU time is its compute time, and it stays honest on a
# machine shared with other jobs, where wall time is inflated by waiting for a core.
CLOCK = time.process_time


def best_time(fn, repeats):
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return min(times)  # the least-disturbed run: noise on a shared machine only ever adds time


def bare_calls(func, y0, nfe, backward):
    t = torch.tensor(0.5)

    def run():
        y = y0.clone().requires_grad_(backward)
        total = 0
        for _ in range(nfe):
            total = total + func(t, y).sum()
        if backward:
            total.backward()
    return run


_BARE = {}


def bare_time(func, y0, nfe, backward, repeats):
    """Time of ``nfe`` bare calls of func (and a backward through them), measured once per workload."""
    key = (id(func), nfe, backward)
    if key not in _BARE:
        _BARE[key] = best_time(bare_calls(func, y0, nfe, backward), repeats)
    return _BARE[key]


def overhead_and_wall(repeats):
    torch.manual_seed(0)
    mlp = MLP()
    workloads = [
        ("toy 2-D", toy, torch.tensor([2.0, 0.0])),
        ("MLP 64 wide, batch 128", mlp, torch.randn(128, 2)),
    ]
    settings = [("rk4", dict(method="rk4", options={"step_size": 0.05})),
                ("dopri5", dict(method="dopri5", rtol=1e-6, atol=1e-8))]
    t = torch.linspace(0.0, 2.0, 5)
    print("\n(b) Time and solver overhead (best of", repeats, "runs; overhead = solve time / bare func calls' time)")
    print(f"{'workload':24s} {'method':7s} {'pass':8s} {'NFE':>5s} {'ours ms':>8s} {'td ms':>8s} {'wall ratio':>10s} "
          f"{'overhead':>8s} {'td overhead':>11s}")
    results = []
    for name, func, y0 in workloads:
        for label, kw in settings:
            for backward in (False, True):
                def ours():
                    y = y0.clone().requires_grad_(backward)
                    ys = ot.odeint(func, y, t, **kw)
                    if backward:
                        ys.sum().backward()

                def theirs():
                    y = y0.clone().requires_grad_(backward)
                    ys = torchdiffeq.odeint(func, y, t, **kw)
                    if backward:
                        ys.sum().backward()

                nfe = ot.solve(func, y0, t, **kw).stats.nfe
                calls = [0]

                def counted(tt, y):
                    calls[0] += 1
                    return func(tt, y)
                torchdiffeq.odeint(counted, y0, t, **kw)
                nfe_td = calls[0]
                t_ours, t_theirs = best_time(ours, repeats), best_time(theirs, repeats)
                t_bare = bare_time(func, y0, nfe, backward, repeats)
                t_bare_td = bare_time(func, y0, nfe_td, backward, repeats)
                row = dict(workload=name, method=label, backward=backward, nfe=nfe, ours=t_ours, theirs=t_theirs,
                           overhead=t_ours / t_bare, overhead_td=t_theirs / t_bare_td)
                results.append(row)
                print(f"{name:24s} {label:7s} {'fwd+bwd' if backward else 'fwd':8s} {nfe:5d} {1e3 * t_ours:8.2f} "
                      f"{1e3 * t_theirs:8.2f} {t_ours / t_theirs:10.2f} {row['overhead']:8.2f} {row['overhead_td']:11.2f}")
    geo = math.exp(statistics.fmean(math.log(r["ours"] / r["theirs"]) for r in results))
    print(f"time ratio (ours / torchdiffeq), geometric mean over the {len(results)} workloads: {geo:.2f} (target ≤ 0.8)")
    for label, target in (("rk4", 1.5), ("dopri5", 3.0)):
        worst = max(r["overhead"] for r in results if r["method"] == label and r["workload"].startswith("MLP"))
        print(f"MLP overhead, {label}: worst {worst:.2f}× (target ≤ {target}×)")
    return results


def trace_cost(repeats):
    """Recording the trace when it is off must cost nothing measurable: the only trace code on
    the hot path is one `is None` test per step. Compare off, on, and plain odeint."""
    func = toy
    y0, t = torch.tensor([2.0, 0.0]), torch.linspace(0.0, 2.0, 5)
    kw = dict(method="dopri5", rtol=1e-8, atol=1e-10)
    off = best_time(lambda: ot.solve(func, y0, t, **kw), repeats)
    on = best_time(lambda: ot.solve(func, y0, t, trace=True, **kw), repeats)
    plain = best_time(lambda: ot.odeint(func, y0, t, **kw), repeats)
    steps = ot.solve(func, y0, t, **kw).stats.n_steps
    print(f"\n(c) Trace cost, toy 2-D, dopri5, {steps} steps: trace off {1e3 * off:.1f} ms, odeint {1e3 * plain:.1f} ms, "
          f"trace on {1e3 * on:.1f} ms (on / off = {on / off:.3f})")


def main():
    global CLOCK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tolerances and repeats")
    parser.add_argument("--wall", action="store_true", help="time wall clock instead of CPU time (for an idle machine)")
    args = parser.parse_args()
    if args.wall:
        CLOCK = time.perf_counter
    print(f"timing with {'wall clock' if args.wall else 'process CPU time'}")
    print(f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__ if hasattr(torchdiffeq, '__version__') else '?'}, "
          f"threads {torch.get_num_threads()}")
    work_precision([1e-3, 1e-6, 1e-9] if args.quick else [1e-3, 1e-5, 1e-7, 1e-9])
    overhead_and_wall(5 if args.quick else 21)
    trace_cost(5 if args.quick else 21)


if __name__ == "__main__":
    main()
