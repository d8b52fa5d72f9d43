"""The chapters' prose states no measured number that the run did not compute.

Every number in a chapter's Markdown must be glued (``{glue:text}`name```), sit inside maths, code or a
citation, or be a fixed fact on the allow-list below (the size of an MNIST image, a chapter number,
a published value cited with its source). A number typed into prose fails this test.
"""

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]*_*.ipynb"))

# Fixed facts, allowed anywhere: MNIST's shape and sizes, the ten classes.
ALLOWED = {"28", "784", "60,000", "10,000", "10", "0", "1"}
# Fixed facts allowed in one chapter only, with the reason.
ALLOWED_IN = {
    "06b_likelihood_and_explorer": {  # chapter 6's appendix
        "86.76",  # Burda et al. (2016), Table 1: a published value, cited
        "5,000",  # their evaluation used 5,000 importance samples (protocol, cited)
        "3,280",  # their training epochs (protocol, cited)
    },
}

_REMOVE = [
    r"\$\$.*?\$\$",  # display maths
    r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}",  # amsmath environments
    r"\$[^$\n]+\$",  # inline maths
    r"```.*?```",  # fenced code
    r"`[^`\n]*`",  # inline code, role targets (the role name stays, e.g. {glue:text})
    r"\{[a-z:-]+\}",  # role and directive names
    r"\[[^\]]*\]\(references\.md[^)]*\)",  # citations: author and year, linked to the references page
    r"\]\([^)]*\)",  # link targets
    r"<[^>]+>",  # HTML tags
    r"^:{3,}[^\n]*$",  # directive fences and their options
    r"^:[a-z-]+:[^\n]*$",  # directive options
    r"^#+\s*\d+\.\s",  # the chapter number in the title
    r"\b[Cc]hapters? \d+(?:(?:,| and| or|–|-) ?\d+)*",  # references to chapters
    r"\b\d+-D\b",  # 2-D, 3-D: dimensions of a picture, not measurements
    r"\b[A-Za-z]+\d+\b",  # identifiers such as ae_d2, C3
]
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


def prose_numbers(markdown: str) -> list[str]:
    text = markdown
    for pattern in _REMOVE:
        text = re.sub(pattern, " ", text, flags=re.S | re.M)
    return [m.group(0).rstrip(",") for m in _NUMBER.finditer(text)]


def test_prose_numbers_finds_typed_numbers():
    md = (
        "# 3. Latent space\n"
        "The error is 0.0375 and $\\beta = 10$ in {glue:text}`mse` of chapter 4, on 28×28 images "
        "([LeCun et al., 1998](references.md)).\n"
        ":::{dropdown} Solution\n:::\n```python\nx = 512\n```\nWidths 512 and 256, a 2-D code."
    )
    assert prose_numbers(md) == ["0.0375", "28", "28", "512", "256"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_unglued_numbers_in_prose(path):
    cells = json.loads(path.read_text())["cells"]
    allowed = ALLOWED | ALLOWED_IN.get(path.stem, set())
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for n in prose_numbers("".join(cell["source"])):
            if n not in allowed:
                found.append(f"c{i}: {n}")
    assert not found, f"{path.name} states numbers that are not glued: {found}"


# Roles that only the book build resolves. JupyterLab, VS Code, Colab and GitHub show them as typed, so a
# measured number is the Markdown output of a code cell (report.show), a cross-reference a Markdown link.
_BUILD_ONLY_ROLE = re.compile(r"\{(?:glue|eval|doc|cite|ref|numref)(?::[a-z]+)?\}`")
# The book states its claims as claims: it never refers to the outline it was planned from.
_OUTLINE = re.compile(r"\boutlines?\b|\bfirst edition\b|\bearlier version of this chapter\b|benchmarks/", re.I)


def test_the_role_and_outline_patterns():
    assert _BUILD_ONLY_ROLE.findall("{glue:text}`a` {doc}`b` {cite:p}`c` {eval}`d` :::{dropdown} x") == [
        "{glue:text}`", "{doc}`", "{cite:p}`", "{eval}`"]
    assert _OUTLINE.findall("the outline's claim; see `benchmarks/RESULTS.md`; the first edition; an outlier") == [
        "outline", "benchmarks/", "first edition"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_markdown_reads_right_outside_the_book_build(path):
    cells = json.loads(path.read_text())["cells"]
    roles = [f"c{i}: {m.group(0)}" for i, c in enumerate(cells) if c["cell_type"] == "markdown"
             for m in _BUILD_ONLY_ROLE.finditer("".join(c["source"]))]
    outline = [f"c{i}: {m.group(0)}" for i, c in enumerate(cells) if c["cell_type"] == "markdown"
               for m in _OUTLINE.finditer("".join(c["source"]))]
    assert not roles, f"{path.name}: roles that Jupyter, VS Code and Colab show as typed: {roles}"
    assert not outline, f"{path.name}: mentions of the outline the book was planned from: {outline}"
