"""The compiled kernels of :mod:`softres._kernels` (imported only through :func:`softres._kernels.kernels`).

Every function is compiled by numba on first use (and cached on disk next to this file, or in
numba's user cache), holds no state and releases the GIL. The constants live here, not in another
module: numba's cache is invalidated by changes to this file only.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types as nbtypes
from numba.core import cgutils
from numba.extending import intrinsic

# exp(x) = 2^k e^r, k = round(x / ln 2), |r| <= ln 2 / 2, with ln 2 split in two (Cody and Waite).
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 to 32 bits: k * _LN2_HI is exact for |k| < 2^21
_LN2_LO = 1.9082149292705877e-10  # ln 2 - _LN2_HI
_SHIFT = 6755399441055744.0  # 1.5 * 2^52: x / ln 2 + _SHIFT holds round(x / ln 2) in its low bits
_SHIFT_BITS = 0x4338000000000000  # the bits of _SHIFT
_EXP_MIN = -708.0  # e^x below e^-708 ≈ 3.3e-308 (near the smallest normal float64) is returned as 0
# Taylor coefficients 1/j! for j = 13 down to 2: on |r| <= ln 2 / 2 the truncation error is below 4e-18.
_TAYLOR = tuple(1.0 / math.factorial(j) for j in range(13, 1, -1))


#: Rows ahead of the current ones that :func:`dense_exp_pass` asks the CPU to fetch: with its arithmetic
#: between the reads, the hardware prefetcher alone kept it 7-12% slower (n = 10⁵ and 10⁶, d = 100, 2 threads).
_PREFETCH_ROWS = 16

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")
_jit_reassoc = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract", "reassoc"})
_C13, _C12, _C11, _C10, _C9, _C8, _C7, _C6, _C5, _C4, _C3, _C2 = _TAYLOR


@intrinsic
def _as_bits(typingctx: Any, x: Any) -> Any:
    """The bits of a float64 as an int64 (a bit cast, no conversion)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], context.get_value_type(nbtypes.int64))

    return nbtypes.int64(nbtypes.float64), codegen


@intrinsic
def _from_bits(typingctx: Any, i: Any) -> Any:
    """The float64 whose bits are the given int64."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], context.get_value_type(nbtypes.float64))

    return nbtypes.float64(nbtypes.int64), codegen


@intrinsic
def _prefetch(typingctx: Any, arr: Any, index: Any) -> Any:
    """Ask the CPU to bring ``arr.flat[index]``'s cache line in (LLVM's ``prefetch``: read, keep, data)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return nbtypes.void(arr, index), codegen


# Only "contract" (fused multiply-adds): reassociation would undo the exact steps of the reduction.
@numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
def exp_nonpositive(x: float) -> float:
    """``e^x`` for ``x <= 0`` without branches, so that loops calling it are vectorised.

    ``x = k ln 2 + r`` with ``k = round(x / ln 2)`` (read off the low bits of ``x / ln 2 + 1.5·2^52``)
    and ``|r| <= ln 2 / 2``; ``e^r`` by its Taylor polynomial of degree 13 (truncation below
    ``4e-18``), ``2^k`` built from its exponent bits. Results below ``e^{-708}`` are ``0``.
    """
    xc = max(x, _EXP_MIN)
    t = xc * _LOG2E + _SHIFT
    k = t - _SHIFT
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = _C13
    p = p * r + _C12
    p = p * r + _C11
    p = p * r + _C10
    p = p * r + _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _from_bits((_as_bits(t) - _SHIFT_BITS + 1023) << 52)
    return p * scale if x >= _EXP_MIN else 0.0


@_jit
def exp_array(x: np.ndarray, out: np.ndarray) -> None:
    """``out = e^x`` entrywise for ``x <= 0`` (:func:`exp_nonpositive`)."""
    for i in range(x.size):
        out[i] = exp_nonpositive(x[i])


@_jit_reassoc
def csc_matvec(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, x: np.ndarray, out: np.ndarray) -> bool:
    """``out = A @ x`` for ``A`` in CSC (unsigned ``indices``, ``indptr``); whether every entry is finite."""
    out[:] = 0.0
    for j in range(x.size):
        xj = x[j]
        for k in range(indptr[j], indptr[j + 1]):
            out[indices[k]] += data[k] * xj
    acc = 0.0
    for i in range(out.size):
        acc += out[i] * 0.0  # nan as soon as one entry is inf or nan
    return acc == 0.0


@_jit
def csc_rmatvec(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """``out = A.T @ y`` for ``A`` in CSC (unsigned ``indices``, ``indptr``): one gather per column."""
    for j in range(out.size):
        s = 0.0
        for k in range(indptr[j], indptr[j + 1]):
            s += data[k] * y[indices[k]]
        out[j] = s


@_jit
def csr_gram(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, D: np.ndarray, G: np.ndarray) -> None:
    """``G[j, k] += Σ_i D_i A_ij A_ik`` for ``j ≤ k`` (the upper triangle), ``A`` in CSR (unsigned indices).

    Row by row: ``Σ_i nnz(row i)²`` multiply-adds (``n`` at one nonzero per row), no ``n``-sized
    temporary; scipy's sparse product ``Aᵀ (D A)`` builds and converts two sparse matrices instead
    (275 ms against a few here at ``n = 10⁶``, ``d = 100``, 1% density).
    """
    for i in range(D.size):
        Di = D[i]
        lo, hi = indptr[i], indptr[i + 1]
        for p in range(lo, hi):
            a = Di * data[p]
            j = indices[p]
            for q in range(lo, hi):
                k = indices[q]
                if k >= j:
                    G[j, k] += a * data[q]


@_jit_reassoc
def exp_state(z: np.ndarray, gamma: float, phi: np.ndarray, dphi: np.ndarray, ddphi: np.ndarray) -> tuple[float, float]:
    """``φ(z)e^{−m}``, ``φ'(z)e^{−m}``, ``φ''(z)e^{−m}`` for ``φ = e^z + γz`` into the arrays, in one pass.

    Returns ``(m, Σ |φ(z_i)|e^{−m})`` with ``m = max(0, max z)``; the second (a scale for the domain
    check of :class:`softres._state.State`) is summed in whatever order the vectorised loop takes.
    ``α̃ = Σ φ(z_i)e^{−m}`` is not: the caller sums ``phi`` with numpy's pairwise summation. One running
    sum here had a rounding error growing like ``n ε`` (600 ε measured at ``n = 10⁵``) that the
    gradient at ``x*`` inherited through ``<c, f>``, above the level :meth:`softres.Problem.grad_error`
    assumes (Newton stalled short of its tolerance), and its last bits depended on the arrays'
    addresses (two threads got different gradients).
    """
    m = 0.0
    for i in range(z.size):
        m = max(m, z[i])
    gs = gamma * math.exp(-m)
    total_abs = 0.0
    for i in range(z.size):
        e = exp_nonpositive(z[i] - m)
        u = e + gs * z[i]
        ddphi[i] = e
        phi[i] = u
        dphi[i] = e + gs
        total_abs += abs(u)
    return m, total_abs


#: Entries per partial sum of :func:`normalise`: a running sum of at most this many terms per block, the
#: blocks' sums then added pairwise by numpy, as numpy's own ``sum`` does in blocks of 128.
SUM_BLOCK = 128


@_jit
def normalise(u: np.ndarray, b: np.ndarray, v: np.ndarray, inv_alpha: float, c: np.ndarray,
              partial: np.ndarray) -> None:
    """``f = u / α`` and ``v ← v / α`` in place, ``c = f − b``, and the partial sums of ``<c, f>``, ``‖f‖²``,
    ``‖c‖²`` over blocks of :data:`SUM_BLOCK` entries into ``partial`` (``3 × ⌈n / SUM_BLOCK⌉``).

    The caller adds the blocks' sums (numpy, pairwise). Not BLAS's ``ddot``: at ``n = 10⁶`` OpenBLAS runs
    it on every core and its threads then spin for some milliseconds, which slowed the next compiled
    pass over ``A`` (:func:`dense_exp_pass`, on the same cores) from about 60 to 90 ms on this project's
    2-core machine. In source order, without reassociation: the sums do not depend on the arrays' addresses.
    """
    n = u.size
    for k in range(partial.shape[1]):
        cf = ff = cc = 0.0
        for i in range(k * SUM_BLOCK, min((k + 1) * SUM_BLOCK, n)):
            f = u[i] * inv_alpha
            ci = f - b[i]
            u[i] = f
            v[i] *= inv_alpha
            c[i] = ci
            cf += ci * f
            ff += f * f
            cc += ci * ci
        partial[0, k] = cf
        partial[1, k] = ff
        partial[2, k] = cc


@_jit
def gradient_weights(v_hat: np.ndarray, c: np.ndarray, cf: float, w2: np.ndarray, z: np.ndarray, out: np.ndarray,
                     r: np.ndarray) -> None:
    """``r = c − <c, f>`` and ``out = v/α ∘ r + w² ∘ z``; a ``w2`` of size 0 means no regulariser."""
    if w2.size == 0:
        for i in range(c.size):
            ri = c[i] - cf
            r[i] = ri
            out[i] = v_hat[i] * ri
    else:
        for i in range(c.size):
            ri = c[i] - cf
            r[i] = ri
            out[i] = v_hat[i] * ri + w2[i] * z[i]


def threads() -> int:
    """Threads for :meth:`softres._linalg.MatrixOperator.exp_pass`: ``NUMBA_NUM_THREADS`` (default: the cores)."""
    return numba.config.NUMBA_NUM_THREADS


@_jit_reassoc
def dense_exp_pass(A: np.ndarray, x: np.ndarray, lo: int, hi: int, gamma: float, b: np.ndarray, w2: np.ndarray,
                   z: np.ndarray, G: np.ndarray) -> float:
    """``z = A x`` and the gradient's products ``G = Yᵀ A`` over rows ``lo:hi`` of a dense ``A``, one read of each row.

    For the units ``φ = e^z + γz``, with ``m`` the largest ``max(0, z_i)`` seen so far: ``Y``'s columns are
    ``φ'(z)φ(z)e^{−2m}``, ``φ'(z) b e^{−m}``, ``φ'(z)e^{−m}`` and, when ``G`` has four rows, ``w² z``
    (the terms of :func:`softres._state.fused_gradient`). Rows are taken four at a time: their ``z_i``
    first (the shift rises to their largest, the sums so far rescaled), then one update of ``G`` from
    the four rows while they are in the L1 cache. Returns the final ``m``, or ``nan`` as soon as a
    ``z_i`` is not finite (``z`` and ``G`` are then incomplete).
    """
    d = A.shape[1]
    reg = G.shape[0] == 4
    g0, g1, g2, g3 = np.zeros(d), np.zeros(d), np.zeros(d), np.zeros(d)
    m = 0.0
    gs = gamma
    flat = A.reshape(-1)
    ahead, last = _PREFETCH_ROWS * d, flat.size - 1
    for i0 in range(lo, hi, 4):
        i1 = min(i0 + 4, hi)
        for k in range(i0 * d + ahead, i1 * d + ahead, 8):  # the rows of a later group, a cache line at a time
            _prefetch(flat, min(k, last))
        top = m
        for i in range(i0, i1):
            zi = 0.0
            for j in range(d):
                zi += A[i, j] * x[j]
            if zi - zi != 0.0:  # inf or nan
                return math.nan
            z[i] = zi
            top = max(top, zi)
        if top > m:  # the sums so far were scaled by e^{−m}: bring them to e^{−top}
            s = exp_nonpositive(m - top)
            for j in range(d):
                g0[j] *= s * s
                g1[j] *= s
                g2[j] *= s
            m = top
            gs = gamma * math.exp(-m)
        if i1 - i0 < 4:  # the last rows of the chunk, one at a time
            for i in range(i0, i1):
                zi = z[i]
                e = exp_nonpositive(zi - m)
                v = e + gs
                p, q, r = v * (e + gs * zi), v * b[i], w2[i] * zi if reg else 0.0
                a = A[i]
                for j in range(d):
                    g0[j] += p * a[j]
                    g1[j] += q * a[j]
                    g2[j] += v * a[j]
                    g3[j] += r * a[j]
            break
        # Four rows' weights in scalars (not arrays: the compiler would reload them after every store to g)
        z0, z1, z2, z3 = z[i0], z[i0 + 1], z[i0 + 2], z[i0 + 3]
        e0, e1 = exp_nonpositive(z0 - m), exp_nonpositive(z1 - m)
        e2, e3 = exp_nonpositive(z2 - m), exp_nonpositive(z3 - m)
        v0, v1, v2, v3 = e0 + gs, e1 + gs, e2 + gs, e3 + gs
        p0, p1, p2, p3 = v0 * (e0 + gs * z0), v1 * (e1 + gs * z1), v2 * (e2 + gs * z2), v3 * (e3 + gs * z3)
        q0, q1, q2, q3 = v0 * b[i0], v1 * b[i0 + 1], v2 * b[i0 + 2], v3 * b[i0 + 3]
        a0, a1, a2, a3 = A[i0], A[i0 + 1], A[i0 + 2], A[i0 + 3]
        if reg:
            r0, r1, r2, r3 = w2[i0] * z0, w2[i0 + 1] * z1, w2[i0 + 2] * z2, w2[i0 + 3] * z3
            for j in range(d):
                c0, c1, c2, c3 = a0[j], a1[j], a2[j], a3[j]
                g0[j] += p0 * c0 + p1 * c1 + p2 * c2 + p3 * c3
                g1[j] += q0 * c0 + q1 * c1 + q2 * c2 + q3 * c3
                g2[j] += v0 * c0 + v1 * c1 + v2 * c2 + v3 * c3
                g3[j] += r0 * c0 + r1 * c1 + r2 * c2 + r3 * c3
        else:  # no fourth sum to update
            for j in range(d):
                c0, c1, c2, c3 = a0[j], a1[j], a2[j], a3[j]
                g0[j] += p0 * c0 + p1 * c1 + p2 * c2 + p3 * c3
                g1[j] += q0 * c0 + q1 * c1 + q2 * c2 + q3 * c3
                g2[j] += v0 * c0 + v1 * c1 + v2 * c2 + v3 * c3
    G[0], G[1], G[2] = g0, g1, g2
    if reg:
        G[3] = g3
    return m


@_jit_reassoc
def dense_matvec(A: np.ndarray, x: np.ndarray, lo: int, hi: int, z: np.ndarray) -> bool:
    """``z = A x`` over rows ``lo:hi`` of a dense ``A``; whether every entry is finite."""
    d = A.shape[1]
    acc = 0.0
    for i in range(lo, hi):
        zi = 0.0
        for j in range(d):
            zi += A[i, j] * x[j]
        z[i] = zi
        acc += zi * 0.0  # nan as soon as one entry is inf or nan
    return acc == 0.0


@_jit
def dense_countsketch(A: np.ndarray, lo: int, hi: int, buckets: np.ndarray, weights: np.ndarray,
                      out: np.ndarray) -> None:
    """``out[buckets[i]] += weights[i] · A[i]`` for the rows ``lo:hi`` of a dense ``A`` (its CountSketch)."""
    d = A.shape[1]
    for i in range(lo, hi):
        k = buckets[i]
        wi = weights[i]
        for j in range(d):
            out[k, j] += wi * A[i, j]
