"""Loop nests of compiled code: fused elementwise kernels, copies, threads
(llvmlite.ir).

Owns how a `Lazy` expression tree (fusion = evaluating a whole chain of
elementwise and broadcasting ops inside one loop nest, with no
temporaries) is evaluated at an index and stored into a destination array
or view: a flat loop when every operand is contiguous (explicitly
vectorized with libmvec when the chain calls a transcendental function,
split across threads with pthreads when large), rows with a vectorized
last dimension when the operands are contiguous or broadcast along it
(bias + tanh), a loop nest over the output's dimensions otherwise.
Reductions live in llvm/reductions.py and matrix products in
llvm/gemm.py (`KernelEmitter.reduce/cumulative/gemm` call them).  Must not
walk programs (llvm/emit.py) nor bind LLVM (llvm/binding.py).
"""

import contextlib
import itertools
import os
import re

import numpy as np
from llvmlite import ir

from .values import (I1, I8, I32, I64, PTR, Array, Lazy, Scalar, LIBM, LIBM2, cast,
                          const, mem_type, scalar_op, size_of)

PARALLEL_MIN = 1 << 16          # elements (transcendental chains)
PARALLEL_MIN_SIMPLE = 1 << 20   # elements (arithmetic only: memory bound)


def chunk_size(n, nthreads, align):
    """The length of each thread's chunk of [0, n) in `parallel_for`."""
    c = -(-n // nthreads)
    return -(-c // align) * align


def num_threads():
    try:
        return max(1, int(os.environ.get("COTAN_NUM_THREADS", "") or os.cpu_count() or 1))
    except ValueError:
        return max(1, os.cpu_count() or 1)


#: a loop nest that runs at most this many iterations in all, once per
#: call (not inside a loop of the user's program), is not worth
#: vectorizing: on jit(grad(mlp_loss)) LLVM spent 65 ms (a fifth of the
#: compile time) vectorizing the 256- and 2560-element loops of the
#: softmax's gradient, which saves a microsecond or two per call
SMALL_NEST = 4096

#: the loop hint's marker; llvm_text() turns each into its own loop ID
#: (llvmlite.ir cannot build the self-referencing node LLVM requires)
_NOVEC = "cotan.novectorize"


def _trip_count(start, stop):
    if isinstance(stop, ir.Constant) and isinstance(start, ir.Constant):
        return max(0, stop.constant - start.constant)
    return None


@contextlib.contextmanager
def hot(b):
    """Code emitted inside marks a loop of the user's program: its kernels
    run many times per call and keep being vectorized whatever their size."""
    b.cotan_hot = getattr(b, "cotan_hot", 0) + 1
    try:
        yield
    finally:
        b.cotan_hot -= 1


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
    # iterations of the enclosing nest of these loops (None: not static)
    nest = getattr(b, "cotan_nest", [])
    trips = _trip_count(start, stop)
    total = None if trips is None or None in nest else trips
    for n in nest:
        total = None if total is None else total * n
    b.cotan_nest = nest + [trips]
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name=name)
    i.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", i, stop), body, end)
    b.position_at_end(body)
    try:
        yield i
    finally:
        b.cotan_nest = nest
    nxt = b.add(i, ir.Constant(I64, 1), flags=["nsw"])
    i.add_incoming(nxt, b.block)
    latch = b.branch(head)
    if total is not None and total <= SMALL_NEST and not getattr(b, "cotan_hot", 0):
        latch.set_metadata(_NOVEC, b.module.add_metadata([]))
    b.position_at_end(end)


def llvm_text(module):
    """The module's IR text, with each small-loop marker replaced by a loop
    ID of its own that turns LLVM's loop vectorizer off for that loop."""
    text = str(module)
    if _NOVEC not in text:
        return text
    # numbered past every node llvmlite wrote
    base = 1 + max((int(n) for n in re.findall(r"^!([0-9]+) =", text, re.M)), default=-1)
    ids = itertools.count(base, 2)
    defs = []

    def fresh(_m):
        k = next(ids)
        defs.append(f"!{k} = distinct !{{!{k}, !{k + 1}}}\n"
                    f"!{k + 1} = !{{!\"llvm.loop.vectorize.enable\", i1 false}}")
        return f", !llvm.loop !{k}"
    text = re.sub(r", !%s ![0-9]+" % re.escape(_NOVEC), fresh, text)
    return text + "\n" + "\n".join(defs) + "\n"


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
        return 4
    if dts <= {np.dtype(np.float32), np.dtype(np.bool_)}:
        return 8
    return None


class KernelEmitter:
    """Kernel emission inside one function, with access to the module."""

    def __init__(self, module, math, counter):
        self.module = module
        self.math = math
        self.counter = counter
        self.parts = None
        self._pfor = None

    # ------------------------------------------------------------ elementwise
    def assign(self, b, dest, node):
        """dest[...] = node (broadcast), dest an Array (possibly a view)."""
        shape = dest.shape
        n = size_of(shape)
        if n == 0:
            return
        if self._outline_here(b, shape):
            self._outlined(b, [dest, node], lambda kern, kb, d, x: kern.assign(kb, d, x))
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
        nthreads = num_threads()
        if nthreads > 1 and n >= PARALLEL_MIN_SIMPLE and len(shape) >= 2 \
                and shape[0] >= nthreads:
            # a large broadcasting chain (softmax's e / sum(e, 1, keepdims)):
            # rows over threads, LLVM vectorizing each row's loop
            self.parallel(b, [node, dest], shape[0], 1, nthreads,
                          lambda kb, objs, start, stop: self._nest_range(
                              kb, objs[1], objs[0], start, stop))
            return
        if not shape:
            ev = Evaluator(b, self.math, shape, nd_index=[])
            store_mem(b, dest, ir.Constant(I64, 0), ev.value(node, dest.dtype))
            return
        self._nest_range(b, dest, node, ir.Constant(I64, 0), ir.Constant(I64, shape[0]))

    def _nest_range(self, b, dest, node, start, stop):
        """dest[start:stop, ...] = node, a loop nest over the output."""
        shape = dest.shape
        with loop(b, stop, start=start, name="d0") as i0:
            with loop_nest(b, shape[1:]) as rest:
                idx = [i0] + list(rest)
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
        self.parallel(b, [node, dest], n, align, nthreads,
                      lambda kb, objs, start, stop: body(kb, objs[1], objs[0], start, stop,
                                                         lanes))

    def parallel(self, b, objs, n, align, nthreads, body):
        """Outline `body(b, objs, start, stop)` (the work of [start, stop),
        `objs` the Arrays and Lazy trees it reads and writes, rebuilt in
        the kernel) into kernel(ctx, start, stop) and run the chunks of
        [0, n) on `nthreads` threads: chunk t is [t*c, min(n, (t+1)*c))
        with c = `chunk_size(n, nthreads, align)` (a thread whose chunk is
        empty still runs, with start == stop == n)."""
        vals = _captured(objs, keep_constants=True)
        self.counter[0] += 1
        kname = f"cotan.kernel.{self.counter[0]}"
        kfn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR, I64, I64]), kname)
        kfn.linkage = "internal"
        # one copy of the loop: inlining it into parallel_for's call for the
        # main thread's chunk would double its code (and compile time)
        kfn.attributes.add("noinline")
        kb = ir.IRBuilder(kfn.append_basic_block("entry"))
        kb.cotan_kernel = True
        ctx, start, stop = kfn.args
        body(kb, _unpack(kb, ctx, vals, objs), start, stop)
        kb.ret_void()
        b.call(self.parallel_for(), [kfn, _pack(b, vals), ir.Constant(I64, n),
                                     ir.Constant(I64, nthreads),
                                     ir.Constant(I64, align)])

    # ------------------------------------------------------------- outlining
    def enable_outlining(self, parts, disjoint):
        """Emit each loop nest of the program's straight-line code (not
        inside a loop of the user's program) as a function of its own in
        one of `parts`, a list of `Part` (its own module and kernel
        emitter): the backend optimizes and generates code for the parts
        on separate threads, as many as there are cores.
        `disjoint(dest_ptr, other_ptrs)` tells when the memory a kernel
        writes cannot overlap what it reads: its pointer is then `noalias`,
        as LLVM knew inline (buffers at distinct offsets of one arena);
        without it every loop would carry run-time overlap checks."""
        self.parts = parts
        self.disjoint = disjoint

    def _outline_here(self, b, shape):
        # only straight-line code: not in a user loop, nor in a loop of
        # another kernel (a call per trip, and its loops would look small)
        return self.parts and not getattr(b, "cotan_hot", 0) \
            and not getattr(b, "cotan_nest", None) and not getattr(b, "cotan_kernel", False) \
            and size_of(shape) >= OUTLINE_MIN

    def _outlined(self, b, objs, body):
        """Run `body(kernel_emitter, builder, *objs)` in a new function of
        the least loaded part, called from here with the run-time values
        `objs` read as arguments (`objs[0]` the Array written)."""
        vals = _captured(objs, keep_constants=False)
        part = min(self.parts, key=lambda p: p.load())
        self.counter[0] += 1
        name = f"cotan.kernel.{self.counter[0]}"
        fnty = ir.FunctionType(ir.VoidType(), [v.type for v in vals])
        kfn = ir.Function(part.module, fnty, name)
        kfn.attributes.add("noinline")
        kfn.attributes.add("nounwind")
        dest = objs[0].ptr
        others = [v for v in vals if v is not dest and isinstance(v.type, ir.PointerType)]
        if any(v is dest for v in vals) and self.disjoint(dest, others):
            kfn.args[[k for k, v in enumerate(vals) if v is dest][0]].add_attribute("noalias")
        kb = ir.IRBuilder(kfn.append_basic_block("entry"))
        kb.cotan_kernel = True
        remap = {id(v): a for v, a in zip(vals, kfn.args)}
        memo = {}
        body(part.kern, kb, *[_rebuild(o, remap, memo) for o in objs])
        kb.ret_void()
        part.add(kfn)
        callee = kfn if part.module is self.module else ir.Function(self.module, fnty, name)
        b.call(callee, vals)

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
            rc = b.call(pcreate, [b.gep(tids, [t]), ir.Constant(PTR, None), worker,
                                  b.bitcast(jp, PTR)])
            # no thread (EAGAIN: a thread limit, little memory): the chunk
            # runs here, and there is nothing to join (joining the unset
            # id crashed)
            with b.if_then(b.icmp_signed("!=", rc, ir.Constant(I32, 0)), likely=False):
                b.store(ir.Constant(I64, 0), b.gep(tids, [t]))
                b.call(kern, [ctx, lo, hi])
        first = b.select(b.icmp_signed("<", chunk, n), chunk, n)
        b.call(kern, [ctx, ir.Constant(I64, 0), first])
        with loop(b, nt, start=ir.Constant(I64, 1), name="j") as t:
            tid = b.load(b.gep(tids, [t]))
            with b.if_then(b.icmp_signed("!=", tid, ir.Constant(I64, 0))):
                b.call(pjoin, [tid, ir.Constant(ir.PointerType(PTR), None)])
        b.ret_void()
        self._pfor = fn
        return fn

    # ------------------------------------------------------------- reductions
    def reduce(self, b, kind, src, axes, keepdims, out_dtype, dest=None):
        from .reductions import emit_reduce
        if dest is not None and self._outline_here(b, src.shape):
            self._outlined(b, [dest, src], lambda kern, kb, d, x: emit_reduce(
                kern, kb, kind, x, axes, keepdims, out_dtype, d))
            return dest
        return emit_reduce(self, b, kind, src, axes, keepdims, out_dtype, dest)

    def cumulative(self, b, kind, src, axis, dest):
        from .reductions import emit_cumulative
        return emit_cumulative(self, b, kind, src, axis, dest)

    # ----------------------------------------------------------------- matmul
    def gemm(self, b, a, bm, dest, blas):
        """dest(m,n) = a(m,k) @ bm(k,n): 2-D Arrays with any strides"""
        from .gemm import emit_gemm
        return emit_gemm(self, b, a, bm, dest, blas)


F64_ = ir.DoubleType()


#: loop nests with fewer elements stay inline (their function would cost
#: more to compile than their loop)
OUTLINE_MIN = 16


class Part:
    """One module of a compiled program: its kernel emitter, the kernels
    outlined into it, and a size estimate to balance the parts."""

    def __init__(self, module, kern, fixed=None):
        self.module, self.kern, self.kernels = module, kern, []
        self.fixed = fixed      # a function whose size counts too (the entry)
        self.kernel_size = 0

    def add(self, fn):
        self.kernels.append(fn)
        self.kernel_size += sum(len(bb.instructions) for bb in fn.blocks)

    def load(self):
        fixed = 0 if self.fixed is None else sum(len(bb.instructions)
                                                 for bb in self.fixed.blocks)
        return self.kernel_size + fixed


def _captured(objs, keep_constants):
    """The distinct run-time IR values the leaves of `objs` read (pointers
    and scalars); constants stay in place when `keep_constants` (same
    module), else only plain numbers do."""
    vals, seen = [], set()
    for obj in objs:
        for leaf in leaves(obj):
            v = leaf.ptr if isinstance(leaf, Array) else leaf.value
            if id(v) in seen:
                continue
            if isinstance(v, ir.Constant) and (keep_constants or
                                               not isinstance(v.type, ir.PointerType)):
                continue
            seen.add(id(v))
            vals.append(v)
    return vals


def _pack(b, vals):
    """A context array (i64 slots) holding `vals`, as an i8*."""
    # the slot array in the entry block: an alloca where the call is might
    # be in a loop, and grow the stack on every trip
    entry = b.function.entry_basic_block
    if b.block is entry:
        # (a second builder inserting into b's block would shift b's place)
        arr = b.alloca(I64, ir.Constant(I64, max(1, len(vals))))
    else:
        eb = ir.IRBuilder(entry)
        eb.position_at_start(entry)
        arr = eb.alloca(I64, ir.Constant(I64, max(1, len(vals))))
    for k, v in enumerate(vals):
        if isinstance(v.type, ir.PointerType):
            # stored as a pointer, not ptrtoint: a pointer stored into
            # memory the call can read has escaped, so the optimizer keeps
            # the caller's loads and stores of that memory around the call
            # (an integer carries no provenance: with the kernel in another
            # module it forwarded stale values across the call)
            slot = b.bitcast(b.gep(arr, [ir.Constant(I64, k)]), ir.PointerType(v.type))
            b.store(v, slot)
            continue
        if isinstance(v.type, ir.IntType):
            raw = b.zext(v, I64) if v.type.width < 64 else v
        elif v.type == F64_:
            raw = b.bitcast(v, I64)
        else:
            raw = b.zext(b.bitcast(v, I32), I64)
        b.store(raw, b.gep(arr, [ir.Constant(I64, k)]))
    return b.bitcast(arr, PTR)


def _unpack(kb, ctx, vals, objs):
    """`objs` rebuilt inside a kernel over the values read back from ctx."""
    slots = kb.bitcast(ctx, ir.PointerType(I64))
    remap = {}
    for k, v in enumerate(vals):
        slot = kb.gep(slots, [ir.Constant(I64, k)])
        if isinstance(v.type, ir.PointerType):
            remap[id(v)] = kb.load(kb.bitcast(slot, ir.PointerType(v.type)))
            continue
        raw = kb.load(slot)
        if isinstance(v.type, ir.IntType):
            remap[id(v)] = kb.trunc(raw, v.type) if v.type.width < 64 else raw
        else:
            remap[id(v)] = kb.bitcast(raw, F64_) if v.type == F64_ else \
                kb.bitcast(kb.trunc(raw, I32), v.type)
    memo = {}
    return [_rebuild(o, remap, memo) for o in objs]


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
