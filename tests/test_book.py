"""Execute every chapter of the book as a notebook; any error fails the test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from softres.figures import registry

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["intro", *re.findall(r"file:\s*book/(\w+)", (ROOT / "_toc.yml").read_text())]


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    """One figure-data cache for the session, as the book build has: the ledger reuses the chapters' data."""
    return tmp_path_factory.mktemp("softres-data")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_executes(chapter, monkeypatch, data_cache):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # never let Agg hide the figures
    monkeypatch.setenv("SOFTRES_DATA_CACHE", str(data_cache))
    nb = jupytext.read(ROOT / "book" / f"{chapter}.md")
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(ROOT / "book")}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # Each registered figure of the chapter is glued as a PNG (an Agg backend would glue text instead).
    pngs = sum(any(k.endswith("image/png") for k in o.get("data", {})) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))
    assert pngs >= sum(s.chapter == chapter for s in registry().values())
