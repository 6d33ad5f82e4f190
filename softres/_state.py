"""The quantities of Definition 3.1 at one point ``x``, computed once and without overflow.

Numerical scheme
----------------
With ``z = Ax`` and ``m = max(0, max_i z_i)`` every quantity is computed from the scaled vectors
``e = exp(z - m)``, ``ũ = e + z e^{-m} = u e^{-m}`` and ``ṽ = e + e^{-m} = v e^{-m}``, and the scaled
normaliser ``α̃ = <ũ, 1> = α e^{-m}``. The loss, gradient and Hessian are ratios of equal degree in
``e^m`` (``f = ũ / α̃``, ``v / α = ṽ / α̃``, ``exp(z) / α = e / α̃``), so the factor cancels and
nothing overflows even for ``max(Ax) = 1e4``.

The ``n``-sized work arrays are reused from point to point (:class:`Buffers`); a
:class:`~softres.Problem` keeps one set per thread. With numba installed and ``n >= 10⁵``, the units
``e^z + γz`` compute the state in three compiled passes over ``n``-vectors (the shift, the exponentials with
the sum of their magnitudes, the normalisation) and three numpy sums (``α̃``, ``<c, f>``, ``‖f‖²``,
as on the numpy path) instead of about fifteen numpy passes, and ``r`` with the gradient's
weights in one more (:mod:`softres._kernels`; the same formulas, equal up to rounding).
"""

from __future__ import annotations

import math

import numpy as np

from softres import _kernels
from softres.units import Unit

__all__ = ["Buffers", "DomainError", "State", "unscale"]

_NO_WEIGHTS = np.empty(0)  # "no regulariser" for the compiled gradient_weights
_NO_WEIGHTS.flags.writeable = False

class DomainError(ValueError):
    """``α(x) = <u(x), 1> ≤ 0`` (``u = exp(Ax) + Ax`` in the paper): the point lies outside the domain.

    The paper (Definition 1.4 and the assumption ``α(x) ≥ β > 0`` of Lemma 7.1 and Theorem 9.1)
    only defines the normalised output where ``α(x) > 0``. ``alpha`` holds ``α(x)`` (possibly
    ``-inf``/``inf`` only when it is not representable).
    """

    def __init__(self, alpha: float, message: str | None = None) -> None:
        self.alpha = alpha
        super().__init__(
            message
            or f"x is outside the domain: alpha(x) = <u(x), 1> = {alpha:.6g} <= 0; "
            "the normalised output f(x) = u(x) / alpha(x) needs alpha(x) > 0"
        )

    def __reduce__(self) -> tuple:
        return type(self), (self.alpha, str(self))  # picklable: worker processes can raise it


class Buffers:
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


class State:
    """Scaled quantities at one point ``x``; see the module docstring for the scaling.

    Every ``n``-vector lives in the problem's :class:`Buffers` and is written in place.
    """

    __slots__ = ("AtU", "_cc", "_has_B_diag", "_has_D", "_has_U", "_has_r", "alpha_scaled", "buf", "cf", "ff", "grad",
                 "key", "m", "x", "z")

    def __init__(self, x: np.ndarray | None, z: np.ndarray, b: np.ndarray, buf: Buffers, unit: Unit,
                 block: tuple[float, float, float | None, float | None] | None = None) -> None:
        """``block = (m, α̃, <c, f>, ‖f‖²)``: ``z`` is one block of rows of a larger problem whose shift,
        scaled normaliser and sums are given (:mod:`softres._dask`); with ``None`` sums, ``cf`` and ``ff``
        are this block's partial sums."""
        self.x = x
        self.key = b"" if x is None else x.tobytes()  # the point, for the problem's cache (-0.0 and 0.0 differ)
        self.z = z
        self.buf = buf
        self.grad: np.ndarray | None = None  # ∇L(x), once computed (Problem.grad, Problem.loss_and_grad)
        self.AtU: np.ndarray | None = None  # Aᵀ U (d × 2), likewise
        kernels = _kernels.active(z.size) if block is None and unit.kind == "exp" else None
        # f ← φ(z)e^{−m}, v_hat ← φ'(z)e^{−m}, e ← φ''(z)e^{−m} (e^{z−m} for the paper's unit)
        if kernels is not None:  # one compiled pass, with the sum of magnitudes
            self.m, bound = kernels.exp_state(z, unit.gamma, buf.f, buf.v_hat, buf.e)
        else:
            self.m, bound = unit.evaluate(z, buf.f, buf.v_hat, buf.e)
        u = buf.f
        cf = ff = None
        if block is None:
            with np.errstate(over="ignore", invalid="ignore"):
                # -inf when many entries near -1.8e308 sum past float64
                alpha_scaled = float(u.sum())  # pairwise (one compiled running sum is far less accurate)
            # The sign of a sum is only meaningful above its rounding error; the unit's cheap bound on
            # Σ|u| serves, and the exact Σ|u| is only needed close to the threshold.
            tol = 4.0 * z.size * np.finfo(float).eps
            if not alpha_scaled > tol * bound and not alpha_scaled > tol * float(np.abs(u).sum()):
                raise DomainError(unscale(alpha_scaled, self.m))
        else:
            m, alpha_scaled, cf, ff = block
            if m != self.m:  # the block's own shift → the problem's (m ≥ the block's: no overflow)
                scale = math.exp(self.m - m)
                for arr in (buf.f, buf.v_hat, buf.e):
                    arr *= scale
                self.m = m
        self.alpha_scaled = alpha_scaled
        self._has_B_diag = self._has_D = self._has_U = False
        self._cc: float | None = None
        if kernels is not None:  # the same steps in one compiled pass, the same sums; r when first needed
            partial = np.empty((3, -(-z.size // kernels.SUM_BLOCK)))
            kernels.normalise(u, b, buf.v_hat, 1.0 / alpha_scaled, buf.c, partial)
            self.cf, self.ff, self._cc = (float(s) for s in partial.sum(axis=1))
            self._has_r = False
        else:
            u *= 1.0 / alpha_scaled  # u is now f
            c = np.subtract(u, b, out=buf.c)
            self.cf = float(c @ u) if cf is None else cf
            self.ff = float(u @ u) if ff is None else ff
            np.subtract(c, self.cf, out=buf.r)
            buf.v_hat *= 1.0 / alpha_scaled  # = v / α
            self._has_r = True

    f = property(lambda self: self.buf.f, doc="``f = u / α``")

    @property
    def cc(self) -> float:
        """``‖c‖²`` (twice ``L_exp``)."""
        if self._cc is None:
            self._cc = float(self.buf.c @ self.buf.c)
        return self._cc

    c = property(lambda self: self.buf.c, doc="``c = f − b``")

    @property
    def r(self) -> np.ndarray:
        """``r = c − <c, f>``."""
        if not self._has_r:
            np.subtract(self.buf.c, self.cf, out=self.buf.r)
            self._has_r = True
        return self.buf.r
    v_hat = property(lambda self: self.buf.v_hat, doc="``v / α``")

    def gradient_weights(self, w2: np.ndarray | None) -> np.ndarray:
        """``y = v/α ∘ r + w² ∘ Ax`` (no ``w²`` term for ``None``), so that ``∇L = Aᵀy`` (Lemma 4.1).

        Written into the shared buffer ``y`` (the next point or Hessian-vector product overwrites it);
        an entry of ``w² ∘ Ax`` that overflows is ``inf``, which the product with ``Aᵀ`` reports.
        """
        y = self.buf.y
        kernels = _kernels.active(self.z.size)
        if kernels is not None:  # r in the same pass
            kernels.gradient_weights(self.v_hat, self.buf.c, self.cf, _NO_WEIGHTS if w2 is None else w2,
                                                self.z, y, self.buf.r)
            self._has_r = True
            return y
        np.multiply(self.v_hat, self.r, out=y)
        if w2 is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                y += np.multiply(w2, self.z, out=self.buf.tmp)
        return y

    @property
    def B_diag(self) -> np.ndarray:
        """``α⁻² v∘v + α⁻¹ φ''(Ax)∘r`` (Lemma 5.4, where ``φ'' = exp``); ``φ''(Ax)/α = e / α̃``."""
        bd = self.buf.B_diag
        if not self._has_B_diag:
            np.multiply(self.buf.e, self.r, out=bd)
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


def fused_gradient(G: np.ndarray, alpha_scaled: float, cf: float) -> tuple[np.ndarray, np.ndarray] | None:
    """``∇L`` and ``AᵀU`` (``d × 2``) from the products of one fused pass, or ``None`` when not finite.

    ``G``'s rows are ``Aᵀ(v∘u)``, ``Aᵀ(v∘b)``, ``Aᵀv`` (``u``, ``v`` scaled by ``e^{−m}``, the first by
    ``e^{−2m}``) and, for a regularised problem, ``Aᵀ(w²∘Ax)``. With ``f = u/α``, Lemma 4.1's gradient
    ``Aᵀ(v/α ∘ (f − b − <c, f>)) + Aᵀ(w²∘Ax)`` is ``α⁻²G₀ − α⁻¹G₁ − α⁻¹<c, f>G₂ + G₃``, and the second
    column of ``AᵀU`` (Lemma 5.4) is ``2α⁻²G₀ − α⁻¹G₁ − α⁻¹<c, f>G₂``.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        a = 1.0 / alpha_scaled
        vf, vb, v = G[0] * (a * a), G[1] * a, G[2] * a
        g = vf - vb - cf * v
        q = 2.0 * vf - vb - cf * v
        if G.shape[0] == 4:
            g += G[3]
    if not (np.isfinite(g).all() and np.isfinite(q).all()):
        return None
    return g, np.column_stack([v, q])


def unscale(value: float, m: float) -> float:
    """Return ``value · e^m`` as a float (±inf when it overflows), without warnings."""
    if value == 0.0:
        return 0.0
    log_mag = math.log(abs(value)) + m
    mag = math.exp(log_mag) if log_mag < 709.0 else math.inf
    return math.copysign(mag, value)
