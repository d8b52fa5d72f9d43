"""genvae.book.board: chapter 14's helpers that are not measurements (those are in test_scoreboard.py)."""

from __future__ import annotations

import math

import pytest

from genvae.book import board


@pytest.mark.slow
def test_the_solver_check_halves_the_flows_steps_and_leaves_other_models_alone(monkeypatch, chapters_cache):
    monkeypatch.setenv("GENVAE_QUICK", "1")
    monkeypatch.setenv("GENVAE_CACHE", str(chapters_cache))  # the quick flow the chapter runs share
    by_name = {c.name: c for c in board.contenders("fashion-mnist", pixel_evaluations=2, latent_steps=10)}
    flow = next(c for name, c in by_name.items() if name.startswith("flow matching"))
    full, half = board.solver_check(flow, "fashion-mnist", 3, 4)
    t = flow.experiment(0).load()
    assert full == pytest.approx(board.contender_likelihood(t.model, "fashion-mnist", 3, 4, t.train_config)[board.BPD])
    assert half == pytest.approx(board.contender_likelihood(t.model, "fashion-mnist", 3, 2, t.train_config)[board.BPD])
    assert math.isfinite(full) and math.isfinite(half) and full != half  # two solves, not one number twice
    assert board.solver_check(by_name["GAN"], "fashion-mnist", 3, 4) is None  # no solver behind its numbers
    with pytest.raises(ValueError):
        board.solver_check(flow, "fashion-mnist", 3, 0)
