"""Chapter 1's exercise: the log-density of a Gaussian mixture, written by the learner.

``check_gmm_log_density(fn)`` calls ``fn(x, weights, means, covariances)`` on fixed mixtures and points,
compares it with a reference (scipy's Gaussian log-density and log-sum-exp), and says what is wrong:
the shape, a missing weight, a missing normalising constant, or an underflow far from the mixture.
"""

from __future__ import annotations

import numpy as np

from . import Result, call_answer, failed, not_attempted, passed

__all__ = ["check_gmm_log_density", "reference_gmm_log_density", "example_mixture"]


def reference_gmm_log_density(x, weights, means, covariances) -> np.ndarray:
    """log p(x) of the mixture sum_k w_k N(x; mu_k, Sigma_k) at points ``x`` ``(N, D)``, as ``(N,)``."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    log_comp = np.stack([multivariate_normal(m, c).logpdf(x) for m, c in zip(means, covariances)], axis=1)
    return logsumexp(np.log(weights)[None] + log_comp.reshape(len(x), -1), axis=1)


def example_mixture(seed: int = 0):
    """A fixed 3-component 2-D mixture (weights, means, covariances) with unequal weights and tilted covariances."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.5, 0.3, 0.2])
    means = rng.normal(0, 3, size=(3, 2))
    a = rng.normal(size=(3, 2, 2))
    covariances = a @ a.transpose(0, 2, 1) + 0.3 * np.eye(2)
    return weights, means, covariances


def check_gmm_log_density(fn) -> Result:
    """Check the learner's ``fn(x, weights, means, covariances) -> (N,)`` log-density of a Gaussian mixture."""
    if fn is None:
        return not_attempted("`my_gmm_log_density`")
    weights, means, covariances = example_mixture()
    rng = np.random.default_rng(1)
    near = means[rng.integers(0, 3, 200)] + rng.normal(size=(200, 2))  # points where the mixture lives
    far = np.array([[60.0, 0.0], [0.0, -80.0], [100.0, 100.0]])  # every component's density underflows here
    expected_near = reference_gmm_log_density(near, weights, means, covariances)
    got, raised = call_answer(lambda: fn(near.copy(), weights.copy(), means.copy(), covariances.copy()))
    if raised is not None:
        return raised
    if got is None:
        return not_attempted("`my_gmm_log_density` (it still returns None)")
    try:
        got = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return failed(f"it should return an array of numbers, got {type(got).__name__}")
    if got.shape != expected_near.shape:
        hint = " (one column per component: combine them with the weights)" if got.shape == (len(near), 3) else ""
        return failed(f"it returns shape {got.shape}, expected {expected_near.shape}, one log-density per point{hint}")
    if not np.allclose(got, expected_near, rtol=1e-5, atol=1e-6):
        if np.allclose(np.exp(got), expected_near, rtol=1e-4, atol=1e-6) or np.allclose(got, np.exp(expected_near), rtol=1e-4, atol=1e-9):
            return failed("it returns a density, not its log (or the reverse)")
        unweighted = reference_gmm_log_density(near, np.ones(3) / 3, means, covariances)
        if np.allclose(got, unweighted, rtol=1e-5, atol=1e-6):
            return failed("it ignores the weights: every component counts the same")
        if np.allclose(got, reference_gmm_log_density(near, np.ones(3), means, covariances), rtol=1e-5, atol=1e-6):
            return failed("it ignores the weights: every component counts fully")
        off = got - expected_near
        if np.allclose(off, off.mean(), atol=1e-6):
            return failed(f"it is off by the same constant {off.mean():+.4f} at every point: "
                          "check the normalising constant -1/2 (D log 2 pi + log det Sigma)")
        worst = int(np.abs(got - expected_near).argmax())
        return failed(f"at point {worst} it gives {got[worst]:.6g}, expected {expected_near[worst]:.6g}")
    expected_far = reference_gmm_log_density(far, weights, means, covariances)
    try:
        with np.errstate(all="ignore"):  # a naive answer's log(0) is what the message below explains
            got_far = np.asarray(fn(far.copy(), weights.copy(), means.copy(), covariances.copy()), dtype=float)
    except Exception as err:
        return failed(f"right near the mixture, but far from it calling it raised {type(err).__name__}: {err}")
    if got_far.shape != expected_far.shape or not np.all(np.isfinite(got_far)):
        return failed("right near the mixture, but far from it the answer is not finite: each component's density "
                      "underflows to 0 there, so take the log of the sum with log-sum-exp instead of exponentiating")
    if not np.allclose(got_far, expected_far, rtol=1e-6, atol=1e-6):
        return failed(f"right near the mixture, but at the far point {far[0].tolist()} it gives {got_far[0]:.6g}, "
                      f"expected {expected_far[0]:.6g}")
    return passed(f"it matches the reference at {len(near)} points near the mixture and {len(far)} far from it, "
                  f"where the density is as small as exp({expected_far.min():.0f})")
