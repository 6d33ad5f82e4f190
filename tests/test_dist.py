"""The archive for citing (``make dist``), its version and commit, the PDF of the book, the LICENSE."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

import softres
from softres import dist, figures

ROOT = Path(__file__).resolve().parents[1]
GIT = shutil.which("git")


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_commit_names_the_checkout_and_marks_changes(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "f.txt").write_text("one\n")
    _git(tmp_path, "add", "f.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    sha = _git(tmp_path, "rev-parse", "HEAD")
    assert dist.commit(tmp_path) == sha[:10]
    (tmp_path / "f.txt").write_text("two\n")
    assert dist.commit(tmp_path) == sha[:10] + "-dirty"
    assert dist.release(tmp_path) == f"softres-{softres.__version__}-{sha[:10]}-dirty"


def test_commit_without_a_repository_is_unknown(tmp_path):
    assert dist.commit(tmp_path) == "unknown"


def test_version_is_the_one_pyproject_declares():
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M).group(1)
    assert softres.__version__ == version


def _fake_parts(root: Path) -> dict:
    (root / "site" / "book").mkdir(parents=True)
    (root / "site" / "index.html").write_text("<html></html>")
    (root / "site" / "book" / "psd.html").write_text("<html></html>")
    (root / "nb").mkdir()
    (root / "nb" / "psd.ipynb").write_text("{}")
    (root / "data" / "psd").mkdir(parents=True)
    (root / "data" / "psd" / "psd-pieces.csv").write_text("variable,index,value\n")
    (root / "book.pdf").write_bytes(b"%PDF-1.4\n")
    (root / "CITATION.cff").write_text("cff-version: 1.2.0\n")
    return {"site": root / "site", "pdf": root / "book.pdf", "notebooks": root / "nb", "figure_data": root / "data",
            "files": [root / "CITATION.cff"]}


def test_archive_holds_site_pdf_notebooks_data_and_citation(tmp_path):
    parts = _fake_parts(tmp_path / "in")
    archive = dist.build(tmp_path / "out", name="softres-9.9-abc", **parts)
    assert archive == tmp_path / "out" / "softres-9.9-abc.zip"
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    assert names == {"softres-9.9-abc/site/index.html", "softres-9.9-abc/site/book/psd.html",
                     "softres-9.9-abc/softres-9.9-abc.pdf", "softres-9.9-abc/notebooks/psd.ipynb",
                     "softres-9.9-abc/figure-data/psd/psd-pieces.csv", "softres-9.9-abc/CITATION.cff"}
    default = dist.build(tmp_path / "out", **parts)
    assert default.name == dist.release() + ".zip" and softres.__version__ in default.name


def test_archive_refuses_missing_parts(tmp_path):
    parts = _fake_parts(tmp_path / "in")
    shutil.rmtree(parts["notebooks"])
    with pytest.raises(FileNotFoundError, match="notebooks"):
        dist.build(tmp_path / "out", **parts)
    parts = _fake_parts(tmp_path / "in2")
    parts["files"].append(tmp_path / "LICENSE")
    with pytest.raises(FileNotFoundError, match="LICENSE"):
        dist.build(tmp_path / "out", **parts)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_license_is_mit_as_pyproject_and_citation_say():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "softres developers" in text
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^license:\s*MIT\s*$", (ROOT / "CITATION.cff").read_text(), flags=re.M)


def test_landing_page_glues_version_and_commit():
    intro = (ROOT / "book" / "intro.md").read_text()
    assert "{glue:text}`softres-version`" in intro and "{glue:text}`softres-commit`" in intro
    assert "execution_mode: force" in intro  # never a cached (older) commit


# ---------------------------------------------------------------------------------------------------
# PDF: printed by headless Chromium; skipped where it is absent

CHROMIUM = dist.chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install "
                                    "chromium); the PDF of the book needs it")


def _pdf_stats(data: bytes) -> tuple[int, int]:
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", data))
    images = len(re.findall(rb"/Subtype\s*/Image", data))
    return pages, images


@needs_chromium
def test_pdf_prints_a_page_without_code_cells(tmp_path):
    import base64

    png = base64.b64encode(_tiny_png()).decode()
    code = "<div class='cell_input'>" + "<pre>x = 1</pre>" * 400 + "</div>"
    page = (f"<html><head><title>t</title></head><body><h1>Title</h1><p>text</p>{code}"
            f"<figure><img src='data:image/png;base64,{png}' width='300'></figure></body></html>")
    (tmp_path / "index.html").write_text(page)
    out = dist.pdf(tmp_path, tmp_path / "out" / "book.pdf", budget_ms=2000)
    pages, images = _pdf_stats(out.read_bytes())
    assert pages == 1  # four hundred code lines would fill pages: the print style omits them
    assert images == 1
    assert not (tmp_path / "_print.html").exists()  # the printable copy is removed


def _tiny_png() -> bytes:
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_pdf_without_the_single_page_book_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="singlehtml"):
        dist.pdf(tmp_path, tmp_path / "x.pdf")


BUILT_PDF = ROOT / "_build" / "pdf" / "softres.pdf"


@pytest.mark.skipif(not BUILT_PDF.is_file() and os.environ.get("SOFTRES_REQUIRE_BROWSER") != "1",
                    reason="the book's PDF is not built (make pdf)")
def test_built_pdf_has_every_figure_typeset_math_and_the_bibliography():
    """Runs after ``make pdf`` (CI: ``make browser-test``, where a missing PDF fails)."""
    assert BUILT_PDF.is_file(), "the book's PDF is not built (make pdf)"
    data = BUILT_PDF.read_bytes()
    pages, images = _pdf_stats(data)
    assert images >= len(figures.registry())
    assert pages >= len(re.findall(r"file:\s*book/", (ROOT / "_toc.yml").read_text()))
    assert b"MJXTEX" in data or b"MathJax" in data  # MathJax's fonts: the maths was typeset, not raw TeX
    single = (ROOT / "_build" / "singlehtml" / "book" / "intro.html")
    html = single.read_text() if single.is_file() else (ROOT / "_build" / "singlehtml" / "index.html").read_text()
    assert "Song" in html and 'id="references"' in html  # the bibliography is part of the printed page


def test_benchmark_says_slower_when_softres_is_slower():
    """The solver benchmark's last column: a ratio below one is "slower", never "0.5x faster"."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("bench_solvers", ROOT / "benchmarks" / "bench_solvers.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.speed_words(1.0, 2.0) == "2.0x slower"
    assert bench.speed_words(3.0, 1.0) == "3.0x faster"
    assert bench.speed_words(np.inf, 1.0) == "scipy did not reach x*"
    assert bench.speed_words(1.0, np.inf) == "softres did not reach x*"
