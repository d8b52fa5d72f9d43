"""A Sphinx extension of this book: each page loads every inline script once.

sphinx-thebe and sphinx-togglebutton register inline scripts (``const THEBE_JS_URL = ...``) that reach a
page twice, once as registered with Sphinx and once more through the HTML builder (one copy with the
filename ``None``, the other with ``""``, so Sphinx's own duplicate check misses it). The second
``const`` declaration is a SyntaxError in every reader's console; the browser test (browser_tests/)
fails on it. This handler drops repeated scripts from each page's list, keeping the first copy.
"""

from __future__ import annotations


def _key(script) -> tuple:
    return (script.filename or "", tuple(sorted((name, str(value)) for name, value in script.attributes.items())))


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    scripts[:] = unique  # the builder restores its own list after each page


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)  # after extensions add theirs
    return {"parallel_read_safe": True, "parallel_write_safe": True}
