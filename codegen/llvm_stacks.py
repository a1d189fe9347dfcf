"""Reverse mode's per-variable stacks in compiled code (llvmlite.ir).

Owns the lowering of `new_stack`, `push`, `pop` and `pop_restore`.
Inference (infer.py) decides per stack:
- "static": every use is outside run-time control flow, so the stack is a
  Python list in the emitter holding the run-time values pushed (arrays
  copied when their name's buffer is reused later): no native code at all;
- "native": a growable buffer `{data, size, capacity}` (stack slots,
  `realloc` doubling) of fixed-size records, one per push, laid out as the
  element type's leaves (each padded to 8 bytes).  A popped array is a view
  of the record, valid until the next push on that stack (the primal sweep
  pushes, the adjoint sweep only pops).  The buffers are freed at exit.
Must not walk programs (llvm_emit.py) nor bind LLVM.
"""

import numpy as np
from llvmlite import ir

from ..errors import MissingRuleError
from .abstract import ShapedArray
from .llvm_kernels import load_mem, store_mem
from .llvm_values import I64, PTR, Array, Lazy, Scalar, cast, const, size_of, reg_type


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


class Stacks:
    """The stacks of one emitted function."""

    def __init__(self, em, info):
        self.em = em
        self.info = info or {}
        self.static = {n: [] for n, (kind, _) in self.info.items() if kind == "static"}
        self.native = {}        # name -> (data slot, size slot, cap slot, layout, nbytes)
        self._realloc = None

    # ----------------------------------------------------------- native
    def _slots(self, name):
        hit = self.native.get(name)
        if hit is None:
            kind, elem = self.info.get(name, ("native", None))
            if elem is None:
                raise MissingRuleError("push", "llvm", f"stack {name!r} has no element type")
            em = self.em
            layout, nbytes = _leaf_layout(elem)
            hit = (em._slot(("stack.data", name), PTR), em._slot(("stack.size", name), I64),
                   em._slot(("stack.cap", name), I64), layout, nbytes, elem)
            self.native[name] = hit
        return hit

    def init_block(self, ab):
        """Stores in the entry block: every native stack starts empty."""
        for data, size, cap, *_ in self.native.values():
            ab.store(ir.Constant(PTR, None), data)
            ab.store(ir.Constant(I64, 0), size)
            ab.store(ir.Constant(I64, 0), cap)

    def free_all(self, b):
        for data, *_ in self.native.values():
            b.call(self.em.free_fn, [b.load(data)])

    def _realloc_fn(self):
        if self._realloc is None:
            mod = self.em.module
            self._realloc = mod.globals.get("realloc") or ir.Function(
                mod, ir.FunctionType(PTR, [PTR, I64]), "realloc")
        return self._realloc

    def new_stack(self, s):
        name = s.target
        if name in self.static:
            self.static[name] = []
            return []
        if self.info.get(name, ("native", None))[1] is None:
            return []       # never popped: pushes are dropped
        _, size, *_ = self._slots(name)
        self.em.b.store(ir.Constant(I64, 0), size)
        return []

    def push(self, s, args):
        name = s.args[0].name
        value = args[1]
        em = self.em
        if name in self.static:
            self.static[name].append(self._capture(s.args[1], value))
            return None
        if self.info.get(name, ("native", None))[1] is None:
            return None
        data_s, size_s, cap_s, layout, nbytes, _ = self._slots(name)
        b = em.b
        size = b.load(size_s)
        need = b.add(size, ir.Constant(I64, nbytes))
        grow = b.icmp_signed(">", need, b.load(cap_s))
        with b.if_then(grow, likely=False):
            cap = b.load(cap_s)
            twice = b.mul(cap, ir.Constant(I64, 2))
            newcap = b.select(b.icmp_signed(">", twice, need), twice, need)
            newcap = b.select(b.icmp_signed("<", newcap, ir.Constant(I64, 4096)),
                              ir.Constant(I64, 4096), newcap)
            mem = b.call(self._realloc_fn(), [b.load(data_s), newcap])
            em.fail_if(b.icmp_unsigned("==", mem, ir.Constant(PTR, None)), 1,
                       "out of memory growing a reverse-mode stack")
            b.store(mem, data_s)
            b.store(newcap, cap_s)
        base = b.gep(b.load(data_s), [size])
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
        b.store(need, size_s)
        return None

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

    def pop(self, s, args, restore):
        name = s.args[0].name
        em = self.em
        if name in self.static:
            vals = self.static[name]
            top = vals.pop()
            if not restore:
                return top
            return vals[-1] if vals else args[1]
        data_s, size_s, cap_s, layout, nbytes, elem = self._slots(name)
        b = em.b
        size = b.sub(b.load(size_s), ir.Constant(I64, nbytes))
        b.store(size, size_s)
        if not restore:
            base = b.gep(b.load(data_s), [size])
            return _rebuild(elem, self._read(base, layout))
        # the value below the popped one, or `current` when the stack is empty
        out = s.out
        has = b.icmp_signed(">=", size, ir.Constant(I64, nbytes))
        slots = {}
        for path, aval, _ in layout:
            ty = reg_type(aval.dtype) if aval.shape == () else PTR
            slots[path] = em._slot(("stack.read", id(s), path), ty)
        with b.if_else(has) as (then, otherwise):
            with then:
                base = b.gep(b.load(data_s), [b.sub(size, ir.Constant(I64, nbytes))])
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
