"""odeteach.odeint_adjoint against torchdiffeq.odeint_adjoint, same process, same workload.

Workload: an MLP vector field f(z, t, θ) (2 → 64 → 64 → 2 with t as an input, tanh), a batch of
128 points, t from 0 to 1 with 5 output times, loss = sum of squares of all outputs; dopri5 in
both directions. For each dtype and tolerance it reports

* the relative difference of the two libraries' gradients (y0, t, every parameter together) and of
  each against backprop through odeteach's solver;
* forward and backward NFE of each (torchdiffeq's counted by wrapping the field);
* the wall time of forward + backward, best of ``--repeats`` runs, interleaved, and the ratio
  odeteach / torchdiffeq (target ≤ 1.0).

Run: ``.venv/bin/python benchmarks/bench_adjoint.py [--repeats 5] [--quick]``. torchdiffeq is a
reference only; the package never imports it.
"""

from __future__ import annotations

import argparse
import time

import torch
import torchdiffeq

from odeteach import odeint, solve_adjoint


class Field(torch.nn.Module):
    def __init__(self, width=64, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
                                       torch.nn.Tanh(), torch.nn.Linear(width, 2))
        self.nfe = 0

    def forward(self, t, z):
        self.nfe += 1
        return self.net(torch.cat((z, t.expand(z.shape[0], 1)), dim=-1))


def run(lib, field, z0, t, tol):
    """Forward + backward; returns (flat gradient, forward NFE, backward NFE, seconds)."""
    z = z0.clone().requires_grad_(True)
    tt = t.clone().requires_grad_(True)
    params = list(field.parameters())
    for p in params:
        p.grad = None
    start = time.perf_counter()
    field.nfe = 0
    if lib == "odeteach":
        sol = solve_adjoint(field, z, tt, rtol=tol, atol=tol)
        ys = sol.ys
    elif lib == "torchdiffeq":
        ys = torchdiffeq.odeint_adjoint(field, z, tt, rtol=tol, atol=tol, method="dopri5")
    else:  # backprop through odeteach's solver
        ys = odeint(field, z, tt, rtol=tol, atol=tol)
    forward_nfe = field.nfe
    (ys ** 2).sum().backward()
    seconds = time.perf_counter() - start
    backward_nfe = field.nfe - forward_nfe
    if lib == "odeteach":
        assert backward_nfe == sol.backward_stats.nfe and forward_nfe == sol.stats.nfe
    grad = torch.cat([z.grad.reshape(-1), tt.grad.reshape(-1)] + [p.grad.reshape(-1) for p in params])
    return grad, forward_nfe, backward_nfe, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one dtype, one tolerance, 2 repeats")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cases = [(torch.float32, 1e-5), (torch.float64, 1e-6), (torch.float64, 1e-8)]
    repeats = args.repeats
    if args.quick:
        cases, repeats = cases[1:2], 2
    print(f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__}, 1 thread, best of {repeats}")
    print("| dtype | rtol = atol | grad diff vs torchdiffeq | ours vs backprop | torchdiffeq vs backprop | NFE fwd ours / tdq "
          "| NFE bwd ours / tdq | time ours / tdq (s) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dtype, tol in cases:
        field = Field().to(dtype)
        z0 = torch.randn(128, 2, generator=torch.Generator().manual_seed(1), dtype=dtype)
        t = torch.linspace(0.0, 1.0, 5, dtype=dtype)
        g_ref = run("backprop", field, z0, t, tol)[0]
        best = {"odeteach": float("inf"), "torchdiffeq": float("inf")}
        out = {}
        for _ in range(repeats):
            for lib in ("odeteach", "torchdiffeq"):  # interleaved, so load changes hit both
                out[lib] = run(lib, field, z0, t, tol)
                best[lib] = min(best[lib], out[lib][3])
        rel = lambda a, b: ((a - b).norm() / b.norm()).item()  # noqa: E731
        g_us, g_tdq = out["odeteach"][0], out["torchdiffeq"][0]
        print(f"| {str(dtype).replace('torch.', '')} | {tol:.0e} | {rel(g_us, g_tdq):.1e} | {rel(g_us, g_ref):.1e} | "
              f"{rel(g_tdq, g_ref):.1e} | {out['odeteach'][1]} / {out['torchdiffeq'][1]} | "
              f"{out['odeteach'][2]} / {out['torchdiffeq'][2]} | {best['odeteach']:.3f} / {best['torchdiffeq']:.3f} | "
              f"{best['odeteach'] / best['torchdiffeq']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
