"""Every unit of the family (Definitions 1.1, 1.3, 1.4) through the same code path, checked independently.

The gradient against complex step and the Hessian against hyper-dual numbers, both on the unit
written directly in :mod:`softres.reference` (which imports nothing from softres); then the
Hessian-vector product, the diagonal-plus-rank-two split, the sketch and every solver.
"""

from __future__ import annotations

import numpy as np
import pytest

import softres
from softres import units
from softres.reference import complex_step_jacobian, hyperdual_hessian, naive_loss
from softres.solvers import METHODS, minimize

CASES = [("softmax", units.SOFTMAX, 0.0), ("unified", units.UNIFIED, 1.0), ("unified", units.unified(0.25), 0.25),
         ("shortcut", units.SHORTCUT, 0.0), ("cosh", units.COSH, 0.0), ("sinh", units.SINH, 0.0)]
IDS = ["softmax", "unified", "gamma-0.25", "shortcut", "cosh", "sinh"]


def _instance(unit, seed=0, n=40, d=4):
    """A point well inside the domain: for units that can be negative, shift so that all of u > 0."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d)) / np.sqrt(d)
    x = 0.5 * rng.standard_normal(d)
    if unit.kind in ("linear", "sinh"):  # u = z or sinh z: make z positive
        A = np.abs(A) + 0.1
        x = np.abs(x) + 0.1
    b = rng.dirichlet(np.ones(n))
    w = 0.01 * rng.random(n)
    return A, b, w, x


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize(("name", "unit", "gamma"), CASES, ids=IDS)
def test_every_unit_matches_independent_derivatives(name, unit, gamma):
    for seed in range(3):
        A, b, w, x = _instance(unit, seed)
        P = softres.Problem(A, b, w, unit=unit)
        assert P.loss(x) == pytest.approx(float(naive_loss(A, b, w, x, name, gamma)), rel=1e-13)
        g_ref = complex_step_jacobian(lambda t, A=A, b=b, w=w: naive_loss(A, b, w, t, name, gamma), x)
        assert _rel(P.grad(x), g_ref) < 1e-12
        H_ref = hyperdual_hessian(lambda t, A=A, b=b, w=w: naive_loss(A, b, w, t, name, gamma), x)
        assert _rel(P.hess(x), H_ref) < 1e-11
        s = np.random.default_rng(seed).standard_normal(A.shape[1])
        assert _rel(P.hessp(x, s), H_ref @ s) < 1e-11
        U, C = P.B_rank(x)
        B_split = np.diag(P.B_diag(x)) + U @ C @ U.T
        B_ref = hyperdual_hessian(lambda t, b=b, n=A.shape[0]: naive_loss(np.eye(n), b, np.zeros(n), t, name, gamma),
                                  A @ x)
        assert _rel(B_split, B_ref) < 1e-11


@pytest.mark.parametrize(("name", "unit", "gamma"), CASES, ids=IDS)
def test_the_domain_rule_follows_the_unit(name, unit, gamma):
    A = np.array([[-3.0], [-4.0], [-5.0]])
    P = softres.Problem(A, np.full(3, 1 / 3), unit=unit)
    x = np.array([1.0])  # z = (-3, -4, -5): e^z + γz < 0 for γ > 0; z < 0; sinh z < 0
    assert P.in_domain(x) == (not unit.can_be_negative)
    if unit.can_be_negative:
        with pytest.raises(softres.DomainError):
            P.loss(x)


@pytest.mark.parametrize(("name", "unit", "gamma"), CASES, ids=IDS)
def test_no_overflow_at_huge_Ax_for_any_unit(name, unit, gamma):
    A = np.array([[1.0], [0.5], [-0.2]])
    P = softres.Problem(A, np.array([0.2, 0.3, 0.5]), unit=unit)
    x = np.array([800.0])  # e^800 and cosh 800 overflow float64; the normalised f does not
    if not P.in_domain(x):
        return
    assert np.isfinite(P.loss(x)) and np.isfinite(P.grad(x)).all() and np.isfinite(P.hess(x)).all()
    assert P.f(x).sum() == pytest.approx(1.0)


def _solver_instance(unit):
    """A well-posed instance per unit. The exponential and cosh units: random_problem's draw with its
    regulariser. The shortcut alone and sinh vanish at x = 0 (α → 0 there), and a regulariser pulls the
    minimiser into that pole, so they get positive rows, no regulariser and a target near a reachable
    output instead (for the shortcut, L_exp is constant along rays: its minimisers form a ray)."""
    if unit.kind not in ("linear", "sinh"):
        base = softres.random_problem(1500, 5, seed=3, w=3.0)
        return softres.Problem(base.A, base.b, base.w, unit=unit), (0.1 if unit.kind == "cosh" else 0.0) * np.ones(5)
    rng = np.random.default_rng(3)
    A = np.abs(rng.standard_normal((1500, 5))) / np.sqrt(5) + 0.05
    b = softres.Problem(A, np.zeros(1500), unit=unit).f(1.0 + 0.3 * rng.standard_normal(5))
    b = b * (1 + 0.1 * rng.standard_normal(1500))
    return softres.Problem(A, b, unit=unit), np.full(5, 0.5)


@pytest.mark.parametrize(("name", "unit", "gamma"), CASES, ids=IDS)
@pytest.mark.parametrize("method", METHODS)
def test_every_solver_works_for_every_unit(name, unit, gamma, method):
    """Every method reaches the optimum that exact Newton finds, for every unit (x itself where it is unique)."""
    P, x0 = _solver_instance(unit)
    ref = minimize(P, x0, method="newton", tol=1e-13)
    assert ref.success, ref.message
    res = minimize(P, x0, method=method, seed=0)
    assert res.success, res.message
    assert res.fun - ref.fun <= 1e-12 * ref.fun
    lam = np.linalg.eigvalsh(P.hess(ref.x))
    if lam[0] > 1e-6 * lam[-1]:  # an isolated minimiser
        assert np.linalg.norm(res.x - ref.x) <= 1e-6 * max(1.0, np.linalg.norm(ref.x))


def test_units_by_name_and_the_default():
    A, b = np.eye(3), np.full(3, 1 / 3)
    assert softres.Problem(A, b).unit is units.UNIFIED
    assert softres.Problem(A, b, unit="softmax").unit is units.SOFTMAX
    assert units.unified(0) is units.SOFTMAX
    with pytest.raises(ValueError, match="unit must be one of"):
        softres.Problem(A, b, unit="relu")
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        units.unified(-1.0)


@pytest.mark.parametrize(("name", "unit", "gamma"), CASES, ids=IDS)
def test_unscaled_unit_and_derivatives_against_hyperdual_numbers(name, unit, gamma):
    from softres.reference import HyperDual, naive_unit

    z = np.linspace(-2.0, 2.0, 9)
    one, zero = np.ones_like(z), np.zeros_like(z)
    hd = naive_unit(HyperDual(z, one, one, zero), name, gamma)  # φ, φ' (ε₁ part), φ'' (ε₁ε₂ part)
    np.testing.assert_allclose(unit(z), hd.a, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(unit.derivative(z), hd.b, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(unit.second_derivative(z), hd.d, rtol=1e-15, atol=1e-15)
