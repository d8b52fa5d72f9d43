"""Who is watching: a live Jupyter front end, a terminal, or a batch run (the book build, papermill, a log).

Two things depend on it, and both must be right in every place the code runs:

* **progress bars** (:func:`progress_bar`): one updating text bar in a terminal; a notebook bar
  (an ipywidgets progress widget) in a live notebook; nothing at all in a batch run, whose
  output is a log or a page, where a bar would leave a trail of ``\\r`` updates or a widget;
* **interactive figures** (:mod:`genvae.book.explorer`): ipywidgets sliders in a live notebook, a
  self-contained animation anywhere else.

A widget created while the book is built is recorded by nbclient in the notebook's metadata, and
myst-nb then puts the widget state, and a widget manager script from a CDN, into the page. So
widgets are made only where a live front end will show them. A kernel cannot see its front end;
it can see who started it:

* Jupyter Server (JupyterLab, Notebook 7, nbclassic) starts every kernel with ``JPY_SESSION_NAME``
  (the notebook's path) in its environment;
* VS Code puts ``__vsc_ipynb_file__`` into the kernel's namespace, and Colab has ``google.colab``
  imported;
* nbclient (the book build, nbval) and papermill start kernels with neither.

``GENVAE_WIDGETS=1`` forces widgets (a front end this does not recognise), ``GENVAE_WIDGETS=0``
forbids them (the Makefile's book builds set it, as a second guard).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from .settings import env_flag

__all__ = ["in_kernel", "live_notebook", "widgets", "bar_kind", "progress_bar", "BAR_KINDS"]

BAR_KINDS = ("notebook", "text", "off")


def _shell() -> Any:
    """The running IPython shell, or ``None`` outside IPython."""
    if "IPython" not in sys.modules:  # never import IPython just to ask
        return None
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython half-imported
        return None
    return get_ipython()


def in_kernel(shell: Any = None) -> bool:
    """True inside a Jupyter kernel (ipykernel's shell), whoever runs it; False in a terminal IPython or Python."""
    shell = _shell() if shell is None else shell
    # Colab's shell is a subclass, hence the look along the class's ancestry
    return shell is not None and any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


def live_notebook(env: Mapping[str, str] | None = None, shell: Any = None,
                  modules: Mapping[str, object] | None = None) -> bool:
    """True in a kernel that a person's front end started (Jupyter Server, VS Code, Colab); False in a batch run.

    ``env``, ``shell`` and ``modules`` default to this process's environment, IPython shell and
    ``sys.modules``; tests pass fakes.
    """
    env = os.environ if env is None else env
    shell = _shell() if shell is None else shell
    modules = sys.modules if modules is None else modules
    if "google.colab" in modules:
        return True
    if not in_kernel(shell):
        return False
    user_ns = getattr(shell, "user_ns", None) or {}
    return bool(env.get("JPY_SESSION_NAME")) or "__vsc_ipynb_file__" in user_ns


def _have_ipywidgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def widgets(env: Mapping[str, str] | None = None, shell: Any = None, modules: Mapping[str, object] | None = None,
            have_ipywidgets: bool | None = None) -> bool:
    """Should output be ipywidgets? ``GENVAE_WIDGETS`` if set; else yes in a :func:`live_notebook` with
    ipywidgets installed."""
    env = os.environ if env is None else env
    have = _have_ipywidgets() if have_ipywidgets is None else have_ipywidgets
    forced = env_flag("GENVAE_WIDGETS", None, env, choices="1 (widgets), 0 (none) or auto")
    if forced is not None:
        return forced and have
    return have and live_notebook(env, shell, modules)


def bar_kind(env: Mapping[str, str] | None = None, shell: Any = None, modules: Mapping[str, object] | None = None,
             stream: TextIO | None = None, have_ipywidgets: bool | None = None) -> str:
    """Which progress bar fits here: ``"notebook"``, ``"text"`` or ``"off"``.

    * widgets wanted (:func:`widgets`): ``"notebook"``, one widget that updates in place;
    * a live notebook without them: ``"text"`` (Jupyter redraws a ``\\r`` line in place);
    * any other kernel (the book build, papermill, nbval): ``"off"``, since its output is a page or a file;
    * outside a kernel: ``"text"`` when ``stream`` (default stderr) is a terminal, else ``"off"``
      (a log file or CI output would keep every update).
    """
    shell = _shell() if shell is None else shell
    modules = sys.modules if modules is None else modules
    if widgets(env, shell, modules, have_ipywidgets):
        return "notebook"
    if in_kernel(shell) or "google.colab" in modules:
        return "text" if live_notebook(env, shell, modules) else "off"
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "off"


def progress_bar(total: int, desc: str = "", enabled: bool = True, kind: str | None = None, **kwargs):
    """A tqdm bar of the :func:`bar_kind` that fits here (or ``kind``), for ``total`` steps.

    The bar is cleared when it closes (``leave=False``): a finished model is reported by whoever asked
    for it (``genvae reproduce`` prints a line per model), and a notebook keeps no stale widget.
    Disabled (``enabled=False`` or kind ``"off"``), it is tqdm's no-op bar: updates cost nothing and
    nothing is written.
    """
    if kind is not None and kind not in BAR_KINDS:
        raise ValueError(f"kind must be one of {BAR_KINDS}, got {kind!r}")
    kind = "off" if not enabled else kind or bar_kind()
    options = dict(total=total, desc=desc, leave=False, **kwargs)
    if kind == "notebook":
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm(**options)
    from tqdm.std import tqdm

    options.setdefault("mininterval", 0.5)
    return tqdm(file=sys.stderr, disable=kind == "off", dynamic_ncols=True, **options)
