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
from .lowerings import lowering, _matmul_sv
from .indexing import _gather, _scatter


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


def _lane_args(em, x, batched, i, static_lane):
    """Lane `i` (a run-time index) of a batched argument tree."""
    if not batched:
        return x
    if isinstance(x, dict):
        return {k: _lane_args(em, v, True, i, static_lane) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_lane_args(em, v, True, i, static_lane) for v in x)
    if not _data(x):
        return x
    v = em.rt(x)
    zero = em.const(0, np.int64)
    lane = em.dynamic_slice(v, [i] + [zero] * (len(v.shape) - 1), (1,) + v.shape[1:])
    return em.reshape(lane, v.shape[1:])


def _aval_tree(v):
    from .emit import SV as _SV
    if isinstance(v, _SV):
        return v.aval
    if isinstance(v, dict):
        return {k: _aval_tree(e) for k, e in v.items()}
    if isinstance(v, (tuple, list)):
        return type(v)(_aval_tree(e) for e in v)
    return v


@lowering("map_lanes")
def _map_lanes(em, s, args, kwargs):
    """The lane-by-lane fallback as a stablehlo.while over the lanes (not
    unrolled): each trip slices one lane of the batched arguments, applies
    the primitive's own xla lowering and writes its result into the
    stacked outputs."""
    from ...runtime.table import PRIMITIVES
    from ..infer import Arg, TAssign
    from .emit import leaves_with_paths, get_path, rebuild
    prim, batched, n = args[0], args[1], int(args[2])
    p = PRIMITIVES[prim]
    rule = p.lowerings.get("xla")
    if rule is None:
        raise MissingRuleError(prim, "xla", p.no_rule.get("xla", "") + " (mapped lane by lane)")
    if n == 0:
        raise MissingRuleError("map_lanes", "xla", "an empty batch")
    outs = leaves_with_paths(s.out)
    lane_out = _lane_aval(s.out)
    inits = [em.const(0, np.int64)] + [em.const(0, a.dtype, a.shape) for _, a in outs] + \
        [em.state["err"]]
    w = em.fresh("lanes")
    bargs = [f"{w}_{j}" for j in range(len(inits))]
    em.line(f"{w}:{len(inits)} = stablehlo.while(" + ", ".join(
        f"{b} = {v.name}" for b, v in zip(bargs, inits)) + ") : " +
        ", ".join(v.type for v in inits))
    vals = [SV(b, v.aval) for b, v in zip(bargs, inits)]
    em.indent += 2
    em.line("cond {")
    em.indent += 1
    c = em.compare("LT", vals[0], em.const(n, np.int64))
    em.line(f"stablehlo.return {c.name} : {c.type}")
    em.indent -= 1
    em.line("} do {")
    em.indent += 1
    saved_err = em.state["err"]
    em.state["err"] = vals[-1]
    lane = [_lane_args(em, a, f, vals[0], None) for a, f in zip(args[3:], batched)]
    lane_s = TAssign(s.target, prim, [Arg("lane" if _has_sv(v) else None, _aval_tree(v))
                                      for v in lane],
                     {k: Arg(None, v) for k, v in kwargs.items()}, lane_out, s.origin, False)
    value = em._fit(rule(em, lane_s, lane, dict(kwargs)), lane_out)
    new = [em.binary("stablehlo.add", vals[0], em.const(1, np.int64))]
    zero = em.const(0, np.int64)
    for k, (path, a) in enumerate(outs):
        v = em.rt(get_path(value, path), a.dtype, a.shape[1:])
        upd = em.reshape(v, (1,) + a.shape[1:])
        new.append(em.dynamic_update_slice(vals[1 + k], upd, [vals[0]] + [zero] * (len(a.shape) - 1)))
    new.append(em.state["err"])
    em.line(f"stablehlo.return {', '.join(o.name for o in new)} : "
            f"{', '.join(o.type for o in new)}")
    em.indent -= 1
    em.line("}")
    em.indent -= 2
    em.state["err"] = SV(f"{w}#{len(inits) - 1}", saved_err.aval)
    res = {path: SV(f"{w}#{1 + k}", a) for k, (path, a) in enumerate(outs)}
    return rebuild(s.out, res)


def _has_sv(v):
    if isinstance(v, SV):
        return True
    if isinstance(v, dict):
        return any(_has_sv(e) for e in v.values())
    if isinstance(v, (tuple, list)):
        return any(_has_sv(e) for e in v)
    return False


def _lane_aval(aval):
    if isinstance(aval, ShapedArray):
        return ShapedArray(aval.shape[1:], aval.dtype, aval.weak_type)
    if isinstance(aval, dict):
        return {k: _lane_aval(a) for k, a in aval.items()}
    if isinstance(aval, (tuple, list)):
        return type(aval)(_lane_aval(a) for a in aval)
    return aval


@lowering("unbroadcast_lanes")
def _unbroadcast_lanes(em, s, args, kwargs):
    g = em.rt(args[0])
    x, xb = args[1], args[2]
    xshape = x.shape if isinstance(x, SV) else np.shape(x)
    target = tuple(xshape[1:]) if xb else tuple(xshape)
    lane = g.shape[1:]
    if lane == target:
        return g
    lead = len(lane) - len(target)
    axes = [1 + i for i in range(lead)] + [1 + lead + i for i, d in enumerate(target)
                                           if d == 1 and lane[lead + i] != 1]
    return em.reshape(em.reduce(g, axes, "sum"), (g.shape[0],) + target)


@lowering("matmul_lanes_adjoint")
def _matmul_lanes_adjoint(em, s, args, kwargs):
    from .lowerings import _einsum_sv
    g, a, b, batched, wrt = args[:5]
    keep = kwargs.get("keep_lanes", args[5] if len(args) > 5 else False)
    ab, bb = batched
    ra = len(a.shape if isinstance(a, SV) else np.shape(a)) - ab
    rb = len(b.shape if isinstance(b, SV) else np.shape(b)) - bb
    if not (1 <= ra <= 2 and 1 <= rb <= 2):
        raise MissingRuleError("matmul_lanes_adjoint", "xla", "operands of more than two "
                               "dimensions per lane are not lowered for xla")
    # the lane axis as label z, one contraction per case
    sa = "mk" if ra == 2 else "k"
    sb = "kn" if rb == 2 else "k"
    sg = ("m" if ra == 2 else "") + ("n" if rb == 2 else "")
    za, zb = ("z" if ab else "") + sa, ("z" if bb else "") + sb
    dt = s.out.dtype
    if wrt == 0:
        return _einsum_sv(em, f"z{sg},{zb}->{'z' + sa if keep else za}", [g, b], dt)
    return _einsum_sv(em, f"{za},z{sg}->{'z' + sb if keep else zb}", [a, g], dt)
