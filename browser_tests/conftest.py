"""The built book, opened page by page in headless Chromium (Selenium + Debian's chromium-driver).

One HTTP server on 127.0.0.1 serves the built HTML (as a reader's browser would get it, not file://), and
one browser session opens every page in turn. Each page is loaded once: :class:`Book` waits for MathJax
and the images, collects everything the tests judge in one JavaScript call, reads the browser's console
and saves a full-page screenshot to ``_build/screenshots/<page>.png``. The tests in test_pages.py then
judge the collected facts, one aspect per test, so a failure names the page and the problem.

The build is not made here: ``make book-quick`` makes it, ``make browser`` runs these tests. A missing
build, browser or driver is an error, never a skip. Set BOOK_HTML to test another build folder.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "quick" / "_build" / "html")).resolve()
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")
WINDOW = (1280, 900)  # a laptop screen: the theme shows both sidebars and a content column of about 680 px
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}
# Screenshots stop here: chapters are 3,000-20,000 px tall, the generated API reference about 80,000 px
# (13 MB of PNG, more than it is worth). Every page is checked whole whatever its screenshot shows.
MAX_SHOT = 30_000


def built_pages() -> list[str]:
    """Every HTML page of the build, as paths relative to its root ("book/intro.html")."""
    if not (HTML / "book" / "intro.html").is_file():
        pytest.fail(
            f"no built book at {HTML} (book/intro.html is missing): run `make book-quick` first, "
            "or point BOOK_HTML at a build",
            pytrace=False,
        )
    pages = []
    for path in sorted(HTML.rglob("*.html")):
        rel = path.relative_to(HTML)
        if rel.parts[0] in SKIP_DIRS or rel.as_posix() == "index.html":  # index.html only redirects
            continue
        pages.append(rel.as_posix())
    return pages


def pytest_generate_tests(metafunc):
    if "page" in metafunc.fixturenames:
        metafunc.parametrize("page", built_pages())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the tests report what matters
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """An HTTP server for ``directory`` on a free port of 127.0.0.1, in a thread; yields its root URL."""
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def server():
    with serve(HTML) as url:
        yield url


@pytest.fixture(scope="session")
def driver():
    for path, package in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]:
        if not Path(path).is_file():
            pytest.fail(f"{path} not found: install Debian's {package} package (.ci/run does)", pytrace=False)
    # Widths depend on the font: the theme's text falls back to the system's sans-serif, DejaVu Sans on Debian.
    if shutil.which("fc-match") and "DejaVu Sans" not in subprocess.run(
        ["fc-match", "sans-serif"], capture_output=True, text=True).stdout:
        pytest.fail("sans-serif is not DejaVu Sans here: install Debian's fonts-dejavu-core (.ci/run does), "
                    "or the widths judged differ from CI's", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars", "--force-device-scale-factor=1",
        "--no-first-run", "--disable-extensions", "--disable-background-networking",
    ]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver comes from Debian's chromium-driver, built with the browser: never downloaded.
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    browser.set_page_load_timeout(60)
    browser.set_script_timeout(60)
    # Runs before any script of every page: records uncaught errors, rejected promises and failed loads.
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _ERROR_HOOK})
    yield browser
    browser.quit()


_ERROR_HOOK = r"""
window.__pageErrors = [];
window.addEventListener("error", (e) => {
  const t = e.target;
  if (t && t !== window && (t.src || t.href))
    window.__pageErrors.push(`failed to load ${t.tagName.toLowerCase()} ${t.src || t.href}`);
  else window.__pageErrors.push(`uncaught error: ${e.message} (${e.filename}:${e.lineno})`);
}, true);
window.addEventListener("unhandledrejection", (e) => window.__pageErrors.push(`unhandled rejection: ${e.reason}`));
"""


class Book:
    """Loads each page once and keeps what the tests judge. ``root`` is the folder that ``server`` serves."""

    def __init__(self, driver, server: str, root: Path = HTML, screenshots: Path = SCREENSHOTS):
        self.driver, self.server, self.root, self.screenshots, self._pages = driver, server, root, screenshots, {}
        screenshots.mkdir(parents=True, exist_ok=True)
        for old in screenshots.glob("*.png"):  # no stale picture of a page that is gone
            old.unlink()

    def __call__(self, page: str) -> dict:
        if page not in self._pages:
            try:
                self._pages[page] = self._load(page)
            except Exception as error:  # every test of the page reports it; the page is not loaded again
                self._pages[page] = error
        if isinstance(self._pages[page], Exception):
            raise self._pages[page]
        return self._pages[page]

    def _load(self, page: str) -> dict:
        d = self.driver
        if d.current_url.startswith(self.server):  # every page is judged as a reader's first visit
            d.execute_script("localStorage.clear(); sessionStorage.clear();")
        d.get_log("browser")  # drop what earlier pages left
        d.get(self.server + page)
        settled = self._settle()
        screenshot = self._screenshot(page)  # the page as a reader first sees it
        # Then every collapsed part (hidden code cells, exercise solutions) is opened: what a reader can open
        # is judged too, a formula in a solution as much as one in the text.
        d.execute_script("document.querySelectorAll('details').forEach((el) => { el.open = true; });")
        settled = settled if settled != "ok" else self._settle()
        facts = d.execute_script(_COLLECT)
        facts["console"] = [e for e in d.get_log("browser") if e.get("level") == "SEVERE" and not _favicon(e, facts)]
        facts.update(settled=settled, screenshot=screenshot, root=self.root)
        return facts

    def _settle(self) -> str:
        from selenium.common.exceptions import TimeoutException

        try:
            return self.driver.execute_async_script(_SETTLE)
        except TimeoutException:
            return "timed out waiting for MathJax, fonts and images"

    def _screenshot(self, page: str) -> Path:
        """The whole page, top to bottom, at the window's width (the API reference: its first MAX_SHOT px)."""
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "optimizeForSpeed": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], MAX_SHOT), "scale": 1},
        })
        path = self.screenshots / f"{Path(page).stem}.png"  # book/07_multistage_vae.html -> 07_multistage_vae.png
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def _favicon(entry: dict, facts: dict) -> bool:
    """The browser's own request for /favicon.ico, made when a page names no icon: not the page's error."""
    return not facts["icon"] and entry.get("source") == "network" and "/favicon.ico " in entry.get("message", "")


@pytest.fixture(scope="session")
def book(driver, server):
    return Book(driver, server)


# Waits until the page has settled: web fonts loaded, MathJax's first typesetting done, every image
# loaded or failed (lazy images are made eager first). Returns "ok" or what it gave up on.
_SETTLE = r"""
const done = arguments[arguments.length - 1];
const waitFor = (promise, ms, what) => Promise.race([promise.then(() => null),
  new Promise((r) => setTimeout(() => r(`${what} not done after ${ms / 1000} s`), ms))]);
Array.from(document.images).forEach((img) => { img.loading = "eager"; });
// Polled rather than awaited once: a script may give an image its src late (matplotlib's jshtml animations do).
const imagesDone = () => Array.from(document.images).every((img) => !img.getAttribute("src") || img.complete);
const imagesLoaded = new Promise((resolve) => {
  const poll = () => imagesDone() ? resolve() : setTimeout(poll, 50);
  poll();
});
const mathjax = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
Promise.all([waitFor(document.fonts.ready, 20000, "fonts"), waitFor(mathjax, 40000, "MathJax"),
             waitFor(imagesLoaded, 20000, "images")])
  .then((r) => done(r.filter(Boolean).join("; ") || "ok"));
"""

# Everything the tests judge, read from the page in one call.
_COLLECT = r"""
// Cutting a string can split a surrogate pair (MathJax's italic letters lie outside the BMP); the driver
// cannot pass a lone surrogate back, so every cut goes through cut().
const cut = (s, a, b) => s.slice(Math.max(0, a), b).toWellFormed();
const describe = (el) => {
  const id = el.id ? `#${el.id}` : "";
  const classes = typeof el.className === "string" ? el.className.trim().split(/\s+/).filter(Boolean) : [];
  const cls = classes.length ? "." + classes.slice(0, 3).join(".") : "";
  const text = cut((el.innerText || el.textContent || "").trim().replace(/\s+/g, " "), 0, 80);
  const heading = (() => {  // the section the element sits in, to find it in the page
    let node = el;
    while (node) {
      let sib = node.previousElementSibling;
      while (sib) { if (/^H[1-6]$/.test(sib.tagName)) return sib.innerText.replace(/#$/, "").trim();
                    const h = sib.querySelector && sib.querySelector("h1,h2,h3,h4,h5,h6");
                    if (h) return h.innerText.replace(/#$/, "").trim(); sib = sib.previousElementSibling; }
      node = node.parentElement;
    }
    return "";
  })();
  return `<${el.tagName.toLowerCase()}${id}${cls}> in section "${heading}"${text ? `: "${text}"` : ""}`;
};

// -- images
const images = Array.from(document.images).map((img) => ({
  src: img.currentSrc || img.getAttribute("src") || "",
  complete: img.complete, naturalWidth: img.naturalWidth, visible: img.checkVisibility(),
  where: describe(img),
}));

// -- maths: every math node typeset, no MathJax error, no TeX left in the visible text
const mathNodes = Array.from(document.querySelectorAll(".math"));
const mathjaxScript = Array.from(document.scripts).map((s) => s.src).find((s) => /mathjax/i.test(s)) || null;
const untypeset = mathNodes.filter((m) => !m.querySelector("mjx-container")).map(describe);
const mathErrors = Array.from(document.querySelectorAll("mjx-merror"))
  .map((e) => describe(e.closest("mjx-container") || e));
const SKIP_TEXT = "pre, code, script, style, textarea, mjx-container, mjx-assistive-mml, .highlight, kbd, samp, .sig";  // .sig: API signatures are code
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const visibleText = [];
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const el = n.parentElement;
  if (!el || el.closest(SKIP_TEXT) || !el.checkVisibility()) continue;
  if (n.textContent.trim()) visibleText.push(n.textContent);
}
const rawTex = [];
// Delimiters and commands of TeX that MathJax should have consumed, and $...$ that dollarmath did not parse.
const TEX = /\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\[a-zA-Z]{2,}|\$[^$\s][^$]*\$/g;
const joined = visibleText.join(" ");  // a formula split over text nodes is still seen
let last = -1000;
for (const m of joined.matchAll(TEX)) {
  if (m.index - last < 60) continue;  // one report per place
  last = m.index;
  rawTex.push(cut(joined, m.index - 40, m.index + 60).replace(/\s+/g, " "));
  if (rawTex.length >= 10) break;
}

// -- links: every same-origin href, resolved
const links = Array.from(document.querySelectorAll("a[href]"))
  .filter((a) => a.origin === location.origin && !/^(javascript|mailto):/.test(a.getAttribute("href")))
  .map((a) => ({href: a.href, raw: a.getAttribute("href"), where: describe(a)}));

// -- outputs of executed cells. Source listings that a cell displays (plots.source: Python highlighted as
// Python) are program text, where "raise ValueError" is no error; tracebacks and stderr have classes of their own.
const ERROR_OUTPUT = ".stderr, .traceback, .output_error, .error";
const LISTING = "div[class*='highlight-python'], div.highlight-ipython3, div.highlight-default";
const outputText = (o) => {
  const copy = o.cloneNode(true);
  copy.querySelectorAll(LISTING).forEach((l) => l.remove());
  return (copy.textContent || "").toWellFormed();
};
const outputs = Array.from(document.querySelectorAll(".cell_output, .output, .nboutput"))
  .filter((o) => !o.parentElement.closest(".cell_output, .output, .nboutput"))
  .map((o) => ({text: outputText(o), where: describe(o),
                stderr: o.matches(ERROR_OUTPUT) || !!o.querySelector(ERROR_OUTPUT)}));
const systemMessages = Array.from(document.querySelectorAll(".system-message, .problematic")).map(describe);

// -- widths: nothing may stick out of the article's content column, and no scroll container other than
// a code block may need a horizontal scrollbar (see test_pages.py for why)
const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
const box = article.getBoundingClientRect(), cs = getComputedStyle(article);
const left = box.left + parseFloat(cs.paddingLeft), right = box.right - parseFloat(cs.paddingRight);
const TOL = 1;  // px: sub-pixel rounding
const reported = [];
const wide = [];
const isCode = (el) => el.matches("pre") || !!el.closest("pre, div.highlight");
const clippedInside = (el) => {  // an ancestor within the article clips or scrolls it: that ancestor is judged
  for (let a = el.parentElement; a && a !== article; a = a.parentElement)
    if (getComputedStyle(a).overflowX !== "visible") return true;
  return false;
};
for (const el of article.querySelectorAll("*")) {
  if (reported.some((r) => r.contains(el))) continue;
  if (!el.checkVisibility()) continue;
  const b = el.getBoundingClientRect();
  if (b.width === 0 || b.height === 0) continue;
  const ox = getComputedStyle(el).overflowX;
  if ((ox === "auto" || ox === "scroll") && !isCode(el) && el.scrollWidth > el.clientWidth + TOL) {
    wide.push(`${describe(el)} needs a horizontal scrollbar: content ${el.scrollWidth} px in ${el.clientWidth} px`);
    reported.push(el);
  } else if ((b.right > right + TOL || b.left < left - TOL) && !clippedInside(el)) {
    const px = (a, b) => `${Math.round(a)}-${Math.round(b)} px`;
    wide.push(`${describe(el)} spans ${px(b.left, b.right)}, the column ${px(left, right)}`);
    reported.push(el);
  }
}

return {
  url: location.href, title: document.title, icon: !!document.querySelector("link[rel~='icon']"),
  pageErrors: window.__pageErrors || [],
  images, mathNodes: mathNodes.length, mathjaxScript, mathjaxLoaded: !!(window.MathJax && MathJax.startup),
  untypeset, mathErrors, rawTex, links, outputs, systemMessages, wide,
  column: [left, right],
};
"""
