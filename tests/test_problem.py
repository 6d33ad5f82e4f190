"""softres.Problem against independent derivatives (complex step, hyper-dual numbers, mpmath)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import softres
from softres import DomainError, Problem
from softres.reference import (
    complex_step_jacobian,
    hyperdual_hessian,
    mp_derivatives,
    naive_loss,
    naive_parts,
)

RTOL = 1e-8


def close(ours, ref, rtol=RTOL, floor=1e-6):
    """Relative error in the max norm; ``floor`` is the scale used when the reference is ~0.

    An exactly-zero true value (e.g. every derivative of f when n = 1, where f ≡ 1) is only known
    to the rounding error of the terms that cancel, so the tests pass the size of those terms.
    """
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape
    scale = max(float(np.abs(ref).max(initial=0.0)), floor)
    err = float(np.abs(ours - ref).max(initial=0.0)) / scale
    assert err <= rtol, f"relative error {err:.3e} > {rtol:.0e}"


def make(n, d, seed, *, x_scale=1.0, w_kind="vector", sparse=False):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    if sparse:
        A[rng.random((n, d)) < 0.5] = 0.0
    b = rng.random(n) / n
    w = {"none": None, "scalar": 0.7, "vector": rng.random(n)}[w_kind]
    x = x_scale * rng.standard_normal(d) / np.sqrt(d)
    return A, b, w, x


problems = st.fixed_dictionaries({
    "n": st.integers(1, 9),
    "d": st.integers(1, 4),
    "seed": st.integers(0, 2**32 - 1),
    "x_scale": st.sampled_from([0.1, 0.5, 1.0, 2.0]),
    "w_kind": st.sampled_from(["none", "scalar", "vector"]),
})


def build(spec, sparse=False):
    A, b, w, x = make(**spec, sparse=sparse)
    wv = np.zeros(len(b)) if w is None else np.broadcast_to(w, b.shape).astype(float)
    P = Problem(sp.csr_array(A) if sparse else A, b, w)
    assume(P.in_domain(x))
    # Keep away from the pole alpha = 0, where relative accuracy is lost by any method.
    assume(abs(P.alpha(x)) > 1e-3 * np.abs(P.u(x)).sum())
    return P, A, b, wv, x


def term_scale(A, x):
    """Size of the terms that cancel in B(x) and the Hessian, from the naive definitions."""
    z = A @ x
    v_over_alpha = (np.exp(z) + 1).max() / abs((np.exp(z) + z).sum())
    return 1e-6 * (1 + v_over_alpha) ** 2 * (1 + np.abs(A).max()) ** 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(problems, st.booleans())
def test_grad_hess_hessp_match_independent_derivatives(spec, sparse):
    P, A, b, w, x = build(spec, sparse)
    fun = lambda t: naive_loss(A, b, w, t)  # noqa: E731
    close(P.loss(x), naive_loss(A, b, w, x))
    close(P.grad(x), complex_step_jacobian(fun, x))
    H_ref = hyperdual_hessian(fun, x)
    close(P.hess(x), H_ref, floor=term_scale(A, x))
    s = np.random.default_rng(spec["seed"]).standard_normal(P.d)
    close(P.hessp(x, s), H_ref @ s, floor=term_scale(A, x) * np.abs(s).sum())
    close(P.curvature(x, s), s @ H_ref @ s, floor=term_scale(A, x) * np.abs(s).sum() ** 2)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(problems)
def test_lemma_4_1_parts(spec):
    """Lemma 4.1: ∂u/∂x, ∂α/∂x, ∂f/∂x and ∂L/∂x (exp part and regulariser) one by one."""
    P, A, b, w, x = build(spec)
    close(P.jac_u(x), complex_step_jacobian(lambda t: naive_parts(A, b, w, t)[0], x))
    close(P.grad_alpha(x), complex_step_jacobian(lambda t: naive_parts(A, b, w, t)[1], x))
    # n = 1 makes f ≡ 1, so ∂f/∂x is exactly 0 and only known to the rounding of the terms that cancel.
    close(P.jac_f(x), complex_step_jacobian(lambda t: naive_parts(A, b, w, t)[2], x), floor=term_scale(A, x))
    zero = np.zeros_like(w)
    close(P.grad_exp(x), complex_step_jacobian(lambda t: naive_loss(A, b, zero, t), x))
    close(P.loss_exp(x) + P.loss_reg(x), P.loss(x), rtol=1e-14)
    close(P.c(x), P.f(x) - b, rtol=0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(problems)
def test_lemma_5_4_structure(spec):
    """B(x) is the Hessian of ½‖f(z) − b‖² in z; B_diag + B_rank reproduces it; rank ≤ 2."""
    P, A, b, w, x = build(spec)
    n = P.n
    z = A @ x
    in_z = lambda t: naive_loss(np.eye(n), b, np.zeros(n), t)  # noqa: E731
    B_ref = hyperdual_hessian(in_z, z)
    B = P.B(x)
    close(B, B_ref, floor=term_scale(np.eye(n), z))
    U, C = P.B_rank(x)
    B_rank = U @ C @ U.T
    assert np.abs(np.diag(P.B_diag(x)) + B_rank - B).max() <= 1e-12 * max(np.abs(B).max(), 1.0)
    assert np.linalg.matrix_rank(B_rank, tol=1e-10 * max(np.abs(B_rank).max(), 1e-300)) <= 2
    # The Gauss-Newton part JᵀJ (J = ∂f/∂z) is PSD.
    J = Problem(np.eye(n), b).jac_f(z)
    assert np.linalg.eigvalsh(J.T @ J).min() >= -1e-12 * max(np.abs(J).max() ** 2, 1.0)
    # ∇²L = Aᵀ(B + W²)A (Lemma 5.2 with the regulariser).
    close(P.hess(x), A.T @ (B + np.diag(w**2)) @ A, floor=term_scale(A, x))


def test_dense_and_sparse_agree():
    rng = np.random.default_rng(7)
    A = sp.random_array((400, 12), density=0.05, rng=rng, format="csr")
    b, w, x = rng.random(400) / 400, rng.random(400), rng.standard_normal(12)
    Pd, Ps = Problem(A.toarray(), b, w), Problem(A, b, w)
    assert Ps.is_sparse and not Pd.is_sparse
    s = rng.standard_normal(12)
    for name in ("loss", "loss_exp", "loss_reg", "alpha"):
        close(getattr(Ps, name)(x), getattr(Pd, name)(x), rtol=1e-13)
    for name in ("grad", "hess", "B_diag", "f", "c", "u", "v"):
        close(getattr(Ps, name)(x), getattr(Pd, name)(x), rtol=1e-13)
    close(Ps.hessp(x, s), Pd.hessp(x, s), rtol=1e-13)
    close(Ps.B_rank(x)[0], Pd.B_rank(x)[0], rtol=1e-13)


@pytest.mark.parametrize("top", [700.0, 710.0, 1000.0, 1e4])
def test_overflow_is_scaled_away(top):
    """max(Ax) beyond float64's exp range: finite values equal to a 50-digit mpmath reference."""
    rng = np.random.default_rng(int(top))
    A = rng.standard_normal((6, 3))
    b, w = rng.random(6) / 6, 0.3 * rng.random(6)
    x = rng.standard_normal(3)
    x *= top / (A @ x).max()
    P = Problem(A, b, w)
    loss, grad, hess = P.loss(x), P.grad(x), P.hess(x)
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))
    ref_loss, ref_grad, ref_hess = mp_derivatives(A, b, w, x)
    close(loss, ref_loss, rtol=1e-9)
    close(grad, ref_grad, rtol=1e-8)
    close(hess, ref_hess, rtol=1e-8)
    s = rng.standard_normal(3)
    close(P.hessp(x, s), ref_hess @ s, rtol=1e-8)
    assert P.in_domain(x)
    assert P.alpha(x) == (np.inf if top > 709 else pytest.approx(float(np.exp(A @ x).sum() + (A @ x).sum())))


def test_domain_error_outside_alpha_positive():
    A = np.ones((3, 1))
    P = Problem(A, np.zeros(3))
    x = np.array([-5.0])  # u_i = e^-5 - 5 < 0 for every i
    alpha = P.alpha(x)
    assert alpha == pytest.approx(3 * (np.exp(-5.0) - 5.0))
    assert not P.in_domain(x)
    for call in (P.f, P.c, P.loss, P.loss_exp, P.grad, P.hess, P.B_diag, P.B_rank, P.jac_f):
        with pytest.raises(DomainError, match=r"alpha\(x\) = .*-14\.9"):
            call(x)
    with pytest.raises(DomainError) as info:
        P.hessp(x, np.ones(1))
    assert info.value.alpha == pytest.approx(alpha)
    assert isinstance(info.value, ValueError)
    # The point -Ω, where u = e^z + z changes sign: alpha is zero to rounding -> outside.
    omega = 0.5671432904097838
    assert not Problem(np.ones((1, 1)), np.zeros(1)).in_domain(np.array([-omega]))
    assert Problem(np.ones((1, 1)), np.zeros(1)).in_domain(np.array([-omega + 1e-6]))


@pytest.mark.parametrize(
    ("args", "exc", "pattern"),
    [
        ((np.ones(3), np.ones(3)), ValueError, "A must be a 2-D"),
        ((np.ones((0, 2)), np.ones(0)), ValueError, "n >= 1 rows"),
        ((np.ones((2, 0)), np.ones(2)), ValueError, "d >= 1 columns"),
        ((np.ones((2, 2)), np.ones(3)), ValueError, "b must be a 1-D array of length 2"),
        ((np.ones((2, 2)), np.ones(2), np.ones(3)), ValueError, "w must be a 1-D array of length 2"),
        ((np.array([[1.0, np.nan]]), np.ones(1)), ValueError, "A must contain only finite"),
        ((np.ones((1, 1)), np.array([np.inf])), ValueError, "b must contain only finite"),
        ((np.ones((1, 1)), np.ones(1), np.inf), ValueError, "w must be a finite number"),
        ((np.ones((1, 1)), np.ones(1), "big"), TypeError, "w must be a real number"),
        ((np.array([["a"]]), np.ones(1)), TypeError, "A must hold real numbers"),
        ((np.ones((1, 1), dtype=complex), np.ones(1)), TypeError, "A must hold real numbers"),
        ((np.ones((1, 1)), np.array([True])), TypeError, "b must hold real numbers"),
        ((sp.csr_array(np.array([[np.inf]])), np.ones(1)), ValueError, "A must contain only finite"),
        (([[1.0, 2.0], [3.0]], np.ones(2)), TypeError, "A must be array-like"),
    ],
)
def test_bad_inputs_raise_named_errors(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Problem(*args)


def test_bad_points_raise_named_errors():
    P = Problem(np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="x must be a 1-D array of length 2"):
        P.loss(np.ones(3))
    with pytest.raises(ValueError, match="x must contain only finite"):
        P.grad(np.array([np.nan, 0.0]))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        P.hess(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="s must be a 1-D array of length 2"):
        P.hessp(np.zeros(2), np.ones(1))
    with pytest.raises(ValueError, match="A @ x is not finite"):
        Problem(np.full((1, 2), 1e300), np.ones(1)).loss(np.array([1e300, 1e300]))
    with pytest.raises(ValueError, match="MAX_DENSE_B"):
        Problem(np.ones((softres.problem.MAX_DENSE_B + 1, 1)), np.zeros(softres.problem.MAX_DENSE_B + 1)).B(np.zeros(1))


def test_unregularised_hessian_indefinite_regularised_psd():
    """Documented point: the Hessian of L_exp has a negative eigenvalue; w = 3 makes ∇²L PD.

    Eigenvalues come from the independent hyper-dual Hessian, not from softres.
    """
    A, b, _, x = make(10, 4, seed=2024, x_scale=1.0, w_kind="none")
    zero = np.zeros(10)
    lam_exp = np.linalg.eigvalsh(hyperdual_hessian(lambda t: naive_loss(A, b, zero, t), x))
    assert lam_exp.min() < -1e-3 * abs(lam_exp).max(), lam_exp
    w = np.full(10, 3.0)
    lam = np.linalg.eigvalsh(hyperdual_hessian(lambda t: naive_loss(A, b, w, t), x))
    assert lam.min() > 0, lam
    # softres agrees on both signs.
    assert np.linalg.eigvalsh(Problem(A, b).hess(x)).min() < 0
    assert np.linalg.eigvalsh(Problem(A, b, 3.0).hess(x)).min() > 0


def test_state_is_cached_per_point(monkeypatch):
    P = softres.random_problem(50, 4, seed=3)
    x = P.x_true.copy()
    start = P.op.passes
    P.loss(x)
    P.f(x)
    assert P.op.passes - start == 1  # one product A @ x for both
    P.grad(x)
    assert P.op.passes - start == 2  # plus A.T @ y
    y = x.copy()
    y[0] += 1e-3
    P.loss(y)
    assert P.op.passes - start == 3
    # Mutating the caller's array after a call must not return stale values.
    x_before = P.loss(x)
    x[0] += 1e-3
    assert P.loss(x) != x_before


@pytest.mark.parametrize("block_rows", [None, 1, 7, 64])
def test_gram_mixed_signs_matches_dense_product(monkeypatch, block_rows):
    import softres._linalg

    if block_rows is not None:  # several row blocks, some all-positive, some mixed, one partial
        monkeypatch.setattr(softres._linalg, "_GRAM_BLOCK_BYTES", 8 * 7 * block_rows)
    rng = np.random.default_rng(5)
    A = rng.standard_normal((300, 7))
    D = rng.standard_normal(300)
    D[:20] = 0.0
    D[100:164] = np.abs(D[100:164])
    P = Problem(A, np.zeros(300))
    close(P.gram(D), A.T @ (D[:, None] * A), rtol=1e-12)
    close(P.gram(np.abs(D)), A.T @ (np.abs(D)[:, None] * A), rtol=1e-12)
    wide = rng.standard_normal((300, 20))
    for M, layout in ((A, "csc"), (wide, "csr")):  # fewer than 16 nonzeros per row: stored by column
        for fmt in ("csr", "csc", "coo"):
            S = Problem(sp.csr_array(M).asformat(fmt), np.zeros(300))
            assert S.A.format == layout
            close(S.gram(D), M.T @ (D[:, None] * M), rtol=1e-12)


def test_safe_norm_neither_overflows_nor_underflows_nor_warns():
    """Against ``math.hypot`` (scaled, exact to rounding); numpy reports BLAS's overflow in ``v @ v`` as a
    warning, which the test configuration turns into an error."""
    import math

    from softres._linalg import safe_norm

    for v in ([1e300] * 3, [3e200, -4e200], [1e-300] * 4, [1e-170, 1e-160], [0.0, 0.0], [2.0, np.inf], [],
              [1.0, 2.0, 2.0]):
        v = np.array(v, dtype=float)
        assert safe_norm(v) == pytest.approx(math.hypot(*v), rel=1e-15)
    P = Problem(np.full((4, 2), 1e200), np.full(4, 0.25))  # ‖A‖_F overflows in the squares, not in the norm
    assert P.op.frobenius == pytest.approx(math.hypot(*[1e200] * 8), rel=1e-15)


@pytest.mark.parametrize("compiled", [False, True])
def test_dense_a_is_stored_in_the_layout_its_products_use(compiled, monkeypatch):
    """Column-major without the compiled row-wise kernels, row-major with them, whatever the caller's
    order; a private read-only copy unless already frozen in that order. Products, Gram matrix and
    CountSketch (over blocks of rows of a column-major ``A``, with a short last block) match explicit ones."""
    import softres._kernels
    import softres._linalg
    from softres._linalg import MatrixOperator

    if compiled:
        pytest.importorskip("numba")
        monkeypatch.setattr(softres._kernels, "MIN_ROWS", 0)
    monkeypatch.setattr(softres._kernels, "ENABLED", compiled)
    monkeypatch.setattr(softres._linalg, "_FUSED_BLOCK_BYTES", 3 * 8 * 7)  # blocks of 3 rows
    rng = np.random.default_rng(12)
    A = rng.standard_normal((50, 7))
    x, y, Y, D = rng.standard_normal(7), rng.standard_normal(50), rng.standard_normal((50, 2)), rng.standard_normal(50)
    buckets, weights = rng.integers(0, 6, size=50), rng.standard_normal(50)
    S = sp.csc_array((weights, buckets, np.arange(51)), shape=(6, 50))
    for theirs in (A.copy(), np.asfortranarray(A)):
        op = MatrixOperator(theirs)
        assert (op.A.flags.c_contiguous, op.A.flags.f_contiguous) == (compiled, not compiled)
        assert not op.A.flags.writeable and not np.shares_memory(op.A, theirs)
        theirs[0, 0] = 99.0  # the caller's array changes, the operator's does not
        close(op.matvec(x), A @ x, rtol=1e-13)
        close(op.rmatvec(y), A.T @ y, rtol=1e-13)
        close(op.rmatvec(Y), A.T @ Y, rtol=1e-13)
        close(op.gram(D), A.T @ (D[:, None] * A), rtol=1e-12)
        close(op.countsketch(buckets, weights, 6), S @ A, rtol=1e-12)
    frozen = np.asarray(A, order="C" if compiled else "F")
    frozen.flags.writeable = False
    assert MatrixOperator(frozen).A is frozen  # already private-looking: used as it is


def test_sparse_gram_from_pairs_of_nonzeros_matches_dense_product(monkeypatch):
    """Few nonzeros per row (empty rows too): the listed pairs; too many: scipy's product. Both exact."""
    import softres._kernels
    from softres._linalg import as_operator

    monkeypatch.setattr(softres._kernels, "ENABLED", False)  # the numpy paths, at every size
    rng = np.random.default_rng(8)
    M = sp.random_array((2000, 40), density=0.03, rng=rng, format="lil")
    M[5:9] = 0.0
    M[11] = rng.standard_normal(40)  # one full row among sparse ones
    dense = M.toarray()
    D = rng.standard_normal(2000)
    for fmt in ("csr", "csc"):
        op = as_operator(M.asformat(fmt))
        assert op._gram_pairs is not None
        close(op.gram(D), dense.T @ (D[:, None] * dense), rtol=1e-12)
    empty = as_operator(sp.csr_array((50, 4)))  # no nonzeros: no pairs, a zero (float) Gram matrix
    assert empty.gram(np.ones(50)).dtype == float and not empty.gram(np.ones(50)).any()
    full = as_operator(sp.csr_array(rng.standard_normal((300, 10))))
    assert full._gram_pairs is None  # 100 pairs a row, 10 nonzeros
    D = rng.standard_normal(300)
    close(full.gram(D), full.A.toarray().T @ (D[:, None] * full.A.toarray()), rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6), st.integers(1, 3), st.integers(0, 2**32 - 1),
    st.sampled_from([1e-300, 1e-8, 1.0, 30.0, 1e3, 1e5, 1e150, 1e300]),
    st.sampled_from([1e-200, 1.0, 1e100, 1e200]),
)
def test_no_warning_and_no_nan_on_any_accepted_input(n, d, seed, x_scale, a_scale):
    """Extreme but finite inputs: every call returns finite numbers or raises a ValueError.

    pytest runs with warnings as errors, so a numpy RuntimeWarning fails this test too.
    """
    rng = np.random.default_rng(seed)
    P = Problem(a_scale * rng.standard_normal((n, d)), rng.random(n), rng.random(n))
    x = x_scale * rng.standard_normal(d)
    Q = Problem(P.A, P.b, P.w)  # its first call is the one-pass loss and gradient
    for call in (lambda t: Q.loss_and_grad(t)[1], lambda t: Q.hess(t), P.loss, P.grad, P.hess, P.f, P.B_diag,
                 lambda t: P.hessp(t, np.ones(d)), P.alpha, P.u, P.v, P.in_domain):
        try:
            out = call(x)
        except ValueError:  # DomainError, or a named overflow of A @ x
            continue
        assert not np.any(np.isnan(out))


@pytest.fixture(params=["compiled, 1 thread", "compiled, 3 threads", "numpy"])
def one_pass(request, monkeypatch):
    """``loss_and_grad`` both ways: numpy's two passes, and the compiled one pass (numba) with every
    chunk of rows as small as one row, so that chunks and tiles of four rows each raise the shift."""
    import softres._linalg
    from softres import _kernels

    if request.param == "numpy":
        monkeypatch.setattr(_kernels, "ENABLED", False)
        return request.param
    pytest.importorskip("numba")
    monkeypatch.setattr(_kernels, "ENABLED", True)
    monkeypatch.setattr(_kernels, "MIN_ROWS", 0)
    monkeypatch.setattr(softres._linalg, "_EXP_PASS_CHUNK_BYTES", 8)
    monkeypatch.setattr(_kernels.kernels(), "threads", lambda: int(request.param.split(", ")[1][0]))
    return request.param


@pytest.mark.parametrize("seed", range(12))
def test_loss_and_grad_in_one_pass_match_independent_derivatives(one_pass, seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(1, 12)), int(rng.integers(1, 4))
    A, b, w, x = make(n, d, seed, x_scale=[0.1, 1.0, 2.0][seed % 3], w_kind=["none", "scalar", "vector"][seed % 3])
    wv = np.zeros(n) if w is None else np.broadcast_to(w, b.shape).astype(float)
    P = Problem(A, b, w)
    if not P.in_domain(x) or abs(P.alpha(x)) < 1e-3 * np.abs(P.u(x)).sum():
        pytest.skip("too close to the pole alpha = 0 for any method")
    P = Problem(A, b, w)  # no cached state: loss_and_grad makes the pass
    loss, grad = P.loss_and_grad(x)
    fun = lambda t: naive_loss(A, b, wv, t)  # noqa: E731
    close(loss, naive_loss(A, b, wv, x))
    close(grad, complex_step_jacobian(fun, x))
    H_ref = hyperdual_hessian(fun, x)
    close(P.hess(x), H_ref, floor=term_scale(A, x))  # its rank-two part from the same pass
    s = rng.standard_normal(d)
    close(P.hessp(x, s), H_ref @ s, floor=term_scale(A, x) * np.abs(s).sum())
    Q = Problem(A, b, w)
    close(Q.grad(x), grad, rtol=1e-13)  # the gradient alone at a new point: the same pass


@pytest.mark.parametrize("top", [30.0, 710.0, 1e4])
def test_loss_and_grad_in_one_pass_scale_each_block(one_pass, top):
    """Rows whose shifts differ by up to 1e4: the sums are rescaled, and agree with a 50-digit reference."""
    rng = np.random.default_rng(int(top))
    A = rng.standard_normal((9, 3))
    A[::2] *= 1e-3  # small z in every other block
    b, w = rng.random(9) / 9, 0.3 * rng.random(9)
    x = rng.standard_normal(3)
    x *= top / (A @ x).max()
    ref_loss, ref_grad, ref_hess = mp_derivatives(A, b, w, x)
    P = Problem(A, b, w)
    loss, grad = P.loss_and_grad(x)
    close(loss, ref_loss, rtol=1e-9)
    close(grad, ref_grad, rtol=1e-8)
    close(P.hess(x), ref_hess, rtol=1e-8)


@pytest.mark.parametrize("unit", ["softmax", "unified", "shortcut", "cosh", "sinh"])
def test_loss_and_grad_in_one_pass_for_every_unit(one_pass, unit):
    rng = np.random.default_rng(7)
    A = np.abs(rng.standard_normal((40, 3)))  # z > 0 at x > 0: inside every unit's domain
    b, x = rng.random(40) / 40, np.abs(rng.standard_normal(3))
    P, Q = Problem(A, b, 0.2, unit=unit), Problem(sp.csr_array(A), b, 0.2, unit=unit)  # Q: two products
    loss, grad = P.loss_and_grad(x)
    assert P.fused_loss_and_grad == (one_pass != "numpy" and unit in ("softmax", "unified"))
    assert loss == pytest.approx(Q.loss(x), rel=1e-14)
    close(grad, Q.grad(x), rtol=1e-12)
    close(P.hess(x), Q.hess(x), rtol=1e-12)
    s = rng.standard_normal(3)
    close(P.hessp(x, s), Q.hessp(x, s), rtol=1e-12)


@pytest.mark.parametrize("compiled", [True, False])
def test_loss_and_grad_passes(compiled, monkeypatch):
    """Dense A: loss and gradient in one compiled pass (two with numpy), the Hessian after it in one
    more; sparse A: two, then two."""
    from softres import _kernels

    if compiled:
        pytest.importorskip("numba")
        monkeypatch.setattr(_kernels, "MIN_ROWS", 0)
    monkeypatch.setattr(_kernels, "ENABLED", compiled)
    P = softres.random_problem(500, 6, seed=3)
    x = P.x_true
    start = P.op.passes
    loss, grad = P.loss_and_grad(x)
    assert P.fused_loss_and_grad == compiled
    assert P.op.passes - start == (1 if compiled else 2)
    start = P.op.passes
    assert P.loss(x) == loss and np.array_equal(P.grad(x), grad)
    assert P.op.passes - start == 0
    P.hess(x)
    assert P.op.passes - start == 1  # the Gram product, with AᵀU in the same pass when the gradient had not made it
    P.hessp(x, np.ones(6))
    assert P.op.passes - start == 2  # AᵀU kept: A s and Aᵀ(...) in one more
    Q = Problem(P.A, P.b, P.w)
    Q.loss(x)
    start = Q.op.passes
    Q.hessp(x, np.ones(6))
    Q.hessp(x, np.zeros(6))
    assert Q.op.passes - start == 3  # AᵀU once, then one pass per product
    grad[0] += 1.0  # a copy: the cached gradient is unchanged
    assert not np.array_equal(P.grad(x), grad)
    S = Problem(sp.csr_array(P.A), P.b, P.w)
    start = S.op.passes
    assert not S.fused_loss_and_grad
    S.loss_and_grad(x)
    S.hess(x)
    assert S.op.passes - start == 4
    with pytest.raises(ValueError, match="x is too large"):
        P.loss_and_grad(1e308 * np.ones(6))
    with pytest.raises(TypeError, match="x"):
        P.loss_and_grad(x + 0j)
