"""Leverage-score sparsification (Lemma A.8) against exact leverage scores and exact Gram matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

import softres
from softres import bounds, sketch
from softres.solvers import minimize


def exact_leverage(A, D):
    """Leverage scores of the rows of D^{1/2} A from a full (reference-only) QR: ‖Q_i‖²."""
    Q = np.linalg.qr(np.sqrt(D)[:, None] * A)[0]
    return np.einsum("ij,ij->i", Q, Q)


def coherent_matrix(n, d, rng):
    """Gaussian rows of very different sizes plus d spike rows that each carry one direction alone."""
    A = rng.standard_normal((n, d)) * np.exp(rng.normal(0.0, 1.0, size=(n, 1)))
    A[:d] = 0.0
    A[:d, :d] = 50.0 * np.eye(d) * np.sqrt(n)
    A[d:, 0] *= 1e-3  # the first direction lives almost only in the first spike
    return A


def test_sample_size_formula_and_its_range_checks():
    assert sketch.sample_size(20, 0.1, 0.05) == math.ceil(100 * 20 * math.log(20 / 0.05))
    assert sketch.sample_size(20, 0.5, 0.05, C=0.5) == math.ceil(0.5 * 4 * 20 * math.log(400))
    for kwargs, pattern in [(dict(eps0=0.0), "eps0"), (dict(eps0=1.0), "eps0"), (dict(delta=0.0), "delta"),
                            (dict(delta=1.5), "delta"), (dict(C=0.0), "C must be > 0")]:
        with pytest.raises(ValueError, match=pattern):
            sketch.sample_size(5, **({"eps0": 0.1, "delta": 0.1} | kwargs))


def test_approximate_leverage_scores_track_the_exact_ones():
    rng = np.random.default_rng(0)
    n, d = 6000, 12
    A = coherent_matrix(n, d, rng)
    D = rng.uniform(0.1, 10.0, size=n)
    exact = exact_leverage(A, D)
    approx = sketch.leverage_scores(A, D, np.random.default_rng(1))
    assert np.all(np.isfinite(approx)) and np.all(approx >= 0)
    assert approx.sum() == pytest.approx(d, rel=0.3)  # leverage scores sum to the rank
    ratio = approx / exact
    assert 0.6 <= np.median(ratio) <= 1.6
    assert np.mean((ratio > 1 / 3) & (ratio < 3)) >= 0.99
    assert np.all(approx[:d] > 0.3)  # the spikes (exact score ≈ 1) are seen as heavy


def test_coherent_leverage_scores_survive_sketch_collisions():
    """d rows of leverage ≈ 1 hashed into 8d buckets collide often; the estimates must not blow up."""
    rng = np.random.default_rng(2)
    n, d = 20000, 8
    A = coherent_matrix(n, d, rng)
    D = rng.uniform(0.5, 2.0, size=n)
    exact = exact_leverage(A, D)
    worst = [np.max(sketch.leverage_scores(A, D, np.random.default_rng(seed))[:d] / exact[:d])
             for seed in range(12)]
    assert max(worst) <= 4.0, np.round(worst, 1)


def test_coherent_matrix_meets_the_accuracy_with_probability_1_minus_delta():
    rng = np.random.default_rng(2)
    n, d, eps0, delta, trials = 20000, 8, 0.5, 0.05, 40
    A = coherent_matrix(n, d, rng)
    D = rng.uniform(0.5, 2.0, size=n)
    exact = A.T @ (D[:, None] * A)
    fails = sum(bounds.spectral_error(exact, sketch.sampled_gram(
        A, sketch.sparsify_diagonal(A, D, eps0=eps0, delta=delta, C=3.0, rng=seed))) > eps0
        for seed in range(trials))
    assert fails <= delta * trials, fails


def test_uniform_sampling_misses_what_leverage_sampling_keeps():
    """On a coherent matrix, uniform sampling of s rows misses the spikes; leverage sampling keeps them all."""
    rng = np.random.default_rng(2)
    n, d, eps0 = 20000, 8, 0.3
    A = coherent_matrix(n, d, rng)
    D = rng.uniform(0.5, 2.0, size=n)
    exact = A.T @ (D[:, None] * A)
    Dt = sketch.sparsify_diagonal(A, D, eps0=eps0, delta=0.05, rng=1)
    assert Dt.draws == sketch.sample_size(d, eps0, 0.05) < n
    assert set(range(d)) <= set(Dt.rows.tolist())
    rows = rng.choice(n, size=Dt.draws)  # uniform sampling, importance weights n/s
    assert not set(range(d)) & set(rows.tolist())
    uniform = (A[rows].T * (D[rows] * n / Dt.draws)) @ A[rows]
    assert bounds.spectral_error(exact, uniform) > 0.9  # a direction is lost entirely


def test_sampled_gram_is_unbiased():
    P = softres.random_problem(5000, 6, seed=3, w=3.0)
    D = P.B_diag(P.x_true) + P.w2
    exact = P.gram(D)
    rng = np.random.default_rng(4)
    trials = 300
    mean = sum(sketch.sampled_gram(P.A, sketch.sparsify_diagonal(P.A, D, eps0=0.5, delta=0.1, rng=rng))
               for _ in range(trials)) / trials
    assert np.linalg.norm(mean - exact, 2) <= 0.03 * np.linalg.norm(exact, 2)


def test_exact_diagonal_when_the_sample_size_reaches_n():
    P = softres.random_problem(300, 5, seed=5, w=3.0)
    D = P.B_diag(P.x_true) + P.w2
    Dt = sketch.sparsify_diagonal(P.A, D, eps0=0.1, delta=0.05, rng=0)
    assert Dt.nnz == Dt.draws == P.n and np.array_equal(Dt.weights, D)
    np.testing.assert_allclose(sketch.sampled_gram(P.A, Dt), P.gram(D), rtol=1e-12, atol=0)


@pytest.mark.parametrize("density", [None, 0.05])
def test_dense_and_sparse_inputs_meet_the_accuracy(density):
    P = softres.random_problem(30000, 10, seed=6, density=density, w=3.0)
    assert P.is_sparse == (density is not None)
    x = P.x_true
    D = P.B_diag(x) + P.w2
    Dt = sketch.sparsify_diagonal(P.A, D, eps0=0.3, delta=0.05, rng=7)
    assert Dt.draws < P.n and np.all(Dt.weights > 0) and np.all(np.diff(Dt.rows) > 0)
    assert bounds.spectral_error(P.gram(D), sketch.sampled_gram(P.A, Dt)) <= 0.3


@pytest.mark.parametrize(("D", "pattern"), [
    (lambda n: np.r_[-1.0, np.ones(n - 1)], "1 of"),
    (lambda n: np.r_[0.0, 0.0, np.ones(n - 2)], "2 of"),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], "D must contain only finite"),
    (lambda n: np.ones(n - 1), "D must be a 1-D array of length 50"),
])
def test_a_diagonal_that_is_not_positive_is_refused(D, pattern):
    A = np.random.default_rng(8).standard_normal((50, 3))
    with pytest.raises(ValueError, match=pattern):
        sketch.sparsify_diagonal(A, D(50), eps0=0.5, delta=0.5, C=0.01, rng=0)


def test_the_n_by_d_matrix_is_never_factored(monkeypatch):
    shapes = []
    qr = np.linalg.qr

    def spy(M, *args, **kwargs):
        shapes.append(np.shape(M))
        return qr(M, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "qr", spy)
    P = softres.random_problem(20000, 8, seed=9, w=3.0)
    D = P.B_diag(P.x_true) + P.w2
    sketch.sparsify_diagonal(P.A, D, eps0=0.3, delta=0.05, rng=0)
    assert shapes and all(rows <= 8 * P.d for rows, _ in shapes), shapes


def test_reproducible_from_a_seed_and_global_state_untouched():
    P = softres.random_problem(20000, 6, seed=10, w=3.0)
    D = P.B_diag(P.x_true) + P.w2
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (checking the global state is untouched)
    a = sketch.sparsify_diagonal(P.A, D, eps0=0.3, rng=11)
    b = sketch.sparsify_diagonal(P.A, D, eps0=0.3, rng=np.random.default_rng(11))
    c = sketch.sparsify_diagonal(P.A, D, eps0=0.3, rng=12)
    assert np.array_equal(a.rows, b.rows) and np.array_equal(a.weights, b.weights)
    assert not np.array_equal(a.rows, c.rows)
    assert np.array_equal(state, np.random.get_state()[1])  # noqa: NPY002


def small_w_problem():
    """Too small w: B_diag + w² < 0 at x_true (a target far above f where e^{Ax} is largest)."""
    base = softres.random_problem(2000, 4, seed=12, w=None)
    b = base.b.copy()
    b[np.argmax(base.A @ base.x_true)] += 1.0
    P = softres.Problem(base.A, b, 1e-6)
    assert (P.B_diag(base.x_true) + P.w2).min() < 0  # the premise: Lemma A.8's diagonal is not positive here
    return P, base.x_true


def test_solvers_report_a_diagonal_that_is_not_positive():
    """Algorithm 1 to the letter (nonpositive="raise") has nothing valid to sample: it stops and says so."""
    P, x0 = small_w_problem()
    res = minimize(P, x0, method="sketch-newton", eps0=0.5, seed=0, nonpositive="raise")
    assert not res.success and res.status == 4, res.message
    assert "non-positive" in res.message and "increase w" in res.message
    assert np.array_equal(res.x, x0) and np.isfinite(res.fun)


def test_nonpositive_rows_kept_exactly():
    """nonpositive="exact": rows with D_i <= 0 enter exactly, the rest is sampled (beyond the paper).

    One target raised far above f makes one row of B_diag + w² negative while ∇²L stays positive
    definite (the situation of a large n with w_i = w/n).
    """
    base = softres.random_problem(3000, 6, seed=12, w=3.0)
    b = base.b.copy()
    b[np.argmax(base.A @ base.x_true)] += 0.05
    P = softres.Problem(base.A, b, base.w)
    x0 = np.zeros(P.d)
    xstar = minimize(P, x0, method="newton", tol=1e-14).x
    assert np.sum(P.B_diag(xstar) + P.w2 <= 0) == 1 and np.linalg.eigvalsh(P.hess(xstar))[0] > 0
    assert minimize(P, x0, method="sketch-newton", eps0=0.5, seed=0, nonpositive="raise").status == 4
    for method, opts in (("sketch-newton", {}), ("newton-cg", {})):  # "exact" is sketch-newton's default
        res = minimize(P, x0, method=method, eps0=0.5, seed=0, tol=1e-12, **opts)
        assert res.success, res.message
        assert "exactly instead of sampling" in res.message
        assert np.linalg.norm(res.x - xstar) <= 1e-8
    with pytest.raises(ValueError, match="nonpositive must be"):
        minimize(P, x0, method="sketch-newton", nonpositive="clip")


def test_signed_sampling_is_accurate_against_the_positive_part():
    P = softres.random_problem(30000, 8, seed=18, w=3.0)
    D = P.B_diag(P.x_true) + P.w2
    neg = np.random.default_rng(19).choice(P.n, size=40, replace=False)
    D[neg] = -D[neg]
    exact, positive = P.gram(D), P.gram(np.maximum(D, 0))
    for seed in range(5):
        Dt = sketch.sparsify_diagonal(P.A, D, eps0=0.3, delta=0.05, rng=seed, nonpositive="exact")
        assert Dt.draws < P.n and set(neg.tolist()) <= set(Dt.rows.tolist())
        np.testing.assert_array_equal(Dt.weights[np.isin(Dt.rows, neg)], D[np.sort(neg)])
        err = sketch.sampled_gram(P.A, Dt) - exact  # only the sampled positive part is in error
        lam = np.linalg.eigvalsh(np.linalg.solve(np.linalg.cholesky(positive), np.linalg.solve(
            np.linalg.cholesky(positive), err).T))
        assert np.abs(lam).max() <= 0.3
    with pytest.raises(ValueError, match="must be positive"):
        sketch.sparsify_diagonal(P.A, D)


def test_rescaled_scores_from_an_earlier_diagonal_keep_the_accuracy():
    """Scores τ(D₀) rescaled by γ = D/D₀, with s grown by κ = max γ / min γ, still meet (1 ± ε₀) w.p. 1 − δ."""
    P = softres.random_problem(20000, 10, seed=13, w=3.0)
    D0 = P.B_diag(P.x_true) + P.w2
    D = P.B_diag(P.x_true + 0.1 * np.random.default_rng(14).standard_normal(P.d) / np.sqrt(P.d)) + P.w2
    gamma = D / D0
    kappa = float(gamma.max() / gamma.min())
    assert 1.05 < kappa < 4  # a real change of the diagonal
    tau0 = sketch.sparsify_diagonal(P.A, D0, eps0=0.3, delta=0.1, rng=15).scores
    exact = P.gram(D)
    rng = np.random.default_rng(16)
    trials, fails = 100, 0
    for _ in range(trials):
        Dt = sketch.sparsify_diagonal(P.A, D, eps0=0.3, delta=0.1, rng=rng, scores=tau0 * gamma, distortion=kappa)
        assert Dt.draws == math.ceil(sketch.sample_size(P.d, 0.3, 0.1) * kappa)
        fails += bounds.spectral_error(exact, sketch.sampled_gram(P.A, Dt)) > 0.3
    assert fails <= 0.1 * trials, fails
    with pytest.raises(ValueError, match=r"distortion must be >= 1"):
        sketch.sparsify_diagonal(P.A, D, scores=tau0, distortion=0.5)


def test_score_reuse_skips_the_passes_and_still_converges(monkeypatch):
    P = softres.random_problem(30000, 12, seed=17, w=3.0)
    calls = []
    fresh = sketch.leverage_scores
    monkeypatch.setattr(sketch, "leverage_scores", lambda *a, **k: calls.append(1) or fresh(*a, **k))
    xstar = minimize(P, np.zeros(P.d), method="newton", tol=1e-14).x
    runs = {}
    for reuse in (1.0, 2.0):
        calls.clear()
        res = minimize(P, np.zeros(P.d), method="sketch-newton", tol=1e-12, seed=0, eps0=0.3, score_reuse=reuse)
        assert res.success, res.message
        assert np.linalg.norm(res.x - xstar) <= 1e-8
        runs[reuse] = (len(calls), res.nit)
    assert runs[1.0][0] == runs[1.0][1]  # Algorithm 1: fresh scores at every iterate
    assert runs[2.0][0] < runs[2.0][1] / 2, runs
    with pytest.raises(ValueError, match="score_reuse must be"):
        minimize(P, np.zeros(P.d), method="sketch-newton", score_reuse=0.5)


def test_uniform_sampling_is_unbiased_makes_no_pass_and_loses_to_leverage_on_coherent_rows(monkeypatch):
    """``sampling="uniform"``: equal probabilities over positive rows, mean of AᵀD̃A is AᵀDA; on a
    matrix with one heavy row (coherence n·τ_max/d near n/d) uniform sampling misses it and leverage does not."""
    rng = np.random.default_rng(21)
    n, d = 4000, 5
    A = rng.standard_normal((n, d))
    A[0] *= 300.0  # one coherent row: its leverage score is close to 1
    D = rng.uniform(0.5, 1.5, n)
    exact = (A * D[:, None]).T @ A
    calls = []
    fresh = sketch.leverage_scores
    monkeypatch.setattr(sketch, "leverage_scores", lambda *a, **k: calls.append(1) or fresh(*a, **k))
    Dt = sketch.sparsify_diagonal(A, D, eps0=0.5, delta=0.1, rng=0, sampling="uniform")
    assert not calls and Dt.draws < n
    np.testing.assert_allclose(Dt.scores, np.ones(n))
    G = rng.standard_normal((n, d))  # incoherent rows: the uniform estimate averages out to AᵀDA
    mean = sum(sketch.sampled_gram(G, sketch.sparsify_diagonal(G, D, eps0=0.5, delta=0.1, rng=k, sampling="uniform"))
               for k in range(200)) / 200
    off = np.abs(mean - (G * D[:, None]).T @ G).max() / n
    assert off < 0.06, off  # about five standard errors of the mean of 200 samples of 79 rows
    err = {s: np.median([bounds.spectral_error(exact, sketch.sampled_gram(
        A, sketch.sparsify_diagonal(A, D, eps0=0.5, delta=0.1, rng=k, sampling=s))) for k in range(20)])
        for s in sketch.SAMPLING}
    assert err["leverage"] < 0.5 < err["uniform"], err
    with pytest.raises(ValueError, match="sampling must be one of"):
        sketch.sparsify_diagonal(A, D, sampling="random")
    P = softres.random_problem(3000, 6, seed=22, w=3.0)
    xstar = minimize(P, np.zeros(P.d), method="newton", tol=1e-14).x
    res = minimize(P, np.zeros(P.d), method="sketch-newton", tol=1e-12, seed=0, eps0=0.5, sampling="uniform")
    assert res.success and np.linalg.norm(res.x - xstar) <= 1e-8, res.message
    assert sketch.SketchedHessian(P, sampling="uniform", seed=0)(xstar).shape == (P.d, P.d)


def test_projected_row_norms_equal_the_product_s_row_norms_dense_and_sparse():
    """``‖(A P)_i‖²`` taken in blocks of rows (dense, more than one block here) or in one product (sparse)."""
    import scipy.sparse as sp

    from softres._linalg import MatrixOperator

    rng = np.random.default_rng(0)
    A = rng.standard_normal((70_000, 3))
    P = rng.standard_normal((3, 8))  # blocks of 2**19 // 8 = 65536 rows: two blocks
    want = np.sum((A @ P) ** 2, axis=1)
    for M in (A, sp.csc_array(A)):
        op = MatrixOperator(M)
        before = op.passes
        got = op.projected_row_norms(P)
        assert op.passes - before == 1
        assert np.allclose(got, want, rtol=1e-12, atol=0)
