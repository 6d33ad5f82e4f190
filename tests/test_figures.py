"""The figure registry, the command line, and the citation metadata."""

from __future__ import annotations

import csv
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


def _arrays(data, path=""):
    """Every numeric array of a figure's data, by its slash-joined path (walked here, not by softres)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _arrays(value, f"{path}/{key}" if path else str(key))
    elif isinstance(data, np.ndarray) and data.dtype.kind in "fiub" and data.size:
        yield path, data


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["variable", "index", "value"]
    return rows[1:]


def _check_csv(path, data):
    """The CSV holds every top-level field and, for each numeric array, exactly its values in order."""
    rows = _read_csv(path)
    variables = {r[0] for r in rows}
    for key in data:
        assert any(v == key or v.startswith(f"{key}/") for v in variables), f"{key} missing from {path.name}"
    for var, arr in _arrays(data):
        values = [r[2] for r in rows if r[0] == var]
        if arr.dtype.kind == "b":
            assert values == [str(bool(v)) for v in arr.ravel()], var
        else:
            got = np.array([float(v) for v in values])
            assert np.array_equal(got, arr.ravel().astype(float), equal_nan=True), var


@pytest.mark.parametrize("name", list(figures.registry()))
def test_figure_data_is_reproducible_and_written_as_csv(name, tmp_path):
    """Two computations from the registered seed give identical data (no hidden global state), except
    timings; every figure's data is written as CSV that reads back to the same numbers."""
    data = figures.compute(name)
    if figures.registry()[name].deterministic:
        assert _same(data, figures.compute(name))
    path = figures.write_csv(name, figures.csv_path(name, tmp_path), data)
    assert path == tmp_path / figures.registry()[name].chapter / f"{name}.csv"
    _check_csv(path, data)


def test_tidy_flattens_nested_data_and_rejects_objects():
    rows = figures.tidy({"a": np.arange(4).reshape(2, 2), "b": {"c": 1.5, "s": ["x", "y"]}, "r": [{"k": 2}]})
    assert rows == [("a", "0;0", 0), ("a", "0;1", 1), ("a", "1;0", 2), ("a", "1;1", 3), ("b/c", "", 1.5),
                    ("b/s", "0", "x"), ("b/s", "1", "y"), ("r/0/k", "", 2)]
    with pytest.raises(TypeError, match="'f'"):
        figures.tidy({"f": print})


def test_cli_draws_a_chapter_and_rejects_unknown_names(tmp_path, capsys):
    assert main(["figures", "problem-unit", "--out", str(tmp_path)]) == 0
    png = tmp_path / "problem" / "problem-unit.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _check_csv(png.with_suffix(".csv"), figures.compute("problem-unit"))  # the numbers beside the picture
    with pytest.raises(SystemExit):
        main(["figures", "no-such-figure", "--out", str(tmp_path)])
    assert main(["list"]) == 0
    assert "problem-unit" in capsys.readouterr().out


def test_check_build_reports_missing_figures(tmp_path):
    assert any("was not built" in p for p in figures.check_build(tmp_path))


def _fake_site(root, link=True):
    pages = {}
    for spec in figures.registry().values():
        href = f"../figure-data/{spec.chapter}/{spec.name}.csv"
        pages.setdefault(spec.chapter, []).append(
            f'<figure id="{spec.label}"><img src="x.png"><figcaption>c '
            + (f'<a class="reference external figure-data" href="{href}">Data (CSV)</a>' if link else "")
            + "</figcaption></figure>")
        (root / "figure-data" / spec.chapter).mkdir(parents=True, exist_ok=True)
        (root / "figure-data" / spec.chapter / f"{spec.name}.csv").write_text("variable,index,value\n")
    (root / "book").mkdir()
    for chapter, blocks in pages.items():
        (root / "book" / f"{chapter}.html").write_text("<html>" + "".join(blocks) + "</html>")


def test_check_build_requires_each_figure_to_link_its_data(tmp_path):
    _fake_site(tmp_path)
    assert figures.check_build(tmp_path) == []
    spec = next(iter(figures.registry().values()))
    (tmp_path / "figure-data" / spec.chapter / f"{spec.name}.csv").unlink()
    assert [p for p in figures.check_build(tmp_path) if "is missing" in p] != []
    unlinked = tmp_path / "unlinked"
    unlinked.mkdir()
    _fake_site(unlinked, link=False)
    assert len(figures.check_build(unlinked)) == len(figures.registry())


def test_citation_cff_has_the_required_fields():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "version", "date-released"):
        assert cff.get(key), key
    pref = cff["preferred-citation"]
    assert pref["type"] == "article" and "ResNet and Softmax" in pref["title"]
    assert [a["family-names"] for a in pref["authors"]] == ["Song", "Wang", "Yin"]
    assert any(i["value"] == "arXiv:2309.13482" for i in pref["identifiers"])


def test_markdown_table_by_column_transposes_cases_into_columns():
    from softres.experiments._common import markdown_table

    table = markdown_table(["data", "unit", "a", "b"], [["x", "u", 1.0, "p"], ["y", "v", 2.0, "q"]],
                           fmt="{:.1f}", by_column=2).data.splitlines()
    assert table[0] == "| quantity | x u | y v |"
    assert table[2:] == ["| a | 1.0 | 2.0 |", "| b | p | q |"]
