"""The family of units ``u = φ(Ax)`` of the paper's Definitions 1.1, 1.3 and 1.4.

The paper's model sits between softmax regression (Definition 1.1, ``φ(z) = e^z``) and the
identity shortcut of a residual block (``φ(z) = z``): its unit is ``φ(z) = e^z + z`` (Definition
1.4). Its sources also study the hyperbolic units ``cosh`` and ``sinh`` (Definition 1.3). Every one
is an elementwise map normalised by ``α = <φ(Ax), 1>``, and the gradient and Hessian of the paper
hold for all of them with ``v = φ'(z)`` and ``exp(Ax)`` in ``B_diag`` replaced by ``φ''(z)``
(derived in the book's Hessian chapter):

    ∇L_exp = Aᵀ((v/α) ∘ r),  r = c − <c, f>,
    B(x) = diag(α⁻² v∘v + α⁻¹ φ''(z)∘r) + α⁻²(‖f‖² v vᵀ − v pᵀ − p vᵀ),  p = v ∘ (2f − b − <c, f>).

A :class:`Unit` evaluates ``φ``, ``φ'`` and ``φ''`` scaled by a common factor ``e^{−m}`` that keeps
them finite (``m = max(0, max z)`` for the exponential units, ``max |z|`` for ``cosh`` and ``sinh``,
none for the shortcut alone); the normalised quantities are ratios in which the factor cancels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from softres._validate import check_real

__all__ = ["COSH", "SHORTCUT", "SINH", "SOFTMAX", "UNIFIED", "UNITS", "Unit", "as_unit", "unified"]


@dataclass(frozen=True)
class Unit:
    """One unit ``φ`` of the family: ``kind`` is ``"exp"`` (``e^z + γ z``), ``"linear"`` (``z``),
    ``"cosh"`` or ``"sinh"``; ``gamma`` is the weight of the shortcut for ``"exp"``."""

    name: str
    kind: str
    gamma: float = 0.0

    @property
    def can_be_negative(self) -> bool:
        """Whether ``φ`` takes negative values, so that ``α(x) ≤ 0`` (outside the domain) can happen."""
        return self.kind in ("linear", "sinh") or (self.kind == "exp" and self.gamma > 0)

    def evaluate(self, z: np.ndarray, phi: np.ndarray, dphi: np.ndarray, ddphi: np.ndarray) -> tuple[float, float]:
        """Write ``φ(z)e^{−m}``, ``φ'(z)e^{−m}``, ``φ''(z)e^{−m}`` into the given arrays; return ``(m, bound)``.

        ``bound`` is a cheap upper bound on ``Σ|φ(z_i)| e^{−m}``, for judging the sign of ``α``
        against its rounding error.
        """
        n = z.size
        if self.kind == "linear":
            np.copyto(phi, z)
            dphi.fill(1.0)
            ddphi.fill(0.0)
            return 0.0, n * float(np.abs(z).max())
        if self.kind == "exp":
            m = max(0.0, float(z.max()))
            np.subtract(z, m, out=ddphi)
            np.exp(ddphi, out=ddphi)  # ≤ 1: no overflow; underflow to 0 is harmless
            s = math.exp(-m)
            np.multiply(z, self.gamma * s, out=phi)
            phi += ddphi
            np.add(ddphi, self.gamma * s, out=dphi)
            return m, n * (1.0 + self.gamma * s * max(abs(float(z.min())), m))
        m = float(np.abs(z).max())  # cosh, sinh: e^{±z − m} ≤ 1
        np.subtract(z, m, out=dphi)
        np.exp(dphi, out=dphi)
        np.negative(z, out=ddphi)
        ddphi -= m
        np.exp(ddphi, out=ddphi)
        sign = 1.0 if self.kind == "cosh" else -1.0
        # phi = (e^{z−m} ± e^{−z−m}) / 2, dphi the other sign, ddphi = phi
        np.add(dphi, sign * ddphi, out=phi)
        np.subtract(dphi, sign * ddphi, out=dphi)
        phi *= 0.5
        dphi *= 0.5
        np.copyto(ddphi, phi)
        return m, float(n)

    def __call__(self, z: Any) -> np.ndarray:
        """``φ(z)`` unscaled (``±inf`` where it overflows)."""
        return self._unscaled(z, 0)

    def derivative(self, z: Any) -> np.ndarray:
        """``φ'(z)`` unscaled (``±inf`` where it overflows)."""
        return self._unscaled(z, 1)

    def second_derivative(self, z: Any) -> np.ndarray:
        """``φ''(z)`` unscaled."""
        return self._unscaled(z, 2)

    def _unscaled(self, z: Any, order: int) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        with np.errstate(over="ignore"):
            if self.kind == "linear":
                return (z.copy(), np.ones_like(z), np.zeros_like(z))[order]
            if self.kind == "exp":
                e = np.exp(z)
                return (e + self.gamma * z, e + self.gamma, e)[order]
            even = (order % 2 == 0) == (self.kind == "cosh")  # cosh, sinh, cosh for cosh; the others for sinh
            return np.cosh(z) if even else np.sinh(z)


def unified(gamma: float) -> Unit:
    """``φ(z) = e^z + γ z``: softmax regression at ``γ = 0`` (Definition 1.1), the paper's unit at ``γ = 1``."""
    gamma = check_real(gamma, "gamma", low=0.0)
    if gamma == 0.0:
        return SOFTMAX
    return Unit("unified" if gamma == 1.0 else f"unified(gamma={gamma:g})", "exp", gamma)


SOFTMAX = Unit("softmax", "exp", 0.0)  #: Definition 1.1: ``e^z``
UNIFIED = Unit("unified", "exp", 1.0)  #: Definition 1.4: ``e^z + z``, the paper's model (the default)
SHORTCUT = Unit("shortcut", "linear")  #: the identity shortcut alone: ``z``
COSH = Unit("cosh", "cosh")  #: Definition 1.3's ``cosh``
SINH = Unit("sinh", "sinh")  #: Definition 1.3's ``sinh``

#: The named units, by name.
UNITS: dict[str, Unit] = {u.name: u for u in (SOFTMAX, UNIFIED, SHORTCUT, COSH, SINH)}


def as_unit(unit: Any) -> Unit:
    """A :class:`Unit` from a name of :data:`UNITS` or a Unit; ``None`` gives the paper's unit."""
    if unit is None:
        return UNIFIED
    if isinstance(unit, Unit):
        return unit
    if isinstance(unit, str) and unit in UNITS:
        return UNITS[unit]
    raise ValueError(f"unit must be one of {', '.join(map(repr, UNITS))} or a softres.units.Unit, got {unit!r}")
