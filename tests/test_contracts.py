"""The contracts a user relies on, each tried as a hostile user would (issue "Core contracts").

Threads, mutation of the inputs, extreme scales, warm starts, callbacks, pickling, odd argument types
and the command line. Each test failed on the package before the redesign.
"""

from __future__ import annotations

import multiprocessing
import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp

import softres
from softres import sketch
from softres.solvers import METHODS, REGISTRY, minimize, options_of


# ---------------------------------------------------------------- 1. threads
def test_one_problem_from_many_threads_gives_the_sequential_values():
    P = softres.random_problem(20_000, 10, seed=1)
    rng = np.random.default_rng(2)
    points = [P.x_true + 0.3 * rng.standard_normal(P.d) for _ in range(48)]
    s = rng.standard_normal(P.d)
    expected = [(P.loss(x), P.grad(x), P.hessp(x, s)) for x in points]

    def evaluate(x):
        return P.loss(x), P.grad(x), P.hessp(x, s)

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(evaluate, points))
    for (l0, g0, h0), (l1, g1, h1) in zip(expected, got, strict=True):
        assert l1 == l0
        np.testing.assert_array_equal(g1, g0)
        np.testing.assert_array_equal(h1, h0)


def test_solvers_in_threads_match_sequential_runs():
    P = softres.random_problem(5000, 8, seed=3, w=3.0)
    x0s = [np.zeros(P.d), 0.1 * np.ones(P.d), -0.1 * np.ones(P.d), P.x_true]
    expected = [minimize(P, x0, method="newton").x for x0 in x0s]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x0: minimize(P, x0, method="newton").x, x0s))
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- 2. inputs copied and frozen
@pytest.mark.parametrize("sparse", [False, True])
def test_changing_the_callers_arrays_does_not_change_the_problem(sparse):
    rng = np.random.default_rng(4)
    A = rng.standard_normal((300, 5)) / 3
    b = np.abs(rng.standard_normal(300)) / 300
    w = np.full(300, 0.01)
    originals = (A.copy(), b.copy(), w.copy())
    A_in = sp.csr_array(A) if sparse else A
    P = softres.Problem(A_in, b, w)
    x = rng.standard_normal(5) / 3
    before = (P.loss(x), P.grad(x), P.hess(x))
    if sparse:
        A_in.data *= 2.0
    else:
        A_in *= 2.0
    b *= 3.0
    w *= 5.0
    P2 = softres.Problem(*originals)  # a fresh problem on the original values
    after = (P.loss(x + 0.0), P.grad(x + 0.0), P.hess(x + 0.0))
    y = x + 1e-3  # a new point, so nothing is served from the cache
    assert P.loss(y) == P2.loss(y)
    assert after[0] == before[0]
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[2], before[2])


def test_the_problems_arrays_are_read_only():
    P = softres.random_problem(50, 3, seed=5)
    for arr in (P.A, P.b, P.w, P.w2):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1.0


# ---------------------------------------------------------------- 3. no false convergence
def _scaled(c: float, w: float | None = None):
    base = softres.random_problem(100, 4, seed=6, w=None)
    return base, softres.Problem(c * base.A, base.b, w)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("c", "w", "start"), [(1e160, None, 0.0), (1e152, None, 1e-3), (1.0, 1e153, 0.0),
                                               (1e-200, None, 0.0)])
def test_extreme_scales_never_report_a_false_success(method, c, w, start):
    base, P = _scaled(c, w)
    x0 = np.full(P.d, start)
    res = minimize(P, x0, method=method, seed=0, maxiter=50)
    assert np.isfinite(res.x).all() and not np.isnan(res.fun)
    if res.success:
        assert res.nit >= 1, res.message
        # Checked on an independent, well-scaled copy: L(x; cA) = L(cx; A) (w = None only).
        if w is None:
            g0, g = base.grad(c * x0), base.grad(c * res.x)
            assert np.linalg.norm(g) <= 1e-6 * np.linalg.norm(g0), res.message
    else:
        assert res.status in (1, 2, 4, 5, 6) and res.message


# ---------------------------------------------------------------- 4. stopping rule and defaults
@pytest.mark.parametrize("method", METHODS)
def test_a_warm_start_at_the_optimum_converges_at_once(method):
    P = softres.random_problem(3000, 6, seed=7, w=3.0)
    xstar = minimize(P, np.zeros(P.d), method="newton", tol=1e-14).x
    res = minimize(P, xstar, method=method, seed=0)
    assert res.success and res.nit <= 1, res.message


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_every_method_succeeds_with_its_defaults_on_the_example_problems(method, kind):
    """random_problem's defaults, several seeds: the defaults of every method succeed."""
    density = 0.3 if kind == "sparse" else None
    for seed in range(3):
        P = softres.random_problem(2000, 10, seed=seed, density=density)
        res = minimize(P, np.zeros(P.d), method=method, seed=seed)
        assert res.success, (seed, res.message)
        g0 = np.linalg.norm(P.grad(np.zeros(P.d)))
        assert np.linalg.norm(P.grad(res.x)) <= 1e-10 * g0 or "rounding" in res.message


def test_default_sketch_newton_succeeds_on_twenty_seeds():
    ok = [minimize(P, np.zeros(10), method="sketch-newton", seed=s).success
          for s in range(20) for P in [softres.random_problem(2000, 10, seed=s)]]
    assert all(ok), ok


def test_absolute_tolerance_gtol():
    P = softres.random_problem(2000, 6, seed=8)
    g0 = np.linalg.norm(P.grad(np.zeros(6)))
    res = minimize(P, np.zeros(6), method="newton", tol=0.0, gtol=1e-3 * g0)
    assert res.success and "gtol" in res.message
    assert 1e-3 * g0 >= res.history["grad_norm"][-1]


# ---------------------------------------------------------------- 5. L-BFGS's first step outside the domain
def test_lbfgs_makes_progress_when_its_first_trial_leaves_the_domain():
    """α(x) > 0 only for x < 0.43 here; from x0 = −0.4 a unit step along −∇L leaves the domain."""
    P = softres.Problem(np.array([[-1.0], [-1.5], [-4.0]]), np.array([1.0, 0.0, 0.0]))
    x0 = np.array([-0.4])
    g = P.grad(x0)
    assert not P.in_domain(x0 - g / np.linalg.norm(g))  # the premise
    xstar = minimize(P, x0, method="newton").x
    res = minimize(P, x0, method="lbfgs")
    assert res.success and res.fun < P.loss(x0), res.message
    assert abs(res.x[0] - xstar[0]) <= 1e-8


# ---------------------------------------------------------------- 6. never raise on numerical failure
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("c", "w", "x0"), [(1.0, 1e153, 0.0), (1.0, 1e153, 1e-3), (1e150, 1e5, 1e-3),
                                            (1e100, 1e100, 0.0)])
def test_overflow_ends_the_run_with_a_reason_never_an_exception(method, c, w, x0):
    """Hessians or gradients that overflow float64: a result with a reason, no exception, no warning."""
    base = softres.random_problem(3000, 4, seed=9, w=None)
    P = softres.Problem(c * base.A, base.b, w)
    start = np.full(P.d, x0)
    res = minimize(P, start, method=method, seed=0, maxiter=20)
    assert np.isfinite(res.x).all() and res.message
    if res.success:  # then the gradient really is small
        assert res.nit >= 1
        g0, g = P.grad(start), P.grad(res.x)
        scale = np.abs(g0).max()  # norms of g / scale: no overflow in the check itself
        assert np.linalg.norm(g / scale) <= 1e-10 * np.linalg.norm(g0 / scale) or "rounding" in res.message


# ---------------------------------------------------------------- 7. pickling
def test_exceptions_and_problems_round_trip_through_pickle():
    errors = [softres.DomainError(-2.5), softres.DomainError(-1.0, "custom message"),
              sketch.NonPositiveDiagonalError(3, -0.5, 10)]
    for err in errors:
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)
    P = softres.random_problem(100, 3, seed=10)
    P.loss(P.x_true)  # a cached state must not break pickling
    Q = pickle.loads(pickle.dumps(P))
    assert Q.loss(P.x_true) == P.loss(P.x_true)


def _loss_at_zero(P):
    return P.loss(np.zeros(P.d))


def test_a_problem_works_in_a_process_pool():
    """Pickled to fresh interpreters ("spawn", the default on macOS and Windows; forking this process
    would also copy the threads of anything imported before, such as JAX in tests/test_autodiff.py)."""
    P = softres.random_problem(100, 3, seed=11)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert list(pool.map(_loss_at_zero, [P, P])) == [_loss_at_zero(P)] * 2


# ---------------------------------------------------------------- 8. one validation layer
def test_numpy_scalars_are_accepted_everywhere():
    P = softres.Problem(np.ones((4, 2)), np.full(4, 0.25), np.array(0.1))
    assert P.w[0] == pytest.approx(0.1)
    res = minimize(P, np.zeros(2), method="newton-cg", tol=np.float32(1e-6), cg_maxiter=np.int64(10),
                   maxiter=np.int64(20), eps0=np.float64(0.2), seed=np.int64(1))
    assert res.status in (0, 1)
    assert sketch.sample_size(np.int64(10), np.float32(0.5), np.float64(0.1)) > 0


@pytest.mark.parametrize(("kwargs", "exc", "pattern"), [
    (dict(method="sketch-newton", C=np.inf), ValueError, "C must be a finite number"),
    (dict(method="sketch-newton", eps0="0.1"), TypeError, "eps0 must be a real number"),
    (dict(method="sketch-newton", nonpositive="stop"), ValueError, "nonpositive must be one of 'raise', 'exact'"),
    (dict(method="newton", tol="1e-8"), TypeError, "tol must be a real number"),
    (dict(method="newton", maxiter=2.5), TypeError, "maxiter must be an integer"),
    (dict(method="newton", maxiter=True), TypeError, "maxiter must be an integer"),
    (dict(method="newton", gtol=-1.0), ValueError, "gtol must be >= 0"),
    (dict(method="lbfgs", memory=0), ValueError, "memory must be an integer >= 1"),
    (dict(method="newton", seed="a"), TypeError, "seed must be"),
])
def test_bad_solver_arguments_name_themselves(kwargs, exc, pattern):
    P = softres.random_problem(50, 3, seed=0)
    with pytest.raises(exc, match=pattern):
        minimize(P, np.zeros(3), **kwargs)


def test_the_cache_is_consulted_after_validation():
    P = softres.random_problem(50, 3, seed=0)
    x = P.x_true.copy()
    P.loss(x)
    with pytest.raises(TypeError, match="x must hold real numbers"):
        P.loss(x.astype(complex))
    with pytest.raises(ValueError, match="x must be a 1-D array of length 3"):
        P.grad(x[:2])


# ---------------------------------------------------------------- 9. callbacks
def test_callback_stopiteration_ends_the_run_cleanly():
    P = softres.random_problem(2000, 6, seed=12)
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result)
        if len(seen) == 2:
            raise StopIteration

    res = minimize(P, np.zeros(6), method="newton", callback=callback)
    assert res.status == 99 and not res.success and res.nit == 2
    assert "callback" in res.message
    assert all({"x", "fun"} <= set(r) for r in seen)
    np.testing.assert_array_equal(seen[-1].x, res.x)
    assert seen[-1].fun == res.fun


def test_callback_of_x_still_works():
    P = softres.random_problem(2000, 6, seed=12)
    xs = []
    res = minimize(P, np.zeros(6), method="gd", maxiter=5, callback=xs.append)
    assert len(xs) == res.nit and all(isinstance(x, np.ndarray) and x.shape == (6,) for x in xs)


# ---------------------------------------------------------------- 10. the sketch and random_problem
def test_sketch_rejects_nonsense_and_drops_rows_that_contribute_nothing():
    with pytest.raises(ValueError, match="C must be a finite number"):
        sketch.sample_size(5, 0.5, 0.1, C=np.inf)
    with pytest.raises(ValueError, match="d must be an integer >= 1"):
        sketch.sample_size(0, 0.5, 0.1)
    rng = np.random.default_rng(13)
    A = rng.standard_normal((4000, 3))
    A[:5] = 0.0
    D = np.ones(4000)
    D[:5] = -1.0  # rows of zeros with a negative weight: nothing to keep
    D[5] = -1.0
    Dt = sketch.sparsify_diagonal(A, D, eps0=0.5, delta=0.1, rng=0, nonpositive="exact")
    assert not set(range(5)) & set(Dt.rows.tolist()) and 5 in Dt.rows


@pytest.mark.parametrize(("kwargs", "exc", "pattern"), [
    (dict(n=0, d=3), ValueError, "n must be an integer >= 1"),
    (dict(n=10, d=2.0), TypeError, "d must be an integer"),
    (dict(n=10, d=3, col_range=np.inf), ValueError, "col_range must be a finite number"),
    (dict(n=10, d=3, col_range=0.5), ValueError, "col_range must be >= 1"),
    (dict(n=10, d=3, density=0.0), ValueError, "density must be in"),
    (dict(n=10, d=3, noise=-1.0), ValueError, "noise must be >= 0"),
    (dict(n=10, d=3, w=np.nan), ValueError, "w must be a finite number"),
])
def test_random_problem_names_the_bad_argument(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        softres.random_problem(**kwargs)


# ---------------------------------------------------------------- 11. command line
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "softres", *args], capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_line_with_status_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for args in (["figures", "problem-unit", "--out", str(blocker / "sub")],
                 ["figures", "problem-unit", "--chapter", "psd", "--out", str(tmp_path)]):
        proc = _cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) <= 2  # argparse: usage line + error line


# ---------------------------------------------------------------- the registry
def test_methods_come_from_the_registry_with_options_from_signatures():
    assert tuple(REGISTRY) == METHODS
    assert set(options_of("sketch-newton")) == {"eps0", "delta", "C", "nonpositive", "score_reuse", "sampling"}
    assert options_of("newton") == {} and options_of("gd") == {}
    assert options_of("lbfgs") == {"memory": 20}


@pytest.mark.parametrize("method", METHODS)
def test_results_report_scipy_counters_and_passes_over_A(method):
    P = softres.random_problem(2000, 6, seed=14)
    start = P.op.passes
    res = minimize(P, np.zeros(6), method=method, seed=0)
    assert res.passes == P.op.passes - start > 0
    assert res.history["passes"][-1] <= res.passes
    assert res.nfev >= res.nit and res.njev == res.nit + 1
    assert res.method == method
    if method != "gd" and method != "lbfgs":
        assert res.nhev >= 1


@pytest.mark.parametrize("method", METHODS)
def test_runs_are_reproducible_from_the_seed(method):
    """Same seed, same iterates; a method that is not randomised does not depend on the seed at all."""
    P = softres.random_problem(3000, 6, seed=15)
    a, b = (minimize(P, np.zeros(6), method=method, seed=5, maxiter=5) for _ in range(2))
    np.testing.assert_array_equal(a.x, b.x)
    c = minimize(P, np.zeros(6), method=method, seed=6, maxiter=5)
    if not REGISTRY[method].randomised:
        np.testing.assert_array_equal(a.x, c.x)


@pytest.mark.parametrize("method", METHODS)
def test_history_records_step_lengths_shifts_and_rows_kept(method):
    P = softres.random_problem(3000, 6, seed=16)
    res = minimize(P, np.zeros(6), method=method, seed=0)
    h = res.history
    assert all(len(h[k]) == res.nit + 1 for k in ("t", "shift", "exact_rows", "step"))
    t = np.array(h["t"][1:])
    assert np.all(np.isin(t, 0.5 ** np.arange(41)))  # backtracking from t = 1 by halving
    assert np.all(np.array(h["shift"]) >= 0) and np.all(np.array(h["exact_rows"]) >= 0)
    if REGISTRY[method].curvature and method != "sketch-lbfgs":
        assert t[-1] == 1.0  # Newton-type steps are full steps near x*
