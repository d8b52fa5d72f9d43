"""Chapter 4's comparison helpers: ratios between rows of a results table, and the spread of several errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genvae.book import tables


@pytest.fixture
def comparison() -> pd.DataFrame:
    """A table shaped like chapter 4's: rows (d, architecture), made-up values."""
    rows = [
        {"d": 2, "architecture": "MLP", "parameters": 1_068_306, "test MSE": 0.0400},
        {"d": 2, "architecture": "convolutional", "parameters": 420_707, "test MSE": 0.0380},
        {"d": 16, "architecture": "MLP", "parameters": 1_075_488, "test MSE": 0.0120},
        {"d": 16, "architecture": "convolutional", "parameters": 424_305, "test MSE": 0.0080},
    ]
    return pd.DataFrame(rows).set_index(["d", "architecture"])


def test_ratio_divides_the_named_rows(comparison):
    assert tables.ratio(comparison, (16, "MLP"), (16, "convolutional"), "test MSE") == pytest.approx(1.5)
    assert tables.ratio(comparison, (2, "MLP"), (2, "convolutional"), "parameters") == pytest.approx(
        1_068_306 / 420_707)
    # The reverse ratio is the reciprocal, and a flat index works too.
    flat = comparison.loc[16]
    assert tables.ratio(flat, "convolutional", "MLP", "test MSE") == pytest.approx(1 / 1.5)
    assert isinstance(tables.ratio(comparison, (2, "MLP"), (2, "MLP"), "parameters"), float)


def test_ratio_errors(comparison):
    comparison.loc[(2, "MLP"), "test MSE"] = 0.0
    with pytest.raises(ZeroDivisionError, match="undefined"):
        tables.ratio(comparison, (16, "MLP"), (2, "MLP"), "test MSE")
    with pytest.raises(KeyError):
        tables.ratio(comparison, (16, "MLP"), (16, "small"), "test MSE")


def test_relative_spread_against_numpy():
    rng = np.random.default_rng(0)
    values = rng.uniform(0.01, 0.05, size=7)
    assert tables.relative_spread(values) == pytest.approx(np.ptp(values) / values.min())
    assert tables.relative_spread([0.04, 0.042]) == pytest.approx(0.05)
    assert tables.relative_spread([0.03]) == 0.0  # one value: no spread
    assert tables.relative_spread(pd.Series([2.0, 1.0, 4.0])) == pytest.approx(3.0)  # order does not matter


@pytest.mark.parametrize("bad", [[], [0.0, 1.0], [-1.0, 1.0], [1.0, float("nan")], [1.0, float("inf")]])
def test_relative_spread_rejects_what_it_cannot_compare(bad):
    with pytest.raises(ValueError):
        tables.relative_spread(bad)
