"""Normalization: user Python → core form.

Owns `normalize_function`, which runs the named passes

    callables.as_function → parse → check_supported → desugar_control_flow
    → flatten → simplify

(the first step turns partials, bound methods, callable objects and
custom-rule objects into a function to read) and returns a `CoreFunction` (see core_form.py for the grammar).  Flattening
resolves every callee (NumPy, `math`, builtins and array methods become
`cotan.numpy` primitives; Python helpers, `cotan.numpy` compositions and
local functions are inlined), turns operators into primitive calls, nested
expressions into one statement each, and subscript and augmented assignment
into functional updates that keep NumPy's aliasing semantics (see `views.Views`).
Must not differentiate, batch or compile.
"""

import types

import gast

from .syntax import clone
from ..runtime.table import PRIMITIVES
from . import callables
from .desugar import desugar_control_flow
from .flatten_stmt import Flattener, LocalScope
from .names import NameScope
from .parse import unwrap
from .simplify import simplify
from .supported import check_supported, parsed_function  # noqa: F401
from .syntax import Name, Const, Call, Assign  # noqa: F401  (used by the transformations)
from .transform_lock import serialized

class CoreFunction:
    """A function in core form, ready to be printed or transformed.

    `node` is the gast FunctionDef; each statement carries `cotan_origin`,
    the text of the user line it came from.  `captured` maps the names the
    body reads but does not define (constants, arrays captured from globals
    and closures) to their values.
    """

    def __init__(self, name, node, captured, source_fn=None):
        self.name = name
        self.node = node
        self.captured = captured
        self.source_fn = source_fn
        self.signature = None

    @property
    def params(self):
        return [a.id for a in self.node.args.args]


_cache = {}


@serialized
def normalize_function(fn):
    """The core form of `fn` (cached per function and code object).

    `fn` may be any callable callables.as_function reads: a partial, a
    bound method, a callable object, a custom_vjp/custom_jvp object, or a
    NumPy function or primitive cotan knows (`vmap(np.dot)`), treated as a
    one-line function calling it.  `core.signature` is the user-facing
    signature (defaults, keyword-only parameters) of the core's flat
    positional parameters.
    """
    fn = callables.as_function(unwrap(fn))
    key = (fn, getattr(fn, "__code__", None))
    hit = _cache.get(key)
    if hit is not None:
        return hit
    parsed = parsed_function(fn)
    core = _normalize_parsed(parsed)
    core.signature = callables.signature_of(fn, "a transformation") \
        if isinstance(fn, types.FunctionType) else None
    if core.signature is not None and core.signature.flat != core.params \
            and len(core.signature.flat) != len(core.params):
        core.signature = None
    _cache[key] = core
    return core


def _callable_as_function(obj):
    """Kept for callers of the old name: see callables.as_function."""
    return callables.as_function(obj)


def _normalize_parsed(parsed):
    node = clone(parsed.node)
    reserved = set(PRIMITIVES) | {"range", "_"}
    scope = NameScope(reserved)
    fl = Flattener(parsed, scope, captured={}, out=[], inline_stack=(parsed.fn,))
    params = fl.bind_own_params(node)
    node = desugar_control_flow(node, LocalScope(scope, fl))
    body = fl.block(node.body, top=True)
    fn_name = parsed.name if parsed.name.isidentifier() else "lambda_fn"
    fdef = gast.FunctionDef(
        name=fn_name,
        args=gast.arguments(args=[Name(p, store=False) for p in params], posonlyargs=[],
                            vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                            defaults=[]),
        body=body, decorator_list=[], returns=None, type_comment=None, type_params=[])
    for a in fdef.args.args:
        a.ctx = gast.Param()
    simplify(fdef, fl.captured)
    return CoreFunction(fn_name, fdef, fl.captured, source_fn=parsed.fn)


