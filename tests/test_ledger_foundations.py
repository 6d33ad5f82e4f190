"""Ledger rows of the chapters "problem", "gradient" and "hessian": keys, and verdicts computed from the data."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest

from softres.experiments import gradient, hessian, problem
from softres.figures import compute as _compute

#: Each figure's data computed once for the whole module (the ledger functions call ``compute``).
compute = functools.cache(_compute)

KEYS = {"item", "chapter", "label", "check", "evidence", "verdict", "passed"}
ITEMS = {
    problem: ["Definition 1.1", "Definition 1.2", "Definition 1.3", "Definition 1.4", "Definition 3.1",
              *[f"Fact 3.{k}" for k in range(2, 9)]],
    gradient: ["Lemma 4.1"],
    hessian: ["Definition 5.1", "Lemma 5.2", "Lemma 5.3", "Lemma 5.4"],
}


def _broken(name: str) -> dict:
    """The registered data of figure ``name`` with every check's number pushed past its tolerance."""
    data = copy.deepcopy(compute(name))
    if name == "problem-checks":
        for key in ("1.1", "1.2", "1.3-units", "1.3-grad", "1.3-hess", "3.1", "1.4"):
            data["definitions"][key] = 1.0
        for row in data["facts"]["rows"]:
            row["worst"] = 1.0 if row["kind"] == "identity" else -1.0
    elif name == "problem-domain":
        data["agree"] = False
    elif name in ("gradient-parts", "hessian-checks"):
        data["max_error"] = np.ones_like(data["max_error"])
    elif name == "hessian-structure":
        data["reconstruction"] = 1.0
    return data


@pytest.mark.parametrize("module", list(ITEMS), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_ledger_rows_have_the_keys_and_cover_the_items(module, monkeypatch):
    monkeypatch.setattr(module, "compute", compute)
    rows = module.ledger_rows()
    assert [r["item"] for r in rows] == ITEMS[module]
    for r in rows:
        assert set(r) == KEYS
        assert r["chapter"] == module.__name__.rsplit(".", 1)[-1]
        assert isinstance(r["label"], str) and r["label"]
        assert r["check"] and r["evidence"] and r["verdict"]
        assert r["passed"] is True, r


@pytest.mark.parametrize("module", list(ITEMS), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_passed_is_computed_from_the_data(module, monkeypatch):
    """With the numbers pushed past their tolerances every row fails and its verdict changes."""
    monkeypatch.setattr(module, "compute", compute)
    good = {r["item"]: r["verdict"] for r in module.ledger_rows()}
    monkeypatch.setattr(module, "compute", _broken)
    rows = module.ledger_rows()
    assert all(r["passed"] is False for r in rows), [r["item"] for r in rows if r["passed"]]
    assert all(r["verdict"] != good[r["item"]] for r in rows)


def test_labels_exist_in_the_chapters(monkeypatch):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for module in ITEMS:
        monkeypatch.setattr(module, "compute", compute)
        for r in module.ledger_rows():
            text = (root / "book" / f"{r['chapter']}.md").read_text()
            assert f":label: {r['label']}" in text, (r["item"], r["label"])
