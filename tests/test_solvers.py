"""Solvers against an independent optimum, their rates against the paper's lemmas, and failure modes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so

import softres
from softres import bounds, sketch
from softres.solvers import METHODS, REGISTRY, minimize, newton_method, options_of


def reference_optimum(P, x0):
    """x* from scipy's trust-exact (independent of softres.solvers), polished by plain Newton steps.

    trust-exact stops once loss differences reach rounding level; three undamped Newton steps from
    there (quadratic convergence) bring the gradient down to rounding level.
    """
    x = so.minimize(P.loss, x0, jac=P.grad, hess=P.hess, method="trust-exact", options={"gtol": 1e-30}).x
    for _ in range(3):
        x = x - np.linalg.solve(P.hess(x), P.grad(x))
    assert np.linalg.norm(P.grad(x)) <= 1e-12 * np.linalg.norm(P.grad(x0))
    return x


PROBLEMS = [dict(n=2000, d=8, seed=1, w=3.0), dict(n=5000, d=20, seed=2, w=3.0),
            dict(n=3000, d=12, seed=3, w=3.0, density=0.2)]


@pytest.fixture(scope="module", params=range(len(PROBLEMS)), ids=["dense-8", "dense-20", "sparse-12"])
def case(request):
    P = softres.random_problem(**PROBLEMS[request.param])
    x0 = np.zeros(P.d)
    return P, x0, reference_optimum(P, x0)


@pytest.mark.parametrize("method", [name for name, cls in REGISTRY.items() if cls.curvature])
def test_newton_type_methods_reach_the_optimum(case, method):
    P, x0, xstar = case
    opts = {"eps0": 0.3} if "eps0" in options_of(method) else {}
    res = minimize(P, x0, method=method, tol=1e-12, maxiter=200, seed=0, **opts)
    assert res.success, res.message
    assert np.linalg.norm(res.x - xstar) <= 1e-8
    assert np.isfinite(res.fun) and res.nit == len(res.history["loss"]) - 1


def test_baselines_reach_the_optimum():
    P = softres.random_problem(400, 5, seed=4, w=30.0)  # well conditioned, so gradient descent is practical
    x0 = np.zeros(P.d)
    xstar = reference_optimum(P, x0)
    for method, tol in (("gd", 1e-11), ("lbfgs", 1e-9)):
        res = minimize(P, x0, method=method, tol=tol, maxiter=20000)
        assert np.linalg.norm(res.x - xstar) <= 1e-8, (method, res.message)


def test_newton_converges_quadratically(case):
    P, x0, xstar = case
    res = minimize(P, x0, method="newton", tol=1e-14, maxiter=50)
    xs = []
    minimize(P, x0, method="newton", tol=1e-14, maxiter=50, callback=xs.append)
    r = np.array([np.linalg.norm(x0 - xstar)] + [np.linalg.norm(x - xstar) for x in xs])
    r = r[r > 1e-13]  # below this the reference itself is the limit
    ratios = r[1:] / r[:-1] ** 2
    assert res.success
    # Near the end r_{t+1} <= K r_t^2 with a moderate K, while r_t itself shrinks fast.
    assert ratios[-1] < 1e3 * max(1.0, ratios[0]), ratios


def test_sketch_newton_contraction_within_lemma_A10(case):
    """r_{t+1}/r_t is at most what Lemma A.10 allows for the achieved ε₀ and measured l, M."""
    P, x0, xstar = case
    l = bounds.hessian_min_eig(P, xstar)
    radius = 1.1 * np.linalg.norm(x0 - xstar)
    M = bounds.empirical_lipschitz(P, xstar, radius, pairs=60, rng=0)
    rng = np.random.default_rng(7)
    x = x0.copy()
    checked = 0
    for _ in range(25):
        r = np.linalg.norm(x - xstar)
        if r < 1e-10:
            break
        D = P.B_diag(x) + P.w**2
        Dt = sketch.sparsify_diagonal(P.A, D, eps0=0.3, delta=0.05, rng=rng)
        Ht = sketch.sampled_gram(P.A, Dt) + P.hess_rank2(x)
        eps_achieved = bounds.spectral_error(P.hess(x), Ht)
        x = x - np.linalg.solve(Ht, P.grad(x))  # Definition A.9, no line search
        bound = bounds.shrinking_bound(r, eps_achieved, l, M)
        if np.isfinite(bound):
            assert np.linalg.norm(x - xstar) <= bound * (1 + 1e-6) + 1e-12, (r, eps_achieved, bound)
            checked += 1
    assert checked >= 3


def test_sketch_meets_spectral_accuracy_with_probability_1_minus_delta():
    P = softres.random_problem(20000, 10, seed=5, w=3.0)
    x = P.x_true
    D = P.B_diag(x) + P.w**2
    exact = P.gram(D)
    eps0, delta, trials = 0.3, 0.1, 200
    rng = np.random.default_rng(11)
    fails = 0
    for _ in range(trials):
        Dt = sketch.sparsify_diagonal(P.A, D, eps0=eps0, delta=delta, rng=rng)
        assert Dt.draws < P.n  # really sampled
        fails += bounds.spectral_error(exact, sketch.sampled_gram(P.A, Dt)) > eps0
    assert fails <= delta * trials, fails


def test_sketch_is_reproducible_and_leaves_global_state_alone():
    P = softres.random_problem(20000, 6, seed=6, w=5.0)
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (checking the global state is untouched)
    a = minimize(P, np.zeros(6), method="sketch-newton", seed=3, tol=1e-10, eps0=0.3)
    assert a.success, a.message
    b = minimize(P, np.zeros(6), method="sketch-newton", seed=np.random.default_rng(3), tol=1e-10, eps0=0.3)
    assert np.array_equal(a.x, b.x) and a.history["loss"] == b.history["loss"]
    assert np.array_equal(state, np.random.get_state()[1])  # noqa: NPY002
    assert a.history["hess_rows"][1] < P.n


def test_near_the_boundary_no_nan_and_a_reason():
    """x0 just inside α > 0 on a problem whose full steps leave the domain."""
    rng = np.random.default_rng(0)
    A = -np.abs(rng.standard_normal((30, 3)))
    P = softres.Problem(A, np.full(30, 1 / 30), 1e-3)
    direction = np.ones(3) / np.sqrt(3)
    lo, hi = 0.0, 10.0
    for _ in range(200):  # bisection to the boundary alpha = 0 along `direction`
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if P.in_domain(mid * direction) else (lo, mid)
    x0 = lo * direction
    assert P.in_domain(x0) and not P.in_domain(hi * direction)
    for method in METHODS:
        res = minimize(P, x0, method=method, maxiter=30, seed=0)
        assert np.all(np.isfinite(res.x)) and not np.isnan(res.fun)
        assert P.in_domain(res.x)
        assert res.success or res.message
    outside = minimize(P, 2 * hi * direction, method="newton")
    assert not outside.success and outside.status == 3 and "alpha" in outside.message


@pytest.mark.parametrize(("kwargs", "pattern"), [
    (dict(method="bfgs"), "method must be one of"),
    (dict(method="newton", tol=-1.0), "tol must be >= 0"),
    (dict(method="newton", maxiter=0), "maxiter must be"),
    (dict(method="sketch-newton", eps0=1.5), "eps0 must be in"),
    (dict(method="sketch-newton", delta=0.0), "delta must be in"),
    (dict(method="sketch-newton", C=-1.0), "C must be > 0"),
    (dict(method="newton-cg", cg_maxiter=0), "cg_maxiter must be"),
    (dict(method="sketch-lbfgs", memory=0), "memory must be"),
    (dict(method="gd", memory=5), "unknown option"),
    (dict(method="newton", eps0=0.1), "unknown option"),
])
def test_bad_options_raise(kwargs, pattern):
    P = softres.random_problem(50, 3, seed=0)
    with pytest.raises(ValueError, match=pattern):
        minimize(P, np.zeros(3), **kwargs)
    with pytest.raises(ValueError, match="x0 must be a 1-D array of length 3"):
        minimize(P, np.zeros(4))


def test_sketch_lbfgs_is_insensitive_to_the_conditioning_of_A():
    """Column scales spanning 1e3 (cond(AᵀA) ≈ 1e6): plain L-BFGS-B crawls, the sketched start does not."""
    counts = {}
    for col_range in (1.0, 1e3):
        P = softres.random_problem(4000, 15, seed=21, w=3.0, col_range=col_range)
        x0 = np.zeros(P.d)
        xstar = reference_optimum(P, x0)
        res = minimize(P, x0, method="sketch-lbfgs", eps0=0.5, tol=1e-12, maxiter=200, seed=0)
        assert res.success and np.linalg.norm(res.x - xstar) <= 1e-8 * max(1.0, np.linalg.norm(xstar))
        plain = minimize(P, x0, method="lbfgs", tol=1e-6, maxiter=200)
        counts[col_range] = (res.nit, plain.nit, plain.success)
    (sk_well, _, _), (sk_ill, plain_ill, plain_ok) = counts[1.0], counts[1e3]
    assert sk_ill <= 2 * sk_well + 5, counts
    assert not plain_ok or plain_ill > 3 * sk_ill, counts


def test_usable_as_a_scipy_custom_method(case):
    P, x0, xstar = case
    res = so.minimize(P.loss, x0, jac=P.grad, hess=P.hess, method=newton_method, tol=1e-12)
    assert res.success and np.linalg.norm(res.x - xstar) <= 1e-8


def test_lbfgs_costs_no_more_passes_than_scipys(monkeypatch):
    """The history of "lbfgs" reuses the evaluations scipy's L-BFGS-B asked for."""
    P = softres.random_problem(3000, 10, seed=20, w=3.0)
    start = P.op.passes
    res = minimize(P, np.zeros(P.d), method="lbfgs", tol=1e-7, maxiter=200)
    ours, start = P.op.passes - start, P.op.passes
    so.minimize(P.loss, np.zeros(P.d), jac=P.grad, method="L-BFGS-B",
                options={"maxiter": res.nit, "gtol": 0.0, "ftol": 0.0, "maxcor": 20})
    theirs = P.op.passes - start
    assert res.success and ours <= theirs + 4, (ours, theirs)


@pytest.mark.parametrize("col_range", [1.0, 30.0, 1000.0])
def test_condition_estimate_within_a_small_factor_of_the_svd(col_range):
    """A sample of m = 4d rows adds the Marchenko–Pastur spread (1 + √(d/m)) / (1 − √(d/m)) = 3 at most."""
    from softres.sketch import condition_estimate

    P = softres.random_problem(3000, 20, seed=4, col_range=col_range)
    true = np.linalg.cond(P.A)
    for seed in range(5):
        est = condition_estimate(P.A, np.random.default_rng(seed))
        assert true / 2 <= est <= 1.5 * 3 * true, (est, true)
    S = softres.random_problem(3000, 20, seed=4, col_range=col_range, density=0.2)
    true_s = np.linalg.cond(S.A.toarray())
    assert true_s / 2 <= condition_estimate(S.A, np.random.default_rng(0)) <= 1.5 * 3 * true_s
    # 16 d rows: the spread shrinks to (1 + 1/4) / (1 - 1/4) = 5/3; all rows: the exact value
    est = condition_estimate(P.A, np.random.default_rng(0), sample_rows=320)
    assert true / 2 <= est <= 1.5 * 5 / 3 * true, (est, true)
    assert condition_estimate(P.A, np.random.default_rng(0), sample_rows=3000) == pytest.approx(true, rel=1e-8)


def test_condition_at_most_decides_as_the_estimate_does():
    """The Cholesky certificate is only a shortcut: same sample, same answer as ``condition_estimate <= kappa``,
    over well- and ill-conditioned, rotated, sparse and overflowing ``A`` and thresholds on both sides."""
    from softres import sketch

    rng = np.random.default_rng(9)
    Q = np.linalg.qr(rng.standard_normal((20, 20)))[0]
    cases = [softres.random_problem(3000, 20, seed=4, col_range=c).A for c in (1.0, 2.0, 4.0, 30.0)]
    cases.append(cases[2] @ Q)  # ill-conditioning along no column
    cases.append(softres.random_problem(3000, 20, seed=4, col_range=3.0, density=0.2).A)
    cases.append(np.full((300, 20), 1e200))  # squares overflow: unknown, not certified
    decided = set()
    for A in cases:
        for seed in range(4):
            for kappa in (1.5, 3.0, 4.5, 10.0, 100.0):
                estimate = sketch.condition_estimate(A, np.random.default_rng(seed))
                answer = sketch.condition_at_most(A, np.random.default_rng(seed), kappa)
                assert answer == (estimate <= kappa), (estimate, kappa)
                decided.add(answer)
    assert decided == {True, False}
    with pytest.raises(ValueError, match="kappa"):
        sketch.condition_at_most(cases[0], rng, 0.5)


def test_condition_at_most_skips_the_eigenvalues_for_a_well_conditioned_sample(monkeypatch):
    from softres import sketch

    A = softres.random_problem(3000, 20, seed=4).A
    assert sketch.condition_estimate(A, np.random.default_rng(0)) < 4

    def no_eigenvalues(G):
        raise AssertionError("the certificate should have decided")

    monkeypatch.setattr(sketch, "_gram_condition", no_eigenvalues)
    assert sketch.condition_at_most(A, np.random.default_rng(0), 10.0)


def test_condition_estimate_reads_no_pass_and_errs_high_on_a_coherent_a():
    """A direction carried by a few rows is missed by the sample: κ̂ is inf, never small."""
    from softres.sketch import condition_estimate

    P = softres.random_problem(20_000, 10, seed=1)
    start = P.op.passes
    assert condition_estimate(P.op, np.random.default_rng(0)) < 4
    assert P.op.passes == start
    A = P.A.copy()
    A[:, 3] = 0.0
    A[:5, 3] = 1.0  # column 3 lives on five rows of 20,000
    assert np.isfinite(np.linalg.cond(A))
    assert condition_estimate(A, np.random.default_rng(0)) == np.inf
    with pytest.raises(TypeError, match="sample_rows"):
        condition_estimate(A, np.random.default_rng(0), sample_rows=4.5)


def test_condition_estimate_is_inf_for_a_rank_deficient_a():
    from softres.sketch import condition_estimate

    A = np.random.default_rng(1).standard_normal((500, 6))
    A[:, 5] = A[:, 0] - 2 * A[:, 3]
    assert condition_estimate(A, np.random.default_rng(0)) == np.inf
    assert condition_estimate(A[:3], np.random.default_rng(0)) == np.inf  # fewer rows than columns


@pytest.mark.parametrize(("density", "col_range", "large", "expected"), [
    (None, 1.0, True, "lbfgs"), (None, 100.0, True, "newton-lbfgs"), (None, 1.0, False, "newton"),
    (0.05, 1.0, True, "newton-lbfgs"), (0.05, 100.0, True, "newton-lbfgs")])
def test_auto_chooses_by_size_sparsity_and_conditioning_and_reaches_newtons_optimum(density, col_range, large,
                                                                                    expected, monkeypatch):
    """``large``: this 640 kB A counts as large (AUTO_LBFGS_BYTES lowered below it)."""
    from softres.solvers import _methods

    if large:
        monkeypatch.setattr(_methods, "AUTO_LBFGS_BYTES", 1 << 16)
    P = softres.random_problem(4000, 20, seed=2, density=density, w=5.0, col_range=col_range)
    start = P.op.passes
    res = minimize(P, np.zeros(P.d), method="auto", seed=0)
    assert res.success and f"auto chose {expected!r}" in res.message
    assert res.passes == P.op.passes - start
    ref = minimize(P, np.zeros(P.d), method="newton", tol=1e-13)
    assert np.linalg.norm(res.x - ref.x) <= 1e-6 * np.linalg.norm(ref.x)
    warm = minimize(P, ref.x, method="auto", seed=0)
    assert warm.success and warm.nit <= 1


def test_auto_is_the_default_method():
    P = softres.random_problem(500, 5, seed=1, w=1.0)
    res = minimize(P, np.zeros(P.d))
    assert res.success and res.method == "auto" and "auto chose 'newton'" in res.message  # a small dense A


@pytest.mark.parametrize("initial", ["scalar", "matrix"])
def test_lbfgs_direction_equals_the_two_loop_recursion(initial):
    """The compact form (Byrd, Nocedal, Schnabel 1994) against Nocedal & Wright's Algorithm 7.4, written here,
    with L-BFGS's scaled identity and with a matrix ``H₀`` (as sketch-lbfgs's), through and past a full memory."""
    from softres.solvers._methods import LBFGS

    rng = np.random.default_rng(0)
    d, memory = 7, 5
    Q = rng.standard_normal((d, d))
    H0 = Q @ Q.T + np.eye(d)

    class MatrixStart(LBFGS):
        scalar_initial = False

        def initial_inverse(self, x, q, g):
            return H0 @ q

    method = (LBFGS if initial == "scalar" else MatrixStart)(softres.random_problem(50, d, seed=0), rng, memory=memory)
    method.scale = 0.3
    pairs = []
    for _ in range(12):
        s = rng.standard_normal(d)
        y = s + 0.8 * rng.standard_normal(d)  # some pairs have sᵀy < 0 and are skipped
        method.accepted(s, y)
        if s @ y > 0:
            pairs = [*pairs, (s, y, 1.0 / (s @ y))][-memory:]
        g = rng.standard_normal(d)
        q, coeffs = g.copy(), []
        for s_, y_, rho in reversed(pairs):
            coeffs.append(rho * (s_ @ q))
            q -= coeffs[-1] * y_
        if initial == "matrix":
            r = H0 @ q
        else:
            r = q * ((pairs[-1][0] @ pairs[-1][1]) / (pairs[-1][1] @ pairs[-1][1])) if pairs else 0.3 * q
        for (s_, y_, rho), a in zip(pairs, reversed(coeffs), strict=True):
            r += (a - rho * (y_ @ r)) * s_
        close = np.abs(method.direction(np.zeros(d), g) + r).max() <= 1e-12 * np.abs(r).max()
        assert close
    assert len(pairs) == memory == method.k


class _NoisyOracle:
    """A loss that reads ``noise`` above its true value at every trial (rounding noise the line search's
    allowance of 8 ε|L| does not cover), with an exact gradient of ``½‖x‖²``."""

    def __init__(self, noise):
        self.noise, self.grads = noise, 0

    def trial_loss(self, x):
        return 0.5 * float(x @ x) + self.noise

    def grad(self, x):
        self.grads += 1
        return x.copy(), float(np.linalg.norm(x))


def test_line_search_lets_the_gradient_judge_a_step_the_loss_cannot_resolve():
    """Near x*, a predicted decrease below the loss's rounding error: the trial is accepted when it reduces
    the gradient (its gradient is returned, no second evaluation); a decrease the loss can resolve is still
    judged by the loss; a trial that does not reduce the gradient is rejected."""
    from softres.solvers._common import Stop, _line_search

    f0 = 1.0
    slack = 8 * np.finfo(float).eps * f0
    x = np.full(3, 1e-10)  # ½‖x‖² ≈ 1.5e-20: far below slack, so L = f0 + ½‖x‖² cannot resolve it
    oracle = _NoisyOracle(noise=f0 + 4 * slack)
    x_new, _, t, _, judged = _line_search(oracle, x, f0, x, -x)  # the Newton step of ½‖x‖² from x
    assert t == 1.0 and np.array_equal(x_new, np.zeros(3)) and judged is not None and judged[1] == 0.0
    assert oracle.grads == 1
    # a decrease the loss resolves (½‖x‖² = 1.5 ≫ slack) is judged by the loss: the noise is far smaller
    x = np.ones(3)
    x_new, f, t, _, judged = _line_search(_NoisyOracle(noise=4 * slack), x, 1.5, x, -x)
    assert t == 1.0 and judged is None and f == 4 * slack
    # a direction along which the gradient grows is rejected at every step
    x = np.full(3, 1e-10)
    with pytest.raises(Stop):
        _line_search(_NoisyOracle(noise=f0 + 4 * slack), x, f0, -x * 1e-12, x)


def test_single_blas_thread_limits_and_restores_even_from_two_threads():
    """One BLAS thread inside (nested entries too); the settings before it afterwards, also when two threads
    enter at once (interleaved limits would restore each other's one-thread setting)."""
    import threading

    from threadpoolctl import threadpool_info

    from softres._linalg import single_blas_thread

    def threads():
        return sorted(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")

    before = threads()
    with single_blas_thread():
        assert set(threads()) == {1}
        with single_blas_thread():
            assert set(threads()) == {1}
        assert set(threads()) == {1}
    assert threads() == before
    barrier = threading.Barrier(2)

    def work():
        barrier.wait()
        for _ in range(20):
            with single_blas_thread():
                np.linalg.eigvalsh(np.eye(50))
    pool = [threading.Thread(target=work) for _ in range(2)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert threads() == before


@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("trans", [False, True])
def test_triangular_solves_of_vectors_and_blocks_match_a_general_solve(lower, trans):
    """Blocks go column by column (see triangular_solve); both against numpy's LU solve of the same system."""
    from softres.solvers._common import chol_solve, triangular_solve

    rng = np.random.default_rng(5)
    T = np.tril(rng.standard_normal((9, 9))) + 5 * np.eye(9)
    T = T if lower else T.T.copy()
    op = T.T if trans else T
    for r in (rng.standard_normal(9), rng.standard_normal((9, 4))):
        np.testing.assert_allclose(triangular_solve(T, r, lower=lower, trans=trans), np.linalg.solve(op, r),
                                   rtol=1e-12, atol=1e-12)
    L = np.tril(T) if lower else np.tril(T.T)
    R = rng.standard_normal((9, 3))
    np.testing.assert_allclose(chol_solve(L, R), np.linalg.solve(L @ L.T, R), rtol=1e-10, atol=1e-12)


def test_newton_lbfgs_first_step_is_newtons_and_it_reaches_newtons_optimum():
    """Its initial inverse Hessian is the exact one at x0: the first iterate is x0 − ∇²L(x0)⁻¹∇L(x0) (a full
    step here), computed independently with numpy's solve; then it converges to exact Newton's optimum."""
    P = softres.random_problem(3000, 8, seed=5, w=5.0, col_range=30.0)
    x0 = np.zeros(P.d)
    first = minimize(P, x0, method="newton-lbfgs", maxiter=1)
    assert first.history["t"][1] == 1.0
    expected = x0 - np.linalg.solve(P.hess(x0), P.grad(x0))
    np.testing.assert_allclose(first.x, expected, rtol=1e-10, atol=1e-14)
    res = minimize(P, x0, method="newton-lbfgs", tol=1e-12)
    ref = minimize(P, x0, method="newton", tol=1e-13)
    assert res.success and res.nhev == 1
    assert np.linalg.norm(res.x - ref.x) <= 1e-8 * np.linalg.norm(ref.x)


def test_newton_lbfgs_forms_the_hessian_again_every_refresh_iterations():
    P = softres.random_problem(2000, 10, seed=3, w=0.1, scale=8.0)
    ref = minimize(P, np.zeros(P.d), method="newton", tol=1e-13)
    for refresh in (0, 3):
        res = minimize(P, np.zeros(P.d), method="newton-lbfgs", tol=1e-11, refresh=refresh)
        assert res.success and np.linalg.norm(res.x - ref.x) <= 1e-6 * np.linalg.norm(ref.x)
        assert res.nhev == (1 if refresh == 0 else 1 + (res.nit - 1) // refresh)
        assert sum(rows > 0 for rows in res.history["hess_rows"]) == res.nhev
    with pytest.raises(ValueError, match="refresh must be"):
        minimize(P, np.zeros(P.d), method="newton-lbfgs", refresh=-1)
