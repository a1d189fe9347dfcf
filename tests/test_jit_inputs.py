"""Inputs a compiled entry was not compiled for: non-native byte order,
strides, misaligned buffers, subclasses, unsupported dtypes.  Each case is
called as the first call (compiles) and after a native-layout call (the
entry is cached; the C fast path must not take it), on the fast path
(`f(x)`) and on the Python path (`f._call_slow(x)`, the path COTAN_NO_FASTCALL
uses).  The reference is eager NumPy."""

import numpy as np
import pytest

import cotan
from cotan.errors import CotanError


def total(x):
    return np.sum(x * np.arange(1.0, x.shape[0] + 1.0))


def pair(t):
    a, b = t
    return np.sum(a) + 2.0 * np.sum(b)


def big_endian(x):
    return x.astype(x.dtype.newbyteorder(">"))


def strided(x):
    wide = np.zeros(2 * x.shape[0], x.dtype)
    wide[::2] = x
    return wide[::2]


def misaligned(x):
    raw = np.zeros(x.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, dtype=x.dtype, count=x.shape[0], offset=1)
    out[:] = x
    assert not out.flags.aligned
    return out


def read_only(x):
    y = x.copy()
    y.flags.writeable = False
    return y


class PlainSubclass(np.ndarray):
    """A subclass that changes nothing NumPy computes (like np.memmap)."""


LAYOUTS = {"big_endian": big_endian, "strided": strided, "misaligned": misaligned,
           "read_only": read_only, "plain_subclass": lambda x: x.view(PlainSubclass)}
CALLS = {"fast": lambda f, *a: f(*a), "python": lambda f, *a: f._call_slow(*a)}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
@pytest.mark.parametrize("cached", [False, True])
def test_layout_read_as_numpy_reads_it(layout, dtype, cached, call):
    x = np.array([3.0, -1.0, 2.0, 5.0]).astype(dtype)
    odd = LAYOUTS[layout](x)
    f = cotan.jit(total)
    if cached:
        np.testing.assert_allclose(f(x), total(x), rtol=1e-6)
    got = CALLS[call](f, odd)
    want = total(odd)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # twice: the second call of this layout finds its entry in the cache
    np.testing.assert_allclose(CALLS[call](f, odd), want, rtol=1e-6)
    assert np.asarray(got).dtype == np.asarray(want).dtype


def test_big_endian_reproducer():
    f = cotan.jit(lambda x: np.sum(x))
    assert f(np.arange(1.0, 5.0) * 3.0) == 30.0
    assert f((np.arange(1.0, 5.0) * 3.0).astype(">f8")) == 30.0


@pytest.mark.parametrize("call", CALLS)
def test_layouts_inside_a_pytree(call):
    a, b = np.arange(4.0), np.arange(3.0) + 1.0
    f = cotan.jit(pair)
    assert CALLS[call](f, (a, b)) == pair((a, b))
    odd = (big_endian(a), misaligned(b))
    assert CALLS[call](f, odd) == pair((a, b))


def test_big_endian_output_of_grad_is_native():
    g = cotan.jit(cotan.grad(total))
    x = np.array([0.5, 1.5, -2.0])
    want = np.arange(1.0, 4.0)
    np.testing.assert_allclose(g(x), want)
    got = g(big_endian(x))
    np.testing.assert_allclose(got, want)
    assert got.dtype.isnative


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("bad", ["object", "complex", "float16"])
def test_unreadable_dtype_refused(bad, cached, call):
    x = np.array([1.0, 2.0])
    f = cotan.jit(total)
    if cached:
        f(x)
    with pytest.raises(CotanError, match=r"dtype"):
        CALLS[call](f, x.astype(bad))


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("cached", [False, True])
def test_subclass_with_other_semantics_refused(cached, call):
    # np.matrix's `*` is a matrix product: the compiled program would not
    # compute what NumPy computes for it
    with pytest.warns(PendingDeprecationWarning):
        m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    f = cotan.jit(lambda x: x * x)
    if cached:
        f(np.asarray(m))
    with pytest.raises(CotanError, match=r"matrix"):
        CALLS[call](f, m)
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    with pytest.raises(CotanError, match=r"MaskedArray"):
        CALLS[call](cotan.jit(total), masked)


def test_slice_with_run_time_bounds_is_refused_not_taken_whole():
    # the typed program once typed make_slice(a, b) as slice(None, None):
    # the whole axis was read (12.0 where NumPy gives 5.0)
    def g(m, a, b):
        return np.sum(m[a:b, 1])
    with pytest.raises(cotan.errors.ShapeError, match="run-time value"):
        cotan.jit(g)(np.arange(9.0).reshape(3, 3), 0, 2)
    assert cotan.jit(g, static_argnums=(1, 2))(np.arange(9.0).reshape(3, 3), 0, 2) == 5.0


def test_window_slices_in_a_static_loop_are_unrolled():
    def w(x):
        s = 0.0
        for i in range(3):
            s = s + np.sum(x[i:i + 2] * x[i])
        return s
    x = np.arange(5.0)
    assert cotan.jit(w)(x) == pytest.approx(w(x))


@pytest.mark.parametrize("reduce", [np.sum, np.max, np.min, np.prod])
@pytest.mark.parametrize("axis", [0, None])
def test_reduction_of_a_python_float_over_axis_0(reduce, axis):
    # NumPy reduces a 0-d value over axis 0 / -1 to itself (the lowering
    # took the axis modulo the rank: ZeroDivisionError)
    f = cotan.jit(lambda x: reduce(x, axis=axis))
    assert f(1.5) == pytest.approx(reduce(1.5, axis=axis))
