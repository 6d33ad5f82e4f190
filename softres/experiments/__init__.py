"""Computations behind the book's figures and tables, one module per chapter.

Each ``fn(rng) -> dict`` computes a figure's data from an explicit ``numpy.random.Generator``;
each ``plot_*(data) -> Figure`` draws it. ``softres/figures.toml`` ties them to the chapters.
"""
