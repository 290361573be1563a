"""python -m odeteach.figures [--out figures] [--only NAME ...]: regenerate the course's PNGs."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import odeteach.figures as package  # noqa: E402


def discover():
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("lesson"):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            yield from getattr(module, "FIGURES", {}).items()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odeteach.figures", description=__doc__)
    parser.add_argument("--out", default="figures", help="folder for the PNGs (default: figures)")
    parser.add_argument("--only", nargs="*", help="file names to make (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in discover():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        make(out / name)
        print(f"{out / name}  ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
