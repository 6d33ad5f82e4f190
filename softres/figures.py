"""The book's figure registry (``figures.toml``): compute, draw, save and check every figure.

Each table of ``figures.toml`` names one figure of the book: the chapter it belongs to, the label
the chapter gives it, its caption, its seed, and the package functions that compute its data and
draw it. Chapters, tests and the command line (``python -m softres figures``) all go through
:func:`compute` and :func:`draw`, so they produce the same numbers.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import os
import pickle
import posixpath
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FigureSpec", "check_build", "compute", "csv_path", "draw", "glue_figure", "registry", "save", "tidy",
           "write_csv"]

#: Folder of the built site (and of ``python -m softres figures``) holding each figure's data as
#: ``<DATA_DIR>/<chapter>/<name>.csv``.
DATA_DIR = "figure-data"


@dataclass(frozen=True)
class FigureSpec:
    """One registered figure."""

    name: str
    chapter: str
    label: str
    caption: str
    seed: int
    data: str
    plot: str
    deterministic: bool = True


@cache
def registry() -> dict[str, FigureSpec]:
    """All registered figures, by name, in the order of ``figures.toml``."""
    text = resources.files("softres").joinpath("figures.toml").read_text(encoding="utf-8")
    return {name: FigureSpec(name=name, **entry) for name, entry in tomllib.loads(text).items()}


def _spec(name: str) -> FigureSpec:
    try:
        return registry()[name]
    except KeyError:
        known = ", ".join(registry())
        raise ValueError(f"unknown figure {name!r}; registered figures: {known}") from None


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


#: Environment variable naming a folder where :func:`compute` keeps each figure's data between processes
#: (the book build sets it, so the ledger reuses the chapters' data instead of recomputing it).
CACHE_ENV = "SOFTRES_DATA_CACHE"
#: Environment variable that makes :func:`glue_figure` also display the figure (JupyterLab, ``make lab``).
SHOW_ENV = "SOFTRES_SHOW_FIGURES"


def compute(name: str) -> dict[str, Any]:
    """The data behind figure ``name``, from its registered function and seed.

    With the environment variable ``SOFTRES_DATA_CACHE`` set to a folder, the data is stored there
    (keyed by the figure's name, seed and function) and later calls in any process load it: the
    book's build sets it so that the claims ledger shows exactly the numbers of the chapters.
    ``make book`` empties the folder whenever the package changes.
    """
    spec = _spec(name)
    folder = os.environ.get(CACHE_ENV)
    path = None
    if folder:
        key = hashlib.sha256(f"{spec.name}|{spec.seed}|{spec.data}".encode()).hexdigest()[:16]
        path = Path(folder) / f"{spec.name}-{key}.pickle"
        if path.exists():
            with path.open("rb") as fh:
                return pickle.load(fh)
    data = _resolve(spec.data)(np.random.default_rng(spec.seed))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(data, fh)
        tmp.replace(path)
    return data


def draw(name: str, data: dict[str, Any] | None = None):
    """``(matplotlib Figure, data)`` for figure ``name`` (data computed unless given)."""
    from softres.experiments import _style

    spec = _spec(name)
    if data is None:
        data = compute(name)
    _style.apply()
    return _resolve(spec.plot)(data), data


def glue_figure(name: str) -> dict[str, Any]:
    """Draw figure ``name``, glue it under its registered label for the book, return its data.

    For use inside a chapter (myst-nb must be installed): the chapter then shows it with
    ``{glue:figure}`` and the same label. With ``SOFTRES_SHOW_FIGURES`` set (``make lab`` sets it)
    the figure is also displayed under the cell, for a live notebook where ``{glue:figure}`` shows nothing.
    """
    import matplotlib.pyplot as plt
    from matplotlib_inline.backend_inline import set_matplotlib_formats
    from myst_nb import glue

    set_matplotlib_formats("retina")  # PNG at twice the figure's dpi, shown at its natural size
    fig, data = draw(name)
    glue(_spec(name).label, fig, display=False)
    if os.environ.get(SHOW_ENV):  # `make lab`: a live notebook shows the figure under its cell
        from IPython.display import display

        display(fig)
    plt.close(fig)
    return data


def tidy(data: Any, variable: str = "") -> list[tuple[str, str, Any]]:
    """The numbers of a figure's data as tidy rows ``(variable, index, value)``.

    One row per number (or string): nested dictionaries give ``outer/inner`` variable names,
    arrays and lists of scalars give one row per element with its index (``"3"``, ``"2;5"``),
    lists of other things give ``name/3`` variables, scalars an empty index. Anything that is not
    a number, string, bool or ``None`` raises ``TypeError`` naming its variable: a figure's data
    must be plain numbers to be citable.
    """
    if isinstance(data, dict):
        rows = []
        for key, value in data.items():
            rows += tidy(value, f"{variable}/{key}" if variable else str(key))
        return rows
    if isinstance(data, list | tuple) and not all(_is_scalar(v) for v in data):
        rows = []
        for i, value in enumerate(data):
            rows += tidy(value, f"{variable}/{i}")
        return rows
    if isinstance(data, np.ndarray | list | tuple):
        arr = np.asarray(data)
        if arr.dtype == object:
            raise TypeError(f"figure data {variable!r}: an array of Python objects cannot be written as CSV")
        return [(variable, ";".join(map(str, idx)), _plain(v, variable)) for idx, v in np.ndenumerate(arr)]
    return [(variable, "", _plain(data, variable))]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float | np.generic)


def _plain(value: Any, variable: str) -> Any:
    if not _is_scalar(value):
        raise TypeError(f"figure data {variable!r}: {type(value).__name__} is not a number or a string")
    if isinstance(value, np.generic):
        value = value.item()
    return "" if value is None else value


def csv_path(name: str, root: str | Path) -> Path:
    """Where figure ``name``'s data goes under ``root``: ``root/<chapter>/<name>.csv``."""
    return Path(root) / _spec(name).chapter / f"{name}.csv"


def write_csv(name: str, path: str | Path, data: dict[str, Any] | None = None) -> Path:
    """Write the numbers behind figure ``name`` (:func:`tidy` rows, with a header) as CSV to ``path``.

    Floats are written with ``repr`` precision, so reading the file back gives the same numbers.
    The data is computed (or read from the cache) unless given.
    """
    if data is None:
        data = compute(name)
    rows = tidy(data)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["variable", "index", "value"])
        writer.writerows((var, idx, repr(val) if isinstance(val, float) else val) for var, idx, val in rows)
    return path


def save(names: list[str], outdir: str | Path, *, progress: bool = True) -> list[Path]:
    """Draw each figure of ``names`` into ``outdir/<chapter>/<name>.png`` with its data beside it as
    ``<name>.csv`` (:func:`write_csv`); return the PNG paths."""
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    from softres.experiments import _style

    outdir = Path(outdir)
    paths = []
    for name in tqdm(names, desc="figures", disable=not progress):
        spec = _spec(name)
        fig, data = draw(name)
        path = outdir / spec.chapter / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=_style.SAVE_DPI, bbox_inches="tight")
        plt.close(fig)
        write_csv(name, path.with_suffix(".csv"), data)
        paths.append(path)
    return paths


def check_build(html_dir: str | Path) -> list[str]:
    """Problems with a built book: registered figures whose image is missing from their chapter.

    A figure counts as produced when its chapter's HTML holds an element with the figure's
    label as ``id`` and an ``<img`` inside that figure block; its data counts as linked when the
    block links to ``figure-data/<chapter>/<name>.csv`` and that file exists in the site.
    """
    html_dir = Path(html_dir)
    problems = []
    for spec in registry().values():
        page = html_dir / "book" / f"{spec.chapter}.html"
        if not page.exists():
            problems.append(f"{spec.name}: chapter page {page} was not built")
            continue
        text = page.read_text(encoding="utf-8")
        start = text.find(f'id="{spec.label}"')
        if start < 0:
            problems.append(f"{spec.name}: no element with id {spec.label!r} in {page.name}")
            continue
        block = text[text.rfind("<figure", 0, start):text.find("</figure>", start)]
        if "<img" not in block:
            problems.append(f"{spec.name}: figure {spec.label!r} in {page.name} has no image")
        href = posixpath.relpath(f"{DATA_DIR}/{spec.chapter}/{spec.name}.csv", "book")
        if f'href="{href}"' not in block:
            problems.append(f"{spec.name}: figure {spec.label!r} in {page.name} does not link its data {href}")
        elif not (html_dir / DATA_DIR / spec.chapter / f"{spec.name}.csv").is_file():
            problems.append(f"{spec.name}: the data file {DATA_DIR}/{spec.chapter}/{spec.name}.csv is missing")
    return problems
