"""LLVM lowerings of the primitives reverse mode emits, and of the gathers
and views their adjoints need.

Owns the lowerings of the stack primitives (infer_stacks.STACK_PRIMS: the
sweeps' stacks, their adjoint stacks for grad of grad, copy_stack;
dispatched to llvm/stacks.py by the emitter), `trip_count`,
`check_grad_input` (a compile-time check: the dtypes are known),
`getitem_adjoint`, `matmul_grad_a/b`, `dot_grad_a/b`, `split_like`, `diagonal`/`diagonal_adjoint`, `flip`, `take`/`take_adjoint`
and advanced integer indexing (`getitem` with integer arrays: a gather;
its adjoint a scatter-add), `tri`, `linspace`.  Adds them to
lowerings.LOWERINGS.  Must not walk
programs.
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError, NonDifferentiableError
from ..abstract import ShapedArray
from .kernels import loop_nest, load_mem, store_mem, elem_ptr, offset_of
from .lowerings import (LOWERINGS, lowering, register, _as_viewable, splat_index,
                             dot_labels, zeros_of,
                             _index_view, _axes)
from ..infer_stacks import STACK_PRIMS
from .stacks import trip_count
from .values import I64, Array, Lazy, Scalar, cast, const, size_of
from . import gathers as gathers


def _stack_rule(em, s, args, kwargs):  # pragma: no cover - the emitter dispatches
    raise AssertionError("stack primitives are lowered by FunctionEmitter.assign")


# the emitter lowers every stack primitive through stacks.Stacks (they
# need the stacks' state); registered so the table sweep sees them lowered
for _n in STACK_PRIMS:
    LOWERINGS[_n] = _stack_rule
LOWERINGS["trip_count"] = trip_count


@lowering("check_grad_input")
def _check_grad_input(em, s, args, kwargs):
    what = kwargs.get("what", args[1] if len(args) > 1 else "")
    for a in _leaves(s.args[0].aval):
        dt = a.dtype if isinstance(a, ShapedArray) else np.result_type(a)
        if isinstance(a, (bool, np.bool_)) or (not isinstance(a, (float, complex)) and
                                               not np.issubdtype(dt, np.inexact)):
            raise NonDifferentiableError(
                f"{what} has dtype {dt}, but only floating-point inputs can be "
                "differentiated. Convert it first (e.g. x.astype(float)), or leave it "
                "out of argnums.")
    return None


def _leaves(v, out=None):
    out = [] if out is None else out
    if isinstance(v, (tuple, list)):
        for e in v:
            _leaves(e, out)
    elif isinstance(v, dict):
        for e in v.values():
            _leaves(e, out)
    elif v is not None:
        out.append(v)
    return out


# ------------------------------------------------------------- zeros, views

def _is_advanced(index):
    return any(isinstance(p, (Array, Lazy, np.ndarray, list)) or
               (isinstance(p, Scalar) and p.dtype.kind == "b") for p in index)


@lowering("getitem_adjoint")
def _getitem_adjoint(em, s, args, kwargs):
    g, x, index = args[0], args[1], args[2:]
    out = s.out
    if isinstance(x, (tuple, list, dict)):
        if len(index) != 1 or isinstance(index[0], Scalar):
            raise MissingRuleError("getitem_adjoint", "llvm",
                                   "a container indexed by a run-time value")
        res = zeros_of(em, out, s.target)
        k = index[0]
        if isinstance(res, dict):
            res[k] = g
            return res
        res = list(res)
        if isinstance(k, slice):
            for i, gi in zip(range(*k.indices(len(res))), g):
                res[i] = gi
        else:
            res[k] = g
        return type(out)(res)
    if out.shape == ():
        return em.scalar(g, out.dtype)
    index = splat_index(index)
    dest = em.name_buffer(s.target, out.dtype, out.shape)
    em.kern.assign(em.b, dest, 0)
    if _is_advanced(index):
        _scatter_add(em, dest, index, g)
        return dest
    view = _index_view(em, dest, index)
    gv = em.runtime(g)
    if view.shape == ():
        store_mem(em.b, view, ir.Constant(I64, 0), em.scalar(gv, out.dtype).value)
    else:
        em.kern.assign(em.b, view, gv)
    return dest


# --------------------------------------------------------- advanced indexing
# (laid out by gathers.IndexPlan, NumPy's rules: this module's own
# layout once placed x[0, :, idx]'s dimensions as if the integer were not
# an advanced index, a wrong gradient with no error)

def gather(em, s, x, index, out):
    x = _as_viewable(em, x)
    return gathers.gather(em, gathers.IndexPlan(em, x.shape, index), x,
                          em.result_buffer(s, out))


def _scatter_add(em, dest, index, g):
    """dest[index] += g with repeated indices accumulating (numpy.add.at)."""
    g = em.runtime(g)
    if isinstance(g, Lazy):
        g = em.as_array(g)
    elif not isinstance(g, (Array, Scalar)):
        g = Scalar(const(dest.dtype, g), dest.dtype)
    gathers.scatter_add(em, gathers.IndexPlan(em, dest.shape, index), dest, g)


@lowering("take")
def _take(em, s, args, kwargs):
    x, idx = args[0], args[1]
    axis = kwargs.get("axis", args[2] if len(args) > 2 else None)
    x = _as_viewable(em, x)
    if axis is None:
        x = em.contiguous(x)
        x = Array(x.ptr, x.dtype, (size_of(x.shape),), owner=x.owner)
        axis = 0
    axis %= len(x.shape)
    index = [slice(None)] * axis + [_index_value(em, idx)]
    if s.out.shape == ():
        return em.scalar(gather(em, s, x, index, ShapedArray((1,), s.out.dtype)))
    return gather(em, s, x, index, s.out)


def _index_value(em, idx):
    if isinstance(idx, (int, np.integer)):
        return np.asarray([idx])
    if isinstance(idx, Scalar):
        return idx
    return idx


@lowering("take_adjoint")
def _take_adjoint(em, s, args, kwargs):
    g, x, idx = args[0], args[1], args[2]
    axis = kwargs.get("axis", args[3] if len(args) > 3 else None)
    out = s.out
    dest = em.name_buffer(s.target, out.dtype, out.shape)
    em.kern.assign(em.b, dest, 0)
    target = dest
    if axis is None:
        target = Array(dest.ptr, dest.dtype, (size_of(dest.shape),), owner=dest.owner)
        axis = 0
    axis %= len(target.shape)
    _scatter_add(em, target, [slice(None)] * axis + [_index_value(em, idx)], g)
    return dest


# ------------------------------------------------------------------ matmul

class _Tmp:
    """A stand-in statement for result buffers of intermediate products."""

    def __init__(self, target):
        self.target, self.args = target, []


def _product(em, target, a, bm, dtype):
    """a @ bm (Arrays with >= 2 dims, broadcasting batch dims) into a buffer."""
    from .lowerings import _batched_matmul
    if len(a.shape) == 2 and len(bm.shape) == 2:
        dest = em.name_buffer(target, dtype, (a.shape[0], bm.shape[1]))
        em.kern.gemm(em.b, a, bm, dest, em.blas)
        return dest
    batch = np.broadcast_shapes(a.shape[:-2], bm.shape[:-2])
    out = ShapedArray(tuple(batch) + (a.shape[-2], bm.shape[-1]), dtype)
    return _batched_matmul(em, _Tmp(target), a, bm, out)


def _swap(v):
    return Array(v.ptr, v.dtype, v.shape[:-2] + (v.shape[-1], v.shape[-2]),
                 v.strides[:-2] + (v.strides[-1], v.strides[-2]), owner=v.owner)


def _expand(v, axis):
    """A view of v with a new unit axis at `axis` (negative counts from the end)."""
    nd = len(v.shape) + 1
    axis %= nd
    return Array(v.ptr, v.dtype, v.shape[:axis] + (1,) + v.shape[axis:],
                 v.strides[:axis] + (0,) + v.strides[axis:], owner=v.owner)


def _squeeze(v, axis):
    axis %= len(v.shape)
    return Array(v.ptr, v.dtype, v.shape[:axis] + v.shape[axis + 1:],
                 v.strides[:axis] + v.strides[axis + 1:], owner=v.owner)


def _arr(em, v, dtype):
    v = _as_viewable(em, v)
    if v.dtype != dtype:
        v = em.as_array(Lazy("cast", [v], dtype, v.shape))
    return v


def _reduce_to(em, s, v, shape):
    """Sum `v` over its broadcast batch axes down to `shape`."""
    if tuple(v.shape) == tuple(shape):
        return v
    lead = len(v.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape)
                                      if d == 1 and v.shape[lead + i] != 1)
    if shape == ():
        return em.kern.reduce(em.b, "sum", v, axes, False, v.dtype)
    dest = em.name_buffer(s.target, v.dtype, tuple(shape))
    flat = Array(dest.ptr, v.dtype, [v.shape[d] for d in range(len(v.shape)) if d not in axes])
    em.kern.reduce(em.b, "sum", v, axes, False, v.dtype, dest=flat)
    return Array(dest.ptr, v.dtype, tuple(shape), owner=dest.owner)


def _grad_operand(em, s, g, other, mine_shape, which):
    """Adjoint of one operand of `a @ b`: which == 'a' (other = b) or 'b' (other = a)."""
    out = s.out
    dt = out.dtype
    o_nd = len(other.shape)
    m_nd = len(mine_shape)
    if o_nd == 1 and m_nd == 1:
        return Lazy("multiply", [em.runtime(g), em.runtime(other)], dt, out.shape, calc=dt)
    g = _arr(em, g, dt)
    other = _arr(em, other, dt)
    if which == "a":
        if o_nd == 1:
            g2, o2 = _expand(g, -1), _expand(other, 0)
        else:
            g2, o2 = g, _swap(other)
        if m_nd == 1:
            g2 = _expand(g2, -2)
        r = _product(em, s.target + ".mm", g2, o2, dt)
        if m_nd == 1:
            r = _squeeze(r, -2)
    else:
        if o_nd == 1:
            g2, o2 = _expand(g, -2), _expand(other, -1)
        else:
            g2, o2 = g, _swap(other)
        if m_nd == 1:
            g2 = _expand(g2, -1)
        r = _product(em, s.target + ".mm", o2, g2, dt)
        if m_nd == 1:
            r = _squeeze(r, -1)
    res = _reduce_to(em, s, r, tuple(mine_shape))
    return res


def _shape(v):
    return tuple(getattr(v, "shape", np.shape(v)))


@lowering("matmul_grad_a")
def _matmul_grad_a(em, s, args, kwargs):
    g, bm, a = args
    return _grad_operand(em, s, g, em.runtime(bm), _shape(a), "a")


@lowering("matmul_grad_b")
def _matmul_grad_b(em, s, args, kwargs):
    g, a, bm = args
    return _grad_operand(em, s, g, em.runtime(a), _shape(bm), "b")


def _dot_scalar_case(em, s, g, other, mine):
    dt = s.out.dtype
    prod = Lazy("multiply", [em.runtime(g), em.runtime(other)], dt,
                np.broadcast_shapes(_shape(g), _shape(other)), calc=dt)
    shape = _shape(mine)
    if prod.shape == shape:
        return prod
    prod = em.as_array(prod)
    return _reduce_to(em, s, prod, shape)


def _dot_stack_grad(em, s, g, a_rank, b_rank, which, other):
    """The adjoint of numpy.dot with an operand above 2-D, as an einsum over
    dot's own labels (the matmul-shaped rule assumes matmul's batching)."""
    from .linalg import _einsum
    la, lb, out = dot_labels(a_rank, b_rank)
    spec = f"{out},{lb}->{la}" if which == "a" else f"{la},{out}->{lb}"
    ops = [g, other] if which == "a" else [other, g]
    return _einsum(em, s, [spec] + [em.runtime(v) for v in ops], {})


def _dot_grad(em, s, g, other, mine, which):
    a_rank, b_rank = (len(_shape(mine)), len(_shape(other))) if which == "a" else \
        (len(_shape(other)), len(_shape(mine)))
    if a_rank == 0 or b_rank == 0:
        return _dot_scalar_case(em, s, g, other, mine)
    if a_rank > 2 or b_rank > 2:
        return _dot_stack_grad(em, s, g, a_rank, b_rank, which, other)
    return _grad_operand(em, s, g, em.runtime(other), _shape(mine), which)


@lowering("dot_grad_a")
def _dot_grad_a(em, s, args, kwargs):
    g, bm, a = args
    return _dot_grad(em, s, g, bm, a, "a")


@lowering("dot_grad_b")
def _dot_grad_b(em, s, args, kwargs):
    g, a, bm = args
    return _dot_grad(em, s, g, a, bm, "b")


# -------------------------------------------------------------- more views

@lowering("split_like")
def _split_like(em, s, args, kwargs):
    g, arrays = args[0], args[1]
    axis = kwargs.get("axis", args[2] if len(args) > 2 else 0)
    g = _as_viewable(em, g)
    outs = []
    if axis is None:
        g = em.contiguous(g)
        start = 0
        for a in s.out:
            n = size_of(a.shape)
            flat = Array(g.ptr, g.dtype, (size_of(g.shape),), owner=g.owner)
            view = _index_view(em, flat, [slice(start, start + n)])
            outs.append(Array(view.ptr, g.dtype, a.shape, owner=g.owner))
            start += n
        return outs
    axis %= len(g.shape)
    start = 0
    for a in s.out:
        n = a.shape[axis]
        outs.append(_index_view(em, g, [slice(None)] * axis + [slice(start, start + n)]))
        start += n
    return outs


@lowering("flip")
def _flip(em, s, args, kwargs):
    x = _as_viewable(em, args[0])
    axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
    axes = _axes(axis, len(x.shape))
    index = [slice(None, None, -1) if d in axes else slice(None) for d in range(len(x.shape))]
    return _index_view(em, x, index)


def _diag_view(em, x, offset, axis1, axis2):
    nd = len(x.shape)
    a1, a2 = axis1 % nd, axis2 % nd
    n1, n2 = x.shape[a1], x.shape[a2]
    if offset >= 0:
        length, start = max(0, min(n1, n2 - offset)), offset * x.strides[a2]
    else:
        length, start = max(0, min(n1 + offset, n2)), -offset * x.strides[a1]
    rest = [d for d in range(nd) if d not in (a1, a2)]
    b = em.b
    ptr = b.bitcast(elem_ptr(b, x, ir.Constant(I64, start if length else 0)), x.ptr.type)
    return Array(ptr, x.dtype, [x.shape[d] for d in rest] + [length],
                 [x.strides[d] for d in rest] + [x.strides[a1] + x.strides[a2]],
                 owner=x.owner)


def _diag_params(args, kwargs, first):
    vals = list(args[first:]) + [None] * 3
    offset = kwargs.get("offset", vals[0] if vals[0] is not None else 0)
    axis1 = kwargs.get("axis1", vals[1] if vals[1] is not None else 0)
    axis2 = kwargs.get("axis2", vals[2] if vals[2] is not None else 1)
    return int(offset), int(axis1), int(axis2)


@lowering("diagonal")
def _diagonal(em, s, args, kwargs):
    x = _as_viewable(em, args[0])
    return _diag_view(em, x, *_diag_params(args, kwargs, 1))


@lowering("diagonal_adjoint")
def _diagonal_adjoint(em, s, args, kwargs):
    out = s.out
    dest = em.name_buffer(s.target, out.dtype, out.shape)
    em.kern.assign(em.b, dest, 0)
    view = _diag_view(em, dest, *_diag_params(args, kwargs, 2))
    em.kern.assign(em.b, view, em.runtime(args[0]))
    return dest


# ---------------------------------------------------------------- creation

@lowering("tri")
def _tri(em, s, args, kwargs):
    out = s.out
    n, m = out.shape
    vals = list(args) + [None] * 3
    k = kwargs.get("k", vals[2] if vals[2] is not None else 0) or 0
    dest = em.name_buffer(s.target, out.dtype, out.shape)
    b = em.b
    with loop_nest(b, (n, m), name="tri") as (i, j):
        below = b.icmp_signed("<=", j, b.add(i, ir.Constant(I64, int(k))))
        v = cast(b, below, np.bool_, out.dtype)
        store_mem(b, dest, b.add(b.mul(i, ir.Constant(I64, m)), j), v)
    return dest


@lowering("linspace")
def _linspace(em, s, args, kwargs):
    """numpy.linspace with scalar or array endpoints, any axis, retstep:
    start + i * step along the new axis, the last sample exactly `stop`
    (with endpoint), floored for an integer dtype, as NumPy computes it."""
    names = ["start", "stop", "num", "endpoint", "retstep", "dtype", "axis"]
    p = dict(zip(names, args))
    p.update(kwargs)
    out = s.out
    retstep = bool(p.get("retstep"))
    samples = out[0] if retstep else out
    endpoint = True if p.get("endpoint") is None else bool(p.get("endpoint"))
    nd = len(samples.shape)
    axis = (p.get("axis") or 0) % max(nd, 1)
    num = samples.shape[axis] if nd else 1
    rest = tuple(n for d, n in enumerate(samples.shape) if d != axis)
    b = em.b
    f64 = np.dtype(np.float64)
    ends = [em.runtime(p[k]) for k in ("start", "stop")]
    ends = [Array(*_broadcast_view(em.as_array(v), rest)) if not isinstance(v, Scalar)
            else v for v in ends]
    div = float(max((num - 1) if endpoint else num, 1))
    dest = em.name_buffer(s.target, samples.dtype, samples.shape)
    steps = em.buffer(None, f64, rest) if retstep and rest else None
    with loop_nest(b, samples.shape, name="ls") as idx:
        i = idx[axis] if nd else ir.Constant(I64, 0)
        ridx = [x for d, x in enumerate(idx) if d != axis]
        lo, hi = [cast(b, v.value, v.dtype, f64) if isinstance(v, Scalar) else
                  cast(b, load_mem(b, v, offset_of(b, v, ridx, rest)), v.dtype, f64)
                  for v in ends]
        step = b.fdiv(b.fsub(hi, lo), ir.Constant(lo.type, div))
        v = b.fadd(lo, b.fmul(cast(b, i, np.int64, f64), step))
        if endpoint and num > 1:
            v = b.select(b.icmp_signed("==", i, ir.Constant(I64, num - 1)), hi, v)
        if samples.dtype.kind in "iu":
            v = b.call(em.math.scalar("floor", f64, 1), [v])
        store_mem(b, dest, offset_of(b, dest, idx, samples.shape), cast(b, v, f64, samples.dtype))
        if steps is not None:
            store_mem(b, steps, offset_of(b, steps, ridx, rest), step)
    if not retstep:
        return dest
    if steps is not None:
        return (dest, steps)
    lo, hi = [cast(b, v.value, v.dtype, f64) if isinstance(v, Scalar) else
              cast(b, load_mem(b, v, ir.Constant(I64, 0)), v.dtype, f64) for v in ends]
    return (dest, Scalar(b.fdiv(b.fsub(hi, lo), ir.Constant(lo.type, div)), f64))


def _broadcast_view(a, shape):
    """(ptr, dtype, shape, strides) of `a` broadcast to `shape`."""
    k = len(shape) - len(a.shape)
    strides = [0] * k + [0 if n == 1 and m != 1 else st
                         for n, m, st in zip(a.shape, shape[k:], a.strides)]
    return a.ptr, a.dtype, tuple(shape), strides


register()


@lowering("assemble_adjoint")
def _assemble_adjoint(em, s, args, kwargs):
    """The adjoint of `x` from the adjoints of its parts `x[path]`."""
    x, paths, adjoints = args[0], args[1], args[2:]
    out = s.out
    if isinstance(x, (tuple, list, dict)) and all(len(p) == 1 for p in paths):
        keyed = isinstance(x, dict)
        given = {}
        for (k,), g in zip(paths, adjoints):
            if g is None:
                continue
            if isinstance(k, Scalar):
                raise MissingRuleError("assemble_adjoint", "llvm",
                                       "a container indexed by a run-time value")
            if not keyed:
                k = int(k) % len(x)
            given[k] = g if k not in given else _add_trees(em, given[k], g, out[k])
        keys = list(x) if keyed else range(len(x))
        parts = {k: given[k] if k in given else zeros_of(em, out[k], f"{s.target}.{k}")
                 for k in keys}
        if keyed:
            return parts
        return type(out)(parts[k] for k in keys)
    if isinstance(x, (tuple, list, dict)):
        raise MissingRuleError("assemble_adjoint", "llvm", "nested container paths")
    if out.shape == ():
        total = None
        for g in adjoints:
            if g is not None:
                v = em.scalar(g, out.dtype)
                total = v if total is None else Scalar(em.b.fadd(total.value, v.value)
                                                       if out.dtype.kind == "f" else
                                                       em.b.add(total.value, v.value), out.dtype)
        return total if total is not None else Scalar(const(out.dtype, 0), out.dtype)
    dest = em.name_buffer(s.target, out.dtype, out.shape)
    em.kern.assign(em.b, dest, 0)
    for path, g in zip(paths, adjoints):
        if g is None:
            continue
        path = list(path)
        if _is_advanced(path):
            _scatter_add(em, dest, path, g)
            continue
        view = _index_view(em, dest, path)
        gv = em.runtime(g)
        if view.shape == ():
            old = load_mem(em.b, view, ir.Constant(I64, 0))
            v = em.scalar(gv, out.dtype).value
            store_mem(em.b, view, ir.Constant(I64, 0),
                      em.b.fadd(old, v) if out.dtype.kind == "f" else em.b.add(old, v))
        else:
            em.kern.assign(em.b, view, Lazy("add", [view, gv], out.dtype, view.shape,
                                            calc=out.dtype))
    return dest


def _add_trees(em, a, b, aval):
    from .lowerings import LOWERINGS as _L

    class _S:
        out = aval
    return _L["add_any"](em, _S, [a, b], {})


register()
