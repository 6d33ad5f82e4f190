"""The soft-residual regression problem of Song, Wang and Yin (arXiv:2309.13482).

Everything the paper defines at a point ``x`` (Definition 3.1), the loss (Definition 1.4 plus the
regulariser of Section 9), its gradient (Lemma 4.1), its Hessian (Lemma 5.2) and the Hessian's
"diagonal plus rank two" structure (Lemma 5.4) live on one class, :class:`Problem`.

Numerical scheme
----------------
With ``z = Ax`` and ``m = max(0, max_i z_i)`` every quantity is computed from the scaled vectors
``e = exp(z - m)``, ``ũ = e + z e^{-m} = u e^{-m}`` and ``ṽ = e + e^{-m} = v e^{-m}``, and the scaled
normaliser ``α̃ = <ũ, 1> = α e^{-m}``. The loss, gradient and Hessian are ratios of equal degree in
``e^m`` (``f = ũ / α̃``, ``v / α = ṽ / α̃``, ``exp(z) / α = e / α̃``), so the factor cancels and
nothing overflows even for ``max(Ax) = 1e4``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from softres._validate import as_matrix, as_vector, check_finite_scalar

__all__ = ["CSC_MAX_ROW_NNZ", "MAX_DENSE_B", "DomainError", "Problem"]

#: A sparse ``A`` with fewer nonzeros per row than this is stored as ``csc_array`` (see :class:`Problem`).
CSC_MAX_ROW_NNZ = 16

#: Bytes of scaled rows of a dense ``A`` per BLAS call in :meth:`Problem.gram`. Blocks the size of a 1 MB
#: L2 cache were the fastest of 1, 2, 4 MB and a single n × d product for most shapes tried
#: (n = 1e4 to 1e6, d = 50 to 200; within 10% of the best for the others).
_GRAM_BLOCK_BYTES = 1 << 20

#: Largest ``n`` for which :meth:`Problem.B` materialises the ``n × n`` matrix ``B(x)``.
MAX_DENSE_B = 2000


class DomainError(ValueError):
    """``α(x) = <exp(Ax) + Ax, 1> ≤ 0``: the point lies outside the paper's domain.

    The paper (Definition 1.4 and the assumption ``α(x) ≥ β > 0`` of Lemma 7.1 and Theorem 9.1)
    only defines the normalised output where ``α(x) > 0``. ``alpha`` holds ``α(x)`` (possibly
    ``-inf``/``inf`` only when it is not representable).
    """

    def __init__(self, alpha: float, message: str | None = None) -> None:
        self.alpha = alpha
        super().__init__(
            message
            or f"x is outside the domain: alpha(x) = <exp(Ax) + Ax, 1> = {alpha:.6g} <= 0; "
            "the normalised output f(x) = u(x) / alpha(x) needs alpha(x) > 0"
        )


class _Buffers:
    """``n``-sized work arrays owned by one :class:`Problem` and reused from point to point.

    Fresh multi-megabyte arrays cost page faults on first touch; for a sparse ``A`` with a few
    nonzeros per row those ``O(n)`` costs rival the products with ``A``. The arrays of a state are
    internal (every public accessor returns a copy), so the next point may overwrite them.
    """

    __slots__ = ("B_diag", "D", "U", "c", "e", "f", "r", "tmp", "v_hat", "y")

    def __init__(self, n: int) -> None:
        for name in ("B_diag", "D", "c", "e", "f", "r", "tmp", "v_hat", "y"):
            setattr(self, name, np.empty(n))
        self.U = np.empty((2, n)).T  # (n, 2), Fortran order: columns are contiguous


class _State:
    """Scaled quantities at one point ``x``; see the module docstring for the scaling.

    Every ``n``-vector lives in the problem's :class:`_Buffers` and is written in place.
    """

    __slots__ = ("_has_B_diag", "_has_D", "_has_U", "alpha_scaled", "buf", "cf", "ff", "m", "x", "z")

    def __init__(self, x: np.ndarray, z: np.ndarray, b: np.ndarray, buf: _Buffers) -> None:
        self.x = x
        self.z = z
        self.buf = buf
        m = max(0.0, float(z.max()))
        self.m = m
        e = np.subtract(z, m, out=buf.e)
        np.exp(e, out=e)  # ≤ 1: no overflow; underflow to 0 is harmless
        s = math.exp(-m)
        u = np.multiply(z, s, out=buf.f)
        u += e
        with np.errstate(over="ignore", invalid="ignore"):
            alpha_scaled = float(u.sum())  # -inf when many entries near -1.8e308 sum past float64
        # The sign of a sum is only meaningful above its rounding error; Σ|u| ≤ n (1 + s max|z|)
        # bounds that error cheaply, and the exact Σ|u| is only needed close to the threshold.
        tol = 4.0 * z.size * np.finfo(float).eps
        bound = z.size * (1.0 + s * max(abs(float(z.min())), m))
        if not alpha_scaled > tol * bound and not alpha_scaled > tol * float(np.abs(u).sum()):
            raise DomainError(_unscale(alpha_scaled, m))
        self.alpha_scaled = alpha_scaled
        u *= 1.0 / alpha_scaled  # u is now f
        c = np.subtract(u, b, out=buf.c)
        self.cf = float(c @ u)
        self.ff = float(u @ u)
        np.subtract(c, self.cf, out=buf.r)
        v_hat = np.add(e, s, out=buf.v_hat)
        v_hat *= 1.0 / alpha_scaled  # = v / α
        self._has_B_diag = self._has_D = self._has_U = False

    f = property(lambda self: self.buf.f, doc="``f = u / α``")
    c = property(lambda self: self.buf.c, doc="``c = f − b``")
    r = property(lambda self: self.buf.r, doc="``r = c − <c, f>``")
    v_hat = property(lambda self: self.buf.v_hat, doc="``v / α``")

    @property
    def B_diag(self) -> np.ndarray:
        """``α⁻² v∘v + α⁻¹ exp(Ax)∘r`` (Lemma 5.4); ``exp(Ax)/α = e / α̃``."""
        bd = self.buf.B_diag
        if not self._has_B_diag:
            np.multiply(self.buf.e, self.buf.r, out=bd)
            bd *= 1.0 / self.alpha_scaled
            np.multiply(self.v_hat, self.v_hat, out=self.buf.tmp)
            bd += self.buf.tmp
            self._has_B_diag = True
        return bd

    def D(self, w2: np.ndarray) -> np.ndarray:
        """``B_diag + W²``, the diagonal of the regularised Hessian's middle factor (cached)."""
        if not self._has_D:
            np.add(self.B_diag, w2, out=self.buf.D)
            self._has_D = True
        return self.buf.D

    @property
    def U(self) -> np.ndarray:
        """``(n, 2)`` Fortran-ordered ``[v/α, p/α]`` with ``p = v ∘ (2f − b − <c, f>)`` (Lemma 5.4)."""
        U = self.buf.U
        if not self._has_U:
            U[:, 0] = self.v_hat
            np.add(self.f, self.r, out=U[:, 1])
            U[:, 1] *= self.v_hat
            self._has_U = True
        return U


def _unscale(value: float, m: float) -> float:
    """Return ``value · e^m`` as a float (±inf when it overflows), without warnings."""
    if value == 0.0:
        return 0.0
    log_mag = math.log(abs(value)) + m
    mag = math.exp(log_mag) if log_mag < 709.0 else math.inf
    return math.copysign(mag, value)


class Problem:
    """Soft-residual regression: ``L(x) = ½‖α(x)⁻¹ u(x) − b‖² + ½‖W A x‖²``.

    Definition 1.4 of the paper (Song, Wang, Yin 2023) with the basic functions of Definition 3.1
    and the regulariser ``L_reg`` used by Lemma 7.1 and Theorem 9.1.

    Parameters
    ----------
    A : (n, d) array_like or scipy.sparse matrix
        Data matrix; stored as a float64 ndarray, or as a ``scipy.sparse`` array in the layout whose
        products are faster (see Notes).
    b : (n,) array_like
        Target vector.
    w : (n,) array_like, float, or None
        Regulariser weights ``W = diag(w)``; a scalar is broadcast, ``None`` means ``w = 0``
        (the unregularised loss ``L_exp``).

    Raises
    ------
    TypeError
        Non-numeric ``A``, ``b`` or ``w``.
    ValueError
        Wrong shapes, ``n < 1`` or ``d < 1``, or non-finite entries.

    Notes
    -----
    Evaluating several quantities at the same ``x`` computes ``Ax`` and ``exp(Ax)`` once: the last
    point's state is cached, as scipy's ``MemoizeJac`` does.

    A sparse ``A`` with few nonzeros per row (fewer than ``CSC_MAX_ROW_NNZ``) is stored column-wise
    (``csc_array``): ``A @ x`` then scatters column by column and ``A.T @ y`` gathers. Each product
    measured about 4× faster than in the row-wise layout for ``n = 10⁶``, ``d = 100`` at 1% density
    (one nonzero per row, where CSR's per-row loop mispredicts branches); rows with 100 nonzeros keep
    ``csr_array``, 2× faster there. ``benchmarks/bench_derivatives.py`` prints both layouts' cost.
    """

    def __init__(self, A: Any, b: Any, w: Any = None) -> None:
        self.A = as_matrix(A, "A")
        self.n, self.d = self.A.shape
        self.is_sparse = sp.issparse(self.A)
        self.b = as_vector(b, self.n, "b")
        if w is None:
            self.w = np.zeros(self.n)
        elif np.ndim(w) == 0:
            self.w = np.full(self.n, check_finite_scalar(w, "w"))
        else:
            self.w = as_vector(w, self.n, "w")
        with np.errstate(over="ignore"):
            self.w2 = self.w * self.w
        if not np.all(np.isfinite(self.w2)):
            raise ValueError("w is too large: w**2 overflows float64")
        self._regularised = bool(np.any(self.w2))
        if self.is_sparse and self.A.nnz < CSC_MAX_ROW_NNZ * self.n:
            self.A = self.A.tocsc()
        self._state: _State | None = None
        self._buffers: _Buffers | None = None

    def __repr__(self) -> str:
        kind = f"sparse, nnz={self.A.nnz}" if self.is_sparse else "dense"
        return f"Problem(n={self.n}, d={self.d}, {kind})"

    # ------------------------------------------------------------------ plumbing
    def _x(self, x: Any) -> np.ndarray:
        return as_vector(x, self.d, "x")

    def _matvec(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        """``A @ x`` (kept separate so tests can count passes over ``A``)."""
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.asarray(self.A @ x)
        if not np.all(np.isfinite(out)):
            raise ValueError(f"{name} is too large: A @ {name} is not finite in float64")
        return out

    def _rmatvec(self, y: np.ndarray) -> np.ndarray:
        """``A.T @ y`` for a vector or an ``(n, k)`` block."""
        with np.errstate(over="ignore", invalid="ignore"):
            if y.ndim == 2 and not self.is_sparse:
                # (yᵀA)ᵀ: OpenBLAS streams a row-major A once for a few rows of yᵀ; Aᵀ @ y with a
                # skinny y took 1.8x as long (n = 10⁶, d = 200, k = 2).
                out = (np.ascontiguousarray(y.T) @ self.A).T
            elif y.ndim == 2:
                # One sparse product per column: 1.6-3.7x faster than scipy's multi-vector kernel
                # for two columns (n = 10⁴ to 10⁶, d = 100, 1% density).
                out = np.column_stack([self.A.T @ y[:, j] for j in range(y.shape[1])])
            else:
                out = np.asarray(self.A.T @ y)
        if not np.all(np.isfinite(out)):
            raise ValueError("the result overflows float64 (A.T @ y is not finite)")
        return out

    def _Ax(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        x = self._x(x)
        st = self._state
        if st is not None and np.array_equal(st.x, x):
            return st.x, st.z
        return x, self._matvec(x)

    def _at(self, x: Any) -> _State:
        st = self._state
        if st is not None and st.x.shape == np.shape(x) and np.array_equal(st.x, x):
            return st
        x, z = self._Ax(x)
        if self._buffers is None:
            self._buffers = _Buffers(self.n)
        self._state = None  # the new state overwrites the shared buffers, even if it raises
        st = _State(x.copy(), z, self.b, self._buffers)
        self._state = st
        return st

    # ------------------------------------------------------------------ Definition 3.1
    def u(self, x: Any) -> np.ndarray:
        """``u(x) = exp(Ax) + Ax``, the residual unit (Definition 3.1); ``inf`` where it overflows."""
        _, z = self._Ax(x)
        with np.errstate(over="ignore"):
            return np.exp(z) + z

    def v(self, x: Any) -> np.ndarray:
        """``v(x) = exp(Ax) + 1``, the elementwise derivative of ``u`` (Definition 3.1)."""
        _, z = self._Ax(x)
        with np.errstate(over="ignore"):
            return np.exp(z) + 1.0

    def alpha(self, x: Any) -> float:
        """``α(x) = <u(x), 1>`` (Definition 3.1). May be ``≤ 0`` (outside the domain) or ``inf``."""
        _, z = self._Ax(x)
        m = max(0.0, float(z.max()))
        return _unscale(float((np.exp(z - m) + z * math.exp(-m)).sum()), m)

    def in_domain(self, x: Any) -> bool:
        """``True`` when ``α(x) > 0`` (numerically: above the rounding error of the sum)."""
        try:
            self._at(x)
        except DomainError:
            return False
        return True

    def f(self, x: Any) -> np.ndarray:
        """``f(x) = α(x)⁻¹ u(x)`` (Definition 3.1). Raises :class:`DomainError` if ``α(x) ≤ 0``."""
        return self._at(x).f.copy()

    def c(self, x: Any) -> np.ndarray:
        """``c(x) = f(x) − b`` (Definition 3.1)."""
        return self._at(x).c.copy()

    # ------------------------------------------------------------------ losses
    def loss_exp(self, x: Any) -> float:
        """``L_exp(x) = ½‖c(x)‖²`` (Definition 1.4)."""
        c = self._at(x).c
        return 0.5 * float(c @ c)

    def loss_reg(self, x: Any) -> float:
        """``L_reg(x) = ½‖W A x‖²`` (the regulariser of Lemma 7.1 / Theorem 9.1)."""
        _, z = self._Ax(x)
        return self._reg(z)

    def loss(self, x: Any) -> float:
        """``L(x) = L_exp(x) + L_reg(x)``, the objective of Theorem 9.1."""
        st = self._at(x)
        return 0.5 * float(st.c @ st.c) + self._reg(st.z)

    def _reg(self, z: np.ndarray) -> float:
        if not self._regularised:
            return 0.0
        with np.errstate(over="ignore"):
            wz = self.w * z
            val = 0.5 * float(wz @ wz)
        if not math.isfinite(val):
            raise ValueError("x is too large: the regulariser ½‖W A x‖² overflows float64")
        return val

    # ------------------------------------------------------------------ Lemma 4.1
    def grad(self, x: Any) -> np.ndarray:
        """Gradient ``∇L(x) = α⁻¹ Aᵀ(v ∘ r) + Aᵀ W² A x`` with ``r = c − <c, f>`` (Lemma 4.1).

        One product with ``A`` (shared with the loss through the cache) and one with ``Aᵀ``:
        ``O(nnz(A))``.
        """
        st = self._at(x)
        y = np.multiply(st.v_hat, st.r, out=st.buf.y)
        if self._regularised:
            with np.errstate(over="ignore", invalid="ignore"):
                y += np.multiply(self.w2, st.z, out=st.buf.tmp)
        return self._rmatvec(y)

    def grad_exp(self, x: Any) -> np.ndarray:
        """Gradient of ``L_exp`` alone (Lemma 4.1, Part 8 summed over coordinates)."""
        st = self._at(x)
        return self._rmatvec(np.multiply(st.v_hat, st.r, out=st.buf.y))

    def grad_alpha(self, x: Any) -> np.ndarray:
        """``∇α(x) = Aᵀ v(x)`` (Lemma 4.1: ``∂α/∂x_i = <v, A_{*,i}>``); ``inf`` on overflow."""
        return self._rmatvec(self.v(x))

    def jac_u(self, x: Any) -> np.ndarray:
        """Jacobian ``∂u/∂x = diag(v) A`` (Lemma 4.1: ``∂u/∂x_i = v ∘ A_{*,i}``), dense ``(n, d)``."""
        return self.v(x)[:, None] * self._dense_A()

    def jac_f(self, x: Any) -> np.ndarray:
        """Jacobian ``∂f/∂x = α⁻¹ (diag(v) − f vᵀ) A`` (Lemma 4.1), dense ``(n, d)``.

        Column ``i`` is ``α⁻¹ v ∘ A_{*,i} − α⁻¹ f <v, A_{*,i}>``. It is also ``∂c/∂x``.
        """
        st = self._at(x)
        A = self._dense_A()
        return st.v_hat[:, None] * A - np.outer(st.f, st.v_hat @ A)

    def _dense_A(self) -> np.ndarray:
        return self.A.toarray() if self.is_sparse else self.A

    # ------------------------------------------------------------------ Lemma 5.4
    def B_diag(self, x: Any) -> np.ndarray:
        """Diagonal of ``B_diag(x) = diag(α⁻² v∘v + α⁻¹ exp(Ax)∘r)`` (Lemma 5.4), an ``n``-vector."""
        return self._at(x).B_diag.copy()

    def B_rank(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Rank-two part of Lemma 5.4 as factors ``(U, C)`` with ``B_rank(x) = U C Uᵀ``.

        ``B_rank = α⁻² (‖f‖² v vᵀ − v pᵀ − p vᵀ)`` with ``p = v ∘ (2f − b − <c, f>)``, so
        ``U = [v, p] / α`` (``n × 2``) and ``C = [[‖f‖², −1], [−1, 0]]``.
        """
        st = self._at(x)
        return np.array(st.U), np.array([[st.ff, -1.0], [-1.0, 0.0]])

    def B(self, x: Any) -> np.ndarray:
        """The ``n × n`` matrix ``B(x) = B_diag(x) + B_rank(x)`` of Lemma 5.4 (small ``n`` only).

        ``∇²L_exp(x) = Aᵀ B(x) A`` (Lemma 5.2). Refuses ``n > MAX_DENSE_B``: the solvers and
        :meth:`hess` never form it.
        """
        if self.n > MAX_DENSE_B:
            raise ValueError(
                f"B(x) is an n x n matrix; n = {self.n} exceeds MAX_DENSE_B = {MAX_DENSE_B}. "
                "Use B_diag(x) and B_rank(x) instead."
            )
        U, C = self.B_rank(x)
        return np.diag(self.B_diag(x)) + U @ C @ U.T

    # ------------------------------------------------------------------ Lemma 5.2
    def hessp(self, x: Any, s: Any) -> np.ndarray:
        """Hessian-vector product ``∇²L(x) s = Aᵀ((B_diag + W²)(As) + B_rank (As))`` in ``O(nnz(A))``.

        Uses the structure of Lemma 5.4; repeated calls at the same ``x`` reuse ``B_diag(x)``.
        """
        st = self._at(x)
        s = as_vector(s, self.d, "s")
        t = self._matvec(s, "s")
        with np.errstate(over="ignore", invalid="ignore"):  # overflow surfaces in _rmatvec's check
            vt, pt = t @ st.U
            y = np.multiply(st.D(self.w2), t, out=st.buf.y)
            y += np.matmul(st.U, np.array([st.ff * vt - pt, -vt]), out=st.buf.tmp)  # + B_rank (As)
        return self._rmatvec(y)

    def hess(self, x: Any) -> np.ndarray:
        """Hessian ``∇²L(x) = Aᵀ(B_diag(x) + W²)A + Aᵀ B_rank(x) A`` as a ``d × d`` array (Lemma 5.2).

        One weighted Gram product (a BLAS ``syrk`` for dense ``A``, a sparse product for sparse
        ``A``) plus the exact rank-two update of Lemma 5.4: ``O(n d²)`` dense, never ``n × n``.
        """
        st = self._at(x)
        return self._hessian(st, st.D(self.w2))

    def hess_exp(self, x: Any) -> np.ndarray:
        """Hessian of ``L_exp`` alone, ``Aᵀ B(x) A`` (Lemma 5.2), ``d × d``."""
        st = self._at(x)
        return self._hessian(st, st.B_diag)

    def hess_rank2(self, x: Any) -> np.ndarray:
        """``Aᵀ B_rank(x) A`` (``d × d``), the rank-two part of Lemma 5.4 mapped through ``A``.

        ``α⁻²(‖f‖² a aᵀ − a qᵀ − q aᵀ)`` with ``a = Aᵀv``, ``q = Aᵀp``: two products with ``Aᵀ``
        plus ``O(d²)``. The sketched Hessian of Algorithm 1 adds it exactly.
        """
        return self._rank2(self._at(x))

    def _rank2(self, st: _State) -> np.ndarray:
        a, q = self._rmatvec(st.U).T
        with np.errstate(over="ignore", invalid="ignore"):
            return st.ff * np.outer(a, a) - np.outer(a, q) - np.outer(q, a)

    def _hessian(self, st: _State, D: np.ndarray) -> np.ndarray:
        """``Aᵀ diag(D) A + Aᵀ B_rank A``."""
        with np.errstate(over="ignore", invalid="ignore"):
            G = self.gram(D)
            G += self._rank2(st)
        if not np.all(np.isfinite(G)):
            raise ValueError("the Hessian overflows float64 at this x (entries of A or w too large)")
        return G

    def gram(self, D: Any) -> np.ndarray:
        """Weighted Gram matrix ``Aᵀ diag(D) A`` (``d × d``) for an ``n``-vector ``D`` of any sign.

        Dense ``A``: symmetric rank-k updates (``R.T @ R``, which numpy hands to BLAS ``syrk``) over
        the rows with ``D > 0`` and ``D < 0``, half the flops of a general product, taken over blocks
        of rows so that the scaled copy of ``A`` stays near a megabyte. Sparse ``A``: one sparse product.
        """
        D = as_vector(D, self.n, "D")
        if self.is_sparse:
            A = self.A
            if A.format == "csc":
                DA = sp.csc_array((A.data * D[A.indices], A.indices, A.indptr), shape=A.shape)
            else:
                DA = sp.csr_array((A.data * np.repeat(D, np.diff(A.indptr)), A.indices, A.indptr), shape=A.shape)
            return np.asarray((A.T @ DA).toarray())
        G = np.zeros((self.d, self.d))
        step = max(1, _GRAM_BLOCK_BYTES // (8 * self.d))
        for start in range(0, self.n, step):  # row blocks: never an n × d temporary
            A_blk, D_blk = self.A[start:start + step], D[start:start + step]
            for sign in (1.0, -1.0):
                mask = sign * D_blk > 0
                if not mask.any():
                    continue
                rows = A_blk if mask.all() else A_blk[mask]
                rows = rows * np.sqrt(sign * D_blk[mask])[:, None]
                # numpy recognises ``R.T @ R`` and calls BLAS syrk (half the flops of a general product).
                if sign > 0:
                    G += rows.T @ rows
                else:
                    G -= rows.T @ rows
        return G
