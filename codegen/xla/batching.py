"""vmap's helper primitives for the XLA backend (part of the one table).

Owns the lowerings of the primitives batched code calls: moving batch
axes (`batch_move_in`, `batch_move_out`, `batch_broadcast`, `batch_lift`),
per-lane selection (`select_lanes`, `lanes_any`, `range_active`), per-lane
indexing (`getitem_lanes`, `setitem_lanes`) and contractions
(`matmul_lanes`).  They register into lowerings.LOWERINGS, so
`Primitive.lowerings["xla"]` has one table; the pytree walks reuse
runtime/batching_support.py's coded-spec helpers.  Must not walk programs.
"""

import numpy as np

from ...errors import MissingRuleError
from ...runtime.batching_support import _map_coded, _move_out, _NON_DATA
from ..abstract import ShapedArray
from .emit import SV
from .lowerings import lowering, _gather, _scatter, _matmul_sv


def _moveaxis(em, x, src, dst):
    n = len(x.shape)
    src, dst = src % n, dst % n
    order = [k for k in range(n) if k != src]
    order.insert(dst, src)
    return em.transpose(x, order)


def _data(v):
    return v is not None and not isinstance(v, _NON_DATA)


@lowering("batch_move_in")
def _batch_move_in(em, s, args, kwargs):
    def leaf(v, axis):
        if axis is None or not _data(v):
            return v
        return _moveaxis(em, em.rt(v), int(axis), 0)
    return _map_coded(leaf, args[0], args[1])


def _promote(em, v, n):
    v = em.rt(v)
    return em.broadcast_in_dim(v, (n,) + v.shape, list(range(1, len(v.shape) + 1)))


@lowering("batch_broadcast")
def _batch_broadcast(em, s, args, kwargs):
    x, state, n = args
    if state is True:
        return x

    def leaf(v, batched):
        if batched or not _data(v):
            return v
        return _promote(em, v, int(n))
    return _map_coded(leaf, x, state)


@lowering("batch_move_out")
def _batch_move_out(em, s, args, kwargs):
    x, spec, state, n = args

    def leaf(v, pair):
        axis, batched = pair
        if axis is None or not _data(v):
            return v
        a = em.rt(v) if batched else _promote(em, v, int(n))
        return _moveaxis(em, a, 0, int(axis))
    return _move_out(x, spec, state, leaf)


@lowering("batch_lift")
def _batch_lift(em, s, args, kwargs):
    x = args[0]
    if not isinstance(s.out, ShapedArray) or not _data(x):
        return x
    return em.reshape(em.rt(x), s.out.shape)


@lowering("select_lanes")
def _select_lanes(em, s, args, kwargs):
    mask = em.rt(args[0], np.bool_)

    def sel(a, b, aval):
        if a is None:
            return b
        if b is None:
            return a
        if isinstance(aval, dict):
            return {k: sel(a[k], b[k], aval[k]) for k in aval}
        if isinstance(aval, (tuple, list)):
            return type(aval)(sel(u, v, w) for u, v, w in zip(a, b, aval))
        if not isinstance(aval, ShapedArray):
            return aval
        av, bv = em.rt(a, aval.dtype), em.rt(b, aval.dtype)
        nd = max(len(av.shape), len(bv.shape))
        m = em.reshape(mask, mask.shape + (1,) * (nd - len(mask.shape)))
        return em.select(m, av, bv)
    return sel(args[1], args[2], s.out)


@lowering("lanes_any")
def _lanes_any(em, s, args, kwargs):
    m = em.rt(args[0], np.bool_)
    return em.reduce(m, range(len(m.shape)), "or")


@lowering("range_active")
def _range_active(em, s, args, kwargs):
    i, stop, step = [em.rt(a, np.int64) for a in args]
    zero = em.const(0, np.int64)
    return em.select(em.compare("GT", step, zero), em.compare("LT", i, stop),
                     em.compare("GT", i, stop))


def _is_index_array(p):
    return isinstance(p, SV) or isinstance(p, np.ndarray)


def _clip(em, p, size):
    if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
        return int(np.clip(p, -size, size - 1))
    if isinstance(p, np.ndarray) and p.dtype.kind in "iu":
        return np.clip(p, -size, size - 1)
    if isinstance(p, SV) and p.dtype.kind in "iu":
        lo = em.const(-size, p.dtype, p.shape)
        hi = em.const(size - 1, p.dtype, p.shape)
        return em.binary("stablehlo.minimum", em.binary("stablehlo.maximum", p, lo), hi)
    return p


def _lanes_gather(em, x, xb, idx, ib, clip, out_shape):
    """Per lane x[idx] (the batch axis first), as getitem_lanes computes it."""
    n = out_shape[0] if out_shape else None
    for part, f in zip(idx, ib):
        if f:
            n = part.shape[0]
    if xb:
        n = x.shape[0]
    if not xb:
        x = _promote(em, x, n)
    idx = list(idx)
    if clip:
        idx = [_clip(em, p, x.shape[k + 1]) if k + 1 < len(x.shape) else p
               for k, p in enumerate(idx)]
    if any(p is Ellipsis for p in idx):
        raise MissingRuleError("getitem_lanes", "xla", "an Ellipsis in a batched index")
    if not any(ib):
        out = _gather(em, x, [slice(None)] + idx)
        # NumPy puts the dimensions of separated advanced indices first,
        # before the batch axis: move it back
        arrays = [k for k, p in enumerate(idx) if _is_index_array(p) and np.ndim(
            p if not isinstance(p, SV) else np.empty(p.shape)) > 0]
        if arrays:
            adv = [k for k, p in enumerate(idx) if _is_index_array(p) or (
                isinstance(p, (int, np.integer)) and not isinstance(p, bool))]
            if adv != list(range(adv[0], adv[-1] + 1)):
                nd = len(np.broadcast_shapes(*[p.shape if isinstance(p, SV) else np.shape(p)
                                               for k, p in enumerate(idx) if k in adv]))
                out = _moveaxis(em, out, nd, 0)
        return out
    parts = list(idx)
    adv = [k for k, p in enumerate(parts) if not isinstance(p, slice)]
    if adv != list(range(len(adv))) or any(p is None for p in parts):
        raise MissingRuleError("getitem_lanes", "xla", f"{em.where()}: a batched index "
                               "after a slice or with None is not lowered")
    arrs = []
    for k in adv:
        p = em.rt(parts[k], np.int64)
        if not ib[k]:
            p = _promote(em, p, n)
        arrs.append(p)
    rank = max(len(a.shape) for a in arrs)
    arrs = [em.reshape(a, a.shape[:1] + (1,) * (rank - len(a.shape)) + a.shape[1:])
            for a in arrs]
    lanes = em.reshape(em.iota((n,), 0), (n,) + (1,) * (rank - 1))
    return _gather(em, x, [lanes] + arrs + parts[len(adv):])


@lowering("getitem_lanes")
def _getitem_lanes(em, s, args, kwargs):
    x, batched, idx = args[0], args[1], args[2]
    clip = kwargs.get("clip", args[3] if len(args) > 3 else False)
    xb, ib = batched[0], batched[1:]
    if isinstance(x, (tuple, list, dict)) and not any(ib):
        from ...runtime.structural import _index
        return x[_index(tuple(idx))]
    if not isinstance(s.out, ShapedArray):
        raise MissingRuleError("getitem_lanes", "xla", "a per-lane index into a container")
    return _lanes_gather(em, em.rt(x, s.out.dtype), xb, list(idx), list(ib), clip,
                         s.out.shape)


@lowering("setitem_lanes")
def _setitem_lanes(em, s, args, kwargs):
    x, value, batched, idx = args[0], args[1], args[2], args[3]
    clip = kwargs.get("clip", args[4] if len(args) > 4 else False)
    out = s.out
    xb, vb, ib = batched[0], batched[1], list(batched[2:])
    n = out.shape[0]
    xv = em.rt(x, out.dtype)
    if not xb:
        xv = _promote(em, xv, n)
    size = int(np.prod(out.shape))
    flat = em.reshape(em.iota((size,), 0), out.shape)
    pos = _lanes_gather(em, flat, True, list(idx), ib, clip, None)
    v = em.rt(value, out.dtype)
    if vb:
        v = em.reshape(v, v.shape[:1] + (1,) * (len(pos.shape) - len(v.shape)) + v.shape[1:])
    v = em.bcast(v, pos.shape)
    return _scatter(em, xv, pos, v, "set")


@lowering("matmul_lanes")
def _matmul_lanes(em, s, args, kwargs):
    ab, bb = args[2]
    dt = s.out.dtype
    a, b = em.rt(args[0], dt), em.rt(args[1], dt)
    ra, rb = len(a.shape) - ab, len(b.shape) - bb
    if ra == 1:
        a = em.reshape(a, a.shape[:-1] + (1, a.shape[-1]))
    if rb == 1:
        b = em.reshape(b, b.shape + (1,))
    pa, pb = len(a.shape) - ab, len(b.shape) - bb
    want = max(pa, pb)
    if ab:
        a = em.reshape(a, a.shape[:1] + (1,) * (want - pa) + a.shape[1:])
    if bb:
        b = em.reshape(b, b.shape[:1] + (1,) * (want - pb) + b.shape[1:])
    if bb and not ab and len(a.shape) < len(b.shape):
        a = em.reshape(a, (1,) * (len(b.shape) - len(a.shape)) + a.shape)
    r = _matmul_sv(em, a, b, dt)
    if rb == 1:
        r = em.reshape(r, r.shape[:-1])
    if ra == 1:
        r = em.reshape(r, r.shape[:-2] + r.shape[-1:]) if rb != 1 else \
            em.reshape(r, r.shape[:-1])
    return r
