"""The versioned archive of the companion (``make dist``): site, PDF, executed notebooks, figure data, citation.

:func:`release` names what is being archived (package version and git commit); the landing page of
the book glues the same string, so the archive's name and the site inside it agree. :func:`build`
assembles the archive from folders that the Makefile's other targets produce.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from softres import __version__

__all__ = ["PRINT_CSS", "build", "chromium", "commit", "pdf", "release"]

#: Print style added to the single-page book before it is printed: code cells and navigation omitted,
#: headings kept with the text after them, figures and tables not split across pages, each chapter on
#: a new page, long output lines and wide tables wrapped to the page, figure-data links spelled out (the
#: archive holds the files).
PRINT_CSS = """
@page { size: A4; margin: 16mm 14mm; }
.cell_input, .tag_hide-input > .cell_input, details.hide, .bd-sidebar-primary, .bd-sidebar-secondary,
.bd-header, .bd-header-article, .bd-footer, .bd-footer-article, .prev-next-area, .headerlink,
.header-article-items, #pst-back-to-top, .skip-link { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
.bd-page-width { max-width: 100% !important; }
h1, h2, h3, h4, .proof .admonition-title, p.caption { break-after: avoid; page-break-after: avoid; }
figure, .figure, table, .proof, .math-wrapper, mjx-container[display="true"] { break-inside: avoid; }
span[id^="document-"] + section { break-before: page; }
pre { white-space: pre-wrap !important; overflow-wrap: anywhere; }
a.figure-data::after { content: " (" attr(href) " in the archive)"; }
html { font-size: 13px; }
.pst-scrollable-table-container, .table-wrapper, .cell_output, .output { overflow: visible !important; }
table { width: 100% !important; max-width: 100% !important; font-size: 0.85em; table-layout: auto; }
th, td { overflow-wrap: break-word; }
"""

#: Names of the Chromium executable, as Debian (``apt install chromium``) and others install it.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def commit(repo: str | Path | None = None) -> str:
    """The git commit of ``repo`` (default: the package's checkout), short, ``-dirty`` if tracked files changed.

    ``"unknown"`` where there is no git or no repository (e.g. an installed copy).
    """
    cwd = Path(repo) if repo is not None else Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=cwd, capture_output=True,
                               timeout=30).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def release(repo: str | Path | None = None) -> str:
    """``softres-<version>-<commit>``: the name of the archive and of its top folder."""
    return f"softres-{__version__}-{commit(repo)}"


def chromium() -> str | None:
    """Path of a Chromium executable (``SOFTRES_CHROMIUM`` or one of :data:`CHROMIUM_NAMES`), else ``None``."""
    import os

    named = os.environ.get("SOFTRES_CHROMIUM")
    if named:
        return shutil.which(named)
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def pdf(singlehtml_dir: str | Path, output: str | Path, *, budget_ms: int = 120_000, timeout: int = 600) -> Path:
    """Print the single-page book (``jupyter-book build . --builder singlehtml``) to ``output`` as PDF.

    The page is copied beside itself with :data:`PRINT_CSS` added, then printed by headless
    Chromium, offline, after MathJax has typeset it (``budget_ms`` of virtual time).

    Raises
    ------
    FileNotFoundError
        If the single-page HTML is missing.
    RuntimeError
        If Chromium is not installed (Debian: ``apt-get install chromium``) or printing fails.
    """
    root = Path(singlehtml_dir)
    pages = [root / "index.html", *sorted(root.glob("book/*.html"))]
    page = next((p for p in pages if p.is_file() and 'http-equiv="refresh"' not in p.read_text("utf-8").lower()), None)
    if page is None:
        raise FileNotFoundError(f"no single-page book in {root} (build it with --builder singlehtml)")
    exe = chromium()
    if exe is None:
        raise RuntimeError("Chromium is not installed: 'apt-get install chromium' (Debian) or set SOFTRES_CHROMIUM")
    text = page.read_text(encoding="utf-8")
    printable = root / "_print.html"  # at the root: the single page's links are relative to it, wherever it is
    printable.write_text(text.replace("</head>", f"<style>{PRINT_CSS}</style></head>", 1), encoding="utf-8")
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--no-pdf-header-footer",
           f"--virtual-time-budget={budget_ms}", f"--print-to-pdf={output}", printable.resolve().as_uri()]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    finally:
        printable.unlink(missing_ok=True)
    if not output.is_file() or output.read_bytes()[:5] != b"%PDF-":
        raise RuntimeError(f"Chromium did not print {output}: {run.stderr.strip()[-500:]}")
    return output


def build(out_dir: str | Path, *, site: str | Path, pdf: str | Path | None, notebooks: str | Path,
          figure_data: str | Path, files: list[str | Path], name: str | None = None) -> Path:
    """Write ``out_dir/<name>.zip`` and return its path.

    Parameters
    ----------
    out_dir
        Folder for the archive (created).
    site
        The built HTML (``_build/html``), stored as ``<name>/site/``.
    pdf
        The book as one PDF, stored as ``<name>/<name>.pdf``; ``None`` leaves it out.
    notebooks
        Folder of executed ``.ipynb`` chapters, stored as ``<name>/notebooks/``.
    figure_data
        Folder of ``<chapter>/<figure>.csv`` (and PNG) files, stored as ``<name>/figure-data/``.
    files
        Single files stored at the top (``CITATION.cff``, ``LICENSE``, ``README.md``).
    name
        Archive name; default :func:`release`.

    Raises
    ------
    FileNotFoundError
        If a folder or file is missing, or a folder holds no file: an archive without its site,
        notebooks or data is not the companion.
    """
    name = name or release()
    folders = {"site": Path(site), "notebooks": Path(notebooks), "figure-data": Path(figure_data)}
    for label, folder in folders.items():
        if not folder.is_dir() or not any(p.is_file() for p in folder.rglob("*")):
            raise FileNotFoundError(f"{label}: {folder} is missing or empty")
    singles = [Path(f) for f in files] + ([Path(pdf)] if pdf is not None else [])
    for path in singles:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{name}.zip"
    tmp = archive.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for label, folder in folders.items():
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                zf.write(path, f"{name}/{label}/{path.relative_to(folder).as_posix()}")
        for path in [Path(f) for f in files]:
            zf.write(path, f"{name}/{path.name}")
        if pdf is not None:
            zf.write(pdf, f"{name}/{name}.pdf")
    tmp.replace(archive)
    return archive
