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
    with pytest.raises(ValueError, match="beta must be positive"):
        bounds.lipschitz_bound_M(10, 1.0, 0.0)
