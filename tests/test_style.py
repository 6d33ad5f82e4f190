"""The book's one figure style (``softres.experiments._style``): column width, legible text, 2x files."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

from softres import figures
from softres.experiments import _style

CHEAP = ["problem-unit", "hessian-structure", "psd-spectra"]


@pytest.mark.parametrize("name", CHEAP)
def test_figures_fit_the_column_with_legible_text(name):
    fig, _ = figures.draw(name)
    try:
        width, _height = fig.get_size_inches()
        assert width <= _style.COLUMN_WIDTH + 1e-9
        assert fig.dpi == _style.DPI
        fig.canvas.draw()
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
        assert sizes and min(sizes) >= 7.5, f"text below 7.5 pt: {sorted(set(sizes))[:5]}"
        # what a reader sees: the figure drawn with tight bounds is not wider than the column either
        tight = fig.get_tightbbox(fig.canvas.get_renderer())
        assert tight.width <= _style.COLUMN_WIDTH * 1.03, tight.width
    finally:
        plt.close(fig)


def test_hessian_structure_has_a_colour_bar_per_panel():
    fig, _ = figures.draw("hessian-structure")
    try:
        colourbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        assert len(colourbars) == 4
    finally:
        plt.close(fig)


def test_saved_png_is_twice_the_screen_resolution(tmp_path):
    from PIL import Image

    (path,) = figures.save(["problem-unit"], tmp_path, progress=False)
    with Image.open(path) as im:
        dpi = im.info["dpi"][0]
    assert abs(dpi - _style.SAVE_DPI) < 1


def test_figsize_rejects_bad_counts_and_keeps_rows_readable():
    with pytest.raises(ValueError, match="ncols"):
        _style.figsize(0)
    width, height = _style.figsize(3, width=5.0, height=2.0)
    assert width == pytest.approx(_style.COLUMN_WIDTH)
    assert height == pytest.approx(_style.MIN_ROW_HEIGHT)
