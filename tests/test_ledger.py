"""The claims ledger: rows from every experiments module, coverage of every numbered item of the paper."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from softres.experiments import ledger

ROOT = Path(__file__).resolve().parents[1]
PAPER_TEXT = ROOT.parent / "shared" / "paper" / "paper-text-without-formulas.txt"


@pytest.fixture(scope="module")
def rows():
    """Every module's rows, computed once (each module computes its chapter's figure data)."""
    return ledger.rows()


def _row(item="Lemma 4.1", passed=True, verdict="holds", label="lemma-4-1", **kw):
    return {"item": item, "chapter": "gradient", "label": label, "check": "c", "evidence": "e",
            "verdict": verdict, "passed": passed, **kw}


def test_rows_have_the_keys_and_passed_is_bool_or_none(rows):
    assert rows
    for r in rows:
        assert set(r) == set(ledger.KEYS), r.get("item")
        assert r["passed"] is None or isinstance(r["passed"], bool), (r["item"], type(r["passed"]))
        assert all(isinstance(r[k], str) and r[k] for k in ("item", "chapter", "check", "evidence", "verdict")), r
        assert r["label"] is None or (isinstance(r["label"], str) and r["label"]), r["item"]


def test_coverage_is_complete(rows):
    """Every numbered item of the paper has a row; none twice; no verdict contradicts its check."""
    cov = ledger.coverage(rows)
    print({k: cov[k] for k in ("missing", "duplicated", "unknown", "invalid", "beyond")})
    assert not cov["missing"], f"items without a row: {cov['missing']}"
    assert not cov["duplicated"], cov["duplicated"]
    assert not cov["unknown"], cov["unknown"]
    assert not cov["invalid"], cov["invalid"]
    assert cov["ok"]


def test_rows_come_in_the_papers_order_then_beyond(rows):
    order = {item: k for k, item in enumerate(ledger.ITEMS)}
    keys = [order.get(ledger.base_item(r["item"]), len(ledger.ITEMS)) for r in rows]
    assert keys == sorted(keys)


def test_labels_and_chapters_exist(rows):
    for r in rows:
        page = ROOT / "book" / f"{r['chapter']}.md"
        assert page.exists(), (r["item"], r["chapter"])
        if r["label"] is not None:
            assert re.search(rf"^:label: {re.escape(r['label'])}\s*$", page.read_text(), re.M), (r["item"], r["label"])


def test_every_module_with_ledger_rows_is_discovered():
    folder = ROOT / "softres" / "experiments"
    defining = sorted(p.stem for p in folder.glob("*.py")
                      if p.stem != "ledger" and re.search(r"^def ledger_rows\(", p.read_text(), re.M))
    assert [m.__name__.rsplit(".", 1)[-1] for m in ledger.modules()] == defining


def test_items_are_the_papers_numbered_items():
    """ITEMS is the list of headings of the paper's text, plus Definition 6.1 and Algorithm 1 (no heading)."""
    assert len(set(ledger.ITEMS)) == len(ledger.ITEMS)
    if not PAPER_TEXT.exists():
        pytest.skip(f"{PAPER_TEXT} not available")
    text = PAPER_TEXT.read_text(encoding="utf-8")
    headings = re.findall(r"^((?:Definition|Fact|Lemma|Theorem|Algorithm) [A-Z]?\.?\d+(?:\.\d+)*)\b", text, re.M)
    assert set(headings) | {"Definition 6.1", "Algorithm 1"} == set(ledger.ITEMS)
    for named in ("Definition 6.1", "Algorithm 1"):
        assert named in text
    # The order of ITEMS follows the headings' order in the text.
    pos = {h: k for k, h in reversed(list(enumerate(headings)))}
    listed = [i for i in ledger.ITEMS if i in pos]
    assert listed == sorted(listed, key=pos.get)


def test_coverage_reports_missing_duplicated_unknown_and_beyond():
    table = [_row(i) for i in ledger.ITEMS if i != "Lemma 7.1"]
    table += [_row("Lemma 4.1"), _row("Theorem 9.1 (cost)"), _row("Lemma 9.9"),
              _row("Shamir 2018 (beside)", label=None)]
    cov = ledger.coverage(table)
    assert cov["missing"] == ["Lemma 7.1"]
    assert cov["duplicated"] == ["Lemma 4.1"]
    assert cov["unknown"] == ["Lemma 9.9"]
    assert cov["beyond"] == ["Shamir 2018 (beside)"]
    assert not cov["ok"]
    assert ledger.coverage([_row(i) for i in ledger.ITEMS])["ok"]


def test_coverage_rejects_bad_rows():
    bad = [_row("Lemma 4.1", passed=1), _row("Lemma 5.2", passed=False, verdict="holds"),
           _row("Lemma 5.3", passed=True, verdict="does not hold as stated"), {"item": "Lemma 5.4"}]
    cov = ledger.coverage(bad)
    assert [i for i, _ in cov["invalid"]] == ["Lemma 4.1", "Lemma 5.2", "Lemma 5.3", "Lemma 5.4"]


@pytest.mark.parametrize(("passed", "verdict", "expected"), [
    (True, "holds", "holds"),
    (True, "stated; relation to Definition 1.1 holds", "holds"),
    (True, "holds on these instances", "not falsified"),
    (True, "not falsified (our constants)", "not falsified"),
    (True, "not rejected (consistent with δ)", "not falsified"),
    (True, "holds where alpha(x) > 0", "needs a condition"),
    (True, "consistent, outside the theorem's hypotheses on w", "needs a condition"),
    (False, "does not hold as stated", "does not hold as stated"),
    (False, "miss rate above δ (with C = 1)", "does not hold as stated"),
    (False, "needs a condition: alpha > 0", "needs a condition"),
    (None, "not checked here", "not checked"),
    (None, "measured (lower bound on M)", "not checked"),
])
def test_category(passed, verdict, expected):
    assert ledger.category(_row(passed=passed, verdict=verdict)) == expected


def test_summary_counts_by_category():
    table = [_row("Lemma 4.1"), _row("Lemma 5.2", passed=None, label=None, verdict="statement only"),
             _row("Theorem 9.1 (a)", passed=False, verdict="does not hold"), _row("Theorem 9.1 (b)"),
             _row("Beyond (x)")]
    s = ledger.summary(table)
    assert (s["items"], s["paper_rows"], s["beyond_rows"], s["stated"], s["checked"], s["passed"]) == (3, 4, 1, 2, 3, 2)
    assert s["count"] == {"holds": 2, "not falsified": 0, "needs a condition": 0, "does not hold as stated": 1,
                          "not checked": 1}
    assert s["which"]["holds"] == ["Lemma 4.1", "Theorem 9.1 (b)"]
    assert s["beyond_count"]["holds"] == 1


def test_markdown_links_and_escapes():
    md = ledger.markdown([_row(evidence="max |D + K - B| = $1$ *x*"), _row("Lemma 5.2", label=None)], ["Lemma 7.1"])
    lines = md.splitlines()
    assert "{prf:ref}`gradient <lemma-4-1>`" in lines[2]
    assert r"max \|D + K - B\| = \$1\$ \*x\*" in lines[2]
    assert lines[2].count(" | ") == 4  # five cells: no pipe leaked from the evidence
    assert "not stated; {doc}`gradient`" in lines[3]
    assert lines[4].startswith("| Lemma 7.1 | no row")
