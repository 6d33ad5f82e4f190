"""Sphinx extension for the book: each figure links the numbers behind it, the landing page is always current.

Listed in ``_config.yml`` (``sphinx: extra_extensions``). For HTML builders it

* appends a "Data (CSV)" link to the caption of every registered figure
  (:func:`softres.figures.registry`), pointing at ``figure-data/<chapter>/<name>.csv`` in the site;
* writes those files when the build finishes (:func:`softres.figures.write_csv`; the data comes from
  the figure-data cache that ``make book`` sets, so nothing is computed twice);
* re-reads the landing page on every build, so the version and commit glued there (its front matter
  asks myst-nb to execute it every time) are those of the build, not of an older cached one.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from softres import figures

#: The page whose version and commit must be current.
LANDING = "book/intro"


def _page_uri(app, docname: str) -> str:
    if app.builder.name == "singlehtml":
        return "index.html"  # the single page writes every link relative to the output's root
    return app.builder.get_target_uri(docname)


def _link_data(app, doctree, docname: str) -> None:
    from docutils import nodes

    if app.builder.format != "html":
        return
    by_label = {spec.label: spec for spec in figures.registry().values()}
    here = posixpath.dirname(_page_uri(app, docname))
    for fig in doctree.findall(nodes.figure):
        spec = next((by_label[i] for i in fig["ids"] if i in by_label), None)
        if spec is None:
            continue
        href = posixpath.relpath(f"{figures.DATA_DIR}/{spec.chapter}/{spec.name}.csv", here or ".")
        link = nodes.reference("", "Data (CSV)", refuri=href, classes=["figure-data"])
        captions = list(fig.findall(nodes.caption))
        target = captions[0] if captions else fig
        if captions:
            target += nodes.Text(" ")
            target += link
        else:
            target += nodes.paragraph("", "", link)


def _write_data(app, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    root = Path(app.outdir) / figures.DATA_DIR
    for name in figures.registry():
        figures.write_csv(name, figures.csv_path(name, root))


def _reread_landing(app, env, added, changed, removed) -> list[str]:
    return [LANDING] if LANDING in env.found_docs and LANDING not in added | changed else []


def setup(app) -> dict[str, Any]:
    """Register the extension's event handlers."""
    app.connect("doctree-resolved", _link_data)
    app.connect("build-finished", _write_data)
    app.connect("env-get-outdated", _reread_landing)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
