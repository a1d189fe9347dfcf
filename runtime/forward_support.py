"""Primitives that forward-mode (JVP) code emits, not users.

Owns `tangent_zeros`, the materialised zero tangent of a value of any
pytree structure, emitted only where a symbolic zero must become a value:
at the merge points of control flow (a tangent defined on one path only),
inside containers whose other elements have tangents, and for outputs whose
tangent is zero.  It is not differentiable (a zero has no derivative), so it
needs no JVP or VJP rule.  Must not import the stages.
"""

import numpy as np

from ..codegen.abstract import ShapedArray
from .table import primitive
from .numeric_rules import tree_map


def _zero_leaf(x):
    if isinstance(x, (np.ndarray, np.generic)):
        dt = x.dtype if np.issubdtype(x.dtype, np.inexact) else np.float64
        return np.zeros(np.shape(x), dt)
    if isinstance(x, (bool, int, float)):
        return 0.0
    if isinstance(x, complex):
        return 0j
    return None  # strings, slices, None: no tangent


def _zeros_tree(x, leaf):
    return tree_map(leaf, x)


def _tangent_zeros(x):
    """tangent_zeros(x) == a pytree like `x` of zeros: float zeros shaped like
    each array leaf (inexact dtypes kept, others float64), 0.0 for Python
    numbers, None for non-numeric leaves."""
    return _zeros_tree(x, _zero_leaf)


def _abstract_zero_leaf(x):
    if isinstance(x, ShapedArray):
        dt = x.dtype if np.issubdtype(x.dtype, np.inexact) else np.dtype(np.float64)
        return ShapedArray(tuple(x.shape), dt)
    return _zero_leaf(x)


tangent_zeros = primitive(
    "tangent_zeros", differentiable=False,
    abstract_eval=lambda x: _zeros_tree(x, _abstract_zero_leaf))(_tangent_zeros)
