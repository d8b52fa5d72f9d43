"""Chapter 13's checkers accept the right answers, name the usual slips, and report errors without raising."""

from __future__ import annotations

import torch

from genvae.exercises import ch13


def right_path(x0, x1, t):
    tt = t[:, None]
    return (1 - tt) * x0 + tt * x1, x1 - x0


def test_path_right_slips_and_errors():
    assert ch13.check_path(right_path).ok is True
    assert ch13.check_path(None).ok is None and ch13.check_path(lambda *a: None).ok is None
    backwards = ch13.check_path(lambda x0, x1, t: (right_path(x0, x1, t)[0], x0 - x1))
    assert backwards.ok is False and "backwards" in backwards.message
    reversed_path = ch13.check_path(lambda x0, x1, t: right_path(x1, x0, t))
    assert reversed_path.ok is False and "noise" in reversed_path.message
    assert ch13.check_path(lambda x0, x1, t: x0).ok is False
    assert ch13.check_path(lambda x0, x1, t: 1 / 0).ok is False


def test_euler_right_and_wrong():
    def euler(velocity, x, steps):
        dt = 1.0 / steps
        for i in range(steps):
            x = x + dt * velocity(x, torch.full((len(x),), i * dt, dtype=x.dtype))
        return x

    result = ch13.check_euler(euler)
    assert result.ok is True and "N(1.5" in result.message
    assert ch13.check_euler(None).ok is None

    def late(velocity, x, steps):  # evaluates the velocity at the end of each step, not its start
        dt = 1.0 / steps
        for i in range(steps):
            x = x + dt * velocity(x, torch.full((len(x),), (i + 1) * dt, dtype=x.dtype))
        return x

    assert ch13.check_euler(late).ok is False
    assert ch13.check_euler(lambda v, x, s: x).ok is False
