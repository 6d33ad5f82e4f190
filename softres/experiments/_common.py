"""Small helpers shared by the experiment modules: timing and figure layout."""

from __future__ import annotations

import time
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from softres.experiments import _style


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Smallest wall time of ``repeat`` calls of ``fn`` (seconds); the minimum resists machine noise."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def figure(ncols: int = 1, *, width: float = 4.2, height: float = 3.4, nrows: int = 1) -> tuple[Figure, list]:
    """A figure with ``nrows × ncols`` axes (row by row), at most the book's column wide (see ``_style``)."""
    _style.apply()
    fig, axes = plt.subplots(nrows, ncols, figsize=_style.figsize(ncols, nrows, width=width, height=height),
                             layout="constrained", squeeze=False)
    return fig, [ax for row in axes for ax in row]


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def markdown_table(headers: list[str], rows: list[list], fmt: str = "{:.2e}", *, by_column: int = 0):
    """A Markdown table (rendered by Jupyter and by the book); floats formatted with ``fmt``.

    With ``by_column = k > 0`` the table is transposed: each row becomes a column headed by its first
    ``k`` cells, and each remaining header a row. A few cases with many quantities then read as short
    columns of numbers that fit the page, instead of a dozen narrow columns broken mid-word.
    """
    from IPython.display import Markdown

    def cell(value) -> str:
        return fmt.format(value) if isinstance(value, float) else str(value)

    if by_column:
        columns = [" ".join(cell(v) for v in row[:by_column]) for row in rows]
        rows = [[name] + [row[i] for row in rows] for i, name in enumerate(headers) if i >= by_column]
        headers = ["quantity", *columns]

    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def value_ticks(ax, values) -> None:
    """Put the x ticks of ``ax`` exactly at ``values`` (plain labels, no minor labels): no overlap on log axes."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(list(values))
    ax.set_xticklabels([f"{v:g}" for v in values])
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_part_errors(data: dict, xlabel: str, *, title: str | None = None, height: float = 3.4):
    """Relative error of each checked part over the draws (dots, jittered rows), with the tolerance.

    ``data`` holds ``errors`` (draws × parts; NaN where a part does not apply: not drawn), ``parts``
    (the row labels) and ``tol``. An exact 0 is drawn at 1e-18.
    """
    fig, (ax,) = figure(width=6.4, height=height)
    err = np.maximum(data["errors"], 1e-18)
    k = err.shape[1]
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, size=err.shape[0])
    for j in range(k):
        ax.plot(err[:, j], j + jitter, ".", ms=3, color="C0", alpha=0.6)
    ax.axvline(data["tol"], color="C3", ls="--", label="tolerance")
    ax.set_xscale("log")
    ax.set_yticks(range(k), data["parts"])
    ax.invert_yaxis()
    ax.set_xlabel(f"{xlabel}\n(an exact 0 is drawn at 1e-18)")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right")
    return fig


def speed_words(other_s: float, softres_s: float, peer: str = "scipy") -> str:
    """The best softres time against ``peer``'s in words: "2.0x faster" or "2.0x slower", never "0.5x faster"."""
    if not np.isfinite(softres_s):
        return "softres did not reach x*" if np.isfinite(other_s) else "neither reached x*"
    if not np.isfinite(other_s):
        return f"{peer} did not reach x*"
    ratio = other_s / softres_s
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
