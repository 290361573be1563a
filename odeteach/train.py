"""Retrain the course's shipped checkpoints from scratch: ``python -m odeteach.train NAME``.

Each lesson that ships pretrained weights registers one entry below. The function named there
trains from a fixed seed and writes its checkpoint into ``odeteach/checkpoints/``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> ("module", "function", "what it trains")
TARGETS = {
    "digits": ("odeteach.classifier", "train_checkpoints", "ResNet, RK-Net and ODE-Net on the 8×8 digits (lesson 4)"),
    "spirals": ("odeteach.latent", "train_checkpoints", "latent ODE and RNN baseline on the spirals (lesson 5)"),
    "flows": ("odeteach.flows", "train_checkpoints", "continuous normalizing flows on 2-D densities (lesson 6)"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odeteach.train", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=[*TARGETS, "all"], help="which checkpoints to retrain")
    args = parser.parse_args(argv)
    names = list(TARGETS) if args.name == "all" else [args.name]
    for name in names:
        module, function, what = TARGETS[name]
        print(f"== {name}: {what}")
        getattr(importlib.import_module(module), function)()
    return 0


if __name__ == "__main__":
    sys.exit(main())
