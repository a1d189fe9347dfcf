"""Typed program → one LLVM entry function (llvmlite.ir), the CPU backend's
emitter.

Owns `emit_module(tf, plan, env_info, parts)`, which turns a whole typed
program into ONE native entry with the C ABI

    int32 cotan_entry(void **in_ptrs, int64 *in_shapes, void **out_ptrs,
                      const char **err)

`in_ptrs[k]` points at the data of the k-th run-time input leaf (C-contiguous
arrays; a scalar is passed by pointer), `in_shapes` holds the dimensions of
the array inputs one after another, `out_ptrs[k]` points at caller-allocated
memory for the k-th run-time output leaf (shapes known from inference),
which must not overlap the inputs: a returned array is computed in place
there, not copied at the end.
Returns 0, or a nonzero status with `*err` pointing at a static message
(1: shape mismatch at the boundary, 2: index out of bounds, 3: failed
check).  Shape checks happen inside the native code so ahead-of-time
callers get them too.  Python control flow becomes LLVM control flow
(values crossing blocks go through stack slots that mem2reg promotes);
arrays live in one arena; the arena and the native stacks' buffers are
scratch records the caller may keep across calls (`cotan_entry_scratch`,
the same ABI plus `void **scratch`; `cotan_entry` allocates and frees them
per call); each
(name, dtype, shape) owns one buffer, so `x = setitem(x, v, i)` writes in
place when `x` already owns its buffer.  With `parts` > 1 the loop nests
of straight-line code become kernel functions spread over that many
modules (the entry's module first), which the backend compiles side by
side; loops of the user's program stay inline.  Per-primitive lowering
lives in llvm/lowerings.py; loops and kernels in llvm/kernels.py.  Must
not bind LLVM.
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError
from ...runtime.table import PRIMITIVES
from ..abstract import ShapedArray
from ..infer import STACK_PRIMS, TAssign, TFor, TIf, TWhile, is_static, Undefined
from .kernels import KernelEmitter, Part, hot, store_mem, load_mem
from .values import (I8, I32, I64, PTR, Array, Lazy, MathCalls, Scalar, cast, const,
                          reg_type, size_of)

ENTRY = "cotan_entry"
#: the program with caller-kept scratch records, and how many it reads
SCRATCH_ENTRY = "cotan_entry_scratch"
SCRATCH_RECORDS = "cotan_scratch_records"
ALIGN = 64


def leaves_of(v, out=None):
    """Run-time leaves of a (possibly container) abstract value, in order."""
    out = [] if out is None else out
    if isinstance(v, (tuple, list)):
        for e in v:
            leaves_of(e, out)
    elif isinstance(v, dict):
        for e in v.values():
            leaves_of(e, out)
    elif isinstance(v, ShapedArray):
        out.append(v)
    return out


class FunctionEmitter:
    def __init__(self, tf, plan, env_info, parts=1):
        self.tf, self.plan = tf, plan
        self.module = ir.Module(name="cotan")
        self.math = MathCalls(self.module, env_info["vector_math"])
        self.blas = env_info["gemm"]
        self.lapack = env_info.get("lapack", {})
        self.printing = env_info.get("print", False)    # a Python to call back
        self.kern = KernelEmitter(self.module, self.math, [0])
        self.buffers = {}       # key -> buffer id
        self.buffer_sizes = []  # buffer id -> bytes
        self.buffer_slots = []  # buffer id -> alloca holding its address
        self.buffer_of_ptr = {}  # id(loaded address) -> (buffer id, address)
        self.arena_size = 0
        self.slots = {}
        self.strings = {}
        fnty = ir.FunctionType(I32, [ir.PointerType(PTR), ir.PointerType(I64),
                                     ir.PointerType(PTR), ir.PointerType(PTR),
                                     ir.PointerType(PTR)])
        # the program proper takes its scratch records from the caller (see
        # `_scratch_entry`); `cotan_entry` is a wrapper that owns them per call
        self.fn = ir.Function(self.module, fnty, SCRATCH_ENTRY)
        self.in_ptrs, self.in_shapes, self.out_ptrs, self.err, self.scratch = self.fn.args
        for a in self.fn.args:
            a.add_attribute("noalias")
        self.alloc_block = self.fn.append_basic_block("alloc")
        self.b = ir.IRBuilder(self.fn.append_basic_block("body"))
        ab = ir.IRBuilder(self.alloc_block)
        self.arena_slot = ab.alloca(PTR, name="arena")
        self.status_slot = ab.alloca(I32, name="status")
        self.error_block = self.fn.append_basic_block("error")
        self.free_fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR]), "free")
        self.malloc_fn = ir.Function(self.module, ir.FunctionType(PTR, [I64]), "malloc")
        self.memcpy_fn = ir.Function(self.module, ir.FunctionType(PTR, [PTR, PTR, I64]),
                                     "memcpy")
        from .stacks import Stacks
        self.stacks = Stacks(self, getattr(tf, "stacks", None))
        self.modules = [self.module]
        if parts > 1:
            # loop nests go to `parts` modules compiled side by side
            shared = [Part(self.module, self.kern, fixed=self.fn)]
            for k in range(1, parts):
                m = ir.Module(name=f"cotan.part{k}")
                self.modules.append(m)
                shared.append(Part(m, KernelEmitter(m, MathCalls(m, env_info["vector_math"]),
                                                    self.kern.counter)))
            self.kern.enable_outlining(shared, self._disjoint)

    # ------------------------------------------------------------ utilities
    def _root(self, v):
        """Where pointer `v` comes from: ("buffer", slot) for an address
        read from an arena/output buffer slot, ("input",) for an argument's
        data, ("constant",) for a global, None when unknown (a loop-carried
        spill slot, a stack, a phi...)."""
        while True:
            if isinstance(v, ir.GEPInstr) or (isinstance(v, ir.CastInstr) and
                                              v.opname == "bitcast"):
                v = v.operands[0]
            elif isinstance(v, ir.LoadInstr):
                src = v.operands[0]
                if any(src is slot for slot in self.buffer_slots):
                    return ("buffer", id(src))
                if isinstance(src, ir.GEPInstr) and src.operands[0] is self.in_ptrs:
                    return ("input",)
                return None
            elif isinstance(v, ir.GlobalVariable):
                return ("constant",)
            else:
                return None

    def _disjoint(self, dest, others):
        """True when the buffer `dest` points into is none of the buffers
        `others` point into: distinct buffer slots are distinct arena
        regions (or distinct outputs); inputs and constants are never
        written."""
        d = self._root(dest)
        if d is None or d[0] != "buffer":
            return False
        for o in others:
            r = self._root(o)
            if r is None or r == d:
                return False
        return True

    def cstring(self, text):
        g = self.strings.get(text)
        if g is None:
            data = bytearray(text.encode("utf8") + b"\0")
            ty = ir.ArrayType(I8, len(data))
            g = ir.GlobalVariable(self.module, ty, name=f"msg.{len(self.strings)}")
            g.global_constant = True
            g.linkage = "internal"
            g.initializer = ir.Constant(ty, data)
            self.strings[text] = g
        return self.b.bitcast(g, PTR)

    def fail_if(self, cond, status, message):
        """Branch to the error exit with `message` when `cond` (i1) holds."""
        b = self.b
        ok = self.fn.append_basic_block("ok")
        bad = self.fn.append_basic_block("bad")
        b.cbranch(cond, bad, ok)
        b.position_at_end(bad)
        b.store(self.cstring(message), self.err)
        b.store(ir.Constant(I32, status), self.status_slot)
        b.branch(self.error_block)
        b.position_at_end(ok)

    def buffer(self, key, dtype, shape):
        """An arena buffer: one per key (name buffers) or fresh (key None).
        Its address is read from a slot filled at entry once the layout is
        known, so a name buffer that turns out to be returned can live in
        the caller's output memory instead (no copy at the end)."""
        nbytes = max(1, size_of(shape)) * np.dtype(dtype).itemsize
        if key is not None and key in self.buffers:
            bid = self.buffers[key]
        else:
            bid = len(self.buffer_sizes)
            self.buffer_sizes.append(nbytes)
            self.buffer_slots.append(self._slot(("buffer", bid), PTR))
            if key is not None:
                self.buffers[key] = bid
        ptr = self.b.load(self.buffer_slots[bid])
        self.buffer_of_ptr[id(ptr)] = (bid, ptr)
        return Array(ptr, dtype, shape)

    def _returned_buffers(self, leaves):
        """{buffer id: output index} for output leaves that are a whole,
        contiguous name buffer of the right dtype: they are placed in the
        output memory.  Safe because the output is read only at exit, when
        the buffer holds exactly what would be copied."""
        out = {}
        for k, (v, aval) in enumerate(leaves):
            if not isinstance(v, Array) or aval.shape == () or id(v.ptr) not in \
                    self.buffer_of_ptr:
                continue
            bid, ptr = self.buffer_of_ptr[id(v.ptr)]
            if ptr is not v.ptr or bid in out or not isinstance(v.owner, tuple) or \
                    v.dtype != aval.dtype or tuple(v.shape) != tuple(aval.shape) or \
                    not v.contiguous or self.buffers.get(v.owner) != bid or \
                    size_of(v.shape) * v.dtype.itemsize != self.buffer_sizes[bid]:
                continue
            out[bid] = k
        return out

    def name_buffer(self, name, dtype, shape):
        key = ("name", name, np.dtype(dtype).str, tuple(shape))
        arr = self.buffer(key, dtype, shape)
        arr.owner = key
        return arr

    def global_array(self, arr):
        arr = np.ascontiguousarray(arr)
        if arr.dtype.kind == "b":
            arr = arr.astype(np.uint8)
        data = bytearray(arr.tobytes())
        ty = ir.ArrayType(I8, max(1, len(data)))
        g = ir.GlobalVariable(self.module, ty, name=f"const.{len(self.module.globals)}")
        g.global_constant = True
        g.linkage = "internal"
        g.align = ALIGN
        g.initializer = ir.Constant(ty, data if data else bytearray(1))
        return self.b.bitcast(g, PTR)

    # --------------------------------------------------- value conversions
    def runtime(self, v, aval=None):
        """A run-time value (Scalar, Array or Lazy) of a static or run-time value."""
        if isinstance(v, (Scalar, Array, Lazy)):
            return v
        if isinstance(v, (bool, int, float, np.generic)) or (
                isinstance(v, np.ndarray) and v.ndim == 0):
            val = v[()] if isinstance(v, np.ndarray) else v
            # a Python number is weak; np.float64 (a float subclass) is not
            python = type(val) in (bool, int, float)
            if aval is not None and isinstance(aval, ShapedArray):
                dt = aval.dtype
            else:
                dt = {bool: np.bool_, int: np.int64, float: np.float64}[type(val)] if python \
                    else np.result_type(val)
            return Scalar(const(dt, val), dt, weak=python)
        if isinstance(v, np.ndarray):
            return Array(self.global_array(v), v.dtype, v.shape)
        raise MissingRuleError(f"value of type {type(v).__name__}", "llvm",
                               "only numbers and arrays exist at run time")

    def as_array(self, v, key=None):
        """A (possibly strided) Array holding the value of `v`."""
        v = self.runtime(v)
        if isinstance(v, Array):
            return v
        if isinstance(v, Scalar):
            buf = self.buffer(key, v.dtype, ())
            store_mem(self.b, buf, ir.Constant(I64, 0), v.value)
            return buf
        buf = self.buffer(key, v.dtype, v.shape)
        self.kern.assign(self.b, buf, v)
        return buf

    def contiguous(self, v, key=None):
        v = self.runtime(v)
        if isinstance(v, Array) and v.contiguous:
            return v
        if isinstance(v, Array):
            buf = self.buffer(key, v.dtype, v.shape)
            self.kern.assign(self.b, buf, v)
            return buf
        return self.as_array(v, key)

    def scalar(self, v, dtype=None):
        """A Scalar of a 0-d (or size-1) value."""
        v = self.runtime(v)
        if isinstance(v, Scalar):
            return v if dtype is None else Scalar(cast(self.b, v.value, v.dtype, dtype), dtype)
        if size_of(v.shape) != 1:
            raise MissingRuleError("truth value of an array", "llvm",
                                   f"a value of shape {v.shape} used as a scalar")
        if isinstance(v, Lazy):
            v = self.as_array(v)
        val = load_mem(self.b, v, ir.Constant(I64, 0))
        s = Scalar(val, v.dtype)
        return s if dtype is None else Scalar(cast(self.b, val, v.dtype, dtype), dtype)

    def bind(self, name, value, out_aval):
        """Result of `name = ...`: scalars stay registers; 0-d Lazy values
        are evaluated at once."""
        if isinstance(out_aval, ShapedArray) and out_aval.shape == () and \
                isinstance(value, (Array, Lazy)):
            if isinstance(value, Lazy):
                from .kernels import Evaluator
                ev = Evaluator(self.b, self.math, ())
                v, dt = ev.eval(value)
                value = Scalar(v, dt)
            else:
                value = self.scalar(value)
        if isinstance(value, Scalar) and isinstance(out_aval, ShapedArray):
            value = Scalar(cast(self.b, value.value, value.dtype, out_aval.dtype),
                           out_aval.dtype, out_aval.weak_type)
        return value

    def own(self, name, value):
        """Materialize `value` into name's own buffer (needed when the value
        must survive the reuse of the buffer it lives in)."""
        if isinstance(value, Scalar) or not isinstance(value, (Array, Lazy)):
            return value
        buf = self.name_buffer(name, value.dtype, value.shape)
        if isinstance(value, Array) and value.owner == buf.owner:
            return value
        self.kern.assign(self.b, buf, value)
        return buf

    # ------------------------------------------------------------- slots
    def _slot(self, key, ty):
        s = self.slots.get(key)
        if s is None:
            ab = ir.IRBuilder(self.alloc_block)
            if self.alloc_block.instructions:
                ab.position_after(self.alloc_block.instructions[0])
            s = ab.alloca(ty, name="slot")
            self.slots[key] = s
        return s

    def spill(self, name, value, aval, path=()):
        """Store `value` into the slots of `name` (typed by `aval`)."""
        if isinstance(aval, Undefined):
            return
        if (isinstance(value, Undefined) or value is None) and isinstance(aval, ShapedArray):
            # not yet defined on entry (vmap's `select_lanes` reads it in the
            # first trip but keeps the other side): the slot must still hold
            # a valid value, or the optimizer may treat its load as undefined
            if aval.shape == ():
                value = Scalar(const(aval.dtype, 0), aval.dtype)
            else:
                value = self.name_buffer(name + "".join(f".{p}" for p in path),
                                         aval.dtype, aval.shape)
        elif isinstance(value, Undefined) or value is None:
            return
        if isinstance(aval, (tuple, list)):
            for k, (v, a) in enumerate(zip(value, aval)):
                self.spill(name, v, a, path + (k,))
            return
        if isinstance(aval, dict):
            for k in aval:
                self.spill(name, value[k], aval[k], path + (k,))
            return
        if not isinstance(aval, ShapedArray):
            return      # static on every path: no slot
        key = (name, path, aval.dtype.str, aval.shape)
        if aval.shape == ():
            s = self.scalar(value, aval.dtype)
            self.b.store(s.value, self._slot(key, reg_type(aval.dtype)))
            return
        v = self.runtime(value, aval)
        if not (isinstance(v, Array) and v.contiguous and v.dtype == aval.dtype):
            buf = self.name_buffer(name + "".join(f".{p}" for p in path), aval.dtype, aval.shape)
            if not (isinstance(v, Array) and v.owner == buf.owner):
                self.kern.assign(self.b, buf, v)
            v = buf
        self.b.store(v.ptr, self._slot(key, PTR))

    def reload(self, name, aval, path=()):
        if isinstance(aval, tuple):
            return tuple(self.reload(name, a, path + (k,)) for k, a in enumerate(aval))
        if isinstance(aval, list):
            return [self.reload(name, a, path + (k,)) for k, a in enumerate(aval)]
        if isinstance(aval, dict):
            return {k: self.reload(name, a, path + (k,)) for k, a in aval.items()}
        if not isinstance(aval, ShapedArray):
            return aval
        key = (name, path, aval.dtype.str, aval.shape)
        if aval.shape == ():
            return Scalar(self.b.load(self._slot(key, reg_type(aval.dtype))), aval.dtype,
                          aval.weak_type)
        # a loop-carried array may live in any name's buffer: ("carried",
        # name) makes a value that aliases it be copied before `name` is
        # assigned again (with None, `dt = unbroadcast(ds, t)` kept ds's
        # buffer and the next `ds = ...` changed dt: wrong gradients)
        return Array(self.b.load(self._slot(key, PTR)), aval.dtype, aval.shape,
                     owner=("carried", name))

    # ------------------------------------------------------------- program
    def emit(self, in_avals):
        b = self.b
        env = {}
        k_in, k_dim = 0, 0
        checks = []
        for p, aval in zip(self.tf.params, in_avals):
            env[p], k_in, k_dim = self._bind_input(aval, k_in, k_dim, checks, p)
        self.n_inputs = k_in
        self.block(self.tf.body, env)
        # outputs
        res = self.value_of(self.tf.result, env)
        leaves = []
        self._out_leaves(res, self.tf.out_aval, leaves)
        returned = self._returned_buffers(leaves)
        in_place = set(returned.values())
        for k, (v, aval) in enumerate(leaves):
            if k in in_place:
                continue
            ptr = b.load(b.gep(self.out_ptrs, [ir.Constant(I64, k)]))
            dest = Array(ptr, aval.dtype, aval.shape)
            if aval.shape == ():
                s = self.scalar(v, aval.dtype)
                store_mem(b, dest, ir.Constant(I64, 0), s.value)
            else:
                self.kern.assign(b, dest, self.runtime(v, aval))
        self.n_outputs = len(leaves)
        self._keep_stacks(b)
        b.ret(ir.Constant(I32, 0))
        eb = ir.IRBuilder(self.error_block)
        self._keep_stacks(eb)
        eb.ret(eb.load(self.status_slot))
        # the arena, now that its size is known
        ab = ir.IRBuilder(self.alloc_block)
        ab.position_at_end(self.alloc_block)
        self.stacks.init_block(ab)
        self._reuse_stacks(ab)
        offsets = {}
        for bid, nbytes in enumerate(self.buffer_sizes):
            if bid not in returned:
                offsets[bid] = self.arena_size
                self.arena_size += (nbytes + ALIGN - 1) // ALIGN * ALIGN
        mem = self._arena(ab)
        ab.store(mem, self.arena_slot)
        for bid, slot in enumerate(self.buffer_slots):
            if bid in returned:
                ptr = ab.load(ab.gep(self.out_ptrs, [ir.Constant(I64, returned[bid])]))
            else:
                ptr = ab.gep(mem, [ir.Constant(I64, offsets[bid])], inbounds=True)
            ab.store(ptr, slot)
        ab.branch(self.b.function.blocks[1])
        self._scratch_entry()
        return self.module

    # ------------------------------------------------------------- scratch
    # Scratch memory (the arena and the native stacks' buffers) lives in
    # caller-owned records {void *ptr; int64 capacity} (record 0: the arena,
    # then two per native stack: its values and its adjoint values), read at
    # entry and written back at exit instead of malloc'd and freed per call:
    # a caller that keeps the records (runtime/dispatch.py, per entry and per
    # concurrent call) skips the page faults of fresh memory on every call.
    # The caller frees the records' pointers with free().

    def _record(self, b, k):
        ptr_at = b.gep(self.scratch, [ir.Constant(I64, 2 * k)])
        cap_at = b.bitcast(b.gep(self.scratch, [ir.Constant(I64, 2 * k + 1)]),
                           ir.PointerType(I64))
        return ptr_at, cap_at

    def _native_stacks(self):
        return list(self.stacks.native.values())

    def _reuse_stacks(self, ab):
        """Native stacks start empty in the buffers the caller kept."""
        for j, st in enumerate(self._native_stacks()):
            for k, (data, cap) in enumerate(((st.data, st.cap), (st.adata, st.acap))):
                ptr_at, cap_at = self._record(ab, 1 + 2 * j + k)
                ab.store(ab.load(ptr_at), data)
                ab.store(ab.load(cap_at), cap)

    def _keep_stacks(self, b):
        """Hand the (possibly grown) stack buffers back to the caller."""
        for j, st in enumerate(self._native_stacks()):
            for k, (data, cap) in enumerate(((st.data, st.cap), (st.adata, st.acap))):
                ptr_at, cap_at = self._record(b, 1 + 2 * j + k)
                b.store(b.load(data), ptr_at)
                b.store(b.load(cap), cap_at)

    def _arena(self, ab):
        """The arena: record 0's memory, (re)allocated when it is too small."""
        if not self.arena_size:
            return ir.Constant(PTR, None)
        size = ir.Constant(I64, self.arena_size)
        ptr_at, cap_at = self._record(ab, 0)
        small = ab.icmp_signed("<", ab.load(cap_at), size)
        with ab.if_then(small, likely=False):
            ab.call(self.free_fn, [ab.load(ptr_at)])
            mem = ab.call(self.malloc_fn, [size])
            failed = ab.icmp_unsigned("==", mem, ir.Constant(PTR, None))
            with ab.if_then(failed, likely=False):
                ab.store(ir.Constant(PTR, None), ptr_at)
                ab.store(ir.Constant(I64, 0), cap_at)
                body, self.b = self.b, ab      # cstring casts with self.b
                msg = self.cstring(f"out of memory allocating {self.arena_size} bytes "
                                   "of scratch memory")
                self.b = body
                ab.store(msg, self.err)
                ab.store(ir.Constant(I32, 1), self.status_slot)
                ab.branch(self.error_block)
                # if_then's own branch to its end follows: unreachable
                ab.position_at_end(ab.append_basic_block("arena.dead"))
            ab.store(mem, ptr_at)
            ab.store(size, cap_at)
        return ab.load(ptr_at)

    def _scratch_entry(self):
        """`cotan_entry` (the documented ABI): the program with scratch
        records of its own, freed before it returns; and
        `cotan_scratch_records()`, how many records the program reads."""
        n = 1 + 2 * len(self._native_stacks())
        self.fn.attributes.add("noinline")   # one copy of the program, not two
        self.n_scratch = n
        count = ir.Function(self.module, ir.FunctionType(I64, []), SCRATCH_RECORDS)
        ir.IRBuilder(count.append_basic_block("entry")).ret(ir.Constant(I64, n))
        fnty = ir.FunctionType(I32, [a.type for a in self.fn.args[:4]])
        wrapper = ir.Function(self.module, fnty, ENTRY)
        b = ir.IRBuilder(wrapper.append_basic_block("entry"))
        recs = b.alloca(ir.ArrayType(PTR, 2 * n), name="scratch")
        first = b.gep(recs, [ir.Constant(I32, 0), ir.Constant(I32, 0)])
        memset = self.module.declare_intrinsic("llvm.memset", [PTR, I64])
        b.call(memset, [b.bitcast(first, PTR), ir.Constant(I8, 0),
                        ir.Constant(I64, 16 * n), ir.Constant(ir.IntType(1), 0)])
        status = b.call(self.fn, list(wrapper.args) + [first])
        for k in range(n):
            b.call(self.free_fn, [b.load(b.gep(first, [ir.Constant(I64, 2 * k)]))])
        b.ret(status)

    def _out_leaves(self, v, aval, out):
        if isinstance(aval, (tuple, list)):
            for e, a in zip(v, aval):
                self._out_leaves(e, a, out)
        elif isinstance(aval, dict):
            for k in aval:
                self._out_leaves(v[k], aval[k], out)
        elif isinstance(aval, ShapedArray):
            out.append((v, aval))

    def _bind_input(self, aval, k_in, k_dim, checks, where):
        b = self.b
        if isinstance(aval, (tuple, list)):
            vals = []
            for k, a in enumerate(aval):
                v, k_in, k_dim = self._bind_input(a, k_in, k_dim, checks, f"{where}[{k}]")
                vals.append(v)
            return type(aval)(vals), k_in, k_dim
        if isinstance(aval, dict):
            vals = {}
            for k, a in aval.items():
                vals[k], k_in, k_dim = self._bind_input(a, k_in, k_dim, checks,
                                                        f"{where}[{k!r}]")
            return vals, k_in, k_dim
        if not isinstance(aval, ShapedArray):
            return aval, k_in, k_dim
        ptr = b.load(b.gep(self.in_ptrs, [ir.Constant(I64, k_in)]))
        k_in += 1
        if aval.shape == ():
            v = load_mem(b, Array(ptr, aval.dtype, ()), ir.Constant(I64, 0))
            return Scalar(v, aval.dtype, aval.weak_type), k_in, k_dim
        for d, n in enumerate(aval.shape):
            got = b.load(b.gep(self.in_shapes, [ir.Constant(I64, k_dim)]))
            k_dim += 1
            self.fail_if(b.icmp_signed("!=", got, ir.Constant(I64, n)), 1,
                         f"argument {where}: expected shape {aval.shape} "
                         f"(dimension {d} of size {n})")
        return Array(ptr, aval.dtype, aval.shape), k_in, k_dim

    def value_of(self, arg, env):
        if arg.name is None:
            return arg.aval
        if is_static(arg.aval):
            return arg.aval
        return env[arg.name]

    def block(self, stmts, env):
        for s in stmts:
            if isinstance(s, TAssign):
                self.assign(s, env)
            elif isinstance(s, TIf):
                self.if_(s, env)
            elif isinstance(s, TFor):
                self.for_(s, env)
            elif isinstance(s, TWhile):
                self.while_(s, env)

    def assign(self, s, env):
        if s.prim in STACK_PRIMS:
            args = [self.value_of(a, env) for a in s.args]
            if s.prim == "new_stack":
                value = self.stacks.new_stack(s)
            elif s.prim == "push":
                value = self.stacks.push(s, args)
            else:
                value = self.stacks.pop(s, args, s.prim == "pop_restore")
            env[s.target] = s.out if is_static(s.out) else self.bind(s.target, value, s.out)
            return
        effectful = s.prim is not None and getattr(PRIMITIVES.get(s.prim), "effectful", False)
        if (s.static or is_static(s.out)) and not effectful:
            env[s.target] = s.out
            return
        args = [self.value_of(a, env) for a in s.args]
        kwargs = {k: self.value_of(a, env) for k, a in s.kwargs.items()}
        if effectful and is_static(s.out):
            # print, assert: nothing to bind, but they must run (their
            # result, None, is static, and was taken for "nothing to do")
            from .lowerings import LOWERINGS
            rule = LOWERINGS.get(s.prim)
            if rule is None:
                raise MissingRuleError(s.prim, "llvm", _declared_reason(s.prim))
            rule(self, s, args, kwargs)
            env[s.target] = s.out
            return
        if s.prim is None:
            value = args[0]
            if isinstance(value, Array) and s.args[0].name not in self.plan.stable:
                value = self.own(s.target, value)
            env[s.target] = self.bind(s.target, value, s.out)
            return
        from .lowerings import LOWERINGS
        rule = LOWERINGS.get(s.prim)
        if rule is None:
            raise MissingRuleError(s.prim, "llvm", _declared_reason(s.prim))
        value = rule(self, s, args, kwargs)
        if isinstance(value, Array) and isinstance(value.owner, tuple) and \
                value.owner[1] not in self.plan.stable and \
                value.owner != ("name", s.target, value.dtype.str, value.shape):
            # a view into the buffer of a name that is assigned again: that
            # write would change this value (NumPy semantics here are a copy)
            value = self.own(s.target, value)
        lazy_ok = id(s) in self.plan.fused
        if isinstance(value, Lazy) and not lazy_ok and value.shape != ():
            value = self.materialize(s, value)
        env[s.target] = self.bind(s.target, value, s.out)

    def materialize(self, s, value):
        """Store an expression into the target's own buffer, going through a
        scratch buffer when it reads that buffer other than elementwise."""
        dest = self.name_buffer(s.target, value.dtype, value.shape)
        reads_target = any(a.name == s.target for a in s.args)
        if reads_target and not _pointwise_safe(value, s.target, dest):
            tmp = self.buffer(None, value.dtype, value.shape)
            self.kern.assign(self.b, tmp, value)
            self.copy_into(dest, tmp)
        else:
            self.kern.assign(self.b, dest, value)
        return dest

    def copy_into(self, dest, src):
        nbytes = size_of(dest.shape) * dest.dtype.itemsize
        self.b.call(self.memcpy_fn, [dest.ptr, src.ptr, ir.Constant(I64, nbytes)])

    def result_buffer(self, s, aval, reads_target=None):
        """Where a non-elementwise primitive writes its result: the target's
        buffer, or a scratch one when the inputs read the target."""
        if reads_target is None:
            reads_target = any(a.name == s.target for a in s.args)
        if reads_target:
            return self.buffer(None, aval.dtype, aval.shape)
        return self.name_buffer(s.target, aval.dtype, aval.shape)

    # -------------------------------------------------------- control flow
    def if_(self, s, env):
        b = self.b
        pred = self.scalar(self.value_of(s.pred, env), np.bool_).value
        then_bb = self.fn.append_basic_block("then")
        else_bb = self.fn.append_basic_block("else")
        join_bb = self.fn.append_basic_block("endif")
        b.cbranch(pred, then_bb, else_bb)
        for block, stmts in ((then_bb, s.body), (else_bb, s.orelse)):
            b.position_at_end(block)
            e = dict(env)
            self.block(stmts, e)
            for n, aval in s.merged.items():
                if n in e:
                    self.spill(n, self._owned(n, e[n]), aval)
            b.branch(join_bb)
        b.position_at_end(join_bb)
        for n, aval in s.merged.items():
            env[n] = self.reload(n, aval)

    def _owned(self, n, v):
        return v

    def for_(self, s, env):
        b = self.b
        start = self.scalar(self.value_of(s.start, env), np.int64).value
        stop = self.scalar(self.value_of(s.stop, env), np.int64).value
        step_v = self.value_of(s.step, env)
        step = self.scalar(step_v, np.int64).value
        for n, aval in s.carried.items():
            if n in env:
                self.spill(n, env[n], aval)
        islot = self._slot(("for", s.var, id(s)), I64)
        b.store(start, islot)
        head = self.fn.append_basic_block("for.head")
        body = self.fn.append_basic_block("for.body")
        end = self.fn.append_basic_block("for.end")
        b.branch(head)
        b.position_at_end(head)
        i = b.load(islot)
        for n, aval in s.carried.items():
            env[n] = self.reload(n, aval)
        if isinstance(step_v, int):
            cond = b.icmp_signed("<" if step_v > 0 else ">", i, stop)
        else:
            up = b.icmp_signed(">", step, ir.Constant(I64, 0))
            cond = b.select(up, b.icmp_signed("<", i, stop), b.icmp_signed(">", i, stop))
        b.cbranch(cond, body, end)
        b.position_at_end(body)
        e = dict(env)
        e[s.var] = Scalar(i, np.int64, weak=True)
        with hot(b):
            self.block(s.body, e)
        for n, aval in s.carried.items():
            if n in e and n != s.var:
                self.spill(n, e[n], aval)
        b.store(b.add(i, step), islot)
        b.branch(head)
        b.position_at_end(end)
        env[s.var] = Scalar(b.sub(i, step), np.int64, weak=True)

    def while_(self, s, env):
        b = self.b
        for n, aval in s.carried.items():
            if n in env:
                self.spill(n, env[n], aval)
        head = self.fn.append_basic_block("while.head")
        body = self.fn.append_basic_block("while.body")
        end = self.fn.append_basic_block("while.end")
        b.branch(head)
        b.position_at_end(head)
        for n, aval in s.carried.items():
            env[n] = self.reload(n, aval)
        pred = self.scalar(env[s.pred], np.bool_).value
        b.cbranch(pred, body, end)
        b.position_at_end(body)
        e = dict(env)
        with hot(b):
            self.block(s.body, e)
        for n, aval in s.carried.items():
            if n in e:
                self.spill(n, e[n], aval)
        b.branch(head)
        b.position_at_end(end)


def _pointwise_safe(value, target, dest):
    """True when every read of the target's buffer in `value` is at the
    element being written (same shape, contiguous): in-place is then safe."""
    from .kernels import leaves
    for leaf in leaves(value):
        if isinstance(leaf, Array) and (leaf.owner == dest.owner or leaf.owner is None or
                                        (isinstance(leaf.owner, tuple) and leaf.owner[0] == "carried")):
            # a read that may hit the target's buffer: safe only if it reads
            # exactly the element being written
            if not (leaf.shape == dest.shape and leaf.contiguous) and size_of(leaf.shape) != 1:
                return False
    return True


def emit_module(tf, plan, env_info, parts=1):
    """([llvmlite.ir.Module], n_inputs, n_outputs) for typed function `tf`:
    the first module holds the entry; with `parts` > 1, the loop nests of
    straight-line code are spread over that many modules."""
    em = FunctionEmitter(tf, plan, env_info, parts)
    em.emit(tf.in_avals)
    return em.modules, em.n_inputs, em.n_outputs


def _declared_reason(prim):
    """Why `prim` has no llvm lowering, as the table or the lowering module
    declared it (the user's error carries it), or None."""
    from ...runtime.table import PRIMITIVES
    p = PRIMITIVES.get(prim)
    reason = p.no_rule.get("llvm") if p is not None else None
    return reason
