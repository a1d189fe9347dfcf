"""Sorting, diagonals, gathers along an axis and their adjoints, for XLA
(part of the one table in lowerings.py).

Owns the lowerings of `sort`, `argsort`, `diagonal`, `diagonal_adjoint`,
`take_along_axis` (+ adjoint), `take_adjoint`, `split_like`, `unstack_like`
and `linspace`.  Gathers go through lowerings._gather (checked indices);
adjoints scatter-add at the positions the same gather reads.  Must not
walk programs.
"""

import numpy as np

from ...errors import MissingRuleError
from ..abstract import ShapedArray
from .emit import SV, tensor_type
from .lowerings import lowering
from .indexing import _gather, _scatter


def _scalar_type(dtype):
    return tensor_type((), dtype)


def _sort(em, operands, axis, n_keys=1):
    """stablehlo.sort of `operands` along `axis`, ordered by the first
    (NaN last, as NumPy), stable."""
    x = operands[0]
    args = []
    for k, o in enumerate(operands):
        args += [f"%s{k}a: {_scalar_type(o.dtype)}", f"%s{k}b: {_scalar_type(o.dtype)}"]
    name = em.fresh("sort")
    types = ", ".join(o.type for o in operands)
    em.line(f'{name}:{len(operands)} = "stablehlo.sort"({", ".join(o.name for o in operands)}) ({{')
    em.line(f"  ^bb0({', '.join(args)}):")
    kind = "TOTALORDER" if x.dtype.kind == "f" else (
        "UNSIGNED" if x.dtype.kind in "bu" else "SIGNED")
    em.line(f"    %lt = stablehlo.compare LT, %s0a, %s0b, {kind} : "
            f"({_scalar_type(x.dtype)}, {_scalar_type(x.dtype)}) -> tensor<i1>")
    em.line("    stablehlo.return %lt : tensor<i1>")
    em.line(f"}}) {{dimension = {axis} : i64, is_stable = true}} : ({types}) -> ({types})")
    return [SV(f"{name}#{k}", o.aval) for k, o in enumerate(operands)]


def _sort_args(em, args, kwargs):
    x = em.rt(args[0])
    axis = kwargs.get("axis", args[1] if len(args) > 1 else -1)
    if axis is None:
        x = em.reshape(x, (int(np.prod(x.shape)),))
        axis = 0
    return x, int(axis) % max(1, len(x.shape))


@lowering("sort")
def _sort_rule(em, s, args, kwargs):
    x, axis = _sort_args(em, args, kwargs)
    if x.dtype.kind == "f":
        # TOTALORDER puts -0.0 before 0.0 and -NaN first; NumPy keeps NaN last
        x = em.select(em.compare("NE", x, x), em.const(np.nan, x.dtype, x.shape), x)
    return _sort(em, [x], axis)[0]


@lowering("argsort")
def _argsort(em, s, args, kwargs):
    x, axis = _sort_args(em, args, kwargs)
    if x.dtype.kind == "f":
        x = em.select(em.compare("NE", x, x), em.const(np.nan, x.dtype, x.shape), x)
    return _sort(em, [x, em.iota(x.shape, axis)], axis)[1]


def _diag_index(shape, offset, axis1, axis2):
    n = len(shape)
    a1, a2 = axis1 % n, axis2 % n
    perm = [k for k in range(n) if k not in (a1, a2)] + [a1, a2]
    rows, cols = shape[a1], shape[a2]
    if offset >= 0:
        k = max(0, min(rows, cols - offset))
        r = np.arange(k)
        c = r + offset
    else:
        k = max(0, min(rows + offset, cols))
        c = np.arange(k)
        r = c - offset
    return perm, r, c


def _diagonal_of(em, x, offset, axis1, axis2):
    perm, r, c = _diag_index(x.shape, offset, axis1, axis2)
    y = em.transpose(x, perm)
    if len(r) == 0:
        return em.const(0, x.dtype, y.shape[:-2] + (0,))
    return _gather(em, y, [slice(None)] * (len(y.shape) - 2) + [r, c])


def _diag_params(args, kwargs):
    names = ("offset", "axis1", "axis2")
    vals = [0, 0, 1]
    for k, n in enumerate(names):
        if len(args) > k + 1:
            vals[k] = args[k + 1]
        vals[k] = kwargs.get(n, vals[k])
    return [int(v) for v in vals]


@lowering("diagonal")
def _diagonal(em, s, args, kwargs):
    return _diagonal_of(em, em.rt(args[0]), *_diag_params(args, kwargs))


def _iota_like(em, shape):
    size = int(np.prod(shape))
    return em.reshape(em.iota((size,), 0), shape)


@lowering("diagonal_adjoint")
def _diagonal_adjoint(em, s, args, kwargs):
    out = s.out
    params = _diag_params(args[1:], kwargs)
    pos = _diagonal_of(em, _iota_like(em, out.shape), *params)
    return _scatter(em, em.const(0, out.dtype, out.shape), pos, em.rt(args[0], out.dtype), "set")


def _along_index(shape, indices_shape, axis):
    n = len(shape)
    ax = axis % n
    grids = np.indices(indices_shape, sparse=True)
    return ax, [None if i == ax else grids[i] for i in range(n)]


def _take_along(em, x, ind, axis):
    ax, parts = _along_index(x.shape, ind.shape if isinstance(ind, SV) else np.shape(ind),
                             axis)
    parts[ax] = ind
    return _gather(em, x, parts)


def _axis_arg(args, kwargs, k, default):
    return kwargs.get("axis", args[k] if len(args) > k else default)


@lowering("take_along_axis")
def _take_along_axis(em, s, args, kwargs):
    axis = _axis_arg(args, kwargs, 2, -1)
    x = em.rt(args[0])
    if axis is None:
        x = em.reshape(x, (int(np.prod(x.shape)),))
        axis = 0
    return _take_along(em, x, args[1], int(axis))


@lowering("take_along_axis_adjoint")
def _take_along_axis_adjoint(em, s, args, kwargs):
    out = s.out
    axis = int(_axis_arg(args, kwargs, 3, -1))
    pos = _take_along(em, _iota_like(em, out.shape), args[2], axis)
    return _scatter(em, em.const(0, out.dtype, out.shape), pos, em.rt(args[0], out.dtype), "add")


@lowering("take_adjoint")
def _take_adjoint(em, s, args, kwargs):
    out = s.out
    axis = _axis_arg(args, kwargs, 3, None)
    flat = _iota_like(em, out.shape)
    if axis is None:
        flat = em.reshape(flat, (int(np.prod(out.shape)),))
        axis = 0
    axis = int(axis) % len(flat.shape)
    ind = np.asarray(args[2]) if isinstance(args[2], (tuple, list)) else args[2]
    pos = _gather(em, flat, [slice(None)] * axis + [ind])
    return _scatter(em, em.const(0, out.dtype, out.shape), pos, em.rt(args[0], out.dtype), "add")


@lowering("split_like")
def _split_like(em, s, args, kwargs):
    g = em.rt(args[0])
    arrays = args[1]
    axis = kwargs.get("axis", args[2] if len(args) > 2 else 0)
    outs = []
    if axis is None:
        flat = em.reshape(g, (int(np.prod(g.shape)),))
        start = 0
        for a in arrays:
            shp = a.shape if isinstance(a, SV) else np.shape(a)
            n = int(np.prod(shp))
            outs.append(em.reshape(em.slice(flat, [start], [start + n], [1]), shp))
            start += n
        return outs
    ax = int(axis) % len(g.shape)
    start = 0
    for a in arrays:
        shp = a.shape if isinstance(a, SV) else np.shape(a)
        lo = [0] * len(g.shape)
        hi = list(g.shape)
        lo[ax], hi[ax] = start, start + shp[ax]
        outs.append(em.slice(g, lo, hi, [1] * len(g.shape)))
        start += shp[ax]
    return outs


@lowering("unstack_like")
def _unstack_like(em, s, args, kwargs):
    g = em.rt(args[0])

    def cut(v, obj):
        if isinstance(obj, (list, tuple)):
            return type(obj)(cut(_gather(em, v, [i]), o) for i, o in enumerate(obj))
        return em.reshape(v, obj.shape if isinstance(obj, SV) else np.shape(obj))
    return cut(g, args[1])


@lowering("linspace")
def _linspace(em, s, args, kwargs):
    names = ("start", "stop", "num", "endpoint", "retstep", "dtype", "axis")
    vals = dict(zip(names, [None, None, 50, True, False, None, 0]))
    vals.update(zip(names, args))
    vals.update(kwargs)
    out = s.out
    if vals["retstep"] or int(vals["axis"]) != 0 or not isinstance(out, ShapedArray) or \
            len(out.shape) != 1:
        raise MissingRuleError("linspace", "xla", "only 1-d linspace without retstep is "
                               "lowered for xla")
    num = int(vals["num"])
    calc = np.dtype(np.float64) if out.dtype.kind != "c" else out.dtype
    start, stop = em.rt(vals["start"], calc), em.rt(vals["stop"], calc)
    if start.shape != () or stop.shape != ():
        raise MissingRuleError("linspace", "xla", "array endpoints are not lowered for xla")
    div = (num - 1) if vals["endpoint"] else num
    i = em.convert(em.iota((num,), 0), calc)
    if div > 0:
        step = em.binary("stablehlo.divide", em.binary("stablehlo.subtract", stop, start),
                         em.const(div, calc))
        y = em.binary("stablehlo.add", em.binary("stablehlo.multiply", i, step), start)
    else:
        y = em.binary("stablehlo.add", em.binary("stablehlo.multiply", i,
                                                 em.binary("stablehlo.subtract", stop, start)),
                      start)
    if vals["endpoint"] and num > 1:
        last = em.compare("EQ", em.iota((num,), 0), em.const(num - 1, np.int64))
        y = em.select(last, em.bcast(stop, (num,)), y)
    if out.dtype.kind in "iu":
        y = em.unary("stablehlo.floor", y)
    return em.convert(y, out.dtype)
