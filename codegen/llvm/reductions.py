"""Reductions in compiled code (llvmlite.ir): sum/prod/max/min/any/all and
argmax/argmin with axis and keepdims, and cumulative sums/products.

Owns how a reduction reads its source, which may be a `Lazy` chain (the
producer fuses into the reduction's loop): a register accumulator per
output when the reduced axes are a suffix, else accumulation into the
output in the input's order (so a kept trailing dimension vectorizes).
Must not walk programs nor bind LLVM.
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError
from .kernels import Evaluator, flat_ok, load_mem, loop, loop_nest, store_mem
from .values import I64, Array, Scalar, c_strides, cast, const, reg_type, scalar_op, size_of


def emit_reduce(kern, b, kind, src, axes, keepdims, out_dtype, dest=None):
    """Reduce `src` (Array or Lazy of shape S) over `axes` (tuple of
    normalized axes).  Returns a Scalar when the result is 0-d, else
    fills `dest` (contiguous Array of the reduced shape)."""
    shape = tuple(src.shape)
    out_dtype = np.dtype(out_dtype)
    kept = [d for d in range(len(shape)) if d not in axes]
    red = [d for d in range(len(shape)) if d in axes]
    if kind in ("argmax", "argmin"):
        return _arg_reduce(kern, b, kind, src, kept, red, out_dtype, dest)
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
    kern.assign(b, Array(dest.ptr, out_dtype, (size_of(outer),)), const_node(init))
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
        best = b.alloca(reg_type(dt))
        besti = b.alloca(I64)
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
        acc = b.alloca(reg_type(dt))
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


def const_node(v):
    return v


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
