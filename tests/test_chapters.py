"""genvae.chapters: the chapters executed as Jupyter does, side by side, and handed to the book build."""

from __future__ import annotations

import sys

import nbformat
import pytest

from genvae import chapters
from genvae.cli import main


def _book(root, cells_by_name: dict[str, list[str]]):
    """A tiny book: _toc.yml listing one notebook per entry of ``cells_by_name`` (code cells)."""
    (root / "book").mkdir(parents=True)
    lines = ["format: jb-book", "root: book/intro", "chapters:"]
    for name, cells in cells_by_name.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "book" / f"{name}.ipynb")
        lines.append(f"  - file: book/{name}")
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_toc.yml").write_text("\n".join(lines) + "\n")
    return root


def test_chapter_paths_follow_the_toc_and_filter_by_name(tmp_path):
    root = _book(tmp_path, {"02_b": ["1"], "01_a": ["1"]})
    assert [p.name for p in chapters.chapter_paths(root)] == ["02_b.ipynb", "01_a.ipynb"]  # the toc's order
    assert [p.name for p in chapters.chapter_paths(root, ["01"])] == ["01_a.ipynb"]
    with pytest.raises(ValueError, match="no chapter matches 'nosuch'; chapters: 02_b, 01_a"):
        chapters.chapter_paths(root, ["nosuch"])
    with pytest.raises(FileNotFoundError, match="_toc.yml"):
        chapters.chapter_paths(tmp_path / "book")


def test_the_real_book_lists_every_chapter():
    names = [p.stem for p in chapters.chapter_paths()]
    assert names[0].startswith("01_") and any(n.startswith("11_") for n in names)


def test_plan_jobs_one_kernel_per_cpu_never_more_than_chapters():
    assert chapters.plan_jobs(11, cpus=2) == (2, 1)
    assert chapters.plan_jobs(11, cpus=8) == (8, 1)
    assert chapters.plan_jobs(3, cpus=8) == (3, 2)
    assert chapters.plan_jobs(11, cpus=8, jobs=2) == (2, 4)
    assert chapters.plan_jobs(0, cpus=2) == (1, 2)


@pytest.mark.slow
def test_execute_all_runs_side_by_side_keeps_a_failed_run_and_fills_the_build_cache(tmp_path):
    from jupyter_cache import get_cache

    root = _book(tmp_path, {"01_ok": ["import os\nprint(os.getcwd())", "6 * 7"],
                            "02_bad": ["x = 1", "raise ValueError('broken on purpose')", "print('never')"]})
    sources = chapters.chapter_paths(root)
    logged = []
    runs = chapters.execute_all(sources, tmp_path / "out", jobs=2, cwd=root / "book", log=logged.append)
    ok, bad = runs
    assert ok.ok and ok.source.name == "01_ok.ipynb" and not bad.ok and "broken on purpose" in bad.error
    assert any("02_bad" in line and "FAILED" in line for line in logged)
    done = nbformat.read(ok.executed, as_version=4)
    assert done.cells[0].outputs[0]["text"].strip() == str(root / "book")  # the kernel ran in book/, as Jupyter
    assert done.cells[1].outputs[0]["data"]["text/plain"] == "42"
    kept = nbformat.read(bad.executed, as_version=4)  # the failed run is written, its error included
    assert kept.cells[1].outputs[-1]["output_type"] == "error" and kept.cells[2].get("outputs") == []

    cache_dir = chapters.build_cache_path(tmp_path / "build")
    assert chapters.fill_build_cache(runs, cache_dir) == 1
    cache = get_cache(str(cache_dir))
    record = cache.match_cache_notebook(nbformat.read(sources[0], as_version=4))  # what the build looks up
    assert record.uri == str(sources[0].resolve())
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(sources[1], as_version=4))
    # some chapters again: only theirs are replaced (a failed run leaves its chapter to the build)
    assert chapters.fill_build_cache([bad], cache_dir, replace_all=False) == 0
    assert get_cache(str(cache_dir)).match_cache_notebook(nbformat.read(sources[0], as_version=4)).uri == record.uri
    assert chapters.fill_build_cache([chapters.ChapterRun(ok.source, ok.executed, 0.0, "failed")], cache_dir,
                                     replace_all=False) == 0
    with pytest.raises(KeyError):
        get_cache(str(cache_dir)).match_cache_notebook(nbformat.read(sources[0], as_version=4))
    # the whole book again: an older run never lingers
    chapters.fill_build_cache(runs, cache_dir)
    assert chapters.fill_build_cache([], cache_dir) == 0
    with pytest.raises(KeyError):
        get_cache(str(cache_dir)).match_cache_notebook(nbformat.read(sources[0], as_version=4))


def test_the_command_refuses_an_unknown_chapter(capsys):
    assert main(["chapters", "no_such_chapter"]) == 2
    assert "genvae: error: no chapter matches 'no_such_chapter'" in capsys.readouterr().err
