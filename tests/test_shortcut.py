"""The helpers of the chapter "What the shortcut changes" (softres.experiments.shortcut)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import eigh

from softres import bounds
from softres.experiments import shortcut
from softres.problem import Problem


@pytest.mark.parametrize("key", list(shortcut.UNITS))
def test_hess_exp_small_is_the_package_hessian(key):
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((12, 4)), rng.dirichlet(np.ones(12))
    P = Problem(A, b, unit=shortcut.UNITS[key])
    x = rng.standard_normal(4) / 2
    if not P.in_domain(x):
        x = -x
    H = P.hess_exp(x)
    np.testing.assert_allclose(shortcut.hess_exp_small(P, x), H, rtol=1e-12, atol=1e-13 * np.abs(H).max())


@pytest.mark.parametrize("key", list(shortcut.UNITS))
def test_beta_on_ball_agrees_with_bounds_beta(key):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((10, 4))
    P = Problem(A, np.full(10, 0.1), unit=shortcut.UNITS[key])
    for radius in (0.5, 2.0):
        ours = shortcut.beta_on_ball(A, shortcut.UNITS[key], radius)
        ref = bounds.beta(P, np.zeros(4), radius)
        assert ours <= ref + 1e-9 * max(1.0, abs(ref))  # a minimum: never above another feasible value
        assert ours == pytest.approx(ref, rel=2e-2, abs=1e-6)
        if key == "shortcut":  # alpha(x) = <A^T 1, x>: the minimum is -radius ||A^T 1||
            assert ours == pytest.approx(-radius * np.linalg.norm(A.sum(axis=0)), rel=1e-8)


def test_psd_threshold_is_the_smallest_psd_weight():
    rng = np.random.default_rng(2)
    seen = 0
    for _ in range(40):
        A, b = rng.standard_normal((10, 4)), rng.dirichlet(np.ones(10))
        x = rng.standard_normal(4) / 2
        P = Problem(A, b)
        if not P.in_domain(x):
            continue
        H, G = P.hess_exp(x), A.T @ A
        rel, w = shortcut.psd_threshold(H, np.linalg.inv(np.linalg.cholesky(G)))
        lam = np.linalg.eigvalsh(H)
        assert (rel < 0) == (lam[0] < -1e-10 * np.abs(lam).max())
        if w > 0:
            seen += 1
            assert w**2 == pytest.approx(-eigh(H, G, eigvals_only=True)[0], rel=1e-8)
            scale = np.abs(np.linalg.eigvalsh(H + w**2 * G)).max()
            assert np.linalg.eigvalsh(H + w**2 * G)[0] >= -1e-9 * scale
            assert np.linalg.eigvalsh(H + (0.9 * w) ** 2 * G)[0] < 0
        else:
            assert lam[0] >= -1e-10 * np.abs(lam).max()
    assert seen > 10


def test_small_runs_are_consistent():
    rng = np.random.default_rng(3)
    ind = shortcut.indefiniteness(rng, draws=20, points=2, boot=20)
    assert ind["total"] == 40
    for k, s in ind["summary"].items():
        assert 0 <= s["indefinite"] <= 1 and s["in_domain"] <= 40, k
        assert np.all(np.diff(s["quantiles"]) >= 0)
    assert ind["summary"]["softmax"]["in_domain"] == 40  # e^z > 0: always in the domain
    assert ind["ray_max"] < 1e-10
    sol = shortcut.solvers(rng, seeds=2, starts=2)
    for k in shortcut.EXP_KEYS:
        for m in shortcut.SOLVERS:
            rec = sol["runs"][k][m]
            assert not np.any(rec["reached"] & (rec["status"] != 0))
            assert not np.any(rec["reached"] & rec["spurious"])
