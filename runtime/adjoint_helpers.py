"""Primitives that derivative and batching rules emit, not users.

Owns `unbroadcast` (adjoint of broadcasting; a real operand keeps the real
part of a complex cotangent), `imag_cotangent` (the VJP of `imag`), `expand_reduced` (adjoint of
a reduction's axis removal), `add_any` (adjoint accumulation over pytrees
with None as zero) and `stop_gradient`.  Their own derivative and batching
rules belong to autodiff/; this module only gives the eager kernel and the
shape rule.  Must not import the stages.
"""

import numpy as np

from ..codegen.abstract import ShapedArray, dtype_of, shape_of
from .numeric_rules import any_abstract, elementwise_rule, normalize_axes
from .table import primitive
from ..tree_util import is_user_node, node_children, rebuild_like


def _unbroadcast_axes(gshape, target):
    lead = len(gshape) - len(target)
    if lead < 0:
        raise ValueError(f"unbroadcast: cotangent shape {gshape} has fewer "
                         f"dimensions than the operand's {target}")
    return tuple(range(lead)) + tuple(lead + i for i, d in enumerate(target)
                                      if d == 1 and gshape[lead + i] != 1)


def _is_complex(v):
    return np.asarray(v).dtype.kind == "c" if not isinstance(v, ShapedArray) \
        else np.dtype(v.dtype).kind == "c"


def real_for(g, x):
    """`g`, or its real part when `g` is complex and `x` is not.

    A cotangent c of a complex value pairs with a tangent dz as Re(c dz)
    (JAX's convention); for a real input dz is real, so only Re(c) carries
    its derivative.  Every rule whose output may be complex for a real
    operand (broadcasting products, matmul, einsum, casts) goes through this,
    so a real input always gets a real cotangent."""
    if isinstance(g, (complex, np.complexfloating)) or (
            isinstance(g, np.ndarray) and g.dtype.kind == "c"):
        if not _is_complex(x):
            return np.ascontiguousarray(np.real(g)) if isinstance(g, np.ndarray) else np.real(g)
    return g


def _unbroadcast(g, x):
    """unbroadcast(g, x) == g summed over the axes numpy broadcasting added to x, reshaped to numpy.shape(x) (its real part for a real x)."""
    g = real_for(g, x)
    target = np.shape(x)
    if np.shape(g) == target:
        return g
    axes = _unbroadcast_axes(np.shape(g), target)
    g = np.asarray(g)
    # keep the cotangent's dtype (np.sum would widen int32 and bool)
    return np.sum(g, axis=axes, dtype=g.dtype, keepdims=True).reshape(target)


def _unbroadcast_rule(g, x):
    if not any_abstract((g, x)):
        return _unbroadcast(g, x)
    target = tuple(shape_of(x))
    dt = np.dtype(dtype_of(g))
    if dt.kind == "c" and not _is_complex(x):
        dt = np.real(np.zeros((), dt)).dtype
    if tuple(shape_of(g)) == target and dt == np.dtype(dtype_of(g)):
        return g
    _unbroadcast_axes(tuple(shape_of(g)), target)
    return ShapedArray(target, dt)


unbroadcast = primitive("unbroadcast", abstract_eval=_unbroadcast_rule)(_unbroadcast)


def _imag_cotangent(ct, x):
    """imag_cotangent(ct, x) == -1j * ct for a complex x, zeros for a real x (the VJP of imag)."""
    if _is_complex(x):
        return np.multiply(ct, -1j)
    # a cotangent: zeros of ct's float type (an integer ct promotes, as the
    # compiled kernel computes it)
    return np.zeros(np.shape(ct), np.result_type(np.real(ct), 0.0)) if np.ndim(ct) \
        else 0.0 * np.real(ct)


imag_cotangent = primitive("imag_cotangent",
                           abstract_eval=elementwise_rule(_imag_cotangent))(_imag_cotangent)


def _expand_reduced(g, shape, axis=None, keepdims=False):
    """expand_reduced(g, shape, axis, keepdims) == numpy.broadcast_to(g with the reduced axes re-inserted, shape)."""
    if not keepdims:
        g = np.expand_dims(g, normalize_axes(axis, len(shape)))
    return np.broadcast_to(g, tuple(shape))


def _expand_reduced_rule(g, shape, axis=None, keepdims=False):
    if not any_abstract((g,)):
        return _expand_reduced(g, shape, axis, keepdims)
    return ShapedArray(tuple(shape), dtype_of(g))


expand_reduced = primitive("expand_reduced",
                           abstract_eval=_expand_reduced_rule)(_expand_reduced)


def _add_any_tree(a, b, add_leaves):
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, (tuple, list)) or is_user_node(a):
        # namedtuples, dataclasses and registered nodes: child by child
        ca = node_children(a)[0]
        cb = node_children(b)[0] if isinstance(b, (tuple, list)) or is_user_node(b) else None
        if cb is None or len(ca) != len(cb):
            raise TypeError("add_any: the two adjoints have different structures")
        return rebuild_like(a, [_add_any_tree(x, y, add_leaves) for x, y in zip(ca, cb)])
    if isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b):
            raise TypeError("add_any: the two adjoints have different structures")
        return {k: _add_any_tree(a[k], b[k], add_leaves) for k in a}
    return add_leaves(a, b)


def _add_any(a, b):
    """add_any(a, b) == numpy.add over the leaves of two pytrees, None standing for zero."""
    return _add_any_tree(a, b, np.add)


_add_leaves_rule = elementwise_rule(np.add)

add_any = primitive("add_any", abstract_eval=lambda a, b: _add_any_tree(
    a, b, _add_leaves_rule))(_add_any)


def _stop_gradient(x):
    """stop_gradient(x) == x; autodiff treats the result as a constant."""
    return x


stop_gradient = primitive("stop_gradient", abstract_eval=lambda x: x,
                          differentiable=False)(_stop_gradient)
