"""Score the shipped checkpoints: ``python -m odeteach.evaluate spirals|flows [--json] [--checkpoints DIR]``.

``spirals``: the latent ODE and the RNN on the 200 held-out spirals. Table 2 (extrapolation RMSE at
30, 50 and 100 observed points, random placement) beside the paper's own numbers, the 90% posterior
predictive band's coverage, and the irregular-sampling table (uniform, random and bunched placement).

``flows``: each CNF's test NLL on 5,000 fresh points against its data's entropy (the lowest NLL any
model can reach), with the gap each should stay within.

With ``--json`` the last line printed is one JSON object:
``{"Latent ODE": {"30": …, "50": …, "100": …}, "RNN": {…}, "coverage90": …, …}`` or
``{"two_moons": {"test_nll": …, "entropy": …, …}, "rings": {…}, "checkerboard": {…}}``.
The lessons and the README take their tables from the same functions
(:func:`odeteach.latent.spirals_report`, :func:`odeteach.flows.nll_table`).
``--checkpoints DIR`` scores the checkpoints in DIR instead (e.g. ``quick-checkpoints`` from
``python -m odeteach.train NAME --quick``). A missing or unreadable checkpoint ends with a message and exit
status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def spirals(directory: Path | None = None) -> dict:
    """:func:`odeteach.latent.spirals_report` of the shipped (or ``directory``'s) latent ODE and RNN."""
    import torch

    from . import latent as L
    paths = {} if directory is None else {"latent_path": directory / L.LATENT_CHECKPOINT.name,
                                          "rnn_path": directory / L.RNN_CHECKPOINT.name}
    latent, rnn, _, _ = L.load_pretrained(**paths)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train, held_out = L.spiral_data()
        return L.spirals_report(latent, rnn, held_out, train)
    finally:
        torch.set_num_threads(threads)


def flows(directory: Path | None = None) -> dict:
    """:func:`odeteach.flows.nll_table` of the shipped (or ``directory``'s) CNFs."""
    from . import flows as F
    from .data.densities import DENSITIES
    cnfs = {name: F.pretrained(name, *(() if directory is None else (directory,))) for name in DENSITIES}
    return F.nll_table(cnfs)


def format_spirals(report: dict) -> str:
    from .latent import COVERAGE_TARGET, PAPER_TABLE2
    counts = list(report["Latent ODE"])
    head = f"{'extrapolation RMSE':<26}" + "".join(f"{n + ' obs':>10}" for n in counts)
    lines = ["Table 2: the 200 held-out spirals, random placement (ours), beside Chen et al. 2018, Table 2 (paper)", head]
    for name in ("Latent ODE", "RNN"):
        lines.append(f"{name + ' (ours)':<26}" + "".join(f"{report[name][n]:>10.4f}" for n in counts))
        lines.append(f"{name + ' (paper)':<26}" + "".join(f"{PAPER_TABLE2[name][int(n)]:>10.4f}" for n in counts))
    low, high = COVERAGE_TARGET
    by_count = lambda key: ", ".join(f"{n}: {v:.3f}" for n, v in report[key].items())  # noqa: E731
    lines += ["", f"90% posterior predictive band (target {low:.2f}–{high:.2f} of the held-out extrapolation coordinates):",
              f"  with σ̂ = {report['obs_std_fitted']:.3f}, fitted on the training spirals: covers {report['coverage90']:.3f} "
              f"(by count {by_count('coverage90_by_count')})",
              f"  with the likelihood's σ = {report['obs_std']:g}, as trained: covers {report['coverage90_fixed_sigma']:.3f} "
              f"(by count {by_count('coverage90_fixed_sigma_by_count')})", "",
              "Irregular sampling: extrapolation RMSE by placement of the observed points", head.replace(
                  "extrapolation RMSE", "placement · model    ")]
    for placement, table in report["irregular_sampling"].items():
        for name in ("Latent ODE", "RNN"):
            lines.append(f"{placement + ' · ' + name:<26}" + "".join(f"{table[name][n]:>10.4f}" for n in counts))
    return "\n".join(lines)


def format_flows(table: dict) -> str:
    """The table lesson 6 prints (:func:`odeteach.flows.format_nll_table`), under a title."""
    from .flows import N_TEST, format_nll_table
    return f"CNF test NLL on {N_TEST:,} held-out points per density against the data's entropy\n" + format_nll_table(table)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odeteach.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["spirals", "flows"], help="which shipped models to score")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON holding every number")
    parser.add_argument("--checkpoints", type=Path, default=None, help="score the checkpoints in this directory")
    args = parser.parse_args(argv)
    if args.checkpoints is not None and not args.checkpoints.is_dir():
        parser.error(f"--checkpoints {args.checkpoints}: no such directory (train into it with "
                     f"'python -m odeteach.train {args.what} --quick --out {args.checkpoints}').")
    from .training import CheckpointError
    try:
        result = (spirals if args.what == "spirals" else flows)(args.checkpoints)
    except (CheckpointError, FileNotFoundError) as exc:
        print(f"python -m odeteach.evaluate {args.what}: {exc}", file=sys.stderr)
        return 2
    print((format_spirals if args.what == "spirals" else format_flows)(result))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
