"""softres.Problem on a row-chunked Dask array: numpy's values to rounding, the same solvers, counted passes."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

import softres
from softres import sketch
from softres.solvers import METHODS, REGISTRY

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

D_COLS = 6


@pytest.fixture(scope="module")
def client():
    """A small local cluster (threads: starts in a fraction of a second), closed after the module."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as c:
        yield c


def pair(n=2000, seed=0, w=2.0, unit=None, chunk=500, dask_b=False):
    """The same problem in numpy and on Dask (``A`` cut into row blocks of ``chunk``)."""
    P = softres.random_problem(n=n, d=D_COLS, seed=seed, w=w)
    if unit is not None:
        x_true = P.x_true
        P = softres.Problem(P.A, P.b, P.w, unit=unit)
        P.x_true = x_true
    A = da.from_array(np.asarray(P.A), chunks=(chunk, D_COLS))
    b = da.from_array(np.asarray(P.b), chunks=chunk) if dask_b else P.b
    return P, softres.Problem(A, b, P.w, unit=unit)


def close(a, b, rtol=1e-12):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.max(np.abs(a - b)) <= rtol * max(np.max(np.abs(a)), 1e-300)


def test_local_cluster_is_started_when_no_client_is_current():
    """Without a current client, softres starts (once) a local cluster and closes it at exit.

    First in the module: the other tests share the fixture's client, current until the module ends.
    """
    from softres import _dask

    with pytest.raises(ValueError):
        distributed.default_client()
    c = _dask.dask_client(processes=False, n_workers=1)
    try:
        assert c is _dask.dask_client() and len(c.scheduler_info()["workers"]) == 1
        P, Q = pair(n=300, chunk=100)
        assert close(P.loss(P.x_true), Q.loss(P.x_true))
        with softres.dask_client(c.scheduler.address) as by_address:  # a scheduler given by its address
            assert by_address.scheduler.address == c.scheduler.address
            assert close(P.loss(P.x_true), softres.Problem(Q.A, P.b, P.w).loss(P.x_true))
    finally:
        _dask._close_local()


def test_dask_is_imported_only_when_used():
    code = ("import sys, numpy as np, softres; P = softres.random_problem(50, 3); "
            "softres.minimize(P, np.zeros(3), method='sketch-newton', seed=0); "
            "assert not {'dask', 'distributed'} & set(sys.modules), 'dask imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("unit", ["unified", "softmax", "cosh"])
def test_values_equal_numpy_to_rounding(client, unit):
    P, Q = pair(unit=unit, dask_b=unit == "softmax")
    assert isinstance(Q, softres.Problem) and Q.distributed
    rng = np.random.default_rng(3)
    x = P.x_true + 0.3 * rng.standard_normal(D_COLS)
    s = rng.standard_normal(D_COLS)
    assert close(P.loss(x), Q.loss(x)) and close(P.loss_exp(x), Q.loss_exp(x))
    assert close(P.alpha(x), Q.alpha(x))
    assert close(P.grad(x), Q.grad(x), 1e-10)
    assert close(P.hess(x), Q.hess(x), 1e-10)
    assert close(P.hess_exp(x), Q.hess_exp(x), 1e-10)
    assert close(P.hess_rank2(x), Q.hess_rank2(x), 1e-10)
    assert close(P.hessp(x, s), Q.hessp(x, s), 1e-10)
    assert close(P.curvature(x, s), Q.curvature(x, s), 1e-10)
    assert close(P.grad_error(x), Q.grad_error(x), 1e-10)
    assert close(P.hess_diag(x), Q.hess_diag(x).compute())
    assert close(P.f(x), Q.f(x).compute())
    assert np.array_equal(P.b, Q.b.compute()) and np.array_equal(P.w, Q.w.compute())
    assert close(P.gram(P.hess_diag(x)), Q.gram(Q.hess_diag(x)), 1e-10)


def test_unequal_blocks_and_large_shift_match_numpy(client):
    """Blocks of different sizes, each with its own shift m_k, combine to numpy's values (max(Ax) ≈ 700)."""
    P = softres.random_problem(n=1500, d=D_COLS, seed=4, w=0.5)
    A = da.from_array(np.asarray(P.A), chunks=((100, 900, 500), (D_COLS,)))
    Q = softres.Problem(A, P.b, P.w)
    z = np.asarray(P.A) @ P.x_true
    x = P.x_true * (700.0 / z.max())
    assert close(P.loss(x), Q.loss(x)) and close(P.grad(x), Q.grad(x), 1e-9) and close(P.hess(x), Q.hess(x), 1e-9)


def test_passes_per_call(client):
    """One pass over A for the state at a new x; one each for grad, hess and hessp; none for a cached value."""
    _, Q = pair()
    x, s = np.full(D_COLS, 0.1), np.ones(D_COLS)
    op = Q.op
    counts = []
    for call in (lambda: Q.loss(x), lambda: Q.loss(x), lambda: Q.grad(x), lambda: Q.grad_error(x),
                 lambda: Q.hess(x), lambda: Q.hess_rank2(x), lambda: Q.hessp(x, s), lambda: Q.hessp(x, 2 * s)):
        before = op.passes
        call()
        counts.append(op.passes - before)
    assert counts == [1, 0, 1, 0, 1, 0, 1, 1]
    before = op.passes
    Q.hessp(2 * x, s)  # a new point: its state, then one pass that also computes AᵀU
    assert op.passes - before == 2


def test_a_new_point_is_one_pass_and_one_round_trip(client, monkeypatch):
    """z = Ax, the shift, α and the sums at a new x: one pass over A, and the driver waits once."""
    _, Q = pair()
    waits = []
    gather = client.gather
    monkeypatch.setattr(client, "gather", lambda *a, **k: waits.append(1) or gather(*a, **k))
    before = Q.op.passes
    Q.loss(np.full(D_COLS, 0.1))
    assert Q.op.passes - before == 1 and len(waits) == 1


def test_blocks_stay_on_their_workers(client):
    """Every task runs on its block's worker: over a Newton solve only the per-block shifts (to the task
    that combines them) and the combined scalars (back to each block) move between workers, and the
    kept z blocks stay where they were computed."""
    P, Q = pair()
    assert len(set(Q.op.homes)) == 2
    logs = client.run(lambda dask_worker: len(dask_worker.transfer_incoming_log))
    res = softres.minimize(Q, np.zeros(D_COLS), method="newton")
    assert res.success and close(res.x, softres.minimize(P, np.zeros(D_COLS), method="newton").x, 1e-9)
    moved = client.run(lambda dask_worker: [list(entry["keys"]) for entry in dask_worker.transfer_incoming_log])
    moved = {key for addr, entries in moved.items() for keys in entries[logs[addr]:] for key in keys}
    assert moved and {key.split("-")[0] for key in moved} <= {"_part", "_k_total"}, moved
    home = dict(zip((f.key for f in Q._local.point.z), Q.op.homes, strict=True))
    assert all(set(where) == {home[key]} for key, where in client.who_has(Q._local.point.z).items())


def test_blocks_read_from_disk_and_persisted_blocks(client, tmp_path):
    """A and b read from .npy files inside the tasks (lazy blocks), or A persisted in the workers' memory:
    numpy's values either way."""
    P = softres.random_problem(n=1200, d=D_COLS, seed=2, w=1.0)
    da.to_npy_stack(tmp_path / "A", da.from_array(np.asarray(P.A), chunks=(300, D_COLS)))
    da.to_npy_stack(tmp_path / "b", da.from_array(np.asarray(P.b), chunks=300))
    A_disk = da.from_npy_stack(tmp_path / "A", mmap_mode=None)
    b_disk = da.from_npy_stack(tmp_path / "b", mmap_mode=None)
    A_mem = client.persist(da.from_array(np.asarray(P.A), chunks=(400, D_COLS)))
    x = P.x_true + 0.1
    for Q in (softres.Problem(A_disk, b_disk, P.w), softres.Problem(A_mem, P.b, P.w)):
        assert close(P.loss(x), Q.loss(x)) and close(P.grad(x), Q.grad(x), 1e-10)
        assert close(P.hess(x), Q.hess(x), 1e-10) and np.array_equal(P.b, Q.b.compute())
    assert all(isinstance(blk, distributed.Future) for blk in Q.op.blocks)


def test_loss_and_grad_is_one_pass_and_equals_numpy(client):
    """At a new x, loss and gradient from one pass (and AᵀU with them: hessp then needs one pass); numpy's
    values to rounding, with and without the regulariser, and at a point with a large shift."""
    for w in (2.0, 0.0):
        P, Q = pair(w=w)
        for x in (P.x_true + 0.1, P.x_true * (600.0 / (np.asarray(P.A) @ P.x_true).max())):
            before = Q.op.passes
            loss, g = Q.loss_and_grad(x)
            assert Q.op.passes - before == 1
            assert close(loss, P.loss(x)) and close(g, P.grad(x), 1e-10)
            before = Q.op.passes
            assert np.array_equal(Q.grad(x), g) and Q.op.passes == before
            s = np.linspace(-1.0, 1.0, D_COLS)
            assert close(Q.hessp(x, s), P.hessp(x, s), 1e-10) and Q.op.passes - before == 1


def test_z_is_kept_on_disk_when_a_is_read_from_disk(client, tmp_path):
    """A read from .npy files: the blocks of z go to the workers' local disk (memory bounded by the blocks in
    flight, not by n), each point's files are removed when the next point is evaluated, and a lazy n-vector
    taken at an earlier point still computes (from A's blocks)."""
    import os
    import time

    from softres import _dask

    P = softres.random_problem(n=1200, d=D_COLS, seed=3, w=1.0)
    da.to_npy_stack(tmp_path / "A", da.from_array(np.asarray(P.A), chunks=(300, D_COLS)))
    Q = softres.Problem(da.from_npy_stack(tmp_path / "A", mmap_mode=None), P.b, P.w)
    assert Q.op.z_on_disk and not softres.Problem(client.persist(da.from_array(np.asarray(P.A), chunks=(300, D_COLS))),
                                                   P.b, P.w).op.z_on_disk
    x, y = P.x_true + 0.1, P.x_true - 0.1
    f_x = Q.f(x)
    assert close(Q.loss(x), P.loss(x))
    paths = [h.path for h in client.gather(Q._local.point.z)]
    assert all(isinstance(h, _dask._Stored) for h in client.gather(Q._local.point.z))
    assert all(os.path.exists(p) for p in paths)
    assert close(Q.loss(y), P.loss(y)) and close(Q.grad(y), P.grad(y), 1e-10)
    client.run(lambda: None)  # the removal tasks have been sent before; give them a round trip to finish
    for _ in range(50):
        if not any(os.path.exists(p) for p in paths):
            break
        time.sleep(0.05)
    assert not any(os.path.exists(p) for p in paths)
    assert close(f_x.compute(), P.f(x))
    res, res_np = softres.minimize(Q, np.zeros(D_COLS), method="newton"), softres.minimize(P, np.zeros(D_COLS),
                                                                                            method="newton")
    assert res.success and res.nit == res_np.nit and close(res.x, res_np.x, 1e-9)


def test_passes_per_newton_iteration(client):
    """Exact Newton: 1 pass at x0 (loss and gradient), then 2 per full-step iteration (Hessian; loss and
    gradient at the new point), as numpy's for a dense A with the compiled one-pass gradient (else
    2, then 3: its loss and gradient take two passes)."""
    P, Q = pair()
    res_np = softres.minimize(P, np.zeros(D_COLS), method="newton")
    res = softres.minimize(Q, np.zeros(D_COLS), method="newton")
    assert res.success and res.nit == res_np.nit >= 2
    assert all(t == 1.0 for t in res.history["t"][1:])  # full steps: no extra line-search trials
    assert res.history["passes"][0] == 1 and np.all(np.diff(res.history["passes"]) == 2)
    k = 0 if P.fused_loss_and_grad else 1
    assert res_np.history["passes"][0] == 1 + k and np.all(np.diff(res_np.history["passes"]) == 2 + k)


def test_passes_per_algorithm1_iteration(client):
    """Algorithm 1 with sampling (s < n): 2 passes for the sketched Hessian, 3 per full-step iteration."""
    _, Q = pair(w=3.0)
    res = softres.minimize(Q, np.zeros(D_COLS), method="sketch-newton", seed=0, eps0=0.5, maxiter=5)
    assert res.nit == 5
    assert sketch.sample_size(D_COLS, 0.5, 0.05) < Q.n
    steps = np.diff(res.history["passes"])
    full = np.array(res.history["t"][1:]) == 1.0
    assert full.any() and np.all(steps[full] == 3)


@pytest.mark.parametrize("method", METHODS)
def test_every_solver_reaches_numpy_s_minimiser(client, method):
    """Deterministic methods follow numpy's iterates to rounding; randomised ones draw other rows but
    converge to the same minimiser (to the solver's tolerance)."""
    P, Q = pair(w=3.0)
    x0 = np.zeros(D_COLS)
    r_np = softres.minimize(P, x0, method=method, seed=1)
    r = softres.minimize(Q, x0, method=method, seed=1)
    assert r.success and r_np.success, (r.message, r_np.message)
    if not REGISTRY[method].randomised:
        assert r.nit == r_np.nit
        assert close(r.x, r_np.x, 1e-9) and close(r.history["loss"], r_np.history["loss"], 1e-12)
    assert close(r.x, r_np.x, 1e-5)


def test_sketch_exact_when_the_sample_reaches_n(client):
    """With s ≥ n the sketched Hessian is the exact one, as in numpy (one pass instead of the sketch's two)."""
    P, Q = pair(n=400, chunk=100)
    x = np.full(D_COLS, 0.2)
    H = sketch.SketchedHessian(Q, eps0=0.1, seed=0)
    before = Q.op.passes
    Ht = H(x)
    assert Q.op.passes - before == 2  # the state at x, then one pass
    assert close(Ht, sketch.SketchedHessian(P, eps0=0.1, seed=0)(x), 1e-10) and close(Ht, P.hess(x), 1e-10)
    assert H.last["rows"] == 400 and not H.last["fresh"]


def test_sampled_hessian_is_accurate_and_unbiased(client):
    """Per-block leverage sampling: H̃ within Lemma A.8's relative accuracy of the exact diagonal part, and
    the mean over seeds approaches it (E[D̃] = D)."""
    P, Q = pair(n=4000, w=3.0, chunk=1000)
    x = P.x_true
    D = P.hess_diag(x)
    G = P.gram(D)
    rank2 = P.hess_rank2(x)
    L = np.linalg.cholesky(G)
    errs, mean = [], np.zeros_like(G)
    trials = 8
    for seed in range(trials):
        H = sketch.SketchedHessian(Q, eps0=0.3, seed=seed)
        Gt = H(x) - rank2
        assert H.last["fresh"] and H.last["rows"] < Q.n
        E = np.linalg.solve(L, np.linalg.solve(L, Gt - G).T)
        errs.append(np.max(np.abs(np.linalg.eigvalsh((E + E.T) / 2))))
        mean += Gt / trials
    assert np.median(errs) <= 0.3
    Em = np.linalg.solve(L, np.linalg.solve(L, mean - G).T)
    assert np.max(np.abs(np.linalg.eigvalsh((Em + Em.T) / 2))) < np.median(errs)


def test_score_reuse_takes_scores_from_the_gram_of_a_in_one_pass(client):
    """score_reuse ≥ κ: scores from AᵀA (one pass, once), one pass per sketched Hessian, same accuracy."""
    P, Q = pair(n=6000, w=3.0, chunk=1500)
    x = P.x_true
    D = P.hess_diag(x)
    kappa = D.max() / D.min()
    G = P.gram(D)
    L = np.linalg.cholesky(G)
    H = sketch.SketchedHessian(Q, eps0=0.3, score_reuse=2 * kappa, seed=0)
    Q.loss(x)
    errs, passes = [], []
    for _ in range(4):
        before = Q.op.passes
        E = np.linalg.solve(L, np.linalg.solve(L, H(x) - P.hess_rank2(x) - G).T)
        passes.append(Q.op.passes - before)
        errs.append(np.max(np.abs(np.linalg.eigvalsh((E + E.T) / 2))))
        assert not H.last["fresh"] and H.last["draws"] == int(np.ceil(sketch.sample_size(D_COLS, 0.3, 0.05) * kappa))
    assert passes == [2, 1, 1, 1]  # AᵀA once, then the sampling pass only
    assert np.median(errs) <= 0.3
    res = softres.minimize(Q, np.zeros(D_COLS), method="sketch-newton", seed=0, eps0=0.5, score_reuse=1e6,
                           maxiter=5)
    full = np.array(res.history["t"][1:]) == 1.0
    assert full[1:].any() and np.all(np.diff(res.history["passes"])[1:][full[1:]] == 2)


def test_nonpositive_diagonal_raise_and_exact(client):
    """w = 0 can make B_diag + w² negative: "raise" refuses (Lemma A.8's assumption), "exact" keeps rows."""
    P, Q = pair(w=0.0)
    x = P.x_true * 3
    D = P.hess_diag(x)
    assert (D < 0).any()
    with pytest.raises(sketch.NonPositiveDiagonalError):
        sketch.SketchedHessian(Q, eps0=0.5, nonpositive="raise", seed=0)(x)
    H = sketch.SketchedHessian(Q, eps0=0.5, nonpositive="exact", seed=0)
    H(x)
    assert H.last["exact_rows"] == int(np.count_nonzero(D < 0))


def test_bad_input_and_domain(client):
    P = softres.random_problem(n=200, d=3, seed=0)
    A = da.from_array(np.asarray(P.A), chunks=(50, 3))
    with pytest.raises(ValueError, match="b must be a 1-D array of length 200"):
        softres.Problem(A, np.ones(5))
    bad = np.asarray(P.A).copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="A must contain only finite values"):
        softres.Problem(da.from_array(bad, chunks=(50, 3)), P.b)
    with pytest.raises(TypeError, match="dask array"):
        softres._validate.as_matrix(A)
    Q = softres.Problem(A, P.b, unit="shortcut")
    x = -np.asarray(P.A).sum(axis=0)  # α(x) = <Ax, 1> = −‖Aᵀ1‖² < 0 for the shortcut unit
    assert not softres.Problem(P.A, P.b, unit="shortcut").in_domain(x)
    assert not Q.in_domain(x) and Q.in_domain(-x)
    with pytest.raises(softres.DomainError):
        Q.loss(x)
    with pytest.raises(NotImplementedError, match="Dask"):
        Q.jac_f(np.zeros(3))
    with pytest.raises(NotImplementedError, match="SketchedHessian"):
        sketch.leverage_scores(A, np.ones(200), np.random.default_rng(0))
    Q.op.homes = ["inproc://gone/1"] * len(Q.op.homes)  # a worker that left: an error, not tasks waiting forever
    with pytest.raises(RuntimeError, match="left the Dask cluster"):
        Q.loss(-x)
