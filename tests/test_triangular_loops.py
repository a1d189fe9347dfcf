"""Reverse mode through loops whose trip counts read an outer loop index
(issue 11, section 1): the corpus's triangular programs under grad,
grad of grad, jit(grad), vmap(grad) and jit(vmap(grad)), each against an
independent reference (central differences, or a Python loop of the
already checked eager gradient)."""

import numpy as np
import pytest

import cotan
from tests.programs import PROGRAMS
from tests.test_grad_programs import assert_tree_close, numerical_grad

TRI = [p for p in PROGRAMS if p.name.startswith("tri_")]
ONE_ARG = [p for p in TRI if p.argnums == (0,) and len(p.make_args(np.random.default_rng(0))) == 1]


def test_the_corpus_has_triangular_nests():
    assert len(TRI) >= 10
    assert len(ONE_ARG) >= 7


@pytest.mark.parametrize("prog", TRI, ids=[p.name for p in TRI])
def test_grad(prog):
    args = prog.make_args(np.random.default_rng(3))
    got = cotan.grad(prog.fn, argnums=prog.argnums)(*args)
    for a, g in zip(prog.argnums, got):
        assert_tree_close(g, numerical_grad(prog.fn, args, a))


@pytest.mark.parametrize("prog", TRI, ids=[p.name for p in TRI])
def test_jit_grad(prog):
    args = prog.make_args(np.random.default_rng(4))
    got = cotan.jit(cotan.grad(prog.fn, argnums=prog.argnums))(*args)
    for a, g in zip(prog.argnums, got):
        assert_tree_close(g, numerical_grad(prog.fn, args, a))


def _hvp_fd(fn, x, v, eps=1e-5):
    g = cotan.grad(fn)
    return (g(x + eps * v) - g(x - eps * v)) / (2 * eps)


@pytest.mark.parametrize("prog", ONE_ARG, ids=[p.name for p in ONE_ARG])
def test_grad_of_grad(prog):
    (x,) = prog.make_args(np.random.default_rng(5))
    v = np.random.default_rng(6).uniform(-1.0, 1.0, x.shape)
    hvp = cotan.grad(lambda y: np.sum(cotan.grad(prog.fn)(y) * v))
    np.testing.assert_allclose(hvp(x), _hvp_fd(prog.fn, x, v), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prog", ONE_ARG, ids=[p.name for p in ONE_ARG])
def test_jit_grad_of_grad(prog):
    (x,) = prog.make_args(np.random.default_rng(7))
    v = np.random.default_rng(8).uniform(-1.0, 1.0, x.shape)
    hvp = cotan.jit(cotan.grad(lambda y: np.sum(cotan.grad(prog.fn)(y) * v)))
    np.testing.assert_allclose(hvp(x), _hvp_fd(prog.fn, x, v), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prog", ONE_ARG, ids=[p.name for p in ONE_ARG])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_vmap_grad(prog, compiled):
    rng = np.random.default_rng(9)
    xs = np.stack([prog.make_args(rng)[0] for _ in range(3)])
    f = cotan.vmap(cotan.grad(prog.fn))
    if compiled:
        f = cotan.jit(f)
    want = np.stack([numerical_grad(prog.fn, (x,), 0) for x in xs])
    np.testing.assert_allclose(f(xs), want, rtol=1e-5, atol=1e-6)


# -- the issue's reproducers, and loop forms the corpus does not spell out ----

def tri(x):
    s = 0.0
    for i in range(x.shape[0]):
        for j in range(i, x.shape[0]):
            s = s + x[i] * x[j]
    return s


def nested(x):
    s = 0.0
    for i in range(3):
        for j in range(i + 1):
            s = s + x ** (i + 1) * (j + 1)
    return s


def test_issue_reproducers():
    x = np.array([0.3, -1.2, 2.0, 0.7])
    np.testing.assert_allclose(cotan.grad(tri)(x), [2.1, 0.6, 3.8, 2.5], rtol=1e-12)
    want = sum((i + 1) * 1.3 ** i * (j + 1) for i in range(3) for j in range(i + 1))
    assert cotan.grad(nested)(1.3) == pytest.approx(want, rel=1e-12)
    assert cotan.jit(cotan.grad(nested))(1.3) == pytest.approx(want, rel=1e-12)


def run_time_bounds(x, a, b, c):
    s = 0.0
    for i in range(a, b):
        for j in range(i, b + c, c):
            s = s + np.sin(x[j % x.shape[0]]) * x[i]
    return s


@pytest.mark.parametrize("bounds", [(0, 4, 1), (1, 5, 2), (2, 3, 3), (3, 3, 1)])
def test_run_time_start_stop_step(bounds):
    x = np.random.default_rng(10).uniform(-1.0, 1.0, 6)
    want = numerical_grad(lambda y: run_time_bounds(y, *bounds), (x,), 0)
    assert_tree_close(cotan.grad(run_time_bounds)(x, *bounds), want)
    jitted = cotan.jit(cotan.grad(run_time_bounds), static_argnums=(1, 2, 3))
    assert_tree_close(jitted(x, *bounds), want)


def while_triangle(x):
    s = 0.0
    i = 0
    while i < x.shape[0]:
        j = i
        while j < x.shape[0]:
            s = s + x[i] * np.tanh(x[j])
            j = j + 1
        i = i + 1
    return s


def test_while_inside_while():
    x = np.random.default_rng(11).uniform(-1.0, 1.0, 5)
    want = numerical_grad(while_triangle, (x,), 0)
    assert_tree_close(cotan.grad(while_triangle)(x), want)
    assert_tree_close(cotan.jit(cotan.grad(while_triangle))(x), want)


def zero_trip_inner(x):
    s = 0.0
    k = 0
    for j in range(3):
        for k in range(j):
            s = s + x * k
        s = s + x
    return s * k


def test_inner_loop_with_zero_trips_keeps_its_variable():
    # j == 0 runs the inner loop zero times: `k` keeps its old value
    want = numerical_grad(zero_trip_inner, (1.5,), 0)
    assert cotan.grad(zero_trip_inner)(1.5) == pytest.approx(want, rel=1e-6)
    assert cotan.jit(cotan.grad(zero_trip_inner))(1.5) == pytest.approx(want, rel=1e-6)


def read_then_reassigned(x):
    # `v` is read at the start of a trip and reassigned late in it: the
    # adjoint of the next trip's read must reach this trip's assignment
    v = x * 1.0
    s = 0.0
    for i in range(3):
        s = s + np.sum(v)
        x = x * 1.5
        v = x * 1.0
    return s


def test_carried_adjoint_read_early_and_reassigned_late():
    x = np.array([0.5, 1.5])
    np.testing.assert_allclose(cotan.grad(read_then_reassigned)(x), [4.75, 4.75], rtol=1e-12)
    np.testing.assert_allclose(cotan.jit(cotan.grad(read_then_reassigned))(x), [4.75, 4.75],
                               rtol=1e-12)


def carried_array_second_order(x):
    low = np.zeros(2)
    for j in range(2):
        d = low[0]
        low = low + np.sin(d) + x[j]
    return low[1]


def test_second_order_through_a_carried_array():
    # adjoints that come to exist only in a later pass over the loop body
    x = np.array([0.3, 0.4])
    v = np.array([1.0, 0.0])
    hvp = cotan.grad(lambda y: np.sum(cotan.grad(carried_array_second_order)(y) * v))
    np.testing.assert_allclose(hvp(x), _hvp_fd(carried_array_second_order, x, v), atol=1e-8)
