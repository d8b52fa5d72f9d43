"""Every page of the built book, as a reader's browser shows it (see conftest.py for how pages are loaded).

What "wider than its column" means here. The theme's content column (``article.bd-article``, about
680 px in a 1280 px window) is where a reader looks. An element is too wide when

* it sticks out past the column's left or right edge without a scrolling ancestor inside the column
  (a figure, a table, an equation or an output that overlaps the margin or the sidebar), or
* it is a scroll container (``overflow-x: auto`` or ``scroll``) whose content is wider than the box, so the
  reader needs a horizontal scrollbar to see all of it. Sphinx-book-theme puts display maths and wide
  tables in such containers: the page looks tidy, but half a formula sits behind a scrollbar that many
  readers never notice. That is a defect too, so an equation must be split (``aligned``, ``split``) and a
  table or figure sized to fit.

The one exception is code: a code block (``pre``, or a ``div.highlight`` around it) may scroll
sideways. Program text cannot be re-wrapped without changing it, every code block is its own scroll
container, and readers of code expect it.
"""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from PIL import Image

from conftest import HTML, ROOT, WINDOW


def fail_with(problems: list[str], what: str, page: str) -> None:
    if problems:
        listing = "\n  ".join(problems[:40]) + (f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else "")
        pytest.fail(f"{page}: {len(problems)} {what}:\n  {listing}", pytrace=False)


# ---------------------------------------------------------------------------------------------- the build


def toc_files(entries) -> list[str]:
    files = []
    for entry in entries:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("chapters", "sections", "parts"):
            files += toc_files(entry.get(key, []))
    return files


def test_every_toc_page_was_built():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    expected = [toc["root"]] + toc_files(toc.get("parts", []) + toc.get("chapters", []))
    missing = [f"{name}.html" for name in expected if not (HTML / f"{name}.html").is_file()]
    assert not missing, f"pages of _toc.yml missing from the build at {HTML}: {missing}"


def test_index_redirects_to_an_existing_page():
    index = (HTML / "index.html").read_text()
    match = re.search(r'url=([^"\'>\s]+)', index)
    assert match, f"index.html does not redirect: {index[:200]!r}"
    assert (HTML / match.group(1)).is_file(), f"index.html redirects to a missing page: {match.group(1)}"


# ---------------------------------------------------------------------------------------------- each page


def test_page_settles(book, page):
    """Fonts, MathJax and images finish within the waits (a page that never settles is judged half-drawn)."""
    assert book(page)["settled"] == "ok", f"{page}: {book(page)['settled']}"


def test_no_console_errors(book, page):
    facts = book(page)
    problems = [f"console {e['source']}: {e['message']}" for e in facts["console"]]
    problems += [f"page error: {e}" for e in facts["pageErrors"]]
    fail_with(problems, "errors in the browser console", page)


def test_images_load(book, page):
    problems = [
        f"{img['src'][:100] or '(no src)'} did not load (complete={img['complete']}, naturalWidth=0), {img['where']}"
        for img in book(page)["images"] if not (img["complete"] and img["naturalWidth"] > 0)
    ]
    fail_with(problems, "images that did not load", page)


def test_maths_typeset_offline(book, page):
    facts = book(page)
    problems = []
    if facts["mathNodes"]:
        if not facts["mathjaxLoaded"]:
            problems.append(f"{facts['mathNodes']} maths nodes but MathJax did not start")
        script = facts["mathjaxScript"] or ""
        if urlsplit(script).netloc != urlsplit(facts["url"]).netloc:  # from the book's _static, not a CDN
            problems.append(f"MathJax is not loaded from the book itself: {script or 'no MathJax script'}")
    problems += [f"not typeset: {where}" for where in facts["untypeset"]]
    problems += [f"MathJax error: {where}" for where in facts["mathErrors"]]
    problems += [f"raw TeX in the visible text: ...{snippet}..." for snippet in facts["rawTex"]]
    fail_with(problems, "maths problems", page)


def _image_bytes(src: str) -> bytes | None:
    if src.startswith("data:"):
        header, _, data = src.partition(",")
        return base64.b64decode(data) if header.endswith(";base64") else unquote(data).encode()
    path = local_file(src)
    return path.read_bytes() if path and path.is_file() else None


def test_gifs_animate(book, page):
    problems = []
    for img in book(page)["images"]:
        src = img["src"]
        if not (urlsplit(src).path.lower().endswith(".gif") or src.startswith("data:image/gif")):
            continue
        if not img["naturalWidth"]:
            problems.append(f"{src[:100]} did not load, {img['where']}")
            continue
        data = _image_bytes(src)
        if data is None:
            problems.append(f"{src[:100]}: no such file in the build, {img['where']}")
            continue
        frames = getattr(Image.open(io.BytesIO(data)), "n_frames", 1)
        if frames < 2:
            problems.append(f"{src[:100]} has {frames} frame: it does not animate, {img['where']}")
    fail_with(problems, "GIFs that do not animate", page)


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value)


_ANCHORS: dict[Path, set[str]] = {}


def anchors(path: Path) -> set[str]:
    if path not in _ANCHORS:
        parser = _Anchors()
        parser.feed(path.read_text(errors="replace"))
        _ANCHORS[path] = parser.ids
    return _ANCHORS[path]


def local_file(url: str) -> Path | None:
    """The file of the build that a same-origin URL names (a folder means its index.html)."""
    path = HTML / unquote(urlsplit(url).path).lstrip("/")
    return path / "index.html" if path.is_dir() else path


def test_internal_links_resolve(book, page):
    problems = []
    for link in book(page)["links"]:
        parts = urlsplit(link["href"])
        target = local_file(link["href"])
        if not target.is_file():
            problems.append(f"{link['raw']} -> missing file {target.relative_to(HTML)}, {link['where']}")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in anchors(target):
            problems.append(f"{link['raw']} -> no anchor #{parts.fragment} in {target.relative_to(HTML)}, {link['where']}")
    fail_with(problems, "broken internal links", page)


# What a traceback or a warning leaves in an output: Python's traceback header, "SomethingWarning:" as
# warnings.showwarning prints it, an exception name ("ValueError"), a line starting with "Error", and the
# logging module's "WARNING:" prefix. Plain words such as "reconstruction error" do not match.
OUTPUT_PROBLEMS = re.compile(
    r"Traceback \(most recent call last\)|\b[A-Z]?[a-z]*Warning:|\b[A-Z][a-z]+(?:[A-Z][a-z]+)*Error\b"
    r"|^\s*Error\b|\bWARNING\b|\bERROR\b",
    re.M,
)


def test_outputs_show_no_traceback_or_warning(book, page):
    facts = book(page)
    problems = [f"stderr or error output: {o['where']}" for o in facts["outputs"] if o["stderr"]]
    for output in facts["outputs"]:
        for match in OUTPUT_PROBLEMS.finditer(output["text"]):
            line = output["text"][max(0, match.start() - 60):match.end() + 60].replace("\n", " ")
            problems.append(f"'{match.group(0)}' in ...{line}..., {output['where']}")
    problems += [f"reStructuredText/MyST error rendered in the page: {where}" for where in facts["systemMessages"]]
    fail_with(problems, "outputs with a traceback, warning or error", page)


def test_nothing_wider_than_the_column(book, page):
    fail_with(book(page)["wide"], "elements wider than the content column", page)


def test_screenshot_saved(book, page):
    shot = book(page)["screenshot"]
    assert shot.is_file(), f"{page}: no screenshot at {shot}"
    with Image.open(shot) as image:
        assert image.width == WINDOW[0] and image.height >= WINDOW[1] // 2, f"{shot}: {image.size}"
