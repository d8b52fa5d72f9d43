"""nbval, as ``make nbval`` runs it, is a check that can fail: it reruns a notebook and compares the outputs.

The book's chapters are checked this way against the run their pages were built from. Here a tiny notebook
shows that the check catches an unseeded random draw, passes a seeded one, and that the sanitize file masks
object addresses without hiding a changed number.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

SANITIZE = Path(__file__).resolve().parents[1] / "book_tests" / "nbval_sanitize.cfg"


def _executed(tmp_path: Path, name: str, code: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE), str(path)],
                          capture_output=True, text=True, cwd=path.parent, timeout=300)


@pytest.mark.slow
def test_nbval_fails_on_an_unseeded_draw_and_passes_a_seeded_one(tmp_path):
    unseeded = _nbval(_executed(tmp_path, "unseeded", "import random\nprint(random.random())"))
    assert unseeded.returncode == 1 and "1 failed" in unseeded.stdout, unseeded.stdout[-2000:]
    seeded = _nbval(_executed(tmp_path, "seeded", "import random\nprint(random.Random(0).random())"))
    assert seeded.returncode == 0 and "1 passed" in seeded.stdout, seeded.stdout[-2000:]


@pytest.mark.slow
def test_the_sanitize_file_masks_addresses_but_not_numbers(tmp_path):
    address = _nbval(_executed(tmp_path, "address", "print(object())"))  # <object object at 0x7f...>: new each run
    assert address.returncode == 0, address.stdout[-2000:]
    nb_path = _executed(tmp_path, "number", "print('test MSE 0.0403')")
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].outputs[0]["text"] = "test MSE 0.0636\n"  # as if the run had measured another number
    nbformat.write(nb, nb_path)
    changed = _nbval(nb_path)
    assert changed.returncode == 1 and "0.0636" in changed.stdout, changed.stdout[-2000:]
