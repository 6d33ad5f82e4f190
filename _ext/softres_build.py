"""Build housekeeping for the softres book (a Sphinx extension listed in ``_config.yml``).

- One progress line per page while the book is read: its name, the time it took and whether its
  notebook was executed or taken from the execution cache (``jupyter-book build -q`` silences
  Sphinx's own status lines, so this is the output a newcomer sees).
- The kernels that execute the chapters talk to the build over local IPC sockets instead of TCP
  (ipykernel otherwise warns, once per chapter, that its TCP traffic is unencrypted).
- The book has no live-code ("thebe") buttons: sphinx-thebe, which Jupyter Book always loads, is
  switched off, since it wrote its configuration script into every page twice (a ``SyntaxError``
  in the browser console of every page).
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
    import nbclient
    from jupyter_cache.executors import utils
    from jupyter_client import AsyncKernelManager
    from traitlets import CaselessStrEnum

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    utils.executenb = functools.partial(nbclient.execute, kernel_manager_class=IPCKernelManager)


def _drop_thebe(app) -> None:
    for event, listeners in app.events.listeners.items():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "").startswith("sphinx_thebe"):
                app.disconnect(listener.id)


def setup(app):
    app.setup_extension("sphinx_thebe")
    _drop_thebe(app)
    _ipc_transport()
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
