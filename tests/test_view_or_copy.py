"""`t = x[i]` is a row view of a 2-D x but an element copy of a 1-D one.

After `x[...] = ...`, NumPy's `t` changes in the first case and not in the
second.  The transformation decides by the base's rank when the program
runs, so the same function is right for both ranks, under every
transformation (it was refused before: "may share memory").
"""

import numpy as np
import pytest

import cotan
from tests.test_views import row_of_iterated_view_read_after_write, row_of_slice_read_after_write


def keep_element(x):
    t = x[1]
    x[1] = 5.0 * x[0]
    return np.sum(t * x)


def nested(x):
    r = x[1]
    e = r[0] if np.ndim(r) else r
    x[1] = x[1] * 3.0
    return np.sum(e * x) + np.sum(r * r)


def twice(x):
    t = x[0]
    x[0] = x[0] * 2.0
    u = x[0]
    x[0] = x[0] + 1.0
    return np.sum(t * u) + np.sum(x * t)


def loop_rows(m):
    s = 0.0
    for r in m.T:            # a row of m.T when m is 2-D, an element when 1-D
        m[0] = m[0] + 1.0
        s = s + np.sum(r * r)
    return s


FNS = [keep_element, nested, twice, loop_rows]
SHAPES = [(4,), (3, 2)]


def _numeric_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("f", FNS, ids=lambda f: f.__name__)
def test_value_and_gradients(f, shape):
    x = _x(shape)
    want = f(x.copy())
    np.testing.assert_allclose(cotan.jit(f)(x.copy()), want, rtol=1e-12)
    g = _numeric_grad(lambda v: f(v.copy()), x)
    np.testing.assert_allclose(cotan.grad(f)(x.copy()), g, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cotan.jit(cotan.grad(f))(x.copy()), g, rtol=1e-6, atol=1e-8)
    v = _x(shape, 1)
    _, t = cotan.jvp(f, (x.copy(),), (v,))
    np.testing.assert_allclose(t, np.sum(g * v), rtol=1e-6, atol=1e-8)
    # grad of grad: the Hessian-vector product against differences of grad
    hv = cotan.jvp(cotan.grad(f), (x.copy(),), (v,))[1]
    gf = cotan.grad(f)
    fd = (gf(x + 1e-5 * v) - gf(x - 1e-5 * v)) / 2e-5
    np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("f", FNS, ids=lambda f: f.__name__)
def test_batched(f, shape):
    xs = np.stack([_x(shape, s) for s in range(3)])
    want = np.array([f(x.copy()) for x in xs])
    np.testing.assert_allclose(cotan.vmap(f)(xs.copy()), want, rtol=1e-12)
    np.testing.assert_allclose(cotan.jit(cotan.vmap(f))(xs.copy()), want, rtol=1e-12)
    gwant = np.stack([cotan.grad(f)(x.copy()) for x in xs])
    np.testing.assert_allclose(cotan.vmap(cotan.grad(f))(xs.copy()), gwant, rtol=1e-10)


@pytest.mark.parametrize("f", [row_of_iterated_view_read_after_write, row_of_slice_read_after_write],
                         ids=lambda f: f.__name__)
def test_rows_of_views_follow_the_write(f):
    # refused before this was decided by rank; now they mean what NumPy means
    x = _x((3, 2))
    np.testing.assert_allclose(cotan.jit(f)(x.copy()), f(x.copy()), rtol=1e-12)
    np.testing.assert_allclose(cotan.vmap(f)(np.stack([x, 2 * x])),
                               [f(x.copy()), f(2 * x)], rtol=1e-12)
    np.testing.assert_allclose(cotan.grad(f)(x.copy()), _numeric_grad(lambda v: f(v.copy()), x),
                               rtol=1e-6, atol=1e-8)
