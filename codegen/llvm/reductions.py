"""Reductions in compiled code (llvmlite.ir): sum/prod/max/min/any/all and
argmax/argmin with axis and keepdims, and cumulative sums/products.

Owns how a reduction reads its source, which may be a `Lazy` chain (the
producer fuses into the reduction's loop).  The source is viewed with
size-1 dimensions dropped and neighbouring reduced (or kept) dimensions
merged; when its last dimension can then be read in vectors, explicit
vector code runs (see "vectorized reductions" below: several vector
accumulators in a fixed, blocked order, libmvec calls for transcendental
producers, threads for large sources with partial results combined in a
fixed order).  Otherwise a register accumulator per output when the
reduced axes are a suffix, else accumulation into the output in the
input's order.  Must not walk programs nor bind LLVM.
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError
from .kernels import (PARALLEL_MIN_SIMPLE, Evaluator, chunk_size, flat_ok, leaves,
                      load_mem, loop, loop_nest, num_threads, store_mem, vector_lanes)
from .values import (I32, I64, PTR, Array, Lazy, Scalar, c_strides, cast, const, mem_type,
                     reg_type, scalar_op, size_of)

#: vector accumulators of a vectorized reduction (each a register of
#: `lanes` values): four hide the latency of the adds
ACCUMULATORS = 4
#: groups (one vector per accumulator) summed into the accumulators before
#: they are folded into the block level, and blocks folded into the middle
#: level before it is added to the outer one (see `_reduce_range`)
BLOCK_GROUPS = 32
SUPER_BLOCKS = 64
#: elements of a reduction with a libmvec producer worth splitting over
#: threads: starting and joining a thread costs ~30-50 us, and 2**16
#: elements (the elementwise kernels' threshold) take ~60 us on one core,
#: which a second thread did not win back (sum(exp(x) * x) at 1e5 took
#: 0.11 ms on two threads, 0.088 ms on one); 2**18 take ~0.25 ms
PARALLEL_MIN_REDUCE = 1 << 18
#: bytes of one vector when no libmvec call fixes the lanes (AVX2's width,
#: as libmvec's variants)
VECTOR_BYTES = 32


def emit_reduce(kern, b, kind, src, axes, keepdims, out_dtype, dest=None):
    """Reduce `src` (Array or Lazy of shape S) over `axes` (tuple of
    normalized axes).  Returns a Scalar when the result is 0-d, else
    fills `dest` (contiguous Array of the reduced shape)."""
    shape = tuple(src.shape)
    out_dtype = np.dtype(out_dtype)
    kept = [d for d in range(len(shape)) if d not in axes]
    red = [d for d in range(len(shape)) if d in axes]
    if kind in ("argmax", "argmin"):
        if size_of(shape) and size_of([shape[d] for d in red]):
            r = _arg_vectorized(kern, b, kind, src, shape, red, out_dtype, dest)
            if r is not None:
                return r
        return _arg_reduce(kern, b, kind, src, kept, red, out_dtype, dest)
    acc_dt = np.dtype(np.bool_) if kind in ("any", "all") else out_dtype
    init = _identity(kind, acc_dt)
    if size_of(shape) == 0:
        # nothing to read: every output is the identity
        if not kept:
            r = cast(b, const(acc_dt, init), acc_dt, out_dtype)
            if dest is None:
                return Scalar(r, out_dtype)
            store_mem(b, dest, ir.Constant(I64, 0), r)
            return dest
        kern.assign(b, Array(dest.ptr, out_dtype, (size_of([shape[d] for d in kept]),)),
                    cast_const(init, acc_dt, out_dtype))
        return dest
    plan = _vector_plan(kern, src, shape, red, acc_dt)
    if plan is not None:
        return _emit_vectorized(kern, b, kind, plan, acc_dt, out_dtype, dest)
    if red == list(range(len(red) and len(shape) - len(red), len(shape))) or not kept:
        # reduced dims form a suffix: a register accumulator per output
        outer = [shape[d] for d in kept]

        def inner(idx_outer):
            acc = _slot(b, reg_type(acc_dt))
            b.store(const(acc_dt, init), acc)
            if not kept and flat_ok(src, shape):
                with loop(b, size_of(shape)) as i:
                    ev = Evaluator(b, kern.math, shape, flat_index=i)
                    v = ev.value(src, acc_dt)
                    b.store(_combine(b, kern.math, kind, b.load(acc), v, acc_dt), acc)
            else:
                with loop_nest(b, [shape[d] for d in red], name="r") as ridx:
                    full = [None] * len(shape)
                    for d, i in zip(kept, idx_outer):
                        full[d] = i
                    for d, i in zip(red, ridx):
                        full[d] = i
                    ev = Evaluator(b, kern.math, shape, nd_index=full)
                    v = ev.value(src, acc_dt)
                    b.store(_combine(b, kern.math, kind, b.load(acc), v, acc_dt), acc)
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
    kern.assign(b, Array(dest.ptr, out_dtype, (size_of(outer),)),
                cast_const(init, acc_dt, out_dtype))
    with loop_nest(b, shape, name="a") as idx:
        ev = Evaluator(b, kern.math, shape, nd_index=idx)
        v = ev.value(src, acc_dt)
        off = ir.Constant(I64, 0)
        for d in kept:
            off = b.add(off, b.mul(idx[d], ir.Constant(I64, ostr[d])))
        old = cast(b, load_mem(b, dest, off), out_dtype, acc_dt)
        store_mem(b, dest, off, cast(b, _combine(b, kern.math, kind, old, v, acc_dt),
                                     acc_dt, out_dtype))
    return dest


def cast_const(v, src, dst):
    """The identity `v` of dtype `src` as a Python value of dtype `dst`."""
    return np.asarray(v, dtype=src).astype(dst)[()]


# ------------------------------------------------------ vectorized reductions
#
# A reduction whose source can be read in vectors along its last
# (collapsed) dimension runs explicit vector code, which LLVM would not
# write itself without being allowed to reassociate float additions:
#
# * "rows": the last dimension is reduced (a full reduction, softmax's
#   row sums).  Each output's range of R values is summed by
#   `_reduce_range` in a fixed order: element j goes to lane j % W of
#   accumulator (j // W) % K; every BLOCK_GROUPS groups of K vectors the
#   accumulators are added as a tree ((a0 + a1) + (a2 + a3)) into a middle
#   vector, which every SUPER_BLOCKS blocks is added to an outer vector;
#   at the end the outer vector's lanes are added as a tree (halves) and
#   the scalar tail (R % (W*K) values, in order) last.  Every addition
#   adds partial sums of at most a few dozen terms or of similar sizes,
#   so the rounding error stays within a small multiple of pairwise
#   summation's (NumPy's) rather than growing with R as one running sum.
#   Large full reductions split [0, R) into one chunk per thread; the
#   threads' partial results are added in chunk order, so a result does
#   not change from run to run.  Large row reductions split the rows.
# * "cols": the last dimension is kept (sum over axis 0 of a matrix):
#   the output row is accumulated in vectors, in the input's order, as
#   NumPy does; threads split the kept columns.
#
# max/min use llvm.maximum/minimum (NaN propagates in any order), any/all
# and integer sums are exact in any order.


class _Plan:
    __slots__ = ("node", "dims", "reduced", "lanes", "libmvec")

    def __init__(self, node, dims, reduced, lanes, libmvec):
        self.node, self.dims, self.reduced = node, dims, reduced
        self.lanes, self.libmvec = lanes, libmvec


def _collapse(src, shape, red):
    """`src` viewed with its size-1 dimensions dropped and neighbouring
    dimensions of the same kind (both reduced or both kept) merged where
    every array operand allows it (contiguous across them, or broadcast
    along both).  Returns (node, sizes, reduced flags) or None."""
    arrays = [leaf for leaf in leaves(src) if isinstance(leaf, Array)]
    nd = len(shape)

    def padded(arr):
        k = nd - len(arr.shape)
        out = [0] * nd
        for d, (n, s) in enumerate(zip(arr.shape, arr.strides)):
            out[k + d] = 0 if n == 1 else s
        return out
    strides = [padded(a) for a in arrays]
    dims = []       # [size, reduced, [stride of each array]]
    for d in range(nd):
        if shape[d] == 1:
            continue
        cur = [shape[d], d in red, [s[d] for s in strides]]
        if dims and dims[-1][1] == cur[1] and all(
                (p == 0 and c == 0) or (c != 0 and p == c * cur[0])
                for p, c in zip(dims[-1][2], cur[2])):
            dims[-1] = [dims[-1][0] * cur[0], cur[1], cur[2]]
        else:
            dims.append(cur)
    if not dims:
        return None
    sizes = tuple(d[0] for d in dims)
    remap = {}
    for k, arr in enumerate(arrays):
        st = [d[2][k] for d in dims]
        remap[id(arr)] = Array(arr.ptr, arr.dtype,
                               tuple(n if s else 1 for n, s in zip(sizes, st)), tuple(st))
    memo = {}

    def rebuild(node):
        if id(node) in memo:
            return memo[id(node)]
        if isinstance(node, Array):
            out = remap[id(node)]
        elif isinstance(node, Lazy):
            out = Lazy(node.op, [rebuild(c) for c in node.children], node.dtype, sizes,
                       node.params, node.calc)
        else:
            out = node
        memo[id(node)] = out
        return out
    return rebuild(src), sizes, tuple(d[1] for d in dims)


def _vector_plan(kern, src, shape, red, acc_dt):
    view = _collapse(src, shape, red)
    if view is None:
        return None
    node, sizes, reduced = view
    libmvec = vector_lanes(node, acc_dt, kern.math)
    lanes = libmvec
    if lanes is None:
        widest = max([np.dtype(acc_dt).itemsize] + [
            np.dtype(leaf.dtype).itemsize for leaf in leaves(node)
            if isinstance(leaf, (Array, Scalar))] + _calc_sizes(node))
        lanes = max(2, VECTOR_BYTES // widest)
    if sizes[-1] < lanes:
        return None
    for leaf in leaves(node):
        if isinstance(leaf, Array) and leaf.shape[-1] != 1 and leaf.strides[-1] != 1:
            return None
    return _Plan(node, sizes, reduced, lanes, libmvec)


def _calc_sizes(node, out=None):
    out = [] if out is None else out
    if isinstance(node, Lazy):
        for dt in (node.dtype, node.calc):
            if dt is not None:
                out.append(max(1, np.dtype(dt).itemsize))
        for c in node.children:
            _calc_sizes(c, out)
    return out


def _emit_vectorized(kern, b, kind, plan, acc_dt, out_dtype, dest):
    dims, reduced, lanes = plan.dims, plan.reduced, plan.lanes
    total = size_of(dims)
    nthreads = num_threads()
    threshold = PARALLEL_MIN_REDUCE if plan.libmvec else PARALLEL_MIN_SIMPLE
    threads = nthreads if nthreads > 1 and total >= threshold else 1
    kept = [k for k, r in enumerate(reduced) if not r]
    ostr = dict(zip(kept, c_strides([dims[k] for k in kept])))
    out = None if dest is None else Array(dest.ptr, out_dtype, (max(1, size_of(
        [dims[k] for k in kept])),))
    math = kern.math

    def at(b, node, idx, j, vl):
        ev = Evaluator(b, math, dims, nd_index=list(idx) + [j], lanes=vl)
        return ev.value(node, acc_dt)

    def out_offset(b, idx):
        off = ir.Constant(I64, 0)
        for k in kept:
            if k < len(idx):
                off = b.add(off, b.mul(idx[k], ir.Constant(I64, ostr[k])))
        return off

    if not reduced[-1]:
        # "cols": accumulate into the output row in vectors
        b_init = cast_const(_identity(kind, acc_dt), acc_dt, out_dtype)
        kern.assign(b, out, b_init)

        def cols(b, objs, start, stop):
            node, o = objs
            with loop_nest(b, dims[:-1], name="a") as idx:
                base = out_offset(b, idx)
                span = b.sub(stop, start)
                groups = b.sdiv(span, ir.Constant(I64, lanes))
                with loop(b, groups, name="v") as g:
                    j = b.add(start, b.mul(g, ir.Constant(I64, lanes)))
                    off = b.add(base, j)
                    old = cast(b, load_mem(b, o, off, lanes), out_dtype, acc_dt)
                    v = _combine(b, math, kind, old, at(b, node, idx, j, lanes), acc_dt)
                    store_mem(b, o, off, cast(b, v, acc_dt, out_dtype))
                tail = b.add(start, b.mul(groups, ir.Constant(I64, lanes)))
                with loop(b, stop, start=tail, name="t") as j:
                    off = b.add(base, j)
                    old = cast(b, load_mem(b, o, off), out_dtype, acc_dt)
                    v = _combine(b, math, kind, old, at(b, node, idx, j, None), acc_dt)
                    store_mem(b, o, off, cast(b, v, acc_dt, out_dtype))
        ncols = dims[-1]
        # (only compute-bound sources: split columns of a memory-bound sum
        # made each thread read half rows, slower than one thread: 13.9
        # against 12.4 ms for mean(axis=0) of (10000, 1000))
        if threads > 1 and plan.libmvec and ncols >= 2 * lanes * threads:
            kern.parallel(b, [plan.node, out], ncols, lanes, threads, cols)
        else:
            cols(b, [plan.node, out], ir.Constant(I64, 0), ir.Constant(I64, ncols))
        return dest

    # "rows": the last dimension is reduced
    inner_red = [k for k in range(len(dims) - 1) if reduced[k]]

    def one_output(b, node, oidx):
        """The reduction of the values at kept indices `oidx` (a register)."""
        def run(ridx):
            full = [None] * (len(dims) - 1)
            for k, i in zip(kept, oidx):
                full[k] = i
            for k, i in zip(inner_red, ridx):
                full[k] = i
            return _reduce_range(b, math, kind, lambda j, vl: at(b, node, full, j, vl),
                                 ir.Constant(I64, 0), ir.Constant(I64, dims[-1]), lanes,
                                 acc_dt)
        if not inner_red:
            return run([])
        acc = _slot(b, reg_type(acc_dt))
        b.store(const(acc_dt, _identity(kind, acc_dt)), acc)
        with loop_nest(b, [dims[k] for k in inner_red], name="r") as ridx:
            b.store(_combine(b, math, kind, b.load(acc), run(ridx), acc_dt), acc)
        return b.load(acc)

    if not kept:
        if len(dims) == 1 and threads > 1 and dims[0] >= 4 * lanes * ACCUMULATORS * threads:
            r = _parallel_full(kern, b, kind, plan.node, dims[0], lanes, acc_dt, threads,
                               lambda kb, node, j, vl: at(kb, node, [], j, vl))
        else:
            r = one_output(b, plan.node, [])
        r = cast(b, r, acc_dt, out_dtype)
        if dest is None:
            return Scalar(r, out_dtype)
        store_mem(b, dest, ir.Constant(I64, 0), r)
        return dest

    def rows(b, objs, start, stop):
        node, o = objs
        with loop(b, stop, start=start, name="o0") as i0:
            with loop_nest(b, [dims[k] for k in kept[1:]], name="o") as rest:
                oidx = [i0] + list(rest)
                full = [None] * (len(dims) - 1)
                for k, i in zip(kept, oidx):
                    full[k] = i
                r = one_output(b, node, oidx)
                store_mem(b, o, out_offset(b, full), cast(b, r, acc_dt, out_dtype))
    nrows = dims[kept[0]]
    if threads > 1 and kept[0] == 0 and nrows >= threads:
        kern.parallel(b, [plan.node, out], nrows, 1, threads, rows)
    elif kept[0] == 0:
        rows(b, [plan.node, out], ir.Constant(I64, 0), ir.Constant(I64, nrows))
    else:
        # a reduced dimension comes first: loop over every output
        with loop_nest(b, [dims[k] for k in kept], name="o") as oidx:
            full = [None] * (len(dims) - 1)
            for k, i in zip(kept, oidx):
                full[k] = i
            r = one_output(b, plan.node, oidx)
            store_mem(b, out, out_offset(b, full), cast(b, r, acc_dt, out_dtype))
    return dest


def _parallel_full(kern, b, kind, node, n, lanes, acc_dt, threads, at):
    """The reduction of [0, n) (a 1-D view) split into one chunk per
    thread, each thread's result stored in its slot, the slots combined in
    chunk order (so the result does not depend on which thread ran first)."""
    align = lanes * ACCUMULATORS
    chunk = chunk_size(n, threads, align)
    nslots = -(-n // chunk)
    slots = _slot(b, ir.ArrayType(mem_type(acc_dt), threads))
    part = Array(b.bitcast(slots, PTR), acc_dt, (threads,))
    init = const(acc_dt, _identity(kind, acc_dt))
    for t in range(nslots):
        store_mem(b, part, ir.Constant(I64, t), init)

    def body(kb, objs, start, stop):
        kn, kp = objs
        with kb.if_then(kb.icmp_signed("<", start, stop)):
            r = _reduce_range(kb, kern.math, kind, lambda j, vl: at(kb, kn, j, vl), start,
                              stop, lanes, acc_dt)
            store_mem(kb, kp, kb.sdiv(start, ir.Constant(I64, chunk)), r)
    kern.parallel(b, [node, part], n, align, threads, body)
    r = load_mem(b, part, ir.Constant(I64, 0))
    for t in range(1, nslots):
        r = _combine(b, kern.math, kind, r, load_mem(b, part, ir.Constant(I64, t)), acc_dt)
    return r


def _reduce_range(b, math, kind, at, start, stop, lanes, dt):
    """The reduction of at(j) for j in [start, stop) in the fixed order
    described above; `at(j, lanes)` is the value at j (a vector of the
    values at j .. j+lanes-1 when lanes is set).  Returns a register."""
    dt = np.dtype(dt)
    vt = ir.VectorType(reg_type(dt), lanes)
    ident = _identity(kind, dt)
    vinit = ir.Constant(vt, [const(dt, ident)] * lanes)
    group = lanes * ACCUMULATORS
    block = group * BLOCK_GROUPS
    c = lambda v: ir.Constant(I64, v)  # noqa: E731

    # float max/min: llvm.maximum expands to several dependent
    # instructions on x86; the vector part compares and selects instead
    # (one vmaxpd, which drops NaN) and records NaN lanes in a mask of
    # its own, so a NaN anywhere still makes the result NaN
    minmax = kind in ("max", "min") and dt.kind == "f"
    nan_mask = None
    if minmax:
        mt = ir.VectorType(ir.IntType(1), lanes)
        nan_mask = _slot(b, mt)
        b.store(ir.Constant(mt, [0] * lanes), nan_mask)

    def comb(x, y):
        if minmax:
            return b.select(b.fcmp_ordered(">" if kind == "max" else "<", x, y), x, y)
        return _combine(b, math, kind, x, y, dt, fast=False)

    def tree(vs):
        while len(vs) > 1:
            vs = [comb(vs[k], vs[k + 1]) if k + 1 < len(vs) else vs[k]
                  for k in range(0, len(vs), 2)]
        return vs[0]
    outer, mid = _slot(b, vt), _slot(b, vt)
    accs = [_slot(b, vt) for _ in range(ACCUMULATORS)]
    b.store(vinit, outer)
    b.store(vinit, mid)
    n = b.sub(stop, start)

    def groups(base, count):
        for a in accs:
            b.store(vinit, a)
        with loop(b, count, name="g") as g:
            at0 = b.add(base, b.mul(g, c(group)))
            vals = [at(b.add(at0, c(k * lanes)), lanes) for k in range(ACCUMULATORS)]
            for a, v in zip(accs, vals):
                b.store(comb(b.load(a), v), a)
            if minmax:
                nan = b.load(nan_mask)
                for v in vals:
                    nan = b.or_(nan, b.fcmp_unordered("uno", v, v))
                b.store(nan, nan_mask)
        b.store(comb(b.load(mid), tree([b.load(a) for a in accs])), mid)

    nblocks = b.sdiv(n, c(block))
    with loop(b, nblocks, name="blk") as blk:
        groups(b.add(start, b.mul(blk, c(block))), c(BLOCK_GROUPS))
        full = b.icmp_signed("==", b.srem(b.add(blk, c(1)), c(SUPER_BLOCKS)), c(0))
        with b.if_then(full):
            b.store(comb(b.load(outer), b.load(mid)), outer)
            b.store(vinit, mid)
    rest = b.add(start, b.mul(nblocks, c(block)))
    ngroups = b.sdiv(b.sub(stop, rest), c(group))
    groups(rest, ngroups)
    b.store(comb(b.load(outer), b.load(mid)), outer)
    v = b.load(outer)
    width = lanes
    while width > 1:
        half = width // 2
        lo = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, half), list(range(half))))
        hi = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, half),
                                                list(range(half, width))))
        v, width = comb(lo, hi), half
    r = b.extract_element(v, c(0))
    if minmax:
        bits = b.bitcast(b.load(nan_mask), ir.IntType(lanes))
        r = b.select(b.icmp_unsigned("!=", bits, ir.Constant(ir.IntType(lanes), 0)),
                     const(dt, np.nan), r)
    tail = _slot(b, reg_type(dt))
    b.store(const(dt, ident), tail)
    with loop(b, stop, start=b.add(rest, b.mul(ngroups, c(group))), name="s") as j:
        b.store(_combine(b, math, kind, b.load(tail), at(j, None), dt, fast=False), tail)
    return _combine(b, math, kind, r, b.load(tail), dt, fast=False)


def _slot(b, t):
    """A stack slot of type `t` in the function's entry block (an alloca
    in a loop would grow the stack on every trip, and only entry-block
    slots become registers)."""
    entry = b.function.entry_basic_block
    if b.block is entry:
        return b.alloca(t)
    eb = ir.IRBuilder(entry)
    eb.position_at_start(entry)
    return eb.alloca(t)


def _arg_vectorized(kern, b, kind, src, shape, red, out_dtype, dest):
    """argmax/argmin along a last (collapsed) dimension read in vectors:
    the vectorized max (min) of each row, then the first index holding it
    (the first NaN when there is one, as NumPy).  Both passes evaluate
    each element with the same code (the same vector lanes or the same
    scalar tail), so the value found is the value the first pass saw.
    None when the source does not suit (the scalar loop is used)."""
    dt = np.dtype(src.dtype)
    plan = _vector_plan(kern, src, shape, red, dt)
    if plan is None or not plan.reduced[-1] or sum(plan.reduced) != 1:
        return None
    dims, lanes, math = plan.dims, plan.lanes, kern.math
    nrow = dims[-1]
    mkind = "max" if kind == "argmax" else "min"

    def one(b, node, oidx):
        def at(j, vl):
            ev = Evaluator(b, math, dims, nd_index=list(oidx) + [j], lanes=vl)
            return ev.value(node, dt)
        m = _reduce_range(b, math, mkind, at, ir.Constant(I64, 0), ir.Constant(I64, nrow),
                          lanes, dt)
        return _first_equal(b, at, nrow, lanes, dt, m)

    if len(dims) == 1:
        r = cast(b, one(b, plan.node, []), np.int64, out_dtype)
        if dest is None:
            return Scalar(r, out_dtype)
        store_mem(b, dest, ir.Constant(I64, 0), r)
        return dest
    out = Array(dest.ptr, out_dtype, (size_of(dims[:-1]),))
    ostr = c_strides(dims[:-1])

    def rows(b, objs, start, stop):
        node, o = objs
        with loop(b, stop, start=start, name="o0") as i0:
            with loop_nest(b, dims[1:-1], name="o") as rest:
                oidx = [i0] + list(rest)
                off = ir.Constant(I64, 0)
                for i, st in zip(oidx, ostr):
                    off = b.add(off, b.mul(i, ir.Constant(I64, st)))
                store_mem(b, o, off, cast(b, one(b, node, oidx), np.int64, out_dtype))
    nthreads = num_threads()
    threshold = PARALLEL_MIN_REDUCE if plan.libmvec else PARALLEL_MIN_SIMPLE
    if nthreads > 1 and size_of(dims) >= threshold and dims[0] >= nthreads:
        kern.parallel(b, [plan.node, out], dims[0], 1, nthreads, rows)
    else:
        rows(b, [plan.node, out], ir.Constant(I64, 0), ir.Constant(I64, dims[0]))
    return dest


def _first_equal(b, at, n, lanes, dt, m):
    """The first j in [0, n) with at(j) == m (or NaN when m is NaN), as
    i64; the part `_reduce_range` read in vectors is scanned in vectors."""
    c = lambda v: ir.Constant(I64, v)  # noqa: E731
    vend = (n // (lanes * ACCUMULATORS)) * lanes * ACCUMULATORS
    fn = b.function
    res = _slot(b, I64)
    b.store(c(0), res)
    done = fn.append_basic_block("first.done")
    is_f = dt.kind == "f"
    mnan = b.fcmp_unordered("uno", m, m) if is_f else None

    def hit(v, vl):
        if is_f:
            mv = m
            if vl:
                vt = v.type
                mv = b.shuffle_vector(b.insert_element(ir.Constant(vt, None), m, ir.Constant(I32, 0)),
                                      ir.Constant(vt, None),
                                      ir.Constant(ir.VectorType(I32, vl), [0] * vl))
                nanv = b.fcmp_unordered("uno", v, v)
                mn = b.shuffle_vector(b.insert_element(
                    ir.Constant(ir.VectorType(ir.IntType(1), vl), None), mnan,
                    ir.Constant(I32, 0)), ir.Constant(ir.VectorType(ir.IntType(1), vl), None),
                    ir.Constant(ir.VectorType(I32, vl), [0] * vl))
                return b.or_(b.fcmp_ordered("==", v, mv), b.and_(nanv, mn))
            return b.or_(b.fcmp_ordered("==", v, mv),
                         b.and_(b.fcmp_unordered("uno", v, v), mnan))
        if vl:
            vt = v.type
            mv = b.shuffle_vector(b.insert_element(ir.Constant(vt, None), m, ir.Constant(I32, 0)),
                                  ir.Constant(vt, None),
                                  ir.Constant(ir.VectorType(I32, vl), [0] * vl))
            return b.icmp_unsigned("==", v, mv)
        return b.icmp_unsigned("==", v, m)

    def scan(start, stop, step, vl):
        pre = b.block
        head = fn.append_basic_block("first.head")
        body = fn.append_basic_block("first.body")
        nxt = fn.append_basic_block("first.next")
        end = fn.append_basic_block("first.end")
        b.branch(head)
        b.position_at_end(head)
        j = b.phi(I64)
        j.add_incoming(c(start), pre)
        b.cbranch(b.icmp_signed("<", j, c(stop)), body, end)
        b.position_at_end(body)
        eq = hit(at(j, vl), vl)
        if vl:
            bits = b.bitcast(eq, ir.IntType(vl))
            found = b.icmp_unsigned("!=", bits, ir.Constant(ir.IntType(vl), 0))
            k = b.cttz(bits, ir.Constant(ir.IntType(1), 1))
            k = b.zext(k, I64) if vl < 64 else k
            idx = b.add(j, k)
        else:
            found, idx = eq, j
        found_bb = fn.append_basic_block("first.found")
        b.cbranch(found, found_bb, nxt)
        b.position_at_end(found_bb)
        b.store(idx, res)
        b.branch(done)
        b.position_at_end(nxt)
        j.add_incoming(b.add(j, c(step)), nxt)
        b.branch(head)
        b.position_at_end(end)
    if vend:
        scan(0, vend, lanes, lanes)
    scan(vend, n, 1, None)
    b.branch(done)
    b.position_at_end(done)
    return b.load(res)


def _arg_reduce(kern, b, kind, src, kept, red, out_dtype, dest):
    shape = tuple(src.shape)
    if len(red) == len(shape):
        kept, red_shape = [], [size_of(shape)]
    else:
        red_shape = [shape[d] for d in red]
    dt = src.dtype
    outer = [shape[d] for d in kept]
    cmp = ">" if kind == "argmax" else "<"

    def body(oidx):
        best = _slot(b, reg_type(dt))
        besti = _slot(b, I64)
        b.store(const(np.int64, 0), besti)
        first = True
        with loop(b, size_of(red_shape), name="r") as r:
            if len(kept) == 0 and len(red) == len(shape) and flat_ok(src, shape):
                ev = Evaluator(b, kern.math, shape, flat_index=r)
            elif len(red) == len(shape):
                # unravel r over the whole shape
                idx = _unravel(b, r, shape)
                ev = Evaluator(b, kern.math, shape, nd_index=idx)
            else:
                full = [None] * len(shape)
                for d, i in zip(kept, oidx):
                    full[d] = i
                full[red[0]] = r
                ev = Evaluator(b, kern.math, shape, nd_index=full)
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

def emit_cumulative(kern, b, kind, src, axis, dest):
    """dest = cumsum/cumprod(src, axis) (dest contiguous, src's shape)."""
    shape = tuple(src.shape)
    dt = dest.dtype
    outer_dims = [d for d in range(len(shape)) if d != axis]
    dstr = c_strides(shape)
    with loop_nest(b, [shape[d] for d in outer_dims], name="c") as oidx:
        acc = _slot(b, reg_type(dt))
        b.store(const(dt, 0 if kind == "cumsum" else 1), acc)
        with loop(b, shape[axis], name="k") as k:
            full = [None] * len(shape)
            for d, i in zip(outer_dims, oidx):
                full[d] = i
            full[axis] = k
            ev = Evaluator(b, kern.math, shape, nd_index=full)
            v = ev.value(src, dt)
            r = _combine(b, kern.math, "sum" if kind == "cumsum" else "prod",
                         b.load(acc), v, dt, fast=False)
            b.store(r, acc)
            off = ir.Constant(I64, 0)
            for d in range(len(shape)):
                off = b.add(off, b.mul(full[d], ir.Constant(I64, dstr[d])))
            store_mem(b, dest, off, r)
    return dest


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
