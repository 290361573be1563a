"""Lesson 7 exercise checks: the worked solutions pass; the placeholder, numbers the lesson prints or the paper
gives, and plausible wrong answers fail with a hint that does not give the answer away."""

import math
import re

import pytest
import torch

from odeteach import tuning
from odeteach.classifier import compare_mistakes, evaluate, load_pretrained
from odeteach.data.digits import load_digits
from odeteach.exercises.lesson07 import (CHEAP_SETTING, check_changed_predictions, check_cheapest, check_front,
                                         measure_changes)
from odeteach.tuning import Setting


def assert_fails(result, *words, numbers_allowed=False):
    assert not result and not result.ok
    assert str(result).startswith("❌")
    for w in words:
        assert w in result.message, result.message
    if not numbers_allowed:   # exercises 1 and 2: a hint never shows a hidden case's cost or accuracy
        assert re.search(r"\d\.\d", result.message) is None, f"a hint shows a number: {result.message}"
    return result


# ---------------------------------------------------------------- the worked solutions

def front(points):
    """Exercise 1: sweep from cheap to costly, keep a pair when it beats the best accuracy so far."""
    best, out = -math.inf, []
    for cost, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):   # equal costs: most accurate first
        if accuracy > best:
            out.append((cost, accuracy))
            best = accuracy
    return out


def cheapest(points, min_accuracy, max_cost):
    """Exercise 2: of the pairs that meet both constraints, the lowest cost, then the highest accuracy."""
    feasible = [p for p in points if p[1] >= min_accuracy and p[0] <= max_cost]
    if not feasible:
        return None
    return min(feasible, key=lambda p: (p[0], -p[1]))


def changed_predictions(model, digits):
    """Exercise 3: how many test digits change their predicted class between one Euler step and the model as
    trained (its own solver, dopri5 at rtol = atol = 1e-3)."""
    with torch.no_grad():
        with Setting("euler", steps=1).applied(model):
            cheap = model(digits.x_test).argmax(1)
        trained = model(digits.x_test).argmax(1)   # after the with block: the setting is undone
    return int((cheap != trained).sum())


# ---------------------------------------------------------------- exercise 1: the Pareto front

def test_front_solution_passes():
    r = check_front(front)
    assert r and "hidden cases" in r.message
    # an O(n²) solution from the definition, each pair once, passes too
    def by_definition(points):
        beats = lambda q, p: q[0] <= p[0] and q[1] >= p[1] and q != p  # noqa: E731
        return sorted({p for p in points if not any(beats(q, p) for q in points)}, key=lambda p: p[0])
    assert check_front(by_definition)
    assert check_front(lambda points: tuple([list(p) for p in front(points)]))   # lists and tuples both do


def _by_cost_only(points):
    """Sorts by cost only: of two pairs with the same cost, the less accurate one listed first stays."""
    best, out = -math.inf, []
    for c, a in sorted(points, key=lambda p: p[0]):
        if a > best:
            out.append((c, a))
            best = a
    return out


def _at_least_as_accurate(points):
    """≥ instead of >: keeps costlier pairs of the same accuracy."""
    best, out = -math.inf, []
    for c, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if a >= best:
            out.append((c, a))
            best = a
    return out


def _definition_with_duplicates(points):
    beats = lambda q, p: q[0] <= p[0] and q[1] >= p[1] and q != p  # noqa: E731
    return sorted([p for p in points if not any(beats(q, p) for q in points)], key=lambda p: p[0])


def _ties_beat(points):
    """'At least as good in both' without 'better in one': a pair's twin knocks it out."""
    beats = lambda i, j: points[i][0] <= points[j][0] and points[i][1] >= points[j][1]  # noqa: E731
    keep = [p for j, p in enumerate(points) if not any(beats(i, j) for i in range(len(points)) if i != j)]
    return sorted(keep, key=lambda p: p[0])


def _in_input_order(points):
    on_front = set(front(points))
    out = []
    for p in points:
        if p in on_front and p not in out:
            out.append(p)
    return out


def _sorts_in_place(points):
    points.sort(key=lambda p: (p[0], -p[1]))
    return front(points)


def test_front_placeholder_and_wrong_answers_fail_with_a_hint():
    for placeholder in (None, ..., NotImplemented):
        assert_fails(check_front(placeholder), "not attempted")
    assert_fails(check_front(lambda points: None), "returns None")
    assert_fails(check_front([(2, 0.9), (4, 0.96)]), "function front(points) itself")
    assert_fails(check_front(lambda points: sorted(points)), "beaten")
    assert_fails(check_front(_by_cost_only), "same cost")
    assert_fails(check_front(_at_least_as_accurate), "same accuracy", "> rather than ≥")
    assert_fails(check_front(_definition_with_duplicates), "once")
    assert_fails(check_front(_ties_beat), "appears twice")
    assert_fails(check_front(_in_input_order), "wrong order", "cheapest first")
    assert_fails(check_front(_sorts_in_place), "changed the list")
    assert_fails(check_front(lambda points: [(a, c) for c, a in front(points)]), "(cost, accuracy)")
    assert_fails(check_front(lambda points: [a for _, a in front(points)]), "pair")
    assert_fails(check_front(lambda points: {p: True for p in front(points)}), "list")
    # the package's own function wants measured settings, not pairs: it raises, and the hint says so
    assert_fails(check_front(lambda points: tuning.pareto_front(points)), "AttributeError")


# ---------------------------------------------------------------- exercise 2: the cheapest pair that meets them

def _strict(points, min_accuracy, max_cost):
    ok = [p for p in points if p[1] > min_accuracy and p[0] < max_cost]
    return min(ok, key=lambda p: (p[0], -p[1])) if ok else None


def _most_accurate(points, min_accuracy, max_cost):
    ok = [p for p in points if p[1] >= min_accuracy and p[0] <= max_cost]
    return max(ok, key=lambda p: p[1]) if ok else None


def _raises_when_infeasible(points, min_accuracy, max_cost):
    return min((p for p in points if p[1] >= min_accuracy and p[0] <= max_cost), key=lambda p: (p[0], -p[1]))


def _ignores_ties(points, min_accuracy, max_cost):
    ok = [p for p in points if p[1] >= min_accuracy and p[0] <= max_cost]
    return min(ok, key=lambda p: p[0]) if ok else None


def _first_that_meets_them(points, min_accuracy, max_cost):
    return next((p for p in points if p[1] >= min_accuracy and p[0] <= max_cost), None)


def _ignores_max_cost(points, min_accuracy, max_cost):
    return cheapest(points, min_accuracy, math.inf)


def test_cheapest_solution_passes():
    r = check_cheapest(cheapest)
    assert r and "hidden cases" in r.message
    assert check_cheapest(lambda *args: None if cheapest(*args) is None else list(cheapest(*args)))


def test_cheapest_placeholder_and_wrong_answers_fail_with_a_hint():
    for placeholder in (None, ..., NotImplemented):
        assert_fails(check_cheapest(placeholder), "not attempted")
    assert_fails(check_cheapest(lambda points, a, c: ...), "placeholder")
    assert_fails(check_cheapest(_strict), "≥ and ≤")
    assert_fails(check_cheapest(_most_accurate), "most accurate", "cheapest")
    assert_fails(check_cheapest(_raises_when_infeasible), "return None")
    assert_fails(check_cheapest(_ignores_ties), "same cost", "more accurate")
    assert_fails(check_cheapest(_first_that_meets_them), "any order")
    assert_fails(check_cheapest(_ignores_max_cost), "None", "max_cost")
    assert_fails(check_cheapest(lambda points, a, c: min(points, key=lambda p: p[0])), "min_accuracy")
    assert_fails(check_cheapest(lambda points, a, c: (points.sort(), cheapest(points, a, c))[1]), "changed the list")
    assert_fails(check_cheapest(lambda points, a, c: None), "returns None")
    assert_fails(check_cheapest(lambda *args: (cheapest(*args) or (0, 0))[0]), "pair")
    assert_fails(check_cheapest(lambda points, a, c: tuning.choose(points, min_accuracy=a, max_nfe=c)), "AttributeError")


# ---------------------------------------------------------------- exercise 3: predictions that change

@pytest.fixture(scope="module")
def reference():
    return measure_changes()


@pytest.fixture(scope="module")
def model_and_digits():
    return load_pretrained("odenet")[0], load_digits()


@pytest.fixture(scope="module")
def printed(model_and_digits):
    """What the lessons print or let a learner read off, measured here as they do: the wrong images under one
    Euler step and as trained (evaluate), and compare_mistakes of the two (lesson 4 prints it)."""
    model, digits = model_and_digits
    with CHEAP_SETTING.applied(model):
        wrong_cheap = evaluate(model, digits.x_test, digits.y_test)["wrong"]
    wrong_trained = evaluate(model, digits.x_test, digits.y_test)["wrong"]
    return {"n": len(digits.y_test), "wrong_cheap": set(wrong_cheap), "wrong_trained": set(wrong_trained),
            "vs": compare_mistakes(wrong_cheap, wrong_trained, len(digits.y_test))}


def test_the_count_is_not_the_net_difference_nor_any_printed_number(reference, printed, model_and_digits):
    """The exercise's premise: the model as trained is dopri5 at 1e-3, one Euler step is a setting the lesson prints,
    and the count of changed predictions differs from every number a learner could read off or add up."""
    model, _ = model_and_digits
    block = model.ode_block
    assert (block.method, block.rtol, block.atol, block.step_size) == ("dopri5", 1e-3, 1e-3, None)
    assert CHEAP_SETTING in tuning.DEFAULT_SETTINGS and reference.n == printed["n"] == 359
    wc, wt, vs = printed["wrong_cheap"], printed["wrong_trained"], printed["vs"]
    assert (reference.wrong_cheap, reference.wrong_trained) == (len(wc), len(wt))
    assert (reference.fixed, reference.broken) == (vs.only_a, vs.only_b)
    plausible = {len(wc) - len(wt), len(wc), len(wt), len(wc) + len(wt), len(wc | wt), vs.only_a + vs.only_b,
                 vs.only_a, 0}
    assert reference.changed not in plausible, (reference, plausible)
    assert reference.changed > len(wc) - len(wt) > 0   # more changes than the accuracy shows
    # measuring leaves the model as it was
    assert (block.method, block.rtol, block.atol, block.step_size) == ("dopri5", 1e-3, 1e-3, None)


def test_changed_predictions_solution_passes(reference, model_and_digits):
    model, digits = model_and_digits
    answer = changed_predictions(model, digits)
    assert answer == reference.changed
    r = check_changed_predictions(answer)
    assert r and "corrections minus breakages" in r.message
    assert check_changed_predictions(float(answer))                     # a float equal to the count
    assert check_changed_predictions(torch.tensor(answer))              # a 0-d tensor, e.g. (a != b).sum()
    for near in (answer + 0.5, answer - 1, answer + 1, answer + 1e-6):
        assert not check_changed_predictions(near)                      # only the exact count
    # the same check on a model and data given explicitly
    assert check_changed_predictions(answer, model=model, data=(digits.x_test, digits.y_test))
    with pytest.raises(TypeError, match="Digits split"):
        check_changed_predictions(answer, model=model, data="digits")


def _no_answer_in(result, reference):
    """A hint shows no count: no whole number but the 1 of `steps=1` / `argmax(1)` and the paper's 28×28."""
    assert re.search(rf"(?<!\d){reference.changed}(?!\d)", result.message) is None, result.message
    assert set(re.findall(r"\d+", result.message)) <= {"1", "28"}, result.message


def _both_inside_the_with(model, digits):
    """A plausible wrong solution: both predictions under the cheap setting, so nothing changes."""
    with torch.no_grad(), Setting("euler", steps=1).applied(model):
        return int((model(digits.x_test).argmax(1) != model(digits.x_test).argmax(1)).sum())


def test_changed_predictions_copied_added_up_and_wrong_answers_fail(reference, printed, model_and_digits):
    n, wc, wt, vs = printed["n"], printed["wrong_cheap"], printed["wrong_trained"], printed["vs"]
    net = len(wc) - len(wt)
    plants = [
        (None, ("not attempted",)),
        (..., ("not attempted",)),
        (net, ("difference", "corrections minus breakages", "from one wrong class to another")),  # the likeliest
        (len(wc), ("gets wrong", "Setting('euler', steps=1)")),
        (len(wt), ("gets wrong", "the model as trained")),
        (len(wc) + len(wt), ("added together", "counts twice")),
        (len(wc | wt), ("either setting",)),
        (vs.only_a + vs.only_b, ("compare_mistakes", "one wrong class to another")),   # lesson 4's printout
        (vs.only_a, ("wrong to right", "corrections")),
        (n - len(wc), ("gets right", "prints")),
        (1 - len(wc) / n, ("accuracy of Setting('euler', steps=1)", "prints")),     # both accuracies as fractions
        (1 - len(wt) / n, ("accuracy of the model as trained", "prints")),
        (round(100 * (1 - len(wc) / n), 2), ("accuracy", "prints")),               # as a percentage
        (0.42, ("paper",)),                                                         # the paper's test error, %
        (0.9958, ("paper",)),
        (reference.changed / n, ("whole number", "fraction")),
        (-net, ("negative",)),
        (3.5, ("whole number", "argmax")),
        (n + 10, ("as many as there are test images",)),
        (_both_inside_the_with(*model_and_digits), ("same solver", "undone")),
        ("nine", ("one number", "str")),
        ([reference.changed], ("one number", "list")),
        (torch.tensor([True, False]), ("one number", "sum it")),
        (True, ("bool",)),
        (math.nan, ("finite",)),
    ]
    for answer, words in plants:
        result = assert_fails(check_changed_predictions(answer), *words, numbers_allowed=True)
        _no_answer_in(result, reference)
    # the likeliest wrong answer is also the trained model's wrong count here: the hint names both readings
    if net == len(wt):
        assert "and also the number of test images the model as trained gets wrong" in \
            check_changed_predictions(net).message
