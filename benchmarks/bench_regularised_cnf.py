"""Regularised CNF dynamics against the plain CNF (issue 12, item 6): NFE and time per training iteration, and NLL.

    .venv/bin/python benchmarks/bench_regularised_cnf.py [--data two_moons] [--iterations 1000] [--lambda 0.01]

Trains a plain CNF and one with Finlay et al.'s kinetic-energy and Jacobian-norm penalties
(``odeteach.flows.compare_regularised``), one after the other in this process, with the same seed: the same
initial weights, the same batches, the shipped models' settings otherwise (64 hidden units, 3 layers, dopri5 at
rtol = atol = 1e-5, lr 3e-3 with cosine decay, exact trace, one torch thread). Prints each run's mean forward NFE
per iteration, wall and CPU seconds per iteration and test NLL on the 5,000 held-out points, the ratios, and one JSON line.
Wall times depend on whatever else the machine is running; the CPU times (this process's) much less.
"""

from __future__ import annotations

import argparse
import json

import torch

from odeteach.flows import compare_regularised, describe_regularised


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="two_moons")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--lambda", dest="lam", type=float, default=0.01, help="λ_K = λ_J")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    study = compare_regularised(args.data, iterations=args.iterations, regularisation=(args.lam, args.lam))
    print(f"{'run':<14}{'mean NFE':>10}{'first':>7}{'last':>7}{'s / it':>9}{'CPU s / it':>12}{'test NLL':>10}"
          f"{'test NFE':>10}")
    for label in ("plain", "regularised"):
        r = study[label]
        print(f"{label:<14}{r['nfe_mean']:>10.1f}{r['nfe_first']:>7}{r['nfe_last']:>7}"
              f"{r['seconds_per_iteration']:>9.3f}{r['cpu_seconds_per_iteration']:>12.3f}{r['test_nll']:>10.3f}"
              f"{r['eval_nfe']:>10}")
    print(describe_regularised(study))
    print(json.dumps(study))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
