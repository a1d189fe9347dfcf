"""The numeric primitives: importing this module registers all of them.

Owns nothing but the grouping: the primitives themselves live in
`elementwise` (ufuncs, where/select), `reductions` (sum ... cumprod),
`shape_ops` (reshape ... nonzero), `linalg_ops` (matmul, dot, einsum and
LAPACK kernels), `creation` (zeros ... copy), `adjoint_helpers` (what rules
emit: unbroadcast, expand_reduced, add_any, stop_gradient) and
`static_helpers` (static shape arithmetic for compositions).  Every name
exported here is a `Primitive` whose name is the identifier generated code
calls.  The structural primitives (getitem, shape, ...) stay in
`structural`; derivative, batching and lowering rules stay in the stages.
"""

from . import adjoint_helpers, creation, elementwise, linalg_ops, reductions, shape_ops
from . import static_helpers
from .table import Primitive

_MODULES = (elementwise, reductions, shape_ops, linalg_ops, creation, adjoint_helpers,
            static_helpers)

#: name -> Primitive, for every primitive registered by the numeric modules
NUMERIC_PRIMITIVES = {}
for _module in _MODULES:
    for _value in vars(_module).values():
        if isinstance(_value, Primitive):
            NUMERIC_PRIMITIVES[_value.name] = _value
globals().update(NUMERIC_PRIMITIVES)
del _module, _value

__all__ = sorted(NUMERIC_PRIMITIVES)
