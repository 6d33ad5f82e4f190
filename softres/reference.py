"""Independent reference derivatives, for the tests and the book's checks.

Nothing here uses softres' formulas (this module imports nothing from softres): the loss is
written naively from Definition 1.4 and differentiated by

* complex-step differentiation (Squire & Trapp 1998): ``f'(x) s = Im f(x + i h s) / h``, exact to
  rounding for ``h = 1e-30``;
* hyper-dual numbers (Fike & Alonso 2011): ``f(x + ε₁ s + ε₂ t)`` with ``ε₁² = ε₂² = 0`` carries
  ``sᵀ ∇²f(x) t`` exactly in its ``ε₁ε₂`` part, with no truncation error;
* mpmath at 50 digits for points where float64 ``exp`` overflows.
"""

from __future__ import annotations

import numpy as np


class HyperDual:
    """Arrays of hyper-dual numbers ``a + b ε₁ + c ε₂ + d ε₁ε₂``."""

    def __init__(self, a, b, c, d):
        self.a, self.b, self.c, self.d = (np.asarray(t, dtype=float) for t in (a, b, c, d))

    @staticmethod
    def lift(value):
        if isinstance(value, HyperDual):
            return value
        z = np.zeros_like(np.asarray(value, dtype=float))
        return HyperDual(value, z, z, z)

    def __add__(self, other):
        o = HyperDual.lift(other)
        return HyperDual(self.a + o.a, self.b + o.b, self.c + o.c, self.d + o.d)

    __radd__ = __add__

    def __neg__(self):
        return HyperDual(-self.a, -self.b, -self.c, -self.d)

    def __sub__(self, other):
        return self + (-HyperDual.lift(other))

    def __mul__(self, other):
        o = HyperDual.lift(other)
        return HyperDual(
            self.a * o.a,
            self.a * o.b + self.b * o.a,
            self.a * o.c + self.c * o.a,
            self.a * o.d + self.b * o.c + self.c * o.b + self.d * o.a,
        )

    __rmul__ = __mul__

    def reciprocal(self):
        a = self.a
        return HyperDual(1 / a, -self.b / a**2, -self.c / a**2,
                         2 * self.b * self.c / a**3 - self.d / a**2)

    def __truediv__(self, other):
        return self * HyperDual.lift(other).reciprocal()

    def apply(self, f, df, ddf):
        """``g(self)`` for a scalar function with derivatives ``df``, ``ddf`` (chain rule, exact)."""
        d1, d2 = df(self.a), ddf(self.a)
        return HyperDual(f(self.a), d1 * self.b, d1 * self.c, d1 * self.d + d2 * self.b * self.c)

    def exp(self):
        return self.apply(np.exp, np.exp, np.exp)

    def cosh(self):
        return self.apply(np.cosh, np.sinh, np.cosh)

    def sinh(self):
        return self.apply(np.sinh, np.cosh, np.sinh)

    def sum(self):
        return HyperDual(self.a.sum(), self.b.sum(), self.c.sum(), self.d.sum())

    def rmatmul(self, A):
        """``A @ self`` for a constant matrix ``A``."""
        return HyperDual(A @ self.a, A @ self.b, A @ self.c, A @ self.d)


def _call(t, name):
    return getattr(t, name)() if isinstance(t, HyperDual) else getattr(np, name)(t)


def naive_unit(z, unit="unified", gamma=1.0):
    """The unit written directly: ``e^z + γz`` ("unified"; "softmax" is γ = 0), ``z``, ``cosh z``, ``sinh z``."""
    if unit == "softmax":
        return _call(z, "exp")
    if unit == "unified":
        return _call(z, "exp") + z * gamma
    if unit == "shortcut":
        return z * 1.0
    if unit in ("cosh", "sinh"):
        return _call(z, unit)
    raise ValueError(f"unknown unit {unit!r}")


def naive_parts(A, b, w, x, unit="unified", gamma=1.0):
    """``u, α, f, L`` of Definition 1.4 / 3.1, written directly; works for complex and hyper-dual x.

    ``unit`` and ``gamma`` choose the unit of the family (Definitions 1.1, 1.3, 1.4) by name.
    """
    z = x.rmatmul(A) if isinstance(x, HyperDual) else A @ x
    u = naive_unit(z, unit, gamma)
    alpha = u.sum()
    f = u / alpha
    c = f - b
    wz = z * w
    loss = (c * c).sum() * 0.5 + (wz * wz).sum() * 0.5
    return u, alpha, f, loss


def naive_loss(A, b, w, x, unit="unified", gamma=1.0):
    return naive_parts(A, b, w, x, unit, gamma)[3]


def complex_step_jacobian(fun, x, h=1e-30):
    """Columns ``∂fun/∂x_i`` by complex step; ``fun`` maps a complex d-vector to a scalar or vector."""
    cols = []
    for i in range(x.size):
        xc = x.astype(complex)
        xc[i] += 1j * h
        cols.append(np.imag(fun(xc)) / h)
    return np.stack(cols, axis=-1)


def hyperdual_hessian(fun, x):
    """Exact Hessian of a scalar ``fun`` by hyper-dual numbers, one evaluation per entry pair."""
    d = x.size
    H = np.empty((d, d))
    eye = np.eye(d)
    zero = np.zeros(d)
    for i in range(d):
        for j in range(i, d):
            H[i, j] = H[j, i] = fun(HyperDual(x, eye[i], eye[j], zero)).d
    return H


def mp_loss(A, b, w, x):
    """The loss at the current mpmath precision (no overflow), as an mpmath number."""
    import mpmath

    z = [mpmath.fsum(mpmath.mpf(A[k, i]) * x[i] for i in range(len(x))) for k in range(len(b))]
    u = [mpmath.exp(t) + t for t in z]
    alpha = mpmath.fsum(u)
    c = [u_k / alpha - mpmath.mpf(b_k) for u_k, b_k in zip(u, b, strict=True)]
    reg = mpmath.fsum((mpmath.mpf(w_k) * z_k) ** 2 for w_k, z_k in zip(w, z, strict=True))
    return mpmath.fsum(c_k**2 for c_k in c) / 2 + reg / 2


def mp_derivatives(A, b, w, x, dps=50):
    """Loss, gradient and Hessian at high precision by mpmath's numerical differentiation."""
    import mpmath

    d = len(x)
    with mpmath.workdps(dps):
        xm = [mpmath.mpf(t) for t in x]

        def fun(*args):
            return mp_loss(A, b, w, args)

        loss = float(fun(*xm))
        grad = np.array([float(mpmath.diff(fun, xm, tuple(int(k == i) for k in range(d))))
                         for i in range(d)])
        hess = np.empty((d, d))
        for i in range(d):
            for j in range(i, d):
                order = tuple(int(k == i) + int(k == j) for k in range(d))
                hess[i, j] = hess[j, i] = float(mpmath.diff(fun, xm, order))
    return loss, grad, hess
