"""Edge cases of reverse mode that once gave a wrong number or crashed:

- derivatives through `cotan.checkpoint` beyond the first: the VJP of a
  checkpoint is itself differentiable (grad of grad, jvp of grad, vmap of
  grad), eagerly and under jit;
- second-order gradients through loops that run zero times (a value the
  loop alone binds is then never bound).

Every reference is computed independently: central differences in float64
of the function one order below (the first gradient is itself checked
against differences of the function), and, where jit supports the program,
the jitted result must agree with the eager one.
"""

import numpy as np
import pytest

import cotan

H = 1e-5


def central(fun, x, *rest):
    """d fun(x, *rest) / dx by central differences (scalar x)."""
    return (fun(x + H, *rest) - fun(x - H, *rest)) / (2 * H)


# -- checkpointed programs ---------------------------------------------------------


def _cell(x):
    return np.sin(x) * x * x


cell = cotan.checkpoint(_cell)


def through_checkpoint(x):
    return cell(x) * np.cos(x)


def _step(h, x):
    return np.tanh(h * x + 0.3 * h)


step = cotan.checkpoint(_step)


def checkpoint_in_loop(x):
    h = x
    for i in range(3):
        h = step(h, x)
    return h * h


def _outer(x):
    return cell(x) + np.exp(0.2 * x) * cell(0.5 * x)


outer = cotan.checkpoint(_outer)


def nested_checkpoint(x):
    return outer(x) * x


def _two(a, b):
    return np.sin(a * b) + a * a * b


two = cotan.checkpoint(_two)


def checkpoint_two_args(x):
    return two(x, np.cos(x)) * two(0.5, x)


CHECKPOINTED = [through_checkpoint, checkpoint_in_loop, nested_checkpoint, checkpoint_two_args]
X = 0.7


@pytest.mark.parametrize("fun", CHECKPOINTED, ids=lambda f: f.__name__)
def test_checkpoint_first_order(fun):
    np.testing.assert_allclose(cotan.grad(fun)(X), central(fun, X), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("fun", CHECKPOINTED, ids=lambda f: f.__name__)
def test_checkpoint_second_order(fun):
    g = cotan.grad(fun)
    gg = cotan.grad(g)
    np.testing.assert_allclose(gg(X), central(g, X), rtol=1e-6, atol=1e-8)


# checkpoint_in_loop and checkpoint_two_args once crashed under jit: a static
# 0-d float64 value's scalar (np.float64, a float subclass) was looked up as a
# Python float (KeyError in llvm_emit.runtime)
JIT_CHECKPOINTED = list(CHECKPOINTED)


@pytest.mark.parametrize("fun", JIT_CHECKPOINTED, ids=lambda f: f.__name__)
def test_checkpoint_second_order_jit_agrees(fun):
    gg = cotan.grad(cotan.grad(fun))
    np.testing.assert_allclose(cotan.jit(gg)(X), gg(X), rtol=1e-10)


def test_checkpoint_third_order():
    g2 = cotan.grad(cotan.grad(through_checkpoint))
    g3 = cotan.grad(g2)
    np.testing.assert_allclose(g3(X), central(g2, X), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("fun", CHECKPOINTED, ids=lambda f: f.__name__)
def test_jvp_of_grad_through_checkpoint(fun):
    g = cotan.grad(fun)
    value, tangent = cotan.jvp(g, (X,), (1.0,))
    np.testing.assert_allclose(value, g(X), rtol=1e-12)
    np.testing.assert_allclose(tangent, central(g, X), rtol=1e-6, atol=1e-8)


def test_jvp_of_checkpoint():
    value, tangent = cotan.jvp(through_checkpoint, (X,), (1.0,))
    np.testing.assert_allclose(value, through_checkpoint(X), rtol=1e-12)
    np.testing.assert_allclose(tangent, central(through_checkpoint, X), rtol=1e-7)


XS = np.array([0.7, -0.3, 1.2])


@pytest.mark.parametrize("fun", CHECKPOINTED, ids=lambda f: f.__name__)
def test_vmap_of_grad_through_checkpoint(fun):
    g = cotan.grad(fun)
    expected = np.array([central(fun, x) for x in XS])
    np.testing.assert_allclose(cotan.vmap(g)(XS), expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cotan.jit(cotan.vmap(g))(XS), cotan.vmap(g)(XS), rtol=1e-10)


def test_grad_of_vmapped_checkpoint():
    def total(xs):
        return np.sum(cotan.vmap(through_checkpoint)(xs))
    expected = np.array([central(through_checkpoint, x) for x in XS])
    np.testing.assert_allclose(cotan.grad(total)(XS), expected, rtol=1e-6, atol=1e-8)


def test_vmap_of_checkpoint_with_unbatched_argument():
    def f(x, y):
        return two(x, y)
    got = cotan.vmap(f, in_axes=(0, None))(XS, 0.4)
    np.testing.assert_allclose(got, [_two(x, 0.4) for x in XS], rtol=1e-12)


def test_checkpoint_hessian_matches_differences():
    def f(v):
        return np.sum(two(v, np.sin(v)))
    v = np.array([0.3, -0.8])
    hess = cotan.jacfwd(cotan.grad(f))(v)
    g = cotan.grad(f)
    ref = np.stack([(g(v + H * e) - g(v - H * e)) / (2 * H) for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(hess, ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cotan.jacrev(g)(v), ref, rtol=1e-6, atol=1e-8)


# -- loops that run zero times -----------------------------------------------------


def for_overwrite(x, n):
    for i in range(n):
        x = np.sin(x) * x
    return x * x


def for_loop_local(x, n):
    s = x
    for i in range(n):
        t = np.sin(s)
        s = t * s + x
    return s * x


def while_counted(x, n):
    i = 0
    while i < n:
        x = np.sin(x) * x
        i = i + 1
    return x * x


def while_converge(x, lim):
    y = x
    while y > lim:
        t = np.cos(y)
        y = y * 0.5 + t * 0.01
    return y * x


def nested_zero_inner(x, n):
    s = x
    for j in range(2):
        for i in range(n):
            t = np.sin(s)
            s = t * s
        s = s * x
    return s


LOOPS = [(for_overwrite, 0), (for_overwrite, 3), (for_loop_local, 0), (for_loop_local, 3),
         (while_counted, 0), (while_counted, 3), (while_converge, 10.0),
         (while_converge, 0.2), (nested_zero_inner, 0), (nested_zero_inner, 2)]
LOOP_IDS = [f"{f.__name__}-{n}" for f, n in LOOPS]


@pytest.mark.parametrize("fun,n", LOOPS, ids=LOOP_IDS)
def test_loop_first_order(fun, n):
    g = cotan.grad(fun)
    np.testing.assert_allclose(g(X, n), central(fun, X, n), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(cotan.jit(g)(X, n), g(X, n), rtol=1e-10)


@pytest.mark.parametrize("fun,n", LOOPS, ids=LOOP_IDS)
def test_loop_second_order(fun, n):
    g = cotan.grad(fun)
    gg = cotan.grad(g)
    np.testing.assert_allclose(gg(X, n), central(g, X, n), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cotan.jit(gg)(X, n), gg(X, n), rtol=1e-10)


def test_zero_trip_second_order_exact_values():
    # with no trip the functions are x*x, and x*x, so both second derivatives are 2
    assert cotan.grad(cotan.grad(for_overwrite))(X, 0) == 2.0
    assert cotan.grad(cotan.grad(while_counted))(X, 0) == 2.0
