"""Ledger rows of the chapter "resnet": keys, and verdicts computed from the data."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest

from softres.experiments import resnet
from softres.figures import compute as _compute

compute = functools.cache(_compute)

KEYS = {"item", "chapter", "label", "check", "evidence", "verdict", "passed"}
ITEMS = ["Shamir 2018 (beside)", "Liu et al. 2019 (beside)", "Unified loss: local minima vs parts"]


@pytest.fixture
def rows(monkeypatch):
    monkeypatch.setattr(resnet, "compute", compute)
    return resnet.ledger_rows()


def test_ledger_rows_have_the_keys(rows):
    assert [r["item"] for r in rows] == ITEMS
    for r in rows:
        assert set(r) == KEYS
        assert r["chapter"] == "resnet"
        assert isinstance(r["label"], str) and r["label"]
        assert r["check"] and r["evidence"] and r["verdict"]
        assert isinstance(r["passed"], bool)
    assert rows[0]["passed"] is True  # asserted in the chapter too


def test_passed_is_computed_from_the_data(rows, monkeypatch):
    """Altered data flips each row's ``passed`` and changes its verdict."""
    good = {r["item"]: (r["passed"], r["verdict"]) for r in rows}

    def altered(name):
        data = copy.deepcopy(compute(name))
        if name == "resnet-shamir":
            for c in data["configs"]:
                c["above"] = 0 if good["Shamir 2018 (beside)"][0] is False else 1
        elif name == "resnet-liu":
            data["success"] = np.zeros_like(data["success"])
        elif name == "resnet-unified":
            T = data["runs"]  # numeric columns are arrays
            if good["Unified loss: local minima vs parts"][0]:
                T["loss"] = T["shortcut"] * 10.0  # every minimum far above the shortcut optimum
            else:
                T["loss"] = T["shortcut"] * 0.5
                T["best"] = T["shortcut"] * 0.5
        return data

    monkeypatch.setattr(resnet, "compute", altered)
    bad = {r["item"]: (r["passed"], r["verdict"]) for r in resnet.ledger_rows()}
    for item in ITEMS:
        assert bad[item][0] is not good[item][0], item
        assert bad[item][1] != good[item][1], item
