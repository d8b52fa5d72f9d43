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

Collapsed parts (hidden code cells, exercise solutions in dropdowns) are opened before the page is
judged, since a reader can open them; the screenshot shows the page as first seen, with them closed.
The book's wide result tables fit thanks to _static/book.css (compact cells for five or more columns).
"""

from __future__ import annotations

import base64
import functools
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from PIL import Image

from conftest import HTML, ROOT, WINDOW, Book, serve


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


# ------------------------------------------------------------------------- judging one page's facts
# Each judge takes the facts that conftest.Book collected from a page and returns its problems, one line
# each. The per-page tests below apply them to the build; test_the_judges_catch_known_defects applies
# them to a page made to have every defect, so that none of them can pass by looking at nothing.


def console_problems(facts: dict) -> list[str]:
    problems = [f"console {e['source']}: {e['message']}" for e in facts["console"]]
    return problems + [f"page error: {e}" for e in facts["pageErrors"]]


def image_problems(facts: dict) -> list[str]:
    return [
        f"{img['src'][:100] or '(no src)'} did not load (complete={img['complete']}, naturalWidth=0), {img['where']}"
        for img in facts["images"] if not (img["complete"] and img["naturalWidth"] > 0)
    ]


def maths_problems(facts: dict) -> list[str]:
    problems = []
    if facts["mathNodes"]:
        if not facts["mathjaxLoaded"]:
            problems.append(f"{facts['mathNodes']} maths nodes but MathJax did not start")
        script = facts["mathjaxScript"] or ""
        if urlsplit(script).netloc != urlsplit(facts["url"]).netloc:  # from the book's _static, not a CDN
            problems.append(f"MathJax is not loaded from the book itself: {script or 'no MathJax script'}")
    problems += [f"not typeset: {where}" for where in facts["untypeset"]]
    problems += [f"MathJax error: {where}" for where in facts["mathErrors"]]
    return problems + [f"raw TeX in the visible text: ...{snippet}..." for snippet in facts["rawTex"]]


def local_file(url: str, root: Path) -> Path:
    """The file under ``root`` that a same-origin URL names (a folder means its index.html)."""
    path = root / unquote(urlsplit(url).path).lstrip("/")
    return path / "index.html" if path.is_dir() else path


def image_bytes(src: str, root: Path) -> bytes | None:
    """The bytes of an image the page shows: a data URI's payload, or the served file (None if missing)."""
    if src.startswith("data:"):
        header, _, data = src.partition(",")
        return base64.b64decode(data) if header.endswith(";base64") else unquote(data).encode()
    path = local_file(src, root)
    return path.read_bytes() if path.is_file() else None


def is_gif(src: str) -> bool:
    return urlsplit(src).path.lower().endswith(".gif") or src.startswith("data:image/gif")


def gif_frames(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return getattr(image, "n_frames", 1)


def gif_problems(facts: dict) -> list[str]:
    problems = []
    for img in facts["images"]:
        src = img["src"]
        if not is_gif(src):
            continue
        data = image_bytes(src, facts["root"])
        if not img["naturalWidth"]:
            problems.append(f"{src[:100]} did not load, {img['where']}")
        elif data is None:
            problems.append(f"{src[:100]}: no such file, {img['where']}")
        elif (frames := gif_frames(data)) < 2:
            problems.append(f"{src[:100]} has {frames} frame: it does not animate, {img['where']}")
    return problems


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value)


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    """The ids (and <a name>) of a served HTML file, as its source has them."""
    parser = _Anchors()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.ids)


def link_problems(facts: dict) -> list[str]:
    problems, root = [], facts["root"]
    for link in facts["links"]:
        fragment = unquote(urlsplit(link["href"]).fragment)
        target = local_file(link["href"], root)
        if not target.is_file():
            problems.append(f"{link['raw']} -> missing file {target.relative_to(root)}, {link['where']}")
        elif fragment and target.suffix == ".html" and fragment not in anchors(target):
            problems.append(f"{link['raw']} -> no anchor #{fragment} in {target.relative_to(root)}, {link['where']}")
    return problems


# What a traceback or a warning leaves in an output: Python's traceback header, "SomethingWarning:" as
# warnings.showwarning prints it, an exception's name ("ValueError", "KeyError"), "Error:" opening a
# line, and the logging module's upper-case levels. Plain words ("reconstruction error", "Error rate")
# do not match.
OUTPUT_PROBLEMS = re.compile(
    r"Traceback \(most recent call last\)|\b[A-Z]?[a-z]*Warning:|\b[A-Z][a-z]+(?:[A-Z][a-z]+)*Error\b"
    r"|^\s*Error:|\bWARNING\b|\bERROR\b",
    re.M,
)


def output_problems(facts: dict) -> list[str]:
    problems = [f"stderr or error output: {o['where']}" for o in facts["outputs"] if o["stderr"]]
    for output in facts["outputs"]:
        for match in OUTPUT_PROBLEMS.finditer(output["text"]):
            line = output["text"][max(0, match.start() - 60):match.end() + 60].replace("\n", " ")
            problems.append(f"'{match.group(0)}' in ...{line}..., {output['where']}")
    problems += [f"reStructuredText/MyST error rendered in the page: {where}" for where in facts["systemMessages"]]
    return problems


def test_output_patterns():
    for bad in ["Traceback (most recent call last):", "x.py:3: UserWarning: careful", "Warning: odd",
                "KeyError: 'a'", "ValueError", "Error: no data", "WARNING:root:hm", "ERROR x"]:
        assert OUTPUT_PROBLEMS.search(bad), bad
    for fine in ["reconstruction error 0.06", "Error rate of the classifier: 3%", "mean squared error",
                 "warnings were expected", "an error bar"]:
        assert not OUTPUT_PROBLEMS.search(fine), fine


def test_gif_frames_tells_a_still_from_an_animation():
    frames = [Image.new("L", (4, 4), shade) for shade in (0, 255)]
    still, animated = io.BytesIO(), io.BytesIO()
    frames[0].save(still, format="GIF")
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    uri = "data:image/gif;base64," + base64.b64encode(animated.getvalue()).decode()
    assert is_gif(uri) and is_gif("http://127.0.0.1:1/_images/a.GIF?v=1") and not is_gif("/_images/a.png")
    assert gif_frames(still.getvalue()) == 1
    assert gif_frames(image_bytes(uri, HTML)) == 2


# A page with one of each defect, laid out like the theme (a 600 px article between two margins).
_BAD_PAGE = r"""<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="still.gif">
<style>body { margin: 0 } article.bd-article { width: 600px; margin-left: 200px; padding: 0 20px }</style></head>
<body><article class="bd-article">
<h2 id="here">A section</h2>
<p>Untypeset maths \(x^2\) in the text.</p>
<img id="too-wide" src="wide.png">
<img id="broken" src="missing.png">
<img id="still" src="still.gif">
<div id="scroller" style="overflow-x: auto"><span style="display: inline-block; width: 900px">a formula</span></div>
<pre style="overflow-x: auto">code may scroll: LONG_LINE</pre>
<details><summary>Solution</summary><div id="hidden-wide" style="width: 700px">opened, too wide</div></details>
<div class="cell_output"><div class="output stream"><pre>Traceback (most recent call last):
ValueError: bad</pre></div></div>
<div class="cell_output"><div class="output stderr"><pre>training: 50%</pre></div></div>
<a href="nowhere.html">a missing page</a> <a href="#nope">a missing anchor</a> <a href="#here">fine</a>
<script>console.error("boom"); notDefined();</script>
</article></body></html>
"""


def test_the_judges_catch_known_defects(driver, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "bad.html").write_text(_BAD_PAGE.replace("LONG_LINE", "x" * 300))
    Image.new("L", (900, 10), 128).save(site / "wide.png")
    Image.new("L", (4, 4), 0).save(site / "still.gif")
    with serve(site) as url:
        facts = Book(driver, url, root=site, screenshots=tmp_path / "shots")("bad.html")
    found = {
        "console": console_problems(facts), "images": image_problems(facts), "maths": maths_problems(facts),
        "gifs": gif_problems(facts), "links": link_problems(facts), "outputs": output_problems(facts),
        "widths": facts["wide"],
    }
    text = {kind: "\n".join(lines) for kind, lines in found.items()}
    assert "boom" in text["console"] and "notDefined" in text["console"] and "missing.png" in text["console"]
    assert "missing.png" in text["images"] and "wide.png" not in text["images"]
    assert "raw TeX" in text["maths"]
    assert "still.gif has 1 frame" in text["gifs"]
    assert "nowhere.html" in text["links"] and "#nope" in text["links"] and "#here" not in text["links"]
    assert "Traceback" in text["outputs"] and "ValueError" in text["outputs"]
    assert "stderr or error output" in text["outputs"]
    # the wide image, the scrolling formula and the box in the collapsed solution; not the code
    assert len(found["widths"]) == 3, found["widths"]
    assert "too-wide" in text["widths"] and "#scroller" in text["widths"] and "#hidden-wide" in text["widths"]
    assert "needs a horizontal scrollbar" in text["widths"]


# ---------------------------------------------------------------------------------------------- each page


def test_page_settles(book, page):
    """Fonts, MathJax and images finish within the waits (a page that never settles is judged half-drawn)."""
    assert book(page)["settled"] == "ok", f"{page}: {book(page)['settled']}"


def test_no_console_errors(book, page):
    fail_with(console_problems(book(page)), "errors in the browser console", page)


def test_images_load(book, page):
    fail_with(image_problems(book(page)), "images that did not load", page)


def test_maths_typeset_offline(book, page):
    fail_with(maths_problems(book(page)), "maths problems", page)


def test_gifs_animate(book, page):
    fail_with(gif_problems(book(page)), "GIFs that do not animate", page)


def test_internal_links_resolve(book, page):
    fail_with(link_problems(book(page)), "broken internal links", page)


def test_outputs_show_no_traceback_or_warning(book, page):
    fail_with(output_problems(book(page)), "outputs with a traceback, warning or error", page)


def test_nothing_wider_than_the_column(book, page):
    fail_with(book(page)["wide"], "elements wider than the content column", page)


def test_screenshot_saved(book, page):
    shot = book(page)["screenshot"]
    assert shot.is_file(), f"{page}: no screenshot at {shot}"
    with Image.open(shot) as image:
        assert image.width == WINDOW[0] and image.height >= WINDOW[1] // 2, f"{shot}: {image.size}"
