"""Shape, joining, creation and contraction compositions of `cotan.numpy`.

Owns the NumPy functions that are a primitive or two plus static shape
arithmetic: `ravel`, `expand_dims`, `squeeze`, `moveaxis`, `stack`,
`hstack`, `split`, `tile`, `repeat`, `roll`, `full`, `meshgrid`, `vdot`,
`tensordot`, `kron`, `trace`, `diag`, `tril`, `pad`, ...  Written in the
composition subset that cotan's source transformer inlines (see
`_math`); tuple arithmetic goes through `static_*` primitives because `+`
on values normalizes to the `add` primitive, and results of variable
length are built as lists with `list_append` and turned into NumPy's
tuples with `to_tuple`.  Must not call NumPy directly or define
primitives.
"""

from ..runtime.creation import array, astype, copy, eye, linspace, tri, zeros, zeros_like
from ..runtime.elementwise import multiply, power, subtract
from ..runtime.elementwise import conj
from ..runtime.elementwise import where as where3
from ..runtime.linalg_ops import dot, matmul
from ..runtime.reductions import sum
from ..runtime.shape_ops import (
    broadcast_to, concatenate, diagonal, flip, nonzero, reshape, take, transpose)
from ..runtime.static_helpers import (
    static_atleast_shape, static_axis_slice, static_broadcast_shapes, static_diag_indices,
    static_expand_dims_shape, static_kron_plan, static_meshgrid_shapes,
    static_moveaxis_perm, static_pad_plan, static_reduced_count, static_repeat_indices,
    static_roll_plan, static_split_indices, static_squeeze_shape, static_swapaxes_perm,
    static_tensordot_plan, static_tile_plan)
from ..runtime.structural import dtype as dtype_of
from ..runtime.structural import length, list_append, ndim, setitem, to_tuple
from ..runtime.structural import size as size_of
from ..runtime.structural import shape as shape_of


# -- reshaping -------------------------------------------------------------------

def ravel(a):
    """numpy.ravel(a) == reshape(a, (-1,))."""
    return reshape(a, (-1,))


def expand_dims(a, axis):
    """numpy.expand_dims(a, axis)."""
    return reshape(a, static_expand_dims_shape(shape_of(a), axis))


def squeeze(a, axis=None):
    """numpy.squeeze(a, axis)."""
    return reshape(a, static_squeeze_shape(shape_of(a), axis))


def swapaxes(a, axis1, axis2):
    """numpy.swapaxes(a, axis1, axis2)."""
    return transpose(a, static_swapaxes_perm(ndim(a), axis1, axis2))


def moveaxis(a, source, destination):
    """numpy.moveaxis(a, source, destination)."""
    return transpose(a, static_moveaxis_perm(ndim(a), source, destination))


def permute_dims(a, axes=None):
    """numpy.permute_dims: the same function as transpose."""
    return transpose(a, axes)


def matrix_transpose(x):
    """numpy.matrix_transpose(x): swap the last two axes."""
    return transpose(x, static_swapaxes_perm(ndim(x), -1, -2))


def fliplr(m):
    """numpy.fliplr(m) == flip(m, axis=1)."""
    return flip(m, axis=1)


def flipud(m):
    """numpy.flipud(m) == flip(m, axis=0)."""
    return flip(m, axis=0)


def roll(a, shift, axis=None):
    """numpy.roll(a, shift, axis): a gather per rolled axis."""
    x = a
    if axis is None:
        x = reshape(a, (-1,))
    plan = static_roll_plan(shape_of(x), shift, axis)
    for i in range(length(plan)):
        x = take(x, plan[i][1], axis=plan[i][0])
    return reshape(x, shape_of(a))


def tile(A, reps):
    """numpy.tile(A, reps): broadcast along interleaved unit axes, then merge them."""
    plan = static_tile_plan(shape_of(A), reps)
    return reshape(broadcast_to(reshape(A, plan[0]), plan[1]), plan[2])


def repeat(a, repeats, axis=None):
    """numpy.repeat(a, repeats, axis) for static repeats: a gather."""
    if axis is None:
        return take(reshape(a, (-1,)), static_repeat_indices(static_reduced_count(shape_of(a)),
                                                             repeats))
    return take(a, static_repeat_indices(shape_of(a)[axis], repeats), axis=axis)


def atleast_1d(*arys):
    """numpy.atleast_1d(*arys)."""
    return _atleast(arys, 1)


def atleast_2d(*arys):
    """numpy.atleast_2d(*arys)."""
    return _atleast(arys, 2)


def atleast_3d(*arys):
    """numpy.atleast_3d(*arys)."""
    return _atleast(arys, 3)


def _atleast(arys, n):
    """Each of arys reshaped to at least n dimensions, NumPy's way."""
    out = []
    for i in range(length(arys)):
        out = list_append(out, reshape(arys[i], static_atleast_shape(shape_of(arys[i]), n)))
    if length(out) == 1:
        return out[0]
    return to_tuple(out)


def broadcast_arrays(*args):
    """numpy.broadcast_arrays(*args)."""
    shapes = []
    for i in range(length(args)):
        shapes = list_append(shapes, shape_of(args[i]))
    target = static_broadcast_shapes(shapes)
    out = []
    for i in range(length(args)):
        out = list_append(out, broadcast_to(args[i], target))
    return to_tuple(out)


# -- joining and splitting ---------------------------------------------------------

def concat(arrays, axis=0):
    """numpy.concat: the same function as concatenate."""
    return concatenate(arrays, axis=axis)


def stack(arrays, axis=0):
    """numpy.stack(arrays, axis) == concatenate of expand_dims(a, axis)."""
    parts = []
    for i in range(length(arrays)):
        parts = list_append(parts, expand_dims(arrays[i], axis))
    return concatenate(parts, axis=axis)


def hstack(tup):
    """numpy.hstack(tup): concatenate along axis 1 (axis 0 for 1-D arrays)."""
    parts = []
    for i in range(length(tup)):
        parts = list_append(parts, reshape(tup[i], static_atleast_shape(shape_of(tup[i]), 1)))
    if ndim(parts[0]) == 1:
        return concatenate(parts, axis=0)
    return concatenate(parts, axis=1)


def vstack(tup):
    """numpy.vstack(tup): concatenate along axis 0 after atleast_2d."""
    parts = []
    for i in range(length(tup)):
        parts = list_append(parts, reshape(tup[i], static_atleast_shape(shape_of(tup[i]), 2)))
    return concatenate(parts, axis=0)


def dstack(tup):
    """numpy.dstack(tup): concatenate along axis 2 after atleast_3d."""
    parts = []
    for i in range(length(tup)):
        parts = list_append(parts, reshape(tup[i], static_atleast_shape(shape_of(tup[i]), 3)))
    return concatenate(parts, axis=2)


def column_stack(tup):
    """numpy.column_stack(tup): 1-D arrays become columns, then concatenate along axis 1."""
    parts = []
    for i in range(length(tup)):
        t = tup[i]
        if ndim(t) < 2:
            t = reshape(t, (-1, 1))
        parts = list_append(parts, t)
    return concatenate(parts, axis=1)


def append(arr, values, axis=None):
    """numpy.append(arr, values, axis) == concatenate((arr, values), axis), raveled if axis is None."""
    if axis is None:
        return concatenate((reshape(arr, (-1,)), reshape(values, (-1,))), axis=0)
    return concatenate((arr, values), axis=axis)


def split(ary, indices_or_sections, axis=0):
    """numpy.split(ary, indices_or_sections, axis) (a list of pieces)."""
    return _split(ary, indices_or_sections, axis, True)


def array_split(ary, indices_or_sections, axis=0):
    """numpy.array_split(ary, indices_or_sections, axis) (a list of pieces)."""
    return _split(ary, indices_or_sections, axis, False)


def _split(ary, indices_or_sections, axis, even):
    """The pieces of ary cut at static bounds along axis."""
    pieces = static_split_indices(shape_of(ary), indices_or_sections, axis, even)
    out = []
    for i in range(length(pieces)):
        out = list_append(out, ary[pieces[i]])
    return out


def hsplit(ary, indices_or_sections):
    """numpy.hsplit: split along axis 1 (axis 0 for 1-D arrays)."""
    if ndim(ary) == 1:
        return _split(ary, indices_or_sections, 0, True)
    return _split(ary, indices_or_sections, 1, True)


def vsplit(ary, indices_or_sections):
    """numpy.vsplit: split along axis 0."""
    return _split(ary, indices_or_sections, 0, True)


def dsplit(ary, indices_or_sections):
    """numpy.dsplit: split along axis 2."""
    return _split(ary, indices_or_sections, 2, True)


def diff(a, n=1, axis=-1):
    """numpy.diff(a, n, axis): n-th forward difference along axis."""
    for i in range(n):
        a = subtract(a[static_axis_slice(ndim(a), axis, 1, None)],
                     a[static_axis_slice(ndim(a), axis, None, -1)])
    return a


def pad(array, pad_width, mode="constant", constant_values=0):
    """numpy.pad(array, pad_width, mode='constant', constant_values) (constant mode
    only, one constant_values for every border)."""
    plan = static_pad_plan(shape_of(array), pad_width, mode)
    flat = setitem(full_like(array, constant_values, shape=(plan[2],)), reshape(array, (-1,)),
                   plan[1])
    return reshape(flat, plan[0])


# -- selection -----------------------------------------------------------------------

def where(condition, x=None, y=None):
    """numpy.where(condition, x, y); numpy.where(condition) == nonzero(condition)."""
    if x is None:
        return nonzero(condition)
    return where3(condition, x, y)


def flatnonzero(a):
    """numpy.flatnonzero(a) == nonzero(ravel(a))[0]."""
    return nonzero(reshape(a, (-1,)))[0]


def argwhere(a):
    """numpy.argwhere(a) == transpose(nonzero(a)) as an (N, ndim) array."""
    return transpose(array(nonzero(a)))


# -- creation --------------------------------------------------------------------------

def empty(shape, dtype=None):
    """numpy.empty(shape, dtype): cotan fills it with zeros."""
    return zeros(shape, dtype=dtype)


def empty_like(prototype, dtype=None, shape=None):
    """numpy.empty_like(prototype, dtype, shape=shape): cotan fills it with zeros."""
    return zeros_like(prototype, dtype=dtype, shape=shape)


def full(shape, fill_value, dtype=None):
    """numpy.full(shape, fill_value, dtype)."""
    if dtype is None:
        return copy(broadcast_to(array(fill_value), shape))
    return astype(broadcast_to(fill_value, shape), dtype)


def full_like(a, fill_value, dtype=None, shape=None):
    """numpy.full_like(a, fill_value, dtype, shape=shape)."""
    if dtype is None:
        dtype = dtype_of(a)
    if shape is None:
        shape = shape_of(a)
    return astype(broadcast_to(fill_value, shape), dtype)


def identity(n, dtype=None):
    """numpy.identity(n, dtype) == eye(n, dtype=dtype)."""
    return eye(n, dtype=dtype)


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """numpy.logspace(start, stop, num, endpoint, base, dtype, axis) == base ** linspace(...)."""
    y = power(base, linspace(start, stop, num, endpoint, axis=axis))
    if dtype is None:
        return y
    return astype(y, dtype)


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """numpy.meshgrid(*xi, copy=copy, sparse=sparse, indexing=indexing)."""
    sizes = []
    for i in range(length(xi)):
        sizes = list_append(sizes, static_reduced_count(shape_of(xi[i])))
    plan = static_meshgrid_shapes(sizes, indexing)
    out = []
    for i in range(length(xi)):
        g = reshape(xi[i], plan[0][i])
        if not sparse:
            g = broadcast_to(g, plan[1])
        out = list_append(out, g)
    return to_tuple(out)


def asarray(a, dtype=None):
    """numpy.asarray(a, dtype) (cotan arrays are values, so this is array)."""
    return array(a, dtype=dtype)


def size(a, axis=None):
    """numpy.size(a, axis): number of elements (along axis)."""
    if axis is None:
        return size_of(a)
    return shape_of(a)[axis]


# -- contractions and matrices ----------------------------------------------------------

def vdot(a, b):
    """numpy.vdot(a, b) == dot(ravel(conj(a)), ravel(b)) (conj is the identity on real arrays)."""
    return dot(reshape(conj(a), (-1,)), reshape(b, (-1,)))


def tensordot(a, b, axes=2):
    """numpy.tensordot(a, b, axes): transpose and reshape to one matmul."""
    plan = static_tensordot_plan(shape_of(a), shape_of(b), axes)
    a2 = reshape(transpose(a, plan[0]), plan[1])
    b2 = reshape(transpose(b, plan[2]), plan[3])
    return reshape(matmul(a2, b2), plan[4])


def inner(a, b):
    """numpy.inner(a, b): contraction over the last axes (a product for scalars)."""
    # NumPy makes arrays of scalar operands here, so a Python float is not weak
    if ndim(a) == 0:
        return multiply(array(a), array(b))
    if ndim(b) == 0:
        return multiply(array(a), array(b))
    return tensordot(a, b, ((-1,), (-1,)))


def outer(a, b):
    """numpy.outer(a, b) == ravel(a)[:, None] * ravel(b)[None, :]."""
    return multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def kron(a, b):
    """numpy.kron(a, b): product over interleaved axes, then merged."""
    plan = static_kron_plan(shape_of(a), shape_of(b))
    return reshape(multiply(reshape(a, plan[0]), reshape(b, plan[1])), plan[2])


def trace(a, offset=0, axis1=0, axis2=1, dtype=None):
    """numpy.trace(a, offset, axis1, axis2, dtype) == sum of the diagonal."""
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def diag(v, k=0):
    """numpy.diag(v, k): the k-th diagonal of a matrix, or a matrix with v on it."""
    if ndim(v) == 2:
        return diagonal(v, k)
    plan = static_diag_indices(length(v), k)
    return setitem(zeros_like(v, shape=(plan[0], plan[0])), v, plan[1], plan[2])


def tril(m, k=0):
    """numpy.tril(m, k): zero above the k-th diagonal."""
    below = tri(shape_of(m)[-2], shape_of(m)[-1], k, dtype="bool")
    return where3(below, m, zeros_like(m))


def triu(m, k=0):
    """numpy.triu(m, k): zero below the k-th diagonal."""
    below = tri(shape_of(m)[-2], shape_of(m)[-1], k - 1, dtype="bool")
    return where3(below, zeros_like(m), m)


def cross(a, b):
    """numpy.cross(a, b) for 3-vectors along the last axis."""
    a0 = a[..., 0]
    a1 = a[..., 1]
    a2 = a[..., 2]
    b0 = b[..., 0]
    b1 = b[..., 1]
    b2 = b[..., 2]
    c0 = subtract(multiply(a1, b2), multiply(a2, b1))
    c1 = subtract(multiply(a2, b0), multiply(a0, b2))
    c2 = subtract(multiply(a0, b1), multiply(a1, b0))
    return stack((c0, c1, c2), axis=-1)


def vecdot(x1, x2, axis=-1):
    """numpy.vecdot(x1, x2, axis) == sum(conj(x1) * x2, axis) (conj is the identity on real arrays)."""
    return sum(multiply(conj(x1), x2), axis=axis)



# -- issue 16: discrete convolution and unique elements --------------------------

from ..runtime.elementwise import add  # noqa: E402
from ..runtime.more_ops import static_convolve_indices, unique_plan  # noqa: E402


def convolve(a, v, mode="full"):
    """numpy.convolve(a, v, mode): discrete linear convolution of two 1-D sequences, as shifted sums over the shorter one."""
    if shape_of(v)[0] > shape_of(a)[0]:
        return _convolve_longer_first(v, a, mode)
    return _convolve_longer_first(a, v, mode)


def _convolve_longer_first(a, v, mode):
    """convolve(a, v, mode) with len(a) >= len(v)."""
    n = shape_of(a)[0]
    m = shape_of(v)[0]
    # zeros on both ends (not `pad`: its setitem has no vmap rule for this case yet)
    edge = zeros_like(a[0:m - 1])
    padded = concatenate((edge, a, edge))
    full = matmul(take(padded, static_convolve_indices(n, m)), v)
    if mode == "full":
        return full
    if mode == "same":
        start = (m - 1) // 2
        return full[start:start + n]
    return full[m - 1:n]


def correlate(a, v, mode="valid"):
    """numpy.correlate(a, v, mode): cross-correlation of two real 1-D sequences (convolution with v reversed)."""
    if shape_of(v)[0] > shape_of(a)[0]:
        return flip(_correlate_longer_first(v, a, mode), 0)
    return _correlate_longer_first(a, v, mode)


def _correlate_longer_first(a, v, mode):
    """correlate(a, v, mode) with len(a) >= len(v)."""
    return _convolve_longer_first(a, flip(v, 0), mode)


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None,
           equal_nan=True):
    """numpy.unique(ar, return_index, return_inverse, return_counts, axis=None, equal_nan): sorted unique elements (eager only: the length depends on the values)."""
    plan = unique_plan(ar, axis, equal_nan)
    values = take(reshape(ar, (-1,)), plan[0])
    if not (return_index or return_inverse or return_counts):
        return values
    out = [values]
    if return_index:
        out = list_append(out, plan[0])
    if return_inverse:
        out = list_append(out, plan[1])
    if return_counts:
        out = list_append(out, plan[2])
    return to_tuple(out)
