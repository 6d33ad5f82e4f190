"""Products with ``A`` in its stored layout, and the count of passes over ``A``.

Every computation in softres that reads all of ``A`` (``Ax``, ``Aᵀy``, the weighted Gram product
``AᵀDA``, the sketch's ``SA`` and its Johnson–Lindenstrauss product) goes through one
:class:`MatrixOperator`, which counts it. Passes over ``A`` are the cost that transfers across
machines: at large ``n`` each one is bound by memory bandwidth. A pass is one read of ``A`` from
memory: :meth:`MatrixOperator.fused` (and :meth:`~MatrixOperator.exp_pass`, compiled) reads each block
of rows twice, the second time from cache, and counts one. The count is kept per thread, so
two threads sharing a :class:`~softres.Problem` each see their own.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp

from softres import _kernels
from softres._validate import as_matrix, as_vector, is_dask_array

__all__ = ["CSC_MAX_ROW_NNZ", "MatrixOperator", "as_operator", "blocked_gram"]

#: A sparse ``A`` with fewer nonzeros per row than this is stored as ``csc_array`` (see :class:`MatrixOperator`).
CSC_MAX_ROW_NNZ = 16

#: Bytes of scaled rows of a dense ``A`` per BLAS call in :meth:`MatrixOperator.gram`. Blocks the size of a
#: 1 MB L2 cache were the fastest of 1, 2, 4 MB and a single n × d product for most shapes tried
#: (n = 1e4 to 1e6, d = 50 to 200; within 10% of the best for the others).
_GRAM_BLOCK_BYTES = 1 << 20

#: Bytes of a dense ``A`` per block of rows in :meth:`MatrixOperator.fused`: a block is read from memory
#: once for ``A_b x`` and read again, from the 32 MB L3 cache, for ``A_bᵀ Y_b``.
_FUSED_BLOCK_BYTES = 2 << 20

#: Fewest bytes of a dense ``A`` per thread in :meth:`MatrixOperator.exp_pass`: starting a thread costs about
#: what a chunk of this size takes (tens of microseconds), so smaller ``A`` run in fewer threads.
_EXP_PASS_CHUNK_BYTES = 1 << 20


class MatrixOperator:
    """``A`` (``n × d``), stored read-only in the layout whose products are fastest, with a pass counter.

    A sparse ``A`` with few nonzeros per row (fewer than ``CSC_MAX_ROW_NNZ``) is stored column-wise
    (``csc_array``): ``A @ x`` then scatters column by column and ``A.T @ y`` gathers. Each product
    measured about 4× faster than in the row-wise layout for ``n = 10⁶``, ``d = 100`` at 1% density
    (one nonzero per row, where CSR's per-row loop mispredicts branches); rows with 100 nonzeros keep
    ``csr_array``, 2× faster there. ``benchmarks/bench_derivatives.py`` prints both layouts' cost.
    With numba installed, ``Ax`` and ``Aᵀy`` in the column-wise layout run in compiled kernels
    for ``n >= 10⁵`` (:mod:`softres._kernels`).

    A dense ``A`` is stored row-major where the compiled kernels read it row by row (one pass for the
    loss and gradient, :meth:`exp_pass`), column-major everywhere else: OpenBLAS runs ``Aᵀy`` on a
    row-major ``A`` in one thread, on a column-major one in two, like ``Ax`` in either (2 cores,
    ``d = 100``: ``Ax`` + ``Aᵀy`` 0.11 against 0.15 ms at ``n = 10⁴``, 3.0 against 4.3 ms at 10⁵,
    28 against 39 ms at 10⁶). The row-wise CountSketch (:meth:`countsketch`) is what loses.
    """

    def __init__(self, A: Any, name: str = "A") -> None:
        A = as_matrix(A, name, order=_dense_order(A))
        self.is_sparse = sp.issparse(A)
        if self.is_sparse and A.nnz < CSC_MAX_ROW_NNZ * A.shape[0]:
            A = A.tocsc()
            for part in (A.data, A.indices, A.indptr):
                part.flags.writeable = False
        self.A = A
        self.n, self.d = A.shape
        self._local = threading.local()

    @functools.cached_property
    def frobenius(self) -> float:
        """``‖A‖_F`` (one pass, the first time), for rounding-error estimates."""
        return safe_norm((self.A.data if self.is_sparse else self.A).ravel(order="K"))  # no copy in either order

    @functools.cached_property
    def _csc_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``data`` and unsigned views of ``indices``, ``indptr`` of a CSC ``A`` (no index sign checks in kernels)."""
        A = self.A
        return A.data, A.indices.view(f"u{A.indices.itemsize}"), A.indptr.view(f"u{A.indptr.itemsize}")

    @functools.cached_property
    def _csr_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The parts of a row-wise (CSR) copy of a CSC ``A``, as :attr:`_csc_parts`; made once, for :meth:`gram`."""
        A = self.A.tocsr()
        return A.data, A.indices.view(f"u{A.indices.itemsize}"), A.indptr.view(f"u{A.indptr.itemsize}")

    @functools.cached_property
    def _AT(self) -> Any:
        """``A.T``, made once: scipy builds a new sparse array for each ``.T`` (30 µs at ``n = 10⁴``, a tenth of
        a Newton iteration there)."""
        return self.A.T

    @functools.cached_property
    def _gram_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Every ordered pair of nonzeros ``(A_ij, A_ik)`` in one row of a sparse ``A``, for :meth:`gram`:
        ``(i, j d + k, A_ij A_ik)``, made once; ``None`` if there are more than :data:`GRAM_PAIRS` ``· nnz``."""
        A = self.A.tocsr()
        counts = np.diff(A.indptr).astype(np.int64)
        squares = counts * counts
        total = int(squares.sum())
        if total > GRAM_PAIRS * max(A.nnz, 1):
            return None
        row = np.repeat(np.arange(self.n, dtype=np.int64), squares)
        t = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(squares) - squares, squares)  # pair in its row
        r = counts[row]
        first, second = A.indptr[row] + t // r, A.indptr[row] + t % r
        flat = A.indices[first].astype(np.int64) * self.d + A.indices[second]
        return row, flat, A.data[first] * A.data[second]

    def _csc_kernels(self) -> ModuleType | None:
        """The compiled kernels if this operator's products use them (CSC ``A``, numba present), else ``None``."""
        return _kernels.active(self.n) if self.is_sparse and self.A.format == "csc" else None

    def dense_kernels(self) -> ModuleType | None:
        """The compiled kernels if this operator's row-wise passes use them (dense, row-major ``A``), else ``None``."""
        return None if self.is_sparse or not self.A.flags.c_contiguous else _kernels.active(self.n)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_local"]
        state.pop("_csc_parts", None)  # views of A: rebuilt on demand
        state.pop("_csr_parts", None)
        state.pop("_gram_pairs", None)
        state.pop("_AT", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    # ------------------------------------------------------------------ the counter
    @property
    def passes(self) -> int:
        """Passes over ``A`` made by this thread so far."""
        return getattr(self._local, "passes", 0)

    def _count(self) -> None:
        self._local.passes = self.passes + 1

    # ------------------------------------------------------------------ products
    def matvec(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        """``A @ x``; a ``ValueError`` naming ``name`` when the result is not finite."""
        self._count()
        kernels = self._csc_kernels()
        if kernels is not None:
            out = np.empty(self.n)
            finite = kernels.csc_matvec(*self._csc_parts, np.ascontiguousarray(x, dtype=float), out)
        elif (kernels := self.dense_kernels()) is not None:
            out = np.empty(self.n)
            x, A, cuts = np.ascontiguousarray(x, dtype=float), self.A, self._row_chunks(kernels)
            finite = all(_in_threads(len(cuts) - 1, lambda t: kernels.dense_matvec(A, x, cuts[t], cuts[t + 1], out)))
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                out = np.asarray(self.A @ x)
            finite = np.isfinite(out).all()
        if not finite:
            raise ValueError(f"{name} is too large: A @ {name} is not finite in float64")
        return out

    def rmatvec(self, y: np.ndarray) -> np.ndarray:
        """``A.T @ y`` for a vector or an ``(n, k)`` block (one pass either way)."""
        self._count()
        kernels = self._csc_kernels()
        if kernels is not None:  # no floating-point warnings from compiled code: no errstate (2-3 µs a call)
            out = self._compiled_rmatvec(kernels, y)
        else:
            out = self._numpy_rmatvec(y)
        if not np.isfinite(out).all():
            raise ValueError("the result overflows float64 (A.T @ y is not finite)")
        return out

    def _numpy_rmatvec(self, y: np.ndarray) -> np.ndarray:
        """``A.T @ y`` by numpy, BLAS or scipy.sparse, in the fastest way measured for each layout."""
        with np.errstate(over="ignore", invalid="ignore"):
            if y.ndim == 2 and not self.is_sparse:
                # (yᵀA)ᵀ: OpenBLAS streams a row-major A once for a few rows of yᵀ; Aᵀ @ y with a
                # skinny y took 1.8x as long (n = 10⁶, d = 200, k = 2).
                out = (np.ascontiguousarray(y.T) @ self.A).T
            elif y.ndim == 2:
                # One sparse product per column: 1.6-3.7x faster than scipy's multi-vector kernel
                # for two columns (n = 10⁴ to 10⁶, d = 100, 1% density).
                out = np.column_stack([self._AT @ y[:, j] for j in range(y.shape[1])])
            else:
                out = np.asarray(self._AT @ y)
        return out

    def _compiled_rmatvec(self, kernels: ModuleType, y: np.ndarray) -> np.ndarray:
        """``A.T @ y`` by the compiled kernel, column by column for an ``(n, k)`` block."""
        kernel, parts = kernels.csc_rmatvec, self._csc_parts
        if y.ndim == 1:
            out = np.empty(self.d)
            kernel(*parts, np.ascontiguousarray(y, dtype=float), out)
            return out
        out = np.empty((y.shape[1], self.d))
        for j in range(y.shape[1]):
            kernel(*parts, np.ascontiguousarray(y[:, j], dtype=float), out[j])
        return out.T

    def fused(self, x: np.ndarray, local: Any, k: int, name: str = "x") -> tuple[np.ndarray, np.ndarray]:
        """``z = A x`` and ``G = Yᵀ A`` in one pass over a dense ``A``, where ``Y``'s rows depend on ``z``'s.

        ``A`` is read in blocks of rows small enough to stay in cache: for each block ``b``,
        ``z_b = A_b x`` and then ``G += Y_b A_b`` with ``Y_b = local(z_b, rows, G)`` (``k × n_b``; ``local``
        may rescale the partial sum ``G``, ``k × d``, in place). Memory traffic is one read of ``A``
        instead of the two of :meth:`matvec` followed by :meth:`rmatvec`, when ``Y``'s rows are a function
        of ``z``'s and of sums kept aside (the Hessian-vector product, ``Problem._hessp_fused``).
        A ``ValueError`` naming ``name`` when ``A x`` is not finite; ``G`` is the caller's to check.
        """
        if self.is_sparse:
            raise TypeError("MatrixOperator.fused needs a dense A")
        self._count()
        A = self.A
        z = np.empty(self.n)
        G = np.zeros((k, self.d))
        rows = max(1, _FUSED_BLOCK_BYTES // (8 * self.d))
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, self.n, rows):
                sl = slice(start, min(start + rows, self.n))
                Ab = A[sl]
                zb = np.matmul(Ab, x, out=z[sl])
                if not np.isfinite(zb).all():
                    raise ValueError(f"{name} is too large: A @ {name} is not finite in float64")
                G += local(zb, sl, G) @ Ab
        return z, G

    def exp_pass(self, x: np.ndarray, gamma: float, b: np.ndarray, w2: np.ndarray | None,
                 kernels: ModuleType) -> tuple[np.ndarray, np.ndarray, float] | None:
        """``z = A x`` and the gradient's products for the units ``e^z + γz`` in one compiled pass over a dense ``A``.

        Returns ``(z, G, m)`` with ``G``'s rows ``Aᵀ(v∘u)``, ``Aᵀ(v∘b)``, ``Aᵀv`` (and ``Aᵀ(w²∘z)`` when
        ``w2`` is given) scaled by ``e^{−2m}``, ``e^{−m}``, ``e^{−m}`` (and 1), ``m = max(0, max z)``: the
        input of :func:`softres._state.fused_gradient`. ``None`` when ``A x`` is not finite. The rows are
        split into one contiguous chunk per thread (numba's thread count, ``NUMBA_NUM_THREADS``; chunks of
        at least :data:`_EXP_PASS_CHUNK_BYTES`), each run by ``kernels.dense_exp_pass`` with the GIL
        released, its sums brought to the common shift at the end.
        """
        self._count()
        A, n = self.A, self.n
        k = 3 if w2 is None else 4
        z = np.empty(n)
        w2 = np.empty(0) if w2 is None else w2
        cuts = self._row_chunks(kernels)
        chunks = len(cuts) - 1
        Gs = np.zeros((chunks, k, self.d))
        shifts = _in_threads(chunks, lambda t: kernels.dense_exp_pass(A, x, cuts[t], cuts[t + 1], gamma, b, w2, z,
                                                                      Gs[t]))
        if any(math.isnan(s) for s in shifts):
            return None
        m = max(shifts)
        for t, s in enumerate(shifts):
            if s != m:
                scale = math.exp(s - m)
                Gs[t, 0] *= scale * scale
                Gs[t, 1:3] *= scale
        return z, Gs.sum(axis=0), m

    def _row_chunks(self, kernels: ModuleType) -> list[int]:
        """Boundaries of contiguous chunks of rows of a dense ``A``, one per thread of the compiled kernels
        (``kernels.threads()``), each at least :data:`_EXP_PASS_CHUNK_BYTES`."""
        chunks = max(1, min(kernels.threads(), self.A.nbytes // _EXP_PASS_CHUNK_BYTES))
        return [self.n * t // chunks for t in range(chunks + 1)]

    def countsketch(self, buckets: np.ndarray, weights: np.ndarray, m: int) -> np.ndarray:
        """``S A`` (``m × d``, dense) for the CountSketch ``S`` with ``S[buckets[i], i] = weights[i]`` (one per column).

        One pass. A dense ``A`` with the compiled kernels (:func:`softres._kernels.active`) is added row
        by row into its buckets, one chunk of rows per thread (as :meth:`exp_pass`), each with its own
        ``m × d`` sums; otherwise ``S`` is a column-wise sparse matrix and scipy makes the product (which
        walks the rows of ``A`` in order: 4x faster than the row-wise layout, which visits them at random).
        """
        self._count()
        kernels = self.dense_kernels()
        if kernels is None and (self.is_sparse or self.A.flags.c_contiguous):
            S = sp.csc_array((weights, buckets, np.arange(self.n + 1)), shape=(m, self.n))
            SA = S @ self.A
            return SA.toarray() if sp.issparse(SA) else np.asarray(SA)
        if kernels is None:  # column-major: scipy would copy all of A row-major; a block of rows at a time
            SA = np.zeros((m, self.d))
            step = max(1, _FUSED_BLOCK_BYTES // (8 * self.d))
            for lo in range(0, self.n, step):
                hi = min(lo + step, self.n)
                S = sp.csc_array((weights[lo:hi], buckets[lo:hi], np.arange(hi - lo + 1)), shape=(m, hi - lo))
                SA += S @ np.ascontiguousarray(self.A[lo:hi])
            return SA
        A = self.A
        cuts = self._row_chunks(kernels)
        chunks = len(cuts) - 1
        out = np.zeros((chunks, m, self.d))
        buckets = np.ascontiguousarray(buckets)  # any integer type
        weights = np.ascontiguousarray(weights, dtype=float)
        _in_threads(chunks, lambda t: kernels.dense_countsketch(A, cuts[t], cuts[t + 1], buckets, weights, out[t]))
        return out.sum(axis=0)

    def projected_row_norms(self, P: np.ndarray) -> np.ndarray:
        """``‖(A P)_i‖²`` for every row ``i`` (an ``n``-vector), for a small ``d × k`` matrix ``P``: one pass.

        A dense ``A`` is taken in blocks of rows whose product with ``P`` is about four megabytes, never
        the ``n × k`` product at once (at ``n = 5·10⁷``, ``k = 32`` that product alone is 12.8 GB, and
        Algorithm 1 was killed for lack of memory on this machine). A sparse ``A`` in one product.
        """
        self._count()
        P = np.asarray(P, dtype=float)
        if self.is_sparse:
            Z = np.asarray(np.ascontiguousarray(P.T) @ self.A.T)  # k × n
            return np.einsum("ij,ij->j", Z, Z)
        out = np.empty(self.n)
        step = max(1, 2**19 // max(P.shape[1], 1))
        for lo in range(0, self.n, step):
            Z = self.A[lo:lo + step] @ P
            out[lo:lo + step] = np.einsum("ij,ij->i", Z, Z)
        return out

    def rows(self, index: np.ndarray) -> Any:
        """The rows ``A[index]`` (not a pass: only the indexed rows are read)."""
        return self.A[index]

    def gram_and_rmatvec(self, D: Any, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``Aᵀ diag(D) A`` and ``Aᵀ Y`` (``Y``: ``n × k``): one pass over a dense ``A`` (each block of rows
        of :func:`blocked_gram` also multiplies ``Y``'s rows), two over a sparse one."""
        if self.is_sparse:
            return self.gram(D), self.rmatvec(Y)
        D = as_vector(D, self.n, "D")
        self._count()
        AtY = np.zeros((self.d, Y.shape[1]))
        return blocked_gram(self.A, D, Y, AtY), AtY

    def gram(self, D: Any) -> np.ndarray:
        """Weighted Gram matrix ``Aᵀ diag(D) A`` (``d × d``) for an ``n``-vector ``D`` of any sign.

        Dense ``A``: symmetric rank-k updates (``R.T @ R``, which numpy hands to BLAS ``syrk``) over
        the rows with ``D > 0`` and ``D < 0``, half the flops of a general product, taken over blocks
        of rows so that the scaled copy of ``A`` stays near a megabyte. Sparse ``A``: where the compiled
        kernels serve (CSC ``A``, numba), a row-by-row sum over a CSR copy of ``A`` made on the first call
        (``csr_gram``; no sparse temporaries); else, with few nonzeros per row, one weighted
        ``np.bincount`` over the pairs of nonzeros that share a row (listed on the first call: at
        ``n = 10⁴``, ``d = 100``, 1% density 0.06 ms against 0.4 for scipy's product, which builds and
        converts two sparse matrices); else that sparse product.
        """
        D = as_vector(D, self.n, "D")
        self._count()
        kernels = self._csc_kernels()
        if kernels is not None:
            G = np.zeros((self.d, self.d))
            kernels.csr_gram(*self._csr_parts, np.ascontiguousarray(D, dtype=float), G)  # the upper triangle
            return G + np.triu(G, 1).T
        if self.is_sparse and self._gram_pairs is not None:
            row, flat, value = self._gram_pairs
            G = np.bincount(flat, weights=D[row] * value, minlength=self.d * self.d)  # int zeros if no pairs
            return G.reshape(self.d, self.d).astype(float, copy=False)
        if self.is_sparse:
            A = self.A
            if A.format == "csc":
                DA = sp.csc_array((A.data * D[A.indices], A.indices, A.indptr), shape=A.shape)
            else:
                DA = sp.csr_array((A.data * np.repeat(D, np.diff(A.indptr)), A.indices, A.indptr), shape=A.shape)
            return np.asarray((A.T @ DA).toarray())
        return blocked_gram(self.A, D)


#: Pairs of nonzeros sharing a row, per nonzero of a sparse ``A``, up to which :meth:`MatrixOperator.gram`
#: lists them (24 bytes a pair: at this bound about eight times the 12 bytes of ``A``'s own per nonzero).
#: One nonzero per row on average (Poisson) makes two pairs per nonzero.
GRAM_PAIRS = 4


def _in_threads(chunks: int, work: Any) -> list:
    """``[work(0), …, work(chunks − 1)]``, ``work(0)`` in the calling thread and the others each in a new
    thread (compiled kernels that release the GIL). An exception in any of them is raised here: a chunk
    is never silently missing."""
    results: list = [None] * chunks
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            results[t] = work(t)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(1, chunks)]
    for th in threads:
        th.start()
    run(0)
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return results


def blocked_gram(A: np.ndarray, D: np.ndarray, Y: np.ndarray | None = None,
                 AtY: np.ndarray | None = None) -> np.ndarray:
    """``Aᵀ diag(D) A`` for a dense ``A``, over row blocks of about a megabyte: never an ``n × d`` temporary.

    With ``Y`` (``n × k``), ``AtY += Aᵀ Y`` over the same blocks, while each is in cache.
    """
    n, d = A.shape
    G = np.zeros((d, d))
    step = max(1, _GRAM_BLOCK_BYTES // (8 * d))
    for start in range(0, n, step):
        Ab = A[start:start + step]
        G += signed_gram(Ab, D[start:start + step])
        if Y is not None:
            AtY += Ab.T @ Y[start:start + step]
    return G


def signed_gram(rows: Any, weights: np.ndarray) -> np.ndarray:
    """``rowsᵀ diag(weights) rows`` for weights of either sign: two ``syrk`` calls (dense) or one product."""
    if sp.issparse(rows):
        return np.asarray((rows.T @ (sp.diags_array(weights) @ rows)).toarray())
    G = np.zeros((rows.shape[1], rows.shape[1]))
    for sign in (1.0, -1.0):
        mask = sign * weights > 0
        if not mask.any():
            continue
        R = (rows if mask.all() else rows[mask]) * np.sqrt(sign * weights[mask])[:, None]
        # numpy recognises ``R.T @ R`` and calls BLAS syrk (half the flops of a general product).
        if sign > 0:
            G += R.T @ R
        else:
            G -= R.T @ R
    return G


def _dense_order(A: Any) -> str:
    """The layout in which :class:`MatrixOperator` stores a dense ``A``: ``"C"`` (row-major) where the compiled
    kernels serve its ``n`` rows (:func:`softres._kernels.active`), else ``"F"`` (column-major)."""
    shape = getattr(A, "shape", None)
    n = shape[0] if shape is not None and len(shape) == 2 else 0
    return "C" if _kernels.active(n) is not None else "F"


def as_operator(A: Any) -> Any:
    """``A`` itself if it is a :class:`MatrixOperator` or a Problem's, else a new operator over a copy.

    A ``dask.array.Array`` gets a :class:`softres._dask.DaskOperator` (the same products, block by
    block on the Dask cluster; dask is imported only then).
    """
    if isinstance(A, MatrixOperator) or getattr(A, "distributed", False):
        return A
    op = getattr(A, "op", None)
    if isinstance(op, MatrixOperator) or getattr(op, "distributed", False):
        return op
    if is_dask_array(A):
        from softres._dask import DaskOperator

        return DaskOperator(A)
    return MatrixOperator(A)


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the BLAS libraries loaded at the first call (numpy's and scipy's OpenBLAS, both
    imported by softres): a fresh scan costs about 0.7 ms, a limit through this one about 30 µs."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_BLAS_LIMIT = threading.RLock()  # one limit at a time: interleaved ones would restore each other's settings


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """A context in which BLAS runs on one thread (``threadpoolctl``), restored afterwards.

    For small dense products and factorisations next to the compiled passes over ``A``: a multithreaded
    BLAS call leaves its threads spinning (see :func:`dot`); after the ``100 × 100`` Gram matrix and
    eigenvalues of :func:`softres.sketch.condition_estimate`, the next pass at ``n = 10⁶`` took 118-122 ms
    instead of 67 (70 with this context). Experiments that make thousands of small products (``d`` of
    about ten) also ran many times slower with a multi-threaded OpenBLAS on a shared two-core machine (a
    gradient at ``n = 20,000`` took 25 ms instead of 0.8 ms under load). The limit is the process's: two
    threads entering it at once take turns (nested entries in one thread are fine).
    """
    with _BLAS_LIMIT, _blas_controller().limit(limits=1, user_api="blas"):
        yield


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``aᵀb`` for two ``n``-vectors in one thread (numpy's ``einsum`` loop), not BLAS's ``ddot``.

    From about ``10⁴`` entries OpenBLAS runs ``ddot`` (and ``A @ x``) on every core, and its threads then
    spin for milliseconds waiting for more work: the compiled kernels' threads that start next share
    the cores with them (a pass over ``A`` at ``n = 10⁶``, ``d = 100`` measured 58 ms after a 1-thread sum,
    95 ms right after ``ddot``, on this project's 2-core machine).
    """
    return float(np.einsum("i,i", a, b))


def safe_norm(v: np.ndarray) -> float:
    """``‖v‖₂`` without overflow or underflow (scaled by ``max|v_i|``); ``inf`` only if it is not representable."""
    if v.size == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # numpy reports BLAS's overflow as a warning
        squares = float(v @ v)
        if 1e-290 < squares < 1e290:  # nothing overflowed, nothing that counts underflowed: 2 µs, not 7
            return math.sqrt(squares)
        big = float(np.max(np.abs(v)))
        if big == 0.0 or not math.isfinite(big):
            return big
        if 1e-150 < big < 1e150:  # no overflow or underflow in the squares: no scaled copy needed
            return math.sqrt(squares)
        scaled = v / big
        return big * math.sqrt(float(scaled @ scaled))
