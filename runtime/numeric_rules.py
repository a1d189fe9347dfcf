"""Shape/dtype rule builders shared by the numeric primitive modules.

Owns the small vocabulary the numeric primitives' `abstract_eval`s are
written in: tree-mapping of abstract values to stand-ins, the elementwise
rule (shape by broadcasting, dtype by probing NumPy on 0-d stand-ins), the
reduction rule, `by_running` (run the kernel on stand-ins, for ops whose
output shape does not depend on values) and axis normalization.  It must not
register primitives and must not import the stages; `codegen.abstract`
stays the owner of `ShapedArray` and promotion.
"""

import numpy as np

from ..codegen.abstract import abstractify, ShapedArray, all_weak, dummy_value, shape_of
from ..tree_util import is_user_node, node_children, rebuild_like

# -- trees of abstract values -------------------------------------------------


def tree_map(fn, x):
    """Apply `fn` to the leaves of nested tuples, lists and dicts (and user
    pytree nodes: namedtuples, dataclasses, registered classes, which keep
    their type)."""
    t = type(x)
    if t is tuple:
        return tuple(tree_map(fn, v) for v in x)
    if t is list:
        return [tree_map(fn, v) for v in x]
    if t is dict:
        return {k: tree_map(fn, v) for k, v in x.items()}
    if t in _LEAF_TYPES:
        return fn(x)
    if is_user_node(x):
        return rebuild_like(x, [tree_map(fn, v) for v in node_children(x)[0]])
    if isinstance(x, tuple):
        return tuple(tree_map(fn, v) for v in x)
    if isinstance(x, list):
        return [tree_map(fn, v) for v in x]
    if isinstance(x, dict):
        return {k: tree_map(fn, v) for k, v in x.items()}
    return fn(x)


_LEAF_TYPES = {np.ndarray, float, int, bool, complex, ShapedArray, type(None), str}


def tree_leaves(x):
    out = []
    tree_map(out.append, x)
    return out


def any_abstract(args, params=None):
    leaves = tree_leaves(list(args)) + tree_leaves(list((params or {}).values()))
    return any(isinstance(v, ShapedArray) for v in leaves)


def abstract_result(out, other=None):
    """Abstract every array leaf of a result computed on stand-ins.

    `other` is the same call's result on different stand-ins for the weak
    scalar inputs: a Python number that differs between the two was computed
    from a run-time value (a weak scalar passed through, say) and is
    abstracted too; one that agrees is static (a length, a shape entry).
    """
    def leaf(v, w=None):
        if isinstance(v, (np.ndarray, np.generic)):
            return ShapedArray(np.shape(v), v.dtype)
        if isinstance(v, (bool, int, float, complex)) and other is not None and not (
                type(w) is type(v) and w == v):
            return abstractify(v)
        return v
    return _map2(leaf, out, other)


def _map2(fn, x, y):
    """tree_map over `x`, pairing each leaf with `y`'s leaf where the two
    trees have the same structure (None where they do not)."""
    if isinstance(x, (tuple, list)):
        ys = y if isinstance(y, (tuple, list)) and len(y) == len(x) else [None] * len(x)
        return type(x)(_map2(fn, a, b) for a, b in zip(x, ys))
    if isinstance(x, dict):
        ys = y if isinstance(y, dict) else {}
        return {k: _map2(fn, v, ys.get(k)) for k, v in x.items()}
    return fn(x, y)


def _weak_scalar_inputs(args, params):
    return any(isinstance(a, ShapedArray) and a.weak_type and a.shape == ()
               for a in tree_leaves(list(args) + list(params.values())))


def _other_dummy(x):
    """A second stand-in for weak scalars (1 instead of 0)."""
    if isinstance(x, ShapedArray) and x.weak_type and x.shape == ():
        return {"b": True, "i": 1, "f": 1.0}.get(x.dtype.kind, 1j)
    return dummy_value(x)


def _small_dummy(x):
    """A 0-d stand-in of the abstract value's dtype (for dtype probes)."""
    if isinstance(x, ShapedArray):
        if x.weak_type and x.shape == ():
            return dummy_value(x)
        return np.ones((), x.dtype)
    return x


def unit_dummy(x):
    """A stand-in of the same rank with every dimension 1 (for dtype probes
    of ops that need the rank, e.g. reductions with an axis)."""
    if isinstance(x, ShapedArray):
        if x.weak_type and x.shape == ():
            return dummy_value(x)
        return np.ones((1,) * x.ndim, x.dtype)
    return x


def by_running(impl, always_abstract=False):
    """Shape/dtype rule: run `impl` on zero-strided stand-ins (descending into
    lists and tuples of arguments, unlike `codegen.abstract.eval_by_running`).

    Right for primitives whose output shape and dtype do not depend on input
    values.  An all-concrete call is constant-folded unless `always_abstract`
    (creation primitives: folding `zeros((4096, 4096))` would bake a large
    constant into compiled code).
    """
    def rule(*args, **params):
        concrete = not any_abstract(args, params)
        with np.errstate(all="ignore"):
            out = impl(*tree_map(dummy_value, list(args)),
                       **{k: tree_map(dummy_value, v) for k, v in params.items()})
        if concrete and not always_abstract:
            return out
        other = None
        if _weak_scalar_inputs(args, params):
            try:
                with np.errstate(all="ignore"):
                    other = impl(*tree_map(_other_dummy, list(args)),
                                 **{k: tree_map(_other_dummy, v) for k, v in params.items()})
            except Exception:
                other = None
        return abstract_result(out, other)
    rule.__name__ = f"by_running({impl.__name__})"
    return rule


def concrete_only(impl, why):
    """Rule for primitives whose output shape depends on input values: they
    fold when every input is concrete and are refused otherwise."""
    def rule(*args, **params):
        if any_abstract(args, params):
            raise TypeError(f"{impl.__name__}: {why}")
        return impl(*args, **params)
    rule.__name__ = f"concrete_only({impl.__name__})"
    return rule


# -- elementwise --------------------------------------------------------------


def elementwise_rule(impl):
    """Rule of a broadcasting elementwise primitive.

    Shape: the broadcast of the array operands.  dtype: whatever NumPy's
    kernel gives on 0-d stand-ins of the operands' dtypes, which covers
    int -> float for `sin`, -> bool for comparisons and NEP 50 weak scalars
    in one place.  Non-array keyword parameters (`decimals`) pass through.
    """
    def rule(*args, **params):
        if not any_abstract(args, params):
            with np.errstate(all="ignore"):
                return impl(*args, **params)
        shape = tuple(np.broadcast_shapes(*[shape_of(a) for a in args]))
        with np.errstate(all="ignore"):
            probe = impl(*[_small_dummy(a) for a in args], **params)
        dtype = np.result_type(probe)
        return ShapedArray(shape, dtype, weak_type=all_weak(*args))
    rule.__name__ = f"elementwise_rule({impl.__name__})"
    return rule


# -- axes ---------------------------------------------------------------------


def normalize_axis(axis, ndim):
    """One axis in [0, ndim) (NumPy's negative-axis convention)."""
    axis = int(axis)
    if not -ndim <= axis < max(ndim, 1):
        raise np.exceptions.AxisError(axis, ndim)
    return axis % max(ndim, 1)


def normalize_axes(axis, ndim):
    """A sorted tuple of axes; None means every axis."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(sorted(normalize_axis(a, ndim) for a in axis))
        if len(set(axes)) != len(axes):
            raise ValueError("repeated axis")
        return axes
    return (normalize_axis(axis, ndim),)


def reduced_shape(shape, axis, keepdims):
    axes = normalize_axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def reduction_rule(impl):
    """Rule of `impl(x, axis=None, keepdims=False, ...)`: shape from the axes,
    dtype by probing `impl` on an all-ones stand-in of the same rank."""
    def rule(x, axis=None, keepdims=False, **params):
        if not any_abstract((x,), params):
            return impl(x, axis=axis, keepdims=keepdims, **params)
        shape = reduced_shape(shape_of(x), axis, keepdims)
        probe = impl(unit_dummy(x), axis=axis, keepdims=keepdims, **params)
        return ShapedArray(shape, np.result_type(probe))
    rule.__name__ = f"reduction_rule({impl.__name__})"
    return rule


def probe_dtype(impl, *args, **params):
    """dtype of `impl` on all-ones stand-ins of rank-preserving unit shape."""
    with np.errstate(all="ignore"):
        return np.result_type(impl(*[unit_dummy(a) for a in args], **params))


def as_dtype(dtype):
    """Accept 'float32', np.float32, np.dtype('float32') or None alike."""
    return None if dtype is None else np.dtype(dtype)
