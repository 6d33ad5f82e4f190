"""Chapter "Claims ledger": every numbered item of the paper, with what was checked and the verdict.

The ledger computes nothing of its own. Each experiments module that covers part of the paper
defines ``ledger_rows() -> list[dict]`` (keys :data:`KEYS`), built from the data of its chapter's
registered figures (:func:`softres.figures.compute`, which the book's build caches, so the ledger
shows exactly the chapters' numbers). :func:`rows` collects them, discovering the modules with
:mod:`pkgutil` so that a new module joins without an edit here, and puts them in the paper's order;
:func:`coverage` checks them against :data:`ITEMS`, the one list of the paper's numbered items.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType
from typing import Any

__all__ = ["CATEGORIES", "ITEMS", "KEYS", "base_item", "category", "coverage", "markdown", "modules", "rows",
           "summary"]

#: Keys of a ledger row (see the module docstring of each experiments module).
KEYS = ("item", "chapter", "label", "check", "evidence", "verdict", "passed")


def _seq(kind: str, prefix: str, first: int, last: int) -> list[str]:
    return [f"{kind} {prefix}{k}" for k in range(first, last + 1)]


#: Every numbered item of the paper (arXiv:2309.13482), in the paper's order: Sections 1-9, then
#: Appendix A. Definition 6.1 (Section 6) and Algorithm 1 (named by Theorem 9.1) have no heading of
#: their own in the extracted text; every other entry is a heading there.
ITEMS: tuple[str, ...] = (
    *_seq("Definition", "1.", 1, 4),
    "Definition 3.1",
    *_seq("Fact", "3.", 2, 8),
    "Lemma 4.1",
    "Definition 5.1",
    *_seq("Lemma", "5.", 2, 4),
    "Definition 6.1",
    "Lemma 7.1",
    *_seq("Lemma", "8.", 1, 8),
    "Theorem 9.1",
    "Algorithm 1",
    *_seq("Definition", "A.", 1, 7),
    "Lemma A.8",
    "Definition A.9",
    "Lemma A.10",
    "Lemma A.11",
)

#: The verdict categories the closing paragraph counts, strongest first.
CATEGORIES = ("holds", "not falsified", "needs a condition", "does not hold as stated", "not checked")

_NUMBERED = re.compile(r"^(Definition|Fact|Lemma|Theorem|Algorithm|Corollary|Claim) [A-Z]?\.?\d+(\.\d+)*$")
_PART = re.compile(r"\s*\([^()]*\)$")
# Words of a verdict that qualify it (a condition, a restricted setting) or contradict a pass.
_CONDITION = ("needs", " where ", "outside", "not with", "only ")
_WEAK = ("not falsified", "not rejected", "consistent", "lower bound", "on these instances", "observed",
         "converges", "measured", "our constant")
_NEGATIVE = ("does not hold", "violated", "not supported", "not observed", "does not converge", "above δ",
             "changed the iterates", "fails")


_POSITIVE = ("holds", "not falsified", "not rejected", "consistent")
_NEGATION = r"\b(not|no|violated|fails|above|changed|needs)\b"


def base_item(item: str) -> str:
    """The numbered item a row is about: ``"Theorem 9.1 (cost per iteration)"`` -> ``"Theorem 9.1"``."""
    return _PART.sub("", item).strip()


def modules() -> list[ModuleType]:
    """The experiments modules that define ``ledger_rows``, found with :mod:`pkgutil`, by name."""
    pkg = importlib.import_module("softres.experiments")
    found = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "ledger":
            continue
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if callable(getattr(mod, "ledger_rows", None)):
            found.append(mod)
    return found


def rows() -> list[dict[str, Any]]:
    """Every module's ledger rows: the paper's items in the paper's order, then the rows beyond the paper.

    Rows about the same item (e.g. two parts of Theorem 9.1) keep their module's order; rows for items
    beyond the paper (not in :data:`ITEMS`) follow, by module name.
    """
    order = {item: k for k, item in enumerate(ITEMS)}
    collected = [(k, r) for k, mod in enumerate(modules()) for r in mod.ledger_rows()]
    keyed = [(order.get(base_item(r["item"]), len(ITEMS)), k, j, r) for j, (k, r) in enumerate(collected)]
    return [r for *_, r in sorted(keyed, key=lambda t: t[:3])]


def category(row: dict[str, Any]) -> str:
    """The verdict category of ``row`` (one of :data:`CATEGORIES`), from ``passed`` and the verdict's words.

    Statement-only rows (``passed is None``) are "not checked". A failed check is "does not hold as
    stated" unless its verdict names a condition. A passed check is "needs a condition" when its
    verdict restricts the claim (a condition, a setting outside the paper's), "holds" when the verdict
    says so without qualification, and "not falsified" otherwise (sampled or measured evidence).
    """
    v = f" {row['verdict'].lower()} "
    if row["passed"] is None:
        return "not checked"
    if row["passed"] is False:
        return "needs a condition" if "needs a condition" in v else "does not hold as stated"
    if any(w in v for w in _CONDITION):
        return "needs a condition"
    if "holds" in v and not any(w in v for w in _WEAK):
        return "holds"
    return "not falsified"


def coverage(table: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Check ``table`` (default :func:`rows`) against :data:`ITEMS`.

    Returns
    -------
    dict
        ``missing``: paper items without a row; ``duplicated``: item strings given by more than one row;
        ``unknown``: rows named like a numbered item that the paper does not have; ``beyond``: items of
        rows beyond the paper; ``invalid``: ``(item, problem)`` for rows with wrong keys, a ``passed`` that
        is not a bool or None, or a verdict that contradicts ``passed``; ``ok``: none of the first, second,
        third or fifth.
    """
    table = rows() if table is None else table
    items = [r.get("item", "?") for r in table]
    covered = {base_item(i) for i in items}
    missing = [i for i in ITEMS if i not in covered]
    duplicated = sorted({i for i in items if items.count(i) > 1})
    unknown = [i for i in items if base_item(i) not in ITEMS and _NUMBERED.match(base_item(i))]
    beyond = [i for i in items if base_item(i) not in ITEMS and i not in unknown]
    invalid = []
    for r in table:
        item = r.get("item", "?")
        if set(r) != set(KEYS):
            invalid.append((item, f"keys {sorted(r)}"))
            continue
        if r["passed"] is not None and not isinstance(r["passed"], bool):
            invalid.append((item, f"passed is {type(r['passed']).__name__}"))
            continue
        v = r["verdict"].lower()
        if r["passed"] is True and any(w in v for w in _NEGATIVE):
            invalid.append((item, f"passed but the verdict says {r['verdict']!r}"))
        if r["passed"] is False and (v.startswith(_POSITIVE) or not re.search(_NEGATION, v)):
            invalid.append((item, f"failed but the verdict says {r['verdict']!r}"))
        if r["label"] is not None and not isinstance(r["label"], str):
            invalid.append((item, "label is neither a string nor None"))
    ok = not (missing or duplicated or unknown or invalid)
    return {"items": list(ITEMS), "missing": missing, "duplicated": duplicated, "unknown": unknown,
            "beyond": beyond, "invalid": invalid, "ok": ok}


def summary(table: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts for the closing paragraph, all computed from ``table``.

    Returns
    -------
    dict
        ``items`` (paper items covered), ``paper_rows`` and ``beyond_rows`` (row counts), ``stated`` (paper
        items with a labelled block), ``checked`` (paper rows with a computed ``passed``), ``passed``
        (those with ``passed is True``), ``count`` (paper rows per category of :data:`CATEGORIES`),
        ``which`` (paper items per category), ``beyond_count`` (beyond rows per category).
    """
    paper = [r for r in table if base_item(r["item"]) in ITEMS]
    beyond = [r for r in table if base_item(r["item"]) not in ITEMS]
    which: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    for r in paper:
        which[category(r)].append(r["item"])
    return {
        "items": len({base_item(r["item"]) for r in paper}),
        "paper_rows": len(paper),
        "beyond_rows": len(beyond),
        "stated": len({base_item(r["item"]) for r in paper if r["label"]}),
        "checked": sum(r["passed"] is not None for r in paper),
        "passed": sum(r["passed"] is True for r in paper),
        "count": {c: len(v) for c, v in which.items()},
        "which": which,
        "beyond_count": {c: sum(category(r) == c for r in beyond) for c in CATEGORIES},
    }


def _cell(text: Any) -> str:
    """``text`` made safe for one cell of a MyST table (no pipes, math, emphasis or roles by accident)."""
    s = " ".join(str(text).split())
    return re.sub(r"([\\|$*_`<\[\]{}])", r"\\\1", s)


def markdown(table: list[dict[str, Any]], missing: list[str] = ()) -> str:
    """The coverage table as MyST Markdown: item, where stated, what was checked, evidence, verdict.

    "stated" links to the row's labelled ``{prf:...}`` block (``{prf:ref}``) or, when the row has no
    label, to its chapter (``{doc}``). Items in ``missing`` get a row saying so.
    """
    lines = ["| item | stated | checked | evidence | verdict |", "| --- | --- | --- | --- | --- |"]
    for r in table:
        if r["label"]:
            stated = f"{{prf:ref}}`{r['chapter']} <{r['label']}>`"
        else:
            stated = f"not stated; {{doc}}`{r['chapter']}`"
        cat = category(r)
        verdict = f"**{cat}**" + ("" if r["verdict"] == cat else f": {_cell(r['verdict'])}")
        lines.append(f"| {_cell(r['item'])} | {stated} | {_cell(r['check'])} | {_cell(r['evidence'])} | {verdict} |")
    lines += [f"| {_cell(i)} | no row | — | — | missing |" for i in missing]
    return "\n".join(lines)
