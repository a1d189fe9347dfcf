"""Type and shape inference over core form, for one call signature.

Owns `infer_function(core, in_avals)`: an abstract interpretation of a
core-form function in which every name gets either a static value (a
Python/NumPy value known at compile time: shapes, axes, slices, folded
constants, containers) or a `ShapedArray` (dtype + static shape, value
known only at run time).  Each primitive's `abstract_eval` gives its result
(NumPy's promotion); statements whose arguments are all static are folded.

The result is a *typed program* (`TypedFunction`): the same statements,
each annotated with the abstract values of its arguments and result, with
control flow kept when it depends on run-time values and resolved when it
does not.  Loops stay loops; a loop whose body changes the *structure* of
a carried static value (a list growing by one element per trip, a tuple of
shapes) is a compile-time loop and is unrolled, as is a loop indexing a
container with its counter.  At control-flow joins a name's two types are
unified (static scalar with run-time scalar; scalar int with float) or
refused with `TypeInferenceError` naming the variable, the line and both
types.  Must not emit code (llvm/emit.py) or plan kernels (plan.py).
"""

import gast
import numpy as np

from ..errors import ShapeError, TypeInferenceError, MissingRuleError, NonDifferentiableError
from ..runtime.numeric_rules import tree_map
from ..runtime.table import PRIMITIVES
from .abstract import RuntimeText, ShapedArray, abstractify

MAX_UNROLL = 4096
#: statement visits type inference may make for one signature
MAX_INFER_WORK = 2_000_000


class NeedsUnroll(Exception):
    """A run-time loop counter met something only a static index can do."""


class StructureChange(Exception):
    pass


class ShapeChange(TypeInferenceError):
    """A value's shape differs between loop trips or branches: refused,
    except in a loop with a static trip count, which is then unrolled."""


# --------------------------------------------------------------- typed program

class Arg:
    """An argument: `name` (None for a constant) and its abstract value."""
    __slots__ = ("name", "aval")

    def __init__(self, name, aval):
        self.name = name
        self.aval = aval

    def __repr__(self):
        if self.name is None:
            return fmt_value(self.aval)
        return self.name


class TAssign:
    def __init__(self, target, prim, args, kwargs, out, origin, static):
        self.target = target
        self.prim = prim            # primitive name, or None for `target = atom`
        self.args = args            # [Arg]
        self.kwargs = kwargs        # name -> Arg
        self.out = out              # abstract value of the result
        self.origin = origin
        self.static = static        # folded at compile time: emits nothing


class TIf:
    def __init__(self, pred, body, orelse, merged, origin):
        self.pred, self.body, self.orelse = pred, body, orelse
        self.merged = merged        # name -> abstract value after the join
        self.origin = origin


class TFor:
    def __init__(self, var, start, stop, step, body, carried, origin):
        self.var = var
        self.start, self.stop, self.step = start, stop, step   # Args
        self.body = body
        self.carried = carried      # name -> abstract value at the loop head
        self.origin = origin


class TWhile:
    def __init__(self, pred, body, carried, origin):
        self.pred = pred            # name of the predicate (recomputed in body)
        self.body = body
        self.carried = carried
        self.origin = origin


class TypedFunction:
    def __init__(self, name, params, in_avals, body, result, out_aval):
        self.name = name
        self.params = params
        self.in_avals = in_avals
        self.body = body
        self.result = result        # Arg
        self.out_aval = out_aval


# ------------------------------------------------------------------- printing

def fmt_value(v):
    if isinstance(v, ShapedArray):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(fmt_value(e) for e in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(fmt_value(e) for e in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {fmt_value(e)}" for k, e in v.items()) + "}"
    if isinstance(v, np.ndarray):
        if v.size <= 8:
            return f"const {v.dtype}{list(v.shape)} {v.tolist()}"
        return f"const {v.dtype}{list(v.shape)}"
    return repr(v)


def typed_text(tf):
    lines = [f"def {tf.name}(" + ", ".join(
        f"{p}: {fmt_value(a)}" for p, a in zip(tf.params, tf.in_avals)) + "):"]
    _text_block(tf.body, 1, lines)
    lines.append(f"    return {tf.result!r}  # {fmt_value(tf.out_aval)}")
    return "\n".join(lines) + "\n"


def _text_block(stmts, depth, lines):
    pad = "    " * depth
    for s in stmts:
        if isinstance(s, TAssign):
            args = [repr(a) for a in s.args] + [f"{k}={a!r}" for k, a in s.kwargs.items()]
            rhs = f"{s.prim}({', '.join(args)})" if s.prim else args[0]
            mark = "static " if s.static else ""
            lines.append(f"{pad}{s.target}: {mark}{fmt_value(s.out)} = {rhs}")
        elif isinstance(s, TIf):
            lines.append(f"{pad}if {s.pred!r}:")
            _text_block(s.body, depth + 1, lines)
            if not s.body:
                lines.append(pad + "    pass")
            if s.orelse:
                lines.append(f"{pad}else:")
                _text_block(s.orelse, depth + 1, lines)
            lines.append(f"{pad}# joined: " + ", ".join(
                f"{k}: {fmt_value(v)}" for k, v in s.merged.items()))
        elif isinstance(s, TFor):
            lines.append(f"{pad}for {s.var}: i64[] in range({s.start!r}, {s.stop!r}, {s.step!r}):"
                         f"  # carried: " + ", ".join(
                             f"{k}: {fmt_value(v)}" for k, v in s.carried.items()))
            _text_block(s.body, depth + 1, lines)
        elif isinstance(s, TWhile):
            lines.append(f"{pad}while {s.pred}:  # carried: " + ", ".join(
                f"{k}: {fmt_value(v)}" for k, v in s.carried.items()))
            _text_block(s.body, depth + 1, lines)


# ------------------------------------------------------------------ joining

def is_static(v):
    if isinstance(v, (ShapedArray, RuntimeText)):
        return False
    if isinstance(v, (tuple, list)):
        return all(is_static(e) for e in v)
    if isinstance(v, dict):
        return all(is_static(e) for e in v.values())
    return True


def _same_static(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a is b or (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same_static(x, y) if is_static(x) and is_static(y)
                                        else False for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _scalar_like(v):
    return isinstance(v, (bool, int, float, np.generic)) or (
        isinstance(v, np.ndarray) and v.ndim == 0)


def join(a, b, name, origin):
    """The abstract value covering both `a` and `b`, or TypeInferenceError."""
    if isinstance(a, Undefined):
        return b
    if isinstance(b, Undefined):
        return a
    # `result = None` before an early-return branch: normalization's flags
    # guarantee the None path never reads it, so the value's type wins
    if a is None and b is not None and not is_static(b):
        return b
    if b is None and a is not None and not is_static(a):
        return a
    if is_static(a) and is_static(b) and not isinstance(a, (tuple, list, dict)) \
            and _same_static(a, b):
        return a
    if isinstance(a, (tuple, list, dict)) or isinstance(b, (tuple, list, dict)):
        if type(a) is not type(b) or len(a) != len(b) or (
                isinstance(a, dict) and list(a) != list(b)):
            raise StructureChange(name)
        if isinstance(a, dict):
            return {k: join(a[k], b[k], name, origin) for k in a}
        return type(a)(join(x, y, name, origin) for x, y in zip(a, b))
    if a is None or b is None or isinstance(a, (str, slice)) or isinstance(b, (str, slice)):
        if a is None and b is None:
            return None
        raise StructureChange(name)
    try:
        aa = a if isinstance(a, ShapedArray) else abstractify(
            a if not isinstance(a, np.ndarray) or a.ndim else a[()])
        bb = b if isinstance(b, ShapedArray) else abstractify(
            b if not isinstance(b, np.ndarray) or b.ndim else b[()])
    except TypeError:
        raise StructureChange(name) from None
    if aa.shape != bb.shape:
        raise ShapeChange(
            f"variable {name!r} changes shape across a loop or branch ({origin}): "
            f"{fmt_value(aa)} and {fmt_value(bb)}; give it one shape on every path "
            "(e.g. allocate it with its final shape before the loop)")
    if aa.dtype == bb.dtype:
        return ShapedArray(aa.shape, aa.dtype, aa.weak_type and bb.weak_type)
    kinds = {aa.dtype.kind, bb.dtype.kind}
    if aa.shape == () and kinds <= {"b", "i", "u", "f"}:
        dt = np.result_type(aa.dtype, bb.dtype)
        return ShapedArray((), dt, aa.weak_type and bb.weak_type)
    raise TypeInferenceError(
        f"variable {name!r} changes dtype across a loop or branch ({origin}): "
        f"{fmt_value(aa)} and {fmt_value(bb)}; convert it explicitly "
        "(e.g. x.astype(...)) so every path gives it the same dtype")


class Undefined:
    """A name not bound on some path (reading it there is Python's NameError)."""
    def __repr__(self):
        return "undefined"


UNDEFINED = Undefined()


def join_envs(e1, e2, names, origin):
    out = dict(e1)
    for n in names:
        a, b = e1.get(n, UNDEFINED), e2.get(n, UNDEFINED)
        out[n] = join_name(a, b, n, origin)
    return out


#: the name normalization gives the results of effectful calls
DISCARD = "_"


def join_name(a, b, name, origin):
    """`join` for variable `name`.  `_` is the normalizer's name for every
    effectful call's result, and each use of it directly follows its
    assignment (a second reverse pass reads `_ = stack_unpush(...)` once,
    right away): where its types differ it is left undefined at the join
    instead of refused."""
    try:
        return join(a, b, name, origin)
    except (TypeInferenceError, StructureChange):
        if name == DISCARD:
            return UNDEFINED
        raise


# ----------------------------------------------------------------- inference

def assigned_names(stmts):
    out = []
    for s in stmts:
        if isinstance(s, gast.Assign):
            out.append(s.targets[0].id)
        elif isinstance(s, gast.If):
            out += assigned_names(s.body) + assigned_names(s.orelse)
        elif isinstance(s, gast.For):
            out.append(s.target.id)
            out += assigned_names(s.body)
        elif isinstance(s, gast.While):
            out += assigned_names(s.body)
    return list(dict.fromkeys(out))


def const_value(node):
    if isinstance(node, gast.Constant):
        return node.value
    if isinstance(node, gast.Tuple):
        return tuple(const_value(e) for e in node.elts)
    if isinstance(node, gast.UnaryOp):
        return -node.operand.value
    raise TypeError(node)


# reverse-mode stacks are typed in infer_stacks.py (it imports this module,
# whose names above are all it needs); STACK_PRIMS is re-exported for the emitter
from .infer_stacks import STACK_PRIMS, StackTyping, find_static_stacks  # noqa: E402


class Inferencer(StackTyping):
    def __init__(self, core, static_stacks=frozenset()):
        # static_stacks None: the discovery pass (every stack assumed native)
        self.core = core
        self.captured = core.captured
        self.fname = core.name
        # reverse-mode stacks: a stack touched only outside run-time control
        # flow is emulated at compile time (`static_stacks`: its values keep
        # their exact, possibly static, types); any other one becomes a
        # growable native buffer of one element type, the join of its pushes
        self.static_stacks = static_stacks
        self.stack_vals = {}        # static stack -> list of pushed values
        self.stack_elem = {}        # stack -> joined element type
        self.touched_rt = set()     # stacks used inside run-time control flow
        self.depth = 0              # nesting of run-time control flow
        self.bad_stacks = {}        # (discovery pass) stack -> why it has no type
        self.stack_adj = {}         # static stack -> its adjoint stack (cotangent types)
        self.stack_links = []       # (copy, original): copy_stack pairs, static together

    def atom(self, node, env):
        if isinstance(node, gast.Name):
            n = node.id
            if n in env:
                v = env[n]
                if isinstance(v, Undefined):
                    raise TypeInferenceError(f"in {self.fname!r}: variable {n!r} may be "
                                             "used before it is assigned")
                return Arg(n, v)
            if n in self.captured:
                return Arg(None, _static_capture(self.captured[n]))
            raise TypeInferenceError(f"in {self.fname!r}: unknown name {n!r}")
        return Arg(None, const_value(node))

    def block(self, stmts, env):
        # nested loops each iterate to a fixed point (and compile-time loops
        # unroll): bound the total work so a program whose types do not
        # settle fails with a message instead of running for ever
        self.work = getattr(self, "work", 0) + len(stmts)
        if self.work > MAX_INFER_WORK:
            raise TypeInferenceError(
                f"in {self.fname!r}: inferring types took more than {MAX_INFER_WORK} "
                "statement visits (nested loops whose types keep changing, or a very long "
                "compile-time loop); run it without jit, or make the loop's values keep "
                "their types")
        out = []
        for s in stmts:
            origin = getattr(s, "cotan_origin", None) or ""
            if isinstance(s, gast.Assign):
                out.append(self.assign(s, env, origin))
            elif isinstance(s, gast.If):
                out += self.if_(s, env, origin)
            elif isinstance(s, gast.For):
                out += self.for_(s, env, origin)
            elif isinstance(s, gast.While):
                out += self.while_(s, env, origin)
            elif isinstance(s, gast.Return):
                pass
        return out

    def assign(self, s, env, origin):
        target = s.targets[0].id
        v = s.value
        if not isinstance(v, gast.Call):
            a = self.atom(v, env)
            env[target] = a.aval
            return TAssign(target, None, [a], {}, a.aval, origin, is_static(a.aval))
        pname = v.func.id
        prim = PRIMITIVES[pname]
        args = [self.atom(x, env) for x in v.args]
        kwargs = {k.arg: self.atom(k.value, env) for k in v.keywords}
        if pname in STACK_PRIMS:
            out = self.stack_op(target, pname, args, origin)
            env[target] = out
            return TAssign(target, pname, args, kwargs, out, origin, False)
        out = self.eval_prim(prim, args, kwargs, origin)
        env[target] = out
        static = all(is_static(a.aval) for a in args) and \
            all(is_static(a.aval) for a in kwargs.values()) and is_static(out) and \
            not prim.effectful
        return TAssign(target, pname, args, kwargs, out, origin, static)

    def eval_prim(self, prim, args, kwargs, origin):
        avals = [a.aval for a in args]
        kw = {k: a.aval for k, a in kwargs.items()}
        if prim.name == "getitem" and isinstance(avals[0], (tuple, list)) and \
                any(isinstance(i, ShapedArray) for i in avals[1:]):
            raise NeedsUnroll()
        if prim.name == "make_slice" and self.depth > 0 and \
                any(isinstance(a, ShapedArray) for a in avals):
            # `x[i:i + 2]` in a loop: with a static trip count the loop is
            # unrolled and each trip's slice is static; otherwise the
            # abstract evaluation refuses the run-time bounds
            raise NeedsUnroll("a slice whose bounds read a run-time value")
        if prim.name in ("is_", "is_not") and (avals[0] is None) != (avals[1] is None) and \
                any(not is_static(a) for a in avals):
            # a run-time value is never None
            return prim.name == "is_not"
        if prim.abstract_eval is None:
            raise MissingRuleError(prim.name, "abstract evaluation")
        all_static = all(is_static(a) for a in avals) and all(is_static(a) for a in kw.values())
        if prim.name == "strformat" and not all_static:
            return RuntimeText(avals[0])
        if any(isinstance(a, RuntimeText) for a in _leaves_of(avals + list(kw.values()))) \
                and prim.name not in ("print", "print_lanes", "make_tuple", "make_list",
                                      "make_dict"):
            raise MissingRuleError(prim.name, "llvm", f"`{origin}` uses a string built from "
                                   "run-time values; under jit such strings can only be "
                                   "printed (compiled code has no strings)")
        try:
            if all_static and prim.name not in _NEVER_FOLD:
                with np.errstate(all="ignore"):
                    return prim.impl(*avals, **kw)
            with np.errstate(all="ignore"):
                if prim.name in _PASS_THROUGH:
                    return _pass_through_eval(prim, avals, kw)
                return prim.abstract_eval(*avals, **kw)
        except (TypeInferenceError, MissingRuleError, NeedsUnroll, StructureChange,
                NonDifferentiableError):
            raise
        except IndexError as e:
            raise ShapeError(f"in {self.fname!r}: index out of bounds in `{origin}`: {e}") from None
        except (ValueError, TypeError) as e:
            raise ShapeError(f"in {self.fname!r}: `{origin}`: {prim.name} cannot take "
                             f"{', '.join(fmt_value(a) for a in avals)}: {e}") from None

    def if_(self, s, env, origin):
        pred = self.atom(s.test, env)
        if is_static(pred.aval):
            return self.block(s.body if pred.aval else s.orelse, env)
        e1, e2 = dict(env), dict(env)
        self.depth += 1
        try:
            body = self.block(s.body, e1)
            orelse = self.block(s.orelse, e2)
        finally:
            self.depth -= 1
        names = assigned_names(s.body) + assigned_names(s.orelse)
        names = list(dict.fromkeys(names))
        merged = {}
        for n in names:
            a, b = e1.get(n, UNDEFINED), e2.get(n, UNDEFINED)
            try:
                joined = join_name(a, b, n, origin)
                if isinstance(joined, Undefined):
                    env[n] = joined
                    continue
                merged[n] = joined
            except StructureChange:
                raise TypeInferenceError(
                    f"in {self.fname!r}: variable {n!r} holds {fmt_value(a)} on one branch "
                    f"and {fmt_value(b)} on the other of `{origin}`; under jit a "
                    "value's structure must not depend on a run-time condition") from None
            env[n] = merged[n]
        return [TIf(pred, body, orelse, merged, origin)]

    def _loop_fixpoint(self, s, env, origin, bind_var):
        names = assigned_names(s.body)
        head = dict(env)
        touched = set(self.touched_rt)
        self.depth += 1
        try:
            return self._fixpoint(s, origin, bind_var, names, head)
        except (NeedsUnroll, StructureChange):
            # the loop is unrolled at compile time: its stack uses are static
            self.touched_rt = touched
            raise
        finally:
            self.depth -= 1

    def _fixpoint(self, s, origin, bind_var, names, head):
        for _ in range(20):
            if bind_var:
                bind_var(head)
            trial = dict(head)
            body = self.block(s.body, trial)
            new = join_envs(head, trial, names, origin)
            if all(_avals_equal(new.get(n, UNDEFINED), head.get(n, UNDEFINED)) for n in names):
                carried = {n: head[n] for n in names if n in head
                           and not isinstance(head[n], Undefined)}
                return body, head, carried
            head = new
        raise TypeInferenceError(f"in {self.fname!r}: types in the loop `{origin}` do not settle")

    def for_(self, s, env, origin):
        var = s.target.id
        start, stop, step = [self.atom(a, env) for a in s.iter.args]
        bounds_static = all(is_static(a.aval) for a in (start, stop, step))
        if bounds_static and len(range(int(start.aval), int(stop.aval), int(step.aval))) == 0:
            return []
        try:
            def bind(head):
                head[var] = ShapedArray((), np.int64, weak_type=True)
            body, head, carried = self._loop_fixpoint(s, env, origin, bind)
            env.clear()
            env.update(head)
            return [TFor(var, start, stop, step, body, carried, origin)]
        except ShapeChange:
            # a value whose shape changes per trip (np.diff's `a = a[1:] -
            # a[:-1]`): with a static trip count each trip gets its own types
            if not bounds_static:
                raise
        except (NeedsUnroll, StructureChange) as e:
            if not bounds_static:
                raise TypeInferenceError(
                    f"in {self.fname!r}: the loop `{origin}` changes the structure of "
                    f"{getattr(e, 'args', [''])[0] or 'a container'} on each trip (or "
                    "indexes a list with its counter) and its trip count is only known "
                    "at run time; make the trip count static or use arrays") from None
        rng = range(int(start.aval), int(stop.aval), int(step.aval))
        if len(rng) > MAX_UNROLL:
            raise TypeInferenceError(f"in {self.fname!r}: the compile-time loop `{origin}` "
                                     f"has {len(rng)} trips (more than {MAX_UNROLL})")
        out = []
        for i in rng:
            env[var] = i
            out.append(TAssign(var, None, [Arg(None, i)], {}, i, origin, True))
            out += self.block(s.body, env)
        return out

    def while_(self, s, env, origin):
        pred = s.test.id
        if is_static(env.get(pred)):
            out = []
            for _ in range(MAX_UNROLL + 1):
                if not env[pred]:
                    return out
                out += self.block(s.body, env)
                if not is_static(env[pred]):
                    break
            else:
                raise TypeInferenceError(f"in {self.fname!r}: the compile-time loop "
                                         f"`{origin}` does not end")
            # the predicate became a run-time value: continue as a run-time loop
        try:
            body, head, carried = self._loop_fixpoint(s, env, origin, None)
        except (NeedsUnroll, StructureChange) as e:
            raise TypeInferenceError(
                f"in {self.fname!r}: the while loop `{origin}` changes the structure of "
                f"{e.args[0] if e.args else 'a container'} on each trip; under jit a "
                "run-time loop must keep its values' types") from None
        env.clear()
        env.update(head)
        return out_if_list(locals().get("out")) + [TWhile(pred, body, carried, origin)]


def out_if_list(x):
    return x if isinstance(x, list) else []


#: primitives never evaluated at compile time even on static arguments: they
#: create arrays (compiled code builds them instead of embedding constants)
_NEVER_FOLD = {"zeros", "ones", "eye", "tri", "arange", "linspace", "zeros_like",
               "ones_like", "print", "check"} | STACK_PRIMS


#: vmap's helpers that hand (some) leaves back unchanged: running them on
#: stand-ins would turn a weak 0-d leaf (a Python float stand-in) into a
#: compile-time constant, so such leaves are tracked by identity instead
_PASS_THROUGH = {"batch_move_in", "batch_broadcast", "batch_move_out", "batch_lift",
                 "select_lanes", "batch_sum_unbatched", "getitem_lanes"}


def _pass_through_eval(prim, avals, kw):
    from ..runtime.numeric_rules import abstract_result
    tracked = {}

    def stand_in(v):
        if isinstance(v, ShapedArray):
            d = np.broadcast_to(np.zeros((), v.dtype), v.shape)
            tracked[id(d)] = (d, v)
            return d
        return v
    args = [tree_map(stand_in, a) for a in avals]
    kws = {k: tree_map(stand_in, a) for k, a in kw.items()}
    out = prim.impl(*args, **kws)

    def back(v):
        hit = tracked.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        return abstract_result(v)
    return tree_map(back, out)




def _avals_equal(a, b):
    if isinstance(a, ShapedArray) or isinstance(b, ShapedArray):
        return a == b
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(
            _avals_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_avals_equal(a[k], b[k]) for k in a)
    if isinstance(a, Undefined) or isinstance(b, Undefined):
        return isinstance(a, Undefined) and isinstance(b, Undefined)
    return type(a) is type(b) and _same_static(a, b)


def _static_capture(v):
    if isinstance(v, np.generic):
        return np.asarray(v)[()]
    return v


def _infer(inf, in_avals):
    core = inf.core
    env = dict(zip(core.params, in_avals))
    body = inf.block(core.node.body, env)
    ret = core.node.body[-1]
    result = inf.atom(ret.value, env) if ret.value is not None else Arg(None, None)
    if any(isinstance(a, RuntimeText) for a in _leaves_of([result.aval])):
        raise MissingRuleError("strformat", "llvm", f"{core.name} returns a string built from "
                               "run-time values; compiled code has no strings (return the "
                               "values and format them outside jit)")
    return TypedFunction(core.name, core.params, list(in_avals), body, result, result.aval)


def infer_function(core, in_avals):
    """The TypedFunction of CoreFunction `core` called with `in_avals`.

    `tf.stacks` maps each reverse-mode stack to ("static", None) (emulated
    at compile time) or ("native", element type) (a growable buffer).  A
    first pass finds which stacks meet run-time control flow; when some do
    not, a second pass types the function with those emulated.
    Checkpointed calls are expanded first (expand_checkpoints.py)."""
    from .expand_checkpoints import expand_checkpoints
    core = expand_checkpoints(core)
    inf = Inferencer(core, None)
    try:
        tf = _infer(inf, in_avals)
        failure = None
    except (TypeInferenceError, ShapeError) as e:
        # a popped value typed as a run-time value may break inference where
        # the exact static value would not: retry if some stack may be static
        failure = e
    static = find_static_stacks(inf)
    if failure is not None and not static:
        raise failure
    if failure is None:
        for n, msg in inf.bad_stacks.items():
            if n not in static:
                raise TypeInferenceError(msg)
    if static:
        inf = Inferencer(core, static)
        tf = _infer(inf, in_avals)
    tf.stacks = {n: ("static", None) if n in static else ("native", inf.stack_elem.get(n))
                 for n in inf.stack_vals}
    for copy, orig in inf.stack_links:
        if copy not in static and not _avals_equal(tf.stacks[copy][1], tf.stacks[orig][1]):
            raise TypeInferenceError(
                f"in {core.name!r}: stack {copy!r}, a copy of {orig!r}, gets values of "
                f"another type ({fmt_value(tf.stacks[copy][1])} and "
                f"{fmt_value(tf.stacks[orig][1])})")
    return tf


def _leaves_of(vals):
    out = []
    for v in vals:
        if isinstance(v, (tuple, list)):
            out += _leaves_of(list(v))
        elif isinstance(v, dict):
            out += _leaves_of(list(v.values()))
        else:
            out.append(v)
    return out
