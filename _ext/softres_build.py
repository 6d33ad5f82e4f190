"""Build housekeeping for the softres book (a Sphinx extension listed in ``_config.yml``).

- One progress line per page while the book is read: its name, the time it took and whether its
  notebook was executed or taken from the execution cache (``jupyter-book build -q`` silences
  Sphinx's own status lines, so this is the output a newcomer sees).
- The kernels that execute the chapters talk to the build over local IPC sockets instead of TCP
  (ipykernel otherwise warns, once per chapter, that its TCP traffic is unencrypted).
- The book has no live-code ("thebe") buttons: sphinx-thebe, which Jupyter Book always loads, is
  switched off, since it wrote its configuration script into every page twice (a ``SyntaxError``
  in the browser console of every page).
- Each registered figure's image gets its caption from ``softres/figures.toml`` as alt text (what
  the figure shows), instead of the image's file name.
- The bibliography is labelled like the citations, author and year ("Song et al., 2023") rather than
  pybtex's default alpha labels ("SWY23"): the ``authoryear`` pybtex style set in ``_config.yml``.
"""

from __future__ import annotations

import functools
import sys
import time

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
    except Exception:  # noqa: BLE001 - a progress line must never break the build
        exec_data = {}
    how = ""
    if exec_data.get("mtime") is not None:
        how = "executed" if exec_data["mtime"] >= wall else "from the execution cache"
    sys.stdout.write(f"  {docname:<22} {seconds:7.1f} s  {how}\n")
    sys.stdout.flush()


def _ipc_transport() -> None:
    """Start the execution kernels on IPC sockets (jupyter-cache passes no options to nbclient)."""
    import os
    import tempfile
    import uuid

    import nbclient
    from jupyter_cache.executors import utils
    from jupyter_client import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _absolute_socket_path(self) -> str:
            # the kernel runs in the chapter's folder: a relative socket path would not be found
            return os.path.join(tempfile.gettempdir(), f"softres-kernel-{uuid.uuid4().hex[:12]}")

    utils.executenb = functools.partial(nbclient.execute, kernel_manager_class=IPCKernelManager)


def _drop_thebe(app) -> None:
    for event, listeners in app.events.listeners.items():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "").startswith("sphinx_thebe"):
                app.disconnect(listener.id)


def _figure_alt_text(app, doctree, docname):
    from docutils import nodes

    from softres.figures import registry

    captions = {spec.label: spec.caption for spec in registry().values()}
    for figure in doctree.findall(nodes.figure):
        caption = next((captions[i] for i in figure["ids"] + figure["names"] if i in captions), None)
        if caption is not None:
            for image in figure.findall(nodes.image):
                image["alt"] = caption


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


def setup(app):
    _register_author_year_style()
    app.setup_extension("sphinx_thebe")
    _drop_thebe(app)
    _ipc_transport()
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    app.connect("doctree-resolved", _figure_alt_text)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
