"""Reduction and scan primitives: sum, prod, max, min, argmax, argmin, any,
all, cumsum, cumprod.

Owns their eager kernels and shape/dtype rules (`axis` may be None, an int
or a tuple; `keepdims` as in NumPy).  `mean`, `var`, `std`, `ptp`, ... are
compositions in `cotan.numpy`; the adjoint helper `expand_reduced` lives in
`adjoint_helpers`.  Must not hold derivative, batching or lowering rules.
"""

import numpy as np

from ..codegen.abstract import ShapedArray, shape_of
from .numeric_rules import as_dtype, probe_dtype, reduction_rule, normalize_axis, any_abstract
from .table import primitive


def _sum(x, axis=None, keepdims=False, dtype=None):
    """sum(x, axis=None, keepdims=False, dtype=None) == numpy.sum(x, axis, dtype, keepdims=keepdims)."""
    return np.sum(x, axis=_axis(axis), dtype=as_dtype(dtype), keepdims=keepdims)


def _prod(x, axis=None, keepdims=False, dtype=None):
    """prod(x, axis=None, keepdims=False, dtype=None) == numpy.prod(x, axis, dtype, keepdims=keepdims)."""
    return np.prod(x, axis=_axis(axis), dtype=as_dtype(dtype), keepdims=keepdims)


def _max(x, axis=None, keepdims=False):
    """max(x, axis=None, keepdims=False) == numpy.max(x, axis, keepdims=keepdims) (numpy.amax)."""
    return np.max(x, axis=_axis(axis), keepdims=keepdims)


def _min(x, axis=None, keepdims=False):
    """min(x, axis=None, keepdims=False) == numpy.min(x, axis, keepdims=keepdims) (numpy.amin)."""
    return np.min(x, axis=_axis(axis), keepdims=keepdims)


def _argmax(x, axis=None, keepdims=False):
    """argmax(x, axis=None, keepdims=False) == numpy.argmax(x, axis, keepdims=keepdims)."""
    return np.argmax(x, axis=axis, keepdims=keepdims)


def _argmin(x, axis=None, keepdims=False):
    """argmin(x, axis=None, keepdims=False) == numpy.argmin(x, axis, keepdims=keepdims)."""
    return np.argmin(x, axis=axis, keepdims=keepdims)


def _any(x, axis=None, keepdims=False):
    """any(x, axis=None, keepdims=False) == numpy.any(x, axis, keepdims=keepdims)."""
    return np.any(x, axis=_axis(axis), keepdims=keepdims)


def _all(x, axis=None, keepdims=False):
    """all(x, axis=None, keepdims=False) == numpy.all(x, axis, keepdims=keepdims)."""
    return np.all(x, axis=_axis(axis), keepdims=keepdims)


def _axis(axis):
    # generated code may hand a list where NumPy wants a tuple of axes
    return tuple(axis) if isinstance(axis, list) else axis


sum = primitive("sum", abstract_eval=reduction_rule(_sum))(_sum)  # noqa: A001
prod = primitive("prod", abstract_eval=reduction_rule(_prod))(_prod)
max = primitive("max", abstract_eval=reduction_rule(_max))(_max)  # noqa: A001
min = primitive("min", abstract_eval=reduction_rule(_min))(_min)  # noqa: A001
argmax = primitive("argmax", abstract_eval=reduction_rule(_argmax), differentiable=False)(_argmax)
argmin = primitive("argmin", abstract_eval=reduction_rule(_argmin), differentiable=False)(_argmin)
any = primitive("any", abstract_eval=reduction_rule(_any), differentiable=False)(_any)  # noqa: A001
all = primitive("all", abstract_eval=reduction_rule(_all), differentiable=False)(_all)  # noqa: A001


def _scan_rule(impl):
    def rule(x, axis=None, dtype=None):
        if not any_abstract((x,)):
            return impl(x, axis=axis, dtype=dtype)
        shp = shape_of(x)
        if axis is None:
            n = 1
            for d in shp:
                n *= d
            out_shape = (n,)
        else:
            normalize_axis(axis, len(shp))
            out_shape = tuple(shp)
        dt = probe_dtype(impl, x, axis=None if axis is None else axis, dtype=dtype)
        return ShapedArray(out_shape, dt)
    rule.__name__ = f"scan_rule({impl.__name__})"
    return rule


def _cumsum(x, axis=None, dtype=None):
    """cumsum(x, axis=None, dtype=None) == numpy.cumsum(x, axis, dtype)."""
    return np.cumsum(x, axis=axis, dtype=as_dtype(dtype))


def _cumprod(x, axis=None, dtype=None):
    """cumprod(x, axis=None, dtype=None) == numpy.cumprod(x, axis, dtype)."""
    return np.cumprod(x, axis=axis, dtype=as_dtype(dtype))


cumsum = primitive("cumsum", abstract_eval=_scan_rule(_cumsum))(_cumsum)
cumprod = primitive("cumprod", abstract_eval=_scan_rule(_cumprod))(_cumprod)
