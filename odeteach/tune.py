"""Choose a solver setting for a shipped ODE-Net from your constraints: ``python -m odeteach.tune digits``.

    python -m odeteach.tune digits --min-accuracy 0.97 [--max-ms MS] [--max-nfe N] [--max-memory BYTES]
                                   [--cost nfe|ms|memory] [--repeats K] [--json]

Measures the shipped digits ODE-Net (lesson 4) under every setting of :data:`odeteach.tuning.DEFAULT_SETTINGS`
on the 359 test digits (one batch), prints the accuracy–cost front and the cheapest setting that meets every
constraint. ``--max-ms`` is milliseconds per batch of 359. With ``--json`` the last line is one JSON object:
``{"chosen": {…} or null, "why": "…", "front": [{…}, …]}``. A constraint nothing meets is an answer, not an
error: ``"chosen": null``, the reason, and exit status 0. A missing checkpoint ends with a message and exit
status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

MODELS = ("digits",)


def measure(name: str = "digits", repeats: int = 5):
    """The shipped model ``name`` measured under every default setting (:func:`odeteach.tuning.measure_shipped`)."""
    from . import tuning
    return tuning.measure_shipped("odenet", repeats)


def main(argv=None) -> int:
    from . import tuning
    parser = argparse.ArgumentParser(prog="python -m odeteach.tune", description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=MODELS, help="which shipped ODE-Net to tune")
    parser.add_argument("--min-accuracy", type=float, default=None, help="a fraction, e.g. 0.97")
    parser.add_argument("--max-ms", type=float, default=None, help="milliseconds per batch of all test images")
    parser.add_argument("--max-nfe", type=float, default=None, help="evaluations of f per forward pass")
    parser.add_argument("--max-memory", type=float, default=None, help="peak bytes of the forward pass")
    parser.add_argument("--cost", choices=list(tuning.COSTS), default="nfe", help="what 'cheapest' means")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per setting (the median is kept)")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    try:
        constraints = dict(min_accuracy=args.min_accuracy, max_ms=args.max_ms, max_nfe=args.max_nfe,
                           max_memory=args.max_memory)
        tuning.choose([], **constraints, cost=args.cost)   # checks the constraints before the minute of measuring
    except ValueError as exc:
        parser.error(str(exc))
    from .training import CheckpointError
    try:
        points = measure(args.model, args.repeats)
    except (CheckpointError, FileNotFoundError) as exc:
        print(f"python -m odeteach.tune {args.model}: {exc}", file=sys.stderr)
        return 2
    choice = tuning.choose(points, **constraints, cost=args.cost)
    front = tuning.pareto_front(points, cost=args.cost)
    print(f"accuracy–{args.cost} front of the digits ODE-Net ({len(points)} settings measured, {len(front)} on the front):")
    for p in front:
        print("  " + tuning.describe(p))
    print(choice.why)
    if args.json:
        print(json.dumps({"chosen": None if choice.chosen is None else choice.chosen.as_dict(), "why": choice.why,
                          "closest": None if choice.closest is None else choice.closest.as_dict(),
                          "front": [p.as_dict() for p in front]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
