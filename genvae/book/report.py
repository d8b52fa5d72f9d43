"""Text that a chapter's own run computes: measured sentences, verdicts, Markdown tables, the quick-mode note.

The book promises that every number in its prose comes from the reader's run. A chapter computes a
value and writes the sentence that states it as a Markdown *output* of a code cell (:func:`show`), which
every front end renders: the book, JupyterLab, VS Code, Colab and GitHub's viewer. Verdict *words* are
chosen by :func:`verdict` from the measured numbers, so a sentence can never claim "below" when the run
measured "above". Tables and lists are displayed the same way, so they read as prose in the page, not as
``print`` output.

    >>> from genvae import report
    >>> report.verdict(0.02 < 0.03, "below", "above")
    'below'
    >>> report.how_often([True, True, False], "seed")
    'in 2 of 3 seeds'
    >>> print(report.table([{"d": 2, "MSE": 0.0375}], floatfmt="{:.4f}"))
    | d | MSE |
    |---|---|
    | 2 | 0.0375 |
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

from .. import settings

__all__ = ["verdict", "how_often", "table", "show", "quick_note", "dataset_note",
           "digits_only", "bullets", "noun", "note"]


def verdict(condition: bool, yes: str, no: str) -> str:
    """The word a measured ``condition`` earns (``verdict(ae < pca, "below", "above")``)."""
    return yes if bool(condition) else no


def how_often(flags: Iterable[bool], unit: str, plural: str | None = None) -> str:
    """``"in 2 of 3 seeds"``: how often a verdict held across runs, for prose that says so."""
    flags = [bool(f) for f in flags]
    if not flags:
        raise ValueError("how_often needs at least one outcome")
    plural = plural or unit + "s"
    n = len(flags)
    return f"in {sum(flags)} of {n} {unit if n == 1 else plural}"


def _cell(value, floatfmt: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, numbers.Real):
        if math.isnan(float(value)):
            return "–"  # a table's NaN marks a number that does not apply (a GAN has no reconstruction error)
        return floatfmt.format(float(value)) if math.isfinite(float(value)) else str(float(value))
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(rows, floatfmt: str = "{:.4g}", index: str | None = None) -> str:
    """A Markdown table from a list of dicts, or from a pandas DataFrame (its index becomes a column named
    ``index`` or the index's own name). Floats are shown with ``floatfmt``, NaN as "–" (does not apply);
    columns follow the first row."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a DataFrame, without importing pandas here
        frame = rows
        name = index or frame.index.name or ""
        rows = [{name: i, **r} for i, r in zip(frame.index, frame.to_dict("records"))]
    rows = list(rows)
    if not rows:
        raise ValueError("table needs at least one row")
    columns = list(rows[0])
    lines = ["| " + " | ".join(_cell(str(c), floatfmt) for c in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c, ""), floatfmt) for c in columns) + " |")
    return "\n".join(lines)


def bullets(items: Sequence[str]) -> str:
    """A Markdown bullet list."""
    return "\n".join(f"- {item}" for item in items)


def show(markdown: str) -> None:
    """Display generated Markdown in the page (MyST syntax works: the book renders it as MyST)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown))


def note(html: str) -> str:
    """A note box that reads right everywhere: an HTML block with the classes of the book's own note
    admonition, so the page styles it like one, while JupyterLab, VS Code, Colab and GitHub (which show a
    MyST ``:::{note}`` fence as raw text) show a plain paragraph. ``html`` is inline HTML (``<strong>``,
    ``<code>``): Markdown is not parsed inside an HTML block."""
    return f'<div class="admonition note"><p class="admonition-title">Note</p><p>{html}</p></div>'


QUICK_NOTE = (
    "This page was built in <strong>quick mode</strong> (<code>GENVAE_QUICK=1</code>): its models trained for at "
    "most {epochs} epochs on {subset}, so every number on it is a small-run number. The published book runs in "
    "full mode, and <code>make book</code> rebuilds it on your machine."
)


def quick_note() -> None:
    """In quick mode, show a visible note that the page's numbers come from small runs; otherwise nothing."""
    if settings.quick_mode():
        from ..training import QUICK_EPOCHS, QUICK_TRAIN_SIZE

        show(note(QUICK_NOTE.format(epochs=QUICK_EPOCHS, subset=f"{QUICK_TRAIN_SIZE:,} training images")))


TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}  # data set names as prose writes them
# What one image of a data set is called in a sentence, a figure title or a table: (singular, plural).
NOUNS = {"mnist": ("digit", "digits"), "fashion-mnist": ("clothing image", "clothing images")}


def noun(dataset: str, plural: bool = True) -> str:
    """The word for the data set's images, so generated text follows the data set: ``noun("mnist")`` is
    ``"digits"``, ``noun("fashion-mnist", plural=False)`` is ``"clothing image"``; "images" elsewhere."""
    singular, many = NOUNS.get(dataset, ("image", "images"))
    return many if plural else singular


DATASET_NOTE = (
    "This page runs on <strong>{title}</strong> (<code>dataset = \"{name}\"</code>), not on MNIST: its classes "
    "are {classes}. The prose speaks of digits where the MNIST book does; read them as this data set's images."
)


def dataset_note(dataset: str) -> str | None:
    """When a chapter runs on another data set than MNIST, show a visible note naming it (and return its
    text); for MNIST nothing is shown and ``None`` is returned."""
    if dataset == "mnist":
        return None
    from ..data import DATASETS

    spec = DATASETS[dataset]
    text = note(DATASET_NOTE.format(title=TITLES.get(dataset, dataset), name=dataset, classes=", ".join(spec.classes)))
    show(text)
    return text


def digits_only(dataset: str, what: str) -> bool:
    """True on MNIST. On another data set, show a short note that the part about ``what`` concerns digits
    and is skipped there, and return False, so a chapter writes ``if report.digits_only(dataset, "..."):``."""
    if dataset == "mnist":
        return True
    show(f"*This part ({what}) is about handwritten digits and is skipped on {dataset}.*")
    return False
