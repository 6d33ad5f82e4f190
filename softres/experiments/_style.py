"""The book's one figure style: sizes in inches for its text column, fonts that stay legible.

Every figure of the book and of ``python -m softres figures`` is drawn under :data:`RC`
(:func:`softres.figures.draw` applies it). A figure is at most :data:`COLUMN_WIDTH` inches wide and
is drawn at :data:`DPI` dots per inch, so at its natural size one inch is a hundred CSS pixels and
the widest figure (680 px) fills the text column of the book at a 1280 px window without being
scaled down: 9 pt text is then about 12 px on screen. Raster files are written at twice that
resolution (:data:`SAVE_DPI`, and "retina" PNGs inside the book), sharp on high-resolution screens.
"""

from __future__ import annotations

#: Width of the book's text column in inches at :data:`DPI` (the column is about 690 CSS px wide).
COLUMN_WIDTH = 6.8
#: Height of a one-row figure, inches.
ROW_HEIGHT = 2.9
#: Smallest height of a figure row, inches (room for ticks, labels and a title).
MIN_ROW_HEIGHT = 2.3
#: Dots per inch on screen: one dot per CSS pixel at the figure's natural size.
DPI = 100
#: Dots per inch of saved PNG files (twice :data:`DPI`).
SAVE_DPI = 2 * DPI
#: Base font size in points; ticks and legends one point smaller, never below 7.5 pt.
FONT_SIZE = 9.0

RC = {
    "figure.dpi": DPI,
    "savefig.dpi": SAVE_DPI,
    "figure.figsize": (COLUMN_WIDTH, ROW_HEIGHT),
    "figure.constrained_layout.use": True,
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "legend.fontsize": FONT_SIZE - 1,
    "legend.title_fontsize": FONT_SIZE - 1,
    "legend.framealpha": 0.85,
    "legend.borderaxespad": 0.3,
    "lines.markersize": 4.0,
    "lines.linewidth": 1.3,
    "axes.titlepad": 4.0,
    "image.cmap": "viridis",
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
}


def apply() -> None:
    """Make :data:`RC` matplotlib's current style (idempotent)."""
    import matplotlib as mpl

    mpl.rcParams.update(RC)


def figsize(ncols: int = 1, nrows: int = 1, *, width: float | None = None,
            height: float | None = None) -> tuple[float, float]:
    """``(width, height)`` in inches for ``nrows × ncols`` panels, at most the column wide.

    ``width`` and ``height`` are one panel's wish; a figure wider than :data:`COLUMN_WIDTH` is
    shrunk to it with its aspect kept, but no row gets lower than :data:`MIN_ROW_HEIGHT`.
    """
    if ncols < 1 or nrows < 1:
        raise ValueError(f"ncols and nrows must be positive, got {ncols} and {nrows}")
    total = (width if width is not None else COLUMN_WIDTH / ncols) * ncols
    tall = (height if height is not None else ROW_HEIGHT) * nrows
    scale = min(1.0, COLUMN_WIDTH / total)
    return total * scale, max(tall * scale, MIN_ROW_HEIGHT * nrows)


def legend_below(fig, axes=None, *, ncols: int = 2) -> None:
    """One legend for ``fig`` (entries of ``axes``, default all), under the panels: never over the data."""
    handles: dict[str, object] = {}
    for ax in axes if axes is not None else fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=ncols)
