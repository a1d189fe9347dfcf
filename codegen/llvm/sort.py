"""LLVM lowerings of sorting, gathers along an axis and array building.

Owns the `llvm` lowerings of `sort` and `argsort` (a stable bottom-up merge
sort of (key, index) pairs per row along the axis, NaNs last as NumPy puts
them), `searchsorted` (a binary search of each query value in the 1-D sorted
`a`, in the same order: NaNs last), `take_along_axis` and its adjoint
`take_along_axis_adjoint` (a scatter-add), `array` (an array built from a nested list/tuple of scalars
or arrays of equal shape, or a copy of one array) and its adjoint
`unstack_like`.  Adds its rules to lowerings.LOWERINGS.  Must not walk programs nor bind LLVM.
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError
from .kernels import load_mem, loop, loop_nest, offset_of, store_mem
from .lowerings import (LOWERINGS, _as_viewable, _index_view, lowering,
                             register)
from .linalg import entry_alloca
from .values import I64, PTR, Array, Lazy, Scalar, c_strides, cast, size_of


def _c(n):
    return ir.Constant(I64, n)


# ------------------------------------------------------------------- sort

def _less(b, x, y, dt):
    """x < y in NumPy's sort order (NaN after every number)."""
    if dt.kind == "f":
        return b.or_(b.fcmp_ordered("<", x, y),
                     b.and_(b.fcmp_ordered("==", x, x), b.fcmp_unordered("uno", y, y)))
    if dt.kind in "ub":
        return b.icmp_unsigned("<", x, y)
    return b.icmp_signed("<", x, y)


def _merge_sort(em, keys, idx, keys2, idx2, n):
    """Sort the contiguous rows `keys` (with `idx` carried along) of length
    n; returns (keys, idx) Arrays holding the sorted row (either the
    inputs or the scratch pair, whichever the last pass wrote)."""
    b = em.b
    dt = keys.dtype
    passes = max(0, int(np.ceil(np.log2(n)))) if n > 1 else 0
    kp, ip = entry_alloca(em, PTR), entry_alloca(em, PTR)
    kq, iq = entry_alloca(em, PTR), entry_alloca(em, PTR)
    pi, pj = entry_alloca(em, I64), entry_alloca(em, I64)
    b.store(keys.ptr, kp)
    b.store(idx.ptr, ip)
    b.store(keys2.ptr, kq)
    b.store(idx2.ptr, iq)
    with loop(b, passes, name="mp") as p:
        width = b.shl(_c(1), p)
        span = b.shl(width, _c(1))
        src_k = Array(b.load(kp), dt, (n,))
        src_i = Array(b.load(ip), np.int64, (n,))
        dst_k = Array(b.load(kq), dt, (n,))
        dst_i = Array(b.load(iq), np.int64, (n,))
        chunks = b.sdiv(b.add(_c(n - 1), span), span)
        with loop(b, chunks, name="mc") as c:
            lo = b.mul(c, span)
            mid = b.add(lo, width)
            mid = b.select(b.icmp_signed("<", mid, _c(n)), mid, _c(n))
            hi = b.add(lo, span)
            hi = b.select(b.icmp_signed("<", hi, _c(n)), hi, _c(n))
            b.store(lo, pi)
            b.store(mid, pj)
            with loop(b, hi, start=lo, name="mk") as k:
                i, j = b.load(pi), b.load(pj)
                left_ok = b.icmp_signed("<", i, mid)
                right_ok = b.icmp_signed("<", j, hi)
                # clamped reads: the exhausted side is never chosen
                ii = b.select(left_ok, i, lo)
                jj = b.select(right_ok, j, lo)
                ki, kj = load_mem(b, src_k, ii), load_mem(b, src_k, jj)
                take_right = b.and_(right_ok, b.or_(b.not_(left_ok), _less(b, kj, ki, dt)))
                store_mem(b, dst_k, k, b.select(take_right, kj, ki))
                store_mem(b, dst_i, k, b.select(take_right, load_mem(b, src_i, jj),
                                                load_mem(b, src_i, ii)))
                b.store(b.select(take_right, i, b.add(i, _c(1))), pi)
                b.store(b.select(take_right, b.add(j, _c(1)), j), pj)
        # the pass's output is the next pass's input
        for x, y in ((kp, kq), (ip, iq)):
            t = b.load(x)
            b.store(b.load(y), x)
            b.store(t, y)
    return Array(b.load(kp), dt, (n,)), Array(b.load(ip), np.int64, (n,))


def _sort_rule(em, s, args, kwargs):
    x = _as_viewable(em, args[0])
    axis = kwargs.get("axis", args[1] if len(args) > 1 else -1)
    out = s.out
    if axis is None:
        x = em.contiguous(x)
        x = Array(x.ptr, x.dtype, (size_of(x.shape),))
        axis = 0
    if len(x.shape) == 0:
        raise MissingRuleError(s.prim, "llvm", "sorting a 0-d value")
    axis %= len(x.shape)
    n = x.shape[axis]
    dt = x.dtype
    dest = em.result_buffer(s, out)
    keys, keys2 = em.buffer(None, dt, (n,)), em.buffer(None, dt, (n,))
    idx, idx2 = em.buffer(None, np.int64, (n,)), em.buffer(None, np.int64, (n,))
    b = em.b
    outer = [d for d in range(len(x.shape)) if d != axis]
    dstr = c_strides(x.shape)
    with loop_nest(b, [x.shape[d] for d in outer], name="so") as oidx:
        xo, do = _c(0), _c(0)
        for d, i in zip(outer, oidx):
            xo = b.add(xo, b.mul(i, _c(x.strides[d])))
            do = b.add(do, b.mul(i, _c(dstr[d])))
        with loop(b, n, name="sl") as r:
            v = load_mem(b, x, b.add(xo, b.mul(r, _c(x.strides[axis]))))
            store_mem(b, keys, r, v)
            store_mem(b, idx, r, r)
        sk, si = _merge_sort(em, keys, idx, keys2, idx2, n)
        src, sdt = (si, np.dtype(np.int64)) if s.prim == "argsort" else (sk, dt)
        with loop(b, n, name="sw") as r:
            v = cast(b, load_mem(b, src, r), sdt, out.dtype)
            store_mem(b, dest, b.add(do, b.mul(r, _c(dstr[axis]))), v)
    return dest


LOWERINGS["sort"] = _sort_rule
LOWERINGS["argsort"] = _sort_rule


# ----------------------------------------------------------- searchsorted

def _binary_search(em, a, x, dt, side):
    """Number of elements of the sorted 1-D `a` before which `x` (a register
    of dtype dt, a's values compared in dt) is inserted: those < x (left)
    or <= x (right), in NumPy's sort order."""
    b = em.b
    n = a.shape[0]
    lo, hi = entry_alloca(em, I64), entry_alloca(em, I64)
    b.store(_c(0), lo)
    b.store(_c(n), hi)
    # a fixed trip count: each step halves [lo, hi); finished steps keep it
    with loop(b, n.bit_length(), name="bs") as _:
        low, high = b.load(lo), b.load(hi)
        active = b.icmp_signed("<", low, high)
        mid = b.select(active, b.lshr(b.add(low, high), _c(1)), _c(0))
        am = cast(b, load_mem(b, a, b.mul(mid, _c(a.strides[0]))), a.dtype, dt)
        if side == "left":
            right = _less(b, am, x, dt)
        else:
            right = b.not_(_less(b, x, am, dt))
        go_right = b.and_(active, right)
        b.store(b.select(go_right, b.add(mid, _c(1)), low), lo)
        b.store(b.select(b.and_(active, b.not_(right)), mid, high), hi)
    return b.load(lo)


@lowering("searchsorted")
def _searchsorted(em, s, args, kwargs):
    a = _as_viewable(em, args[0])
    v = em.runtime(args[1])
    side = kwargs.get("side", args[2] if len(args) > 2 else "left")
    if len(a.shape) != 1:
        raise MissingRuleError("searchsorted", "llvm", f"`a` of shape {a.shape}: NumPy "
                               "searches a 1-D array")
    if side not in ("left", "right"):
        raise MissingRuleError("searchsorted", "llvm", f"side={side!r}: use 'left' or 'right'")
    # NumPy compares in the common dtype of a and v (a Python number
    # counts as int64 / float64 here)
    dt = np.result_type(a.dtype, v.dtype)
    out = s.out
    b = em.b
    if len(v.shape) == 0:
        x = cast(b, em.scalar(v).value, v.dtype, dt)
        return Scalar(cast(b, _binary_search(em, a, x, dt, side), np.int64, out.dtype),
                      out.dtype)
    v = _as_viewable(em, v)
    dest = em.result_buffer(s, out)
    dstr = c_strides(out.shape)
    with loop_nest(b, out.shape, name="sq") as idx:
        x = cast(b, load_mem(b, v, offset_of(b, v, idx, out.shape)), v.dtype, dt)
        off = _c(0)
        for i, st in zip(idx, dstr):
            off = b.add(off, b.mul(i, _c(st)))
        store_mem(b, dest, off, cast(b, _binary_search(em, a, x, dt, side), np.int64,
                                     out.dtype))
    return dest


# ------------------------------------------------------- take_along_axis

def _wrap_index(em, i, n, d):
    b = em.b
    i = b.select(b.icmp_signed("<", i, _c(0)), b.add(i, _c(n)), i)
    em.fail_if(b.icmp_unsigned(">=", i, _c(n)), 2,
               f"index out of bounds for axis {d} with size {n}")
    return i


def _along_axis(em, x_shape, x_strides, indices, axis, shape, body):
    """Loop over `shape` (x and indices broadcast, axis from indices);
    calls body(index list, offset into x)."""
    b = em.b
    with loop_nest(b, shape, name="ta") as it:
        iv = load_mem(b, indices, offset_of(b, indices, it, shape))
        i = _wrap_index(em, cast(b, iv, indices.dtype, np.int64), x_shape[axis], axis)
        off = b.mul(i, _c(x_strides[axis]))
        for d, (n, st) in enumerate(zip(x_shape, x_strides)):
            if d != axis and n != 1:
                off = b.add(off, b.mul(it[d], _c(st)))
        body(it, off)


def _flat(em, v):
    v = em.contiguous(_as_viewable(em, v))
    return Array(v.ptr, v.dtype, (size_of(v.shape),), owner=v.owner)


@lowering("take_along_axis")
def _take_along_axis(em, s, args, kwargs):
    x = _as_viewable(em, args[0])
    indices = _as_viewable(em, args[1])
    axis = kwargs.get("axis", args[2] if len(args) > 2 else -1)
    if axis is None:
        x, axis = _flat(em, x), 0
    axis %= len(x.shape)
    out = s.out
    dest = em.result_buffer(s, out)
    b = em.b
    ostr = c_strides(out.shape)

    def body(it, off):
        v = cast(b, load_mem(b, x, off), x.dtype, out.dtype)
        doff = _c(0)
        for i, st in zip(it, ostr):
            doff = b.add(doff, b.mul(i, _c(st)))
        store_mem(b, dest, doff, v)
    _along_axis(em, x.shape, x.strides, indices, axis, out.shape, body)
    return dest


@lowering("take_along_axis_adjoint")
def _take_along_axis_adjoint(em, s, args, kwargs):
    g = em.runtime(args[0])
    indices = _as_viewable(em, args[2])
    axis = kwargs.get("axis", args[3] if len(args) > 3 else -1)
    out = s.out
    dest = em.result_buffer(s, out)
    em.kern.assign(em.b, dest, 0)
    target = dest
    if axis is None:
        target = Array(dest.ptr, dest.dtype, (size_of(dest.shape),), owner=dest.owner)
        axis = 0
    axis %= len(target.shape)
    if isinstance(g, Lazy):
        g = em.as_array(g)
    shape = tuple(np.broadcast_shapes(indices.shape, g.shape))
    b = em.b
    dt = out.dtype

    def body(it, off):
        gv = cast(b, g.value, g.dtype, dt) if isinstance(g, Scalar) else \
            cast(b, load_mem(b, g, offset_of(b, g, it, shape)), g.dtype, dt)
        old = load_mem(b, target, off)
        store_mem(b, target, off, b.fadd(old, gv) if dt.kind == "f" else b.add(old, gv))
    _along_axis(em, target.shape, target.strides, indices, axis, shape, body)
    return dest


# ----------------------------------------------------------------- array

def _fill_nested(em, dest, obj):
    """Write the nested list/tuple `obj` (leaves: Scalars, Arrays, Lazy
    values or Python numbers) into `dest`, leaf by leaf."""
    b = em.b
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            _fill_nested(em, _index_view(em, dest, [i]), item)
        return
    if isinstance(obj, dict) or obj is None:
        raise MissingRuleError("array", "llvm", f"an element of type {type(obj).__name__}")
    if dest.shape == ():
        v = em.scalar(em.runtime(obj), dest.dtype)
        store_mem(b, dest, _c(0), v.value)
        return
    if isinstance(obj, np.ndarray) or isinstance(obj, (bool, int, float, np.generic)):
        obj = em.runtime(obj)
    em.kern.assign(b, dest, obj)


@lowering("array")
def _array(em, s, args, kwargs):
    obj = args[0]
    out = s.out
    dest = em.result_buffer(s, out) if out.shape != () else em.buffer(None, out.dtype, ())
    inner = out.shape
    if isinstance(obj, (list, tuple)):
        depth, o = 0, obj
        while isinstance(o, (list, tuple)):
            depth, o = depth + 1, o[0] if len(o) else None
        leaf_nd = len(em.runtime(o).shape) if o is not None else 0
        inner = out.shape[len(out.shape) - depth - leaf_nd:]
    else:
        inner = out.shape[len(out.shape) - len(em.runtime(obj).shape):]
    # ndmin adds leading dims of size 1: write through a view without them
    view = Array(dest.ptr, dest.dtype, inner, owner=dest.owner)
    _fill_nested(em, view, obj)
    if out.shape == ():
        return Scalar(load_mem(em.b, dest, _c(0)), out.dtype)
    return dest


@lowering("unstack_like")
def _unstack_like(em, s, args, kwargs):
    g = em.runtime(args[0])
    if isinstance(g, Lazy):
        g = em.as_array(g)

    def cut(v, aval):
        if isinstance(aval, (list, tuple)):
            return type(aval)(cut(_index_view(em, v, [i]) if not isinstance(v, Scalar) else v,
                                  a) for i, a in enumerate(aval))
        if aval.shape == ():
            return em.scalar(v, aval.dtype)
        if not v.contiguous:
            v = em.contiguous(v)
        return Array(v.ptr, v.dtype, aval.shape, owner=v.owner)
    return cut(g, s.out)


register()
