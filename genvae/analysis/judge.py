"""The judge: a classifier trained on real digits, run over images (:class:`Judge`), and what it reads in them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..checks import check_images
from ..utils import batched


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct predictions; ``pred`` holds class indices ``(N,)`` or scores ``(N, K)``."""
    if pred.dim() not in (1, 2) or y.dim() != 1 or len(pred) != len(y):
        raise ValueError(f"expected predictions (N,) or scores (N, K) and labels (N,), got {tuple(pred.shape)} "
                         f"and {tuple(y.shape)}")
    if pred.dim() == 2:
        pred = pred.argmax(1)
    return float((pred == y).double().mean())


@dataclass
class Judgement:
    """What the classifier says about a set of images, from one pass over them."""

    probs: torch.Tensor  # (N, K) class probabilities
    features: torch.Tensor  # (N, F) penultimate-layer features

    @property
    def pred(self) -> torch.Tensor:
        return self.probs.argmax(1)

    @property
    def confidence(self) -> float:
        """Mean top-class probability."""
        return float(self.probs.max(1).values.mean())


class Judge:
    """The book's judge of images, a classifier trained on real images only, and the one place that runs it.

    Every pass of the classifier over a set of images goes through these methods, in batches of
    ``batch_size`` (:func:`genvae.utils.batched`: eval mode, no gradients, on the classifier's device,
    results on the CPU), after checking that the images are images ``(N, 1, 28, 28)`` in [0, 1]:

        >>> judge = Judge(experiments.classifier().load().model)  # doctest: +SKIP
        >>> judge.predict(model.sample(100, generator=g))  # doctest: +SKIP
        tensor([7, 1, ...])

    ``classifier``: a module whose output has ``.logits`` ``(B, K)`` and, for :meth:`features` and
    :meth:`judgement`, ``.features`` ``(B, F)`` (:class:`~genvae.models.classifier.Classifier`); a Judge
    works too (its classifier and, unless ``batch_size`` is given, its batch size are used). Functions that
    take "a judge" (:func:`class_changes`, :func:`genvae.book.transitions.class_transitions`, the explorer) accept
    either, through :meth:`of`.
    """

    def __init__(self, classifier: nn.Module | Judge, batch_size: int | None = None):
        if isinstance(classifier, Judge):
            batch_size = classifier.batch_size if batch_size is None else batch_size
            classifier = classifier.classifier
        self.classifier = classifier
        self.batch_size = batch_size  # images per pass; None: utils.inference_batch of the classifier's device

    @staticmethod
    def of(judge: nn.Module | Judge) -> Judge:
        """``judge`` itself if it is a :class:`Judge`, else a Judge of the classifier ``judge``."""
        return judge if isinstance(judge, Judge) else Judge(judge)

    def _pass(self, call, x: torch.Tensor):
        check_images(x, values=True)  # once, here: the batches then move to the classifier's device unchecked
        return batched(self.classifier, call, x, batch_size=self.batch_size)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, K)`` of images ``(N, 1, 28, 28)``: the softmax of the logits."""
        return self._pass(lambda xb: torch.softmax(self.classifier(xb).logits, 1), x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The judge's class for each image, ``(N,)`` int64: the argmax of :meth:`predict_proba`."""
        return self.predict_proba(x).argmax(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(N, F)`` of images ``(N, 1, 28, 28)``."""
        return self._pass(lambda xb: self.classifier(xb).features, x)

    def judgement(self, x: torch.Tensor) -> Judgement:
        """Class probabilities and features of images ``(N, 1, 28, 28)``, from one pass over them."""
        def read(xb: torch.Tensor) -> Judgement:
            out = self.classifier(xb)
            return Judgement(torch.softmax(out.logits, 1), out.features)

        return self._pass(read, x)


def confident_share(judged: Judgement, threshold: float = 0.5) -> float:
    """Share of images whose top class gets probability above ``threshold``: how many the judge reads as
    one clear digit (with 10 classes, p > 0.5 means one class outweighs all the others together)."""
    return float((judged.probs.max(1).values > threshold).double().mean())
