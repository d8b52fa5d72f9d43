"""Each chapter reads right where a learner opens it: JupyterLab, Notebook, VS Code, Colab, GitHub.

Those front ends render Markdown cells and Markdown outputs, and nothing that only the book build resolves:
a MyST role such as ``{glue:text}`mse``` or ``{doc}`chapter``` is shown as it is typed. So measured
sentences are Markdown *outputs* of code cells (``report.show``), never roles, and the book page must show
no number that the executed notebook does not show too.
"""

from __future__ import annotations

import re
from collections import Counter

from bs4 import BeautifulSoup
from conftest import executed, page

# A MyST role, as typed: {glue:text}`x`, {glue}`x`, {eval}`x`, {doc}`x`, {cite:p}`x`, {ref}`x`, {numref}`x`...
ROLE = re.compile(r"\{[a-z][\w:-]*\}`[^`]*`")
# The book states its claims as claims: no page refers to the outline it was planned from.
OUTLINE = re.compile(r"\boutlines?\b|\bfirst edition\b|\bearlier version of this chapter\b|benchmarks/", re.I)
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# What the page does not show as text, removed from the notebook's text too before numbers are counted.
_NOT_TEXT = [
    r"\$\$.*?\$\$",  # display maths (typeset, not text)
    r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}",  # amsmath environments
    r"\$[^$\n]+\$",  # inline maths
    r"\]\([^)]*\)",  # link targets (file names hold digits)
    r"<[^>]+>",  # HTML tags and their attributes
]


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def reader_texts(nb: dict) -> list[tuple[str, str, str]]:
    """``(where, kind, text)`` for everything a learner reads: Markdown cells, and the Markdown, HTML and
    plain-text outputs of code cells (code inputs are code, not reading)."""
    texts = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            texts.append((f"cell {i}", "markdown", _text(cell["source"])))
        elif cell["cell_type"] == "code":
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    texts.append((f"cell {i}", "stream", _text(out.get("text", ""))))
                for mime in ("text/markdown", "text/html", "text/plain"):
                    if mime in out.get("data", {}):
                        texts.append((f"cell {i}", mime, _text(out["data"][mime])))
    return texts


def numbers_in_notebook(nb: dict) -> Counter:
    found: Counter = Counter()
    for _, kind, text in reader_texts(nb):
        for pattern in _NOT_TEXT:
            text = re.sub(pattern, " ", text, flags=re.S)
        found.update(NUMBER.findall(text))
    return found


def numbers_on_page(html: str) -> Counter:
    """Numbers in the text of the page's article, leaving out code (inputs, code blocks) and typeset maths."""
    soup = BeautifulSoup(html, "html.parser")
    article = soup.select_one("article.bd-article") or soup
    for node in article.select("script, style, pre, code, .math, .headerlink, .cell_input, img"):
        node.decompose()
    return Counter(NUMBER.findall(article.get_text(" ")))


def test_numbers_are_counted_like_a_reader_sees_them():
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["# 2. Autoencoders\n", "With $d = 16$ see [ch 6](06_vae.ipynb)."]},
        {"cell_type": "code", "source": "report.show(...)", "outputs": [
            {"output_type": "display_data", "data": {"text/markdown": "The MSE is 0.0403 over 10,000 images."}}]},
    ]}
    assert numbers_in_notebook(nb) == Counter({"2": 1, "6": 1, "0.0403": 1, "10,000": 1})  # link text is read
    html = ('<article class="bd-article"><h1>2. Autoencoders<a class="headerlink">#</a></h1><p>With '
            '<span class="math">\\(d = 16\\)</span> see <a href="06_vae.html">ch 6</a>. The MSE is 0.0403 over '
            '10,000 images.</p><div class="cell_input"><pre>x = 5</pre></div></article>')
    assert numbers_on_page(html) == Counter({"2": 1, "6": 1, "0.0403": 1, "10,000": 1})


def test_a_role_is_found_wherever_it_is_typed():
    assert ROLE.findall("MSE {glue:text}`test_mse`, see {doc}`Chapter 6 <06_vae>` and {cite:p}`a2014`.") == [
        "{glue:text}`test_mse`", "{doc}`Chapter 6 <06_vae>`", "{cite:p}`a2014`"]
    assert ROLE.findall(":::{dropdown} Solution\n{eval}`x`") == ["{eval}`x`"]


def test_every_cell_ran_without_an_error(chapter):
    nb = executed(chapter)
    errors = [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb["cells"])
              if c["cell_type"] == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    not_run = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and c["source"]
               and c.get("execution_count") is None]
    assert not errors and not not_run, f"{chapter.name}: errors {errors}, cells not run {not_run}"


def test_no_role_that_only_the_book_build_resolves(chapter):
    """JupyterLab, VS Code and Colab show a role as typed: ``{glue:text}`mse``` instead of the number."""
    raw = [f"{where} ({kind}): {m}" for where, kind, text in reader_texts(executed(chapter))
           if kind in ("markdown", "text/markdown") for m in ROLE.findall(text)]
    assert not raw, f"{chapter.name} shows raw roles in Jupyter: {raw}"


def test_no_reference_to_the_source_outline(chapter):
    found = [f"{where} ({kind}): ...{text[max(0, m.start() - 40):m.end() + 40]}..."
             for where, kind, text in reader_texts(executed(chapter)) for m in OUTLINE.finditer(text)]
    assert not found, f"{chapter.name} refers to the outline the book was planned from: {found}"


def test_the_notebook_shows_every_number_the_page_shows(chapter):
    """A number on the book page that the executed notebook lacks was filled in by the build (a glued value),
    so a learner in Jupyter would not read it."""
    missing = numbers_on_page(page(chapter)) - numbers_in_notebook(executed(chapter))
    assert not missing, (f"{chapter.name}: the book page shows numbers that the executed notebook does not: "
                         f"{dict(missing)}")
