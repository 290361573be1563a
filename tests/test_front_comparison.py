"""Two models' fronts compared (odeteach.front_comparison): the sentences follow planted numbers, either way."""

import pytest

from odeteach.front_comparison import compare_fronts, describe_comparison, describe_paired_nfe, paired_nfe
from odeteach.tuning import Measurement, Setting


def point(setting, accuracy, nfe, ms, batch=100):
    return Measurement(setting, accuracy, nfe, ms, 1000, batch)


E1, M1, R1, D3 = Setting("euler", steps=1), Setting("midpoint", steps=1), Setting("rk4", steps=1), \
    Setting("dopri5", tol=1e-3)


def plain():
    return [point(E1, 0.96, 1, 10.0), point(M1, 0.975, 2, 20.0), point(R1, 0.981, 4, 40.0), point(D3, 0.983, 26, 260.0)]


def test_the_regularised_model_cheaper_at_a_level():
    regularised = [point(E1, 0.972, 1, 10.0), point(M1, 0.979, 2, 20.0), point(R1, 0.982, 4, 40.0),
                   point(D3, 0.982, 14, 140.0)]
    comparison = compare_fronts(plain(), regularised)
    at97 = next(r for r in comparison.levels if r.cost == "nfe" and r.min_accuracy == 0.97)
    assert (at97.first.setting, at97.second.setting) == (M1, E1)
    text = describe_comparison(comparison, "nfe")
    assert "To reach 97.0% the regularised ODE-Net is cheaper, 2.0× less" in text
    assert "To reach 98.0% both need the same cost" in text
    assert "the ODE-Net takes NFE 26 for 98.3% and the regularised ODE-Net NFE 14 for 98.2%" in text


def test_the_plain_model_cheaper_is_said_too():
    worse = [point(E1, 0.95, 1, 10.0), point(M1, 0.96, 2, 20.0), point(R1, 0.972, 4, 40.0), point(D3, 0.99, 30, 300.0)]
    text = describe_comparison(compare_fronts(plain(), worse), "nfe")
    assert "To reach 97.0% the ODE-Net is cheaper, 2.0× less" in text


def test_a_level_one_model_never_reaches():
    weak = [point(E1, 0.95, 1, 10.0), point(D3, 0.975, 20, 200.0)]
    text = describe_comparison(compare_fronts(plain(), weak), "nfe")
    assert "Only the ODE-Net reaches 98.0%" in text and "the regularised ODE-Net never does" in text


def test_milliseconds_within_five_percent_tie_and_no_reference_sentence():
    other = [point(E1, 0.96, 1, 10.0), point(M1, 0.975, 2, 20.5), point(R1, 0.981, 4, 40.0), point(D3, 0.983, 20, 200.0)]
    text = describe_comparison(compare_fronts(plain(), other), "ms")
    assert "To reach 97.0% both need the same time, within 5%" in text and "NFE 26" not in text


def test_bad_input():
    with pytest.raises(ValueError, match="no measurements"):
        compare_fronts([], plain())
    with pytest.raises(ValueError, match="different numbers of images"):
        compare_fronts(plain(), [point(E1, 0.9, 1, 1.0, batch=50)])
    with pytest.raises(ValueError, match="costs"):
        describe_comparison(compare_fronts(plain(), plain(), costs=("nfe",)), "ms")


def test_paired_nfe_pairs_adaptive_settings_only_and_counts_both_ways():
    B1, B3 = Setting("bosh3", tol=1.0), Setting("bosh3", tol=1e-3)
    first = plain() + [point(B1, 0.98, 8, 80.0), point(B3, 0.983, 20, 200.0)]
    second = [point(E1, 0.97, 1, 10.0), point(D3, 0.98, 20, 200.0), point(B1, 0.98, 8, 80.0), point(B3, 0.98, 25, 250.0)]
    pairs = paired_nfe(first, second)
    assert [s for s, _, _ in pairs] == [D3, B1, B3]
    text = describe_paired_nfe(pairs)
    assert "(3 settings), the regularised ODE-Net needs fewer evaluations of f in 1, as many in 1 and more in 1" in text
    assert "median ratio of its NFE to the ODE-Net's is 1.00 (from 0.77 to 1.25)" in text
    with pytest.raises(ValueError, match="nothing to pair"):
        describe_paired_nfe(paired_nfe(plain()[:3], second))
