"""``python -m odeteach.classifier [--device cuda] [--epochs N]``: the one-epoch benchmark of the three models."""

import argparse

import torch

from .table1 import benchmark


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m odeteach.classifier", description=benchmark.__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for kind, result in benchmark(epochs=args.epochs, device=args.device).items():
        peak = "" if result["cuda_peak_bytes"] is None else f" · CUDA peak {result['cuda_peak_bytes'] / 2**20:.1f} MiB"
        nfe = "" if result["nfe_forward"] is None else f" · NFE forward {result['nfe_forward']:.1f}"
        print(f"{kind:7s} {result['seconds_per_epoch']:6.1f} s per epoch on {args.device}{nfe}{peak}")


if __name__ == "__main__":
    main()
