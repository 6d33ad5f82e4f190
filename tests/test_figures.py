"""The figure registry, the command line, and the citation metadata."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from softres import figures
from softres.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
TOC_CHAPTERS = re.findall(r"file:\s*book/(\w+)", (ROOT / "_toc.yml").read_text())


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str):
        return a == b
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


def test_registry_entries_point_at_chapters_and_labels():
    assert figures.registry(), "the registry is empty"
    for spec in figures.registry().values():
        assert spec.chapter in TOC_CHAPTERS, f"{spec.name}: chapter {spec.chapter!r} is not in _toc.yml"
        source = (ROOT / "book" / f"{spec.chapter}.md").read_text()
        assert f'glue_figure("{spec.name}")' in source, f"{spec.name}: not drawn in book/{spec.chapter}.md"
        assert f"{{glue:figure}} {spec.label}" in source, f"{spec.name}: label {spec.label} not shown"


@pytest.mark.parametrize("name", [n for n, s in figures.registry().items() if s.deterministic])
def test_figure_data_is_reproducible(name):
    """Two computations from the registered seed give identical data (no hidden global state)."""
    assert _same(figures.compute(name), figures.compute(name))


def test_cli_draws_a_chapter_and_rejects_unknown_names(tmp_path, capsys):
    assert main(["figures", "problem-unit", "--out", str(tmp_path)]) == 0
    png = tmp_path / "problem" / "problem-unit.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        main(["figures", "no-such-figure", "--out", str(tmp_path)])
    assert main(["list"]) == 0
    assert "problem-unit" in capsys.readouterr().out


def test_check_build_reports_missing_figures(tmp_path):
    assert any("was not built" in p for p in figures.check_build(tmp_path))


def test_citation_cff_has_the_required_fields():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "version", "date-released"):
        assert cff.get(key), key
    pref = cff["preferred-citation"]
    assert pref["type"] == "article" and "ResNet and Softmax" in pref["title"]
    assert [a["family-names"] for a in pref["authors"]] == ["Song", "Wang", "Yin"]
    assert any(i["value"] == "arXiv:2309.13482" for i in pref["identifiers"])
