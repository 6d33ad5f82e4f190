"""The soft-residual regression problem of Song, Wang and Yin (arXiv:2309.13482).

Everything the paper defines at a point ``x`` (Definition 3.1), the loss (Definition 1.4 plus the
regulariser of Section 9), its gradient (Lemma 4.1), its Hessian (Lemma 5.2) and the Hessian's
"diagonal plus rank two" structure (Lemma 5.4) live on one class, :class:`Problem`.

The scaled evaluation that keeps ``exp(Ax)`` from overflowing is described in :mod:`softres._state`.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from softres._linalg import CSC_MAX_ROW_NNZ, MatrixOperator, dot
from softres._state import Buffers, DomainError, State, fused_gradient, unscale
from softres._validate import as_vector, check_int, check_real, is_dask_array, read_only
from softres.units import UNIFIED, as_unit

__all__ = ["CSC_MAX_ROW_NNZ", "MAX_DENSE_B", "DomainError", "Problem"]

#: Largest ``n`` for which :meth:`Problem.B` materialises the ``n × n`` matrix ``B(x)``.
MAX_DENSE_B = 2000


class Problem:
    """Soft-residual regression: ``L(x) = ½‖α(x)⁻¹ u(x) − b‖² + ½‖W A x‖²``.

    Definition 1.4 of the paper (Song, Wang, Yin 2023) with the basic functions of Definition 3.1
    and the regulariser ``L_reg`` used by Lemma 7.1 and Theorem 9.1.

    Parameters
    ----------
    A : (n, d) array_like, scipy.sparse matrix or dask.array.Array
        Data matrix; stored as a float64 ndarray, or as a ``scipy.sparse`` array in the layout whose
        products are faster (see Notes). A Dask array (blocks of whole rows) gives a
        :class:`softres._dask.DaskProblem`: the same methods computed block by block on the Dask
        cluster, ``A`` never gathered (needs the optional ``softres[dask]``; passes per call there).
    b : (n,) array_like
        Target vector.
    w : (n,) array_like, float, or None
        Regulariser weights ``W = diag(w)``; a scalar is broadcast, ``None`` means ``w = 0``
        (the unregularised loss ``L_exp``).
    unit : str or softres.units.Unit, optional
        The unit ``φ`` with ``u = φ(Ax)``: the paper's ``"unified"`` ``e^z + z`` (default),
        ``"softmax"`` (Definition 1.1), ``"shortcut"`` (``z``), ``"cosh"``, ``"sinh"`` (Definition 1.3),
        or ``softres.units.unified(gamma)`` for ``e^z + γz``. Every method works for every unit.

    Raises
    ------
    TypeError
        Non-numeric ``A``, ``b`` or ``w``.
    ValueError
        Wrong shapes, ``n < 1`` or ``d < 1``, or non-finite entries.

    Notes
    -----
    ``A``, ``b`` and ``w`` are copied on entry and stored read-only (a read-only float64 ``A`` already
    in the stored layout is used without a copy), so later changes to the caller's arrays never reach
    the problem. ``A`` is kept in the layout whose products are fastest (a dense one column-major, or
    row-major where the compiled kernels read it: :class:`softres._linalg.MatrixOperator`, which also
    counts passes over ``A``: ``problem.op.passes``).

    Evaluating several quantities at the same ``x`` computes ``Ax`` and ``exp(Ax)`` once: the last
    point's state is cached, as scipy's ``MemoizeJac`` does. The cache and its work arrays are kept
    per thread, so one problem may be evaluated from several threads at once; a problem pickles
    (for process pools) without them.
    """

    def __new__(cls, A: Any = None, *args: Any, **kwargs: Any) -> Problem:
        if cls is Problem and is_dask_array(A):  # a Dask A: the same problem, computed block by block
            from softres._dask import DaskProblem

            return DaskProblem(A, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, A: Any, b: Any, w: Any = None, unit: Any = None) -> None:
        self.unit = as_unit(unit)
        self.op = MatrixOperator(A, "A")
        self.A = self.op.A
        self.n, self.d = self.A.shape
        self.is_sparse = self.op.is_sparse
        self.b = read_only(as_vector(b, self.n, "b", copy=True))
        if w is None:
            w = np.zeros(self.n)
        elif np.ndim(w) == 0:
            w = np.full(self.n, check_real(w, "w"))
        else:
            w = as_vector(w, self.n, "w", copy=True)
        with np.errstate(over="ignore"):
            w2 = w * w
        if not np.isfinite(w2).all():
            raise ValueError("w is too large: w**2 overflows float64")
        self.w, self.w2 = read_only(w), read_only(w2)
        self._regularised = bool(np.any(w2))
        self._local = threading.local()

    def __repr__(self) -> str:
        kind = f"sparse, nnz={self.A.nnz}" if self.is_sparse else "dense"
        unit = "" if self.unit == UNIFIED else f", unit={self.unit.name}"
        return f"Problem(n={self.n}, d={self.d}, {kind}{unit})"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_local"]  # per-thread work arrays are rebuilt on demand
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    # ------------------------------------------------------------------ plumbing
    def _Ax(self, x: Any, name: str = "x") -> tuple[np.ndarray, np.ndarray]:
        x = as_vector(x, self.d, name)  # validated before the cache is consulted
        st = self._cached(x)
        if st is not None:
            return st.x, st.z
        return x, self.op.matvec(x, name)

    def _cached(self, x: np.ndarray) -> State | None:
        """This thread's state if it is at ``x`` (same bytes: 0.1 µs, ``np.array_equal`` 1.3), else ``None``."""
        st = getattr(self._local, "state", None)
        return st if st is not None and st.key == x.tobytes() else None

    def _at(self, x: Any) -> State:
        """The state at ``x``, cached per thread: threads sharing a problem never share work arrays."""
        x, z = self._Ax(x)
        loc = self._local
        st = getattr(loc, "state", None)
        if st is not None and st.x is x:
            return st
        if getattr(loc, "buffers", None) is None:
            loc.buffers = Buffers(self.n)
        loc.state = None  # the new state overwrites the shared buffers, even if it raises
        loc.state = State(x.copy(), z, self.b, loc.buffers, self.unit)
        return loc.state

    # ------------------------------------------------------------------ Definition 3.1
    def u(self, x: Any) -> np.ndarray:
        """``u(x) = exp(Ax) + Ax`` (Definition 3.1), ``φ(Ax)`` for another unit; ``inf`` where it overflows."""
        return self.unit(self._Ax(x)[1])

    def v(self, x: Any) -> np.ndarray:
        """``v(x) = exp(Ax) + 1``, the elementwise derivative of ``u`` (Definition 3.1; ``φ'(Ax)``)."""
        return self.unit.derivative(self._Ax(x)[1])

    def alpha(self, x: Any) -> float:
        """``α(x) = <u(x), 1>`` (Definition 3.1). May be ``≤ 0`` (outside the domain) or ``inf``."""
        z = self._Ax(x)[1]
        n = z.size
        phi, dphi, ddphi = np.empty(n), np.empty(n), np.empty(n)
        m, _ = self.unit.evaluate(z, phi, dphi, ddphi)
        return unscale(float(phi.sum()), m)

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
        return 0.5 * self._at(x).cc

    def loss_reg(self, x: Any) -> float:
        """``L_reg(x) = ½‖W A x‖²`` (the regulariser of Lemma 7.1 / Theorem 9.1)."""
        _, z = self._Ax(x)
        return self._reg(z)

    def loss(self, x: Any) -> float:
        """``L(x) = L_exp(x) + L_reg(x)``, the objective of Theorem 9.1."""
        return self._loss(self._at(x))

    def _loss(self, st: State) -> float:
        return 0.5 * st.cc + self._reg(st.z)

    @property
    def fused_loss_and_grad(self) -> bool:
        """Whether :meth:`loss_and_grad` reads ``A`` once rather than twice: a dense, row-major ``A``, the
        units ``e^z + γz`` and the compiled kernels active for ``n`` rows (:func:`softres._kernels.active`)."""
        return self._pass_kernels() is not None

    def _pass_kernels(self) -> Any:
        """The compiled kernels when :meth:`loss_and_grad` may use the one-pass ``dense_exp_pass``, else ``None``."""
        op = self.op
        if not isinstance(op, MatrixOperator) or self.unit.kind != "exp":
            return None
        return op.dense_kernels()

    def loss_and_grad(self, x: Any) -> tuple[float, np.ndarray]:
        """``(L(x), ∇L(x))`` (what scipy's ``jac=True`` takes), where it pays in one pass over ``A``.

        The gradient of Lemma 4.1, ``Aᵀ(v/α ∘ (f − b − <c, f>)) + Aᵀ(w² ∘ Ax)``, needs ``α`` and
        ``<c, f>``, sums over all rows, before its product with ``Aᵀ`` can start. Expanded with
        ``f = u/α`` it is ``α⁻² Aᵀ(v∘u) − α⁻¹ Aᵀ(v∘b) − α⁻¹<c, f> Aᵀv + Aᵀ(w²∘Ax)``: four products
        whose weights depend on each row alone, so each row of ``A`` can be read once for ``(Ax)_i`` and
        used again, from cache, for the four (:meth:`softres._linalg.MatrixOperator.exp_pass`). The same
        sums give ``AᵀU`` of Lemma 5.4, so a following :meth:`hess` costs only its Gram product. The
        terms combined are those whose sizes :meth:`grad_error` bounds.

        Only the compiled kernel does this faster than the two passes of :meth:`loss` and :meth:`grad`
        (:attr:`fused_loss_and_grad`): with numpy, blocks of rows through ``Ax`` and then a four-column
        ``Aᵀ`` product ran 1.3-2.4x *slower* than two multithreaded BLAS products on this project's
        2-core machine (``n = 10⁴`` to ``10⁶``, ``d = 100``, measured when that path was replaced). Everywhere
        else (numpy, sparse ``A``, the units cosh, sinh, linear) the two passes.
        """
        st = self._at_fused(x)
        if st is not None and st.grad is not None:
            return self._loss(st), st.grad.copy()
        return self.loss(x), self.grad(x)

    def _at_fused(self, x: Any) -> State | None:
        """The state at ``x``; at a new point from the one-pass :meth:`_fused_state` where
        :attr:`fused_loss_and_grad`, else ``None``."""
        kernels = self._pass_kernels()
        if kernels is None:
            return None
        x = as_vector(x, self.d, "x")
        return self._cached(x) or self._fused_state(x, kernels)

    def _fused_state(self, x: np.ndarray, kernels: Any) -> State:
        """The state at ``x`` with ``∇L(x)`` and ``AᵀU``, from one compiled pass over a dense ``A``."""
        loc = self._local
        if getattr(loc, "buffers", None) is None:
            loc.buffers = Buffers(self.n)
        loc.state = None  # the state below overwrites the shared buffers, even if it raises
        out = self.op.exp_pass(x, self.unit.gamma, self.b, self.w2 if self._regularised else None, kernels)
        if out is None:
            raise ValueError("x is too large: A @ x is not finite in float64")
        z, G, m = out
        st = State(x.copy(), z, self.b, loc.buffers, self.unit)
        loc.state = st
        if st.m != m:  # the same z and rule (max(0, max z)): equal, unless the state's own pass differs
            s = math.exp(m - st.m)
            G[0] *= s * s
            G[1:3] *= s
        fused = fused_gradient(G, st.alpha_scaled, st.cf)
        if fused is not None:  # else grad() recomputes and reports the overflow
            st.grad, st.AtU = fused
        return st

    def _reg(self, z: np.ndarray) -> float:
        if not self._regularised:
            return 0.0
        with np.errstate(over="ignore"):
            wz = self.w * z
            val = 0.5 * dot(wz, wz)
        if not math.isfinite(val):
            raise ValueError("x is too large: the regulariser ½‖W A x‖² overflows float64")
        return val

    # ------------------------------------------------------------------ Lemma 4.1
    def grad(self, x: Any) -> np.ndarray:
        """Gradient ``∇L(x) = α⁻¹ Aᵀ(v ∘ r) + Aᵀ W² A x`` with ``r = c − <c, f>`` (Lemma 4.1).

        One product with ``A`` (shared with the loss through the cache) and one with ``Aᵀ``:
        ``O(nnz(A))``. At a new point, both in one pass over ``A`` where :attr:`fused_loss_and_grad`.
        """
        st = self._at_fused(x) or self._at(x)  # one pass where fused_loss_and_grad (see loss_and_grad)
        if st.grad is None:
            st.grad = self.op.rmatvec(st.gradient_weights(self.w2 if self._regularised else None))
        return st.grad.copy()

    def grad_error(self, x: Any) -> float:
        """The size of ``grad(x)``'s rounding error: ``ε_mach ‖A‖_F ‖t‖`` (no pass over ``A``).

        ``∇L = Aᵀy`` with ``y = v/α ∘ (f − b − <c, f>) + w² ∘ Ax``; ``t`` holds the sizes of the terms
        that cancel in ``y`` (``|v/α| ∘ (|f| + |b| + |<c, f>|) + w² |Ax|``), and ``Σ_i |A_ij| t_i ≤
        ‖A_{*,j}‖ ‖t‖`` bounds what the sum over rows can lose. A gradient below this is zero to working
        precision: :func:`softres.minimize` stops there (a warm start at the optimum converges at once).
        """
        st = self._at(x)
        t = np.abs(st.f) + np.abs(self.b)
        t += abs(st.cf)
        t *= st.v_hat
        if self._regularised:
            with np.errstate(over="ignore"):
                t += self.w2 * np.abs(st.z)
        return float(np.finfo(float).eps * self.op.frobenius * math.sqrt(dot(t, t)))

    def grad_exp(self, x: Any) -> np.ndarray:
        """Gradient of ``L_exp`` alone (Lemma 4.1, Part 8 summed over coordinates)."""
        return self.op.rmatvec(self._at(x).gradient_weights(None))

    def grad_alpha(self, x: Any) -> np.ndarray:
        """``∇α(x) = Aᵀ v(x)`` (Lemma 4.1: ``∂α/∂x_i = <v, A_{*,i}>``); ``inf`` on overflow."""
        return self.op.rmatvec(self.v(x))

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

    def hess_diag(self, x: Any) -> np.ndarray:
        """``B_diag(x) + w²``: the diagonal middle factor of ``∇²L(x) = Aᵀ(B_diag + W²)A + Aᵀ B_rank A``.

        Lemma A.8 sparsifies exactly this diagonal (Algorithm 1); it needs it positive.
        """
        return self._at(x).D(self.w2).copy()

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
        if isinstance(self.op, MatrixOperator) and not self.op.is_sparse:
            return self._hessp_fused(st, s)
        t = self.op.matvec(s, "s")
        with np.errstate(over="ignore", invalid="ignore"):  # overflow surfaces in rmatvec's check
            vt, pt = t @ st.U
            y = np.multiply(st.D(self.w2), t, out=st.buf.y)
            y += np.matmul(st.U, np.array([st.ff * vt - pt, -vt]), out=st.buf.tmp)  # + B_rank (As)
        return self.op.rmatvec(y)

    def curvature(self, x: Any, s: Any, rows: int | None = None) -> float:
        """``sᵀ∇²L(x)s``, the curvature along ``s`` (Lemmas 5.2, 5.4), from the one product ``t = As``.

        ``sᵀAᵀ(B_diag + W² + B_rank)As = Σ (B_diag + w²)_i t_i² + ‖f‖²(Uᵀ₁t)² − 2(Uᵀ₁t)(Uᵀ₂t)`` with
        ``B_rank = U C Uᵀ`` (:meth:`B_rank`): no product with ``Aᵀ``, so half the memory traffic of
        ``s @ hessp(x, s)`` over a dense ``A``. A ``ValueError`` when it overflows.

        ``rows`` (optional) makes it an estimate, for a step size: where ``A`` is dense with more rows
        than that and ``AᵀU`` is known at ``x`` (after the one-pass :meth:`loss_and_grad`), the rank-two
        part is exact from ``(AᵀU)ᵀs`` and the diagonal sum is taken over every ``k``-th row only
        (``k = ⌈n / rows⌉``, scaled by ``n`` over the rows read): a fraction ``1/k`` of ``A`` is read, not
        counted as a pass. Elsewhere ``rows`` is ignored and the value is exact.
        """
        st = self._at(x)
        s = as_vector(s, self.d, "s")
        step = 1 if rows is None else -(-self.n // check_int(rows, "rows"))
        sampled = (step > 1 and st.AtU is not None and isinstance(self.op, MatrixOperator)
                   and not self.op.is_sparse)
        with np.errstate(over="ignore", invalid="ignore"):
            if sampled:  # einsum: one thread (OpenBLAS's would spin into the next compiled pass, see dot)
                t = np.einsum("ij,j->i", self.op.A[::step], s)
                vt, pt = s @ st.AtU
                diag = dot(t, st.D(self.w2)[::step] * t) * (self.n / t.size)
            else:
                t = self.op.matvec(s, "s")
                vt, pt = t @ st.U
                diag = dot(t, st.D(self.w2) * t)
            out = diag + vt * (st.ff * vt - 2.0 * pt)
        if not math.isfinite(out):
            raise ValueError("the curvature overflows float64 at this x")
        return out

    def _hessp_fused(self, st: State, s: np.ndarray) -> np.ndarray:
        """``hessp`` in one pass over a dense ``A`` (two passes the first time at a point, for ``AᵀU``).

        ``Aᵀ(D ∘ As + U c)`` with ``c = (‖f‖² Uᵀ_1 As − Uᵀ_2 As, −Uᵀ_1 As)`` a pair of sums over all rows:
        ``Aᵀ(D ∘ As)`` and ``UᵀAs`` are accumulated block by block (:meth:`MatrixOperator.fused`), and
        ``(AᵀU) c`` added at the end with ``AᵀU`` kept in the state.
        """
        if st.AtU is None:
            st.AtU = self.op.rmatvec(st.U)
        D, U, sums = st.D(self.w2), st.U, np.zeros(2)

        def local(tb: np.ndarray, sl: slice, G: np.ndarray) -> np.ndarray:
            sums[:] += tb @ U[sl]
            return (D[sl] * tb)[None, :]

        with np.errstate(over="ignore", invalid="ignore"):
            _, G = self.op.fused(s, local, 1, name="s")
            vt, pt = sums
            out = G[0] + st.AtU @ np.array([st.ff * vt - pt, -vt])
        if not np.isfinite(out).all():
            raise ValueError("the result overflows float64 (A.T @ y is not finite)")
        return out

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

    def _rank2(self, st: State) -> np.ndarray:
        a, q = (self.op.rmatvec(st.U) if st.AtU is None else st.AtU).T
        with np.errstate(over="ignore", invalid="ignore"):
            return st.ff * np.outer(a, a) - np.outer(a, q) - np.outer(q, a)

    def _hessian(self, st: State, D: np.ndarray) -> np.ndarray:
        """``Aᵀ diag(D) A + Aᵀ B_rank A``."""
        with np.errstate(over="ignore", invalid="ignore"):
            if st.AtU is None and isinstance(self.op, MatrixOperator):  # AᵀU in the Gram product's pass
                G, st.AtU = self.op.gram_and_rmatvec(D, st.U)
            else:
                G = self.gram(D)
            G += self._rank2(st)
        if not np.isfinite(G).all():
            raise ValueError("the Hessian overflows float64 at this x (entries of A or w too large)")
        return G

    def gram(self, D: Any) -> np.ndarray:
        """Weighted Gram matrix ``Aᵀ diag(D) A`` (``d × d``) for an ``n``-vector ``D`` of any sign: one pass."""
        return self.op.gram(D)
