"""Every named experiment trains in quick mode (what `genvae reproduce --quick` does)."""

from __future__ import annotations

import math

import pytest

from genvae.experiments import REGISTRY, get


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in REGISTRY if not n.startswith("ae_d2_s")])
def test_every_experiment_trains_in_quick_mode(name):
    t = get(name).load(quick=True, progress=False)
    assert not t.from_cache
    assert t.train_config.epochs <= 2 and t.train_config.train_size == 6000
    assert all(math.isfinite(v) for v in t.metrics.values())
    first, last = t.history.series("train")[0], t.history.series("train")[-1]
    assert last <= first
    assert get(name).is_cached(quick=True) and not get(name).is_cached(quick=False)


def test_seed_variants_differ_only_in_seed():
    base = get("ae_d2")
    s1 = get("ae_d2_s1")
    assert s1.model == base.model and s1.train.seed == 1 and s1.train.epochs == base.train.epochs
    assert base.with_seed(0) is base


def test_unknown_name():
    with pytest.raises(KeyError, match="known"):
        get("nope")
