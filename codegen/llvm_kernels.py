"""Loop nests of compiled code: fused elementwise kernels, reductions,
matmul, copies (llvmlite.ir).

Owns how a `Lazy` expression tree (fusion = evaluating a whole chain of
elementwise and broadcasting ops inside one loop nest, with no
temporaries) is evaluated at an index and stored into a destination array
or view: a flat loop when every operand is contiguous (explicitly
vectorized with libmvec when the chain calls a transcendental function,
split across threads with pthreads when large), a loop nest over the
output's dimensions otherwise.  Also reductions with axis/keepdims (fused
with their producer, which is a `Lazy`), cumulative sums, and matmul
(OpenBLAS `cblas_?gemm` for floats, a loop kernel otherwise).  Must not
walk programs (llvm_emit.py) nor bind LLVM (llvm_binding.py).
"""

import contextlib
import os

import numpy as np
from llvmlite import ir

from ..errors import MissingRuleError
from .llvm_values import (I1, I8, I32, I64, PTR, Array, Lazy, Scalar, LIBM, LIBM2, c_strides,
                          calc_dtype, cast, const, mem_type, reg_type, scalar_op, size_of)

PARALLEL_MIN = 1 << 16          # elements (transcendental chains)
PARALLEL_MIN_SIMPLE = 1 << 20   # elements (arithmetic only: memory bound)
#: products below this many flops call BLAS on one thread
GEMM_THREADED_MIN_FLOPS = float(os.environ.get("COTAN_GEMM_THREADED_MIN_FLOPS", 1e9))


def num_threads():
    try:
        return max(1, int(os.environ.get("COTAN_NUM_THREADS", "") or os.cpu_count() or 1))
    except ValueError:
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def loop(b, stop, start=None, name="i"):
    """`for i in range(start, stop)` in IR; yields i (i64)."""
    fn = b.function
    pre = b.block
    head = fn.append_basic_block(f"{name}.head")
    body = fn.append_basic_block(f"{name}.body")
    end = fn.append_basic_block(f"{name}.end")
    start = ir.Constant(I64, 0) if start is None else start
    stop = ir.Constant(I64, stop) if isinstance(stop, int) else stop
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name=name)
    i.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", i, stop), body, end)
    b.position_at_end(body)
    yield i
    nxt = b.add(i, ir.Constant(I64, 1), flags=["nsw"])
    i.add_incoming(nxt, b.block)
    b.branch(head)
    b.position_at_end(end)


@contextlib.contextmanager
def loop_nest(b, shape, name="d"):
    """Nested loops over `shape` (C order); yields the list of indices."""
    with contextlib.ExitStack() as stack:
        idx = []
        for k, d in enumerate(shape):
            idx.append(stack.enter_context(loop(b, d, name=f"{name}{k}")))
        yield idx


def elem_ptr(b, arr, offset):
    base = b.bitcast(arr.ptr, ir.PointerType(mem_type(arr.dtype))) \
        if arr.ptr.type != ir.PointerType(mem_type(arr.dtype)) else arr.ptr
    return b.gep(base, [offset], inbounds=True)


def load_mem(b, arr, offset, lanes=None):
    p = elem_ptr(b, arr, offset)
    if lanes:
        vt = ir.VectorType(mem_type(arr.dtype), lanes)
        v = b.load(b.bitcast(p, ir.PointerType(vt)), align=1)
        if arr.dtype.kind == "b":
            return b.icmp_unsigned("!=", v, ir.Constant(vt, None))
        return v
    v = b.load(p)
    if arr.dtype.kind == "b":
        return b.icmp_unsigned("!=", v, ir.Constant(I8, 0))
    return v


def store_mem(b, arr, offset, value):
    p = elem_ptr(b, arr, offset)
    if isinstance(value.type, ir.VectorType):
        if arr.dtype.kind == "b":
            value = b.zext(value, ir.VectorType(I8, value.type.count))
        b.store(value, b.bitcast(p, ir.PointerType(value.type)), align=1)
        return
    if arr.dtype.kind == "b":
        value = b.zext(value, I8)
    b.store(value, p)


def offset_of(b, arr, idx, out_shape):
    """Element offset of `arr` broadcast against `out_shape` at indices `idx`."""
    k = len(out_shape) - len(arr.shape)
    off = ir.Constant(I64, 0)
    for d, (n, s) in enumerate(zip(arr.shape, arr.strides)):
        if n == 1 or s == 0:
            continue
        off = b.add(off, b.mul(idx[k + d], ir.Constant(I64, s), flags=["nsw"]), flags=["nsw"])
    return off


class Evaluator:
    """Evaluates a value tree at an index: flat (linear index, every array
    contiguous and full-shape) or nd (one index per output dimension)."""

    def __init__(self, b, math, out_shape, flat_index=None, nd_index=None, lanes=None):
        self.b, self.math, self.out_shape = b, math, tuple(out_shape)
        self.flat, self.nd, self.lanes = flat_index, nd_index, lanes
        self.memo = {}

    def splat(self, v):
        if not self.lanes:
            return v
        vt = ir.VectorType(v.type, self.lanes)
        if isinstance(v, ir.Constant):
            return ir.Constant(vt, [v] * self.lanes)
        u = ir.Constant(vt, None)
        u = self.b.insert_element(u, v, ir.Constant(I32, 0))
        return self.b.shuffle_vector(u, ir.Constant(vt, None),
                                     ir.Constant(ir.VectorType(I32, self.lanes), [0] * self.lanes))

    def value(self, node, dtype):
        """Register value of `node` converted to `dtype`."""
        if isinstance(node, (bool, int, float, np.generic)):
            return self.splat(const(dtype, node))
        v, src = self.eval(node)
        return cast(self.b, v, src, dtype)

    def eval(self, node):
        key = id(node)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        b = self.b
        if isinstance(node, Scalar):
            out = (self.splat(node.value), node.dtype)
        elif isinstance(node, Array):
            if size_of(node.shape) == 1 and not self.lanes:
                out = (load_mem(b, node, ir.Constant(I64, 0)), node.dtype)
            elif size_of(node.shape) == 1:
                out = (self.splat(load_mem(b, node, ir.Constant(I64, 0))), node.dtype)
            elif self.flat is not None:
                out = (load_mem(b, node, self.flat, self.lanes), node.dtype)
            elif self.lanes:
                # vector along the last dimension (inner_vector_ok holds)
                off = offset_of(b, node, self.nd, self.out_shape)
                if varies_inner(node):
                    out = (load_mem(b, node, off, self.lanes), node.dtype)
                else:
                    out = (self.splat(load_mem(b, node, off)), node.dtype)
            else:
                out = (load_mem(b, node, offset_of(b, node, self.nd, self.out_shape)),
                       node.dtype)
        elif isinstance(node, Lazy):
            calc = node.calc
            if node.op in ("where", "select"):
                vals = [self.value(node.children[0], np.bool_),
                        self.value(node.children[1], node.dtype),
                        self.value(node.children[2], node.dtype)]
            elif node.op == "cast":
                vals = [self.value(node.children[0], node.dtype)]
                out = (vals[0], node.dtype)
                self.memo[key] = out
                return out
            else:
                vals = [self.value(c, calc) for c in node.children]
            r = scalar_op(b, self.math, node.op, vals, calc, node.params)
            rdt = np.dtype(np.bool_) if isinstance(r.type, ir.IntType) and r.type.width == 1 \
                or (isinstance(r.type, ir.VectorType) and r.type.element == I1) else calc
            if node.op in ("where", "select"):
                rdt = node.dtype
            out = (cast(b, r, rdt, node.dtype), node.dtype)
        else:
            raise TypeError(f"cannot evaluate {node!r}")
        self.memo[key] = out
        return out


def leaves(node, out=None):
    out = [] if out is None else out
    if isinstance(node, Lazy):
        for c in node.children:
            leaves(c, out)
    elif isinstance(node, (Array, Scalar)):
        out.append(node)
    return out


def flat_ok(node, shape):
    for leaf in leaves(node):
        if isinstance(leaf, Array) and size_of(leaf.shape) != 1 and not (
                leaf.shape == tuple(shape) and leaf.contiguous):
            return False
    return True


def varies_inner(arr):
    """True when `arr` (broadcast against an output of at least its rank)
    changes along the output's last dimension."""
    return len(arr.shape) >= 1 and arr.shape[-1] != 1 and arr.strides[-1] != 0


def inner_vector_ok(node, dest):
    """True when `dest` and every operand of `node` are contiguous along
    the last dimension or constant along it, so it can be read in vectors."""
    if dest.strides[-1] != 1:
        return False
    for leaf in leaves(node):
        if isinstance(leaf, Array) and size_of(leaf.shape) != 1 and varies_inner(leaf) \
                and leaf.strides[-1] != 1:
            return False
    return True


def has_transcendental(node):
    if isinstance(node, Lazy):
        if node.op in LIBM or node.op in LIBM2 or (node.op == "power" and
                                                   "static_exponent" not in node.params):
            return True
        return any(has_transcendental(c) for c in node.children)
    return False


def vector_lanes(node, dtype, math):
    """Lanes of an explicit libmvec vector loop for `node`, or None."""
    if not has_transcendental(node) or not math.vector_math:
        return None
    dts = {np.dtype(dtype)} | {leaf.dtype for leaf in leaves(node)}
    if dts <= {np.dtype(np.float64), np.dtype(np.bool_)} | {np.dtype(np.int64)}:
        lanes = 4
        calc_f = np.float64
    elif dts <= {np.dtype(np.float32), np.dtype(np.bool_)}:
        lanes, calc_f = 8, np.float32
    else:
        return None
    for (name, bits), (_, n) in math.vector_math.items():
        pass
    return lanes


class KernelEmitter:
    """Kernel emission inside one function, with access to the module."""

    def __init__(self, module, math, counter):
        self.module = module
        self.math = math
        self.counter = counter
        self._pfor = None

    # ------------------------------------------------------------ elementwise
    def assign(self, b, dest, node):
        """dest[...] = node (broadcast), dest an Array (possibly a view)."""
        shape = dest.shape
        n = size_of(shape)
        if n == 0:
            return
        if isinstance(node, (bool, int, float, np.generic)) or isinstance(node, Scalar):
            if dest.contiguous and n > 1:
                ev = Evaluator(b, self.math, shape)
                v = ev.value(node, dest.dtype)
                with loop(b, n) as i:
                    store_mem(b, dest, i, v)
                return
        if dest.contiguous and flat_ok(node, shape):
            lanes = vector_lanes(node, dest.dtype, self.math)
            nthreads = num_threads()
            threshold = PARALLEL_MIN if lanes else PARALLEL_MIN_SIMPLE
            if nthreads > 1 and n >= threshold:
                self._parallel_flat(b, dest, node, n, lanes, nthreads)
            else:
                self._flat_range(b, dest, node, ir.Constant(I64, 0), ir.Constant(I64, n), lanes)
            return
        lanes = vector_lanes(node, dest.dtype, self.math)
        if lanes and len(shape) >= 2 and shape[-1] >= lanes and inner_vector_ok(node, dest):
            # broadcasting chain with a transcendental call (bias + tanh):
            # vectorize the contiguous inner dimension, rows over threads
            nthreads = num_threads()
            if nthreads > 1 and n >= PARALLEL_MIN and shape[0] >= nthreads:
                self._parallel(b, dest, node, shape[0], 1, nthreads, self._rows_range, lanes)
            else:
                self._rows_range(b, dest, node, ir.Constant(I64, 0),
                                 ir.Constant(I64, shape[0]), lanes)
            return
        with loop_nest(b, shape) as idx:
            ev = Evaluator(b, self.math, shape, nd_index=idx)
            v = ev.value(node, dest.dtype)
            store_mem(b, dest, offset_of(b, dest, idx, shape), v)

    def _rows_range(self, b, dest, node, start, stop, lanes):
        """dest[start:stop, ...] = node with the last dimension in vectors
        of `lanes` (every operand contiguous or broadcast along it)."""
        shape = dest.shape
        inner = shape[-1]
        groups = inner // lanes
        with loop(b, stop, start=start, name="r0") as r:
            with loop_nest(b, shape[1:-1], name="rm") as mid:
                outer = [r] + list(mid)
                with loop(b, groups, name="v") as g:
                    idx = outer + [b.mul(g, ir.Constant(I64, lanes))]
                    ev = Evaluator(b, self.math, shape, nd_index=idx, lanes=lanes)
                    store_mem(b, dest, offset_of(b, dest, idx, shape),
                              ev.value(node, dest.dtype))
                if inner % lanes:
                    with loop(b, inner, start=ir.Constant(I64, groups * lanes), name="t") as j:
                        idx = outer + [j]
                        ev = Evaluator(b, self.math, shape, nd_index=idx)
                        store_mem(b, dest, offset_of(b, dest, idx, shape),
                                  ev.value(node, dest.dtype))

    def _flat_range(self, b, dest, node, start, stop, lanes):
        if lanes:
            # vector main loop over whole groups of `lanes`, then a scalar tail
            span = b.sub(stop, start)
            groups = b.sdiv(span, ir.Constant(I64, lanes))
            with loop(b, groups, name="v") as g:
                i = b.add(start, b.mul(g, ir.Constant(I64, lanes)))
                ev = Evaluator(b, self.math, dest.shape, flat_index=i, lanes=lanes)
                store_mem(b, dest, i, ev.value(node, dest.dtype))
            start = b.add(start, b.mul(groups, ir.Constant(I64, lanes)))
        with loop(b, stop, start=start, name="s") as i:
            ev = Evaluator(b, self.math, dest.shape, flat_index=i)
            store_mem(b, dest, i, ev.value(node, dest.dtype))

    def _parallel_flat(self, b, dest, node, n, lanes, nthreads):
        self._parallel(b, dest, node, n, lanes or 1, nthreads, self._flat_range, lanes)

    def _parallel(self, b, dest, node, n, align, nthreads, body, lanes):
        """Outline `body(b, dest, node, start, stop, lanes)` (a loop over
        [start, stop)) into kernel(ctx, start, stop) and run chunks of
        [0, n) on `nthreads` threads."""
        vals = []
        seen = set()
        for leaf in leaves(node) + [dest]:
            v = leaf.ptr if isinstance(leaf, Array) else leaf.value
            if id(v) not in seen and not isinstance(v, ir.Constant):
                seen.add(id(v))
                vals.append(v)
        self.counter[0] += 1
        kname = f"cotan.kernel.{self.counter[0]}"
        kfn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR, I64, I64]), kname)
        kfn.linkage = "internal"
        # one copy of the loop: inlining it into parallel_for's call for the
        # main thread's chunk would double its code (and compile time)
        kfn.attributes.add("noinline")
        kb = ir.IRBuilder(kfn.append_basic_block("entry"))
        ctx, start, stop = kfn.args
        slots = kb.bitcast(ctx, ir.PointerType(I64))
        remap = {}
        for k, v in enumerate(vals):
            raw = kb.load(kb.gep(slots, [ir.Constant(I64, k)]))
            if isinstance(v.type, ir.PointerType):
                remap[id(v)] = kb.inttoptr(raw, v.type)
            elif isinstance(v.type, ir.IntType):
                remap[id(v)] = kb.trunc(raw, v.type) if v.type.width < 64 else raw
            else:
                remap[id(v)] = kb.bitcast(raw, F64_) if v.type == F64_ else \
                    kb.bitcast(kb.trunc(raw, I32), v.type)
        new_node = _rebuild(node, remap, {})
        new_dest = _rebuild(dest, remap, {})
        body(kb, new_dest, new_node, start, stop, lanes)
        kb.ret_void()
        # marshal the captured values into ctx
        arr = b.alloca(I64, ir.Constant(I64, max(1, len(vals))))
        for k, v in enumerate(vals):
            if isinstance(v.type, ir.PointerType):
                raw = b.ptrtoint(v, I64)
            elif isinstance(v.type, ir.IntType):
                raw = b.zext(v, I64) if v.type.width < 64 else v
            elif v.type == F64_:
                raw = b.bitcast(v, I64)
            else:
                raw = b.zext(b.bitcast(v, I32), I64)
            b.store(raw, b.gep(arr, [ir.Constant(I64, k)]))
        b.call(self.parallel_for(), [kfn, b.bitcast(arr, PTR), ir.Constant(I64, n),
                                     ir.Constant(I64, nthreads),
                                     ir.Constant(I64, align)])

    def parallel_for(self):
        """`cotan.parallel_for(kernel, ctx, n, nthreads, align)`: chunk [0, n)
        over nthreads (chunks multiple of `align`), threads via pthreads."""
        if self._pfor is not None:
            return self._pfor
        m = self.module
        ktype = ir.FunctionType(ir.VoidType(), [PTR, I64, I64])
        kptr = ir.PointerType(ktype)
        # worker(job): job = {kernel, ctx, start, stop} as i64s
        worker = ir.Function(m, ir.FunctionType(PTR, [PTR]), "cotan.worker")
        worker.linkage = "internal"
        wb = ir.IRBuilder(worker.append_basic_block("entry"))
        job = wb.bitcast(worker.args[0], ir.PointerType(I64))
        ld = [wb.load(wb.gep(job, [ir.Constant(I64, k)])) for k in range(4)]
        wb.call(wb.inttoptr(ld[0], kptr), [wb.inttoptr(ld[1], PTR), ld[2], ld[3]])
        wb.ret(ir.Constant(PTR, None))
        pcreate = m.globals.get("pthread_create") or ir.Function(
            m, ir.FunctionType(I32, [ir.PointerType(I64), PTR,
                                     ir.PointerType(worker.function_type), PTR]),
            "pthread_create")
        pjoin = m.globals.get("pthread_join") or ir.Function(
            m, ir.FunctionType(I32, [I64, ir.PointerType(PTR)]), "pthread_join")
        fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [kptr, PTR, I64, I64, I64]),
                         "cotan.parallel_for")
        fn.linkage = "internal"
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        kern, ctx, n, nt, align = fn.args
        # chunk = ceil(n / nt) rounded up to a multiple of align
        chunk = b.sdiv(b.add(n, b.sub(nt, ir.Constant(I64, 1))), nt)
        chunk = b.mul(b.sdiv(b.add(chunk, b.sub(align, ir.Constant(I64, 1))), align), align)
        jobs = b.alloca(I64, b.mul(nt, ir.Constant(I64, 4)))
        tids = b.alloca(I64, nt)
        kint = b.ptrtoint(kern, I64)
        cint = b.ptrtoint(ctx, I64)
        with loop(b, nt, start=ir.Constant(I64, 1), name="t") as t:
            lo = b.mul(t, chunk)
            lo = b.select(b.icmp_signed("<", lo, n), lo, n)
            hi = b.add(lo, chunk)
            hi = b.select(b.icmp_signed("<", hi, n), hi, n)
            jp = b.gep(jobs, [b.mul(t, ir.Constant(I64, 4))])
            for k, v in enumerate((kint, cint, lo, hi)):
                b.store(v, b.gep(jp, [ir.Constant(I64, k)]))
            b.call(pcreate, [b.gep(tids, [t]), ir.Constant(PTR, None), worker,
                             b.bitcast(jp, PTR)])
        first = b.select(b.icmp_signed("<", chunk, n), chunk, n)
        b.call(kern, [ctx, ir.Constant(I64, 0), first])
        with loop(b, nt, start=ir.Constant(I64, 1), name="j") as t:
            b.call(pjoin, [b.load(b.gep(tids, [t])), ir.Constant(ir.PointerType(PTR), None)])
        b.ret_void()
        self._pfor = fn
        return fn

    # ------------------------------------------------------------- reductions
    def reduce(self, b, kind, src, axes, keepdims, out_dtype, dest=None):
        """Reduce `src` (Array or Lazy of shape S) over `axes` (tuple of
        normalized axes).  Returns a Scalar when the result is 0-d, else
        fills `dest` (contiguous Array of the reduced shape)."""
        shape = tuple(src.shape)
        out_dtype = np.dtype(out_dtype)
        kept = [d for d in range(len(shape)) if d not in axes]
        red = [d for d in range(len(shape)) if d in axes]
        if kind in ("argmax", "argmin"):
            return self._arg_reduce(b, kind, src, kept, red, out_dtype, dest)
        acc_dt = np.dtype(np.bool_) if kind in ("any", "all") else out_dtype
        init = _identity(kind, acc_dt)
        if red == list(range(len(red) and len(shape) - len(red), len(shape))) or not kept:
            # reduced dims form a suffix: a register accumulator per output
            outer = [shape[d] for d in kept]

            def inner(idx_outer):
                acc = b.alloca(reg_type(acc_dt))
                b.store(const(acc_dt, init), acc)
                if not kept and flat_ok(src, shape):
                    with loop(b, size_of(shape)) as i:
                        ev = Evaluator(b, self.math, shape, flat_index=i)
                        v = ev.value(src, acc_dt)
                        b.store(_combine(b, self.math, kind, b.load(acc), v, acc_dt), acc)
                else:
                    with loop_nest(b, [shape[d] for d in red], name="r") as ridx:
                        full = [None] * len(shape)
                        for d, i in zip(kept, idx_outer):
                            full[d] = i
                        for d, i in zip(red, ridx):
                            full[d] = i
                        ev = Evaluator(b, self.math, shape, nd_index=full)
                        v = ev.value(src, acc_dt)
                        b.store(_combine(b, self.math, kind, b.load(acc), v, acc_dt), acc)
                return cast(b, b.load(acc), acc_dt, out_dtype)

            if not kept:
                r = inner([])
                if dest is None:
                    return Scalar(r, out_dtype)
                store_mem(b, dest, ir.Constant(I64, 0), r)
                return dest
            with loop_nest(b, outer, name="o") as oidx:
                r = inner(oidx)
                off = ir.Constant(I64, 0)
                for i, s in zip(oidx, c_strides(outer)):
                    off = b.add(off, b.mul(i, ir.Constant(I64, s)))
                store_mem(b, dest, off, r)
            return dest
        # accumulate into the output in the input's order (vectorizes along
        # a kept trailing dimension)
        outer = [shape[d] for d in kept]
        ostr = dict(zip(kept, c_strides(outer)))
        self.assign(b, Array(dest.ptr, out_dtype, (size_of(outer),)), const_node(init))
        with loop_nest(b, shape, name="a") as idx:
            ev = Evaluator(b, self.math, shape, nd_index=idx)
            v = ev.value(src, acc_dt)
            off = ir.Constant(I64, 0)
            for d in kept:
                off = b.add(off, b.mul(idx[d], ir.Constant(I64, ostr[d])))
            old = cast(b, load_mem(b, dest, off), out_dtype, acc_dt)
            store_mem(b, dest, off, cast(b, _combine(b, self.math, kind, old, v, acc_dt),
                                         acc_dt, out_dtype))
        return dest

    def _arg_reduce(self, b, kind, src, kept, red, out_dtype, dest):
        shape = tuple(src.shape)
        if len(red) == len(shape):
            kept, red_shape = [], [size_of(shape)]
        else:
            red_shape = [shape[d] for d in red]
        dt = src.dtype
        outer = [shape[d] for d in kept]
        cmp = ">" if kind == "argmax" else "<"

        def body(oidx):
            best = b.alloca(reg_type(dt))
            besti = b.alloca(I64)
            b.store(const(np.int64, 0), besti)
            first = True
            with loop(b, size_of(red_shape), name="r") as r:
                if len(kept) == 0 and len(red) == len(shape) and flat_ok(src, shape):
                    ev = Evaluator(b, self.math, shape, flat_index=r)
                elif len(red) == len(shape):
                    # unravel r over the whole shape
                    idx = _unravel(b, r, shape)
                    ev = Evaluator(b, self.math, shape, nd_index=idx)
                else:
                    full = [None] * len(shape)
                    for d, i in zip(kept, oidx):
                        full[d] = i
                    full[red[0]] = r
                    ev = Evaluator(b, self.math, shape, nd_index=full)
                v = ev.value(src, dt)
                is0 = b.icmp_signed("==", r, ir.Constant(I64, 0))
                cur = b.load(best)
                if dt.kind == "f":
                    better = b.fcmp_ordered(cmp, v, cur)
                    # NumPy: the first NaN wins
                    curnan = b.fcmp_unordered("uno", cur, cur)
                    vnan = b.fcmp_unordered("uno", v, v)
                    better = b.or_(b.and_(better, b.not_(curnan)),
                                   b.and_(vnan, b.not_(curnan)))
                else:
                    better = (b.icmp_unsigned if dt.kind in "ub" else b.icmp_signed)(cmp, v, cur)
                take = b.or_(is0, better)
                b.store(b.select(take, v, cur), best)
                b.store(b.select(take, r, b.load(besti)), besti)
            return b.load(besti)

        if not kept:
            r = body([])
            if dest is None:
                return Scalar(cast(b, r, np.int64, out_dtype), out_dtype)
            store_mem(b, dest, ir.Constant(I64, 0), r)
            return dest
        with loop_nest(b, outer, name="o") as oidx:
            r = body(oidx)
            off = ir.Constant(I64, 0)
            for i, s in zip(oidx, c_strides(outer)):
                off = b.add(off, b.mul(i, ir.Constant(I64, s)))
            store_mem(b, dest, off, cast(b, r, np.int64, out_dtype))
        return dest

    def cumulative(self, b, kind, src, axis, dest):
        """dest = cumsum/cumprod(src, axis) (dest contiguous, src's shape)."""
        shape = tuple(src.shape)
        dt = dest.dtype
        outer_dims = [d for d in range(len(shape)) if d != axis]
        dstr = c_strides(shape)
        with loop_nest(b, [shape[d] for d in outer_dims], name="c") as oidx:
            acc = b.alloca(reg_type(dt))
            b.store(const(dt, 0 if kind == "cumsum" else 1), acc)
            with loop(b, shape[axis], name="k") as k:
                full = [None] * len(shape)
                for d, i in zip(outer_dims, oidx):
                    full[d] = i
                full[axis] = k
                ev = Evaluator(b, self.math, shape, nd_index=full)
                v = ev.value(src, dt)
                r = _combine(b, self.math, "sum" if kind == "cumsum" else "prod",
                             b.load(acc), v, dt, fast=False)
                b.store(r, acc)
                off = ir.Constant(I64, 0)
                for d in range(len(shape)):
                    off = b.add(off, b.mul(full[d], ir.Constant(I64, dstr[d])))
                store_mem(b, dest, off, r)
        return dest

    # ----------------------------------------------------------------- matmul
    def gemm(self, b, a, bm, dest, blas):
        """dest(m,n) = a(m,k) @ bm(k,n): 2-D Arrays with any strides."""
        m, k = a.shape
        n = bm.shape[1]
        dt = dest.dtype
        key = {np.dtype(np.float64): "d", np.dtype(np.float32): "s"}.get(dt)
        if (key in blas and a.dtype == dt and bm.dtype == dt and m and n and k
                and _blas_layout(a) and _blas_layout(bm)):
            ta, lda = _blas_layout(a)
            tb, ldb = _blas_layout(bm)
            one_thread = 2 * m * n * k < GEMM_THREADED_MIN_FLOPS and \
                "set_threads" in blas and "get_threads" in blas
            if one_thread:
                # OpenBLAS's threads spin; below ~1 GFLOP they cost more than
                # they give, and on a busy machine much more (5x measured at
                # 256x784x512 on 2 loaded cores)
                set_fn = self.module.globals.get(blas["set_threads"]) or ir.Function(
                    self.module, ir.FunctionType(ir.VoidType(), [I32]), blas["set_threads"])
                get_fn = self.module.globals.get(blas["get_threads"]) or ir.Function(
                    self.module, ir.FunctionType(I32, []), blas["get_threads"])
                old_threads = b.call(get_fn, [])
                b.call(set_fn, [ir.Constant(I32, 1)])
            fty = reg_type(dt)
            fn = self.module.globals.get(blas[key]) or ir.Function(
                self.module, ir.FunctionType(ir.VoidType(), [I32, I32, I32, I64, I64, I64, fty,
                                                             PTR, I64, PTR, I64, fty, PTR, I64]),
                blas[key])
            b.call(fn, [ir.Constant(I32, 101), ir.Constant(I32, ta), ir.Constant(I32, tb),
                        ir.Constant(I64, m), ir.Constant(I64, n), ir.Constant(I64, k),
                        ir.Constant(fty, 1.0), a.ptr, ir.Constant(I64, lda), bm.ptr,
                        ir.Constant(I64, ldb), ir.Constant(fty, 0.0), dest.ptr,
                        ir.Constant(I64, n)])
            if one_thread:
                b.call(set_fn, [old_threads])
            return dest
        # loop kernel: i, p, j with the j loop innermost (vectorizes)
        self.assign(b, dest, 0)
        with loop(b, m, name="mi") as i:
            with loop(b, k, name="mp") as p:
                av = cast(b, load_mem(b, a, b.add(b.mul(i, ir.Constant(I64, a.strides[0])),
                                                  b.mul(p, ir.Constant(I64, a.strides[1])))),
                          a.dtype, dt)
                with loop(b, n, name="mj") as j:
                    bv = cast(b, load_mem(b, bm, b.add(
                        b.mul(p, ir.Constant(I64, bm.strides[0])),
                        b.mul(j, ir.Constant(I64, bm.strides[1])))), bm.dtype, dt)
                    off = b.add(b.mul(i, ir.Constant(I64, n)), j)
                    old = load_mem(b, dest, off)
                    prod = scalar_op(b, self.math, "multiply", [av, bv], dt)
                    store_mem(b, dest, off, scalar_op(b, self.math, "add", [old, prod], dt))
        return dest


F64_ = ir.DoubleType()


def const_node(v):
    return v


def _blas_layout(a):
    """(CblasNoTrans=111 / CblasTrans=112, leading dimension) for a 2-D view
    BLAS can read in place, or None."""
    r, c = a.shape
    sr, sc = a.strides
    if (sc == 1 or c == 1) and sr >= max(1, c):
        return 111, max(sr, c, 1) if r > 1 else max(c, 1)
    if (sr == 1 or r == 1) and sc >= max(1, r):
        return 112, max(sc, r, 1) if c > 1 else max(r, 1)
    return None


def _unravel(b, r, shape):
    idx = []
    for s in c_strides(shape):
        idx.append(b.sdiv(r, ir.Constant(I64, s)))
        r = b.srem(r, ir.Constant(I64, s))
    return idx


def _identity(kind, dt):
    dt = np.dtype(dt)
    if kind == "sum":
        return 0
    if kind == "prod":
        return 1
    if kind == "any":
        return False
    if kind == "all":
        return True
    if kind == "max":
        return -np.inf if dt.kind == "f" else (np.iinfo(dt).min if dt.kind in "iu" else False)
    if kind == "min":
        return np.inf if dt.kind == "f" else (np.iinfo(dt).max if dt.kind in "iu" else True)
    raise MissingRuleError(kind, "llvm")


def _combine(b, math, kind, acc, v, dt, fast=True):
    dt = np.dtype(dt)
    if kind == "sum":
        if dt.kind == "f":
            return b.fadd(acc, v, flags=["reassoc", "nsz"] if fast else [])
        return b.add(acc, v) if dt.kind != "b" else b.or_(acc, v)
    if kind == "prod":
        if dt.kind == "f":
            return b.fmul(acc, v, flags=["reassoc", "nsz"] if fast else [])
        return b.mul(acc, v) if dt.kind != "b" else b.and_(acc, v)
    if kind in ("max", "min"):
        return scalar_op(b, math, "maximum" if kind == "max" else "minimum", [acc, v], dt)
    if kind == "any":
        return b.or_(acc, v)
    if kind == "all":
        return b.and_(acc, v)
    raise MissingRuleError(kind, "llvm")


def _rebuild(node, remap, memo):
    if id(node) in memo:
        return memo[id(node)]
    if isinstance(node, Array):
        out = Array(remap.get(id(node.ptr), node.ptr), node.dtype, node.shape, node.strides)
    elif isinstance(node, Scalar):
        out = Scalar(remap.get(id(node.value), node.value), node.dtype, node.weak)
    elif isinstance(node, Lazy):
        out = Lazy(node.op, [_rebuild(c, remap, memo) for c in node.children], node.dtype,
                   node.shape, node.params, node.calc)
    else:
        out = node
    memo[id(node)] = out
    return out
