"""Optional compiled kernels (numba) for the sparse products and the elementwise work of a state.

With ``A`` sparse at about one nonzero per row, the two products ``A @ x`` and ``A.T @ y`` cost no
more than the elementwise work on the ``n``-vectors of :class:`softres._state.State`. The largest
part of that work is ``exp``: numpy's float64 ``exp`` is a scalar loop on CPUs without AVX-512
(5-6 ns an entry on this project's machine, as much as both products at ``n = 10⁴``); the rest is a
dozen numpy passes with their call overheads. ``benchmarks/bench_derivatives.py`` measures the parts.

When numba is installed (``pip install softres[fast]``), :mod:`softres._kernels_numba` provides:

* ``csc_matvec`` / ``csc_rmatvec``: the two products in the column-wise layout of
  :class:`softres._linalg.MatrixOperator` without scipy's per-call overhead and without the
  negative-index checks that signed indices cost (the finiteness check of ``A @ x`` in the same call);
* ``csr_gram``: the Gram product ``Aᵀ diag(D) A`` row by row over a row-wise copy of ``A``;
* ``exp_state``: ``e^{z−m}``, ``φ(z)e^{−m}``, ``φ'(z)e^{−m}`` of the units ``e^z + γz`` in one pass,
  with an ``exp`` the compiler vectorises (within 1 ulp of ``np.exp`` where that is at least
  ``e^{-708}``; smaller values are ``0``); the sums over rows stay numpy's (pairwise, accurate);
* ``normalise``: ``f``, ``c`` and ``v/α`` in one pass, with the blocks' partial sums of ``<c, f>``,
  ``‖f‖²`` and ``‖c‖²`` (added pairwise by numpy);
* ``gradient_weights``: ``r = c − <c, f>`` and ``y = v/α ∘ r + w² ∘ Ax`` (the gradient is ``Aᵀy``) in one pass;
* ``dense_exp_pass``, ``dense_matvec``, ``dense_countsketch``: a dense, row-major ``A`` read once, one
  chunk of rows per thread (:meth:`softres._linalg.MatrixOperator.exp_pass`): the loss and gradient,
  ``A @ x``, a CountSketch.

A compiled pass over a dense ``A`` shares the cores with OpenBLAS's threads, which spin for some
milliseconds after every multithreaded BLAS call: in the code that runs between two passes (the
state's sums, the regulariser, a curvature), ``n``-vector dot products are not BLAS's
(:func:`softres._linalg.dot`, ``normalise``'s sums).

The kernels serve problems with at least :data:`MIN_ROWS` rows. Importing numba and loading the
compiled code costs about a second per process on a quiet machine (2-3 s on this project's shared
one), while a gradient at ``n = 10⁴`` saves about 0.2 ms: below ``10⁵`` rows the import is repaid
only after thousands of evaluations, so small problems (the book's, the tests') stay with numpy and
never import numba. ``SOFTRES_NUMBA=1`` in the environment uses the kernels at every size,
``SOFTRES_NUMBA=0`` never. Without numba, or with a numba that fails to import (say, one that does
not support the installed numpy), :func:`active` returns ``None`` and the callers run their numpy
code; both give the same results up to rounding (``tests/test_kernels.py`` runs both).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from types import ModuleType

__all__ = ["ENABLED", "MIN_ROWS", "active", "kernels"]

_MODE = os.environ.get("SOFTRES_NUMBA", "")

#: Whether the compiled kernels may be used: numba can be found and ``SOFTRES_NUMBA`` is not ``"0"``.
#: Read at every call, so tests and benchmarks may switch it.
ENABLED = importlib.util.find_spec("numba") is not None and _MODE != "0"

#: Fewest rows ``n`` for which the kernels are used (``0`` with ``SOFTRES_NUMBA=1``); read at every call.
MIN_ROWS = 0 if _MODE == "1" else 100_000

@functools.cache
def kernels() -> ModuleType:
    """:mod:`softres._kernels_numba`, imported on the first call (numba then compiles or loads its cache)."""
    from softres import _kernels_numba

    return _kernels_numba


def active(n: int) -> ModuleType | None:
    """The compiled kernels for a problem with ``n`` rows when :data:`ENABLED` and ``n >= MIN_ROWS``, else ``None``.

    A numba that is installed but fails to import switches the kernels off (for the rest of the
    process) instead of failing the evaluation: the numpy code computes the same quantities.
    """
    global ENABLED
    if not ENABLED or n < MIN_ROWS:
        return None
    try:
        return kernels()
    except Exception:  # e.g. "Numba needs NumPy x.y or less": any failure to import means numpy
        ENABLED = False
        return None
