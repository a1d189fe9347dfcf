"""Specification of the llvm lowerings of einsum, inv, solve, det, slogdet
(codegen/llvm/linalg.py) and sort, argsort, take_along_axis, array
(codegen/llvm/sort.py): each against NumPy on several shapes and dtypes,
and `jit(grad(f))` against the eager gradient for programs using them."""

import numpy as np
import pytest

import cotan
from cotan.runtime.table import PRIMITIVES
from cotan.codegen.llvm.lowerings import LOWERINGS
from cotan.errors import ShapeError

NEW = ("einsum", "einsum_expand", "inv", "solve", "det", "slogdet", "sort", "argsort",
       "take_along_axis", "take_along_axis_adjoint", "array", "unstack_like")


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if np.dtype(dtype) == np.float32 else \
        dict(rtol=1e-9, atol=1e-12)


def _check(f, *args, dtype=np.float64):
    want = f(*args)
    got = cotan.jit(f)(*args)
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        pairs = list(zip(got, want))
    else:
        pairs = [(got, want)]
    for g, w in pairs:
        assert np.shape(g) == np.shape(w)
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, **_tol(dtype))


def _well_conditioned(rng, shape, dtype=np.float64):
    n = shape[-1]
    return (rng.normal(size=shape) + n * np.eye(n)).astype(dtype)


def test_new_lowerings_are_registered():
    for name in NEW:
        assert name in LOWERINGS and not PRIMITIVES[name].no_rule.get("llvm")


# -------------------------------------------------------------- linalg

SQUARE = [(1, 1), (3, 3), (5, 5), (2, 4, 4), (2, 3, 2, 2)]


@pytest.mark.parametrize("shape", SQUARE, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inv_det_slogdet_match_numpy(rng, shape, dtype):
    a = _well_conditioned(rng, shape, dtype)
    _check(lambda a: np.linalg.inv(a), a, dtype=dtype)
    _check(lambda a: np.linalg.det(a), a, dtype=dtype)
    _check(lambda a: np.linalg.slogdet(a), a, dtype=dtype)


def test_det_and_slogdet_negative_and_singular():
    a = np.array([[0.0, 2.0, 1.0], [3.0, 1.0, 0.0], [1.0, 1.0, 5.0]])   # needs pivoting
    _check(lambda a: (np.linalg.det(a), np.linalg.slogdet(a)), a)
    s = np.array([[1.0, 2.0], [2.0, 4.0]])
    got = cotan.jit(lambda a: np.linalg.det(a))(s)
    assert got == 0.0
    sign, logdet = cotan.jit(lambda a: np.linalg.slogdet(a))(s)
    assert sign == 0.0 and logdet == -np.inf


def test_det_of_an_integer_matrix_is_float():
    a = np.array([[2, 1], [1, 3]])
    _check(lambda a: np.linalg.det(a), a)


@pytest.mark.parametrize("ashape,bshape", [((3, 3), (3,)), ((3, 3), (3, 2)),
                                           ((4, 4), (4, 4)), ((2, 3, 3), (2, 3, 1)),
                                           ((2, 3, 3), (3, 2)), ((2, 3, 3), (3,))], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_solve_matches_numpy(rng, ashape, bshape, dtype):
    a = _well_conditioned(rng, ashape, dtype)
    b = rng.normal(size=bshape).astype(dtype)
    _check(lambda a, b: np.linalg.solve(a, b), a, b, dtype=dtype)


def test_solve_needs_pivoting():
    a = np.array([[0.0, 1.0], [1.0, 0.0]])
    _check(lambda a, b: np.linalg.solve(a, b), a, np.array([2.0, 3.0]))


def test_inv_of_a_singular_matrix_fails():
    s = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(ShapeError, match="Singular matrix"):
        cotan.jit(lambda a: np.linalg.inv(a))(s)


# -------------------------------------------------------------- einsum

EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk->ki", [(3, 4), (4, 5)]),
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("i,i->", [(6,), (6,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j->", [(3,), (4,)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("ijk,jl,kl->il", [(2, 3, 4), (3, 5), (4, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("i,i", [(5,), (1,)]),
]


@pytest.mark.parametrize("spec,shapes", EINSUMS, ids=[e[0] for e in EINSUMS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_einsum_matches_numpy(rng, spec, shapes, dtype):
    ops = [rng.normal(size=s).astype(dtype) if dtype != np.int64 else
           rng.integers(-5, 5, size=s) for s in shapes]
    if len(ops) == 1:
        _check(lambda x: np.einsum(spec, x), *ops, dtype=dtype)
    elif len(ops) == 2:
        _check(lambda x, y: np.einsum(spec, x, y), *ops, dtype=dtype)
    else:
        _check(lambda x, y, z: np.einsum(spec, x, y, z), *ops, dtype=dtype)


def test_einsum_mixed_dtypes(rng):
    a = rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.integers(0, 3, size=(4,))
    _check(lambda a, b: np.einsum("ij,j->i", a, b), a, b, dtype=np.float32)


# ------------------------------------------------------------- sorting

SORTS = [((7,), -1), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((3, 4), None),
         ((1,), 0), ((33,), 0)]


@pytest.mark.parametrize("shape,axis", SORTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32])
def test_sort_and_argsort_match_numpy(rng, shape, axis, dtype):
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(dtype)   # distinct keys
    _check(lambda x: np.sort(x, axis=axis), x, dtype=dtype)
    _check(lambda x: np.argsort(x, axis=axis), x, dtype=dtype)


def test_sort_puts_nan_last_and_is_stable():
    x = np.array([3.0, np.nan, -1.0, 2.0, np.nan, -np.inf, 2.0])
    _check(lambda x: np.sort(x), x)
    ties = np.array([2, 1, 2, 1, 0, 2, 1])
    np.testing.assert_array_equal(cotan.jit(lambda x: np.argsort(x))(ties),
                                  np.argsort(ties, kind="stable"))


def test_sort_of_bools(rng):
    x = rng.integers(0, 2, size=(9,)).astype(bool)
    _check(lambda x: np.sort(x), x)


@pytest.mark.parametrize("xshape,ishape,axis", [((5,), (5,), 0), ((3, 4), (3, 4), 1),
                                                ((3, 4), (2, 4), 0), ((3, 4), (3, 1), 1),
                                                ((2, 3, 4), (2, 3, 2), -1),
                                                ((3, 4), (5,), None)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_take_along_axis_matches_numpy(rng, xshape, ishape, axis, dtype):
    x = rng.normal(size=xshape).astype(dtype) * 10
    n = int(np.prod(xshape)) if axis is None else xshape[axis]
    idx = rng.integers(-n, n, size=ishape)
    _check(lambda x, i: np.take_along_axis(x, i, axis=axis), x, idx, dtype=dtype)


def test_take_along_axis_out_of_bounds_fails():
    with pytest.raises(IndexError):
        cotan.jit(lambda x, i: np.take_along_axis(x, i, axis=0))(np.ones(3), np.array([3]))


# --------------------------------------------------------------- array

def test_array_of_scalars(rng):
    x = rng.normal(size=(4,))
    _check(lambda x: np.array([x[0], x[1] * 2.0, 3.0]), x)
    _check(lambda x: np.array([[x[0], 1.0], [2.0, x[3]]]), x)


def test_array_of_arrays(rng):
    x = rng.normal(size=(2, 3))
    _check(lambda x: np.array([x, 2.0 * x, x + 1.0]), x)
    _check(lambda x: np.array((x[0], x[1])), x)


def test_array_dtype_copy_and_ndmin(rng):
    x = rng.normal(size=(3,))
    _check(lambda x: np.array([x[0], x[1]], dtype=np.float32), x, dtype=np.float32)
    _check(lambda x: np.array(x), x)
    _check(lambda x: np.array(x, ndmin=3), x)
    i = np.array([1, 2, 3])
    _check(lambda i: np.array([i[0], i[2]]), i)


# ------------------------------------------------------ jit(grad(...))

def _check_grad(f, *args, argnums=0):
    g = cotan.grad(f, argnums=argnums)
    want = g(*args)
    got = cotan.jit(g)(*args)
    for a, b in zip(cotan.tree_util.tree_leaves(got), cotan.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_grad_of_a_quadratic_form_with_solve(rng):
    a = _well_conditioned(rng, (4, 4))
    b = rng.normal(size=(4,))

    def f(a, b):
        return b @ np.linalg.solve(a, b)
    _check_grad(f, a, b, argnums=(0, 1))


def test_grad_of_det_and_slogdet_losses(rng):
    a = _well_conditioned(rng, (3, 3))

    def f(a):
        sign, logdet = np.linalg.slogdet(a)
        return np.linalg.det(a) ** 2 + sign * logdet + np.sum(np.linalg.inv(a))
    _check_grad(f, a)


def test_grad_of_einsum_contractions(rng):
    x = rng.normal(size=(3, 4))
    w = rng.normal(size=(4, 5))

    def f(x, w):
        y = np.einsum("ij,jk->ik", x, w)
        return np.einsum("ik,ik->", y, y) + np.einsum("ii", x[:, :3]) + np.einsum("ij->", w)
    _check_grad(f, x, w, argnums=(0, 1))


def test_grad_through_sort_and_take_along_axis(rng):
    x = rng.normal(size=(3, 5))

    def f(x):
        s = np.sort(x, axis=1)
        t = np.take_along_axis(x, np.argsort(-x, axis=0), axis=0)
        return np.sum(s * np.arange(5.0)) + np.sum(t[0] ** 2)
    _check_grad(f, x)


def test_grad_through_array(rng):
    x = rng.normal(size=(3,))

    def f(x):
        v = np.array([x[0] * x[1], np.sin(x[2]), 2.0])
        return np.sum(v ** 2)
    _check_grad(f, x)


# ----------------------------------------- sequences, forward-mode helpers

def test_tuple_and_list_of_an_array():
    def unpack(x):
        a, b, c = x
        return a * 2.0 + b - c

    def rows(m):
        rs = list(m)
        s = rs[0]
        for r in rs[1:]:
            s = s + r * r
        return s

    def of_expression(x):
        t = tuple(x * 2.0)
        return t[1] + t[2]

    x = np.arange(3.0)
    m = np.arange(12.0).reshape(4, 3)
    _check(unpack, x)
    _check(rows, m)
    _check(of_expression, x)
    assert "to_tuple" in LOWERINGS and "to_list" in LOWERINGS


def test_jvp_and_transpose_inverse_under_jit():
    def f(a):
        y = a * 1.0
        for i in range(3):
            y = np.sin(y) + a
        return np.transpose(y, (1, 0)).sum(axis=0)

    def tangent(x, v):
        return cotan.jvp(f, (x,), (v,))

    def h(a):
        return np.sum(np.transpose(a, (2, 0, 1)) * np.arange(4.0)[:, None, None])

    x = np.arange(6.0).reshape(2, 3) / 7
    v = np.ones_like(x)
    _check(tangent, x, v)
    a = np.arange(24.0).reshape(2, 3, 4) / 10
    np.testing.assert_allclose(cotan.jit(cotan.grad(h))(a), cotan.grad(h)(a), rtol=1e-12)


@pytest.mark.parametrize("sa,sb", [((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (4,)),
                                   ((4,), (2, 4, 5)), ((2, 3, 4), (5, 4, 6))])
def test_dot_of_stacks_matches_numpy(rng, sa, sb):
    def f(a, b):
        return np.dot(a, b)

    def loss(a, b):
        return np.sum(np.dot(a, b) ** 2)

    a, b = rng.normal(size=sa), rng.normal(size=sb)
    _check(f, a, b)
    g = cotan.grad(loss, argnums=(0, 1))
    for got, want in zip(cotan.jit(g)(a, b), g(a, b)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the eager rule itself, against central differences (it once applied
    # matmul's batching to dot's stacks)
    for k, (x, d) in enumerate(zip((a, b), g(a, b))):
        fd = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = 1e-6
            args_p = (a + e, b) if k == 0 else (a, b + e)
            args_m = (a - e, b) if k == 0 else (a, b - e)
            fd[i] = (loss(*args_p) - loss(*args_m)) / 2e-6
        np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-6)


def test_linspace_arrays_axis_retstep_and_integer_floor():
    def ends(a, b):
        return np.linspace(a, b, 4, retstep=True, axis=1)

    def integers(a, b):
        return np.linspace(a, b, 5, dtype=int)      # NumPy floors: -2.5 -> -3

    def one_sample(a, b):
        return np.linspace(a, b, 1)

    _check(ends, np.array([0.0, 1.0]), np.array([5.0, -2.0]))
    _check(integers, -2.5, 2.5)
    _check(one_sample, 1.0, 3.0)
