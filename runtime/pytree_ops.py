"""Primitives reading the fields of user pytree nodes (namedtuples,
dataclasses, registered classes): `getattr_leaf(x, name)` is `x.name`
inside transformed code, and `getattr_adjoint(g, x, name)` its adjoint.

Normalization cannot know whether `p.w` reads an array attribute or a
node's field (the argument's type is known only at the call), so any
attribute that is not an array attribute becomes `getattr_leaf`; its
implementation does `getattr`, and under jit the argument is a
`tree_util.node_aval` (a tuple that answers its fields by name), so the
read is resolved on the typed program's container structure.  Owns these
two primitives only; the rules are in autodiff/pytree_rules.py.  Must not
import the stages.
"""

from .. import tree_util
from ..errors import TransformError
from .reverse_support import _zero_leaf, _zero_leaf_abstract
from .table import primitive


def _getattr_leaf(x, name):
    """getattr_leaf(x, name) == x.name, for a pytree node `x`."""
    try:
        if not tree_util.is_user_node(x):
            raise AttributeError(name)   # arrays: only the attributes normalization maps
        return getattr(x, name)
    except AttributeError:
        raise TransformError(
            f"attribute {name!r} of {_describe(x)} is not supported",
            hint="Read attributes of namedtuples, dataclasses and registered pytree "
                 "nodes, or the array attributes T, dtype, imag, ndim, real, shape, size."
        ) from None


def _describe(x):
    from ..codegen.abstract import ShapedArray
    import numpy as np
    if isinstance(x, (ShapedArray, np.ndarray, np.generic, float, int, complex)):
        return "an array"
    return f"a value of type {type(x).__name__}"


getattr_leaf = primitive("getattr_leaf", abstract_eval=_getattr_leaf)(_getattr_leaf)


def _node_with_field(g, x, name, zero):
    try:
        i = tree_util.field_index(x, name)
    except ValueError:
        i = None    # static data (a meta field, a property): no cotangent flows
    children = tree_util.node_children(x)[0]
    out = [g if k == i else tree_util.tree_map(zero, c) for k, c in enumerate(children)]
    return tree_util.rebuild_like(x, out)


def _getattr_adjoint(g, x, name):
    """getattr_adjoint(g, x, name): the adjoint of `x.name`: a node of x's
    type whose children are zero adjoints but for `g` at that field."""
    return _node_with_field(g, x, name, _zero_leaf)


getattr_adjoint = primitive("getattr_adjoint", abstract_eval=lambda g, x, name: _node_with_field(
    g, x, name, _zero_leaf_abstract))(_getattr_adjoint)


def _dict_keys(d):
    """dict_keys(d) == list(d): the keys of a dict (d.keys(); d.values() and
    d.items() iterate over them).  Keys are structure: no derivative, never
    batched, static under jit."""
    if not isinstance(d, dict):
        raise TransformError(f"keys()/values()/items() of {_describe(d)}: only dicts have them")
    return list(d)


dict_keys = primitive("dict_keys", abstract_eval=_dict_keys, differentiable=False, no_rule={
    "llvm": "a dict's keys are static under jit: the call is folded at compile time"})(_dict_keys)


def _has_key(d, k):
    """has_key(d, k) == (k in d) for a dict `d` (d.get(k, default) reads
    d[k] only where this holds): structure, so static under jit."""
    if not isinstance(d, dict):
        raise TransformError(f".get() of {_describe(d)}: only dicts have it")
    return k in d


has_key = primitive("has_key", abstract_eval=_has_key, differentiable=False, no_rule={
    "llvm": "a dict's keys are static under jit: the call is folded at compile time"})(_has_key)
