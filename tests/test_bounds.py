"""The paper's constants as code, each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import softres
from softres import bounds


def ball_points(center, radius, k, rng):
    d = center.size
    u = rng.standard_normal((k, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return center + radius * rng.random((k, 1)) ** (1 / d) * u


def test_beta_is_the_minimum_of_alpha_over_the_ball():
    P = softres.random_problem(200, 3, seed=0)
    c, r = P.x_true, 0.8
    b = bounds.beta(P, c, r)
    samples = [P.alpha(x) for x in ball_points(c, r, 4000, np.random.default_rng(1))]
    assert b <= min(samples) + 1e-9
    assert b >= min(samples) - 0.05 * (max(samples) - min(samples))  # sampling comes close to it


def test_spectral_error_of_a_scaled_matrix():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((6, 6))
    H = X @ X.T + np.eye(6)
    assert bounds.spectral_error(H, 1.07 * H) == pytest.approx(0.07)
    S = np.diag([1.0, 1.0, 1.0, 1.0, 1.0, 0.9])
    L = np.linalg.cholesky(H)
    assert bounds.spectral_error(H, L @ S @ L.T) == pytest.approx(0.1)


def test_newton_guarantees():
    assert bounds.predicted_iterations(1.0, 1e-8) == math.ceil(8 * math.log(10) / math.log(2.5))
    assert bounds.predicted_iterations(1e-9, 1e-8) == 0
    assert bounds.good_init_radius(2.0, 4.0) == pytest.approx(0.05)
    assert bounds.shrinking_bound(0.1, 0.01, 1.0, 2.0) == pytest.approx(2 * (0.01 + 0.2 / 0.8) * 0.1)
    assert bounds.shrinking_bound(1.0, 0.01, 1.0, 2.0) == math.inf


def test_psd_threshold_certifies_the_hessian_on_the_ball():
    """With w from Lemma 7.1's condition, λ_min(∇²L) ≥ l at random points of the ball."""
    rng = np.random.default_rng(3)
    P0 = softres.random_problem(40, 3, seed=4, w=None)
    center, radius = np.zeros(3), 1.0
    R = max(bounds.singular_values_extreme(P0.A)[0], radius)
    beta = bounds.beta(P0, center, radius)
    assert beta > 0
    smin = bounds.singular_values_extreme(P0.A)[1]
    l = 1e-3
    w = bounds.psd_w_sufficient(P0.n, R, beta, l, smin, b_norm=float(np.linalg.norm(P0.b)))
    P = softres.Problem(P0.A, P0.b, w)
    for x in ball_points(center, radius, 50, rng):
        assert np.linalg.eigvalsh(P.hess(x))[0] >= l
    # and the constant C bounds B(x) itself
    C = bounds.psd_constant_C(P0.n, R, beta, float(np.linalg.norm(P0.b)))
    for x in ball_points(center, radius, 50, rng):
        assert np.abs(np.linalg.eigvalsh(P0.B(x))).max() <= C


def test_paper_lipschitz_bound_exceeds_the_empirical_ratio():
    P = softres.random_problem(30, 3, seed=5, w=1.0)
    center, radius = np.zeros(3), 0.5
    R = max(bounds.singular_values_extreme(P.A)[0], radius)
    M = bounds.lipschitz_bound_M(P.n, R, bounds.beta(P, center, radius))
    assert 0 < bounds.empirical_lipschitz(P, center, radius, pairs=80, rng=6) <= M
    with pytest.raises(ValueError, match=r"^beta must be"):
        bounds.lipschitz_bound_M(10, 1.0, 0.0)


# ---------------------------------------------------------------- Definition 6.1 and Lemma 7.1 Parts 1–4
def test_definition_6_1_pieces_sum_to_the_hyperdual_hessian():
    from softres import reference, rewrite

    rng = np.random.default_rng(7)
    for _ in range(3):
        n, d = 7, 3
        A = rng.standard_normal((n, d))
        b = rng.dirichlet(np.ones(n))
        x = rng.standard_normal(d) / 3
        P = softres.Problem(A, b)
        pieces = rewrite.pieces(P, x)
        Bz = reference.hyperdual_hessian(lambda t, b=b, n=n: reference.naive_loss(np.eye(n), b, np.zeros(n), t), A @ x)
        assert np.abs(sum(pieces.values()) - Bz).max() <= 1e-12 * np.abs(Bz).max()
        assert np.linalg.eigvalsh(pieces["B_mat"])[0] >= -1e-14 * np.abs(Bz).max()  # Part 1's lower bound
        assert max(rewrite.correspondence(P, x).values()) < 1e-12
        G = rewrite.four_steps(P, x)
        assert np.allclose(sum(G.values()), Bz, rtol=0, atol=1e-12 * np.abs(Bz).max())


def test_lemma_7_1_piece_bounds_hold_on_the_ball():
    from softres import rewrite

    rng = np.random.default_rng(8)
    A = rng.standard_normal((12, 3))
    A *= 4.0 / np.linalg.norm(A, 2)
    P = softres.Problem(A, rng.dirichlet(np.ones(12)))
    beta = bounds.beta(P, np.zeros(3), 0.5)
    bnd = bounds.psd_piece_bounds(12, bounds.R_regime(4.0, 0.5), beta, float(np.linalg.norm(P.b)))
    assert bnd["C"] == pytest.approx(bnd["mat"] + bnd["rank"] + bnd["diag"])
    assert bounds.psd_constant_C(12, 4.0, beta, float(np.linalg.norm(P.b))) == bnd["C"]
    for x in ball_points(np.zeros(3), 0.5, 30, rng):
        pc = rewrite.pieces(P, x)
        assert np.abs(np.linalg.eigvalsh(pc["B_mat"])).max() <= bnd["mat"]
        assert np.abs(np.linalg.eigvalsh(pc["B_rank"])).max() <= bnd["rank"]
        assert np.abs(np.diag(pc["B_diag"])).max() <= bnd["diag"]
        lam = np.linalg.eigvalsh(sum(pc.values()))
        assert -bnd["lower"] <= lam[0] and lam[-1] <= bnd["C"]


def test_lipschitz_chain_constants_exceed_sampled_ratios():
    from softres.experiments.lipschitz import measure_chain

    rng = np.random.default_rng(9)
    A = rng.standard_normal((10, 3))
    A *= 4.0 / np.linalg.norm(A, 2)
    P = softres.Problem(A, rng.dirichlet(np.ones(10)))
    beta = bounds.beta(P, np.zeros(3), 0.5)
    chain = bounds.lipschitz_chain(10, 4.0, beta, float(np.linalg.norm(P.b)))
    meas = measure_chain(P, np.zeros(3), 0.5, rng, pairs=20)
    for key in ("exp", "u", "v", "f", "c", "cf", "r_inf", "L_exp", "L_u", "L_alpha", "L_alpha_inv", "L_f",
                "L_cf", "L_r", "L_r_inf", "K1", "K2", "K3", "K4", "L_B", "M"):
        assert 0 < meas[key] <= chain[key], key
    assert chain["L_B"] == pytest.approx(chain["K1"] + chain["K2"] + chain["K3"] + chain["K4"])
    assert chain["M"] == pytest.approx(16.0 * chain["L_B"])


def test_lipschitz_bound_M_has_two_readings():
    log8 = bounds.lipschitz_bound_M(10, 4.0, 2.0, reading="exp8R2", log10=True)
    log1 = bounds.lipschitz_bound_M(10, 4.0, 2.0, reading="expR2", log10=True)
    assert log8 - log1 == pytest.approx(7 * 16 / math.log(10))
    assert bounds.lipschitz_bound_M(10, 4.0, 2.0) == bounds.lipschitz_bound_M(10, 4.0, 2.0, reading="exp8R2")
    with pytest.raises(ValueError, match="reading"):
        bounds.lipschitz_bound_M(10, 4.0, 2.0, reading="exp2R2")
    assert bounds.R_regime(1.2, 0.5) == bounds.R_MIN == 4.0
    assert bounds.R_regime(5.5, 0.5) == 5.5


# ---------------------------------------------------------------- issue 12, item 10: nonsense is rejected
@pytest.mark.parametrize(("call", "name"), [
    (lambda: bounds.predicted_iterations(1.0, 1e-8, rate=2), "rate"),
    (lambda: bounds.predicted_iterations(1.0, 1e-8, rate=0), "rate"),
    (lambda: bounds.predicted_iterations(1.0, 1e-8, rate=1), "rate"),
    (lambda: bounds.predicted_iterations(1.0, 0.0), "eps"),
    (lambda: bounds.predicted_iterations(math.nan, 1e-8), "r0"),
    (lambda: bounds.predicted_iterations(1.0, math.nan), "eps"),
    (lambda: bounds.good_init_radius(1.0, 0.0), "M"),
    (lambda: bounds.good_init_radius(math.nan, 1.0), "l"),
    (lambda: bounds.good_init_radius(1.0, math.nan), "M"),
    (lambda: bounds.shrinking_bound(0.1, 0.01, 0.0, 0.0), "l"),
    (lambda: bounds.shrinking_bound(math.nan, 0.01, 1.0, 2.0), "r"),
    (lambda: bounds.shrinking_bound(0.1, 0.01, 1.0, math.nan), "M"),
    (lambda: bounds.psd_w_sufficient(10, 4.0, 1.0, 0.0, 0.0), "sigma_min"),
    (lambda: bounds.psd_w_sufficient(10, 4.0, 1.0, math.nan, 1.0), "l"),
    (lambda: bounds.psd_w_sufficient(10, 4.0, 0.0, 0.0, 1.0), "beta"),
    (lambda: bounds.psd_constant_C(10, 4.0, 0.0), "beta"),
    (lambda: bounds.psd_constant_C(10, math.nan, 1.0), "R"),
    (lambda: bounds.psd_constant_C(10, 4.0, math.nan), "beta"),
    (lambda: bounds.psd_constant_C(0, 4.0, 1.0), "n"),
    (lambda: bounds.lipschitz_bound_M(10, 4.0, 0.0), "beta"),
    (lambda: bounds.lipschitz_bound_M(10, 4.0, math.nan), "beta"),
    (lambda: bounds.lipschitz_bound_M(10, math.nan, 1.0), "R"),
    (lambda: bounds.lipschitz_chain(10, 4.0, 0.0), "beta"),
])
def test_bounds_reject_nonsense_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        call()


def test_bounds_reject_wrong_types():
    with pytest.raises(TypeError, match=r"^n must"):
        bounds.lipschitz_bound_M(10.5, 4.0, 1.0)
    with pytest.raises(TypeError, match=r"^rate must"):
        bounds.predicted_iterations(1.0, 1e-8, rate="0.4")
