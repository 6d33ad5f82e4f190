"""The autodiff peer (softres.experiments.autodiff): JAX's derivatives, the harness and its table."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import softres
from softres.experiments import autodiff


def test_jax_is_not_imported_by_softres():
    code = ("import sys, softres, softres.experiments.autodiff; "
            "print(any(m.split('.')[0] in ('jax', 'jaxlib') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


jax = pytest.importorskip("jax")


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    """The harness's pauses and warm-ups between contenders (QUIET, WARM: for honest times) only slow these
    tests down."""
    monkeypatch.setattr(autodiff, "QUIET", 0.0)
    monkeypatch.setattr(autodiff, "WARM", 0.0)


# One shape (and one sparsity pattern) throughout: JAX compiles once per shape, and compiling dominates.
N, D, SPARSE = 200, 6, 0.2


def problem(density=None, **kw):
    return softres.random_problem(N, D, seed=0, density=density, w=kw.pop("w", 5.0), **kw)


def rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("density", [None, SPARSE])
def test_jax_derivatives_agree_with_softres(density):
    """JAX differentiates its own transcription of the loss: an independent check of Lemmas 4.1 and 5.2."""
    rng = np.random.default_rng(3)
    P = problem(density, col_range=10.0)
    peers = ["dense", "BCOO"] if density else ["dense"]
    for peer in peers:
        J = autodiff.jax_oracles(P, peer=peer)
        assert J.peer == peer
        for x in (P.x_true, P.x_true + 0.3 * rng.standard_normal(P.d)):
            s = rng.standard_normal(P.d)
            v, g = J.fun_and_jac(x)
            assert rel(J.fun(x), P.loss(x)) < 1e-12 and rel(v, P.loss(x)) < 1e-12
            assert rel(J.jac(x), P.grad(x)) < 1e-12 and rel(g, P.grad(x)) < 1e-12
            assert rel(J.hessp(x, s), P.hessp(x, s)) < 1e-12
            assert rel(J.hess(x), P.hess(x)) < 1e-12


def test_the_loss_is_the_problem_s_not_a_copy_of_it():
    """A different w or b changes JAX's loss: the oracles read the problem's data, not a default."""
    P = problem()
    Q = softres.Problem(P.A, P.b, 2 * P.w)
    x = P.x_true
    assert rel(autodiff.jax_oracles(Q).fun(x), Q.loss(x)) < 1e-12
    assert abs(Q.loss(x) - P.loss(x)) > 1e-6 * P.loss(x)


def test_bad_input():
    P = problem()
    with pytest.raises(ValueError, match="unit"):
        autodiff.jax_oracles(softres.Problem(P.A, P.b, P.w, unit="softmax"))
    with pytest.raises(ValueError, match="peer"):
        autodiff.jax_oracles(P, peer="csr")
    with pytest.raises(ValueError, match="sparse"):
        autodiff.jax_oracles(P, peer="BCOO")
    with pytest.raises(TypeError, match="Problem"):
        autodiff.jax_oracles(P.A)


def test_sparse_chooses_the_faster_peer():
    J = autodiff.jax_oracles(problem(SPARSE), repeat=2)
    assert set(J.peer_grad) == {"BCOO", "dense"}
    assert J.peer == min(J.peer_grad, key=J.peer_grad.get)


@pytest.mark.parametrize("method", autodiff.SCIPY)
def test_scipy_with_jax_reaches_the_optimum(method):
    """Each scipy method, given JAX's derivatives, comes within 1e-8 of x* (Newton, polished)."""
    P = problem()
    xstar = autodiff.optimum(P)
    assert np.linalg.norm(P.grad(xstar)) <= 1e-6 * np.linalg.norm(P.grad(np.zeros(P.d)))
    hit = autodiff.run_scipy(P, autodiff.jax_oracles(P), xstar, method)
    assert hit is not None and hit["seconds"] > 0 and hit["iterations"] >= 1 and hit["passes"] is None


def test_softres_run_counts_passes():
    P = problem()
    hit = autodiff.run_softres(P, autodiff.optimum(P), "newton", {})
    assert hit is not None and hit["passes"] >= hit["iterations"] >= 1  # every iteration reads A at least once


def test_clock_stops_at_the_budget():
    clock = autodiff.Clock(np.zeros(2), budget=0.0)
    with pytest.raises(StopIteration):
        clock(np.ones(2))
    assert clock.hit is None
    clock = autodiff.Clock(np.zeros(2))
    with pytest.raises(StopIteration):
        clock(np.full(2, 1e-10))
    assert clock.hit["iterations"] == 1


def test_a_stopped_scipy_side_bounds_the_speedup(monkeypatch):
    """When every scipy+JAX run is stopped by the budget, the earliest stop over softres' best is a lower bound."""
    def never(P, J, xstar, method, budget=np.inf, clock=None):
        clock.stopped = 0.5 + autodiff.SCIPY.index(method)
        return None

    monkeypatch.setattr(autodiff, "run_scipy", never)
    (r,) = autodiff.grid(sizes=(N,), col_ranges=(1.0,), densities=(None,), d=D, repeat=1)
    assert r["best scipy+JAX"] is None and r["speedup is a lower bound"]
    assert r["speedup"] == pytest.approx(0.5 / r["best softres seconds"])
    assert r["words"] == f"over {r['speedup']:.1f}x faster"
    assert r["target met"] is (True if r["speedup"] >= r["target"] else None)


def test_speed_words():
    from softres.experiments._common import speed_words

    assert speed_words(2.0, 1.0) == "2.0x faster"
    assert speed_words(1.0, 2.0) == "2.0x slower"
    assert speed_words(np.inf, 1.0, "scipy+JAX") == "scipy+JAX did not reach x*"
    assert speed_words(1.0, np.inf) == "softres did not reach x*"


def test_grid_rows_and_table():
    rows = autodiff.grid(sizes=(N,), col_ranges=(1.0, 30.0), densities=(None, SPARSE), d=D, repeat=1)
    assert len(rows) == 4
    methods = [label for label, _, _ in autodiff.softres_methods()] + list(autodiff.SCIPY)
    for r in rows:
        assert {r["A"], r["peer"]} <= {"dense", "sparse", "BCOO"}
        assert [x["method"] for x in r["runs"]] == methods
        for key in ("grad ratio", "hessp ratio", "hess ratio", "best softres seconds", "best scipy+JAX seconds",
                    "speedup", "jax_setup_seconds"):
            assert np.isfinite(r[key]) and r[key] > 0, key
        assert r["best softres"] in methods and r["best scipy+JAX"] in autodiff.SCIPY
        assert r["best softres passes"] >= r["best softres iterations"] >= 1
        assert np.isfinite(r["one pass seconds"]) and r["one pass seconds"] > 0
        assert r["passes floor seconds"] == pytest.approx(r["best softres passes"] * r["one pass seconds"])
        assert r["softres / passes floor"] == pytest.approx(r["best softres seconds"] / r["passes floor seconds"])
        assert r["scipy+JAX / passes floor"] == pytest.approx(r["speedup"] * r["softres / passes floor"])
        assert not r["speedup is a lower bound"]
        assert r["speedup"] == pytest.approx(r["best scipy+JAX seconds"] / r["best softres seconds"])
        assert r["words"].endswith("faster" if r["speedup"] >= 1 else "slower")
        assert r["target met"] == (r["speedup"] >= r["target"])
        assert all(x["stopped"] is None for x in r["runs"] if np.isfinite(x["seconds"]))
        if "auto" in softres.solvers.METHODS:
            assert r["auto / best softres"] >= 1.0
        else:
            assert r["auto seconds"] is None
    text = autodiff.table(rows).data
    assert text.count("\n") == len(autodiff.table_rows(rows)[0]) - 3 + 1  # one line per quantity, plus the rule
    assert rows[0]["best softres"] in text and rows[0]["words"] in text
    assert f"sparse {SPARSE:.0%}" in text
    assert f"{rows[0]['softres / passes floor']:.2f}" in text


@pytest.mark.parametrize("method", ["lbfgs", "newton"])
def test_breakdown_replays_the_solve(method):
    """The breakdown's solve is the grid's (same passes and iterations until x*), and its replayed evaluations
    cost more than their products alone (here, N = 200 rows, the products are a small part of them)."""
    P = problem()
    xstar = autodiff.optimum(P)
    hit = autodiff.run_softres(P, xstar, method, {})
    b = autodiff.breakdown(P, xstar, method, repeat=3)
    assert (b["passes"], b["iterations"]) == (hit["passes"], hit["iterations"])
    assert b["replayed exactly"]
    assert 0 < b["products"] < b["evaluations"] and b["evaluation work"] > 0
