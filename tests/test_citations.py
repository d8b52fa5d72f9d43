"""Every entry of book/references.bib is cited in the book, and every citation names an entry.

An uncited entry still shows up in the bibliography (the references page lists the whole file), so a
reader would find a work there that no chapter says what it was used for; a citation of a missing key
renders as a broken reference. The bibliography is parsed with pybtex, the parser that
sphinxcontrib-bibtex itself uses for the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pybtex.database import parse_file

BOOK = Path(__file__).resolve().parents[1] / "book"
BIB = BOOK / "references.bib"

# MyST citation roles: {cite}`a`, {cite:p}`a,b`, {cite:t}`a`, {cite:ps}`a` and the other sphinxcontrib-bibtex
# variants. Keys are separated by commas, with optional spaces.
_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]*)`")


def cited_keys(text: str) -> list[str]:
    """The keys cited in ``text``, in order, with repeats."""
    return [key.strip() for keys in _ROLE.findall(text) for key in keys.split(",") if key.strip()]


def book_texts() -> dict[str, str]:
    """Every chapter's cells (Markdown and code: a code cell may display Markdown) and every Markdown page."""
    texts = {}
    for nb in sorted(BOOK.glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        texts[nb.name] = "\n".join("".join(cell["source"]) for cell in cells)
    for md in sorted(BOOK.glob("*.md")):
        texts[md.name] = md.read_text()
    return texts


def test_cited_keys_reads_every_role_form():
    text = (
        "as in {cite}`a2001`, see {cite:p}`b2002, c2003` and {cite:t}`d2004`;"
        " {cite:ps}`e2005`. Not a citation: `cite` {glue:text}`x` {doc}`f`."
    )
    assert cited_keys(text) == ["a2001", "b2002", "c2003", "d2004", "e2005"]


def test_book_texts_cover_the_chapters_and_pages():
    names = set(book_texts())
    assert {"intro.md", "references.md"} <= names
    assert len([n for n in names if n.endswith(".ipynb")]) >= 11


def test_every_bib_entry_is_cited_and_every_citation_exists():
    entries = set(parse_file(str(BIB), bib_format="bibtex").entries)
    assert entries, f"no entries parsed from {BIB}"
    cited: dict[str, set[str]] = {}
    for name, text in book_texts().items():
        for key in cited_keys(text):
            cited.setdefault(key, set()).add(name)
    missing = {key: sorted(where) for key, where in cited.items() if key not in entries}
    uncited = sorted(entries - set(cited))
    assert not missing, f"cited but not in {BIB.name}: {missing}"
    assert not uncited, f"in {BIB.name} but cited nowhere in book/: {uncited}"
