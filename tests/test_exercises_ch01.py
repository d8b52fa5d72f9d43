"""Chapter 1's exercise checker tells a right Gaussian-mixture log-density from the usual wrong ones."""

import numpy as np
from scipy.special import logsumexp

from genvae.exercises import ch01


def _log_components(x, means, covariances):
    diff = x[:, None, :] - means[None]  # (N, K, D)
    maha = np.einsum("nki,kij,nkj->nk", diff, np.linalg.inv(covariances), diff)
    logdet = np.linalg.slogdet(covariances)[1]
    return -0.5 * (maha + logdet + x.shape[1] * np.log(2 * np.pi))  # (N, K)


def right(x, w, means, covs):
    return logsumexp(np.log(w) + _log_components(x, means, covs), axis=1)


def test_a_right_answer_passes_and_none_is_not_attempted():
    assert ch01.check_gmm_log_density(right).ok is True
    assert ch01.check_gmm_log_density(None).ok is None
    assert ch01.check_gmm_log_density(lambda x, w, m, c: None).ok is None


def test_the_reference_agrees_with_sklearn():
    from sklearn.mixture import GaussianMixture

    x = np.random.default_rng(0).normal(size=(300, 2)) * 2
    gm = GaussianMixture(3, random_state=0).fit(x)
    ref = ch01.reference_gmm_log_density(x, gm.weights_, gm.means_, gm.covariances_)
    assert np.allclose(ref, gm.score_samples(x))


def test_wrong_answers_are_named():
    def naive(x, w, m, c):  # exponentiates first: underflows far from the mixture
        return np.log((w * np.exp(_log_components(x, m, c))).sum(1))

    def unweighted(x, w, m, c):
        return logsumexp(_log_components(x, m, c), axis=1) - np.log(len(w))

    def no_constant(x, w, m, c):
        return right(x, w, m, c) + np.log(2 * np.pi)

    def per_component(x, w, m, c):
        return np.log(w) + _log_components(x, m, c)

    def density(x, w, m, c):
        return np.exp(right(x, w, m, c))

    def raises(x, w, m, c):
        raise ValueError("boom")

    cases = {naive: "log-sum-exp", unweighted: "weights", no_constant: "constant", per_component: "shape",
             density: "not its log", raises: "raised"}
    for fn, words in cases.items():
        result = ch01.check_gmm_log_density(fn)
        assert result.ok is False and words in result.message, (fn.__name__, result.message)
