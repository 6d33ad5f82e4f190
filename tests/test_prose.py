"""Typed numerals in the book's prose and captions; citations against ``references.bib``.

Every number the book states must come from the build (glue), so that it cannot drift from the
computation it reports (issue 8, referee finding 12). This test reads every chapter (``book/*.md``)
as MyST, removes what is not prose, and fails on any numeral left that is not on the allow-list
below. Removed before the scan:

- the front matter, code cells and code blocks, and ``{math}``/``{bibliography}`` blocks;
- directive options (``:label:``, ``:name:``, ``:tags:``) and labels (``(name)=``);
- math: ``$...$``, ``$$...$$`` and the ``{math}`` role;
- every role (``{glue:text}``, ``{cite}``, ``{prf:ref}``, ``{doc}``, ...), link targets, HTML comments.

Directive arguments are scanned: a ``{prf:...}`` block's number (``{prf:lemma} 4.1``) reads as
"Lemma 4.1". Figure captions (the bodies of ``{glue:figure}`` blocks) are prose and are scanned.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(p.stem for p in BOOK.glob("*.md"))

# ------------------------------------------------------------------------------------------ allow-list
_ITEM = r"(?:[A-Z]\.)?\d+(?:\.\d+)*"
#: The allow-list: (pattern, why a numeral matched by it is not a typed measurement). Keep it short.
ALLOWED: list[tuple[str, str]] = [
    (r"\b(?i:Definitions?|Facts?|Lemmas?|Theorems?|Algorithms?|Sections?|Parts?|Appendix|Steps?|Figures?)"
     rf"\s+{_ITEM}(?:\s*(?:[–,/-]|and|or|to)\s*{_ITEM})*",
     "the number of a numbered item, part or section (the paper's numbering)"),
    (r"(?m)^[ \t]*\d+[.)](?=[ \t])", "the marker of an ordered list item"),
    (r"arXiv:\d{4}\.\d{4,5}(?:v\d+)?", "the paper's arXiv identifier"),
    (r"\[\d+(?:,\s*\d+)*\]", "a reference number of the paper's own bibliography, e.g. [60]"),
    (r"\b[A-Z][a-z]+(?:\s+et al\.)?,?\s+\(?(?:19|20)\d\d[a-z]?\)?", "the year of a cited work after its author"),
]
#: The paper's own constants: allowed only where the sentence names them as the paper's ("the paper's").
PAPER_CONSTANTS: dict[str, str] = {
    "0.1": "the upper end of the ranges of ε₀ and δ (Lemma A.8, Theorem 9.1)",
    "4": "R ≥ 4 (Theorem 9.1)",
    "0.4": "the contraction factor of Lemma A.11",
    "0.01": "the ε₀ of Lemma A.11",
}
_PAPERS = re.compile(r"the paper's\b[^.;:]{0,80}$", re.IGNORECASE)
NUMERAL = re.compile(r"(?<![\w.])[-−]?\d+(?:[.,]\d+)*(?:[eE][-+−]?\d+)?%?")

# ------------------------------------------------------------------------------------------ MyST parsing
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})\s*(?:\{([\w:.-]+)\})?\s*(.*?)\s*$")
_SKIP_BODY = {"code-cell", "code", "code-block", "math", "bibliography", "raw", "eval-rst", None}
_SKIP_ARG = ("glue:", "figure", "image", "code", "include", "literalinclude")


def prose(text: str) -> str:
    """``text`` (a MyST chapter) with everything but prose blanked out; line numbers are kept."""
    return _blank(prose_and_math(text), [(r"\$\$.*?\$\$", re.S), (r"\{[\w:.+-]+\}`[^`]*`", 0), (r"`[^`\n]+`", 0),
                                         (r"(?<![\\$])\$(?!\$)(?:[^$\n\\]|\\.|\n(?!\s*\n))+?\$", 0)])


def _blank(body: str, patterns: list[tuple[str, int]]) -> str:
    """``body`` with each match of ``patterns`` replaced by spaces (newlines kept)."""

    def blank(m: re.Match) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    for pattern, flags in patterns:
        body = re.sub(pattern, blank, body, flags=flags)
    return body


def prose_and_math(text: str) -> str:
    """``text`` without front matter, code, directive options, labels, comments and link targets."""
    lines = text.split("\n")
    out = [""] * len(lines)
    i = 0
    if lines and lines[0].strip() == "---":  # front matter
        i = 1
        while i < len(lines) and lines[i].strip() != "---":
            i += 1
        i += 1
    stack: list[tuple[str, bool]] = []  # (fence marker, body is skipped)
    in_options = False
    while i < len(lines):
        line = lines[i]
        m = _FENCE.match(line)
        skipping = any(skip for _, skip in stack)
        if m and stack and m.group(2)[0] == stack[-1][0][0] and len(m.group(2)) >= len(stack[-1][0]) \
                and not m.group(3) and not m.group(4):
            stack.pop()
            in_options = False
        elif m and not skipping:
            marker, name, arg = m.group(2), m.group(3), m.group(4)
            if name is None and marker[0] == ":" and not arg:
                pass
            else:
                stack.append((marker, name in _SKIP_BODY))
                in_options = True
                if name and name.startswith("prf:") and re.match(_ITEM, arg):
                    out[i] = f"{name[4:].capitalize()} {arg}"
                elif name and name not in _SKIP_BODY and not name.startswith(_SKIP_ARG):
                    out[i] = arg
        elif skipping:
            pass
        elif in_options and re.match(r"^\s*:[\w-]+:", line):
            pass
        elif re.match(r"^\s*\([\w:.-]+\)=\s*$", line):
            in_options = False
        else:
            in_options = False
            out[i] = line
        i += 1
    # comments, link targets, and roles other than {math} (kept for the math scan)
    return _blank("\n".join(out), [(r"<!--.*?-->", re.S), (r"\]\([^)\s]*\)", 0),
                                   (r"\{(?!math\})[\w:.+-]+\}`[^`]*`", 0)])


def typed_numerals(text: str) -> list[tuple[int, str, str]]:
    """``(line, numeral, line text)`` for every numeral of the prose of ``text`` not on the allow-list."""
    body = prose(text)
    allowed = [m.span() for pattern, _ in ALLOWED for m in re.finditer(pattern, body)]
    found = []
    for m in NUMERAL.finditer(body):
        a, b = m.span()
        if any(s <= a and b <= e for s, e in allowed):
            continue
        value = m.group(0).lstrip("-−")
        start = body.rfind("\n", 0, a) + 1
        if value in PAPER_CONSTANTS and _PAPERS.search(body[start:a]):
            continue
        line = body.count("\n", 0, a) + 1
        found.append((line, m.group(0), text.split("\n")[line - 1].strip()))
    return found


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_typed_numerals_in_prose(chapter):
    """Numbers in prose and captions come from glue roles (the allow-list above names the exceptions)."""
    found = typed_numerals((BOOK / f"{chapter}.md").read_text(encoding="utf-8"))
    report = "\n".join(f"book/{chapter}.md:{line}: {num!r} in: {ctx[:100]}" for line, num, ctx in found)
    print(report)
    assert not found, f"typed numerals (glue them, or name the paper's constant):\n{report}"


def test_the_scan_sees_prose_and_skips_the_rest():
    text = "\n".join([
        "---", "title: 2024", "---",  # front matter
        "Lemma 8.1 and Parts 1–4 of Section 9, Definitions A.1–A.7, arXiv:2309.13482, [89, 29].",
        "We ran 30 seeds.",  # line 5: typed
        "$n = 30$ and {glue:text}`n-seeds` and {cite}`li2023exp` and `x0` and $$d = 5$$.",
        "```{code-cell} ipython3", "x = 12345", "```",
        "```{prf:lemma} 7.1 (PSD)", ":label: lemma-7-1", "", "For 7 points.", "```",  # line 13: typed
        "The paper's rate 0.4 and our rate 0.4.",  # line 15: the second 0.4 is typed
        "1. first step", "2. then steps 1.1–1.3 of Algorithm 1",
    ])
    assert [(line, num) for line, num, _ in typed_numerals(text)] == [(5, "30"), (13, "7"), (15, "0.4")]


# ------------------------------------------------------------------------------------------ math
#: Inside math, formulas are free to hold numbers (exponents, ½); what must not be typed there is a size,
#: a count, a seed, a parameter or a tolerance of an experiment: a symbol set to (or bounded by) a literal,
#: a literal matrix shape, a literal power of ten.
_NUM = r"[-−]?\d+(?:\.\d+)?(?:\s*/\s*\w+)?"
TYPED_IN_MATH = [
    rf"(?<![\w\\])(?:n|d|s|T|N|m|k|\\rho|\\delta|\\varepsilon_0|\\epsilon_0|w|w_i|\\gamma|\\sigma)"
    rf"\s*(?:=|<|>|\\le|\\ge|\\leq|\\geq)\s*(?:10\^\{{?[-−]?\d+\}}?|{_NUM})",
    r"\\mathbb\s*R\^\{?\s*\d+\s*\\times|\\times\s*\d+\s*\}",
    r"(?<![_\w])10\^\{?[-−]?\d+\}?",
]
#: The paper's own constants, allowed in math: ε₀, δ < 0.1 (Lemma A.8, Theorem 9.1), ε₀ = 0.01 (Lemma A.11),
#: R ≥ 4 (Theorem 9.1).
PAPER_MATH = [r"\\varepsilon_0\s*=\s*0\.01",
              r"\\varepsilon_0\s*(?:<|\\le)\s*0\.1\b", r"\\delta\s*(?:<|\\le)\s*0\.1\b", r"R\s*\\ge\s*4\b"]
_MATH = re.compile(r"\$\$.*?\$\$|(?<![\\$])\$(?!\$)(?:[^$\n\\]|\\.|\n(?!\s*\n))+?\$|\{math\}`[^`]*`", re.S)


def typed_in_math(text: str) -> list[tuple[int, str]]:
    """``(line, fragment)`` for each size, count, parameter or power of ten typed inside math in ``text``."""
    body = prose_and_math(text)
    found = []
    for m in _MATH.finditer(body):
        for pattern in TYPED_IN_MATH:
            for hit in re.finditer(pattern, m.group(0)):
                frag = hit.group(0).strip()
                if any(re.fullmatch(p, frag) for p in PAPER_MATH) or re.search(r"[=<>el]\s*[01]$", frag):
                    continue  # the paper's range, or a bound by 0 or 1 (d > 1: mathematics, not a setting)
                found.append((body.count("\n", 0, m.start() + hit.start()) + 1, hit.group(0)))
    return sorted(found)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_typed_sizes_in_math(chapter):
    """Sizes, counts, parameters and tolerances inside math come from glue too (e.g. not ``$n = 30$``)."""
    found = typed_in_math((BOOK / f"{chapter}.md").read_text(encoding="utf-8"))
    report = "\n".join(f"book/{chapter}.md:{line}: {frag!r}" for line, frag in found)
    print(report)
    assert not found, f"typed in math (glue it):\n{report}"


def test_the_math_scan_flags_sizes_not_formulas():
    text = "\n".join(["$n = 30$ and $A \\in \\mathbb R^{8\\times 2}$ and $10^{-17}$",
                      "$\\tfrac12 \\|x\\|^2$, $e^{R^2}$, $\\varepsilon_0 < 0.1$, $R \\ge 4$, $\\log_{10} r$,"
                      " $w_i = 5/n$",
                      "```{code-cell} ipython3", "n = 30", "```"])
    assert typed_in_math(text) == [(1, "10^{-17}"), (1, "\\mathbb R^{8\\times"), (1, "n = 30"), (2, "w_i = 5/n")]


# ------------------------------------------------------------------------------------------ bibliography
def _bib_keys() -> list[str]:
    return re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "references.bib").read_text(encoding="utf-8"), flags=re.M)


def _cited() -> dict[str, list[str]]:
    """Cited key -> chapters citing it (``{cite}``, ``{cite:t}``, ``{cite:p}``, ... roles)."""
    cited: dict[str, list[str]] = {}
    for chapter in CHAPTERS:
        text = (BOOK / f"{chapter}.md").read_text(encoding="utf-8")
        for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            for key in keys.split(","):
                cited.setdefault(key.strip(), []).append(chapter)
    return cited


def test_bibliography_keys_are_unique():
    keys = _bib_keys()
    assert len(keys) == len(set(keys)), sorted(k for k in set(keys) if keys.count(k) > 1)


def test_every_cited_key_is_in_the_bibliography():
    unknown = {k: v for k, v in _cited().items() if k not in set(_bib_keys())}
    assert not unknown, f"cited but not in references.bib: {unknown}"


def test_every_bibliography_entry_is_cited():
    unused = [k for k in _bib_keys() if k not in _cited()]
    print("unused entries:", unused)
    assert not unused, f"entries of references.bib cited nowhere in book/*.md: {unused}"
