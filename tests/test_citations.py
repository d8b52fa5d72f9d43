"""Every entry of book/references.bib is cited in the book, and every citation names an entry.

Citations are plain Markdown links to the references page, written author–year: ``([LeCun et al.,
1998](references.md))`` or ``[Kingma and Welling (2014)](references.md)``. They read the same in the book,
JupyterLab, VS Code, Colab and GitHub, where a ``{cite:p}`` role would show as typed. The references page
lists the whole file (``:all:``), so an uncited entry would sit there with no chapter saying what it was
used for, and a link whose author and year match no entry points the reader at nothing. The bibliography is
parsed with pybtex, the parser that sphinxcontrib-bibtex uses for the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pybtex.database import parse_file

BOOK = Path(__file__).resolve().parents[1] / "book"
BIB = BOOK / "references.bib"
# A citation: a Markdown link to the references page; its text names the authors and the year.
_CITATION = re.compile(r"\[([^\]]+)\]\(references\.md(?:#[^)]*)?\)")
_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`")


def entries() -> dict[str, tuple[str, ...]]:
    """Each key's ``(year, last names of its authors...)``, as a reader's citation names them."""
    data = parse_file(str(BIB), bib_format="bibtex")
    out = {}
    for key, entry in data.entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [re.sub(r"[{}\\'\"`]", "", " ".join(p.last_names)) for p in people] or [entry.fields["title"]]
        out[key] = (entry.fields["year"], *names)
    return out


def citations(text: str) -> list[str]:
    """The link texts of the citations in ``text``."""
    return _CITATION.findall(text)


def match(citation: str, known: dict[str, tuple[str, ...]]) -> list[str]:
    """The keys whose first author and year both appear in the citation's text. Where several entries share
    both, the citation's form picks one, as author–year style does: "et al." for three or more authors,
    "A and B" (or "A & B") naming the second author for two; and where two entries of the same two authors
    in the same year remain (Nichol & Dhariwal, Dhariwal & Nichol), the one whose first author comes first."""
    keys = [key for key, (year, first, *_) in known.items() if first in citation and year in citation]
    if len(keys) > 1:
        if "et al" in citation:
            keys = [k for k in keys if len(known[k]) > 3]
        else:
            keys = [k for k in keys if len(known[k]) <= 3 and all(n in citation for n in known[k][2:])]
    if len(keys) > 1:
        earliest = min(citation.index(known[k][1]) for k in keys)
        keys = [k for k in keys if citation.index(known[k][1]) == earliest]
    return keys


def book_texts() -> dict[str, str]:
    """Every chapter's cells (Markdown and code: a code cell may display Markdown) and every Markdown page."""
    texts = {}
    for nb in sorted(BOOK.glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        texts[nb.name] = "\n".join("".join(cell["source"]) for cell in cells)
    for md in sorted(BOOK.glob("*.md")):
        texts[md.name] = md.read_text()
    return texts


def test_citations_are_found_and_matched_by_author_and_year():
    known = {"lecun1998mnist": ("1998", "LeCun", "Bottou", "Bengio"), "kingma2014vae": ("2014", "Kingma", "Welling"),
             "kingma2014semi": ("2014", "Kingma", "Mohamed", "Rezende", "Welling")}
    text = "([LeCun et al., 1998](references.md)) and [a page](02_ae.ipynb), [Kingma and Welling (2014)](references.md)"
    assert citations(text) == ["LeCun et al., 1998", "Kingma and Welling (2014)"]
    assert match("LeCun et al., 1998", known) == ["lecun1998mnist"]
    assert match("Kingma et al., 2014", known) == ["kingma2014semi"]  # the same first author and year: the form
    assert match("Kingma and Welling (2014)", known) == ["kingma2014vae"]
    assert match("Kingma (2014)", known) == []  # which one? neither
    pair = {"nichol2021": ("2021", "Nichol", "Dhariwal"), "dhariwal2021": ("2021", "Dhariwal", "Nichol")}
    assert match("Nichol & Dhariwal (2021)", pair) == ["nichol2021"]
    assert match("Dhariwal and Nichol, 2021", pair) == ["dhariwal2021"]
    assert match("LeCun, 1999", known) == []


def test_the_bibliography_is_parsed():
    known = entries()
    assert known["lecun1998mnist"][:2] == ("1998", "LeCun")


def test_no_citation_role_is_left():
    """``{cite:p}`` shows as typed in Jupyter, VS Code and Colab."""
    found = {name: len(_ROLE.findall(text)) for name, text in book_texts().items() if _ROLE.search(text)}
    assert not found, f"citation roles left (use author–year links to references.md): {found}"


def test_every_bib_entry_is_cited_and_every_citation_names_one_entry():
    known = entries()
    assert known, f"no entries parsed from {BIB}"
    cited: dict[str, set[str]] = {}
    unmatched = []
    for name, text in book_texts().items():
        for citation in citations(text):
            keys = match(citation, known)
            if len(keys) != 1:
                unmatched.append(f"{name}: [{citation}] matches {keys or 'none'}")
            for key in keys:
                cited.setdefault(key, set()).add(name)
    uncited = sorted(set(known) - set(cited))
    assert not unmatched, f"citations that name no single entry of {BIB.name} (author, year, et al.): {unmatched}"
    assert not uncited, f"in {BIB.name} but cited nowhere in book/: {uncited}"


def test_the_references_page_lists_the_whole_file():
    assert ":all:" in (BOOK / "references.md").read_text()
