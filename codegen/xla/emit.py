"""Typed program → StableHLO text (one `func.func @main`), the XLA emitter.

Owns `emit_stablehlo(tf)`: the walk over the typed program that
infer.py built (the same one the LLVM emitter walks), with the value
helpers the lowering table (lowerings.py) is written in: constants,
conversions, NumPy broadcasting (`broadcast_in_dim`), reductions,
`dot_general`, slices and the error flag.

The calling convention of the emitted module:
- parameters: the run-time leaves of the arguments in order, then the
  captured arrays the program reads (parameters, not inline constants);
- results: the run-time leaves of the result, then an `i32` error status
  (0, or 1 + the index of a message in `Emitted.messages`): XLA clamps
  out-of-range indices silently, so every run-time index is checked and the
  first failure recorded; the binding raises it after the run.

Python control flow becomes `stablehlo.while` / `stablehlo.if` carrying
only the names live at the loop head (liveness.py), the error status and
the reverse-mode stacks the body touches.  A stack that inference emulates
at compile time ("static") is a Python list of values here; a native one is
a fixed-capacity buffer per leaf plus a count, the capacity being the
number of pushes the static trip counts allow (a push under a loop whose
trip count is known only at run time is refused).  Must not compile or run
anything (binding.py) nor register lowerings (lowerings.py).
"""

import numpy as np

from ...errors import MissingRuleError
from ...runtime.table import PRIMITIVES
from ..abstract import ShapedArray
from ..infer import STACK_PRIMS, TAssign, TFor, TIf, TWhile, Undefined, is_static
from ..infer_stacks import StackRef, stack_of
from ..liveness import live_before, loop_live
from .stacks import StackLowering
# re-exported: the lowering modules import the value helpers from here
from .values import (SV, DynamicSlice, elem_type, tensor_type, leaves_with_paths,  # noqa: F401
                     get_path, rebuild)


def _fmt_float(v, dtype):
    v = float(v)
    if np.isnan(v) or np.isinf(v):
        bits = np.asarray(v, dtype).view({2: np.uint16, 4: np.uint32, 8: np.uint64}[
            np.dtype(dtype).itemsize])
        return "0x" + format(int(bits), "0%dX" % (np.dtype(dtype).itemsize * 2))
    r = repr(v)
    mant = r.split("e")[0]
    if "." not in mant:
        # MLIR's float literals need a fraction: 1.0e-10, not 1e-10
        r = mant + ".0" + r[len(mant):]
    return r


def _scalar_text(v, dtype):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return "true" if bool(v) else "false"
    if dt.kind in "iu":
        return str(int(v))
    if dt.kind == "c":
        c = complex(v)
        return f"({_fmt_float(c.real, dt.type(0).real.dtype)}, " \
               f"{_fmt_float(c.imag, dt.type(0).real.dtype)})"
    return _fmt_float(v, dt)


class Emitter(StackLowering):
    """Builds the text of one function; lowerings call its helpers."""

    #: captured arrays up to this many elements are inlined as constants
    INLINE_LIMIT = 16

    def __init__(self, tf):
        self.tf = tf
        self.counter = 0
        self.lines = []
        self.indent = 2
        self.params = []            # (SSA name, type)
        self.captures = []          # arrays passed as extra parameters
        self._capture_ids = {}
        self.messages = []
        self.stack_kinds = getattr(tf, "stacks", {}) or {}
        self.static_stacks = {}     # name -> list of values
        self.native = {}            # name -> [count SV, leaf buffer SVs...]
        self.capacity = {}
        self.origin = None
        self._last_origin = None

    # ------------------------------------------------------------ text
    def fresh(self, hint="v"):
        self.counter += 1
        return f"%{hint}{self.counter}"

    def line(self, text):
        self.lines.append("  " * self.indent + text)

    def note_origin(self, origin):
        if origin and origin != self._last_origin:
            self.line("// " + " ".join(str(origin).split()))
            self._last_origin = origin

    def op(self, rhs, aval, hint="v"):
        """`%v = rhs` (rhs ends with its type signature); returns the SV."""
        name = self.fresh(hint)
        self.line(f"{name} = {rhs}")
        return SV(name, aval)

    # --------------------------------------------------------- values
    def const(self, value, dtype, shape=()):
        dt = np.dtype(dtype)
        arr = np.asarray(value)
        aval = ShapedArray(shape, dt)
        if arr.size == 1 or (arr.size and (arr == arr.flat[0]).all()):
            body = _scalar_text(arr.flat[0] if arr.size else 0, dt)
            return self.op(f"stablehlo.constant dense<{body}> : {tensor_type(shape, dt)}",
                           aval, "c")
        if arr.size == 0:
            return self.op(f"stablehlo.constant dense<> : {tensor_type(shape, dt)}", aval, "c")
        data = np.ascontiguousarray(np.broadcast_to(arr.astype(dt), shape))
        if dt.kind == "b":
            data = data.astype(np.uint8)
        hexed = data.tobytes().hex().upper()
        return self.op(f'stablehlo.constant dense<"0x{hexed}"> : {tensor_type(shape, dt)}',
                       aval, "c")

    def capture(self, arr):
        """A captured (or folded) array as a run-time value: a parameter
        when large, an inline constant when small."""
        arr = np.asarray(arr)
        if arr.size <= self.INLINE_LIMIT:
            return self.const(arr, arr.dtype, arr.shape)
        k = self._capture_ids.get(id(arr))
        if k is None:
            k = len(self.captures)
            self.captures.append(arr)
            self._capture_ids[id(arr)] = k
        return SV(f"%cap{k}", ShapedArray(arr.shape, arr.dtype))

    def rt(self, v, dtype=None, shape=None):
        """A run-time SV for `v` (SV or static number/array), converted to
        `dtype` and broadcast to `shape` when given."""
        if isinstance(v, ShapedArray):
            raise MissingRuleError("an abstract value", "xla", "internal: no run-time value")
        if not isinstance(v, SV):
            if isinstance(v, (bool, int, float, complex, np.generic)) or (
                    isinstance(v, np.ndarray) and v.ndim == 0):
                val = v[()] if isinstance(v, np.ndarray) else v
                if dtype is None:
                    dtype = {bool: np.bool_, int: np.int64, float: np.float64,
                             complex: np.complex128}.get(type(val)) or np.result_type(val)
                with np.errstate(all="ignore"):
                    return self.const(np.asarray(val).astype(dtype), dtype,
                                      () if shape is None else shape)
            if isinstance(v, np.ndarray):
                v = self.capture(v)
            else:
                raise MissingRuleError(f"a value of type {type(v).__name__}", "xla",
                                       "only numbers and arrays exist at run time")
        if dtype is not None:
            v = self.convert(v, dtype)
        if shape is not None:
            v = self.bcast(v, shape)
        return v

    def convert(self, x, dtype):
        dt = np.dtype(dtype)
        if x.dtype == dt:
            return x
        if dt.kind == "b":
            zero = self.const(0, x.dtype, x.shape)
            return self.compare("NE", x, zero)
        if x.dtype.kind == "c" and dt.kind != "c":
            x = self.op(f"stablehlo.real {x.name} : ({x.type}) -> "
                        f"{tensor_type(x.shape, x.dtype.type(0).real.dtype)}",
                        ShapedArray(x.shape, x.dtype.type(0).real.dtype))
            if x.dtype == dt:
                return x
        out = ShapedArray(x.shape, dt)
        return self.op(f"stablehlo.convert {x.name} : ({x.type}) -> {tensor_type(x.shape, dt)}",
                       out)

    def bcast(self, x, shape):
        """NumPy broadcasting of `x` to `shape` (trailing axes aligned)."""
        shape = tuple(shape)
        if x.shape == shape:
            return x
        lead = len(shape) - len(x.shape)
        if lead < 0:
            raise MissingRuleError("broadcast", "xla", f"cannot broadcast {x.shape} to {shape}")
        return self.broadcast_in_dim(x, shape, list(range(lead, len(shape))))

    def broadcast_in_dim(self, x, shape, dims):
        out = ShapedArray(shape, x.dtype)
        return self.op(f"stablehlo.broadcast_in_dim {x.name}, dims = {list(dims)} : "
                       f"({x.type}) -> {tensor_type(shape, x.dtype)}", out)

    def reshape(self, x, shape):
        shape = tuple(int(d) for d in shape)
        if x.shape == shape:
            return x
        out = ShapedArray(shape, x.dtype)
        return self.op(f"stablehlo.reshape {x.name} : ({x.type}) -> "
                       f"{tensor_type(shape, x.dtype)}", out)

    def transpose(self, x, perm):
        perm = [int(p) for p in perm]
        if perm == list(range(len(perm))):
            return x
        shape = tuple(x.shape[p] for p in perm)
        out = ShapedArray(shape, x.dtype)
        return self.op(f"stablehlo.transpose {x.name}, dims = {perm} : ({x.type}) -> "
                       f"{tensor_type(shape, x.dtype)}", out)

    def unary(self, opname, x, dtype=None):
        dt = x.dtype if dtype is None else np.dtype(dtype)
        out = ShapedArray(x.shape, dt)
        if dt != x.dtype:
            return self.op(f"{opname} {x.name} : ({x.type}) -> {tensor_type(x.shape, dt)}", out)
        return self.op(f"{opname} {x.name} : {x.type}", out)

    def binary(self, opname, x, y):
        """An elementwise op on two values of one dtype (broadcast here)."""
        shape = tuple(np.broadcast_shapes(x.shape, y.shape))
        x, y = self.bcast(x, shape), self.bcast(y, shape)
        return self.op(f"{opname} {x.name}, {y.name} : {x.type}", ShapedArray(shape, x.dtype))

    def compare(self, direction, x, y):
        shape = tuple(np.broadcast_shapes(x.shape, y.shape))
        x, y = self.bcast(x, shape), self.bcast(y, shape)
        kind = {"f": "FLOAT", "c": "FLOAT", "b": "UNSIGNED", "u": "UNSIGNED"}.get(
            x.dtype.kind, "SIGNED")
        out = ShapedArray(shape, np.bool_)
        return self.op(f"stablehlo.compare {direction}, {x.name}, {y.name}, {kind} : "
                       f"({x.type}, {y.type}) -> {tensor_type(shape, np.bool_)}", out)

    def select(self, pred, a, b):
        shape = tuple(np.broadcast_shapes(pred.shape, a.shape, b.shape))
        pred, a, b = self.bcast(pred, shape), self.bcast(a, shape), self.bcast(b, shape)
        return self.op(f"stablehlo.select {pred.name}, {a.name}, {b.name} : "
                       f"{pred.type}, {a.type}", ShapedArray(shape, a.dtype))

    def reduce(self, x, axes, kind, keepdims=False, dtype=None):
        """sum / prod / max / min / and / or of `x` over `axes`."""
        dt = np.dtype(dtype) if dtype is not None else x.dtype
        x = self.convert(x, dt)
        axes = sorted(int(a) for a in axes)
        kept = tuple(d for k, d in enumerate(x.shape) if k not in axes)
        if axes:
            init_val = {"sum": 0, "prod": 1, "or": False, "and": True}.get(kind)
            if kind in ("max", "min"):
                if dt.kind == "f":
                    init_val = -np.inf if kind == "max" else np.inf
                elif dt.kind == "b":
                    init_val = kind == "min"
                else:
                    info = np.iinfo(dt)
                    init_val = info.min if kind == "max" else info.max
            init = self.const(init_val, dt)
            opname = {"sum": "stablehlo.add", "prod": "stablehlo.multiply",
                      "max": "stablehlo.maximum", "min": "stablehlo.minimum",
                      "and": "stablehlo.and", "or": "stablehlo.or"}[kind]
            out = ShapedArray(kept, dt)
            r = self.op(f"stablehlo.reduce({x.name} init: {init.name}) applies {opname} across "
                        f"dimensions = {axes} : ({x.type}, {init.type}) -> "
                        f"{tensor_type(kept, dt)}", out)
        else:
            r = x
        if keepdims:
            r = self.reshape(r, tuple(1 if k in axes else d for k, d in enumerate(x.shape)))
        return r

    def dot_general(self, x, y, bx, by, cx, cy):
        """dot_general: result dims = batch, x's free, y's free."""
        dt = np.result_type(x.dtype, y.dtype)
        x, y = self.convert(x, dt), self.convert(y, dt)
        fx = [k for k in range(len(x.shape)) if k not in bx and k not in cx]
        fy = [k for k in range(len(y.shape)) if k not in by and k not in cy]
        shape = tuple([x.shape[k] for k in bx] + [x.shape[k] for k in fx] +
                      [y.shape[k] for k in fy])
        out = ShapedArray(shape, dt)
        return self.op(
            f"stablehlo.dot_general {x.name}, {y.name}, batching_dims = {list(bx)} x {list(by)}, "
            f"contracting_dims = {list(cx)} x {list(cy)}, precision = [DEFAULT, DEFAULT] : "
            f"({x.type}, {y.type}) -> {tensor_type(shape, dt)}", out)

    def slice(self, x, starts, limits, strides):
        shape = tuple(max(0, -(-(l - s) // st)) for s, l, st in zip(starts, limits, strides))
        out = ShapedArray(shape, x.dtype)
        return self.op(f"stablehlo.slice {x.name} [" + ", ".join(
            f"{s}:{l}:{st}" for s, l, st in zip(starts, limits, strides)) +
            f"] : ({x.type}) -> {tensor_type(shape, x.dtype)}", out)

    def reverse(self, x, dims):
        return self.op(f"stablehlo.reverse {x.name}, dims = {list(dims)} : {x.type}", x.aval)

    def concatenate(self, xs, axis):
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        out = ShapedArray(tuple(shape), xs[0].dtype)
        return self.op(f"stablehlo.concatenate {', '.join(x.name for x in xs)}, dim = {axis} : "
                       f"({', '.join(x.type for x in xs)}) -> {tensor_type(shape, xs[0].dtype)}",
                       out)

    def iota(self, shape, dim, dtype=np.int64):
        out = ShapedArray(tuple(shape), dtype)
        return self.op(f"stablehlo.iota dim = {dim} : {tensor_type(shape, dtype)}", out)

    def dynamic_slice(self, x, starts, sizes):
        out = ShapedArray(tuple(sizes), x.dtype)
        return self.op(f"stablehlo.dynamic_slice {x.name}, {', '.join(s.name for s in starts)}, "
                       f"sizes = {list(sizes)} : ({x.type}, " +
                       ", ".join(s.type for s in starts) + f") -> {tensor_type(sizes, x.dtype)}",
                       out)

    def dynamic_update_slice(self, x, upd, starts):
        return self.op(f"stablehlo.dynamic_update_slice {x.name}, {upd.name}, "
                       f"{', '.join(s.name for s in starts)} : ({x.type}, {upd.type}, " +
                       ", ".join(s.type for s in starts) + f") -> {x.type}", x.aval)

    # ---------------------------------------------------------- checks
    def check(self, ok, message):
        """Record `message` as the run's error unless `ok` (a bool value,
        reduced over all elements) holds; the first failure wins."""
        if not isinstance(ok, SV):
            if bool(np.all(ok)):
                return
            ok = self.const(False, np.bool_)
        if ok.shape != ():
            ok = self.reduce(ok, range(len(ok.shape)), "and")
        code = len(self.messages) + 1
        self.messages.append(message)
        zero = self.const(0, np.int32)
        clean = self.compare("EQ", self.state["err"], zero)
        bad = self.binary("stablehlo.and", clean, self.unary("stablehlo.not", ok))
        self.state["err"] = self.select(bad, self.const(code, np.int32), self.state["err"])

    def where(self):
        return f"`{self.origin}`" if self.origin else "the program"

    # --------------------------------------------------------- program
    def emit(self):
        tf = self.tf
        env = {}
        k = 0
        for p, aval in zip(tf.params, tf.in_avals):
            leaves = {}
            for path, a in leaves_with_paths(aval):
                name = f"%arg{k}"
                k += 1
                self.params.append((name, tensor_type(a.shape, a.dtype)))
                leaves[path] = SV(name, a)
            env[p] = rebuild(aval, leaves)
        self.in_leaves = [a for aval in tf.in_avals for _, a in leaves_with_paths(aval)]
        self.state = {"err": self.const(0, np.int32)}
        self._plan_stacks()
        self.block(tf.body, env, set(_names_of(tf.result)))
        res = self.value_of(tf.result, env)
        outs = []
        self.out_leaves = []
        for path, a in leaves_with_paths(tf.out_aval):
            v = self.rt(get_path(res, path), a.dtype, a.shape)
            outs.append(v)
            self.out_leaves.append(a)
        outs.append(self.state["err"])
        body = self.lines
        params = [f"{n}: {t}" for n, t in self.params] + [
            f"%cap{j}: {tensor_type(c.shape, c.dtype)}" for j, c in enumerate(self.captures)]
        head = [f"module @{_mlir_ident(tf.name)} {{",
                f"  func.func public @main({', '.join(params)}) -> "
                f"({', '.join(o.type for o in outs)}) {{"]
        tail = [f"    return {', '.join(o.name for o in outs)} : "
                f"{', '.join(o.type for o in outs)}", "  }", "}"]
        return "\n".join(head + body + tail) + "\n"

    def value_of(self, arg, env):
        if arg.name is not None and isinstance(env.get(arg.name), DynamicSlice):
            # typed as a static slice with its run-time parts dropped
            return env[arg.name]
        if arg.name is None or is_static(arg.aval):
            return arg.aval
        v = env.get(arg.name)
        if v is None or isinstance(v, Undefined):
            return arg.aval if not isinstance(arg.aval, ShapedArray) else None
        return v

    def block(self, stmts, env, live_after):
        # liveness of what follows each control-flow statement
        after = [None] * len(stmts)
        live = set(live_after)
        for k in range(len(stmts) - 1, -1, -1):
            after[k] = live
            live = live_before([stmts[k]], live)
        for k, s in enumerate(stmts):
            self.origin = s.origin
            if isinstance(s, TAssign):
                self.assign(s, env)
            elif isinstance(s, TIf):
                self.note_origin(s.origin)
                self.if_(s, env, after[k])
            elif isinstance(s, TFor):
                self.note_origin(s.origin)
                self.for_(s, env, after[k])
            elif isinstance(s, TWhile):
                self.note_origin(s.origin)
                self.while_(s, env, after[k])

    def assign(self, s, env):
        if s.prim in STACK_PRIMS:
            self.note_origin(s.origin)
            env[s.target] = self.stack_op(s, env)
            return
        prim = PRIMITIVES.get(s.prim) if s.prim else None
        effectful = prim is not None and prim.effectful
        if s.prim == "make_slice" and any(not is_static(a.aval) for a in s.args):
            env[s.target] = DynamicSlice([self.value_of(a, env) for a in s.args])
            return
        if (s.static or is_static(s.out)) and not effectful:
            env[s.target] = s.out
            return
        args = [self.value_of(a, env) for a in s.args]
        kwargs = {k: self.value_of(a, env) for k, a in s.kwargs.items()}
        if s.prim is None:
            env[s.target] = args[0]
            return
        self.note_origin(s.origin)
        rule = prim.lowerings.get("xla")
        if rule is None:
            raise MissingRuleError(s.prim, "xla", (prim.no_rule.get("xla", "") +
                                                   f" (at {self.where()})").strip())
        value = rule(self, s, args, kwargs)
        if is_static(s.out):
            env[s.target] = s.out
            return
        env[s.target] = self._fit(value, s.out)

    def _fit(self, value, aval):
        """The lowering's value with the statement's dtype and shape."""
        if isinstance(aval, ShapedArray):
            if not isinstance(value, SV):
                return self.rt(value, aval.dtype, aval.shape)
            if value.dtype != aval.dtype:
                value = self.convert(value, aval.dtype)
            if value.shape != aval.shape:
                if int(np.prod(value.shape)) == aval.size:
                    value = self.reshape(value, aval.shape)
                else:
                    value = self.bcast(value, aval.shape)
            return SV(value.name, aval)
        if isinstance(aval, (tuple, list)):
            return type(aval)(self._fit(v, a) for v, a in zip(value, aval))
        if isinstance(aval, dict):
            return {k: self._fit(value[k], a) for k, a in aval.items()}
        return aval

    # --------------------------------------------------- control flow
    def _carried_leaves(self, names_avals, env):
        """[(name, path, aval)] of the run-time leaves to carry."""
        out = []
        for n, aval in names_avals:
            for path, a in leaves_with_paths(aval):
                out.append((n, path, a))
        return out

    def _entry_value(self, env, n, path, a):
        v = get_path(env.get(n), path)
        if v is None or isinstance(v, (Undefined, StackRef)):
            return self.const(0, a.dtype, a.shape)
        return self.rt(v, a.dtype, a.shape)

    def _state_leaves(self, stacks):
        out = [("err",)]
        for st in sorted(stacks):
            for j in range(len(self.native[st])):
                out.append(("stack", st, j))
        return out

    def _state_get(self, key):
        if key[0] == "err":
            return self.state["err"]
        return self.native[key[1]][key[2]]

    def _state_set(self, key, v):
        if key[0] == "err":
            self.state["err"] = v
        else:
            self.native[key[1]][key[2]] = v

    def _bind_env(self, env, leaves, values):
        groups = {}
        for (n, path, a), v in zip(leaves, values):
            groups.setdefault(n, {})[path] = SV(v.name, a)
        return groups

    def _assign_groups(self, env, groups, avals):
        for n, parts in groups.items():
            env[n] = rebuild(avals[n], parts)

    def _static_after(self, env, joined):
        """Names whose joined value is static on every path keep it after
        the loop or branch (their run-time copies never left the body)."""
        for n, aval in joined.items():
            if is_static(aval) and not isinstance(aval, Undefined):
                env[n] = aval

    def while_(self, s, env, live_after):
        live = loop_live(s, live_after)
        names = [(n, a) for n, a in s.carried.items() if n in live]
        self._loop(s, env, names, None)

    def for_(self, s, env, live_after):
        live = loop_live(s, live_after)
        names = [(n, a) for n, a in s.carried.items() if n in live and n != s.var]
        self._loop(s, env, names, s)
        if s.var in live_after:
            env[s.var] = self._last_var

    def _loop(self, s, env, names, for_stmt):
        leaves = self._carried_leaves(names, env)
        stacks = _stacks_in(s.body, self.native)
        state = self._state_leaves(stacks)
        inits = []
        if for_stmt is not None:
            start = self.rt(self.value_of(for_stmt.start, env), np.int64)
            stop = self.rt(self.value_of(for_stmt.stop, env), np.int64)
            step_v = self.value_of(for_stmt.step, env)
            step = self.rt(step_v, np.int64)
            inits += [start]
        inits += [self._entry_value(env, n, p, a) for n, p, a in leaves]
        inits += [self._state_get(k) for k in state]
        w = self.fresh("w")
        bargs = [f"{w}_{j}" for j in range(len(inits))]
        types = ", ".join(v.type for v in inits)
        self.line(f"{w}:{len(inits)} = stablehlo.while(" + ", ".join(
            f"{b} = {v.name}" for b, v in zip(bargs, inits)) + f") : {types}")
        vals = [SV(b, v.aval) for b, v in zip(bargs, inits)]
        off = 1 if for_stmt is not None else 0
        avals = dict(names)

        def bind_all(e):
            self._static_after(e, s.carried)
            self._assign_groups(e, self._bind_env(e, leaves, vals[off:off + len(leaves)]), avals)
            for k, v in zip(state, vals[off + len(leaves):]):
                self._state_set(k, v)

        saved_state = dict(self.state), {k: list(v) for k, v in self.native.items()}
        self.indent += 2
        self.line("  " * 0 + "cond {")
        self.indent += 1
        e = dict(env)
        bind_all(e)
        if for_stmt is not None:
            i = vals[0]
            if isinstance(step_v, (int, np.integer)):
                cond = self.compare("LT" if step_v > 0 else "GT", i, stop)
            else:
                zero = self.const(0, np.int64)
                cond = self.select(self.compare("GT", step, zero), self.compare("LT", i, stop),
                                   self.compare("GT", i, stop))
        else:
            cond = self.rt(e[s.pred], np.bool_)
        self.line(f"stablehlo.return {cond.name} : {cond.type}")
        self.indent -= 1
        self.line("} do {")
        self.indent += 1
        e = dict(env)
        bind_all(e)
        if for_stmt is not None:
            e[for_stmt.var] = SV(vals[0].name, ShapedArray((), np.int64, weak_type=True))
        self.block(s.body, e, {n for n, _ in names} | ({s.pred} if for_stmt is None else set()))
        outs = []
        if for_stmt is not None:
            outs.append(self.binary("stablehlo.add", vals[0], step))
        outs += [self._entry_value(e, n, p, a) for n, p, a in leaves]
        outs += [self._state_get(k) for k in state]
        self.line(f"stablehlo.return {', '.join(o.name for o in outs)} : "
                  f"{', '.join(o.type for o in outs)}")
        self.indent -= 1
        self.line("}")
        self.indent -= 2
        self.state, self.native = saved_state[0], saved_state[1]
        res = [SV(f"{w}#{j}", v.aval) for j, v in enumerate(inits)]
        self._static_after(env, s.carried)
        self._assign_groups(env, self._bind_env(env, leaves, res[off:off + len(leaves)]), avals)
        for k, v in zip(state, res[off + len(leaves):]):
            self._state_set(k, v)
        if for_stmt is not None:
            last = self.binary("stablehlo.subtract", res[0], step)
            self._last_var = SV(last.name, ShapedArray((), np.int64, weak_type=True))

    def if_(self, s, env, live_after):
        names = [(n, a) for n, a in s.merged.items() if n in live_after]
        leaves = self._carried_leaves(names, env)
        stacks = _stacks_in(s.body, self.native) | _stacks_in(s.orelse, self.native)
        state = self._state_leaves(stacks)
        pred = self.value_of(s.pred, env)
        pred = self.rt(pred)
        if pred.shape != ():
            pred = self.reshape(pred, ())
        pred = self.convert(pred, np.bool_)
        saved_state = dict(self.state), {k: list(v) for k, v in self.native.items()}
        branch_outs = []
        bodies = []
        for stmts in (s.body, s.orelse):
            self.state = dict(saved_state[0])
            self.native = {k: list(v) for k, v in saved_state[1].items()}
            outer = self.lines
            self.lines = []
            self.indent += 2
            e = dict(env)
            self.block(stmts, e, {n for n, _ in names})
            outs = [self._entry_value(e, n, p, a) for n, p, a in leaves]
            outs += [self._state_get(k) for k in state]
            self.line(f"stablehlo.return {', '.join(o.name for o in outs)} : "
                      f"{', '.join(o.type for o in outs)}")
            self.indent -= 2
            bodies.append(self.lines)
            self.lines = outer
            branch_outs.append(outs)
        outs = branch_outs[0]
        r = self.fresh("if")
        types = ", ".join(o.type for o in outs)
        self.line(f'{r}:{len(outs)} = "stablehlo.if"({pred.name}) ({{')
        self.lines += bodies[0]
        self.line("}, {")
        self.lines += bodies[1]
        self.line(f"}}) : ({pred.type}) -> ({types})")
        self.state, self.native = saved_state
        res = [SV(f"{r}#{j}", o.aval) for j, o in enumerate(outs)]
        avals = dict(names)
        self._static_after(env, s.merged)
        self._assign_groups(env, self._bind_env(env, leaves, res[:len(leaves)]), avals)
        for k, v in zip(state, res[len(leaves):]):
            self._state_set(k, v)

def _names_of(arg):
    return [arg.name] if arg.name else []


def _stacks_in(stmts, native):
    """Native stacks a block pushes to or pops from."""
    out = set()
    for s in stmts:
        if isinstance(s, TAssign):
            if s.prim in STACK_PRIMS and s.prim != "new_stack" and s.args:
                st = stack_of(s.args[0])
                if st in native:
                    out.add(st)
        elif isinstance(s, TIf):
            out |= _stacks_in(s.body, native) | _stacks_in(s.orelse, native)
        elif isinstance(s, (TFor, TWhile)):
            out |= _stacks_in(s.body, native)
    return out


def _mlir_ident(name):
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "cotan"


class Emitted:
    """The emitted module and what the caller needs to run it."""

    def __init__(self, text, in_leaves, out_leaves, captures, messages):
        self.text = text
        self.in_leaves = in_leaves      # ShapedArray per run-time input leaf
        self.out_leaves = out_leaves    # ShapedArray per output leaf (error status excluded)
        self.captures = captures        # arrays appended to the inputs
        self.messages = messages        # error status k -> messages[k - 1]


def emit_stablehlo(tf):
    from . import lowerings  # noqa: F401  (registers the table)
    em = Emitter(tf)
    text = em.emit()
    return Emitted(text, em.in_leaves, em.out_leaves, em.captures, em.messages)
