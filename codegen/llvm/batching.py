"""LLVM lowerings of the helper primitives that `vmap` emits.

Owns the lowerings of runtime/batching_support.py's primitives: moving
batch axes (views), broadcasting unbatched values to the batch (zero-stride
views), lifting ranks, per-lane select / any / range checks, `matmul_lanes` and
its adjoint, `unbroadcast_lanes`, `batch_sum_unbatched`, and `map_lanes`
(one native loop over the lanes that runs the mapped primitive's own
lowering on each lane's view, writing each leaf of a container result
into its own (n, ...) buffer; primitives in MAP_LANES_CASES get a
dedicated lowering instead).  Per-lane indexing and updates
(`getitem_lanes`, `setitem_lanes`, their adjoint) live in
llvm/lane_indexing.py, imported at the end.  Every output shape here is
known at compile time; only `print_lanes` stays unlowered (printing is
not compiled).  Registers into
lowerings.LOWERINGS.  Must not
walk programs (llvm/emit.py does) nor touch the batching transformation.
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError
from ...runtime.batching_support import _NON_DATA, _map_coded, _move_out
from ..abstract import ShapedArray
from ..infer import Arg, TAssign
from .kernels import elem_ptr, load_mem, loop
from .lowerings import LOWERINGS, _as_viewable, lowering, register
from .reverse import _arr, _expand, _product, _swap
from .values import I64, Array, Lazy, Scalar, const, size_of


def _is_value(v):
    return isinstance(v, (Scalar, Array, Lazy))


def _view(v, shape, strides):
    return Array(v.ptr, v.dtype, shape, strides, owner=v.owner)


def _materialize_leaves(em, v):
    """Containers hold arrays, never unevaluated expressions."""
    if isinstance(v, dict):
        return {k: _materialize_leaves(em, e) for k, e in v.items()}
    if isinstance(v, (tuple, list)):
        return type(v)(_materialize_leaves(em, e) for e in v)
    if isinstance(v, Lazy):
        return em.as_array(v) if v.shape != () else em.bind(None, v, v.aval)
    return v


def _broadcast_lead(em, v, n):
    """v with a new leading axis of size n (zero stride: no copy)."""
    if isinstance(v, _NON_DATA) or v is None:
        return v
    v = em.runtime(v)
    if isinstance(v, Array):
        return _view(v, (n,) + v.shape, (0,) + v.strides)
    return Lazy("positive", [v], v.dtype, (n,) + tuple(v.shape), calc=v.dtype)


def _fold_static(em, s, args, kwargs):
    """Helpers whose arguments are always static (folded by inference)."""
    from ...runtime.table import PRIMITIVES
    if any(_is_value(a) for a in list(args) + list(kwargs.values())):
        raise MissingRuleError(s.prim, "llvm", "expects compile-time arguments")
    return PRIMITIVES[s.prim].impl(*args, **kwargs)


for _n in ("axes_after_batch", "batch_shape", "lane_perm", "batch_size"):
    LOWERINGS[_n] = _fold_static


@lowering("lane_length")
def _lane_length(em, s, args, kwargs):
    x = args[0]
    return len(x) if isinstance(x, (tuple, list, dict)) else x.shape[1]


@lowering("errstate_quiet")
def _errstate_quiet(em, s, args, kwargs):
    # compiled code raises no floating-point warnings: nothing to silence
    return s.out


@lowering("errstate_restore")
def _errstate_restore(em, s, args, kwargs):
    return None


# ------------------------------------------------------------ moving axes

@lowering("batch_move_in")
def _batch_move_in(em, s, args, kwargs):
    def leaf(v, axis):
        if axis is None or v is None or isinstance(v, _NON_DATA):
            return v
        v = _as_viewable(em, v)
        nd = len(v.shape)
        a = axis % nd
        order = [a] + [d for d in range(nd) if d != a]
        return _view(v, [v.shape[d] for d in order], [v.strides[d] for d in order])
    return _map_coded(leaf, args[0], args[1])


@lowering("batch_broadcast")
def _batch_broadcast(em, s, args, kwargs):
    x, state, n = args[0], args[1], args[2]
    if state is True:
        return x
    return _materialize_leaves(em, _map_coded(
        lambda v, batched: v if batched else _broadcast_lead(em, v, n), x, state))


@lowering("batch_move_out")
def _batch_move_out(em, s, args, kwargs):
    x, spec, state, n = args[:4]

    def leaf(v, pair):
        axis, batched = pair
        if axis is None or isinstance(v, _NON_DATA) or v is None:
            return v
        if not batched:
            v = _broadcast_lead(em, v, n)
        v = _as_viewable(em, v)
        nd = len(v.shape)
        a = axis % nd
        order = list(range(1, nd))
        order.insert(a, 0)
        return _view(v, [v.shape[d] for d in order], [v.strides[d] for d in order])
    return _move_out(x, spec, state, leaf)


@lowering("batch_lift")
def _batch_lift(em, s, args, kwargs):
    x = args[0]
    if x is None or isinstance(x, _NON_DATA) or isinstance(x, (tuple, list, dict)):
        return x
    if not _is_value(x) or tuple(x.shape) == tuple(s.out.shape):
        return x
    v = _as_viewable(em, x)
    k = len(s.out.shape) - len(v.shape)
    return _view(v, v.shape[:1] + (1,) * k + v.shape[1:], v.strides[:1] + (0,) * k + v.strides[1:])


# ------------------------------------------------------- per-lane selection

def _lift_to(em, m, nd):
    """A batch mask (n,) as a view of rank nd (size-1 axes after the batch)."""
    m = _as_viewable(em, m)
    k = nd - len(m.shape)
    if k <= 0:
        return m
    return _view(m, m.shape + (1,) * k, m.strides + (0,) * k)


@lowering("select_lanes")
def _select_lanes(em, s, args, kwargs):
    mask, a, bv = args[0], args[1], args[2]

    def sel(a, bv, aval, path):
        if a is None:
            return bv
        if bv is None:
            return a
        if isinstance(a, dict):
            return {k: sel(a[k], bv[k], aval[k], path + (k,)) for k in a}
        if isinstance(a, (tuple, list)):
            return type(a)(sel(u, w, av, path + (i,)) for i, (u, w, av) in
                           enumerate(zip(a, bv, aval)))
        if isinstance(a, _NON_DATA) or not isinstance(aval, ShapedArray):
            return a
        m = em.runtime(mask)
        if isinstance(m, Scalar) or aval.shape == ():
            node = Lazy("where", [m, em.runtime(a), em.runtime(bv)], aval.dtype, aval.shape,
                        calc=aval.dtype)
            return em.bind(None, node, aval)
        m = _lift_to(em, m, len(aval.shape))
        node = Lazy("where", [m, em.runtime(a), em.runtime(bv)], aval.dtype, aval.shape,
                    calc=aval.dtype)
        if not path:
            return node
        # a fresh buffer: the leaf may be read (as the old value) while written
        buf = em.buffer(None, aval.dtype, aval.shape)
        em.kern.assign(em.b, buf, node)
        return buf
    return sel(a, bv, s.out, ())


@lowering("lanes_any")
def _lanes_any(em, s, args, kwargs):
    m = em.runtime(args[0])
    if isinstance(m, Scalar):
        return m
    return em.kern.reduce(em.b, "any", m, tuple(range(len(m.shape))), False, np.bool_)


def _node(v):
    return v if isinstance(v, (bool, int, float)) else v


@lowering("range_active")
def _range_active(em, s, args, kwargs):
    i, stop, step = (a if isinstance(a, (bool, int, float)) else em.runtime(a) for a in args)
    shape = s.out.shape
    bool_ = np.dtype(np.bool_)
    up = Lazy("greater", [step, 0], bool_, shape, calc=np.dtype(np.int64))
    calc = np.result_type(*[np.asarray(0, np.int64) if isinstance(v, int) else
                            np.empty((), v.dtype) for v in (i, stop)])
    below = Lazy("less", [i, stop], bool_, shape, calc=calc)
    above = Lazy("greater", [i, stop], bool_, shape, calc=calc)
    node = Lazy("where", [up, below, above], bool_, shape, calc=bool_)
    return em.bind(None, node, s.out) if shape == () else node


@lowering("check_lanes")
def _check_lanes(em, s, args, kwargs):
    mask, cond = args[0], args[1]
    msg = kwargs.get("message", args[2] if len(args) > 2 else "") or "assertion failed"
    c = em.runtime(cond)
    if mask is not None:
        m = em.runtime(mask)
        if not isinstance(c, Scalar) and not isinstance(m, Scalar):
            m = _lift_to(em, m, len(c.shape))
        notm = Lazy("logical_not", [m], np.bool_, m.shape, calc=np.dtype(np.bool_))
        c = Lazy("logical_or", [c, notm], np.bool_, c.shape, calc=np.dtype(np.bool_))
    if isinstance(c, Scalar):
        ok = c
    elif isinstance(c, Lazy) and c.shape == ():
        ok = em.bind(None, c, ShapedArray((), np.bool_))
    else:
        ok = em.kern.reduce(em.b, "all", c, tuple(range(len(c.shape))), False, np.bool_)
    em.fail_if(em.b.not_(ok.value), 3, f"{msg} (failed in a vmap lane)")
    return None


# --------------------------------------------------------- per-lane loops

def _lane(em, v, i):
    """Lane `i` (an i64) of a batched run-time value: a view, or a Scalar."""
    v = _as_viewable(em, v)
    b = em.b
    off = b.mul(i, ir.Constant(I64, v.strides[0]))
    ptr = b.bitcast(elem_ptr(b, v, off), v.ptr.type)
    lane = Array(ptr, v.dtype, v.shape[1:], v.strides[1:], owner=v.owner)
    if lane.shape == ():
        return Scalar(load_mem(b, lane, ir.Constant(I64, 0)), v.dtype)
    return lane


def _lane_tree(em, v, batched, i):
    if not batched or v is None or isinstance(v, _NON_DATA):
        return v
    if isinstance(v, dict):
        return {k: _lane_tree(em, e, True, i) for k, e in v.items()}
    if isinstance(v, (tuple, list)):
        return type(v)(_lane_tree(em, e, True, i) for e in v)
    if not _is_value(v):
        return v
    return _lane(em, v, i)


def _lane_aval(aval, batched):
    if not batched or not isinstance(aval, (ShapedArray, tuple, list, dict)):
        return aval
    if isinstance(aval, dict):
        return {k: _lane_aval(e, True) for k, e in aval.items()}
    if isinstance(aval, (tuple, list)):
        return type(aval)(_lane_aval(e, True) for e in aval)
    return ShapedArray(aval.shape[1:], aval.dtype, aval.weak_type)


#: map_lanes of these primitives has a dedicated lowering (prim -> rule(em,
#: s, args, kwargs), returning None to fall back to the per-lane loop)
MAP_LANES_CASES = {}


def _lane_buffers(em, aval):
    """Fresh buffers for the leaves of a container result of map_lanes."""
    if isinstance(aval, dict):
        return {k: _lane_buffers(em, a) for k, a in aval.items()}
    if isinstance(aval, (tuple, list)):
        return type(aval)(_lane_buffers(em, a) for a in aval)
    if isinstance(aval, ShapedArray):
        return em.buffer(None, aval.dtype, aval.shape)
    return aval


def _store_lanes(em, dest, i, val):
    """dest[i] = val over matching trees (static leaves stay as they are)."""
    if isinstance(dest, dict):
        for k in dest:
            _store_lanes(em, dest[k], i, val[k])
    elif isinstance(dest, (tuple, list)):
        for d, v in zip(dest, val):
            _store_lanes(em, d, i, v)
    elif isinstance(dest, Array):
        if val is None:
            raise MissingRuleError("map_lanes", "llvm", "a lane result without a value "
                                   "where the shape rule expected an array")
        _store_lane(em, dest, i, val)


def _store_lane(em, dest, i, val):
    from .kernels import store_mem
    b = em.b
    if len(dest.shape) > 1:
        em.kern.assign(b, _lane(em, dest, i),
                       val if isinstance(val, (bool, int, float)) else em.runtime(val))
        return
    sv = Scalar(const(dest.dtype, val), dest.dtype) if isinstance(val, (bool, int, float)) \
        else em.scalar(val, dest.dtype)
    store_mem(b, dest, b.mul(i, ir.Constant(I64, dest.strides[0])), sv.value)


@lowering("map_lanes")
def _map_lanes(em, s, args, kwargs):
    prim, batched, n = args[0], args[1], args[2]
    rest = list(args[3:])
    out = s.out
    special = MAP_LANES_CASES.get(prim)
    if special is not None:
        value = special(em, s, args, kwargs)
        if value is not None:
            return value
    if prim == "grad_seed" and isinstance(out, ShapedArray):
        # every lane's seed is 1: no loop needed
        return Lazy("positive", [Scalar(const(out.dtype, 1.0), out.dtype)], out.dtype,
                    out.shape, calc=out.dtype)
    rule = LOWERINGS.get(prim)
    if rule is None:
        raise MissingRuleError(prim, "llvm")
    lane_args = [Arg(None, _lane_aval(a.aval, f)) for a, f in zip(s.args[3:], batched)]
    lane_kwargs = {k: Arg(None, a.aval) for k, a in s.kwargs.items()}
    inner = TAssign(s.target + ".lane", prim, lane_args, lane_kwargs,
                    _lane_aval(out, True), s.origin, False)
    # a container result gets one buffer per leaf (each (n, ...))
    dest = em.result_buffer(s, out) if isinstance(out, ShapedArray) else _lane_buffers(em, out)
    with loop(em.b, n, name="lane") as i:
        vals = [_lane_tree(em, v, f, i) for v, f in zip(rest, batched)]
        _store_lanes(em, dest, i, rule(em, inner, vals, kwargs))
    return dest


# ---------------------------------------------------------- contractions

def _mm_operand(em, v, batched, dt):
    """(lane rank, Array) of a matmul_lanes operand."""
    v = _arr(em, v, dt)
    return len(v.shape) - int(batched), v


@lowering("matmul_lanes")
def _matmul_lanes(em, s, args, kwargs):
    a, bm, (ab, bb) = args[0], args[1], args[2]
    out = s.out
    dt = out.dtype
    ra, a = _mm_operand(em, a, ab, dt)
    rb, bm = _mm_operand(em, bm, bb, dt)
    # the same reshapes as the eager implementation, as views
    if ra == 1:
        a = _expand(a, -2)
    if rb == 1:
        bm = _expand(bm, -1)
    pa, pb = len(a.shape) - ab, len(bm.shape) - bb
    want = max(pa, pb)
    if ab and want > pa:
        k = want - pa
        a = _view(a, a.shape[:1] + (1,) * k + a.shape[1:], a.strides[:1] + (0,) * k + a.strides[1:])
    if bb and want > pb:
        k = want - pb
        bm = _view(bm, bm.shape[:1] + (1,) * k + bm.shape[1:],
                   bm.strides[:1] + (0,) * k + bm.strides[1:])
    if bb and not ab and len(a.shape) < len(bm.shape):
        k = len(bm.shape) - len(a.shape)
        a = _view(a, (1,) * k + a.shape, (0,) * k + a.strides)
    r = _product(em, s.target + ".mm", a, bm, dt)
    if size_of(r.shape) != size_of(out.shape):
        raise MissingRuleError("matmul_lanes", "llvm", f"operands {a.shape} @ {bm.shape}")
    if not r.contiguous:
        r = em.contiguous(r)
    return Array(r.ptr, dt, out.shape, owner=r.owner)


@lowering("matmul_lanes_adjoint")
def _matmul_lanes_adjoint(em, s, args, kwargs):
    g, a, bm, batched, wrt = args[:5]
    keep = kwargs.get("keep_lanes", args[5] if len(args) > 5 else False)
    ab, bb = batched
    out = s.out
    dt = out.dtype
    ra, a = _mm_operand(em, a, ab, dt)
    rb, bm = _mm_operand(em, bm, bb, dt)
    if not (1 <= ra <= 2 and 1 <= rb <= 2):
        raise MissingRuleError("matmul_lanes_adjoint", "llvm", "operands of rank > 2 per lane")
    g = _arr(em, g, dt)
    n = g.shape[0]
    # lane matrices: A (m|1, k), B (k, n|1), G (m|1, n|1), lane axis first
    lane_g = g.shape[1:]
    gm = lane_g[0] if ra == 2 else 1
    gn = lane_g[-1] if rb == 2 else 1
    gs = g.strides[1:]
    g_st = ((gs[0] if ra == 2 else 0), (gs[-1] if rb == 2 else 0))
    G = _view(g, (n, gm, gn), (g.strides[0],) + g_st)

    def lanes3(v, batched, rank, vec_axis):
        sh, st = (v.shape[1:], v.strides[1:]) if batched else (v.shape, v.strides)
        if rank == 1:
            sh = (1,) + sh if vec_axis == 0 else sh + (1,)
            st = (0,) + st if vec_axis == 0 else st + (0,)
        if batched:
            return _view(v, (n,) + tuple(sh), (v.strides[0],) + tuple(st))
        return _view(v, tuple(sh), tuple(st))
    A = lanes3(a, ab, ra, 0)
    B = lanes3(bm, bb, rb, 1)
    if wrt == 0:
        r = _product(em, s.target + ".mm", G, _swap(B), dt)   # (n, m|1, k)
        lane_shape = (r.shape[1], r.shape[2]) if ra == 2 else (r.shape[2],)
        mine_batched = ab
    else:
        r = _product(em, s.target + ".mm", _swap(A), G, dt)   # (n, k, n|1)
        lane_shape = (r.shape[1], r.shape[2]) if rb == 2 else (r.shape[1],)
        mine_batched = bb
    r = Array(r.ptr, dt, (n,) + lane_shape, owner=r.owner)
    if mine_batched or keep:
        return r
    dest = em.result_buffer(s, out)
    em.kern.reduce(em.b, "sum", r, (0,), False, dt, dest=dest)
    return dest


@lowering("unbroadcast_lanes")
def _unbroadcast_lanes(em, s, args, kwargs):
    g = em.runtime(args[0])
    out = s.out
    lane, target = tuple(g.shape[1:]), tuple(out.shape[1:])
    if lane == target:
        return g
    lead = len(lane) - len(target)
    axes = tuple(1 + i for i in range(lead)) + tuple(
        1 + lead + i for i, d in enumerate(target) if d == 1 and lane[lead + i] != 1)
    dest = em.result_buffer(s, out)
    kept = [g.shape[d] for d in range(len(g.shape)) if d not in axes]
    em.kern.reduce(em.b, "sum", g, axes, False, out.dtype,
                   dest=Array(dest.ptr, out.dtype, kept))
    return Array(dest.ptr, out.dtype, out.shape, owner=dest.owner)


@lowering("batch_sum_unbatched")
def _batch_sum_unbatched(em, s, args, kwargs):
    g, state = args[0], args[1]
    if state is True or g is None:
        return g
    count = [0]

    def leaf(v, batched):
        if batched or v is None or isinstance(v, _NON_DATA) or not _is_value(v):
            return v
        count[0] += 1
        if len(v.shape) == 1:
            return em.kern.reduce(em.b, "sum", v, (0,), False, v.dtype)
        buf = em.name_buffer(f"{s.target}.{count[0]}", v.dtype, v.shape[1:])
        em.kern.reduce(em.b, "sum", v, (0,), False, v.dtype, dest=buf)
        return buf
    return _map_coded(leaf, g, state)


# per-lane indexing: gathers, scatters and their adjoints
from . import lane_indexing  # noqa: E402,F401

register()
