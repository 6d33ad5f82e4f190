"""The book's Sphinx extension (listed in ``_config.yml``, ``sphinx: extra_extensions``).

Figures:

* every registered figure (:func:`softres.figures.registry`) gets its caption from ``figures.toml`` as
  the image's alt text (what the figure shows) and a "Data (CSV)" link in its caption, pointing at
  ``figure-data/<chapter>/<name>.csv`` in the site;
* those files are written when the build finishes (:func:`softres.figures.write_csv`; the data comes
  from the figure-data cache that ``make book`` sets, so nothing is computed twice).

Build housekeeping:

* the landing page is re-read on every build, so the version and commit glued there (its front matter
  asks myst-nb to execute it every time) are those of the build, not of an older cached one;
* one progress line per page while the book is read: its name, the time it took and whether its
  notebook was executed or taken from the execution cache (``jupyter-book build -q`` silences
  Sphinx's own status lines, so this is the output a newcomer sees);
* the kernels that execute the chapters talk to the build over local IPC sockets instead of TCP
  (ipykernel otherwise warns, once per chapter, that its TCP traffic is unencrypted);
* no live-code ("thebe") buttons: sphinx-thebe, which Jupyter Book always loads, is switched off,
  since it wrote its configuration script into every page twice (a ``SyntaxError`` in the browser
  console of every page);
* the bibliography is labelled like the citations, author and year ("Song et al., 2023") rather than
  pybtex's default alpha labels ("SWY23"): the ``authoryear`` pybtex style set in ``_config.yml``.
"""


from __future__ import annotations

import functools
import posixpath
import sys
import time
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
        spec = next((by_label[i] for i in fig["ids"] + fig["names"] if i in by_label), None)
        if spec is None:
            continue
        for image in fig.findall(nodes.image):
            image["alt"] = spec.caption
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

_started: dict[str, float] = {}


def _source_read(app, docname, source):
    _started[docname] = (time.perf_counter(), time.time())


def _doctree_read(app, doctree):
    docname = app.env.docname
    if docname not in _started:
        return
    tick, wall = _started.pop(docname)
    seconds = time.perf_counter() - tick
    try:
        from myst_nb.sphinx_ import NbMetadataCollector

        exec_data = NbMetadataCollector.get_exec_data(app.env, docname) or {}
    except Exception:  # a progress line must never break the build
        exec_data = {}
    how = ""
    if exec_data.get("mtime") is not None:
        how = "executed" if exec_data["mtime"] >= wall else "from the execution cache"
    sys.stdout.write(f"  {docname:<22} {seconds:7.1f} s  {how}\n")
    sys.stdout.flush()


def _ipc_transport() -> None:
    """Start the execution kernels on IPC sockets (jupyter-cache passes no options to nbclient)."""
    import nbclient
    from jupyter_cache.executors import utils

    from softres.notebook import kernel_manager_class

    utils.executenb = functools.partial(nbclient.execute, kernel_manager_class=kernel_manager_class())


def _drop_thebe(app) -> None:
    for listeners in app.events.listeners.values():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "").startswith("sphinx_thebe"):
                app.disconnect(listener.id)


def _register_author_year_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.plain import Style as PlainStyle
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        """"Last", "First and Second" or "First et al.", then the year; a, b, ... where two agree."""

        def format_labels(self, sorted_entries):
            labels = []
            for entry in sorted_entries:
                people = entry.persons.get("author") or entry.persons.get("editor") or []
                names = [" ".join(p.last_names) for p in people] or [entry.fields.get("organization", "Anon.")]
                names = [n.replace("{", "").replace("}", "") for n in names]
                who = (names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2
                       else f"{names[0]} et al.")
                labels.append(f"{who}, {entry.fields.get('year', 'n.d.')}")
            for label in labels:
                same = [i for i, other in enumerate(labels) if other == label]
                if len(same) > 1:
                    for k, i in enumerate(same):
                        labels[i] = label + "abcdefghijklmnopqrstuvwxyz"[k]
            yield from labels

    class AuthorYearStyle(PlainStyle):
        default_label_style = AuthorYearLabels
        default_sorting_style = "author_year_title"

    register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle, force=True)


def setup(app) -> dict[str, Any]:
    """Register the extension's event handlers."""
    _register_author_year_style()
    app.setup_extension("sphinx_thebe")
    _drop_thebe(app)
    _ipc_transport()
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    app.connect("doctree-resolved", _link_data)
    app.connect("build-finished", _write_data)
    app.connect("env-get-outdated", _reread_landing)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
