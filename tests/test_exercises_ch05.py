"""Chapter 5's exercise checker tells a right closed-form KL from the usual wrong ones, and names the slip."""

from __future__ import annotations

import torch

from genvae.exercises import ch05


def right(mu1, logvar1, mu2, logvar2):
    return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2) ** 2) / logvar2.exp() - 1)


def test_a_right_answer_passes_and_an_empty_one_is_not_attempted():
    result = ch05.check_gaussian_kl(right)
    assert result.ok is True and "torch.distributions" in result.message
    assert ch05.check_gaussian_kl(None).ok is None
    assert ch05.check_gaussian_kl(lambda *a: None).ok is None  # the stub: ``return None  # your code here``
    # The same formula written with torch.distributions itself passes too.
    assert ch05.check_gaussian_kl(ch05.reference_gaussian_kl).ok is True


def test_each_usual_slip_is_named():
    slips = {
        "sign is flipped": lambda *a: -right(*a),
        "1/2 in front is missing": lambda *a: 2 * right(*a),
        "applied twice": lambda *a: right(*a) / 2,
        "swapped": lambda m1, l1, m2, l2: right(m2, l2, m1, l1),
        "log standard deviation": lambda m1, l1, m2, l2: right(m1, 2 * l1, m2, 2 * l2),
        "difference of the means": lambda m1, l1, m2, l2: right(m1, l1, m2, l2) - (m1 - m2) ** 2 / (2 * l2.exp()),
        "constant term": lambda *a: right(*a) + 0.5,
    }
    for words, wrong in slips.items():
        result = ch05.check_gaussian_kl(wrong)
        assert result.ok is False and words in result.message, (words, result.message)


def test_wrong_shapes_types_and_errors_are_reported_not_raised():
    summed = ch05.check_gaussian_kl(lambda *a: right(*a).sum())
    assert summed.ok is False and "per element" in summed.message
    assert "shape" in ch05.check_gaussian_kl(lambda *a: right(*a)[:, :1]).message
    assert "torch.Tensor" in ch05.check_gaussian_kl(lambda *a: right(*a).tolist()).message
    raised = ch05.check_gaussian_kl(lambda mu1, logvar1: mu1)  # the wrong number of arguments
    assert raised.ok is False and "TypeError" in raised.message
    assert "NaN" in ch05.check_gaussian_kl(lambda *a: right(*a) * float("nan")).message


def test_an_unrecognised_wrong_answer_says_where_it_differs_and_counts_negative_values():
    result = ch05.check_gaussian_kl(lambda m1, l1, m2, l2: right(m1, l1, m2, l2) - 0.3 * m1)
    assert result.ok is False and "flat index" in result.message and "negative" in result.message


def test_an_answer_right_only_away_from_the_prior_fails_at_the_prior():
    def special(mu1, logvar1, mu2, logvar2):
        out = right(mu1, logvar1, mu2, logvar2)
        return torch.where(mu2 == 0, out + 1.0, out)  # wrong whenever the second Gaussian is the prior

    result = ch05.check_gaussian_kl(special)
    assert result.ok is False and "at the prior" in result.message
