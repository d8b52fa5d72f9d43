"""Checks of the chapters as a learner's Jupyter shows them, run after ``make book-quick`` (``make readable``).

``make book-quick`` executes every chapter outside the book build, as Jupyter does (``genvae chapters``,
nbclient, a fresh kernel per chapter), into ``_build/quick/executed``, and then builds the pages from those
runs. These tests read both. Set BOOK_EXECUTED and BOOK_HTML to check another build (``make book`` writes
``_build/executed`` and ``_build/html``). A missing run or page is an error, never a skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from genvae.chapters import chapter_paths

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = Path(os.environ.get("BOOK_EXECUTED", ROOT / "_build" / "quick" / "executed")).resolve()
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "quick" / "_build" / "html")).resolve()
CHAPTERS = [p for p in chapter_paths(ROOT) if p.suffix == ".ipynb"]


def executed(chapter: Path) -> dict:
    """The executed notebook of ``chapter`` (JSON), or a failure that says how to make it."""
    path = EXECUTED / chapter.name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make book-quick` first (it executes every chapter into "
                    f"{EXECUTED}), or set BOOK_EXECUTED", pytrace=False)
    return json.loads(path.read_text())


def page(chapter: Path) -> str:
    """The built HTML page of ``chapter``."""
    path = HTML / chapter.relative_to(ROOT).with_suffix(".html")
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make book-quick` first, or set BOOK_HTML", pytrace=False)
    return path.read_text()


@pytest.fixture(params=CHAPTERS, ids=lambda p: p.stem)
def chapter(request) -> Path:
    return request.param
