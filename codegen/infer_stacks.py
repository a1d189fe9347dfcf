"""Type inference of reverse mode's stacks (part of infer.py's Inferencer).

Owns the typing of the stack primitives (`STACK_PRIMS`): which names hold
which stack (`StackRef`, a compile-time value, so a stack passed through a
tuple is still found), each stack's element type (the join of its pushes,
`runtime_aval`), the cotangent type of its adjoint stack in a second
reverse pass (`adjoint_aval`), copies (`copy_stack`), and which stacks can
be emulated at compile time (`find_static_stacks`).  `StackTyping` is mixed
into infer.Inferencer; llvm/stacks.py lowers what is typed here.  Must not
emit code.
"""

import numpy as np

from ..errors import ShapeError, TypeInferenceError
from ..runtime.numeric_rules import tree_map
from ..runtime.table import PRIMITIVES
from .abstract import ShapedArray

#: primitives of reverse mode's per-variable stacks (see `StackTyping.stack_op`):
#: the primal sweep's (new_stack, push), the adjoint sweep's (pop,
#: pop_restore), a second reverse pass's adjoint stacks (stack_unpop,
#: stack_unpush) and vjp's copies (copy_stack)
STACK_PRIMS = {"new_stack", "push", "pop", "pop_restore", "stack_unpop", "stack_unpush",
               "copy_stack"}


class StackRef:
    """The compile-time value of a name holding a reverse-mode stack: which
    stack it is (stacks are found by this, so one passed through a tuple or
    renamed is still the same stack)."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __eq__(self, other):
        return isinstance(other, StackRef) and other.name == self.name

    def __hash__(self):
        return hash(("stack", self.name))

    def __repr__(self):
        return f"stack {self.name}"


def holds_stack(v):
    if isinstance(v, StackRef):
        return True
    if isinstance(v, (tuple, list)):
        return any(holds_stack(e) for e in v)
    if isinstance(v, dict):
        return any(holds_stack(e) for e in v.values())
    return False


def stack_of(arg):
    """The name of the stack that argument `arg` (an Arg) holds, or None."""
    return arg.aval.name if isinstance(arg.aval, StackRef) else None


class _Hetero:
    """A stack whose pushed values have no common type."""


HETERO = _Hetero()


def runtime_aval(v):
    """The abstract value `v` has once it went through a run-time stack:
    numbers become 0-d ShapedArrays (weak for Python scalars), arrays keep
    shape and dtype; None, strings and slices stay static."""
    if isinstance(v, ShapedArray) or v is None or isinstance(v, (str, slice)):
        return v
    if isinstance(v, (tuple, list)):
        return type(v)(runtime_aval(e) for e in v)
    if isinstance(v, dict):
        return {k: runtime_aval(e) for k, e in v.items()}
    # NumPy scalars first: np.float64 is a subclass of float, but keeps its
    # dtype (and is not weak)
    if isinstance(v, (np.ndarray, np.generic)):
        return ShapedArray(np.shape(v), np.asarray(v).dtype)
    if isinstance(v, bool):
        return ShapedArray((), np.dtype(np.bool_))
    if isinstance(v, int):
        return ShapedArray((), np.dtype(np.int64), weak_type=True)
    if isinstance(v, float):
        return ShapedArray((), np.dtype(np.float64), weak_type=True)
    return v


def adjoint_aval(v):
    """The type of a cotangent of a value of type `v` on an adjoint stack:
    its run-time leaves as floating-point arrays of the same shapes (as
    zero_adjoint makes them), anything static as None (no cotangent)."""
    def leaf(a):
        if not isinstance(a, ShapedArray):
            return None
        dt = a.dtype if np.issubdtype(a.dtype, np.inexact) else np.dtype(np.float64)
        return ShapedArray(a.shape, dt)
    return tree_map(leaf, runtime_aval(v))


def _fits(kept, other):
    """True when cotangent type `other` fits cotangent records of type
    `kept`: same structure and leaf shapes (dtypes are cast), None (zero)
    allowed for any leaf."""
    if other is None:
        return True
    if isinstance(kept, ShapedArray) or isinstance(other, ShapedArray):
        return isinstance(kept, ShapedArray) and isinstance(other, ShapedArray) and \
            kept.shape == other.shape
    if isinstance(kept, (tuple, list)) and isinstance(other, (tuple, list)):
        return len(kept) == len(other) and all(_fits(x, y) for x, y in zip(kept, other))
    if isinstance(kept, dict) and isinstance(other, dict):
        return list(kept) == list(other) and all(_fits(kept[k], other[k]) for k in kept)
    return False


def find_static_stacks(inf):
    """The stacks used only outside run-time control flow; a copy and its
    original are static together (a native copy of a static stack could be
    filled, but a static copy of a native one could not)."""
    static = set(inf.stack_vals) - inf.touched_rt
    changed = True
    while changed:
        changed = False
        for copy, orig in inf.stack_links:
            if (copy in static) != (orig in static):
                static.discard(copy)
                static.discard(orig)
                changed = True
    return frozenset(static)


class StackTyping:
    """The Inferencer's stack methods; it holds `stack_vals` (static stack
    -> the values pushed), `stack_elem` (stack -> joined element type),
    `stack_adj` (static stack -> its adjoint stack's cotangent types),
    `stack_links` (copy_stack pairs), `touched_rt`, `depth`, `bad_stacks`
    and `static_stacks` (see infer.Inferencer.__init__)."""

    def stack_op(self, target, pname, args, origin):
        """Type of a stack primitive; pushes are recorded, never folded."""
        if pname in ("new_stack", "copy_stack"):
            if self.depth:
                self.touched_rt.add(target)
            if pname == "new_stack":
                self.stack_vals[target] = []
            else:
                self.copy_stack(target, args[0], origin)
            self.stack_adj.pop(target, None)
            return StackRef(target)
        st = stack_of(args[0])
        if st is None:
            raise TypeInferenceError(f"in {self.fname!r}: `{origin}`: {args[0]!r} is not a "
                                     "reverse-mode stack made in this function")
        if len(args) > 1 and holds_stack(args[1].aval):
            raise TypeInferenceError(
                f"in {self.fname!r}: `{origin}` saves a reverse-mode stack on another "
                "stack (a gradient through a loop, taken inside a loop that is itself "
                "differentiated); under jit stacks cannot be saved: run it without jit, "
                "or move the inner gradient out of the loop")
        if self.depth:
            self.touched_rt.add(st)
        static = st in (self.static_stacks or ())
        if static and self.depth:
            # only a loop the discovery pass unrolled gets here: unroll it again
            raise infer.NeedsUnroll()
        if pname in ("stack_unpop", "stack_unpush"):
            return self.adjoint_stack_op(st, pname, args, origin, static)
        if pname == "push":
            v = args[1].aval
            if static:
                self.stack_vals[st].append(v)
            old = self.stack_elem.get(st, infer.UNDEFINED)
            if old is not HETERO:
                try:
                    self.stack_elem[st] = infer.join(old, runtime_aval(v), st, origin)
                except (infer.StructureChange, TypeInferenceError):
                    self.stack_elem[st] = HETERO
            return None
        if static:
            vals = self.stack_vals[st]
            if not vals:
                raise ShapeError(f"in {self.fname!r}: `{origin}` pops an empty stack")
            top = vals.pop()
            if pname == "pop":
                return top
            return vals[-1] if vals else args[1].aval
        elem = self.stack_elem.get(st, infer.UNDEFINED)
        if elem is HETERO or isinstance(elem, infer.Undefined):
            msg = (f"in {self.fname!r}: the values saved for `{origin}` change structure "
                   "from one loop trip to the next; under jit a variable overwritten in a "
                   "run-time loop must keep its type")
            if self.static_stacks is None:
                # discovery pass: the stack may still turn out static
                self.bad_stacks[st] = msg
                if len(args) < 2:
                    # a plain pop has no current value to type it by: nothing
                    # pushed is known yet (random program 100314 under
                    # jit(grad) gave an IndexError here); the stack is marked
                    # bad, so a later pass refuses unless it turns out static
                    return infer.UNDEFINED
                return runtime_aval(args[1].aval)
            raise TypeInferenceError(msg)
        if pname == "pop":
            return elem
        try:
            return infer.join(elem, runtime_aval(args[1].aval), st, origin)
        except infer.StructureChange:
            raise TypeInferenceError(f"in {self.fname!r}: `{origin}`: saved values and the "
                                     "current value have different structures") from None

    def copy_stack(self, target, src, origin):
        """`target = copy_stack(src)`: a new stack holding what stack `src`
        holds, or (`src` a list or tuple, e.g. vjp's residuals passed in)
        its elements, bottom first."""
        orig = stack_of(src)
        if orig is not None:
            if self.depth:
                self.touched_rt.add(orig)
            self.stack_links.append((target, orig))
            self.stack_vals[target] = list(self.stack_vals[orig])
            elem = self.stack_elem.get(orig, infer.UNDEFINED)
        elif isinstance(src.aval, (tuple, list)) and not holds_stack(src.aval):
            self.stack_vals[target] = list(src.aval)
            elem = infer.UNDEFINED
            for v in src.aval:
                try:
                    elem = infer.join(elem, runtime_aval(v), target, origin)
                except (infer.StructureChange, TypeInferenceError):
                    elem = HETERO
                    break
        else:
            raise TypeInferenceError(f"in {self.fname!r}: `{origin}` copies "
                                     f"{infer.fmt_value(src.aval)}, which is not a stack")
        if target in (self.static_stacks or ()) and self.depth:
            raise infer.NeedsUnroll()
        if not isinstance(elem, infer.Undefined):
            old = self.stack_elem.get(target, infer.UNDEFINED)
            try:
                self.stack_elem[target] = HETERO if elem is HETERO or old is HETERO else \
                    infer.join(old, elem, target, origin)
            except (infer.StructureChange, TypeInferenceError):
                self.stack_elem[target] = HETERO

    def adjoint_stack_op(self, st, pname, args, origin, static):
        """Types of a second reverse pass's adjoint stack operations.

        The adjoint stack of `st` holds one cotangent per value on `st`
        (see runtime/reverse_support.py): `stack_unpop(st, g)` adds `g` to
        the top one and puts a zero on top, `stack_unpush(st, v)` takes the
        top one off (zeros when the adjoint stack is empty).  A static
        stack's adjoint stack is emulated here value by value; a native
        one holds `adjoint_aval` of the stack's element type."""
        if static:
            adj = self.stack_adj.get(st)
            if adj is None:
                adj = self.stack_adj[st] = [None] * len(self.stack_vals[st])
            if pname == "stack_unpop":
                g = runtime_aval(args[1].aval)
                if adj and g is not None:
                    adj[-1] = g if adj[-1] is None else \
                        PRIMITIVES["add_any"].abstract_eval(adj[-1], g)
                adj.append(None)
                return None
            g = adj.pop() if adj else None
            if not adj:
                del self.stack_adj[st]
            return PRIMITIVES["zero_adjoint"].abstract_eval(args[1].aval) if g is None else g
        elem = self.stack_elem.get(st, infer.UNDEFINED)
        if elem is HETERO:
            msg = (f"in {self.fname!r}: the values saved for `{origin}` change structure "
                   "from one loop trip to the next; under jit a variable overwritten in a "
                   "run-time loop must keep its type")
            if self.static_stacks is None:
                self.bad_stacks[st] = msg
                return None if pname == "stack_unpop" else adjoint_aval(args[1].aval)
            raise TypeInferenceError(msg)
        mine = adjoint_aval(args[1].aval)
        if isinstance(elem, infer.Undefined):
            # nothing was ever pushed: unpop drops its cotangent, unpush gives zeros
            return None if pname == "stack_unpop" else mine
        kept = adjoint_aval(elem)
        if pname == "stack_unpop" and args[1].aval is None:
            return None
        # a cotangent added to the kept ones (unpop: cast to their dtype,
        # None leaves are zeros), or the zeros of the current value (unpush)
        if not _fits(kept, mine):
            raise TypeInferenceError(
                f"in {self.fname!r}: `{origin}`: the cotangents kept for this loop "
                f"variable ({infer.fmt_value(kept)}) do not match "
                f"{'the one added' if pname == 'stack_unpop' else 'its current value'} "
                f"({infer.fmt_value(mine)})")
        return None if pname == "stack_unpop" else kept


# at the end: infer imports this module, and these methods use it only when called
from . import infer  # noqa: E402
