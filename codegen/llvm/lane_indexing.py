"""LLVM lowerings of vmap's per-lane indexing.

Owns the lowerings of `getitem_lanes` (lane b reads x[b][index_b]),
`setitem_lanes` (lane b writes x[b][index_b] = value[b]),
`getitem_lanes_adjoint` (per lane a scatter-add of the cotangent, summed
over the lanes when x is not batched) and of `map_lanes` of
`getitem_adjoint` (vmap of a gradient through indexing: the same
scatter-add, every lane kept).  Basic indexing with unbatched indices
stays a view; everything else is one loop nest over the lanes and the
result built by gathers.IndexPlan, which lays indices out as NumPy
does, clips masked lanes' indices as the eager runtime does and refuses
out-of-range ones with a clean error.  Registers into
lowerings.LOWERINGS (and batching's map_lanes cases).  Must not
walk programs nor touch the batching transformation.
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError
from .batching import MAP_LANES_CASES, _broadcast_lead, _view
from .gathers import IndexPlan, gather, scatter, scatter_add
from .kernels import store_mem
from .lowerings import _as_viewable, _getitem, _index_view, lowering
from .values import I64, Array, Lazy, Scalar, const


def _basic_part(p):
    """An unbatched index part that basic (view) indexing handles."""
    if isinstance(p, Scalar):
        return p.dtype.kind in "iu"
    return p is None or isinstance(p, slice) or (
        isinstance(p, (int, np.integer)) and not isinstance(p, bool))


def _clip_scalar(em, p, size):
    """Clip a run-time index into [-size, size - 1] (masked lanes)."""
    b = em.b
    v = em.scalar(p, np.int64).value
    lo, hi = ir.Constant(I64, -size), ir.Constant(I64, size - 1)
    v = b.select(b.icmp_signed("<", v, lo), lo, v)
    v = b.select(b.icmp_signed(">", v, hi), hi, v)
    return Scalar(v, np.int64)


def _clipped_basic(em, idx, clip, lane_shape):
    """Unbatched basic index parts, integers clipped as the eager runtime
    clips them: by the part's position k in the index tuple."""
    if not clip:
        return list(idx)
    parts = []
    for k, p in enumerate(idx):
        size = lane_shape[k] if k < len(lane_shape) else 0
        if size and isinstance(p, Scalar):
            p = _clip_scalar(em, p, size)
        elif size and isinstance(p, (int, np.integer)) and not isinstance(p, bool):
            p = int(np.clip(p, -size, size - 1))
        parts.append(p)
    return parts


def _plan(em, s, lane_shape, idx, flags, n, clip, want):
    plan = IndexPlan(em, lane_shape, idx, flags, n, clip)
    if want is not None and plan.full != tuple(want):
        raise MissingRuleError(s.prim, "llvm", f"the index lays out a result of shape "
                               f"{plan.full}, but shape inference expected {tuple(want)}")
    return plan


def _value(em, v, dtype):
    """A value to store: a Scalar, or an Array (never a Lazy)."""
    if isinstance(v, (bool, int, float, np.generic)):
        return Scalar(const(dtype, v), dtype)
    v = em.runtime(v)
    return em.as_array(v) if isinstance(v, Lazy) else v


@lowering("getitem_lanes")
def _getitem_lanes(em, s, args, kwargs):
    x, batched, idx = args[0], args[1], args[2]
    clip = kwargs.get("clip", args[3] if len(args) > 3 else False)
    xb, ib = batched[0], tuple(batched[1:])
    if isinstance(x, (tuple, list, dict)):
        if not any(ib):
            return _getitem(em, s, [x] + list(idx), {})
        raise MissingRuleError("getitem_lanes", "llvm", "a list, tuple or dict indexed by a "
                               "per-lane (batched) index would pick a different entry on "
                               "each lane; stack the entries into an array and index that")
    out = s.out
    n = out.shape[0]
    xv = _as_viewable(em, x)
    if not xb:
        xv = _view(xv, (n,) + xv.shape, (0,) + xv.strides)
    if not any(ib) and all(_basic_part(p) for p in idx):
        return _index_view(em, xv, [slice(None)] + _clipped_basic(em, idx, clip, xv.shape[1:]))
    plan = _plan(em, s, xv.shape[1:], idx, ib, n, clip, out.shape)
    return gather(em, plan, xv, em.result_buffer(s, out))


@lowering("setitem_lanes")
def _setitem_lanes(em, s, args, kwargs):
    x, value, batched, idx = args[0], args[1], args[2], args[3]
    clip = kwargs.get("clip", args[4] if len(args) > 4 else False)
    xb, vb, ib = batched[0], batched[1], tuple(batched[2:])
    out = s.out
    n = out.shape[0]
    b = em.b
    src = em.runtime(x)
    if not xb:
        src = _broadcast_lead(em, src, n)
    dest = em.name_buffer(s.target, out.dtype, out.shape)
    if not (isinstance(src, Array) and src.owner == dest.owner and dest.owner is not None):
        if isinstance(src, Array) and src.contiguous and src.dtype == dest.dtype and xb:
            # copy unless src already is the target's buffer (a loop's
            # previous value): writing in place is then NumPy's semantics
            differ = b.icmp_unsigned("!=", b.ptrtoint(src.ptr, I64), b.ptrtoint(dest.ptr, I64))
            with b.if_then(differ):
                em.copy_into(dest, src)
        else:
            em.kern.assign(b, dest, src)
    v = _value(em, value, dest.dtype)
    if isinstance(v, Array) and v.owner == dest.owner and dest.owner is not None:
        # the value reads the buffer being written: take a copy first
        v = em.as_array(Lazy("positive", [v], v.dtype, v.shape, calc=v.dtype))
    if not any(ib) and all(_basic_part(p) for p in idx):
        view = _index_view(em, dest, [slice(None)] +
                           _clipped_basic(em, idx, clip, out.shape[1:]))
        if vb and isinstance(v, Array):
            k = len(view.shape) - len(v.shape)
            if k > 0:
                v = _view(v, v.shape[:1] + (1,) * k + v.shape[1:],
                          v.strides[:1] + (0,) * k + v.strides[1:])
        if view.shape == ():
            store_mem(b, view, ir.Constant(I64, 0), em.scalar(v, dest.dtype).value)
        else:
            em.kern.assign(b, view, v)
        return dest
    plan = _plan(em, s, out.shape[1:], idx, ib, n, clip, None)
    scatter(em, plan, dest, v, batched=bool(vb) and isinstance(v, Array))
    return dest


@lowering("getitem_lanes_adjoint")
def _getitem_lanes_adjoint(em, s, args, kwargs):
    """Per lane zeros like x[b] with g[b] added at index_b; summed over the
    lanes (a zero lane stride: every lane adds into one x) when x is not
    batched."""
    g, x, batched, idx = args[0], args[1], args[2], args[3]
    xb, ib = batched[0], tuple(batched[1:])
    out = s.out
    if isinstance(x, (tuple, list, dict)):
        raise MissingRuleError("getitem_lanes_adjoint", "llvm", "the adjoint of per-lane "
                               "indexing into a list, tuple or dict")
    gv = _value(em, g, out.dtype)
    if not isinstance(gv, Array):
        raise MissingRuleError("getitem_lanes_adjoint", "llvm", "a cotangent without the "
                               "lane axis")
    n = gv.shape[0]
    lane_shape = tuple(out.shape[1:] if xb else out.shape)
    dest = em.result_buffer(s, out)
    em.kern.assign(em.b, dest, 0)
    target = dest if xb else _view(dest, (n,) + dest.shape, (0,) + dest.strides)
    plan = IndexPlan(em, lane_shape, idx, ib, n)
    return _scatter_checked(em, s, plan, dest, target, gv)


def _scatter_checked(em, s, plan, dest, target, g):
    if isinstance(g, Array) and tuple(g.shape) != plan.full:
        raise MissingRuleError(s.prim, "llvm", f"a cotangent of shape {tuple(g.shape)} for "
                               f"an index laying out {plan.full}")
    scatter_add(em, plan, target, g, batched=isinstance(g, Array))
    return dest


def _map_getitem_adjoint(em, s, args, kwargs):
    """map_lanes('getitem_adjoint', batched, n, g, x, *index): per lane the
    adjoint of x[index], every lane kept."""
    batched, n = args[1], args[2]
    g, x, idx = args[3], args[4], args[5:]
    out = s.out
    if isinstance(x, (tuple, list, dict)):
        return None     # the generic per-lane loop handles containers
    gb, ib = batched[0], tuple(batched[2:])
    gv = _value(em, g, out.dtype)
    if not gb and isinstance(gv, Array):
        gv = _view(gv, (n,) + gv.shape, (0,) + gv.strides)
    dest = em.result_buffer(s, out)
    em.kern.assign(em.b, dest, 0)
    plan = IndexPlan(em, out.shape[1:], idx, ib, n)
    return _scatter_checked(em, s, plan, dest, dest, gv)


MAP_LANES_CASES["getitem_adjoint"] = _map_getitem_adjoint
