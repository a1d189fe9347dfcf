"""LLVM lowerings of `print` and `print_lanes`: printing from compiled code.

Owns the `llvm` lowerings of the two effectful print primitives and of
`strformat` (f-strings), whose run-time result only print can use.  Compiled
code cannot format NumPy values the way Python does, so it calls back into
Python: `void cotan.print(const char *spec, void **data)`, where `spec` is
a JSON text compiled into the object (so a disk-cache hit in another
process carries it too) naming the primitive, its static arguments (as
Python literals) and, for each run-time array or scalar, its dtype, shape
and index into `data` (pointers to contiguous copies).  The callback
(llvm/binding.py) rebuilds the arguments and runs the primitive's own
Python implementation, so what is printed is exactly what the eager call
prints, in program order with the rest of Python's output.  Ahead-of-time
libraries have no Python to call: there the lowering raises
MissingRuleError.  Adds its rules to lowerings.LOWERINGS.  Must not walk programs nor bind LLVM.
"""

import ast
import json

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError
from .lowerings import LOWERINGS, lowering, register
from .linalg import entry_alloca
from .values import I64, PTR, Array, Lazy, Scalar

CALLBACK = "cotan.print"


def _static(prim, v):
    """The Python literal text of a compile-time value."""
    if isinstance(v, np.generic):
        v = v.item()
    text = repr(v)
    try:
        if ast.literal_eval(text) == v or v != v:
            return text
    except (ValueError, SyntaxError, TypeError):
        pass
    raise MissingRuleError(prim, "llvm", f"the value {text} cannot be printed from compiled "
                           "code (only numbers, strings, arrays and containers of them)")


def _spec(em, prim, v, data):
    """JSON-able description of argument value `v`; run-time arrays append
    their contiguous data pointer to `data`."""
    if isinstance(v, (tuple, list)):
        return {"seq": "tuple" if isinstance(v, tuple) else "list",
                "items": [_spec(em, prim, x, data) for x in v]}
    if isinstance(v, dict):
        return {"keys": [_static(prim, k) for k in v],
                "items": [_spec(em, prim, x, data) for x in v.values()]}
    if isinstance(v, Formatted):
        return {"format": v.fmt, "items": [_spec(em, prim, x, data) for x in v.args]}
    if isinstance(v, (Array, Scalar, Lazy)):
        arr = em.contiguous(v)
        data.append(arr.ptr)
        out = {"array": arr.dtype.str, "shape": list(arr.shape), "at": len(data) - 1}
        if isinstance(v, Scalar) and v.weak:
            out["python"] = True        # a Python number where eager code has one
        return out
    return {"static": _static(prim, v)}


class Formatted:
    """The run-time value of `strformat(fmt, *args)` (an f-string of array
    values): kept unformatted until a print formats it in Python."""

    def __init__(self, fmt, args):
        self.fmt, self.args = fmt, list(args)


@lowering("strformat")
def _strformat(em, s, args, kwargs):
    # inference refuses every other use of the result (abstract.RuntimeText)
    return Formatted(args[0], args[1:])


@lowering("print", "print_lanes")
def _print(em, s, args, kwargs):
    if not em.printing:
        raise MissingRuleError(s.prim, "llvm", "ahead-of-time libraries cannot print (there "
                               "is no Python to print with); remove the print or call the "
                               "function through cotan.jit")
    data = []
    spec = {"prim": s.prim,
            "args": [_spec(em, s.prim, v, data) for v in args],
            "kwargs": {k: _static(s.prim, v) for k, v in kwargs.items()}}
    b = em.b
    table = entry_alloca(em, ir.ArrayType(PTR, max(1, len(data))))
    for k, p in enumerate(data):
        b.store(b.bitcast(p, PTR), b.gep(table, [ir.Constant(I64, 0), ir.Constant(I64, k)]))
    fnty = ir.FunctionType(ir.VoidType(), [PTR, ir.PointerType(PTR)])
    fn = em.module.globals.get(CALLBACK) or ir.Function(em.module, fnty, CALLBACK)
    b.call(fn, [em.cstring(json.dumps(spec)),
                b.gep(table, [ir.Constant(I64, 0), ir.Constant(I64, 0)])])
    return None


register()
