"""The book's helpers: what the chapters need beyond models and metrics.

Figures (:mod:`~genvae.book.plots`, :mod:`~genvae.book.diagrams`), numbers stated in sentences
(:mod:`~genvae.book.report`), the latent-space explorer (:mod:`~genvae.book.explorer`), running the
chapters (:mod:`~genvae.book.chapters`), and modules that each serve one chapter: density (1), divergence
(5), posterior (6), transitions (8), morpho (3 and 11) and arithmetic (11). The exercises' checkers are
:mod:`genvae.exercises`. Old paths such as ``genvae.plots`` still import these modules (:mod:`genvae._moved`).
"""
