"""The quality of generated images against real ones, as the judge sees them: Frechet distance, class entropy,
collapse, sharpness, and the published MNIST FIDs the book compares with."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..checks import check_images, check_labels
from .judge import Judge, Judgement


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets ``(N, F)`` (as in FID).

    ||m_a - m_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}). Zero for identical
    statistics; grows as either the mean or the spread of the sets differ. The
    trace of the matrix square root is computed as the sum of the square roots of
    the eigenvalues of the symmetric S_a^{1/2} S_b S_a^{1/2} (the same number, and
    stable where S_a S_b is singular, which ``scipy.linalg.sqrtm`` warns about).
    """
    a, b = torch.as_tensor(feats_a, dtype=torch.float64), torch.as_tensor(feats_b, dtype=torch.float64)
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"expected two feature sets (N, F) of one width F, at least 2 rows each, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    f = a.shape[1]
    cov_a, cov_b = torch.cov(a.T).reshape(f, f), torch.cov(b.T).reshape(f, f)  # (F, F), also for F = 1
    vals, vecs = torch.linalg.eigh(cov_a)
    sqrt_a = (vecs * vals.clamp(min=0).sqrt()) @ vecs.T
    tr_covmean = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * tr_covmean)


def class_entropy(pred: torch.Tensor, n_classes: int = 10) -> float:
    """Entropy in nats of the histogram of predicted classes (log K = every class equally often)."""
    if pred.dim() == 2:
        pred = pred.argmax(1)
    check_labels(pred, n_classes, values=True, name="predicted classes")
    p = torch.bincount(pred, minlength=n_classes).double() / len(pred)
    p = p[p > 0]
    return max(0.0, float(-(p * p.log()).sum()))  # one class gives -0.0, shown as "-0.000"


# Published FIDs on MNIST (Inception-v3 features), as tabulated by Dai & Wipf (2019), "Diagnosing and enhancing
# VAE models", Table 1 (mean and standard deviation over runs). The NS-GAN row is Lucic et al. (2018)'s best FID
# after a large hyperparameter search per data set; the VAE row is Dai & Wipf's own VAE with a cross-entropy loss
# and default settings, no search, on the same neutral architecture. Cited beside the book's own
# classifier-feature distances, never mixed with them.
PUBLISHED_MNIST_FID = {"NS-GAN": 6.8, "VAE": 16.6}


PUBLISHED_MNIST_FID_SD = {"NS-GAN": 0.5, "VAE": 0.4}


PUBLISHED_MNIST_FID_SOURCE = "Table 1"


def effective_classes(pred: torch.Tensor, n_classes: int = 10) -> float:
    """exp(class entropy): the number of equally frequent classes with the same entropy as the histogram of
    predicted classes. 10 when every class is as common as every other; 1 when one class is all there is."""
    return math.exp(class_entropy(pred, n_classes))


def samples_collapsed(quality: dict[str, float], min_classes: float = 5.0) -> bool:
    """True if a set of samples covers fewer than ``min_classes`` effective classes (:func:`effective_classes`,
    from the ``"class entropy (nats)"`` of :func:`sample_quality`): the generator has lost most modes.

    The threshold sits between what the book measured: healthy GANs of chapter 9 at 8 to 9.7
    effective classes, collapsed ones at 1.0 to 2.4 (a sweep of learning rates and seeds)."""
    return math.exp(quality["class entropy (nats)"]) < min_classes


def generator_failure(quality: dict[str, float], real_quality: dict[str, float], min_classes: float = 5.0,
                      min_confidence_share: float = 0.5) -> str:
    """What a set of generated samples says about its generator: ``"healthy"``, ``"mode collapse"`` or
    ``"never learned"``.

    Few effective classes (:func:`samples_collapsed`) has two causes that need different fixes. A generator
    in *mode collapse* draws images the judge recognises (its confidence is at least
    ``min_confidence_share`` of its confidence on real images) but from few classes. A generator that
    *never learned* draws images the judge cannot place (confidence below that share): the narrow class
    histogram then only says where the judge puts images that look like no class at all.
    ``quality`` and ``real_quality`` are :func:`sample_quality` results (samples, real test images).

        >>> real = {"confidence": 0.9, "class entropy (nats)": 2.3}
        >>> generator_failure({"confidence": 0.85, "class entropy (nats)": 0.2}, real)
        'mode collapse'
        >>> generator_failure({"confidence": 0.3, "class entropy (nats)": 0.2}, real)
        'never learned'
    """
    if not samples_collapsed(quality, min_classes):
        return "healthy"
    if quality["confidence"] >= min_confidence_share * real_quality["confidence"]:
        return "mode collapse"
    return "never learned"


def saturation_step(d_curve, threshold: float = 0.01) -> int | None:
    """The first training step from which the discriminator's loss stays below ``threshold`` to the end of
    ``d_curve`` (one loss per step), or ``None`` when it never settles there. From that step on the
    discriminator rejects every generated image, D(G(z)) is close to 0, and the minimax generator loss,
    whose gradient per image is D(G(z)), no longer moves the generator.

        >>> saturation_step([1.3, 0.5, 0.004, 0.2, 0.003, 0.001])
        4
        >>> saturation_step([1.3, 1.2]) is None
        True
    """
    values = [float(v) for v in d_curve]
    step = None
    for i in range(len(values) - 1, -1, -1):
        if values[i] >= threshold:
            break
        step = i
    return step


def sharpness(images: torch.Tensor) -> float:
    """Mean squared response of the 3x3 Laplacian over images ``(N, 1, 28, 28)``: the energy of their fine
    detail. A blurred image has less of it; pixel noise has more. Compare with real images, not with 0."""
    check_images(images, size=None, values=False)  # any size of at least 3x3; values compared with real images
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    lap = torch.nn.functional.conv2d(images.detach().cpu().float(), kernel)  # (N, 1, 26, 26): interior pixels
    return float(lap.pow(2).mean())


def mean_pairwise_distance(feats: torch.Tensor, n_pairs: int = 20_000, seed: int = 0) -> float:
    """Mean Euclidean distance between random pairs of distinct rows of ``feats`` (a diversity measure)."""
    g = torch.Generator().manual_seed(seed)
    n = len(feats)
    if n < 2:
        raise ValueError(f"pairs of distinct rows need at least 2 rows, got {n}")
    i = torch.randint(n, (n_pairs,), generator=g)
    j = (i + torch.randint(1, n, (n_pairs,), generator=g)) % n  # never the same row
    return float((feats[i] - feats[j]).norm(dim=1).mean())


def sample_quality(judged: Judgement, reference: torch.Tensor) -> dict[str, float]:
    """The numbers the book reports for a set of images, from one pass of the judge over them.

    ``reference``: the judge's features of real test digits (another random
    subset than any judged real digits, see :func:`test_split`). The Frechet
    distance uses the judge's own features, so it is *not* comparable with
    published FIDs, which use Inception-v3 features of natural images.
    """
    return {
        "confidence": judged.confidence,
        "Frechet distance": frechet_distance(judged.features, reference),
        "class entropy (nats)": class_entropy(judged.probs),
        "pairwise feature distance": mean_pairwise_distance(judged.features),
    }


class SampleJudge(Judge):
    """The judge with a fixed reference set of real digits: calling it on images gives :func:`sample_quality`.

    The book compares many image sets (real digits, samples, reconstructions) with the same real
    reference; this keeps the classifier and the reference's features together, so that every set is
    judged the same way, in one pass of the classifier over it. It is a :class:`Judge`, so its
    :meth:`~Judge.predict`, :meth:`~Judge.judgement`... read images as any judge does.

        >>> score = SampleJudge(classifier, mnist.x_test[idx_ref])  # doctest: +SKIP
        >>> score(model.sample(1000, generator=g))["Frechet distance"]  # doctest: +SKIP
    """

    def __init__(self, classifier: nn.Module | Judge, reference_images: torch.Tensor, batch_size: int | None = None):
        super().__init__(classifier, batch_size)
        self.reference = self.judgement(reference_images).features  # (N_ref, F)

    @property
    def feature_dim(self) -> int:
        """F, the size of the judge's feature vector (the Frechet distance's Gaussians live in R^F)."""
        return self.reference.shape[1]

    def __call__(self, images: torch.Tensor) -> dict[str, float]:
        """:func:`sample_quality` of images ``(N, 1, 28, 28)`` against the reference."""
        return sample_quality(self.judgement(images), self.reference)
