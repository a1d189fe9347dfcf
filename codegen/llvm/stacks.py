"""Reverse mode's per-variable stacks in compiled code (llvmlite.ir).

Owns the lowering of `new_stack`, `push`, `pop`, `pop_restore`, the
adjoint stacks of a second reverse pass (`stack_unpop`, `stack_unpush`)
and `copy_stack`.  Inference (infer.py) decides per stack:
- "static": every use is outside run-time control flow, so the stack is a
  Python list in the emitter holding the run-time values pushed (arrays
  copied when their name's buffer is reused later): no native code at all;
- "native": a growable buffer `{data, size, capacity}` (stack slots,
  `realloc` doubling) of fixed-size records, one per push, laid out as the
  element type's leaves (each padded to 8 bytes).  A popped array is a view
  of the record, valid until the next push on that stack (the primal sweep
  pushes, the adjoint sweep only pops).  The buffers are freed at exit.
A stack's adjoint stack (grad of grad through loops) has the same two
forms: a Python list of cotangents beside a static stack, or a second
growable buffer of cotangent records (`infer_stacks.adjoint_aval` of the element
type) beside a native one, plus a flag saying whether it exists yet: as
in runtime/reverse_support.py it is created on first use with one zero
cotangent per value then on the stack, and dropped when emptied.
Must not walk programs (llvm/emit.py) nor bind LLVM.
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError
from ...runtime.table import PRIMITIVES
from ..abstract import ShapedArray
from ..infer_stacks import adjoint_aval, runtime_aval, stack_of
from .kernels import load_mem, store_mem
from .lowerings import zeros_of
from .values import I1, I8, I64, PTR, Array, Lazy, Scalar, cast, const, size_of, reg_type


def _leaf_layout(aval):
    """[(path, ShapedArray, byte offset)] of the run-time leaves, record size."""
    out = []
    off = [0]

    def walk(a, path):
        if isinstance(a, (tuple, list)):
            for k, e in enumerate(a):
                walk(e, path + (k,))
        elif isinstance(a, dict):
            for k, e in a.items():
                walk(e, path + (k,))
        elif isinstance(a, ShapedArray):
            nbytes = max(1, size_of(a.shape)) * a.dtype.itemsize
            out.append((path, a, off[0]))
            off[0] += (nbytes + 7) // 8 * 8
    walk(aval, ())
    return out, max(8, off[0])


def _at(value, path):
    for p in path:
        if value is None:
            return None
        value = value[p]
    return value


def _rebuild(aval, leaf_values, path=()):
    if isinstance(aval, (tuple, list)):
        return type(aval)(_rebuild(e, leaf_values, path + (k,)) for k, e in enumerate(aval))
    if isinstance(aval, dict):
        return {k: _rebuild(e, leaf_values, path + (k,)) for k, e in aval.items()}
    if isinstance(aval, ShapedArray):
        return leaf_values[path]
    return aval


class _Native:
    """The slots of one native stack and of its adjoint stack."""

    def __init__(self, em, name, elem):
        self.elem = elem
        self.layout, self.nbytes = _leaf_layout(elem)
        self.data = em._slot(("stack.data", name), PTR)
        self.size = em._slot(("stack.size", name), I64)      # bytes in use
        self.cap = em._slot(("stack.cap", name), I64)
        self.adj_elem = adjoint_aval(elem)
        self.adj_layout, self.adj_nbytes = _leaf_layout(self.adj_elem)
        self.adata = em._slot(("stack.adata", name), PTR)
        self.asize = em._slot(("stack.asize", name), I64)
        self.acap = em._slot(("stack.acap", name), I64)
        self.alive = em._slot(("stack.alive", name), I1)     # adjoint stack exists


class Stacks:
    """The stacks of one emitted function."""

    def __init__(self, em, info):
        self.em = em
        self.info = info or {}
        self.static = {n: [] for n, (kind, _) in self.info.items() if kind == "static"}
        self.static_adj = {}    # static stack -> [(cotangent value, aval) or None]
        self.native = {}        # name -> _Native
        self._libc = {}

    def lower(self, s, args):
        """The value of stack statement `s` (its arguments' values `args`)."""
        if s.prim == "new_stack":
            return self.new_stack(s)
        if s.prim == "push":
            return self.push(s, args)
        if s.prim in ("pop", "pop_restore"):
            return self._pop(s, args, s.prim == "pop_restore")
        if s.prim == "copy_stack":
            return self.copy_stack(s, args)
        if s.prim == "stack_unpop":
            return self.unpop(s, args)
        if s.prim == "stack_unpush":
            return self.unpush(s, args)
        raise MissingRuleError(s.prim, "llvm", "not a stack primitive")

    def pop(self, s, args, restore):
        # the emitter sends every stack primitive but new_stack and push here
        return self.lower(s, args)

    # ----------------------------------------------------------- native
    def _slots(self, name):
        hit = self.native.get(name)
        if hit is None:
            kind, elem = self.info.get(name, ("native", None))
            if elem is None:
                raise MissingRuleError("push", "llvm", f"stack {name!r} has no element type")
            hit = self.native[name] = _Native(self.em, name, elem)
        return hit

    def _has_values(self, name):
        """False for a native stack nothing is ever pushed to (no element type)."""
        return self.info.get(name, ("native", None))[1] is not None

    def init_block(self, ab):
        """Stores in the entry block: every native stack starts empty."""
        for st in self.native.values():
            for data, size, cap in ((st.data, st.size, st.cap), (st.adata, st.asize, st.acap)):
                ab.store(ir.Constant(PTR, None), data)
                ab.store(ir.Constant(I64, 0), size)
                ab.store(ir.Constant(I64, 0), cap)
            ab.store(ir.Constant(I1, 0), st.alive)

    def free_all(self, b):
        for st in self.native.values():
            b.call(self.em.free_fn, [b.load(st.data)])
            b.call(self.em.free_fn, [b.load(st.adata)])

    def _fn(self, name, ret, params):
        fn = self._libc.get(name)
        if fn is None:
            mod = self.em.module
            fn = mod.globals.get(name) or ir.Function(mod, ir.FunctionType(ret, params), name)
            self._libc[name] = fn
        return fn

    def _reserve(self, data_s, cap_s, need):
        """Grow the buffer in `data_s` (capacity in `cap_s`) to hold `need`
        bytes: at least doubling, at least 4 KiB."""
        em, b = self.em, self.em.b
        grow = b.icmp_signed(">", need, b.load(cap_s))
        with b.if_then(grow, likely=False):
            cap = b.load(cap_s)
            twice = b.mul(cap, ir.Constant(I64, 2))
            newcap = b.select(b.icmp_signed(">", twice, need), twice, need)
            newcap = b.select(b.icmp_signed("<", newcap, ir.Constant(I64, 4096)),
                              ir.Constant(I64, 4096), newcap)
            mem = b.call(self._fn("realloc", PTR, [PTR, I64]), [b.load(data_s), newcap])
            em.fail_if(b.icmp_unsigned("==", mem, ir.Constant(PTR, None)), 1,
                       "out of memory growing a reverse-mode stack")
            b.store(mem, data_s)
            b.store(newcap, cap_s)

    def _zero_bytes(self, ptr, nbytes):
        b = self.em.b
        memset = self.em.module.declare_intrinsic("llvm.memset", [PTR, I64])
        b.call(memset, [ptr, ir.Constant(I8, 0), nbytes, ir.Constant(I1, 0)])

    def new_stack(self, s):
        name = s.target
        if name in self.static:
            self.static[name] = []
            self.static_adj.pop(name, None)
            return None
        if not self._has_values(name):
            return None     # never pushed to: pushes are dropped
        st = self._slots(name)
        b = self.em.b
        b.store(ir.Constant(I64, 0), st.size)
        b.store(ir.Constant(I1, 0), st.alive)
        return None

    def push(self, s, args):
        name = stack_of(s.args[0])
        value = args[1]
        if name in self.static:
            self.static[name].append(self._capture(s.args[1], value))
            return None
        if not self._has_values(name):
            return None
        self._push_native(self._slots(name), value)
        return None

    def _push_native(self, st, value):
        b = self.em.b
        size = b.load(st.size)
        need = b.add(size, ir.Constant(I64, st.nbytes))
        self._reserve(st.data, st.cap, need)
        base = b.gep(b.load(st.data), [size])
        self._write(base, st.layout, value)
        b.store(need, st.size)

    def _write(self, base, layout, value):
        em, b = self.em, self.em.b
        for path, aval, off in layout:
            v = _at(value, path)
            if v is None:
                continue        # None stands for a value never read back
            dest = Array(b.gep(base, [ir.Constant(I64, off)]), aval.dtype, aval.shape)
            if aval.shape == ():
                sc = em.scalar(v, aval.dtype)
                store_mem(b, dest, ir.Constant(I64, 0), sc.value)
            else:
                em.kern.assign(b, dest, em.runtime(v, aval))

    def _capture(self, arg, v):
        """A value kept on a compile-time stack must not change when the
        buffer it lives in is reused."""
        em = self.em
        if isinstance(v, Lazy):
            return em.as_array(v)
        if isinstance(v, Array):
            stable = em.plan.stable
            owner = v.owner[1] if isinstance(v.owner, tuple) and len(v.owner) > 1 else None
            if (arg.name and arg.name not in stable) or (owner and owner not in stable):
                buf = em.buffer(None, v.dtype, v.shape)
                em.kern.assign(em.b, buf, v)
                return buf
        if isinstance(v, (tuple, list)):
            return type(v)(self._capture(arg, e) for e in v)
        if isinstance(v, dict):
            return {k: self._capture(arg, e) for k, e in v.items()}
        return v

    def _pop(self, s, args, restore):
        name = stack_of(s.args[0])
        em = self.em
        if name in self.static:
            vals = self.static[name]
            top = vals.pop()
            if not restore:
                return top
            return vals[-1] if vals else args[1]
        if not self._has_values(name) and s.out is None:
            # every value saved was None (an inlined helper's `result = None`
            # on a path that returned early): nothing is stored, None comes back
            return None
        st = self._slots(name)
        layout, nbytes = st.layout, st.nbytes
        b = em.b
        size = b.sub(b.load(st.size), ir.Constant(I64, nbytes))
        b.store(size, st.size)
        if not restore:
            base = b.gep(b.load(st.data), [size])
            return _rebuild(st.elem, self._read(base, layout))
        # the value below the popped one, or `current` when the stack is empty
        out = s.out
        has = b.icmp_signed(">=", size, ir.Constant(I64, nbytes))
        slots = {}
        for path, aval, _ in layout:
            ty = reg_type(aval.dtype) if aval.shape == () else PTR
            slots[path] = em._slot(("stack.read", id(s), path), ty)
        with b.if_else(has) as (then, otherwise):
            with then:
                base = b.gep(b.load(st.data), [b.sub(size, ir.Constant(I64, nbytes))])
                for path, v in self._read(base, layout).items():
                    b.store(v.value if isinstance(v, Scalar) else v.ptr, slots[path])
            with otherwise:
                cur = args[1]
                for path, aval, _ in layout:
                    v = _at(cur, path)
                    if aval.shape == ():
                        val = const(aval.dtype, 0) if v is None else \
                            em.scalar(v, aval.dtype).value
                        b.store(val, slots[path])
                    else:
                        if v is None:
                            ptr = ir.Constant(PTR, None)
                        else:
                            arr = em.contiguous(em.runtime(v, aval))
                            if arr.dtype != aval.dtype:
                                arr = em.as_array(Lazy("cast", [arr], aval.dtype, aval.shape))
                            ptr = arr.ptr
                        b.store(ptr, slots[path])
        values = {}
        for path, aval, _ in layout:
            if aval.shape == ():
                values[path] = Scalar(b.load(slots[path]), aval.dtype, aval.weak_type)
            else:
                values[path] = Array(b.load(slots[path]), aval.dtype, aval.shape)
        return _rebuild(out, values)

    def _read(self, base, layout):
        b = self.em.b
        out = {}
        for path, aval, off in layout:
            arr = Array(b.gep(base, [ir.Constant(I64, off)]), aval.dtype, aval.shape)
            if aval.shape == ():
                out[path] = Scalar(load_mem(b, arr, ir.Constant(I64, 0)), aval.dtype,
                                   aval.weak_type)
            else:
                out[path] = arr
        return out

    # ------------------------------------------------------------- copies
    def copy_stack(self, s, args):
        """`target = copy_stack(src)`: src a stack, or a list of values."""
        name, src = s.target, stack_of(s.args[0])
        from_stack = src is not None
        if name in self.static:
            self.static[name] = list(self.static[src]) if from_stack else list(args[0])
            self.static_adj.pop(name, None)
            return None
        if not self._has_values(name):
            return None
        st = self._slots(name)
        b = self.em.b
        b.store(ir.Constant(I1, 0), st.alive)
        if from_stack and src in self.static:
            values = self.static[src]
        elif from_stack:
            if not self._has_values(src):
                b.store(ir.Constant(I64, 0), st.size)
                return None
            orig = self._slots(src)
            if orig.nbytes != st.nbytes:
                raise MissingRuleError("copy_stack", "llvm",
                                       f"stacks {name!r} and {src!r} have different layouts")
            size = b.load(orig.size)
            self._reserve(st.data, st.cap, size)
            with b.if_then(b.icmp_signed(">", size, ir.Constant(I64, 0))):
                b.call(self.em.memcpy_fn, [b.load(st.data), b.load(orig.data), size])
            b.store(size, st.size)
            return None
        else:
            values = list(args[0])
        b.store(ir.Constant(I64, 0), st.size)
        for v in values:
            self._push_native(st, v)
        return None

    # ----------------------------------------------------- adjoint stacks
    def unpop(self, s, args):
        """stack_unpop(st, g): add `g` to the top cotangent, push a zero."""
        name, g = stack_of(s.args[0]), args[1]
        if name in self.static:
            adj = self._static_adjoint(name)
            if adj and g is not None:
                aval = runtime_aval(s.args[1].aval)
                value = self._capture(s.args[1], g)
                if adj[-1] is None:
                    adj[-1] = (value, aval)
                else:
                    adj[-1] = self._add(adj[-1], (value, aval))
            adj.append(None)
            return None
        if not self._has_values(name):
            return None         # an empty stack: the cotangent is dropped
        st = self._slots(name)
        b = self.em.b
        self._ensure_adjoint(st)
        size = b.load(st.asize)
        if g is not None:
            with b.if_then(b.icmp_signed(">", size, ir.Constant(I64, 0))):
                top = b.gep(b.load(st.adata), [b.sub(size, ir.Constant(I64, st.adj_nbytes))])
                self._accumulate(top, st.adj_layout, g)
        need = b.add(size, ir.Constant(I64, st.adj_nbytes))
        self._reserve(st.adata, st.acap, need)
        self._zero_bytes(b.gep(b.load(st.adata), [size]), ir.Constant(I64, st.adj_nbytes))
        b.store(need, st.asize)
        return None

    def unpush(self, s, args):
        """stack_unpush(st, v): take the top cotangent off (zeros if none)."""
        name = stack_of(s.args[0])
        if name in self.static:
            adj = self._static_adjoint(name)
            top = adj.pop() if adj else None
            if not adj:
                del self.static_adj[name]
            if top is None:
                return zeros_of(self.em, s.out, s.target)
            return top[0]
        if not self._has_values(name):
            return zeros_of(self.em, s.out, s.target)
        st = self._slots(name)
        em, b = self.em, self.em.b
        self._ensure_adjoint(st)
        size = b.load(st.asize)
        has = b.icmp_signed(">", size, ir.Constant(I64, 0))
        left = b.select(has, b.sub(size, ir.Constant(I64, st.adj_nbytes)), ir.Constant(I64, 0))
        b.store(left, st.asize)
        # emptied, the adjoint stack is dropped (made again, zeroed, on next use)
        b.store(b.icmp_signed("!=", left, ir.Constant(I64, 0)), st.alive)
        zero = em.buffer(("stack.zero", name), np.uint8, (st.adj_nbytes,)).ptr
        with b.if_then(b.not_(has), likely=False):
            self._zero_bytes(zero, ir.Constant(I64, st.adj_nbytes))
        base = b.select(has, b.gep(b.load(st.adata), [left]), zero)
        return _rebuild(s.out, self._read(base, st.adj_layout))

    def _static_adjoint(self, name):
        adj = self.static_adj.get(name)
        if adj is None:
            adj = self.static_adj[name] = [None] * len(self.static[name])
        return adj

    def _add(self, a, b):
        """(value, aval) of the sum of two (value, aval) cotangents."""
        from .lowerings import LOWERINGS
        aval = PRIMITIVES["add_any"].abstract_eval(a[1], b[1])

        class _Sum:
            out = aval
        return LOWERINGS["add_any"](self.em, _Sum, [a[0], b[0]], {}), aval

    def _ensure_adjoint(self, st):
        """Make the adjoint stack on first use: one zero cotangent per
        value then on the stack."""
        b = self.em.b
        with b.if_then(b.not_(b.load(st.alive))):
            b.store(ir.Constant(I1, 1), st.alive)
            count = b.sdiv(b.load(st.size), ir.Constant(I64, st.nbytes))
            nbytes = b.mul(count, ir.Constant(I64, st.adj_nbytes))
            self._reserve(st.adata, st.acap, nbytes)
            self._zero_bytes(b.load(st.adata), nbytes)
            b.store(nbytes, st.asize)

    def _accumulate(self, base, layout, g):
        """record += g, leaf by leaf (None leaves of `g` are zeros)."""
        em, b = self.em, self.em.b
        for path, aval, off in layout:
            v = _at(g, path)
            if v is None:
                continue
            dest = Array(b.gep(base, [ir.Constant(I64, off)]), aval.dtype, aval.shape)
            if aval.shape == ():
                old = Scalar(load_mem(b, dest, ir.Constant(I64, 0)), aval.dtype)
                total = em.bind(None, Lazy("add", [old, em.runtime(v)], aval.dtype, (),
                                           calc=aval.dtype), aval)
                store_mem(b, dest, ir.Constant(I64, 0), total.value)
            else:
                em.kern.assign(b, dest, Lazy("add", [dest, em.runtime(v)], aval.dtype,
                                             aval.shape, calc=aval.dtype))


def trip_count(em, s, args, kwargs):
    """len(range(start, stop, step)) = max(0, ceil((stop - start) / step))."""
    b = em.b
    a, z, c = (em.scalar(v, np.int64).value for v in args[:3])
    span = b.sub(z, a)
    pos = b.icmp_signed(">", c, ir.Constant(I64, 0))
    # ceil division toward the direction of the step
    adj = b.select(pos, b.sub(c, ir.Constant(I64, 1)), b.add(c, ir.Constant(I64, 1)))
    n = b.sdiv(b.add(span, adj), c)
    n = b.select(b.icmp_signed("<", n, ir.Constant(I64, 0)), ir.Constant(I64, 0), n)
    return Scalar(cast(b, n, np.int64, s.out.dtype), s.out.dtype, s.out.weak_type)
