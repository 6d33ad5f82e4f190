"""The Newton chapter's claims-ledger rows: keys, items covered, and verdicts computed from the data."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from softres.experiments import newton

ITEMS = {"Definition A.1", "Definition A.2", "Definition A.3", "Definition A.4", "Definition A.5",
         "Definition A.6", "Definition A.7", "Definition A.9", "Lemma A.8", "Lemma A.10", "Lemma A.11",
         "Theorem 9.1 (iterations)", "Theorem 9.1 (cost per iteration)", "Algorithm 1"}
KEYS = {"item", "chapter", "label", "check", "evidence", "verdict", "passed"}


@pytest.fixture(scope="module")
def small_data():
    """The chapter's data functions at small sizes (the registered ones are the chapter's)."""
    rng = np.random.default_rng(5)
    return {"sk": newton.sketch_error_vs_s(rng, n=4000, d=4, seeds=2),
            "rg": newton.regimes(rng, n=1500, d=4, seeds=2, names=("well conditioned", "w = 0")),
            "it": newton.iterations_vs_eps(rng, n=1500, d=4, seeds=2),
            "shr": newton.shrinking(rng, n=1500, d=4, runs=2),
            "cost": newton.cost_per_iteration(rng, n=3000, ds=(4, 8), ns=(1500, 3000), d_n=4, repeat=1)}


def test_rows_have_the_keys_and_cover_the_items(small_data):
    rows = newton.ledger_rows(small_data)
    assert all(set(r) == KEYS for r in rows)
    assert {r["item"] for r in rows} >= ITEMS
    assert all(r["chapter"] == "newton" and r["check"] and r["evidence"] and r["verdict"] for r in rows)
    assert all(r["passed"] is None or isinstance(r["passed"], bool) for r in rows)
    labels = {r["label"] for r in rows if r["label"]}
    text = (Path(__file__).resolve().parents[1] / "book" / "newton.md").read_text(encoding="utf-8")
    assert all(f":label: {label}" in text for label in labels)


def test_passed_follows_the_data(small_data):
    """Each checked row's flag flips when the numbers it tests are made to fail."""
    before = {r["item"]: r["passed"] for r in newton.ledger_rows(small_data)}
    bad = copy.deepcopy(small_data)
    bad["shr"]["violations"] = 1
    bad["shr"]["a11_violations"] = 1
    bad["sk"]["miss_gram"] = bad["sk"]["plan"]["draws"]
    bad["shr"]["inside_measured"] = 0
    after = {r["item"]: r["passed"] for r in newton.ledger_rows(bad)}
    for item in ("Lemma A.10", "Lemma A.11", "Lemma A.8", "Definition A.3"):
        assert after[item] is False, item
    assert any(before[item] for item in ("Lemma A.10", "Lemma A.11", "Lemma A.8", "Definition A.3"))
