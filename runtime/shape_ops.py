"""Shape, gather and ordering primitives.

Owns the array-restructuring kernels that are not formulas of others:
reshape, transpose, broadcast_to, concatenate, flip, diagonal, take,
take_along_axis, sort, argsort, searchsorted and nonzero.  Everything that
is one of these plus static shape arithmetic (`ravel`, `squeeze`,
`moveaxis`, `stack`, `tile`, `roll`, `split`, ...) is a composition in
`cotan.numpy`, with the arithmetic in `static_helpers`.  Must not hold
derivative, batching or lowering rules.
"""

import numpy as np

from .numeric_rules import by_running, concrete_only
from .table import primitive


def _tuple_axes(axes):
    return tuple(axes) if isinstance(axes, list) else axes


def _reshape(x, shape):
    """reshape(x, shape) == numpy.reshape(x, shape)."""
    return np.reshape(x, _tuple_axes(shape))


def _transpose(x, axes=None):
    """transpose(x, axes=None) == numpy.transpose(x, axes)."""
    return np.transpose(x, _tuple_axes(axes))


def _broadcast_to(x, shape):
    """broadcast_to(x, shape) == numpy.broadcast_to(x, shape) (a read-only view)."""
    return np.broadcast_to(x, _tuple_axes(shape))


def _concatenate(arrays, axis=0, dtype=None):
    """concatenate(arrays, axis=0, dtype=None) == numpy.concatenate(arrays, axis, dtype=dtype)."""
    return np.concatenate(arrays, axis=axis, dtype=dtype)


def _flip(x, axis=None):
    """flip(x, axis=None) == numpy.flip(x, axis)."""
    return np.flip(x, _tuple_axes(axis))


def _diagonal(x, offset=0, axis1=0, axis2=1):
    """diagonal(x, offset=0, axis1=0, axis2=1) == numpy.diagonal(x, offset, axis1, axis2)."""
    return np.diagonal(x, offset, axis1, axis2)


def _take(x, indices, axis=None):
    """take(x, indices, axis=None) == numpy.take(x, indices, axis)."""
    return np.take(x, indices, axis=axis)


def _take_along_axis(x, indices, axis=-1):
    """take_along_axis(x, indices, axis=-1) == numpy.take_along_axis(x, indices, axis)."""
    return np.take_along_axis(x, indices, axis)


def _sort(x, axis=-1):
    """sort(x, axis=-1) == numpy.sort(x, axis)."""
    return np.sort(x, axis)


def _argsort(x, axis=-1):
    """argsort(x, axis=-1) == numpy.argsort(x, axis)."""
    return np.argsort(x, axis)


def _searchsorted(a, v, side="left"):
    """searchsorted(a, v, side='left') == numpy.searchsorted(a, v, side)."""
    return np.searchsorted(a, v, side)


def _nonzero(x):
    """nonzero(x) == numpy.nonzero(x), a tuple of index arrays."""
    return np.nonzero(x)


reshape = primitive("reshape", abstract_eval=by_running(_reshape))(_reshape)
transpose = primitive("transpose", abstract_eval=by_running(_transpose))(_transpose)
broadcast_to = primitive("broadcast_to", abstract_eval=by_running(_broadcast_to))(_broadcast_to)
concatenate = primitive("concatenate", abstract_eval=by_running(_concatenate))(_concatenate)
flip = primitive("flip", abstract_eval=by_running(_flip))(_flip)
diagonal = primitive("diagonal", abstract_eval=by_running(_diagonal))(_diagonal)
take = primitive("take", abstract_eval=by_running(_take))(_take)
take_along_axis = primitive("take_along_axis",
                            abstract_eval=by_running(_take_along_axis))(_take_along_axis)
sort = primitive("sort", abstract_eval=by_running(_sort))(_sort)
argsort = primitive("argsort", abstract_eval=by_running(_argsort),
                    differentiable=False)(_argsort)
searchsorted = primitive("searchsorted", abstract_eval=by_running(_searchsorted),
                         differentiable=False)(_searchsorted)
# The number of nonzeros is a value, so nonzero's output shape is unknown
# until run time: it folds on constants and is refused on abstract inputs.
nonzero = primitive("nonzero", differentiable=False, abstract_eval=concrete_only(
    _nonzero, "output shape depends on the input's values; not supported under jit"))(_nonzero)
