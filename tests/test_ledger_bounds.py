"""The ledger rows of the PSD and Lipschitz chapters: keys, computed flags, and flags that can fail."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from softres import figures
from softres.experiments import lipschitz, psd

KEYS = {"item", "chapter", "label", "check", "evidence", "verdict", "passed"}


@pytest.fixture(scope="module")
def psd_data():
    return {name: figures.compute(name) for name in ("psd-pieces", "psd-threshold", "psd-local", "psd-indefinite")}


@pytest.fixture(scope="module")
def lip_data():
    return {name: figures.compute(name) for name in ("lipschitz-waterfall", "lipschitz-ratio")}


def test_psd_rows(psd_data):
    rows = psd.ledger_rows(psd_data)
    assert [r["item"] for r in rows] == ["Definition 6.1", "Lemma 7.1"]
    for r in rows:
        assert set(r) == KEYS and r["chapter"] == "psd" and isinstance(r["passed"], bool)
    assert "our" in rows[1]["verdict"]  # our constants, never "the paper's"


def test_psd_rows_can_fail(psd_data):
    bad = copy.deepcopy(psd_data)
    bad["psd-pieces"]["err_z"] = bad["psd-pieces"]["err_z"] + 1e-3  # a wrong piece
    bad["psd-pieces"]["log_ratio"] = bad["psd-pieces"]["log_ratio"] - 100.0  # a bound below the sampled value
    rows = psd.ledger_rows(bad)
    assert [r["passed"] for r in rows] == [False, False]
    assert all("does not hold" in r["verdict"] for r in rows)


def test_lipschitz_rows(lip_data):
    rows = lipschitz.ledger_rows(lip_data)
    assert [r["item"] for r in rows] == [f"Lemma 8.{k}" for k in range(1, 9)]
    for r in rows:
        assert set(r) == KEYS and r["chapter"] == "lipschitz" and isinstance(r["passed"], bool)
        assert "holds" not in r["verdict"]  # sampled lower bounds: at most "not falsified"


def test_lipschitz_rows_can_fail(lip_data):
    bad = copy.deepcopy(lip_data)
    for sweep in ("R", "n", "beta"):
        bad["lipschitz-waterfall"][sweep]["log_ratio"] = -np.abs(bad["lipschitz-waterfall"][sweep]["log_ratio"]) - 1
    bad["lipschitz-ratio"]["violations_expR2"] = 1
    rows = lipschitz.ledger_rows(bad)
    assert not any(r["passed"] for r in rows)
