"""Analysis: numbers about trained models and the images they make.

Chapters use :mod:`genvae.analysis.metrics` (``from genvae import metrics``), which gathers the metrics
modules, :mod:`genvae.analysis.latent` for work in a model's code space, and
:mod:`genvae.analysis.scoreboard` to measure every generator the same way (chapter 14).
"""
