"""Checks for lesson 7, tunable neural nets.

1. :func:`check_front` — ``front(points)``: the Pareto front of ``(cost, accuracy)`` pairs, the pairs no other
   pair beats (at least as accurate and at most as costly, better in one), each once, cheapest first.
2. :func:`check_cheapest` — ``cheapest(points, min_accuracy, max_cost)``: the cheapest pair with accuracy
   ≥ ``min_accuracy`` and cost ≤ ``max_cost`` (of equal costs the more accurate), or None when none is.
3. :func:`check_changed_predictions` — a number the lesson never prints: how many test digits change their
   predicted class between one Euler step (:data:`CHEAP_SETTING`) and the model as trained.

Checks 1 and 2 run the learner's function on seeded cases the lesson never shows (duplicates, ties,
unordered input, boundaries, nothing feasible) and compare with :func:`odeteach.tuning.pareto_front` and
:func:`odeteach.tuning.choose` on the same pairs. Check 3 counts on the model itself. A hint says where an
answer goes wrong, never what it should have been.
"""

from __future__ import annotations

import math
import numbers
import random
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..classifier import load_pretrained
from ..data.digits import load_digits
from ..tuning import Measurement, Setting, choose, pareto_front
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_front", "check_cheapest", "check_changed_predictions", "CHEAP_SETTING", "PAPER_VALUES",
           "ChangeReference", "measure_changes"]

_NOT_ATTEMPTED = "not attempted yet: replace the placeholder with your answer and run this cell again."
_PLACEHOLDERS = (None, Ellipsis, NotImplemented)


def _is_placeholder(answer) -> bool:
    return any(answer is p for p in _PLACEHOLDERS)


def _function_or_hint(name, fn, signature):
    if _is_placeholder(fn):
        return failed(name, _NOT_ATTEMPTED)
    if not callable(fn):
        return failed(name, f"pass your function {signature} itself (got a {type(fn).__name__}): the check runs "
                            "it on cases the lesson does not show.")
    return None


# ---------------------------------------------------------------- the package's rules, on plain pairs

def _measurements(points):
    """The pairs as :class:`Measurement` objects (cost read as NFE), so that the package's own rules apply;
    ``setting.steps - 1`` is each pair's index in ``points``."""
    return [Measurement(Setting("euler", steps=i + 1), accuracy, cost, 0.0, 0, 1)
            for i, (cost, accuracy) in enumerate(points)]


def _reference_front(points) -> list:
    return [points[m.setting.steps - 1] for m in pareto_front(_measurements(points), cost="nfe")]


def _reference_cheapest(points, min_accuracy, max_cost):
    chosen = choose(_measurements(points), min_accuracy=min_accuracy, max_nfe=max_cost).chosen
    return None if chosen is None else points[chosen.setting.steps - 1]


def _as_pair(entry):
    """``entry`` as a ``(cost, accuracy)`` tuple, or None when it is not a pair of numbers."""
    if not isinstance(entry, (tuple, list)) or len(entry) != 2:
        return None
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in entry):
        return None
    return tuple(entry)


def _random_points(rng: random.Random, n: int) -> list:
    """``n`` pairs drawn from small grids, so that ties in cost, ties in accuracy and duplicates are common."""
    costs = rng.choice(([1, 2, 3, 4, 6, 8, 12, 16], [0.5, 1.25, 2.0, 3.5, 7.0]))
    points = [(rng.choice(costs), rng.choice((0.6, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99))) for _ in range(n)]
    if n > 2 and rng.random() < 0.5:
        points.append(rng.choice(points))   # an exact duplicate
    rng.shuffle(points)
    return points


# ---------------------------------------------------------------- exercise 1: the Pareto front

def _front_cases():
    """Hand-made cases first (each one a typical mistake's trap), then seeded random ones."""
    yield [(4, 0.9)]                                                             # one point
    yield [(8, 0.97), (2, 0.90), (4, 0.96), (6, 0.95), (12, 0.97), (3, 0.85)]   # unordered, some beaten
    yield [(4, 0.93), (4, 0.96), (2, 0.91), (8, 0.96), (8, 0.98)]                # ties in cost, worse one first
    yield [(3, 0.95), (6, 0.95), (1, 0.80), (9, 0.95)]                           # ties in accuracy
    yield [(5, 0.97), (2, 0.9), (5, 0.97), (2, 0.9), (7, 0.96)]                  # duplicates on the front
    yield [(16, 0.99), (8, 0.98), (4, 0.95), (2, 0.9), (1, 0.6)]                 # all on the front, costliest first
    yield [(6, 0.95)] * 4                                                        # all points equal
    rng = random.Random(707)
    for _ in range(40):
        yield _random_points(rng, rng.randint(1, 12))


def _front_hint(points, got, want) -> str:
    given = set(points)
    if not given.issuperset(got):
        if given.issuperset((a, c) for c, a in got):
            return "each pair is (cost, accuracy), in that order: return the pairs as they were given."
        return "your front holds a pair that is not in the input: return the input's pairs themselves."
    if len(set(got)) != len(got):
        return "a pair that appears more than once in the input belongs on the front once."
    if set(got) == set(want):
        return "the right pairs, in the wrong order: sort the front by cost, cheapest first."
    extra, missing = set(got) - set(want), set(want) - set(got)
    if any(c == pc and a < pa for c, a in extra for pc, pa in points):
        return ("your front keeps a pair beaten by one of the same cost and higher accuracy. Of pairs with equal cost "
                "only the most accurate is on the front: order equal costs from most to least accurate.")
    if any(a == pa and c > pc for c, a in extra for pc, pa in points):
        return ("your front keeps a pair beaten by a cheaper one of the same accuracy: a pair is on the front only "
                "when it is strictly more accurate than every cheaper pair (> rather than ≥).")
    if extra:
        return "your front keeps a pair that another beats: one at least as accurate and at most as costly."
    if any(points.count(p) > 1 for p in missing):
        return ("you dropped a pair that appears twice in the input. Its twin does not beat it (beating needs "
                "better in one): keep it, once.")
    if not got:
        return "your front is empty, but some pair is always on it (the most accurate of the cheapest)."
    return ("you dropped a pair nothing beats. A tie in cost or in accuracy alone does not beat a pair: only a pair "
            "at least as accurate and at most as costly, and better in one, does.")


def check_front(fn) -> CheckResult:
    """Exercise 1: ``fn(points)`` returns the Pareto front of ``(cost, accuracy)`` pairs, cheapest first."""
    name = "Exercise 1 (the Pareto front)"
    bad = _function_or_hint(name, fn, "front(points)")
    if bad is not None:
        return bad
    n_cases = 0
    for points in _front_cases():
        n_cases += 1
        given = list(points)
        err, got = run_safely(name, fn, given)
        if err is not None:
            return err
        if given != points:
            return failed(name, "your function changed the list it was given (sorted it in place, or removed "
                                "pairs): work on a copy, e.g. sorted(points), and leave the caller's list alone.")
        if _is_placeholder(got):
            return failed(name, "your function returns None: return the list of (cost, accuracy) pairs on the front.")
        if not isinstance(got, (list, tuple)):
            return failed(name, f"return a list of (cost, accuracy) pairs, not a {type(got).__name__}.")
        pairs = [_as_pair(entry) for entry in got]
        if any(p is None for p in pairs):
            return failed(name, "each entry of the front is one (cost, accuracy) pair of numbers, as in the input.")
        want = _reference_front(points)
        if pairs != want:
            return failed(name, _front_hint(points, pairs, want))
    return passed(name, f"your front matches on all {n_cases} hidden cases: ties in cost, ties in accuracy, "
                        "duplicates, unordered input, a single point and all points equal.")


# ---------------------------------------------------------------- exercise 2: the cheapest feasible pair

def _cheapest_cases():
    """(points, min_accuracy, max_cost): hand-made traps first, then seeded random cases."""
    yield [(2, 0.90), (4, 0.95), (6, 0.96), (8, 0.97)], 0.95, 10                 # accuracy exactly at the minimum
    yield [(9, 0.99), (3, 0.96), (6, 0.97)], 0.965, 6                            # cost exactly at the maximum
    yield [(12, 0.99), (3, 0.80), (6, 0.97), (4, 0.955), (9, 0.985)], 0.95, 10   # unordered; most accurate ≠ cheapest
    yield [(5, 0.93), (5, 0.96), (9, 0.99), (5, 0.98)], 0.92, 10                 # ties in cost, worse ones first
    yield [(2, 0.80), (4, 0.85)], 0.9, 10                                        # nothing accurate enough
    yield [(2, 0.80), (20, 0.99)], 0.9, 10                                       # each meets one constraint only
    yield [(7, 0.96)], 0.96, 7                                                   # one pair, on both boundaries
    yield [], 0.5, 10                                                            # nothing at all
    rng = random.Random(7007)
    for _ in range(40):
        points = _random_points(rng, rng.randint(1, 10))
        cost, accuracy = rng.choice(points)   # constraints often sit exactly on a pair
        min_accuracy = accuracy if rng.random() < 0.5 else rng.choice((0.85, 0.93, 0.96))
        max_cost = cost if rng.random() < 0.5 else rng.choice((2, 5, 10))
        yield points, min_accuracy, max_cost


def _meets(p, min_accuracy, max_cost) -> bool:
    return p[1] >= min_accuracy and p[0] <= max_cost


def _cheapest_hint(points, min_accuracy, max_cost, got, want) -> str:
    strict = [p for p in points if p[1] > min_accuracy and p[0] < max_cost]
    strict_answer = min(strict, key=lambda p: (p[0], -p[1])) if strict else None
    boundary = ("an accuracy equal to min_accuracy meets it (≥)" if want is not None and want[1] == min_accuracy
                else "a cost equal to max_cost meets it (≤)")
    if want is None:
        misses = [what for what, ok in (("min_accuracy", got[1] >= min_accuracy), ("max_cost", got[0] <= max_cost))
                  if not ok]
        return (f"no pair meets both constraints in this case, so the answer is None; yours misses "
                f"{' and '.join(misses)}.")
    if got == strict_answer:
        return f"a pair exactly on a constraint meets it: {boundary}. Use ≥ and ≤, not > and <."
    if got is None:
        return "some pair meets both constraints in this case, but your function returns None."
    feasible = [p for p in points if _meets(p, min_accuracy, max_cost)]
    if got == max(feasible, key=lambda p: (p[1], -p[0])):
        return "that is the most accurate pair that meets the constraints; the exercise asks for the cheapest."
    if not _meets(got, min_accuracy, max_cost):
        misses = "min_accuracy" if got[1] < min_accuracy else "max_cost"
        return f"your pair misses {misses}: keep only pairs with accuracy ≥ min_accuracy and cost ≤ max_cost."
    if got[0] == want[0]:
        return "of pairs with the same cost, return the more accurate one."
    if got == feasible[0]:
        return ("the pairs come in any order: your answer is the first pair that meets both constraints, not the "
                "cheapest of them.")
    return "a cheaper pair meets both constraints: compare the costs of all pairs that meet them."


def check_cheapest(fn) -> CheckResult:
    """Exercise 2: ``fn(points, min_accuracy, max_cost)`` returns the cheapest pair that meets both, or None."""
    name = "Exercise 2 (the cheapest pair that meets the constraints)"
    bad = _function_or_hint(name, fn, "cheapest(points, min_accuracy, max_cost)")
    if bad is not None:
        return bad
    n_cases = 0
    for points, min_accuracy, max_cost in _cheapest_cases():
        n_cases += 1
        given = list(points)
        want = _reference_cheapest(points, min_accuracy, max_cost)
        err, got = run_safely(name, fn, given, min_accuracy, max_cost)
        if err is not None and want is None:
            return failed(name, "your code raised an exception in a case where no pair meets both constraints: "
                                "return None then, not an error (min() of an empty list raises).")
        if err is not None:
            return err
        if given != points:
            return failed(name, "your function changed the list it was given (sorted it in place, or removed "
                                "pairs): work on a copy and leave the caller's list alone.")
        if got is Ellipsis or got is NotImplemented:
            return failed(name, "your function returns the placeholder: return a (cost, accuracy) pair, or None.")
        if got is not None:
            pair = _as_pair(got)
            if pair is None:
                return failed(name, "return one (cost, accuracy) pair from the input, or None; not a "
                                    f"{type(got).__name__}.")
            if pair not in points:
                return failed(name, "return one of the pairs you were given, (cost, accuracy), as it was given.")
            got = pair
        if got != want:
            return failed(name, _cheapest_hint(points, min_accuracy, max_cost, got, want))
    return passed(name, f"your choice matches on all {n_cases} hidden cases: constraints met exactly, ties in cost, "
                        "unordered input, and cases where nothing meets them.")


# ---------------------------------------------------------------- exercise 3: predictions that change

# The cheapest setting (one Euler step, NFE 1) against the model as trained (its own solver: dopri5 at
# rtol = atol = 1e-3 for the shipped ODE-Net). The lesson prints both accuracies, never how many predictions differ.
CHEAP_SETTING = Setting("euler", steps=1)
# Chen et al. 2018, Table 1: the ODE-Net's MNIST test error, 0.42 %, as a percentage, a fraction and an accuracy.
PAPER_VALUES = (0.42, 0.0042, 0.9958, 99.58)


@dataclass(frozen=True)
class ChangeReference:
    """What check 3 compares with: counts of the ``n`` test images under :data:`CHEAP_SETTING` and as trained."""

    n: int
    changed: int         # images whose predicted class differs: the answer
    fixed: int           # wrong under CHEAP_SETTING, right as trained
    broken: int          # right under CHEAP_SETTING, wrong as trained
    wrong_cheap: int
    wrong_trained: int   # wrong_cheap - wrong_trained = fixed - broken: the net gain, corrections minus breakages


def _test_images(data):
    data = load_digits() if data is None else data
    if hasattr(data, "x_test") and hasattr(data, "y_test"):
        return data.x_test, data.y_test
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data
    raise TypeError("data must be a Digits split (odeteach.data.digits.load_digits()) or a pair (images, labels); "
                    f"got {type(data).__name__}.")


@torch.no_grad()
def _predictions(model, x):
    was_training = model.training
    model.eval()
    try:
        return model(x.to(next(model.parameters()).device)).argmax(1).cpu()
    finally:
        model.train(was_training)


def measure_changes(model=None, data=None) -> ChangeReference:
    """The counts check 3 needs: ``model`` (default: the shipped ODE-Net) on ``data``'s test images (default: the
    lesson's 359 test digits, as one batch) under :data:`CHEAP_SETTING` and in its own state (the solver it was
    trained with). The default model and data are measured once per session."""
    if model is None and data is None:
        return _default_reference()
    model = load_pretrained("odenet")[0] if model is None else model
    x, y = _test_images(data)
    y = torch.as_tensor(y).cpu()   # labels beside predictions brought back to the CPU
    with CHEAP_SETTING.applied(model):
        cheap = _predictions(model, x)
    trained = _predictions(model, x)
    wc, wt = cheap != y, trained != y
    return ChangeReference(len(y), int((cheap != trained).sum()), int((wc & ~wt).sum()), int((~wc & wt).sum()),
                           int(wc.sum()), int(wt.sum()))


@lru_cache(maxsize=1)
def _default_reference() -> ChangeReference:
    return measure_changes(load_pretrained("odenet")[0], load_digits())


def _as_number(answer):   # the learner's answer as a float, or a hint string
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
            return "give one number, the count, not a tensor of many (a mask of changed images? sum it)."
        answer = answer.item()
    if isinstance(answer, (bool, str)) or callable(answer) or not isinstance(answer, numbers.Real):
        return f"give the count as one number, a whole number of images, not a {type(answer).__name__}."
    answer = float(answer)
    if not math.isfinite(answer):
        return "your count is not a finite number: count the test images whose two predictions differ."
    return answer


_CHEAP = f"Setting({CHEAP_SETTING.method!r}, steps={CHEAP_SETTING.steps})"
_HOW = (f"To count, predict every test image twice, with logits.argmax(1): inside `with {_CHEAP}.applied(model):` "
        "and again after it, with the model as trained. Then count the images whose two predictions differ.")
_COUNT_ONLY = "Count every image whose predicted class changes, whether it ends right or wrong."


def _readings(ref: ChangeReference):
    """(value, what it is, why it is not the answer) for the plausible wrong counts."""
    settings = ((ref.wrong_cheap, _CHEAP), (ref.wrong_trained, "the model as trained"))
    return (
        (abs(ref.fixed - ref.broken), "the difference between the two settings' numbers of correct images",
         "That difference counts corrections minus breakages: an image that goes from wrong to right and one that "
         "goes from right to wrong cancel in it, though both change their prediction, and an image that changes "
         "from one wrong class to another does not count in it at all. " + _COUNT_ONLY),
        *((wrong, f"the number of test images {who} gets wrong", _COUNT_ONLY) for wrong, who in settings),
        (ref.wrong_cheap + ref.wrong_trained, "the two numbers of wrong images added together",
         "An image wrong under both counts twice there, and if both give it the same wrong class, its prediction "
         "has not changed at all. " + _COUNT_ONLY),
        (ref.wrong_trained + ref.fixed, "the number of images wrong under either setting",
         "An image wrong under both with the same wrong class has not changed its prediction. " + _COUNT_ONLY),
        (ref.fixed + ref.broken, "the number of images that go from wrong to right or from right to wrong (what "
         "compare_mistakes counts, only_a + only_b)",
         "An image can also change from one wrong class to another: its prediction changes too."),
        (ref.fixed, "the number of images that go from wrong to right", "Those are the corrections. " + _COUNT_ONLY),
        *((ref.n - wrong, f"the number of test images {who} gets right",
           "The lesson prints that, as an accuracy. " + _COUNT_ONLY) for wrong, who in settings),
        (0, "no change at all, as if both predictions came from the same solver", "Predict once inside `with "
         f"{_CHEAP}.applied(model):` and once after the with block, where the setting is undone."),
    )


def _change_hint(a: float, ref: ChangeReference) -> str:
    if any(math.isclose(a, v, rel_tol=1e-3) for v in PAPER_VALUES):
        return ("that is the paper's MNIST figure (the test error or accuracy of a larger ODE-Net on 28×28 images), "
                f"not a count on these digits. {_HOW}")
    near = lambda fraction: min(abs(a - fraction), abs(a / 100 - fraction)) <= 0.5 / ref.n  # noqa: E731 (or in %)
    for wrong, who in ((ref.wrong_cheap, _CHEAP), (ref.wrong_trained, "the model as trained")):
        if near(1 - wrong / ref.n):
            return (f"that is the accuracy of {who}, which the lesson prints. The exercise asks how many images "
                    f"change their predicted class between the two settings, a whole number. {_HOW}")
    if a < 0:
        return "a count cannot be negative: count the images whose two predictions differ, whichever comes first."
    if a != int(a):
        return ("give the count itself, a whole number of images, not a fraction or a percentage"
                + ("." if near(ref.changed / ref.n) else f". {_HOW}"))
    matches = [(what, why) for value, what, why in _readings(ref) if a == value]
    if matches:
        return f"that is {', and also '.join(what for what, _ in matches)}. {matches[0][1]}"
    if a >= ref.n:
        return f"that is as many as there are test images, or more. {_HOW}"
    return f"not the number of test digits whose prediction changes. {_HOW}"


def check_changed_predictions(answer, model=None, data=None) -> CheckResult:
    """Exercise 3: ``answer`` is how many test images change their predicted class between :data:`CHEAP_SETTING`
    and the model as trained. ``model`` defaults to the shipped ODE-Net and ``data`` to the lesson's test digits;
    the check counts itself and accepts only the exact count (a float equal to it is fine)."""
    name = "Exercise 3 (predictions that change with the solver)"
    if _is_placeholder(answer):
        return failed(name, _NOT_ATTEMPTED)
    a = _as_number(answer)
    if isinstance(a, str):
        return failed(name, a)
    ref = measure_changes(model, data)
    if a != ref.changed:
        return failed(name, _change_hint(a, ref))
    to_wrong = ref.changed - ref.fixed - ref.broken   # wrong under both, with different classes
    other = f", {to_wrong} from one wrong class to another" if to_wrong else ""
    return passed(name, f"of {ref.n} test digits, {ref.changed} change their prediction, yet the number right moves "
                        f"by only {abs(ref.fixed - ref.broken)}: {ref.fixed} from wrong to right, {ref.broken} from "
                        f"right to wrong{other}. An accuracy counts corrections minus breakages; the solver changes "
                        "more than it shows.")
