"""Array creation and conversion primitives.

Owns zeros, ones, zeros_like, ones_like, eye, tri, arange (no derivative:
their values do not depend on differentiable inputs), linspace (linear in
its start and stop, which may be arrays) and the conversions array, astype,
copy (which pass derivatives through).
`full`, `empty`, `identity`, `logspace`, `meshgrid`, ... are compositions in
`cotan.numpy`.  The shape rules of creation primitives always answer
abstractly, so compiled code builds the array instead of embedding a
possibly large constant.  Must not hold derivative, batching or lowering
rules.
"""

import numpy as np

from .numeric_rules import any_abstract, as_dtype, by_running
from .table import primitive


def _static_shape_rule(impl, what):
    """Rule for creation primitives whose output shape comes from static
    arguments: refuse abstract ones with a pointer to the fix."""
    run = by_running(impl, always_abstract=True)

    def rule(*args, **params):
        if any_abstract(args, params):
            raise TypeError(f"{impl.__name__.lstrip('_')}: {what} must be known "
                            "before the call runs (a Python number or a shape), "
                            "not an array computed inside the function")
        return run(*args, **params)
    rule.__name__ = f"static_shape_rule({impl.__name__})"
    return rule


def _zeros(shape, dtype=None):
    """zeros(shape, dtype=None) == numpy.zeros(shape, dtype) (float64 by default)."""
    return np.zeros(shape, as_dtype(dtype))


def _ones(shape, dtype=None):
    """ones(shape, dtype=None) == numpy.ones(shape, dtype) (float64 by default)."""
    return np.ones(shape, as_dtype(dtype))


def _eye(N, M=None, k=0, dtype=None):
    """eye(N, M=None, k=0, dtype=None) == numpy.eye(N, M, k, dtype) (float64 by default)."""
    return np.eye(N, M, k, dtype=as_dtype(dtype) or np.float64)


def _tri(N, M=None, k=0, dtype=None):
    """tri(N, M=None, k=0, dtype=None) == numpy.tri(N, M, k, dtype) (float64 by default)."""
    return np.tri(N, M, k, dtype=as_dtype(dtype) or np.float64)


def _arange(start, stop=None, step=None, dtype=None):
    """arange(start, stop=None, step=None, dtype=None) == numpy.arange(start, stop, step, dtype)."""
    return np.arange(start, stop, step, dtype=as_dtype(dtype))


def _linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0) == numpy.linspace(...)."""
    return np.linspace(start, stop, num, endpoint, retstep, as_dtype(dtype), axis)


zeros = primitive("zeros", differentiable=False,
                  abstract_eval=_static_shape_rule(_zeros, "the shape"))(_zeros)
ones = primitive("ones", differentiable=False,
                 abstract_eval=_static_shape_rule(_ones, "the shape"))(_ones)
eye = primitive("eye", differentiable=False,
                abstract_eval=_static_shape_rule(_eye, "the sizes"))(_eye)
tri = primitive("tri", differentiable=False,
                abstract_eval=_static_shape_rule(_tri, "the sizes"))(_tri)
arange = primitive("arange", differentiable=False,
                   abstract_eval=_static_shape_rule(_arange, "start, stop and step"))(_arange)
# start/stop may be arrays (NumPy allows it); only `num` fixes the length
linspace = primitive("linspace",
                     abstract_eval=by_running(_linspace, always_abstract=True))(_linspace)


def _zeros_like(a, dtype=None, shape=None):
    """zeros_like(a, dtype=None, shape=None) == numpy.zeros_like(a, dtype, shape=shape)."""
    return np.zeros_like(a, as_dtype(dtype), shape=shape)


def _ones_like(a, dtype=None, shape=None):
    """ones_like(a, dtype=None, shape=None) == numpy.ones_like(a, dtype, shape=shape)."""
    return np.ones_like(a, as_dtype(dtype), shape=shape)


zeros_like = primitive("zeros_like", differentiable=False,
                       abstract_eval=by_running(_zeros_like, always_abstract=True))(_zeros_like)
ones_like = primitive("ones_like", differentiable=False,
                      abstract_eval=by_running(_ones_like, always_abstract=True))(_ones_like)


def _array(obj, dtype=None, copy=True, ndmin=0):
    """array(obj, dtype=None, copy=True, ndmin=0) == numpy.array(obj, dtype, copy=copy, ndmin=ndmin)."""
    return np.array(obj, as_dtype(dtype), copy=copy, ndmin=ndmin)


def _astype(x, dtype, copy=True):
    """astype(x, dtype, copy=True) == numpy.astype(x, dtype, copy=copy) (Python scalars accepted)."""
    return np.asarray(x).astype(as_dtype(dtype), copy=copy)


def _copy(x):
    """copy(x) == numpy.copy(x) (a fresh writable array)."""
    return np.array(x, copy=True)


# np.array([x, y]) on abstract x, y is a stack: by_running descends into
# the list, so the result is abstract exactly when some element is.
array = primitive("array", abstract_eval=by_running(_array))(_array)
astype = primitive("astype", abstract_eval=by_running(_astype))(_astype)
copy = primitive("copy", abstract_eval=by_running(_copy))(_copy)

