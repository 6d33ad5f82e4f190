"""Chapter "resnet": the models behind Shamir's and Liu et al.'s claims, and the unified loss against its parts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softres import Problem, minimize
from softres.experiments import resnet as ex


def test_liu_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(0)
    k, p, N = 4, 6, 200_000
    a, a_star = rng.standard_normal(k), rng.standard_normal(k)
    vb, vs = (x / np.linalg.norm(x) for x in rng.standard_normal((2, p)))
    Z = rng.standard_normal((N, k, p))
    mc = 0.5 * (np.maximum(Z @ vb, 0) @ a - np.maximum(Z @ vs, 0) @ a_star) ** 2
    closed = ex.liu_population_loss(a, vb, a_star, vs)
    assert abs(closed - mc.mean()) < 4 * mc.std() / math.sqrt(N)


def test_liu_gradients_match_central_differences():
    rng = np.random.default_rng(1)
    k, p = 5, 7
    a, a_star, u = rng.standard_normal(k), rng.standard_normal(k), rng.standard_normal(p)
    vs = rng.standard_normal(p)
    vs /= np.linalg.norm(vs)

    def L(a_, u_):
        return ex.liu_population_loss(a_, u_ / np.linalg.norm(u_), a_star, vs)

    ga, gu, _ = ex.liu_gradients(a, u, a_star, vs)
    h = 1e-6
    fa = np.array([(L(a + h * e, u) - L(a - h * e, u)) / (2 * h) for e in np.eye(k)])
    fu = np.array([(L(a, u + h * e) - L(a, u - h * e)) / (2 * h) for e in np.eye(p)])
    assert np.allclose(ga, fa, rtol=1e-6, atol=1e-9)
    assert np.allclose(gu, fu, rtol=1e-6, atol=1e-9)


def test_liu_spurious_point_is_critical_and_gamma_c_separates_minimum():
    """At v̄ = −v̄* with a = M⁻¹M(π)a*, the gradient vanishes; it is a minimum iff γ < γ_c (via aᵀa* < 0)."""
    k = 4
    M = (math.pi - 1) / (2 * math.pi) * np.eye(k) + np.ones((k, k)) / (2 * math.pi)
    Mpi = -np.eye(k) / (2 * math.pi) + np.ones((k, k)) / (2 * math.pi)
    rng = np.random.default_rng(2)
    for ratio, sign in ((0.5, -1), (1.5, 1)):
        gamma = ratio * ex.gamma_critical(k)
        a_star, vs = ex.liu_teacher(k, 5, min(gamma, k), 0.7, rng)
        a = np.linalg.solve(M, Mpi @ a_star)
        ga, gu, _ = ex.liu_gradients(a, -vs, a_star, vs)
        assert np.abs(ga).max() < 1e-12 and np.abs(gu).max() < 1e-12
        assert np.sign(a @ a_star) == sign


def test_liu_small_grid_shortcut_beats_cnn():
    data = ex.liu_success(np.random.default_rng(3), ks=(4,), ratios=(0.1, 1.1), trials=24, steps=600,
                          mc_samples=1000)
    assert data["success"].shape == (1, 2, 5)
    assert data["success"][0, :, 1].min() == 1.0  # theta* = 45 deg, from w = 0
    assert data["success"][0, 0, 0] < 1.0  # the plain CNN misses sometimes below gamma_c
    assert ex.liu_reproduced(data)


def test_wV_hessian_matches_finite_differences():
    rng = np.random.default_rng(4)
    X, y = ex.shamir_data(rng, n=30, d=3)
    D, m = X.shape[1], 2
    U = rng.standard_normal((1, m, D))
    H = np.maximum(X @ U.transpose(0, 2, 1), 0.0)
    w, V = rng.standard_normal((1, D)), rng.standard_normal((1, D, m))
    _, g, Hs = ex._wV_model(X, y, H, w, V)
    theta = np.concatenate([w[0], V[0].ravel()])

    def grad(t):
        return ex._wV_model(X, y, H, t[None, :D], t[D:].reshape(1, D, m))[1][0]

    h = 1e-6
    fd = np.stack([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h) for e in np.eye(theta.size)], axis=1)
    assert np.allclose(Hs[0], fd, rtol=1e-6, atol=1e-8)
    # and the gradient against the batched training gradient
    _, _, gV, gw = ex._res_grads(X, y, U, V, w)
    assert np.allclose(g[0], np.concatenate([gw[0], gV[0].ravel()]))


def test_shamir_small_instance_no_residual_minimum_above_linear():
    data = ex.shamir_minima(np.random.default_rng(5), n=60, d=3, widths=(1,), runs=10, steps=300)
    res = data["configs"][0]
    assert res["arch"] == "residual"
    assert res["above"] == 0
    assert res["certificate"].max() < 1e-6
    assert res["lam_min_wV"].min() > -1e-8
    assert ex.shamir_rows(data)[0][:3] == ["residual", 1, 10]


def test_shortcut_optimum_is_the_global_minimum():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((12, 3))
    b = rng.dirichlet(np.ones(12))
    x, L = ex.shortcut_optimum(A, b)
    P = Problem(A, b, None, unit="shortcut")
    assert P.in_domain(x) and abs(P.loss(x) - L) < 1e-14
    for _ in range(5):
        x0 = rng.standard_normal(3)
        if not P.in_domain(x0):
            x0 = -x0
        if P.in_domain(x0):
            assert minimize(P, x0, method="lbfgs").fun >= L * (1 - 1e-9)


@pytest.fixture(scope="module")
def small_landscape():
    return ex.unified_landscape(np.random.default_rng(7), draws=3, starts=1, shortcut_draws=2, gd_maxiter=200)


def test_unified_landscape_summary(small_landscape):
    s = ex.landscape_summary(small_landscape)
    assert set(s) == {"unified", "shortcut"}
    assert s["unified"]["draws"] == 3 and s["shortcut"]["draws"] == 2
    gd = s["unified"]["gd"]
    assert {("softmax", "zero"), ("unified", "random")} <= set(gd)
    for r in gd.values():
        assert r["global"] + r["local"] + r["plateau"] + r["stopped"] == r["runs"] == 3
    # b planted from the shortcut: the unified unit cannot reach the shortcut's exact optimum
    assert s["shortcut"]["best_above_shortcut"] == 2
    assert small_landscape["shortcut_formula_err"] < 1e-10


def test_plots_draw(small_landscape):
    import matplotlib.pyplot as plt

    sh = ex.shamir_minima(np.random.default_rng(8), n=40, d=2, widths=(1,), runs=3, steps=50)
    lu = ex.liu_success(np.random.default_rng(9), ks=(4,), ratios=(0.5,), trials=4, steps=20, mc_samples=100,
                        adversarial=(1.0,))
    for fig in (ex.plot_shamir(sh), ex.plot_liu(lu), ex.plot_landscape(small_landscape)):
        assert fig.axes and all(ax.get_ylabel() for ax in fig.axes)
        plt.close(fig)
