"""Chapter 9's exercise checkers: the optimal discriminator and the JSD of the 1-D toy, right and wrong."""

import math

import torch

from genvae.exercises import ch09


def _densities(x):
    p_data, p_g = ch09.toy()
    return p_data.log_prob(x).exp(), p_g.log_prob(x).exp()


def right(x):
    a, b = _densities(x)
    return a / (a + b)


def test_the_right_discriminator_passes_and_none_is_not_attempted():
    assert ch09.check_optimal_discriminator(right).ok is True
    assert ch09.check_optimal_discriminator(None).ok is None
    assert ch09.check_optimal_discriminator(lambda x: None).ok is None


def test_wrong_discriminators_fail_with_the_slip_named():
    swapped = ch09.check_optimal_discriminator(lambda x: 1 - right(x))
    assert swapped.ok is False and "swap" in swapped.message
    logit = ch09.check_optimal_discriminator(lambda x: torch.logit(right(x)))
    assert logit.ok is False and "sigmoid" in logit.message
    ratio = ch09.check_optimal_discriminator(lambda x: _densities(x)[0] / _densities(x)[1])
    assert ratio.ok is False and "ratio" in ratio.message
    assert ch09.check_optimal_discriminator(lambda x: torch.full_like(x, 0.5)).ok is False
    assert ch09.check_optimal_discriminator(lambda x: 1 / 0).ok is False  # raises: a message, not a crash
    assert ch09.check_optimal_discriminator(lambda x: [0.5]).ok is False


def test_the_reference_value_of_the_game_is_two_jsd_minus_log_four():
    assert math.isclose(ch09.game_value(ch09.optimal_discriminator), 2 * ch09.jsd() - math.log(4), abs_tol=1e-6)
    assert ch09.game_value(lambda x: torch.full_like(x, 0.5)) < ch09.game_value(ch09.optimal_discriminator)


def test_the_jsd_check_accepts_the_value_and_names_the_slips():
    j = ch09.jsd()
    assert ch09.check_jsd(j).ok is True
    assert ch09.check_jsd(j * 1.01).ok is True  # a Monte Carlo estimate passes
    assert ch09.check_jsd(None).ok is None
    assert "V(D*, G)" in ch09.check_jsd(2 * j - math.log(4)).message
    assert "bits" in ch09.check_jsd(j / math.log(2)).message
    assert "twice" in ch09.check_jsd(2 * j).message
    assert ch09.check_jsd(0.05).ok is False
    assert ch09.check_jsd("abc").ok is False


def test_a_trained_discriminator_comes_close_to_the_optimal_one():
    d = ch09.fit_discriminator(steps=300)
    x = torch.linspace(-2.0, 3.0, 51, dtype=torch.float64)
    assert float((d(x) - ch09.optimal_discriminator(x)).abs().max()) < 0.15
