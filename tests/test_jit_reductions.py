"""Compiled reductions against NumPy: every reduction primitive over
axes None / 0 / 1 / -1 / tuples, keepdims, float32 / float64 / int64 /
bool, and lengths that hit every remainder of the vectorized loops (the
vector width W, a group of 4 vectors, a block of 32 groups, the
thread-split threshold).

Tolerances follow from the summation orders: NumPy sums pairwise, cotan
in the blocked order of llvm/reductions.py (each lane's accumulator adds
at most 32 terms before it is folded, blocks 64 at a time, then the outer
vector n / (64 * 32 * 4 * W) times).  Both results then lie within
c * eps * sum(|x|) of the exact sum with c a few hundred at most for the
sizes here (NumPy's c ~ 16 + log2 n, cotan's ~ 100 + n / 2**15): the
tests allow 256 eps sum(|x|).  Products round once per factor in any
order: n eps relative, times 4 (absolute in the subnormal range).  max/min/any/all, integer sums and the
arg-reductions are exact.
"""

import numpy as np
import pytest

import cotan

W = {np.float64: 4, np.float32: 8}
#: 1-D lengths: 0, 1, around W (4 and 8), a group of 4 vectors (16, 32),
#: a block (512 and 1024 elements) and a large odd one
LENGTHS = [0, 1, 3, 5, 7, 9, 15, 17, 31, 33, 511, 513, 1025, 2049, 100003]
DTYPES = [np.float64, np.float32, np.int64, np.bool_]


def data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.uniform(size=shape) < 0.7
    if np.dtype(dtype).kind == "i":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    # in [0.5, 1.5] with random signs, so products stay finite and sums cancel
    return (rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1, 1], size=shape)).astype(dtype)


def reduced_count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return int(np.prod([shape[a] for a in axes]))


def check(kind, got, want, x, axis, keepdims):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (kind, got.shape, want.shape)
    assert got.dtype == want.dtype, (kind, got.dtype, want.dtype)
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=kind)
        return
    eps = np.finfo(want.dtype).eps
    ax = np.abs(x.astype(np.float64))
    if kind in ("sum", "mean"):
        bound = 256 * eps * np.sum(ax, axis=axis, keepdims=keepdims)
        if kind == "mean":
            bound = bound / max(1, reduced_count(x.shape, axis))
        np.testing.assert_array_less(np.abs(got.astype(np.float64) - want), bound + 1e-300,
                                     err_msg=kind)
    elif kind == "prod":
        n = max(1, reduced_count(x.shape, axis))
        # (long products may underflow into subnormals, which round absolutely)
        np.testing.assert_allclose(got, want, rtol=4 * n * eps,
                                   atol=4 * n * np.finfo(want.dtype).smallest_subnormal,
                                   err_msg=kind)
    else:
        np.testing.assert_array_equal(got, want, err_msg=kind)


def every_reduction(axis, keepdims, with_args):
    """A function returning each reduction of x over `axis`."""
    if with_args:
        def f(x):
            return (np.sum(x, axis=axis, keepdims=keepdims),
                    np.prod(x, axis=axis, keepdims=keepdims),
                    np.max(x, axis=axis, keepdims=keepdims),
                    np.min(x, axis=axis, keepdims=keepdims),
                    np.any(x, axis=axis, keepdims=keepdims),
                    np.all(x, axis=axis, keepdims=keepdims),
                    np.mean(x, axis=axis, keepdims=keepdims),
                    np.argmax(x, axis=axis, keepdims=keepdims),
                    np.argmin(x, axis=axis, keepdims=keepdims))
        return f

    def g(x):
        return (np.sum(x, axis=axis, keepdims=keepdims),
                np.prod(x, axis=axis, keepdims=keepdims),
                np.max(x, axis=axis, keepdims=keepdims),
                np.min(x, axis=axis, keepdims=keepdims),
                np.any(x, axis=axis, keepdims=keepdims),
                np.all(x, axis=axis, keepdims=keepdims),
                np.mean(x, axis=axis, keepdims=keepdims))
    return g


def with_identity(axis, keepdims):
    def f(x):
        return (np.sum(x, axis=axis, keepdims=keepdims),
                np.prod(x, axis=axis, keepdims=keepdims),
                np.any(x, axis=axis, keepdims=keepdims),
                np.all(x, axis=axis, keepdims=keepdims))
    return f


KINDS = ["sum", "prod", "max", "min", "any", "all", "mean", "argmax", "argmin"]


def run_all(x, axis, keepdims):
    empty = reduced_count(x.shape, axis) == 0
    with_args = not isinstance(axis, tuple) and not empty
    f = every_reduction(axis, keepdims, with_args)
    if empty:
        # max/min/argmax of nothing raise (tested below): the rest only
        f = with_identity(axis, keepdims)
        kinds = ["sum", "prod", "any", "all"]
    else:
        kinds = KINDS[:len(f(x))]
    got = cotan.jit(f)(x)
    want = f(x)
    for kind, g, w in zip(kinds, got, want):
        if kind == "mean" and x.dtype == np.bool_:
            w = np.asarray(w)
        check(kind, g, w, x, axis, keepdims)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", LENGTHS)
def test_full_reduction_1d(n, dtype):
    run_all(data((n,), dtype), None, False)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (1, 2), (0, 1)],
                         ids=lambda a: str(a).replace(" ", ""))
@pytest.mark.parametrize("shape", [(2, 3, 7), (3, 1, 9), (4, 5, 17), (3, 4, 33), (2, 3, 1025)],
                         ids=lambda s: "x".join(map(str, s)))
def test_axes(shape, axis, dtype):
    run_all(data(shape, dtype), axis, False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)], ids=lambda a: str(a).replace(" ", ""))
def test_keepdims(axis, dtype):
    run_all(data((3, 5, 19), dtype), axis, True)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)], ids=str)
def test_empty_axes(axis):
    # zero-length dimensions: the identity (sum 0, prod 1, any False, all True)
    run_all(data((0, 5), np.float64), axis, False)
    run_all(data((4, 0), np.float64), axis, False)


def test_empty_max_raises():
    def f(x):
        return np.max(x)
    with pytest.raises(ValueError, match="zero-size array"):
        cotan.jit(f)(np.zeros(0))


# ---------------------------------------------------------------- producers

def sum_exp(x):
    return np.sum(np.exp(x) * x)


def rows_softmax(x):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def col_sum_sin(x):
    return np.sum(np.sin(x) + 1.0, axis=0)


def row_logsumexp(x, b):
    return np.log(np.sum(np.exp(x + b), axis=-1))


def strided_views(x):
    return (np.sum(x.T, axis=0), np.max(x[:, ::2], axis=1), np.sum(x[::2, 1:], axis=0),
            np.min(x.T * 2.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [1, 7, 33, 1025, 70001, (1 << 18) + 3])
def test_fused_transcendental_producer(n, dtype):
    x = data((n,), dtype, seed=n)
    got = cotan.jit(sum_exp)(x)
    want = sum_exp(x)
    terms = np.abs(np.exp(x.astype(np.float64)) * x)
    # the producer's own rounding (libmvec's exp within a few ulp) adds to
    # the summation's
    assert abs(float(got) - float(want)) <= 256 * np.finfo(dtype).eps * np.sum(terms)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(5, 3), (7, 9), (64, 1024), (33, 1031)],
                         ids=lambda s: "x".join(map(str, s)))
def test_softmax_rows(shape, dtype):
    x = np.random.default_rng(1).normal(size=shape).astype(dtype)
    got = cotan.jit(rows_softmax)(x)
    want = rows_softmax(x)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=64 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_allclose(np.sum(got, axis=1), 1.0, rtol=64 * np.finfo(dtype).eps * 8)


@pytest.mark.parametrize("shape", [(3, 5), (17, 9), (300, 101), (129, 2050)],
                         ids=lambda s: "x".join(map(str, s)))
def test_broadcast_producers(shape):
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape)
    b = rng.normal(size=shape[-1:])
    np.testing.assert_allclose(cotan.jit(col_sum_sin)(x), col_sum_sin(x), rtol=1e-12,
                               atol=1e-12 * shape[0])
    np.testing.assert_allclose(cotan.jit(row_logsumexp)(x, b), row_logsumexp(x, b),
                               rtol=1e-12)
    for got, want in zip(cotan.jit(strided_views)(x), strided_views(x)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * shape[0])


# ------------------------------------------------------------- NaN and inf

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("where", [0, 3, 17, 600, 1024, 1030])
def test_nan_propagates(where, dtype):
    def f(x):
        return (np.max(x), np.min(x), np.sum(x), np.argmax(x), np.argmin(x),
                np.max(x.reshape(3, 344), axis=1), np.min(x.reshape(3, 344), axis=0),
                np.any(x), np.all(x))
    x = data((1032,), dtype)
    x[where] = np.nan
    x[(where + 5) % 1032] = np.nan
    got = cotan.jit(f)(x)
    want = f(x)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("n", [9, 1031])
def test_inf(n):
    def f(x):
        return np.sum(x), np.max(x), np.min(x), np.prod(x), np.mean(x)
    x = data((n,), np.float64)
    x[2] = np.inf
    got = cotan.jit(f)(x)
    np.testing.assert_array_equal(got, f(x))
    x[n - 1] = -np.inf
    got = cotan.jit(f)(x)
    np.testing.assert_array_equal(got, f(x))


# ----------------------------------------------------- accuracy and threads

def plain_sum(x):
    return np.sum(x)


def test_float32_sum_accuracy():
    # 2**22 float32 values 0.1: one running sum per lane (even 32 of them,
    # as LLVM's reassociating vectorizer writes) is off by ~8700 eps, every
    # addition rounding the same way; the blocked order stays within the
    # pairwise bound
    for x in (np.full(1 << 22, 0.1, dtype=np.float32),
              np.random.default_rng(3).uniform(0, 1, size=(1 << 22) + 5).astype(np.float32)):
        got = cotan.jit(plain_sum)(x)
        exact = np.sum(x.astype(np.float64))
        assert abs(float(got) - exact) <= 256 * np.finfo(np.float32).eps * exact


def test_threaded_sums_deterministic(monkeypatch, tmp_path):
    monkeypatch.setenv("COTAN_NUM_THREADS", "3")
    monkeypatch.setenv("COTAN_CACHE_DIR", str(tmp_path))
    n = (1 << 20) + 12345
    x = data((n,), np.float64, seed=5)
    f = cotan.jit(plain_sum)
    g = cotan.jit(sum_exp)
    first, first_exp = f(x), g(x)
    for _ in range(5):
        assert f(x) == first
        assert g(x) == first_exp
    exact = np.sum(np.abs(x))
    assert abs(first - np.sum(x)) <= 256 * np.finfo(np.float64).eps * exact
    want = sum_exp(x)
    assert abs(first_exp - want) <= 256 * np.finfo(np.float64).eps * np.sum(
        np.abs(np.exp(x) * x))


def normalize_rows(x, b):
    return x / np.sum(x, axis=1, keepdims=True) + b


def test_threaded_broadcast_chain(monkeypatch, tmp_path):
    # a broadcasting chain without a libmvec call, above the threshold:
    # its rows are split over threads (odd counts, so chunks differ)
    monkeypatch.setenv("COTAN_NUM_THREADS", "3")
    monkeypatch.setenv("COTAN_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(6)
    x = rng.uniform(0.5, 1.5, size=(1031, 1033))
    b = rng.normal(size=1033)
    np.testing.assert_allclose(cotan.jit(normalize_rows)(x, b), normalize_rows(x, b),
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_above_thread_threshold(dtype, monkeypatch, tmp_path):
    monkeypatch.setenv("COTAN_NUM_THREADS", "2")
    monkeypatch.setenv("COTAN_CACHE_DIR", str(tmp_path))
    run_all(data(((1 << 20) + 7,), dtype), None, False)
    run_all(data((1031, 1025), dtype), 1, False)
    run_all(data((1025, 1031), dtype), 0, False)


def test_integer_sums():
    def f(x, y):
        return np.sum(x), np.sum(x, axis=0), np.sum(y), np.sum(y, axis=1), np.sum(x > 0)
    rng = np.random.default_rng(4)
    x = rng.integers(-2**40, 2**40, size=(37, 1029))
    y = rng.integers(-100, 100, size=(37, 1029)).astype(np.int32)
    got = cotan.jit(f)(x, y)
    want = f(x, y)
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(g, w)


def small_int_reductions(x):
    return (np.sum(x), np.max(x), np.min(x, axis=0), np.argmax(x, axis=1), np.argmin(x),
            np.prod(x, axis=1), np.any(x, axis=1))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.uint32, np.uint64],
                         ids=lambda d: np.dtype(d).name)
def test_narrow_integer_dtypes(dtype):
    # narrow types get wide vectors (32 lanes of uint8); results and their
    # dtypes (sum of uint8 is uint64, of int8 int64) as NumPy's
    x = np.random.default_rng(7).integers(0, 100, size=(37, 133)).astype(dtype)
    for g, w in zip(cotan.jit(small_int_reductions)(x), small_int_reductions(x)):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(g, w)
