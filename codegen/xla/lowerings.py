"""The XLA backend's lowering table: primitive → StableHLO.

Owns `LOWERINGS` (primitive name -> `rule(em, stmt, args, kwargs)` returning
an `emit.SV`, a container of them or a static value) and the declared
reasons for the primitives this backend does not lower (`_NO_RULE`, put in
each primitive's `no_rule["xla"]` so the reason reaches the user's error).
`register()` fills `Primitive.lowerings["xla"]`.  Rules are written in the
emitter's helpers (emit.py); they must not walk programs.
"""

import numpy as np

from ...errors import MissingRuleError
from ...runtime.table import PRIMITIVES
from ..abstract import ShapedArray
from .emit import SV

LOWERINGS = {}


def lowering(*names):
    def reg(fn):
        for n in names:
            LOWERINGS[n] = fn
        return fn
    return reg


def _calc_dtype(s):
    from ..abstract import result_dtype
    avals = [a.aval for a in s.args]
    return result_dtype(*avals)


# ------------------------------------------------------------- elementwise

_UNARY = {"negative": "stablehlo.negate", "sin": "stablehlo.sine", "cos": "stablehlo.cosine",
          "tan": "stablehlo.tan", "tanh": "stablehlo.tanh", "exp": "stablehlo.exponential",
          "expm1": "stablehlo.exponential_minus_one", "log": "stablehlo.log",
          "log1p": "stablehlo.log_plus_one", "sqrt": "stablehlo.sqrt",
          "floor": "stablehlo.floor", "ceil": "stablehlo.ceil",
          "rint": "stablehlo.round_nearest_even", "arcsin": "chlo.asin", "arccos": "chlo.acos",
          "arctan": "chlo.atan", "sinh": "chlo.sinh", "cosh": "chlo.cosh",
          "arcsinh": "chlo.asinh", "arccosh": "chlo.acosh", "arctanh": "chlo.atanh"}
_BINARY = {"add": "stablehlo.add", "subtract": "stablehlo.subtract",
           "multiply": "stablehlo.multiply", "divide": "stablehlo.divide",
           "maximum": "stablehlo.maximum", "minimum": "stablehlo.minimum",
           "arctan2": "stablehlo.atan2", "fmod": "stablehlo.remainder",
           "bitwise_and": "stablehlo.and", "bitwise_or": "stablehlo.or",
           "bitwise_xor": "stablehlo.xor", "logical_and": "stablehlo.and",
           "logical_or": "stablehlo.or", "logical_xor": "stablehlo.xor"}
_COMPARE = {"equal": "EQ", "not_equal": "NE", "less": "LT", "less_equal": "LE",
            "greater": "GT", "greater_equal": "GE"}


def _chlo(em, opname, x):
    return em.op(f"{opname} {x.name} : {x.type} -> {x.type}", x.aval)


@lowering(*_UNARY)
def _unary(em, s, args, kwargs):
    out = s.out
    x = em.rt(args[0], out.dtype, out.shape)
    op = _UNARY[s.prim]
    if op.startswith("chlo."):
        return _chlo(em, op, x)
    if s.prim in ("floor", "ceil", "rint") and out.dtype.kind != "f":
        return x
    return em.unary(op, x)


@lowering(*_BINARY)
def _binary(em, s, args, kwargs):
    out = s.out
    x = em.rt(args[0], out.dtype, out.shape)
    y = em.rt(args[1], out.dtype, out.shape)
    if s.prim == "divide" and out.dtype.kind in "iu":
        raise MissingRuleError("divide", "xla", "integer true division has a float result")
    if s.prim in ("maximum", "minimum") and out.dtype.kind == "f":
        # NumPy propagates NaN; so does XLA's maximum
        pass
    return em.binary(_BINARY[s.prim], x, y)


@lowering("add_any")
def _add_any(em, s, args, kwargs):
    def add(a, b, aval):
        if a is None:
            return b
        if b is None:
            return a
        if isinstance(aval, (tuple, list)):
            return type(aval)(add(x, y, v) for x, y, v in zip(a, b, aval))
        if isinstance(aval, dict):
            return {k: add(a[k], b[k], aval[k]) for k in aval}
        if not isinstance(aval, ShapedArray):
            return aval
        return em.binary("stablehlo.add", em.rt(a, aval.dtype, aval.shape),
                         em.rt(b, aval.dtype, aval.shape))
    return add(args[0], args[1], s.out)


@lowering(*_COMPARE)
def _compare(em, s, args, kwargs):
    dt = _calc_dtype(s)
    x, y = em.rt(args[0], dt), em.rt(args[1], dt)
    return em.compare(_COMPARE[s.prim], x, y)


@lowering("logical_not")
def _logical_not(em, s, args, kwargs):
    return em.unary("stablehlo.not", em.rt(args[0], np.bool_))


@lowering("invert")
def _invert(em, s, args, kwargs):
    return em.unary("stablehlo.not", em.rt(args[0], s.out.dtype))


@lowering("absolute")
def _absolute(em, s, args, kwargs):
    x = em.rt(args[0])
    if x.dtype.kind == "b":
        return x
    return em.unary("stablehlo.abs", x, s.out.dtype)


@lowering("sign")
def _sign(em, s, args, kwargs):
    x = em.rt(args[0], s.out.dtype)
    if x.dtype.kind == "b":
        return x
    return em.unary("stablehlo.sign", x)


@lowering("trunc")
def _trunc(em, s, args, kwargs):
    x = em.rt(args[0], s.out.dtype)
    if x.dtype.kind != "f":
        return x
    neg = em.compare("LT", x, em.const(0, x.dtype))
    return em.select(neg, em.unary("stablehlo.ceil", x), em.unary("stablehlo.floor", x))


@lowering("round")
def _round(em, s, args, kwargs):
    x = em.rt(args[0], s.out.dtype)
    d = kwargs.get("decimals", args[1] if len(args) > 1 else 0)
    if isinstance(d, SV):
        raise MissingRuleError("round", "xla", "`decimals` must be a static int")
    if x.dtype.kind != "f":
        return x
    if d == 0:
        return em.unary("stablehlo.round_nearest_even", x)
    scale = em.const(10.0 ** d, x.dtype)
    y = em.binary("stablehlo.multiply", x, scale)
    return em.binary("stablehlo.divide", em.unary("stablehlo.round_nearest_even", y), scale)


@lowering("power")
def _power(em, s, args, kwargs):
    out = s.out
    x = em.rt(args[0], out.dtype, out.shape)
    e = args[1]
    if out.dtype.kind == "f" and not isinstance(e, SV) and np.ndim(e) == 0:
        ev = float(e)
        if ev == 2.0:
            return em.binary("stablehlo.multiply", x, x)
        if ev == 1.0:
            return x
        if ev == 0.5:
            return em.unary("stablehlo.sqrt", x)
        if ev == 3.0:
            return em.binary("stablehlo.multiply", em.binary("stablehlo.multiply", x, x), x)
    y = em.rt(e, out.dtype, out.shape)
    if out.dtype.kind in "iu":
        neg = em.reduce(em.compare("LT", y, em.const(0, out.dtype)), range(len(out.shape)), "or")
        em.check(em.unary("stablehlo.not", neg),
                 f"{em.where()}: integers to negative integer powers are not allowed")
    return em.binary("stablehlo.power", x, y)


@lowering("floor_divide")
def _floor_divide(em, s, args, kwargs):
    out = s.out
    x = em.rt(args[0], out.dtype, out.shape)
    y = em.rt(args[1], out.dtype, out.shape)
    if out.dtype.kind == "f":
        return em.unary("stablehlo.floor", em.binary("stablehlo.divide", x, y))
    # XLA's integer division truncates (and traps nothing on zero): NumPy
    # floors, and gives 0 for a zero divisor
    zero = em.const(0, out.dtype, out.shape)
    one = em.const(1, out.dtype, out.shape)
    safe = em.select(em.compare("EQ", y, zero), one, y)
    q = em.binary("stablehlo.divide", x, safe)
    r = em.binary("stablehlo.remainder", x, safe)
    adjust = em.binary("stablehlo.and", em.compare("NE", r, zero),
                       em.compare("NE", em.compare("LT", r, zero), em.compare("LT", safe, zero)))
    q = em.select(adjust, em.binary("stablehlo.subtract", q, one), q)
    return em.select(em.compare("EQ", y, zero), zero, q)


@lowering("remainder")
def _remainder(em, s, args, kwargs):
    out = s.out
    x = em.rt(args[0], out.dtype, out.shape)
    y = em.rt(args[1], out.dtype, out.shape)
    zero = em.const(0, out.dtype, out.shape)
    if out.dtype.kind in "iu":
        safe = em.select(em.compare("EQ", y, zero), em.const(1, out.dtype, out.shape), y)
    else:
        safe = y
    r = em.binary("stablehlo.remainder", x, safe)
    # Python's sign rule: the result takes the divisor's sign
    fix = em.binary("stablehlo.and", em.compare("NE", r, zero),
                    em.compare("NE", em.compare("LT", r, zero), em.compare("LT", safe, zero)))
    r = em.select(fix, em.binary("stablehlo.add", r, safe), r)
    if out.dtype.kind in "iu":
        r = em.select(em.compare("EQ", y, zero), zero, r)
    return r


@lowering("isnan")
def _isnan(em, s, args, kwargs):
    x = em.rt(args[0])
    if x.dtype.kind != "f":
        return em.const(False, np.bool_, x.shape)
    return em.compare("NE", x, x)


@lowering("isinf")
def _isinf(em, s, args, kwargs):
    x = em.rt(args[0])
    if x.dtype.kind != "f":
        return em.const(False, np.bool_, x.shape)
    return em.compare("EQ", em.unary("stablehlo.abs", x), em.const(np.inf, x.dtype))


@lowering("isfinite")
def _isfinite(em, s, args, kwargs):
    x = em.rt(args[0])
    if x.dtype.kind != "f":
        return em.const(True, np.bool_, x.shape)
    return em.op(f"stablehlo.is_finite {x.name} : ({x.type}) -> "
                 f"tensor<{''.join(f'{d}x' for d in x.shape)}i1>", ShapedArray(x.shape, np.bool_))


@lowering("where", "select")
def _where(em, s, args, kwargs):
    out = s.out
    c = em.rt(args[0], np.bool_)
    return em.select(c, em.rt(args[1], out.dtype, out.shape), em.rt(args[2], out.dtype, out.shape))


@lowering("positive", "stop_gradient", "copy")
def _identity(em, s, args, kwargs):
    return args[0]


@lowering("astype")
def _astype(em, s, args, kwargs):
    return em.rt(args[0], s.out.dtype)


@lowering("to_float", "to_int")
def _to_scalar(em, s, args, kwargs):
    x = em.rt(args[0])
    if x.shape != ():
        x = em.reshape(x, ())
    return em.convert(x, s.out.dtype)


# ------------------------------------------------------------- shapes

@lowering("reshape")
def _reshape(em, s, args, kwargs):
    return em.reshape(em.rt(args[0], s.out.dtype), s.out.shape)


@lowering("transpose")
def _transpose(em, s, args, kwargs):
    x = em.rt(args[0])
    axes = kwargs.get("axes", args[1] if len(args) > 1 else None)
    n = len(x.shape)
    perm = list(range(n))[::-1] if axes is None else [int(a) % n for a in axes]
    return em.transpose(x, perm)


@lowering("broadcast_to", "expand_reduced")
def _broadcast_to(em, s, args, kwargs):
    x = em.rt(args[0], s.out.dtype)
    if s.prim == "expand_reduced":
        shape = tuple(args[1])
        axis = kwargs.get("axis", args[2] if len(args) > 2 else None)
        keep = kwargs.get("keepdims", args[3] if len(args) > 3 else False)
        if not keep:
            from ...runtime.numeric_rules import normalize_axes
            axes = normalize_axes(axis, len(shape))
            kept = [d for k, d in enumerate(shape) if k not in axes]
            if len(kept) == len(x.shape):
                x = em.reshape(x, tuple(1 if k in axes else d for k, d in enumerate(shape)))
    return em.bcast(x, s.out.shape)


@lowering("concatenate")
def _concatenate(em, s, args, kwargs):
    arrays = args[0]
    axis = kwargs.get("axis", args[1] if len(args) > 1 else 0)
    out = s.out
    if axis is None:
        parts = [em.reshape(em.rt(a, out.dtype), (int(np.prod(np.shape(a) if not
                                                               isinstance(a, SV) else a.shape)),))
                 for a in arrays]
        return em.concatenate(parts, 0)
    parts = [em.rt(a, out.dtype) for a in arrays]
    axis = int(axis) % len(out.shape)
    return em.concatenate(parts, axis)


@lowering("flip")
def _flip(em, s, args, kwargs):
    x = em.rt(args[0])
    axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
    n = len(x.shape)
    axes = range(n) if axis is None else ([axis] if np.ndim(axis) == 0 else axis)
    return em.reverse(x, sorted(int(a) % n for a in axes))


@lowering("unbroadcast")
def _unbroadcast(em, s, args, kwargs):
    g = em.rt(args[0])
    target = s.out.shape
    if g.shape == target:
        return g
    lead = len(g.shape) - len(target)
    axes = list(range(lead)) + [lead + i for i, d in enumerate(target)
                                if d == 1 and g.shape[lead + i] != 1]
    return em.reshape(em.reduce(g, axes, "sum"), target)


# ----------------------------------------------------------- creation

@lowering("zeros", "ones", "zeros_like", "ones_like", "zero_adjoint", "tangent_zeros")
def _filled(em, s, args, kwargs):
    value = 1 if s.prim in ("ones", "ones_like") else 0

    def fill(aval):
        if isinstance(aval, ShapedArray):
            return em.const(value, aval.dtype, aval.shape)
        if isinstance(aval, (tuple, list)):
            return type(aval)(fill(a) for a in aval)
        if isinstance(aval, dict):
            return {k: fill(a) for k, a in aval.items()}
        return aval
    return fill(s.out)


@lowering("eye", "tri")
def _eye(em, s, args, kwargs):
    out = s.out
    k = kwargs.get("k", args[2] if len(args) > 2 else 0)
    rows = em.iota(out.shape, 0)
    cols = em.iota(out.shape, 1)
    shifted = em.binary("stablehlo.add", rows, em.const(int(k), np.int64, out.shape))
    mask = em.compare("EQ" if s.prim == "eye" else "GE", shifted, cols)
    return em.convert(mask, out.dtype)


@lowering("arange")
def _arange(em, s, args, kwargs):
    vals = [a for a in args] + [kwargs.get(k) for k in ("start", "stop", "step") if k in kwargs]
    if any(isinstance(v, SV) for v in vals):
        raise MissingRuleError("arange", "xla", "its length would depend on run-time values")
    start, stop, step = (list(args) + [None, None])[:3]
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    out = s.out
    i = em.convert(em.iota(out.shape, 0), out.dtype)
    return em.binary("stablehlo.add", em.binary("stablehlo.multiply", i,
                                                em.const(step, out.dtype)),
                     em.const(start, out.dtype))


@lowering("array")
def _array(em, s, args, kwargs):
    out = s.out

    def leaves(v):
        if isinstance(v, (tuple, list)):
            return [x for e in v for x in leaves(e)]
        return [v]
    items = leaves(args[0])
    if len(items) == 1 and int(np.prod(out.shape)) != 1:
        return em.rt(items[0], out.dtype, out.shape)
    flat = [em.reshape(em.rt(v, out.dtype), (int(np.prod(v.shape if isinstance(v, SV)
                                                          else np.shape(v))),))
            for v in items]
    return em.reshape(em.concatenate(flat, 0) if len(flat) > 1 else flat[0], out.shape)


# ---------------------------------------------------------- reductions

def _axes(axis, ndim):
    if axis is None:
        return list(range(ndim))
    if isinstance(axis, (tuple, list)):
        return sorted(int(a) % ndim for a in axis)
    return [int(axis) % ndim]


@lowering("sum", "prod", "max", "min", "any", "all")
def _reduction(em, s, args, kwargs):
    x = em.rt(args[0])
    axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
    keep = kwargs.get("keepdims", args[2] if len(args) > 2 else False)
    kind = {"sum": "sum", "prod": "prod", "max": "max", "min": "min", "any": "or",
            "all": "and"}[s.prim]
    axes = _axes(axis, len(x.shape))
    if s.prim in ("max", "min") and any(x.shape[a] == 0 for a in axes):
        raise MissingRuleError(s.prim, "xla", "a zero-size reduction without identity")
    dt = np.bool_ if kind in ("or", "and") else s.out.dtype
    if s.prim in ("max", "min") and x.dtype.kind == "f":
        # XLA's maximum propagates NaN, as NumPy's max does
        pass
    return em.reduce(em.rt(x, dt), axes, kind, bool(keep))


@lowering("argmax", "argmin")
def _argmax(em, s, args, kwargs):
    x = em.rt(args[0])
    axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
    keep = kwargs.get("keepdims", args[2] if len(args) > 2 else False)
    if axis is None:
        x = em.reshape(x, (int(np.prod(x.shape)),))
        ax = 0
    else:
        ax = int(axis) % len(x.shape)
    n = x.shape[ax]
    best = em.reduce(x, [ax], "max" if s.prim == "argmax" else "min", keepdims=True)
    hit = em.compare("EQ", x, em.bcast(best, x.shape))
    if x.dtype.kind == "f":
        # NumPy returns the first NaN
        hit = em.binary("stablehlo.or", hit,
                        em.bcast(em.reduce(em.compare("NE", x, x), [ax], "or", True), x.shape))
        hit = em.binary("stablehlo.and", hit, em.binary(
            "stablehlo.or", em.compare("NE", x, x),
            em.unary("stablehlo.not", em.bcast(em.reduce(em.compare("NE", x, x), [ax], "or",
                                                         True), x.shape))))
    idx = em.iota(x.shape, ax)
    cand = em.select(hit, idx, em.const(n, np.int64, x.shape))
    r = em.reduce(cand, [ax], "min", keepdims=bool(keep) and axis is not None)
    return r


@lowering("cumsum", "cumprod")
def _cumulative(em, s, args, kwargs):
    out = s.out
    x = em.rt(args[0], out.dtype)
    axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
    if axis is None:
        x = em.reshape(x, (int(np.prod(x.shape)),))
        ax = 0
    else:
        ax = int(axis) % len(x.shape)
    n = x.shape[ax]
    nd = len(x.shape)
    win = [1] * nd
    win[ax] = n
    pad = [[0, 0] for _ in range(nd)]
    pad[ax] = [n - 1, 0]
    kind = "stablehlo.add" if s.prim == "cumsum" else "stablehlo.multiply"
    init = em.const(0 if s.prim == "cumsum" else 1, x.dtype)
    et = x.type.split("x")[-1][:-1] if x.shape else x.type[7:-1]
    scalar = f"tensor<{et}>"
    name = em.fresh("scan")
    em.line(f'{name} = "stablehlo.reduce_window"({x.name}, {init.name}) ({{')
    em.line(f"  ^bb0(%a: {scalar}, %b: {scalar}):")
    em.line(f"    %r = {kind} %a, %b : {scalar}")
    em.line(f"    stablehlo.return %r : {scalar}")
    em.line(f"}}) {{window_dimensions = array<i64: {', '.join(map(str, win))}>, "
            f"padding = dense<{pad}> : tensor<{nd}x2xi64>}} : ({x.type}, {scalar}) -> {x.type}")
    return SV(name, x.aval)


# ------------------------------------------------------------ products

def _matmul_sv(em, a, b, dt):
    """numpy.matmul of two run-time values (1-d operands promoted)."""
    a, b = em.convert(a, dt), em.convert(b, dt)
    va, vb = len(a.shape) == 1, len(b.shape) == 1
    if va:
        a = em.reshape(a, (1,) + a.shape)
    if vb:
        b = em.reshape(b, b.shape + (1,))
    batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    a = em.bcast(a, batch + a.shape[-2:])
    b = em.bcast(b, batch + b.shape[-2:])
    nb = len(batch)
    r = em.dot_general(a, b, list(range(nb)), list(range(nb)), [nb + 1], [nb])
    shape = batch + (() if va else (a.shape[-2],)) + (() if vb else (b.shape[-1],))
    return em.reshape(r, shape)


@lowering("matmul")
def _matmul(em, s, args, kwargs):
    return _matmul_sv(em, em.rt(args[0]), em.rt(args[1]), s.out.dtype)


def _einsum_sv(em, spec, operands, out_dtype):
    """Two-operand (or one-operand) einsum by dot_general and reductions."""
    spec = spec.replace(" ", "")
    if "..." in spec:
        raise MissingRuleError("einsum", "xla", "ellipsis subscripts are not lowered")
    ins, out = spec.split("->") if "->" in spec else (spec, None)
    terms = ins.split(",")
    if out is None:
        counts = {}
        for t in terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = "".join(sorted(c for c, k in counts.items() if k == 1))
    ops = [em.convert(em.rt(o), out_dtype) for o in operands]
    for t in terms:
        if len(set(t)) != len(t):
            raise MissingRuleError("einsum", "xla", "repeated subscripts within one operand "
                                   "(diagonals) are not lowered")
    # sum labels found in one operand only and not in the output
    others = [set("".join(terms[:k] + terms[k + 1:])) | set(out) for k in range(len(terms))]
    for k, t in enumerate(terms):
        drop = [i for i, c in enumerate(t) if c not in others[k]]
        if drop:
            ops[k] = em.reduce(ops[k], drop, "sum")
            terms[k] = "".join(c for c in t if c not in {t[i] for i in drop})
    if len(terms) == 1:
        t = terms[0]
        return em.transpose(ops[0], [t.index(c) for c in out])
    if len(terms) > 2:
        acc, at = ops[0], terms[0]
        for o, t in zip(ops[1:], terms[1:]):
            keep = "".join(dict.fromkeys(c for c in at + t if c in out or c in
                                         "".join(terms[terms.index(t) + 1:])))
            acc = _einsum_sv(em, f"{at},{t}->{keep}", [acc, o], out_dtype)
            at = keep
        return _einsum_sv(em, f"{at}->{out}", [acc], out_dtype)
    (ta, tb), (a, b) = terms, ops
    # size-1 labels broadcast against the other operand's size
    for c in set(ta) & set(tb):
        na, nb = a.shape[ta.index(c)], b.shape[tb.index(c)]
        if na != nb:
            if na == 1:
                sh = list(a.shape)
                sh[ta.index(c)] = nb
                a = em.broadcast_in_dim(a, tuple(sh), list(range(len(sh))))
            else:
                sh = list(b.shape)
                sh[tb.index(c)] = na
                b = em.broadcast_in_dim(b, tuple(sh), list(range(len(sh))))
    batch = [c for c in ta if c in tb and c in out]
    contract = [c for c in ta if c in tb and c not in out]
    r = em.dot_general(a, b, [ta.index(c) for c in batch], [tb.index(c) for c in batch],
                       [ta.index(c) for c in contract], [tb.index(c) for c in contract])
    labels = batch + [c for c in ta if c not in batch and c not in contract] + \
        [c for c in tb if c not in batch and c not in contract]
    return em.transpose(r, [labels.index(c) for c in out])


@lowering("einsum")
def _einsum(em, s, args, kwargs):
    return _einsum_sv(em, args[0], args[1:], s.out.dtype)


def _dot_sv(em, a, b, dt):
    from ...runtime.reverse_support import dot_labels
    if a.shape == () or b.shape == ():
        return em.binary("stablehlo.multiply", em.convert(a, dt), em.convert(b, dt))
    if len(a.shape) <= 2 and len(b.shape) <= 2:
        return _matmul_sv(em, a, b, dt)
    la, lb, lo = dot_labels(len(a.shape), len(b.shape))
    return _einsum_sv(em, f"{la},{lb}->{lo}", [a, b], dt)


@lowering("dot")
def _dot(em, s, args, kwargs):
    return _dot_sv(em, em.rt(args[0]), em.rt(args[1]), s.out.dtype)


def _reduce_to(em, g, shape):
    lead = len(g.shape) - len(shape)
    axes = list(range(lead)) + [lead + i for i, d in enumerate(shape)
                                if d == 1 and g.shape[lead + i] != 1]
    if axes:
        g = em.reduce(g, axes, "sum", keepdims=True)
    return em.reshape(g, shape)


def _swap_last(em, x):
    n = len(x.shape)
    return em.transpose(x, list(range(n - 2)) + [n - 1, n - 2])


@lowering("matmul_grad_a")
def _matmul_grad_a(em, s, args, kwargs):
    dt = s.out.dtype
    g, b = em.rt(args[0], dt), em.rt(args[1], dt)
    a_shape = s.out.shape
    if len(b.shape) == 1 and len(a_shape) == 1:
        return em.binary("stablehlo.multiply", g, b)
    if len(b.shape) == 1:
        g = em.reshape(g, g.shape + (1,))
        b2 = em.reshape(b, (1,) + b.shape)
    else:
        b2 = _swap_last(em, b)
    if len(a_shape) == 1:
        g = em.reshape(g, g.shape[:-1] + (1, g.shape[-1]))
    out = _matmul_sv(em, g, b2, dt)
    if len(a_shape) == 1:
        out = em.reshape(out, out.shape[:-2] + out.shape[-1:])
    return _reduce_to(em, out, a_shape)


@lowering("matmul_grad_b")
def _matmul_grad_b(em, s, args, kwargs):
    dt = s.out.dtype
    g, a = em.rt(args[0], dt), em.rt(args[1], dt)
    b_shape = s.out.shape
    if len(a.shape) == 1 and len(b_shape) == 1:
        return em.binary("stablehlo.multiply", g, a)
    if len(a.shape) == 1:
        g = em.reshape(g, g.shape[:-1] + (1, g.shape[-1]))
        a2 = em.reshape(a, a.shape + (1,))
    else:
        a2 = _swap_last(em, a)
    if len(b_shape) == 1:
        g = em.reshape(g, g.shape + (1,))
    out = _matmul_sv(em, a2, g, dt)
    if len(b_shape) == 1:
        out = em.reshape(out, out.shape[:-1])
    return _reduce_to(em, out, b_shape)


@lowering("dot_grad_a", "dot_grad_b")
def _dot_grad(em, s, args, kwargs):
    from ...runtime.reverse_support import dot_labels
    dt = s.out.dtype
    g, other = em.rt(args[0], dt), em.rt(args[1], dt)
    x_shape = s.out.shape
    if len(x_shape) == 0 or len(other.shape) == 0:
        return _reduce_to(em, em.binary("stablehlo.multiply", g, em.bcast(other, g.shape)
                                        if len(other.shape) <= len(g.shape) else other), x_shape)
    if len(x_shape) > 2 or len(other.shape) > 2:
        if s.prim == "dot_grad_a":
            la, lb, lo = dot_labels(len(x_shape), len(other.shape))
            return _einsum_sv(em, f"{lo},{lb}->{la}", [g, other], dt)
        la, lb, lo = dot_labels(len(other.shape), len(x_shape))
        return _einsum_sv(em, f"{la},{lo}->{lb}", [other, g], dt)
    fake = type(s)(s.target, s.prim, s.args, s.kwargs, s.out, s.origin, s.static)
    rule = _matmul_grad_a if s.prim == "dot_grad_a" else _matmul_grad_b
    return rule(em, fake, [g, other] + list(args[2:]), kwargs)


# ------------------------------------------------ the grad helpers

@lowering("grad_seed")
def _grad_seed(em, s, args, kwargs):
    return em.const(1, s.out.dtype, s.out.shape)


@lowering("check_grad_input", "errstate_quiet", "errstate_restore", "check_svd_vjp")
def _nothing(em, s, args, kwargs):
    # the eager checks look at the input's type, which the signature fixed
    if s.prim == "check_grad_input":
        PRIMITIVES["check_grad_input"].impl(
            np.zeros(args[0].shape, args[0].dtype) if isinstance(args[0], SV) else args[0],
            *[a for a in args[1:]])
    return None


@lowering("trip_count")
def _trip_count(em, s, args, kwargs):
    start, stop, step = [em.rt(a, np.int64) for a in args]
    zero = em.const(0, np.int64)
    one = em.const(1, np.int64)
    up = em.compare("GT", step, zero)
    adj = em.select(up, em.binary("stablehlo.subtract", step, one),
                    em.binary("stablehlo.add", step, one))
    n = em.binary("stablehlo.divide",
                  em.binary("stablehlo.add", em.binary("stablehlo.subtract", stop, start), adj),
                  step)
    return em.binary("stablehlo.maximum", n, zero)


@lowering("make_tuple", "make_list")
def _make_seq(em, s, args, kwargs):
    return tuple(args) if s.prim == "make_tuple" else list(args)


@lowering("make_dict")
def _make_dict(em, s, args, kwargs):
    return dict(zip(kwargs["keys"], args))


@lowering("list_append")
def _list_append(em, s, args, kwargs):
    return list(args[0]) + [args[1]]


@lowering("to_tuple", "to_list")
def _to_seq(em, s, args, kwargs):
    from .indexing import _gather
    x = args[0]
    if isinstance(x, SV):
        items = [_gather(em, x, [k]) for k in range(x.shape[0])]
    else:
        items = list(x)
    return tuple(items) if s.prim == "to_tuple" else items


# ------------------------------------------------ declared refusals

_NOT_YET = ("not lowered for the xla backend yet (the cpu backend compiles it: "
            "use jit(f) without backend='xla')")
_NO_RULE = {
    "print": "print has no XLA lowering (no host callback); print outside jit, or use the "
             "cpu backend, which calls back into Python",
    "print_lanes": "print has no XLA lowering (no host callback); use the cpu backend",
    "check": "run-time assertions are not lowered for xla yet (assert outside jit, or use "
             "the cpu backend)",
    "check_lanes": "run-time assertions are not lowered for xla yet; use the cpu backend",
    "nonzero": "its output shape depends on the input's values",
    "is_": "identity of run-time values is not defined in compiled code",
    "is_not": "identity of run-time values is not defined in compiled code",
    "strformat": "compiled code has no strings",
    "stack_unpop": "second-order reverse mode through loops is not lowered for xla",
    "stack_unpush": "second-order reverse mode through loops is not lowered for xla",
    "copy_stack": "vjp's copies of run-time stacks are not lowered for xla",
    "inv": "LAPACK factorizations are not lowered for xla (XLA's CPU client has them only "
           "as jaxlib custom calls); use the cpu backend",
    "solve": "LAPACK factorizations are not lowered for xla; use the cpu backend",
    "det": "LAPACK factorizations are not lowered for xla; use the cpu backend",
    "slogdet": "LAPACK factorizations are not lowered for xla; use the cpu backend",
    "cholesky": "LAPACK factorizations are not lowered for xla; use the cpu backend",
    "qr": "LAPACK factorizations are not lowered for xla; use the cpu backend",
    "eigh": "LAPACK factorizations are not lowered for xla; use the cpu backend",
    "svd": "LAPACK factorizations are not lowered for xla; use the cpu backend",
}


def register():
    # indexing, vmap's helpers, sorts and gathers: the rest of the one table
    from . import indexing, batching, ordering  # noqa: F401
    for name, rule in LOWERINGS.items():
        p = PRIMITIVES.get(name)
        if p is not None:
            p.lowerings["xla"] = rule
    for name, reason in _NO_RULE.items():
        if name in PRIMITIVES and name not in LOWERINGS:
            PRIMITIVES[name].declare_no_rule("xla", reason)
    # the static helpers and shape queries are folded before emission
    for name, p in PRIMITIVES.items():
        if p.custom or name in LOWERINGS or "xla" in p.no_rule:
            continue
        if name.startswith("static_") or name in ("shape", "ndim", "size", "dtype", "length",
                                                  "make_slice", "inverse_axes",
                                                  "axes_after_batch", "batch_shape",
                                                  "lane_length", "lane_perm", "batch_size"):
            continue
        p.declare_no_rule("xla", _NOT_YET)


# ------------------------------------------------------------- complex parts
# complex values never reach a compiled program (refused at the boundary and
# where register types are chosen), so on the real dtypes that do these are
# the identity, zero and sign

@lowering("real", "conj")
def _real_part(em, s, args, kwargs):
    return em.rt(args[0], s.out.dtype)


@lowering("imag", "imag_cotangent")
def _imag_part(em, s, args, kwargs):
    from .indexing import _zeros_of
    return _zeros_of(em, s.out)


@lowering("unit_phase")
def _unit_phase(em, s, args, kwargs):
    x = em.rt(args[0], s.out.dtype)
    if x.dtype.kind == "b":
        return x
    return em.unary("stablehlo.sign", x)


register()

