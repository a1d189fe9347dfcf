"""Tuple and list `+` and `*` mean what they mean in Python.

`(x,) + (y,)`, `x.shape + (1,)`, `[x] * 3`, `lst + [y]` concatenate and
repeat under every transformation (normalization knows which names hold
tuples and lists and emits `seq_concat` / `seq_repeat`); `len()` of one of
known length is a constant, so branches on it fold as Python decides them;
a list display operand of arithmetic with an array is an array (NumPy),
checked at run time against Python's reading.  References: the plain
Python function, central finite differences, a Python loop over the batch.
"""

import numpy as np
import pytest

import cotan
from cotan.errors import TransformError

X = np.array([0.3, -0.5, 1.2])
Y = np.array([1.1, 0.4, -0.7])


def fd_grad(f, args, argnum=0, eps=1e-6):
    x = np.asarray(args[argnum], dtype=float)
    out = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        lo = list(args)
        hi = list(args)
        lo[argnum] = x - e
        hi[argnum] = x + e
        out[idx] = (f(*hi) - f(*lo)) / (2 * eps)
    return out


# -- programs: scalar-valued, each reads the concatenated / repeated container ------

def tuple_concat(x, y):
    t = (x,) + (y,)
    return np.sum(t[0] * t[1] ** 2)


def shape_concat(x, y):
    return np.sum(np.reshape(x, x.shape + (1,)) * y[:, None] ** 2)


def list_repeat(x, y):
    zs = [x * y] * 3
    return np.sum(zs[0] * zs[1] * np.sin(zs[2]))


def list_grow(x, y):
    lst = [x]
    lst = lst + [y]
    lst += [x * y]
    return np.sum(np.sin(lst[0]) * lst[1]) + np.sum(lst[2] ** 2)


def tuple_in_loop(x, y):
    out = ()
    for i in range(3):
        out = out + (x[i] * y,)
    return np.sum(out[2] * out[0]) + np.sum(out[1])


def repeated_tuple_name(x, y):
    pair = (x, y)
    four = pair * 2
    return np.sum(four[0] * four[3]) + np.sum(four[2] ** 2)


def int_times_tuple(x, y):
    three = 3 * (x,)
    return np.sum(three[0] * three[2] * y)


def helper_concat(a, b):
    return a + (b,)


def through_a_helper(x, y):
    t = helper_concat((x,), y * 2.0)
    return np.sum(t[0] * t[1])


def branch_on_length(x, y):
    out = [x * 2.0]
    out.append(y * 3.0)
    if len(out) == 1:
        return np.sum(out[0])
    return np.sum(out[0] * out[1])


PROGRAMS = [tuple_concat, shape_concat, list_repeat, list_grow, tuple_in_loop,
            repeated_tuple_name, int_times_tuple, through_a_helper, branch_on_length]


@pytest.mark.parametrize("f", PROGRAMS, ids=lambda f: f.__name__)
def test_values_match_python(f):
    want = f(X, Y)
    np.testing.assert_allclose(cotan.jit(f)(X, Y), want, rtol=1e-12)


@pytest.mark.parametrize("f", PROGRAMS, ids=lambda f: f.__name__)
def test_grad_matches_finite_differences(f):
    for argnum in (0, 1):
        got = cotan.grad(f, argnums=argnum)(X, Y)
        np.testing.assert_allclose(got, fd_grad(f, (X, Y), argnum), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("f", PROGRAMS, ids=lambda f: f.__name__)
def test_jvp_matches_finite_differences(f):
    v = np.array([0.2, -1.0, 0.5])
    _, tangent = cotan.jvp(f, (X, Y), (v, np.zeros(3)))
    want = np.dot(fd_grad(f, (X, Y), 0), v)
    np.testing.assert_allclose(tangent, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("f", PROGRAMS, ids=lambda f: f.__name__)
def test_vmap_matches_a_python_loop(f):
    xs = np.stack([X, 2 * X, X - 1])
    want = np.array([f(x, Y) for x in xs])
    np.testing.assert_allclose(cotan.vmap(f, in_axes=(0, None))(xs, Y), want, rtol=1e-12)
    ys = np.stack([Y, -Y, Y + 0.5])
    want = np.array([f(x, y) for x, y in zip(xs, ys)])
    np.testing.assert_allclose(cotan.vmap(f)(xs, ys), want, rtol=1e-12)


@pytest.mark.parametrize("f", PROGRAMS, ids=lambda f: f.__name__)
def test_vmap_of_grad_matches_a_python_loop(f):
    xs = np.stack([X, 2 * X])
    want = np.stack([cotan.grad(f)(x, Y) for x in xs])
    np.testing.assert_allclose(cotan.vmap(cotan.grad(f), in_axes=(0, None))(xs, Y), want,
                               rtol=1e-10)


JIT_GRAD = [tuple_concat, shape_concat, list_repeat, list_grow, repeated_tuple_name,
            int_times_tuple, through_a_helper, branch_on_length]


@pytest.mark.parametrize("f", JIT_GRAD, ids=lambda f: f.__name__)
def test_jit_of_grad_matches_eager_grad(f):
    np.testing.assert_allclose(cotan.jit(cotan.grad(f))(X, Y), cotan.grad(f)(X, Y),
                               rtol=1e-12)


def test_grad_of_grad_through_a_concatenation():
    def f(x):
        t = (x,) + (np.sin(x),)
        return np.sum(t[0] * t[1])
    h = cotan.jacfwd(cotan.grad(f))(X)
    want = np.stack([fd_grad(lambda x: cotan.grad(f)(x)[i], (X,)) for i in range(3)])
    np.testing.assert_allclose(h, want, rtol=1e-6, atol=1e-8)


def test_repetition_by_a_count_known_at_run_time():
    def f(x, n):
        zs = (x,) * n
        return np.sum(zs[-1] * zs[0]) * len(zs)
    # eagerly any count works; compiled code needs it before it runs
    with pytest.raises(TransformError, match="repetition count"):
        cotan.jit(f)(X, 3)
    np.testing.assert_allclose(cotan.jvp(f, (X, 3), (np.ones(3), 0))[0], f(X, 3))
    np.testing.assert_allclose(cotan.grad(f)(X, 3), fd_grad(lambda x: f(x, 3), (X,)),
                               rtol=1e-6)


def test_reproducer_returning_an_entry_or_the_tuple():
    def two(x):
        out = [x * 2.0]
        out.append(x * 3.0)
        if len(out) == 1:
            return out[0]
        return tuple(out)
    got = cotan.grad(lambda x: np.sum(two(x)[1]))(np.ones(3))
    np.testing.assert_allclose(got, [3.0, 3.0, 3.0])
    np.testing.assert_allclose(cotan.jit(cotan.grad(lambda x: np.sum(two(x)[1])))(np.ones(3)),
                               [3.0, 3.0, 3.0])


def test_tuple_of_a_list_of_different_shapes_under_grad():
    # the adjoint of tuple(list) is a list, not one stacked array
    def f(x):
        parts = [x, x[:2] * 2.0]
        t = tuple(parts)
        return np.sum(t[0] ** 2) + np.sum(t[1])
    np.testing.assert_allclose(cotan.grad(f)(X), fd_grad(f, (X,)), rtol=1e-6)


# -- a list display as an operand of arithmetic: NumPy's array -------------------------

def test_list_display_operand_is_an_array():
    def f(x):
        return x + [1.0, 2.0, 3.0]

    def g(x):
        return np.sum((x - [1.0, 0.0, 2.0]) * [2.0, 3.0, 4.0])
    want = X + np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(f(X), want)
    np.testing.assert_allclose(cotan.jit(f)(X), want)
    np.testing.assert_allclose(cotan.vmap(f)(np.stack([X, Y])), np.stack([want, Y + [1., 2., 3.]]))
    np.testing.assert_allclose(cotan.grad(g)(X), [2.0, 3.0, 4.0])
    np.testing.assert_allclose(cotan.jit(cotan.grad(g))(X), [2.0, 3.0, 4.0])


def test_list_display_with_a_list_argument_is_refused_not_computed_elementwise():
    # the other operand is a list only at run time: Python would concatenate
    def f(lst):
        return lst + [1.0]
    with pytest.raises(TransformError, match="list display"):
        cotan.jit(f)([np.float64(2.0)])
    with pytest.raises(TransformError, match="list display"):
        cotan.vmap(f)([np.ones(2)])


def test_tuple_concatenation_with_an_array_is_refused():
    def f(x):
        return x + (1.0, 2.0, 3.0)
    with pytest.raises(TransformError, match="concatenation"):
        cotan.jit(f)(X)


def test_mixed_tuple_and_list_is_an_error_like_pythons():
    def f(x):
        t = (x,) + [x]
        return t[0]
    with pytest.raises(TransformError, match="can only concatenate tuple"):
        cotan.grad(lambda x: np.sum(f(x)))(X)


def test_repetition_count_differing_per_lane_is_refused():
    def f(x, n):
        return np.sum((x,) * n)
    with pytest.raises(cotan.errors.CotanError):
        cotan.vmap(f)(np.stack([X, X]), np.array([1, 2]))


def _concat_args(a, b):
    return np.sum((a + b)[1])


def _concat_converted(a, b):
    return np.sum((tuple(a) + tuple(b))[1])


def test_sequence_arguments_are_refused_with_the_way_out_and_the_way_out_works():
    # tuples passed in as arguments of the transformed function: their kind
    # is not known when it is transformed
    with pytest.raises(TransformError, match=r"tuple\(a\) \+ tuple\(b\)"):
        cotan.grad(_concat_args)((X,), (2.0 * X,))
    got = cotan.grad(_concat_converted)((X,), (2.0 * X,))
    np.testing.assert_allclose(got[0], np.zeros(3))
    # inlined, a helper's parameters are the caller's tuples: known
    np.testing.assert_allclose(
        cotan.grad(lambda x: _concat_args((x,), (2.0 * x,)))(X), np.full(3, 2.0))


WEIGHTS = [2.0, 3.0, 4.0]


def test_a_global_list_next_to_an_array_is_an_array():
    def f(x):
        return np.sum((x + WEIGHTS) * WEIGHTS)
    want = np.sum((X + np.array(WEIGHTS)) * np.array(WEIGHTS))
    assert cotan.jit(f)(X) == pytest.approx(want)
    np.testing.assert_allclose(cotan.grad(f)(X), WEIGHTS)


def test_a_global_list_concatenated_with_a_list():
    def f(x):
        lst = WEIGHTS + [x]
        return np.sum(lst[3] * lst[0])
    np.testing.assert_allclose(cotan.grad(f)(X), np.full(3, 2.0))
