"""A `for` whose body is dead (or empty) still leaves its target behind:
the last trip's value, or the old value after zero trips (Python's rule)."""

import numpy as np
import pytest

import cotan


def dead_body(m):
    i = -1
    for i in range(3):
        t = m * 2.0  # noqa: F841  (dead: the loop only matters for i)
    return np.sum(m) + i


def empty_body(m, n):
    i = -1
    for i in range(1, n, 2):
        pass
    return np.sum(m) * i


def only_continue(m):
    for i in range(4):
        continue
    return np.sum(m) + i


@pytest.mark.parametrize("fn,args", [
    (dead_body, (np.ones(2),)),
    (empty_body, (np.ones(2), 6)),
    (empty_body, (np.ones(2), 1)),     # zero trips: i keeps -1
    (only_continue, (np.ones(3),)),
])
def test_target_of_a_dead_loop(fn, args):
    want = fn(*args)
    assert cotan.normalize(fn)(*args) == pytest.approx(want)
    static = tuple(k for k, a in enumerate(args) if isinstance(a, int))
    assert cotan.jit(fn, static_argnums=static)(*args) == pytest.approx(want)
    g = cotan.grad(fn)(*args)
    e = 1e-6
    m = args[0]
    fd = [(fn(m + e * d, *args[1:]) - fn(m - e * d, *args[1:])) / (2 * e) for d in np.eye(m.size)]
    np.testing.assert_allclose(g, fd, rtol=1e-6)
