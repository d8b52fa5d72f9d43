"""Checkers for the chapters' exercises: the learner derives, implements or retrains something, and a
checker here says whether the answer is right and, when it is not, what is wrong.

Every chapter's exercise module (``genvae.exercises.ch02`` for chapter 2, and so on) holds functions
``check_<name>(answer, ...) -> Result``. A check never raises on a wrong answer: it returns a
:class:`Result` whose message names the first thing that is wrong (a shape, a value off by a factor,
a sign). An answer left as ``None`` (the exercise not attempted yet) gets :data:`NOT_ATTEMPTED`, so a
chapter that is executed top to bottom, as the book build does, runs through its exercise cells.

    >>> from genvae.exercises import Result, compare
    >>> bool(compare(3.0, 3.0 + 1e-9, what="the KL"))
    True
    >>> compare(3.0, 2.0, what="the KL").message
    'the KL is 3, expected 2 (off by a factor of 1.5)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Result", "passed", "failed", "not_attempted", "call_answer", "compare", "compare_tensors"]


@dataclass(frozen=True)
class Result:
    """The outcome of a check: ``ok`` (``None`` when there was nothing to check yet) and a message."""

    ok: bool | None
    message: str

    def __bool__(self) -> bool:
        return bool(self.ok)

    @property
    def mark(self) -> str:
        return {True: "✅ correct", False: "❌ not yet", None: "✏️ not attempted"}[self.ok]

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"

    def _repr_markdown_(self) -> str:  # a notebook shows the verdict as a line of text, in every front end
        return f"**{self.mark}**: {self.message}"


def passed(message: str) -> Result:
    return Result(True, message)


def failed(message: str) -> Result:
    return Result(False, message)


def not_attempted(what: str) -> Result:
    """The result for an answer still ``None``: says what to fill in."""
    return Result(None, f"fill in {what}, then run this cell again")


def call_answer(thunk, doing: str = "calling it"):
    """Run the learner's code, ``thunk()``: ``(its value, None)``, or ``(None, a failed Result)`` naming what it
    raised ("calling it raised ValueError: ..."), since a check never raises on a wrong answer."""
    try:
        return thunk(), None
    except Exception as err:  # the learner's code: any error is a message, not a crash
        return None, failed(f"{doing} raised {type(err).__name__}: {err}")


def compare(got: float, expected: float, what: str, rtol: float = 1e-4, atol: float = 1e-6) -> Result:
    """A number against the right one, within ``rtol``/``atol``, with a message that says how far off it is."""
    try:
        got = float(got)
    except (TypeError, ValueError):
        return failed(f"{what} should be a number, got {type(got).__name__}")
    if not math.isfinite(got):
        return failed(f"{what} is {got}, not a finite number")
    if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
        return passed(f"{what} is {got:.6g}, as expected")
    hint = ""
    if math.isclose(got, -expected, rel_tol=rtol, abs_tol=atol):
        hint = " (the sign is flipped)"
    elif expected != 0 and got != 0:
        hint = f" (off by a factor of {got / expected:.3g})"
    return failed(f"{what} is {got:.6g}, expected {expected:.6g}{hint}")


def compare_tensors(got, expected, what: str, rtol: float = 1e-4, atol: float = 1e-6) -> Result:
    """A tensor against the right one: its type, shape, then values (the largest difference is named)."""
    import torch

    if not isinstance(got, torch.Tensor):
        return failed(f"{what} should be a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(expected.shape):
        return failed(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    got, expected = got.detach().double().cpu(), expected.detach().double().cpu()
    if not torch.isfinite(got).all():
        return failed(f"{what} holds NaN or infinite values")
    if torch.allclose(got, expected, rtol=rtol, atol=atol):
        return passed(f"{what} matches the reference (largest difference {float((got - expected).abs().max()):.2g})")
    if torch.allclose(got, -expected, rtol=rtol, atol=atol):
        return failed(f"{what} has the wrong sign")
    worst = int((got - expected).abs().flatten().argmax())
    return failed(f"{what} differs from the reference: at flat index {worst} it is {float(got.flatten()[worst]):.6g}, "
                  f"expected {float(expected.flatten()[worst]):.6g}")
