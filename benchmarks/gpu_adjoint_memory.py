"""CUDA peak memory of backprop through the solver against the adjoint, at 10, 100 and 1000 RK4 steps.

Workload: the MLP field of ``bench_adjoint.py`` (2 → 256 → 256 → 2 here, so activations dominate),
a batch of 4096 points, t ∈ [0, 1], fixed RK4 steps, loss = sum of z(1)², float32. For each step
count it prints the bytes autograd saved (``odeteach.measure_saved``, exact) and the CUDA peak
allocated memory above the starting point during forward + backward, for both ways.

Run on a CUDA machine: ``.venv/bin/python benchmarks/gpu_adjoint_memory.py``. Without CUDA it says
so and exits with status 0 (``--cpu`` runs the saved-bytes part on the CPU instead).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from odeteach import measure_saved, odeint, odeint_adjoint
from odeteach.memory import format_bytes


class Field(torch.nn.Module):
    def __init__(self, width=256):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
                                       torch.nn.Tanh(), torch.nn.Linear(width, 2))

    def forward(self, t, z):
        return self.net(torch.cat((z, t.expand(z.shape[0], 1)), dim=-1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="without CUDA, still measure saved bytes on the CPU (small batch)")
    parser.add_argument("--steps", type=int, nargs="*", default=[10, 100, 1000])
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu:
        print("no CUDA: this script measures CUDA peak memory and needs a GPU. Nothing was measured. "
              "(Run with --cpu to measure saved bytes on the CPU instead.)")
        return 0
    device = torch.device("cuda" if cuda else "cpu")
    batch = 4096 if cuda else 128
    field = Field().to(device)
    params = list(field.parameters())
    z0 = torch.randn(batch, 2, device=device)
    t = torch.tensor([0.0, 1.0], device=device)
    print(f"device: {torch.cuda.get_device_name() if cuda else 'CPU'} · torch {torch.__version__} · batch {batch} · float32")
    print("| RK4 steps | saved: backprop | saved: adjoint | CUDA peak: backprop | CUDA peak: adjoint | time backprop / adjoint (s) |")
    print("|---|---|---|---|---|---|")
    for n in args.steps:
        row = {}
        for name, solver, extra in (("backprop", odeint, {}), ("adjoint", odeint_adjoint, {"adjoint_params": params})):
            for p in params:
                p.grad = None
            if cuda:
                torch.cuda.empty_cache()
            start = time.perf_counter()
            report = measure_saved(solver, field, z0, t, method="rk4", options={"step_size": 1.0 / n},
                                   exclude=[z0, *params], cuda=cuda,
                                   backward=lambda ys: (ys[-1] ** 2).sum().backward(), **extra)
            if cuda:
                torch.cuda.synchronize()
            row[name] = (report, time.perf_counter() - start)
            del report
        peak = lambda r: "n/a" if r.cuda_peak_bytes is None else format_bytes(r.cuda_peak_bytes)  # noqa: E731
        b, a = row["backprop"], row["adjoint"]
        print(f"| {n} | {format_bytes(b[0].saved_bytes)} | {format_bytes(a[0].saved_bytes)} | {peak(b[0])} | {peak(a[0])} | "
              f"{b[1]:.2f} / {a[1]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
