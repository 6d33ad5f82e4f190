"""Rerunning a chapter the way the README says: a plain notebook with its figures and numbers, nothing in book/."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from softres import figures

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "problem"  # a cheap chapter with three figures


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The documented command, run as a user runs it (a fresh process, from the repository's root)."""
    out = tmp_path_factory.mktemp("notebooks")
    before = _snapshot(ROOT / "book")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "SOFTRES_DATA_CACHE")}
    run = subprocess.run([sys.executable, "-m", "softres", "notebook", CHAPTER, "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    return out / f"{CHAPTER}.ipynb", before


def test_export_writes_nothing_into_the_book(exported):
    path, before = exported
    assert path.is_file()
    assert _snapshot(ROOT / "book") == before


def test_exported_chapter_shows_its_figures_as_images(exported):
    from PIL import Image

    nb = nbformat.read(exported[0], as_version=4)
    nbformat.validate(nb)
    images = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for name, bundle in cell.get("attachments", {}).items():
                assert f"attachment:{name}" in cell.source  # shown where the book shows it
                images += list(bundle.items())
    labels = [s.label for s in figures.registry().values() if s.chapter == CHAPTER]
    assert len(images) == len(labels) >= 1
    for mime, image in images:
        if mime == "image/svg+xml":
            assert "<svg" in image and "<path" in image
        else:
            width, height = Image.open(io.BytesIO(base64.b64decode(image))).size
            assert width > 200 and height > 100


def test_exported_chapter_shows_its_numbers_as_text(exported):
    nb = nbformat.read(exported[0], as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    # the numbers, recomputed here from the registry and formatted as the chapter's roles ask
    domain = figures.compute("problem-domain")
    seed = figures.registry()["problem-domain"].seed
    assert f"{100 * domain['outside_fraction']:.1f}% of the square" in text
    assert f"{domain['grid']} × {domain['grid']} grid" in text
    assert f"{seed}), on a" in text
    checks = figures.compute("problem-checks")
    assert f"{checks['trials']} random draws" in text
    # nothing a plain front end would show as raw MyST
    for raw in ("{glue", "{prf:", "{cite", "{doc}", "{ref}", ")=\n"):
        assert raw not in text, raw
    assert "**Definition 1.1" in text  # prf blocks become bold headed blocks
    assert "Song et al. (2023)" in text  # {cite:t}
    hidden = [k for c in nb.cells if c.cell_type == "code" for o in c.outputs for k in o.get("data", {})
              if k.startswith("application/papermill.record/")]
    assert not hidden  # glue outputs a plain front end cannot render are gone


def test_unknown_chapter_is_rejected():
    from softres import notebook

    with pytest.raises(ValueError, match="chapter must be one of"):
        notebook.export("no-such-chapter", "unused")
    with pytest.raises(ValueError, match="source folder"):
        notebook.export("intro", notebook.book_dir())


def test_ipynb_leftovers_in_book_are_excluded_from_the_build():
    """`jupytext --to ipynb book/x.md` leaves book/x.ipynb; the build must not see two sources for one page."""
    from sphinx.util.matching import Matcher

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert Matcher(config["exclude_patterns"])("book/psd.ipynb")
    assert not Matcher(config["exclude_patterns"])("book/psd.md")


def test_lab_opens_a_chapter_as_a_notebook_and_saves_only_the_md(tmp_path):
    """What `make lab` configures: jupytext's contents manager, MyST only (no paired .ipynb)."""
    pytest.importorskip("jupyter_server", reason="the `notebook` extra (make lab) is not installed")
    from jupytext import TextFileContentsManager

    (tmp_path / "psd.md").write_text((ROOT / "book" / "psd.md").read_text())
    cm = TextFileContentsManager(root_dir=str(tmp_path))
    cm.formats = "md:myst"  # as the Makefile's lab target sets it
    model = cm.get("psd.md")
    assert model["type"] == "notebook"
    assert sum(c["cell_type"] == "code" for c in model["content"]["cells"]) >= 1
    cm.save(model, "psd.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["psd.md"]
    assert "format_name: myst" in (tmp_path / "psd.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "jupytext.TextFileContentsManager" in makefile and "--ContentsManager.formats=md:myst" in makefile


def test_plain_markdown_rewrites_each_myst_construct():
    from softres import notebook

    ctx = notebook._Context(
        glue={"n": {"text/plain": "1234"}, "err": {"text/plain": "0.000123"}, "fig-a": {"image/png": "iVBOR"}},
        bib={"k": {"author": "Song, Zhao and Wang, Weixin and Yin, Junze", "year": "2023"}},
        titles={"psd": "Positive semidefiniteness"})
    source = "\n".join([
        "(sec-x)=", "## Heading", "",
        "For {glue:text}`n` draws the error is {glue:text}`err:.1e`, see {cite:t}`k` and {cite}`k`.", "",
        "```{prf:lemma} 7.1 (a bound)", ":label: lemma-7-1", ":nonumber:", "", "Body with $x$.", "```", "",
        "As {prf:ref}`lemma-7-1` and {ref}`the heading <sec-x>` in {doc}`psd`.", "",
        "```bash", "{glue:text}`untouched` inside a code fence", "```", "",
        "```{glue:figure} fig-a", ":name: fig-a", "", "Caption with {glue:text}`n`.", "```",
    ])
    notebook._collect_labels(source, ctx.labels)
    out = notebook.plain_markdown(source, ctx)
    assert "(sec-x)=" not in out
    assert "For 1234 draws the error is 1.2e-04, see Song et al. (2023) and (Song et al., 2023)." in out
    assert "**Lemma 7.1 (a bound).**\n\nBody with $x$." in out
    assert "As Lemma 7.1 and the heading in [Positive semidefiniteness](psd.ipynb)." in out
    assert "{glue:text}`untouched` inside a code fence" in out
    assert "](attachment:fig-a.png)" in out and "**Figure.** Caption with 1234." in out
    assert ctx.attachments == {"fig-a.png": {"image/png": "iVBOR"}}
    with pytest.raises(KeyError, match="missing"):
        notebook.plain_markdown("{glue:text}`missing`", ctx)
