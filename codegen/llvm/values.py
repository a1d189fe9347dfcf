"""Run-time values of compiled code and scalar lowering rules (llvmlite.ir).

Owns the value kinds the LLVM emitter passes around — `Scalar` (a register),
`Array` (a data pointer with a static shape and static strides, possibly a
view), `Lazy` (an unmaterialized elementwise expression, evaluated inside
the loop nest of its consumer: this is what fusion is) — the dtype → LLVM
type mapping, casts, and the scalar lowering of every elementwise
primitive (`SCALAR_OPS`, also registered as the primitives' `llvm`
lowerings by llvm/lowerings.py).  Must not bind LLVM (llvm/binding.py) and
must not walk programs (llvm/emit.py).
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError
from ..abstract import ShapedArray, result_dtype

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType(I8)


def reg_type(dt):
    dt = np.dtype(dt)
    if dt.kind == "b":
        return I1
    if dt.kind in "iu":
        return ir.IntType(dt.itemsize * 8)
    if dt == np.float64:
        return F64
    if dt == np.float32:
        return F32
    if dt.kind == "c":
        # complex16: eager transformations carry complex values; compiled
        # code does not yet, so say so by name (inputs and intermediates alike)
        raise MissingRuleError(f"dtype {dt}", "llvm", "complex values are not compiled yet "
                               "(cotan.jit compiles bool, integer, float32 and float64 "
                               "values). Call the complex part of the computation outside "
                               "cotan.jit: eager grad, jvp, vjp and vmap handle complex "
                               "numbers")
    raise MissingRuleError(f"dtype {dt}", "llvm", "only bool, integer, float32 and "
                           "float64 values are compiled")


def mem_type(dt):
    dt = np.dtype(dt)
    return I8 if dt.kind == "b" else reg_type(dt)


def c_strides(shape):
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return tuple(reversed(out))


def size_of(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Scalar:
    __slots__ = ("value", "dtype", "weak")

    def __init__(self, value, dtype, weak=False):
        self.value, self.dtype, self.weak = value, np.dtype(dtype), weak

    @property
    def shape(self):
        return ()

    @property
    def aval(self):
        return ShapedArray((), self.dtype, self.weak)


class Array:
    """`ptr` (i8*) to element 0; element (i, j, ...) at ptr + sum(i*stride)."""
    __slots__ = ("ptr", "dtype", "shape", "strides", "owner")

    def __init__(self, ptr, dtype, shape, strides=None, owner=None):
        self.ptr, self.dtype, self.shape = ptr, np.dtype(dtype), tuple(shape)
        self.strides = c_strides(self.shape) if strides is None else tuple(strides)
        self.owner = owner      # name whose buffer this points into (views), or None

    @property
    def contiguous(self):
        return all(s == c or d == 1 for s, c, d in zip(self.strides, c_strides(self.shape),
                                                         self.shape))

    @property
    def aval(self):
        return ShapedArray(self.shape, self.dtype)


class Lazy:
    """An elementwise expression: `op` applied to children (Scalar, Array,
    Lazy or Python constants), broadcast to `shape`, result `dtype`."""
    __slots__ = ("op", "children", "dtype", "shape", "params", "calc")

    def __init__(self, op, children, dtype, shape, params=None, calc=None):
        self.op, self.children = op, children
        self.dtype, self.shape = np.dtype(dtype), tuple(shape)
        self.params = params or {}
        self.calc = calc        # dtype the operands are converted to

    @property
    def aval(self):
        return ShapedArray(self.shape, self.dtype)


def aval_of(v):
    if isinstance(v, (Scalar, Array, Lazy)):
        return v.aval
    return v


def const(dt, v):
    dt = np.dtype(dt)
    t = reg_type(dt)
    if dt.kind == "b":
        return ir.Constant(t, int(bool(v)))
    if dt.kind in "iu":
        return ir.Constant(t, int(v))
    return ir.Constant(t, float(v))


def cast(b, value, src, dst):
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst:
        return value
    ts, td = reg_type(src), reg_type(dst)
    if isinstance(value.type, ir.VectorType):
        n = value.type.count
        td_v = ir.VectorType(td, n)
    else:
        td_v = td
    if dst.kind == "b":
        zero = ir.Constant(value.type, None)
        if src.kind == "f":
            return b.fcmp_unordered("!=", value, zero)
        return b.icmp_unsigned("!=", value, zero)
    if src.kind == "b":
        return b.uitofp(value, td_v) if dst.kind == "f" else b.zext(value, td_v)
    if src.kind in "iu" and dst.kind in "iu":
        if td.width > ts.width:
            return b.sext(value, td_v) if src.kind == "i" else b.zext(value, td_v)
        if td.width < ts.width:
            return b.trunc(value, td_v)
        return value
    if src.kind in "iu" and dst.kind == "f":
        return b.sitofp(value, td_v) if src.kind == "i" else b.uitofp(value, td_v)
    if src.kind == "f" and dst.kind in "iu":
        return b.fptosi(value, td_v) if dst.kind == "i" else b.fptoui(value, td_v)
    if src.kind == "f" and dst.kind == "f":
        return b.fpext(value, td_v) if td_v is not None and _fbits(dst) > _fbits(src) \
            else b.fptrunc(value, td_v)
    raise MissingRuleError(f"cast {src}->{dst}", "llvm")


def _fbits(dt):
    return np.dtype(dt).itemsize * 8


# ----------------------------------------------------------- scalar ops

class MathCalls:
    """Declares libm (and libmvec) functions in a module on demand."""

    def __init__(self, module, vector_math):
        self.module = module
        self.vector_math = vector_math
        self.fns = {}

    def scalar(self, name, dt, nargs=1):
        t = reg_type(dt)
        sym = f"cotan.{name}{'f' if t == F32 else ''}"
        fn = self.fns.get(sym)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(t, [t] * nargs), sym)
            fn.attributes.add("nounwind")
            self.fns[sym] = fn
        return fn

    def vector(self, name, dt, lanes):
        bits = 64 if np.dtype(dt) == np.float64 else 32
        hit = self.vector_math.get((name, bits))
        if hit is None or hit[1] != lanes:
            return None
        sym = hit[0]
        fn = self.fns.get(sym)
        if fn is None:
            vt = ir.VectorType(reg_type(dt), lanes)
            nargs = 2 if name in ("pow", "atan2") else 1
            fn = ir.Function(self.module, ir.FunctionType(vt, [vt] * nargs), sym)
            fn.attributes.add("nounwind")
            self.fns[sym] = fn
        return fn

    def intrinsic(self, name, t, nargs=1):
        key = (name, str(t))
        fn = self.fns.get(key)
        if fn is None:
            fnty = ir.FunctionType(t, [t] * nargs)
            if isinstance(t, ir.VectorType):
                # llvmlite names overloads of scalar types only
                # (`llvm.maxnum.f64`); the vector one is `llvm.maxnum.v4f64`
                full = f"{name}.v{t.count}{t.element.intrinsic_name}"
                fn = self.module.globals.get(full) or ir.Function(self.module, fnty, full)
            else:
                fn = self.module.declare_intrinsic(name, [t], fnty)
            self.fns[key] = fn
        return fn


#: elementwise primitive -> libm function name (float results)
LIBM = {"sin": "sin", "cos": "cos", "tan": "tan", "arcsin": "asin", "arccos": "acos",
        "arctan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
        "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh", "exp": "exp",
        "expm1": "expm1", "log": "log", "log1p": "log1p"}
LIBM2 = {"arctan2": "atan2", "fmod": "fmod"}


def _vec_call(b, math, name, dt, args):
    """Call libm `name` on scalars or vectors (libmvec, or lane by lane)."""
    t = args[0].type
    if isinstance(t, ir.VectorType):
        fn = math.vector(name, dt, t.count)
        if fn is not None:
            return b.call(fn, args)
        out = ir.Constant(t, None)
        sfn = math.scalar(name, dt, len(args))
        for lane in range(t.count):
            lane_c = ir.Constant(I32, lane)
            v = b.call(sfn, [b.extract_element(a, lane_c) for a in args])
            out = b.insert_element(out, v, lane_c)
        return out
    return b.call(math.scalar(name, dt, len(args)), args)


def _intr(b, math, name, args):
    return b.call(math.intrinsic(name, args[0].type, len(args)), args)


def _fconst(t, v):
    if isinstance(t, ir.VectorType):
        return ir.Constant(t, [ir.Constant(t.element, v)] * t.count)
    return ir.Constant(t, v)


def _iconst(t, v):
    if isinstance(t, ir.VectorType):
        return ir.Constant(t, [ir.Constant(t.element, v)] * t.count)
    return ir.Constant(t, v)


def scalar_op(b, math, op, vals, dt, params=None):
    """Lower elementwise primitive `op` on register values `vals` already
    converted to the computation dtype `dt` (the result dtype for
    arithmetic, the common operand dtype for comparisons)."""
    dt = np.dtype(dt)
    k = dt.kind
    x = vals[0]
    y = vals[1] if len(vals) > 1 else None
    t = x.type
    if op in ("add", "add_any"):
        return b.fadd(x, y) if k == "f" else (b.or_(x, y) if k == "b" else b.add(x, y))
    if op == "subtract":
        return b.fsub(x, y) if k == "f" else b.sub(x, y)
    if op == "multiply":
        return b.fmul(x, y) if k == "f" else (b.and_(x, y) if k == "b" else b.mul(x, y))
    if op == "divide":
        return b.fdiv(x, y)
    if op == "negative":
        return b.fneg(x) if k == "f" else b.neg(x)
    if op == "positive" or op == "stop_gradient" or op == "copy":
        return x
    if op == "real" or op == "conj":    # complex16: only real dtypes are compiled
        return x
    if op == "imag" or op == "imag_cotangent":
        return ir.Constant(t, 0)
    if op == "unit_phase":      # numpy.sign on the (real) dtypes compiled
        op = "sign"
    if op == "absolute":
        if k == "f":
            return _intr(b, math, "llvm.fabs", [x])
        if k == "u" or k == "b":
            return x
        return b.select(b.icmp_signed("<", x, _iconst(t, 0)), b.neg(x), x)
    if op in ("maximum", "minimum"):
        if k == "f":
            # NumPy propagates NaN: llvm.maximum/minimum do too
            return _intr(b, math, "llvm.maximum" if op == "maximum" else "llvm.minimum", [x, y])
        cmp = b.icmp_unsigned if k in "ub" else b.icmp_signed
        c = cmp(">" if op == "maximum" else "<", x, y)
        return b.select(c, x, y)
    if op in LIBM:
        return _vec_call(b, math, LIBM[op], dt, [x])
    if op == "sqrt":
        return _intr(b, math, "llvm.sqrt", [x])
    if op in LIBM2 and k == "f":
        return _vec_call(b, math, LIBM2[op], dt, [x, y])
    if op == "power":
        if k == "f":
            p = (params or {}).get("static_exponent")
            if p is not None and float(p) in (1.0, 2.0, 3.0, 4.0, -1.0, 0.5, 0.0):
                p = float(p)
                if p == 0.0:
                    return _fconst(t, 1.0)
                if p == 0.5:
                    return _intr(b, math, "llvm.sqrt", [x])
                if p == -1.0:
                    return b.fdiv(_fconst(t, 1.0), x)
                r = x
                for _ in range(int(p) - 1):
                    r = b.fmul(r, x)
                return r
            return _vec_call(b, math, "pow", dt, [x, y])
        return _int_power(b, x, y)
    if op in ("floor", "ceil", "trunc", "rint"):
        if k != "f":
            return x
        return _intr(b, math, {"floor": "llvm.floor", "ceil": "llvm.ceil",
                               "trunc": "llvm.trunc", "rint": "llvm.rint"}[op], [x])
    if op == "sign":
        if k == "f":
            one, zero = _fconst(t, 1.0), _fconst(t, 0.0)
            pos = b.select(b.fcmp_ordered(">", x, zero), one, zero)
            s = b.select(b.fcmp_ordered("<", x, zero), _fconst(t, -1.0), pos)
            return b.select(b.fcmp_unordered("uno", x, x), x, s)
        one, zero = _iconst(t, 1), _iconst(t, 0)
        pos = b.select(b.icmp_signed(">", x, zero), one, zero)
        return b.select(b.icmp_signed("<", x, zero), _iconst(t, -1), pos)
    if op == "floor_divide":
        if k == "f":
            return _intr(b, math, "llvm.floor", [b.fdiv(x, y)])
        if k == "u":
            return b.udiv(x, y)
        q = b.sdiv(x, y)
        r = b.srem(x, y)
        adjust = b.and_(b.icmp_signed("!=", r, _iconst(t, 0)),
                        b.icmp_signed("!=", b.icmp_signed("<", r, _iconst(t, 0)),
                                      b.icmp_signed("<", y, _iconst(t, 0))))
        return b.sub(q, b.zext(adjust, t) if not isinstance(t, ir.VectorType) else
                     b.zext(adjust, t))
    if op == "remainder":
        if k == "f":
            r = b.frem(x, y)
            fix = b.and_(b.fcmp_ordered("!=", r, _fconst(t, 0.0)),
                         b.xor(b.fcmp_ordered("<", r, _fconst(t, 0.0)),
                               b.fcmp_ordered("<", y, _fconst(t, 0.0))))
            return b.select(fix, b.fadd(r, y), r)
        if k == "u":
            return b.urem(x, y)
        r = b.srem(x, y)
        fix = b.and_(b.icmp_signed("!=", r, _iconst(t, 0)),
                     b.xor(b.icmp_signed("<", r, _iconst(t, 0)),
                           b.icmp_signed("<", y, _iconst(t, 0))))
        return b.select(fix, b.add(r, y), r)
    if op == "fmod":
        return b.srem(x, y) if k == "i" else b.urem(x, y)
    cmp_ops = {"equal": "==", "not_equal": "!=", "less": "<", "less_equal": "<=",
               "greater": ">", "greater_equal": ">="}
    if op in cmp_ops:
        if k == "f":
            if op == "not_equal":
                return b.fcmp_unordered("!=", x, y)
            return b.fcmp_ordered(cmp_ops[op], x, y)
        if k in "ub":
            return b.icmp_unsigned(cmp_ops[op], x, y)
        return b.icmp_signed(cmp_ops[op], x, y)
    if op in ("logical_and", "logical_or", "logical_xor"):
        # operands are already converted to bool
        return {"logical_and": b.and_, "logical_or": b.or_, "logical_xor": b.xor}[op](x, y)
    if op == "logical_not":
        return b.xor(x, _iconst(t, 1))
    if op in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        return {"bitwise_and": b.and_, "bitwise_or": b.or_, "bitwise_xor": b.xor}[op](x, y)
    if op == "invert":
        return b.xor(x, _iconst(t, -1 if k != "b" else 1))
    if op in ("isnan", "isinf", "isfinite"):
        if k != "f":
            return _iconst(ir.IntType(1) if not isinstance(t, ir.VectorType) else
                           ir.VectorType(I1, t.count), 0 if op != "isfinite" else 1)
        if op == "isnan":
            return b.fcmp_unordered("uno", x, x)
        a = _intr(b, math, "llvm.fabs", [x])
        inf = _fconst(t, float("inf"))
        if op == "isinf":
            return b.fcmp_ordered("==", a, inf)
        return b.fcmp_ordered("<", a, inf)
    if op in ("where", "select"):
        return b.select(vals[0], vals[1], vals[2])
    if op == "round":
        dec = int((params or {}).get("decimals", 0))
        if k != "f":
            return x
        if dec == 0:
            return _intr(b, math, "llvm.rint", [x])
        f = _fconst(t, 10.0 ** dec)
        return b.fdiv(_intr(b, math, "llvm.rint", [b.fmul(x, f)]), f)
    raise MissingRuleError(op, "llvm")


def _int_power(b, x, y):
    """x ** y for integers by repeated squaring (y >= 0); x and y scalars or
    vectors of lanes.  A vector loop runs while any lane's exponent is left
    (its branch condition must be one i1: the lanes' `or`)."""
    fn = b.function
    t = x.type
    vec = isinstance(t, ir.VectorType)
    pre = b.block
    head = fn.append_basic_block("ipow.head")
    body = fn.append_basic_block("ipow.body")
    done = fn.append_basic_block("ipow.done")
    b.branch(head)
    b.position_at_end(head)
    acc = b.phi(t)
    base = b.phi(t)
    e = b.phi(t)
    acc.add_incoming(_iconst(t, 1), pre)
    base.add_incoming(x, pre)
    e.add_incoming(y, pre)
    left = b.icmp_signed(">", e, _iconst(t, 0))
    if vec:
        bits = ir.VectorType(I1, t.count)
        name = f"llvm.vector.reduce.or.v{t.count}i1"
        any_left = b.module.globals.get(name) or ir.Function(
            b.module, ir.FunctionType(I1, [bits]), name=name)
        b.cbranch(b.call(any_left, [left]), body, done)
    else:
        b.cbranch(left, body, done)
    b.position_at_end(body)
    odd = b.trunc(e, ir.VectorType(I1, t.count) if vec else I1)
    if vec:
        # a lane whose exponent is spent keeps its product
        odd = b.and_(odd, left)
    acc2 = b.select(odd, b.mul(acc, base), acc)
    base2 = b.mul(base, base)
    e2 = b.ashr(e, _iconst(t, 1))
    acc.add_incoming(acc2, body)
    base.add_incoming(base2, body)
    e.add_incoming(e2, body)
    b.branch(head)
    b.position_at_end(done)
    return acc


#: every elementwise primitive with a scalar lowering (arguments broadcast)
ELEMENTWISE = {
    "add", "subtract", "multiply", "divide", "power", "maximum", "minimum",
    "arctan2", "remainder", "fmod", "negative", "absolute", "sin", "cos", "tan",
    "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh",
    "arctanh", "exp", "expm1", "log", "log1p", "sqrt", "sign", "floor", "ceil",
    "trunc", "rint", "floor_divide", "round", "isnan", "isinf", "isfinite", "equal",
    "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
    "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
    "bitwise_xor", "invert", "where", "select", "positive", "stop_gradient",
    "real", "imag", "conj", "imag_cotangent", "unit_phase",
}
COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}
LOGICAL = {"logical_and", "logical_or", "logical_xor", "logical_not"}
PREDICATES = {"isnan", "isinf", "isfinite"}


def calc_dtype(op, in_avals, out_dtype):
    """The dtype operands are converted to before `op` is applied."""
    if op in COMPARISONS:
        return result_dtype(*in_avals)
    if op in LOGICAL:
        return np.dtype(np.bool_)
    if op in PREDICATES:
        return result_dtype(in_avals[0])
    if op in ("divide",) or (op in LIBM or op in LIBM2 or op == "sqrt"):
        return np.dtype(out_dtype)
    return np.dtype(out_dtype)
