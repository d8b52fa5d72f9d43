"""Chapter 14's checkers accept the right answers, name the usual slips, and report errors without raising."""

from __future__ import annotations

import torch

from genvae.exercises import ch14
from genvae.analysis.samples import nearest_distances


def right_precision(real, fake, k):
    d = torch.cdist(real, real)
    d.fill_diagonal_(float("inf"))
    radii = d.kthvalue(k, dim=1).values
    return float((torch.cdist(fake, real) <= radii[None]).any(1).double().mean())


def test_precision_right_slips_and_errors():
    assert ch14.check_precision(right_precision).ok is True
    assert ch14.check_precision(None).ok is None and ch14.check_precision(lambda *a: None).ok is None
    slip = ch14.check_precision(ch14._self_neighbour_precision)
    assert slip.ok is False and "itself" in slip.message
    assert ch14.check_precision(lambda r, f, k: 1.0).ok is False
    assert ch14.check_precision(lambda r, f, k: 1 / 0).ok is False


def test_the_cases_tell_a_slip_from_the_right_answer():
    assert any(abs(right_precision(*c) - ch14._self_neighbour_precision(*c)) > 0.01 for c in ch14.precision_cases())


def test_copying_ratio_right_slips_and_errors():
    def right(samples, train, test):
        return float(nearest_distances(samples, train).median() / nearest_distances(test, train).median())

    def upside_down(samples, train, test):
        return 1 / right(samples, train, test)

    def means(samples, train, test):
        return float(nearest_distances(samples, train).mean() / nearest_distances(test, train).mean())

    def interpolated(samples, train, test):
        return float(nearest_distances(samples, train).quantile(0.5) / nearest_distances(test, train).quantile(0.5))

    assert ch14.check_copying_ratio(right).ok is True
    assert ch14.check_copying_ratio(interpolated).ok is True
    assert ch14.check_copying_ratio(None).ok is None
    assert "upside down" in ch14.check_copying_ratio(upside_down).message
    assert "means" in ch14.check_copying_ratio(means).message
    assert ch14.check_copying_ratio(lambda *a: "x").ok is False
