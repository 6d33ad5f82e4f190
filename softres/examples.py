"""Seeded example problems shared by the tests, the benchmarks and the book."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from softres._validate import check_int, check_real
from softres.problem import Problem

__all__ = ["as_generator", "random_problem"]


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from an int, a Generator or ``None`` (scipy's convention)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, int | np.integer) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy.random.Generator or None, got {seed!r}")


def random_problem(
    n: int,
    d: int,
    *,
    seed: int | np.random.Generator | None = 0,
    density: float | None = None,
    w: float | None = 1.0,
    noise: float = 0.5,
    scale: float = 1.5,
    col_range: float = 1.0,
) -> Problem:
    """A seeded random instance of Definition 1.4 with a planted point ``x_true``.

    ``A`` has i.i.d. ``N(0, scale²/d)`` entries (dense, or sparse with the given ``density``), so
    that ``Ax`` is of order ``scale`` for a unit ``x``; ``x_true`` is a random unit vector and
    ``b = f(x_true) + noise · N(0, 1) / n``, a perturbation of the size of ``f`` itself
    (``f`` sums to one). The planted point lies in the domain ``α > 0``.

    Because ``f`` is normalised, the Hessian of ``L_exp`` is of order ``1/n²`` per row; the
    regulariser is scaled to match: ``w_i = w / n``.

    Parameters
    ----------
    n, d : int
        Shape of ``A``.
    seed : int, numpy.random.Generator or None
        Source of randomness.
    density : float or None
        Fraction of nonzeros for a ``scipy.sparse`` ``A``; ``None`` for dense.
    w : float or None
        Regulariser weight in units of ``1/n`` (``w_i = w / n``); ``None`` for the unregularised loss.
    noise : float
        Size of the perturbation of ``b`` away from a reachable output, relative to ``1/n``.
    scale : float
        Typical size of the entries of ``Ax`` at unit ``x``.
    col_range : float
        Ratio between the largest and the smallest column scale of ``A`` (columns scaled
        geometrically from 1 down to ``1/col_range``): 1 gives a well-conditioned Hessian, larger
        values an ill-conditioned one, as features on different scales do.
    """
    n, d = check_int(n, "n"), check_int(d, "d")
    if density is not None:
        density = check_real(density, "density", low=0.0, high=1.0, low_open=True)
    if w is not None:
        w = check_real(w, "w", low=0.0)
    noise = check_real(noise, "noise", low=0.0)
    scale = check_real(scale, "scale", low=0.0, low_open=True)
    col_range = check_real(col_range, "col_range", low=1.0)
    rng = as_generator(seed)
    entry = scale / np.sqrt(d)
    if density is None:
        A = rng.standard_normal((n, d)) * entry
    else:
        A = sp.random_array((n, d), density=density, format="csr", rng=rng,
                            data_sampler=lambda size: rng.standard_normal(size))
        A = A * (entry / np.sqrt(density))
    if col_range != 1.0:
        cols = col_range ** -np.linspace(0.0, 1.0, d)
        A = A * cols if density is None else sp.csr_array(A @ sp.diags_array(cols))
    x_true = rng.standard_normal(d)
    x_true /= np.linalg.norm(x_true)
    planted = Problem(A, np.zeros(n))
    b = planted.f(x_true) + noise * rng.standard_normal(n) / n
    problem = Problem(planted.A, b, None if w is None else w / n)
    problem.x_true = x_true
    return problem
