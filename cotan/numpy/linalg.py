"""cotan.numpy.linalg: the NumPy-compatible `numpy.linalg` namespace.

Owns the names of `numpy.linalg` that cotan supports: the LAPACK kernels
are primitives (inv, solve, det, slogdet, cholesky, qr, eigh, svd; each
namespace entry is the Primitive object), the rest (norm, pinv,
matrix_power, multi_dot, ...) are compositions written in the subset
cotan's source transformer inlines (see `cotan.numpy._math`).  Multi-output
functions return plain tuples rather than NumPy's named results.  Must
not call NumPy directly or define primitives.
"""

from ..runtime.creation import copy, eye
from ..runtime.creation import astype
from ..runtime.elementwise import (
    absolute, divide, equal, greater, logical_not, multiply, power, sqrt, where)
from ..runtime.linalg_ops import cholesky, det, eigh, inv, matmul, qr, slogdet, solve, svd
from ..runtime.reductions import max, min, sum
from ..runtime.shape_ops import broadcast_to, reshape
from ..runtime.static_helpers import (
    static_eps_cutoff, static_expand_dims_shape, static_norm_kind,
    static_reduced_shape)
from ..runtime.structural import dtype as dtype_of
from ..runtime.structural import length, ndim, shape
from ._arrays import matrix_transpose, moveaxis, outer, tensordot, vecdot
from ._math import count_nonzero

__all__ = ["norm", "vector_norm", "matrix_norm", "inv", "solve", "det", "slogdet",
           "cholesky", "qr", "eigh", "eigvalsh", "svd", "svdvals", "pinv", "matrix_power",
           "multi_dot", "matrix_rank", "matmul", "outer", "tensordot", "vecdot",
           "matrix_transpose"]


def norm(x, ord=None, axis=None, keepdims=False):
    """numpy.linalg.norm(x, ord, axis, keepdims): vector or matrix norm."""
    plan = static_norm_kind(ord, ndim(x), axis)
    kind = plan[0]
    axes = plan[1]
    if kind == "frobenius":
        return sqrt(sum(multiply(x, x), axis=axes, keepdims=keepdims))
    if length(axes) == 1:
        return _vector_norm(x, kind, axes[0], ord, keepdims)
    r = _matrix_norm(x, kind, axes)
    if keepdims:
        r = reshape(r, static_reduced_shape(shape(x), axes, True))
    return r


def _vector_norm(x, kind, axis, ord, keepdims):
    """The vector norm `kind` of x along one axis."""
    # NumPy computes vector norms in floating point (float64 for ints)
    a = multiply(absolute(x), 1.0)
    if kind == "vector-inf":
        return max(a, axis=axis, keepdims=keepdims)
    if kind == "vector--inf":
        return min(a, axis=axis, keepdims=keepdims)
    if kind == "vector-0":
        nonzero = astype(logical_not(equal(a, 0)), dtype_of(a))
        return sum(nonzero, axis=axis, keepdims=keepdims)
    if kind == "vector-1":
        return sum(a, axis=axis, keepdims=keepdims)
    if kind == "vector-2":
        return sqrt(sum(multiply(a, a), axis=axis, keepdims=keepdims))
    return power(sum(power(a, ord), axis=axis, keepdims=keepdims), divide(1.0, ord))


def _matrix_norm(x, kind, axes):
    """The matrix norm `kind` of x over the axis pair `axes` (reduced away)."""
    row = axes[0]
    col = axes[1]
    if kind == "matrix-1":
        return max(sum(absolute(x), axis=row, keepdims=True), axis=axes)
    if kind == "matrix--1":
        return min(sum(absolute(x), axis=row, keepdims=True), axis=axes)
    if kind == "matrix-inf":
        return max(sum(absolute(x), axis=col, keepdims=True), axis=axes)
    if kind == "matrix--inf":
        return min(sum(absolute(x), axis=col, keepdims=True), axis=axes)
    s = svd(_move_pair_last(x, row, col), compute_uv=False)
    if kind == "matrix-2":
        return max(s, axis=-1)
    if kind == "matrix--2":
        return min(s, axis=-1)
    return sum(s, axis=-1)


def _move_pair_last(x, row, col):
    """x with axes row, col moved to the last two positions."""
    return moveaxis(x, (row, col), (-2, -1))


def vector_norm(x, axis=None, keepdims=False, ord=2):
    """numpy.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)."""
    if axis is None:
        r = norm(reshape(x, (-1,)), ord, 0)
        if keepdims:
            r = reshape(r, static_reduced_shape(shape(x), None, True))
        return r
    return norm(x, ord, axis, keepdims)


def matrix_norm(x, keepdims=False, ord="fro"):
    """numpy.linalg.matrix_norm(x, keepdims=keepdims, ord=ord) over the last two axes."""
    return norm(x, ord, (-2, -1), keepdims)


def eigvalsh(a, UPLO="L"):
    """numpy.linalg.eigvalsh(a, UPLO) == eigh(a, UPLO)[0]."""
    return eigh(a, UPLO)[0]


def svdvals(x):
    """numpy.linalg.svdvals(x) == svd(x, compute_uv=False)."""
    return svd(x, compute_uv=False)


def pinv(a, rcond=None, hermitian=False):
    """numpy.linalg.pinv(a, rcond): pseudo-inverse through the SVD."""
    if rcond is None:
        rcond = static_eps_cutoff(shape(a), dtype_of(a))
    usv = svd(a, full_matrices=False)
    s = usv[1]
    keep = greater(s, multiply(max(s, axis=-1, keepdims=True), rcond))
    # 1 / s only where kept: the unused branch must not divide by zero
    s_inv = where(keep, divide(1.0, where(keep, s, 1.0)), 0.0)
    v_scaled = multiply(matrix_transpose(usv[2]), reshape(s_inv, _row_shape(s_inv)))
    return matmul(v_scaled, matrix_transpose(usv[0]))


def _row_shape(s):
    """Shape putting s's last axis on the columns of a matrix stack."""
    return static_expand_dims_shape(shape(s), -2)


def matrix_power(a, n):
    """numpy.linalg.matrix_power(a, n) for a static integer n."""
    if n == 0:
        return copy(broadcast_to(eye(shape(a)[-1], dtype=dtype_of(a)), shape(a)))
    if n < 0:
        a = inv(a)
        n = -n
    result = a
    for i in range(n - 1):
        result = matmul(result, a)
    return result


def multi_dot(arrays):
    """numpy.linalg.multi_dot(arrays): chained matmul, left to right."""
    result = arrays[0]
    for i in range(1, length(arrays)):
        result = matmul(result, arrays[i])
    return result


def matrix_rank(A, tol=None, hermitian=False, rtol=None):
    """numpy.linalg.matrix_rank(A, tol) for stacks of matrices: singular values above tol."""
    s = svd(A, compute_uv=False)
    if tol is None:
        tol = multiply(max(s, axis=-1, keepdims=True), static_eps_cutoff(shape(A), dtype_of(s)))
    return count_nonzero(greater(s, tol), axis=-1)

