"""A real browser opens the built book offline: math is typeset and every figure file exists.

Runs only where Debian's chromium is installed and the book was built (``make book``); CI builds
the book after the tests, so there it is skipped unless an earlier build is present.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from softres.figures import registry

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium")

pytestmark = pytest.mark.skipif(CHROMIUM is None or not (HTML / "book").is_dir(),
                                reason="needs chromium and a built book (make book)")


def rendered_dom(page: Path) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--virtual-time-budget=8000",
           "--dump-dom", page.as_uri()]
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
