"""Ledger rows of the chapter "shortcut": keys, labels, and verdicts computed from the data."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import numpy as np
import pytest

from softres.experiments import shortcut
from softres.figures import registry

KEYS = {"item", "chapter", "label", "check", "evidence", "verdict", "passed"}
ROOT = Path(__file__).resolve().parents[1]

#: Small versions of the chapter's figures (same functions, same seeds, fewer draws): the test stays fast.
SMALL = {
    "shortcut-derivatives": lambda rng: shortcut.unit_derivatives(rng, trials=1),
    "shortcut-domain": lambda rng: shortcut.domain(rng, draws=300, beta_draws=2),
    "shortcut-wstar": lambda rng: shortcut.indefiniteness(rng, draws=60, points=4, boot=50),
    "shortcut-lipschitz": lambda rng: shortcut.lipschitz_ratio(rng, ns=(5, 40), pairs=30),
    "shortcut-solvers": lambda rng: shortcut.solvers(rng, seeds=3, starts=2),
}


@functools.cache
def small(name: str) -> dict:
    return SMALL[name](np.random.default_rng(registry()[name].seed))


def test_every_figure_of_the_chapter_is_covered():
    assert set(SMALL) == {n for n, s in registry().items() if s.chapter == "shortcut"}


def test_rows_have_the_keys_and_labels(monkeypatch):
    monkeypatch.setattr(shortcut, "compute", small)
    rows = shortcut.ledger_rows()
    assert len(rows) == 8
    text = (ROOT / "book" / "shortcut.md").read_text()
    for r in rows:
        assert set(r) == KEYS
        assert r["chapter"] == "shortcut"
        assert isinstance(r["passed"], bool)
        assert r["check"] and r["evidence"] and r["verdict"]
        assert f":label: {r['label']}" in text, r


def _set(key: str, holds: bool) -> dict:
    """Copies of the five data dicts edited so that the hypothesis of row ``key`` holds (or fails)."""
    d = {n: copy.deepcopy(small(n)) for n in SMALL}
    der, dom, ind = d["shortcut-derivatives"], d["shortcut-domain"], d["shortcut-wstar"]
    lip, sol = d["shortcut-lipschitz"], d["shortcut-solvers"]
    if key == "lemma":
        for k in der["units"]:
            der["grad"][k][:] = 0.0 if holds else 1.0
    elif key == "domain":
        dom["outside"]["softmax"][:] = 0.0 if holds else 0.1
        dom["outside"]["unified"][:] = 0.1
    elif key == "indefinite":
        ind["summary"]["softmax"]["indefinite"] = 0.8 if holds else 0.1
        ind["summary"]["unified"]["indefinite"] = 0.8
    elif key == "wstar":
        s, u = ind["summary"]["softmax"], ind["summary"]["unified"]
        s["q_hi"][2], u["q_lo"][2] = 1.0, (10.0 if holds else 0.5)
        u["alpha_n_median"], u["alpha_n_top1"] = 1.0, 0.1
    elif key == "lipschitz":
        for k in ("softmax", "unified"):
            lip["ratio"][k][:] = 1.0
            lip["alpha_n"][k][:] = 2.0
            lip["summary"][k]["median"][:] = 1.0
        if holds:
            lip["ratio"]["unified"][0, :5] = 1e3
            lip["alpha_n"]["unified"][0, :5] = 0.1
            lip["summary"]["unified"]["median"][0] = 2.0
    elif key == "kappa":
        for k in shortcut.EXP_KEYS:
            sol["at_min"][k]["lam_min_rel"][:] = 0.1
            sol["at_min"][k]["kappa"][:] = 10.0
        if not holds:
            sol["at_min"]["unified"]["lam_min_rel"][0] = np.nan
            sol["at_min"]["unified"]["kappa"][0] = np.nan
    elif key == "alg1":
        runs = sol["seeds"] * sol["starts"]
        sol["summary"]["softmax"]["sketch-newton"]["status_counts"] = {4: runs} if holds else {0: runs}
    elif key == "basin":
        for m in ("newton", "gd"):
            u, s = sol["summary"]["unified"][m], sol["summary"]["softmax"][m]
            s["basin"], u["basin"] = 1.0, (0.5 if holds else 1.0)
            u["softmax_only"], u["unit_only"] = (20, 0) if holds else (0, 0)
    return d


@pytest.mark.parametrize("key", ["lemma", "domain", "indefinite", "wstar", "lipschitz", "kappa", "alg1", "basin"])
def test_passed_and_verdict_follow_the_data(key):
    good = shortcut.findings(*_set(key, True).values())[key]
    bad = shortcut.findings(*_set(key, False).values())[key]
    assert good["passed"] is True or good["passed"] == np.True_
    assert not bad["passed"]
    assert good["verdict"] != bad["verdict"]
