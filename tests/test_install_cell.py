"""Each chapter's first code cell installs genvae where it is missing (Colab, a bare Jupyter) and does nothing
where it is installed (the book build, a checkout with ``pip install -e .``).

The repository URL lives in one place, ``_config.yml`` (``repository.url``, which the Colab and Binder
buttons use too). The cells are written from it: after changing the URL, run
``python tests/test_install_cell.py --write``. The test fails while any chapter's cell differs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]*.ipynb"))
MARK = "# Opened in Colab"  # how the install cell is recognised

TEMPLATE = '''\
# Opened in Colab, or in a Jupyter without genvae? This installs the book's package from its repository
# (GENVAE_SOURCE may name another source: a local path or a wheel). Where genvae is installed it does nothing.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("genvae") is None:
    source = os.environ.get("GENVAE_SOURCE", "git+{url}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], check=True)'''


def repository_url() -> str:
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", (ROOT / "_config.yml").read_text(), flags=re.M)
    assert match, "_config.yml has no repository.url"
    return match.group(1)


def install_cell() -> str:
    return TEMPLATE.format(url=repository_url())


def _cell(nb: dict) -> dict:
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith(MARK)]
    assert len(cells) == 1, f"expected one install cell (starting {MARK!r}), found {len(cells)}"
    return cells[0]


def write() -> None:
    """Write :func:`install_cell` into every chapter (the cell is tagged ``remove-cell``: not on the page)."""
    for path in CHAPTERS:
        nb = json.loads(path.read_text())
        cell = _cell(nb)
        cell["source"] = install_cell().splitlines(keepends=True)
        cell["metadata"]["tags"] = ["remove-cell"]
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_install_cell_is_written_from_the_config(path):
    nb = json.loads(path.read_text())
    cell = _cell(nb)
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert cell is first_code, "the install cell must come before any code that imports genvae"
    assert "".join(cell["source"]) == install_cell(), (
        f"{path.name}'s install cell differs from the one made from _config.yml's repository.url "
        f"({repository_url()}): run `python tests/test_install_cell.py --write`")
    assert "remove-cell" in cell["metadata"].get("tags", [])


def test_the_install_cell_does_nothing_where_genvae_is_installed(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    exec(install_cell(), {})
    assert calls == []


@pytest.mark.slow
def test_the_install_cell_installs_genvae_where_it_is_missing(tmp_path):
    """In a fresh virtual environment without genvae, the cell installs it from GENVAE_SOURCE (here a wheel
    built from this checkout; in Colab the repository URL). No dependencies are installed (PIP_NO_DEPS):
    Colab has torch already, and this machine has no network for them."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "genvae", src / "genvae", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", src)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                    "-w", str(wheels)], check=True, capture_output=True)
    wheel = next(wheels.glob("genvae-*.whl"))
    base = getattr(sys, "_base_executable", sys.executable)
    venv = tmp_path / "venv"
    subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    probe = "import importlib.util; print(importlib.util.find_spec('genvae') is not None)"
    env = {**os.environ, "GENVAE_SOURCE": str(wheel), "PIP_NO_DEPS": "1", "PYTHONPATH": ""}
    before = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert before.stdout.strip() == "False", before.stderr
    ran = subprocess.run([str(python), "-c", install_cell()], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    after = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert after.stdout.strip() == "True", after.stderr


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
        print(f"install cells written from {repository_url()} into {len(CHAPTERS)} chapters")
    else:
        sys.exit("usage: python tests/test_install_cell.py --write")
