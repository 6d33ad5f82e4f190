"""The compiled kernels (softres._kernels, numba) against numpy, scipy and the numpy fallback.

Skipped without numba (then there is only the numpy path); the comparisons switch ``_kernels.ENABLED``
both ways, at every size (``MIN_ROWS = 0``).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import softres
from softres import DomainError, Problem, _kernels
from softres.units import COSH, SOFTMAX, UNIFIED, unified

numba = pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def at_every_size(monkeypatch):
    """The kernels for the small problems of these tests too (softres uses them from MIN_ROWS rows)."""
    monkeypatch.setattr(_kernels, "MIN_ROWS", 0)


@pytest.fixture
def K():
    return _kernels.kernels()


def test_by_default_only_problems_with_many_rows_use_the_kernels(monkeypatch):
    monkeypatch.undo()
    assert _kernels.MIN_ROWS == 100_000 or _kernels._MODE == "1"
    if _kernels.ENABLED and _kernels._MODE != "1":
        small = Problem(sp.random_array((500, 5), density=0.2, format="csc", rng=0), np.zeros(500))
        assert small.op._csc_kernels() is None and _kernels.active(99_999) is None
        assert _kernels.active(100_000) is _kernels.kernels()


def evaluate(P: Problem, x: np.ndarray, s: np.ndarray, compiled: bool, monkeypatch) -> dict:
    """Every state-derived quantity at ``x`` with the kernels on or off (a fresh problem each time)."""
    monkeypatch.setattr(_kernels, "ENABLED", compiled)
    P = Problem(P.A, P.b, P.w, P.unit)
    start = P.op.passes
    out = {"grad": P.grad(x)}
    out["passes"] = P.op.passes - start
    P = Problem(P.A, P.b, P.w, P.unit)  # the loss first: the state of Problem._at (a dense A's gradient
    out["loss"] = P.loss(x)              # at a new point comes from its one-pass loss_and_grad instead)
    out.update(grad_after_loss=P.grad(x), f=P.f(x), c=P.c(x), B_diag=P.B_diag(x), grad_exp=P.grad_exp(x),
               hessp=P.hessp(x, s), hess=P.hess(x), rank2=P.hess_rank2(x), alpha=P.alpha(x))
    fresh = Problem(P.A, P.b, P.w, P.unit)  # the Hessian's parts before any gradient (r computed on demand)
    out.update(hess_first=fresh.hess(x), U_first=fresh.B_rank(x)[0])
    return out


# ---------------------------------------------------------------- exp
def test_exp_is_within_one_ulp_of_numpy_and_flushes_only_below_e_to_the_minus_708(K):
    rng = np.random.default_rng(0)
    x = np.concatenate([-rng.uniform(0, 745, 200_000), -rng.exponential(1.0, 200_000), -rng.uniform(0, 1e-9, 1000),
                        [0.0, -0.0, -1e-300, -np.log(2) / 2, -np.log(2), -708.0, -708.1, -745.2, -800.0, -1e300]])
    out = np.empty_like(x)
    K.exp_array(x, out)
    ref = np.exp(x)
    kept = x >= K._EXP_MIN
    ulps = np.abs(out[kept] - ref[kept]) / np.spacing(ref[kept])
    assert ulps.max() <= 1.0
    assert out[x == 0.0].tolist() == [1.0, 1.0]
    assert np.all(out[~kept] == 0.0) and np.all(ref[~kept] < 3.4e-308)  # flushed values were below 3.4e-308


# ---------------------------------------------------------------- products
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (300, 40), (5000, 100)])
def test_csc_products_match_scipy_with_empty_columns_and_rows(K, shape):
    rng = np.random.default_rng(sum(shape))
    A = sp.random_array(shape, density=0.02, format="csc", rng=rng)
    A = sp.csc_array(A)
    op = softres._linalg.MatrixOperator(A)
    assert op._csc_kernels() is K
    x, y = rng.standard_normal(shape[1]), rng.standard_normal(shape[0])
    np.testing.assert_allclose(op.matvec(x), A @ x, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(op.rmatvec(y), A.T @ y, rtol=1e-12, atol=1e-13)
    Y = rng.standard_normal((shape[0], 2))
    np.testing.assert_allclose(op.rmatvec(Y), A.T @ Y, rtol=1e-12, atol=1e-13)
    D = rng.standard_normal(shape[0])  # either sign, as B_diag + w² may be
    G = op.gram(D)
    np.testing.assert_array_equal(G, G.T)
    np.testing.assert_allclose(G, (A.T @ (D[:, None] * A.toarray())), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dense", [False, True])
def test_compiled_products_report_overflow_like_numpy(dense, monkeypatch):
    A = np.array([[1e300, 0.0], [0.0, 1.0], [1e300, 1.0]])
    A = A if dense else sp.csc_array(A)
    for compiled in (True, False):
        monkeypatch.setattr(_kernels, "ENABLED", compiled)
        op = softres._linalg.MatrixOperator(A)
        assert (op.dense_kernels() if dense else op._csc_kernels()) is (_kernels.kernels() if compiled else None)
        with pytest.raises(ValueError, match="x is too large"):
            op.matvec(np.array([1e10, 0.0]))
        with pytest.raises(ValueError, match="overflows"):
            op.rmatvec(np.array([1e10, 0.0, 1e10]))


# ---------------------------------------------------------------- the state, both ways
@pytest.mark.parametrize("unit", [UNIFIED, SOFTMAX, unified(0.3), COSH], ids=lambda u: u.name)
@pytest.mark.parametrize("kind", ["sparse", "dense"])
@pytest.mark.parametrize("w", [None, 0.5])
def test_compiled_and_numpy_paths_agree_to_rounding(unit, kind, w, monkeypatch):
    n, d = 3000, 20
    planted = softres.random_problem(n, d, seed=3, density=0.05 if kind == "sparse" else None, w=w)
    P = Problem(planted.A, planted.b, planted.w, unit)
    rng = np.random.default_rng(4)
    x = 2.0 * planted.x_true + 0.3 * rng.standard_normal(d)  # away from the optimum: no cancellation in r
    s = rng.standard_normal(d)
    on = evaluate(P, x, s, True, monkeypatch)
    off = evaluate(P, x, s, False, monkeypatch)
    assert off["passes"] == 2  # A @ x, A.T @ y
    assert on["passes"] == (1 if kind == "dense" and unit.kind == "exp" else 2)  # dense: one compiled pass
    for key in off.keys() - {"passes"}:
        np.testing.assert_allclose(on[key], off[key], rtol=1e-11, atol=1e-14 * np.max(np.abs(off[key])), err_msg=key)


def test_both_paths_agree_at_large_ax_where_the_shift_matters(monkeypatch):
    rng = np.random.default_rng(5)
    A = sp.random_array((2000, 10), density=0.1, format="csr", rng=rng)
    P = Problem(A, rng.random(2000) / 2000, 0.1)
    x = 400.0 * rng.standard_normal(10)  # max(Ax) in the hundreds: e^{Ax} overflows unshifted
    s = rng.standard_normal(10)
    on, off = evaluate(P, x, s, True, monkeypatch), evaluate(P, x, s, False, monkeypatch)
    for key in ("loss", "grad", "f", "hessp", "hess"):
        np.testing.assert_allclose(on[key], off[key], rtol=1e-10, atol=1e-300, err_msg=key)


def test_the_compiled_state_sums_like_numpy(monkeypatch):
    """α̃ within a few ε of the exactly rounded sum (math.fsum) at n = 3·10⁵, and <c, f>, ‖f‖² those of
    the state's own f and c to a dot product's rounding.

    One running sum over all rows in the compiled loop (as before) was off by about 600 ε at n = 10⁵,
    and Newton stalled short of tol = 1e-14 (the next test)."""
    monkeypatch.setattr(_kernels, "ENABLED", True)
    n, eps = 300_000, np.finfo(float).eps
    rng = np.random.default_rng(8)
    A = sp.random_array((n, 4), density=0.5, format="csc", rng=rng)
    b = rng.random(n)
    b /= b.sum()
    P = Problem(A, b)
    x = rng.standard_normal(4)
    z = A @ x
    m = max(0.0, z.max())
    u = np.exp(z - m) + np.exp(-m) * z  # each entry within an ulp or two of the kernel's
    st = P._at(x)
    assert abs(st.alpha_scaled - math.fsum(u)) <= 8 * eps * math.fsum(np.abs(u))
    f, c = st.f.copy(), st.c.copy()
    assert abs(st.ff - math.fsum(f * f)) <= 32 * eps * st.ff
    assert abs(st.cf - math.fsum(c * f)) <= 32 * eps * math.fsum(np.abs(c * f))
    assert abs(st.cc - math.fsum(c * c)) <= 32 * eps * st.cc


def test_newton_reaches_the_same_tolerance_in_the_same_iterations_both_ways(monkeypatch):
    P = softres.random_problem(100_000, 30, seed=0, density=0.03, w=5.0)
    its = []
    for compiled in (False, True):
        monkeypatch.setattr(_kernels, "ENABLED", compiled)
        Q = Problem(P.A, P.b, P.w)
        res = softres.minimize(Q, np.zeros(P.d), method="newton", tol=1e-14)
        assert res.success, res.message
        its.append(res.nit)
    assert its[1] <= its[0] + 1, its


def test_domain_error_is_raised_both_ways(monkeypatch):
    # u = e^z + z summed over rows with very negative z: α < 0 (outside the paper's domain)
    A = sp.csc_array(np.array([[1.0], [1.0], [1.0]]))
    alphas = []
    for compiled in (True, False):
        monkeypatch.setattr(_kernels, "ENABLED", compiled)
        P = Problem(A, np.zeros(3))
        with pytest.raises(DomainError) as info:
            P.grad(np.array([-5.0]))
        alphas.append(info.value.alpha)
        assert not P.in_domain(np.array([-5.0])) and P.in_domain(np.array([0.0]))
    assert alphas[0] == pytest.approx(alphas[1], rel=1e-14)
    assert alphas[1] == pytest.approx(3 * (np.exp(-5.0) - 5.0), rel=1e-14)  # independent: by hand


def test_regulariser_overflow_is_reported_both_ways(monkeypatch):
    A = sp.csc_array(np.eye(4))
    for compiled in (True, False):
        monkeypatch.setattr(_kernels, "ENABLED", compiled)
        P = Problem(A, np.full(4, 0.25), 1e154)
        with pytest.raises(ValueError, match="overflows"):
            P.grad(np.full(4, 300.0))  # w² Ax = 1e308 · 300 overflows


def test_threads_sharing_a_problem_get_the_sequential_values():
    P = softres.random_problem(20_000, 50, seed=6, density=0.02, w=1.0)
    rng = np.random.default_rng(7)
    points = [P.x_true + 0.1 * rng.standard_normal(50) for _ in range(8)]
    expected = [(P.loss(x), P.grad(x)) for x in points]
    results: dict = {}

    def work(k: int) -> None:
        for _ in range(5):
            for i in range(k, k + len(points)):
                j = i % len(points)
                results[(k, j)] = (P.loss(points[j]), P.grad(points[j]))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (_, j), (loss, grad) in results.items():
        assert loss == expected[j][0]
        np.testing.assert_array_equal(grad, expected[j][1])


def test_a_numba_that_fails_to_import_falls_back_to_numpy(monkeypatch):
    P = softres.random_problem(500, 10, seed=8, density=0.05, w=1.0)
    x = P.x_true
    monkeypatch.setattr(_kernels, "ENABLED", False)
    expected = Problem(P.A, P.b, P.w).grad(x)

    def broken_numba():
        raise ImportError("Numba needs NumPy 2.3 or less")  # what an incompatible numba says

    monkeypatch.setattr(_kernels, "ENABLED", True)
    monkeypatch.setattr(_kernels, "kernels", broken_numba)
    np.testing.assert_array_equal(Problem(P.A, P.b, P.w).grad(x), expected)
    assert _kernels.ENABLED is False and _kernels.active(10**6) is None


def test_a_failing_chunk_of_the_one_pass_gradient_is_raised_not_dropped(K, monkeypatch):
    """The dense one pass runs its chunks of rows in threads; an error in any chunk reaches the caller."""
    import softres._linalg

    real = K.dense_exp_pass

    def failing(A, x, lo, hi, *args):
        if lo > 0:
            raise RuntimeError("chunk failed")
        return real(A, x, lo, hi, *args)

    monkeypatch.setattr(K, "dense_exp_pass", failing)
    monkeypatch.setattr(K, "threads", lambda: 2)
    monkeypatch.setattr(softres._linalg, "_EXP_PASS_CHUNK_BYTES", 8)
    P = softres.random_problem(50, 4, seed=0)
    assert P.fused_loss_and_grad
    with pytest.raises(RuntimeError, match="chunk failed"):
        P.loss_and_grad(P.x_true)
    monkeypatch.setattr(K, "dense_exp_pass", real)
    Q = Problem(sp.csr_array(P.A), P.b, P.w)
    np.testing.assert_allclose(P.grad(P.x_true), Q.grad(P.x_true), rtol=1e-10)  # no stale state after the error


@pytest.mark.parametrize("threads", [1, 3])
def test_compiled_countsketch_equals_scipys_product(K, threads, monkeypatch):
    """``S A`` for a CountSketch ``S``, row by row into the buckets (chunks of rows in threads), against scipy."""
    import softres._linalg

    monkeypatch.setattr(K, "threads", lambda: threads)
    monkeypatch.setattr(softres._linalg, "_EXP_PASS_CHUNK_BYTES", 8)
    rng = np.random.default_rng(3)
    A = rng.standard_normal((3001, 20))
    buckets, weights = rng.integers(0, 50, size=3001), rng.standard_normal(3001)
    op = softres._linalg.MatrixOperator(A)
    start = op.passes
    out = op.countsketch(buckets, weights, 50)
    assert op.passes - start == 1
    S = sp.csc_array((weights, buckets, np.arange(3002)), shape=(50, 3001))
    np.testing.assert_allclose(out, S @ A, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 3])
def test_compiled_dense_matvec_equals_numpys(K, threads, monkeypatch):
    """``A @ x`` row by row in chunks of rows (threads), against BLAS."""
    import softres._linalg

    monkeypatch.setattr(K, "threads", lambda: threads)
    monkeypatch.setattr(softres._linalg, "_EXP_PASS_CHUNK_BYTES", 8)
    rng = np.random.default_rng(4)
    A, x = rng.standard_normal((3001, 37)), rng.standard_normal(37)
    op = softres._linalg.MatrixOperator(A)
    assert op.dense_kernels() is K
    start = op.passes
    np.testing.assert_allclose(op.matvec(x), A @ x, rtol=1e-13, atol=1e-13)
    assert op.passes - start == 1


def test_sampled_curvature_estimates_the_exact_one_without_a_pass(monkeypatch):
    """``curvature(x, s, rows=…)`` after the one-pass gradient: every k-th row for the diagonal part (no pass
    counted), the rank-two part exact; within 10% of the exact curvature (5 standard deviations of a
    5000-row sample of Gaussian rows). Without ``AᵀU`` at ``x`` it is the exact value."""
    monkeypatch.setattr(_kernels, "ENABLED", True)
    P = softres.random_problem(50_000, 10, seed=9, w=1.0)
    rng = np.random.default_rng(10)
    x, s = P.x_true + 0.3 * rng.standard_normal(10), rng.standard_normal(10)
    exact = float(s @ P.hess(x) @ s)
    Q = Problem(P.A, P.b, P.w)
    assert Q.curvature(x, s, rows=5000) == pytest.approx(exact, rel=1e-10)  # no AᵀU yet: exact, one pass
    Q = Problem(P.A, P.b, P.w)
    Q.loss_and_grad(x)
    start = Q.op.passes
    estimate = Q.curvature(x, s, rows=5000)
    assert Q.op.passes == start
    assert estimate != exact and estimate == pytest.approx(exact, rel=0.1)
    assert Q.curvature(x, s) == pytest.approx(exact, rel=1e-10)
    with pytest.raises(ValueError, match="rows"):
        Q.curvature(x, s, rows=0)
