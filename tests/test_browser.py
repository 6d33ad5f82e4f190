"""A real browser opens the built book offline and measures what a reader sees.

Each page of the table of contents is opened in headless Chromium (Debian's ``chromium``) inside a
harness that shows it at three viewport widths at once (two desktop widths and a phone). A script
injected into the page waits for MathJax, then measures every displayed formula, output area, table
and figure: none may be wider than the box that holds it (``scrollWidth <= clientWidth + 1`` for the
element and every ancestor up to the text column), so nothing is cut off or hidden behind a
horizontal scroll. The same run records script errors on the page.

The tests need Chromium and a built book (``make book``); where either is missing they are skipped
with the reason. CI (``.ci/run``) installs Chromium and runs them after building the book
(``make browser-test``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pytest

from softres.figures import registry

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium")
#: Viewport widths in CSS pixels: a laptop, a desktop and a phone.
WIDTHS = {"1280px": 1280, "1600px": 1600, "phone": 390}

#: ``make browser-test`` (run by CI after ``make book``) sets this: there a missing browser or book fails.
REQUIRED = os.environ.get("SOFTRES_REQUIRE_BROWSER") == "1"
if REQUIRED:
    assert CHROMIUM is not None, "SOFTRES_REQUIRE_BROWSER=1 but chromium is not installed"
    assert (HTML / "book").is_dir(), "SOFTRES_REQUIRE_BROWSER=1 but the book is not built (make book)"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or not (HTML / "book").is_dir(),
    reason=("Debian's chromium is not installed (apt-get install chromium)" if CHROMIUM is None
            else "the book is not built (run make book first)"),
)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--virtual-time-budget=20000"]


def toc_pages() -> list[str]:
    """The book's pages, from ``_toc.yml`` (so a new chapter is measured too)."""
    text = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    return [m.split("/")[-1] for m in re.findall(r"(?:root|file):\s*(\S+)", text)]


# Runs inside each page: collects script errors from the start, measures once MathJax is done.
_EARLY = ("<script>window.__softresErrors=[];"
          "addEventListener('error', e => __softresErrors.push(String(e.message)));</script>")
_MEASURE = r"""<script>
addEventListener('load', async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  await document.fonts.ready;
  const root = document.querySelector('article') || document.body;
  const sel = 'mjx-container[display], mjx-container[display] > mjx-math, div.math, div.cell_output pre, '
            + 'div.cell_output, table, img, figure';
  const items = [];
  root.querySelectorAll(sel).forEach(el => {
    if (el.closest('.cell_input')) return;  // code is folded away; only what a reader sees is measured
    // Overflow of the element's own content, and of its box beyond each enclosing box up to the column.
    const r = el.getBoundingClientRect();
    let over = el.clientWidth > 0 ? el.scrollWidth - el.clientWidth : 0, where = el.tagName.toLowerCase();
    for (let n = el.parentElement; n; n = n.parentElement) {
      const nr = n.getBoundingClientRect(), left = nr.left + n.clientLeft, right = left + n.clientWidth;
      const d = Math.max(r.right - right, left - r.left);
      if (n.clientWidth > 0 && d > over) {
        over = d;
        where = n.tagName.toLowerCase() + '.' + String(n.className || '').trim().split(/\s+/).join('.');
      }
      if (n === root) break;
    }
    if (over > 1) {
      items.push({tag: el.tagName.toLowerCase(), over: Math.round(over), where,
                  text: (el.getAttribute('alt') || el.textContent || '').trim().slice(0, 90)});
    }
  });
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0
                          && getComputedStyle(el).visibility !== 'hidden'; };
  const search = [...document.querySelectorAll('.search-button-field, .search-button, form.bd-search input')]
                   .filter(visible).length;
  // Printed numbers a reader should never see: NaN, an infinite time, or a lone -1 standing for "none".
  const sentinels = [...root.querySelectorAll('td, th, div.cell_output pre')]
                      .map(el => el.textContent.trim())
                      .filter(s => /\bnan\b|\binf\s*(ms|s)\b|^-1$/i.test(s)).map(s => s.slice(0, 80));
  // Figures are drawn at twice the pixels they occupy on the page (sharp on high-resolution screens).
  const blurry = [...root.querySelectorAll('figure img')].filter(img => img.naturalWidth < 1.9 * img.width)
                   .map(img => `${img.naturalWidth} px file shown ${img.width} px wide`);
  parent.postMessage({width: innerWidth, errors: window.__softresErrors, items, search, sentinels, blurry,
                      page: document.documentElement.scrollWidth,
                      measured: root.querySelectorAll(sel).length}, '*');
});
</script>"""


@cache
def measure(page: str) -> dict[int, dict]:
    """Measurements of the book's ``page`` at every width of :data:`WIDTHS`, keyed by the viewport width."""
    return measure_file(HTML / "book" / f"{page}.html")


def measure_file(path: Path) -> dict[int, dict]:
    """Measurements of the HTML file ``path`` (see :func:`measure`)."""
    text = path.read_text(encoding="utf-8")
    text = text.replace("<head>", f'<head><base href="{path.parent.as_uri()}/">{_EARLY}', 1)
    text = text.replace("</body>", _MEASURE + "</body>", 1)
    frames = "".join(f'<iframe src="page.html" style="width:{w}px;height:900px;border:0"></iframe>'
                     for w in WIDTHS.values())
    harness = ("<html><body><pre id='out'></pre><script>const got = {};"
               "addEventListener('message', e => { got[e.data.width] = e.data;"
               f" if (Object.keys(got).length === {len(WIDTHS)})"
               " document.getElementById('out').textContent = JSON.stringify(got); });"
               f"</script>{frames}</body></html>")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "page.html").write_text(text, encoding="utf-8")
        (Path(tmp) / "harness.html").write_text(harness, encoding="utf-8")
        dom = subprocess.run([CHROMIUM, *FLAGS, "--window-size=1700,1000", "--dump-dom",
                              (Path(tmp) / "harness.html").as_uri()],
                             capture_output=True, text=True, timeout=180, check=True).stdout
    found = re.search(r"<pre id=\"out\">(.*?)</pre>", dom, flags=re.S)
    assert found and found.group(1), f"{path.name}: the page did not report its measurements"
    return {int(w): m for w, m in json.loads(html.unescape(found.group(1))).items()}


def rendered_dom(page: Path) -> str:
    cmd = [CHROMIUM, *FLAGS, "--window-size=1280,900", "--dump-dom", page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.parametrize("chapter", sorted({s.chapter for s in registry().values()}))
def test_page_renders_math_and_figures_offline(chapter):
    page = HTML / "book" / f"{chapter}.html"
    dom = rendered_dom(page)
    assert "<mjx-container" in dom, "MathJax did not typeset the page"
    assert "\\(" not in re.sub(r"<(script|pre|code)[^>]*>.*?</\1>", "", dom, flags=re.S)
    images = re.findall(r'<img[^>]+src="([^"]+)"', dom)
    assert len(images) >= sum(s.chapter == chapter for s in registry().values())
    for src in images:
        if not src.startswith(("http:", "https:", "data:")):
            assert (page.parent / src).resolve().is_file(), src


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
@pytest.mark.parametrize("page", toc_pages())
def test_nothing_overflows_its_column(page, width):
    """Every formula, output, table and figure fits its box at this width (pixels of overflow listed)."""
    got = measure(page)[WIDTHS[width]]
    assert got["measured"] > 0, "nothing was measured: the selectors no longer match the theme"
    assert got["page"] <= WIDTHS[width], f"the page itself scrolls sideways ({got['page']} px)"
    report = "\n".join(f"  {it['over']:>4} px  {it['tag']} in {it['where']}: {it['text']}" for it in got["items"])
    assert not got["items"], f"{page} at {width}: overflowing elements\n{report}"


@pytest.mark.parametrize("page", toc_pages())
def test_no_script_errors(page):
    """No script on the page fails (a duplicated thebe configuration used to raise a SyntaxError)."""
    assert measure(page)[WIDTHS["1280px"]]["errors"] == []


def test_measurement_sees_overflow(tmp_path):
    """The measurement itself can fail: a long unwrapped output line and a wide table are reported."""
    page = tmp_path / "wide.html"
    page.write_text("<html><head></head><body><article style='width:300px'>"
                    "<div class='cell_output'><pre style='white-space:pre'>" + "x" * 200 + "</pre></div>"
                    "<div style='overflow-x:auto'><table><tr>" + "<td>column</td>" * 30 + "</tr></table></div>"
                    "<div class='cell_output'><pre>short</pre></div>"
                    "</article></body></html>", encoding="utf-8")
    got = measure_file(page)[WIDTHS["1280px"]]
    tags = sorted({(it["tag"], it["over"] > 100) for it in got["items"]})
    assert tags == [("div", True), ("pre", True), ("table", True)], got["items"]


@pytest.mark.parametrize("page", toc_pages())
def test_one_search_box_sharp_figures_and_no_sentinel_values(page):
    """Per page and width: one visible search control, 2x figure files, no NaN or -1 placeholders."""
    for width, got in measure(page).items():
        assert got["search"] == 1, f"{got['search']} visible search controls at {width} px"
        assert got["sentinels"] == [], f"placeholder values at {width} px: {got['sentinels']}"
        assert got["blurry"] == [], f"figures at less than twice their displayed size: {got['blurry']}"


def test_no_index_page_and_bibliography_labels_match_citations():
    """No (empty) general index is built; bibliography labels are author-year like the citations."""
    assert not (HTML / "genindex.html").exists()
    assert "genindex" not in (HTML / "book" / "intro.html").read_text(encoding="utf-8")
    text = (HTML / "book" / "reproduce.html").read_text(encoding="utf-8")
    labels = [re.sub(r"<[^>]+>", "", label) for label in
              re.findall(r'<span class="label"><span class="fn-bracket">\[</span>(.*?)<span class="fn-bracket">', text)]
    assert labels, "no bibliography found on the reproduce page"
    assert all(re.fullmatch(r"[^\W\d].*, (\d{4}[a-z]?|n\.d\.)", label) for label in labels), labels
