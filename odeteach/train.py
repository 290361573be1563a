"""Retrain the course's shipped checkpoints from scratch: ``python -m odeteach.train NAME``.

Each lesson that ships pretrained weights registers one entry below. The function named there
trains from a fixed seed, with a progress bar and an ETA, and writes its checkpoints into
``odeteach/checkpoints/`` (or ``--out DIR``).

``--quick`` (spirals, flows) is a student's variant: the same models and data, fewer
iterations, under ten minutes on a 2-core CPU. It writes into ``quick-checkpoints/`` unless ``--out``
says otherwise, never over the shipped files; score it with
``python -m odeteach.evaluate spirals --checkpoints quick-checkpoints``. ``--device cuda`` trains on
a GPU where there is one; nothing needs one.

``--only`` trains one model of a target: a density of ``flows`` (``--only rings``) or one model of
``spirals`` (``--only rnn``), so that two can train side by side, one per core. The CNF runs save a
snapshot every few dozen iterations; run the same command again after a stop and it resumes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# name -> ("module", "function", "what it trains")
TARGETS = {
    "digits": ("odeteach.classifier", "train_checkpoints", "ResNet, RK-Net and ODE-Net on the 8×8 digits (lesson 4)"),
    "digits_regularised": ("odeteach.classifier", "train_regularised",
                           "the ODE-Net with regularised dynamics on the 8×8 digits (lesson 7)"),
    "spirals": ("odeteach.latent", "train_checkpoints", "latent ODE and RNN baseline on the spirals (lesson 5)"),
    "flows": ("odeteach.flows", "train_checkpoints", "continuous normalizing flows on 2-D densities (lesson 6)"),
}
# The name of each function's output-directory argument.
OUT_ARGUMENT = {"digits": "directory", "digits_regularised": "directory", "spirals": "out_dir", "flows": "out_dir"}
# The targets with a student variant: their module's QUICK holds the function's arguments for it.
QUICK_TARGETS = ("spirals", "flows")
QUICK_DIR = Path("quick-checkpoints")
# The targets that can train one of their models (``--only``): the argument it goes to, and its valid values.
ONLY = {"flows": ("names", ("two_moons", "rings", "checkerboard")), "spirals": ("only", ("latent_ode", "rnn"))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odeteach.train", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=[*TARGETS, "all"], help="which checkpoints to retrain")
    parser.add_argument("--quick", action="store_true",
                        help="the student variant (spirals, flows): minutes, not hours; writes to quick-checkpoints/")
    parser.add_argument("--out", type=Path, default=None, help="where to write the checkpoints")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--only", default=None, metavar="MODEL",
                        help="train one model of the target: " + "; ".join(f"{t}: {', '.join(v)}" for t, (_, v) in ONLY.items()))
    args = parser.parse_args(argv)
    names = list(TARGETS) if args.name == "all" else [args.name]
    if args.only is not None:
        if names[0] not in ONLY or len(names) > 1:
            parser.error(f"--only works with {' or '.join(ONLY)}, one target at a time.")
        if args.only not in ONLY[names[0]][1]:
            parser.error(f"{names[0]} has no model {args.only!r}; choose one of {', '.join(ONLY[names[0]][1])}.")
    if args.quick and any(n not in QUICK_TARGETS for n in names):
        parser.error(f"--quick exists for {' and '.join(QUICK_TARGETS)}; "
                     f"{', '.join(n for n in names if n not in QUICK_TARGETS)} has no quick variant.")
    out = args.out if args.out is not None else (QUICK_DIR if args.quick else None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for name in names:
        module_name, function, what = TARGETS[name]
        module = importlib.import_module(module_name)
        kwargs = {"device": args.device}
        if out is not None:
            kwargs[OUT_ARGUMENT[name]] = out
        if args.quick:
            kwargs.update(module.QUICK)
        if args.only is not None:
            argument = ONLY[name][0]
            kwargs[argument] = [args.only] if argument == "names" else args.only
        print(f"== {name}: {what}" + (" (quick variant)" if args.quick else ""))
        getattr(module, function)(**kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
