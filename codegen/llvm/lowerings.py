"""Per-primitive lowerings of the LLVM backend.

Owns `LOWERINGS` (primitive name -> `rule(em, stmt, args, kwargs)` returning
a run-time value: `Lazy` for elementwise ops, which the emitter fuses or
materializes; views (`Array` with new strides) for transpose, broadcast,
reshape and basic indexing; filled buffers for everything else) and
the no-rule declarations of primitives it deliberately cannot lower (with
the reason, in the table).
Registering puts each rule in `PRIMITIVES[name].lowerings["llvm"]`, so a
sweep over the table finds what is missing.  Must not walk programs.
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError, ShapeError
from ...runtime.table import PRIMITIVES, declare_no_rule
from ...runtime.reverse_support import dot_labels  # noqa: F401  (reverse uses it too)
from ..abstract import ShapedArray
from .kernels import loop, store_mem, load_mem
from .values import (I64, Array, Lazy, Scalar, ELEMENTWISE, c_strides, calc_dtype, cast,
                          const, size_of, aval_of)

LOWERINGS = {}

# What this backend deliberately cannot lower is declared in the table
# (`declare_no_rule`), so the reason reaches the user's MissingRuleError and
# the primitive sweep sees it; nothing else is exempt.
_NO_LLVM = {
    "nonzero": "its output shape depends on the input's values; call np.nonzero outside "
               "jit, or use np.where(mask, x, 0) with a static shape",
    "is_": "identity of run-time values is not defined in compiled code; compare values "
           "with == or test `is None` on a static argument",
    "is_not": "identity of run-time values is not defined in compiled code; compare "
              "values with != or test `is not None` on a static argument",
}
for _name, _why in _NO_LLVM.items():
    declare_no_rule(_name, "llvm", _why)


def lowering(*names):
    def reg(fn):
        for n in names:
            LOWERINGS[n] = fn
        return fn
    return reg


def _aval(v):
    if isinstance(v, (Scalar, Array, Lazy)):
        return v.aval
    return v


# ------------------------------------------------------------- elementwise

def _elementwise(em, s, args, kwargs):
    out = s.out
    children = [a if isinstance(a, (bool, int, float)) else em.runtime(a) for a in args]
    in_avals = [_aval_arg(a) for a in s.args]
    calc = calc_dtype(s.prim, in_avals, out.dtype)
    params = {}
    if s.prim == "power" and not isinstance(args[1], (Scalar, Array, Lazy)) and \
            np.ndim(args[1]) == 0 and calc.kind == "f":
        params["static_exponent"] = float(args[1])
    if s.prim == "round":
        params["decimals"] = kwargs.get("decimals", args[1] if len(args) > 1 else 0)
        children = children[:1]
    return Lazy(s.prim, children, out.dtype, out.shape, params, calc)


def _aval_arg(a):
    return a.aval


for _name in ELEMENTWISE:
    LOWERINGS[_name] = _elementwise


@lowering("astype")
def _astype(em, s, args, kwargs):
    return Lazy("cast", [em.runtime(args[0])], s.out.dtype, s.out.shape)


@lowering("copy")
def _copy(em, s, args, kwargs):
    v = em.runtime(args[0])
    buf = em.result_buffer(s, s.out)
    em.kern.assign(em.b, buf, v)
    return buf


@lowering("grad_seed")
def _grad_seed(em, s, args, kwargs):
    out = s.out
    if not isinstance(out, ShapedArray):
        # a static output (a loop that ran zero times left `s = 0.0`): the
        # eager check decides, and its seed is a static 1.0
        from ...runtime.reverse_support import _grad_seed as check
        return check(out, *(a for a in args[1:2] if isinstance(a, str)))
    if out.shape != () or out.dtype.kind != "f":
        raise MissingRuleError("grad_seed", "llvm", "grad of a function whose output is not "
                               "a float scalar")
    return Scalar(const(out.dtype, 1.0), out.dtype, out.weak_type)


@lowering("stop_gradient")
def _identity(em, s, args, kwargs):
    return args[0]


@lowering("to_float", "to_int")
def _to_scalar(em, s, args, kwargs):
    return em.scalar(args[0], s.out.dtype)


# ---------------------------------------------------------------- views

def _as_viewable(em, v):
    v = em.runtime(v)
    if isinstance(v, Lazy):
        return em.as_array(v)
    if isinstance(v, Scalar):
        return em.as_array(v)
    return v


@lowering("reshape")
def _reshape(em, s, args, kwargs):
    v = _as_viewable(em, args[0])
    if not v.contiguous:
        v = em.contiguous(v)
    return Array(v.ptr, v.dtype, s.out.shape, owner=v.owner)


@lowering("transpose")
def _transpose(em, s, args, kwargs):
    v = _as_viewable(em, args[0])
    axes = kwargs.get("axes", args[1] if len(args) > 1 else None)
    nd = len(v.shape)
    axes = tuple(reversed(range(nd))) if axes is None else tuple(a % nd for a in axes)
    return Array(v.ptr, v.dtype, [v.shape[a] for a in axes], [v.strides[a] for a in axes],
                 owner=v.owner)


@lowering("broadcast_to")
def _broadcast_to(em, s, args, kwargs):
    v = em.runtime(args[0])
    shape = s.out.shape
    if isinstance(v, Array):
        k = len(shape) - len(v.shape)
        strides = [0] * k + [0 if n == 1 and shape[k + d] != 1 else st
                             for d, (n, st) in enumerate(zip(v.shape, v.strides))]
        return Array(v.ptr, v.dtype, shape, strides, owner=v.owner)
    return Lazy("positive", [v], v.dtype, shape, calc=v.dtype)


def splat_index(index):
    """The index parts of getitem/setitem's arguments: `x[t]` with `t` a
    tuple (computed at compile time, e.g. split's pieces) indexes with its
    parts, as NumPy does."""
    index = tuple(index)
    if len(index) == 1 and isinstance(index[0], tuple):
        return index[0]
    return index


def _index_view(em, arr, index):
    """(Array view, or Scalar) of basic indexing `arr[index]`."""
    b = em.b
    parts = list(index)
    for p in parts:
        if not (p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer, Scalar))):
            raise MissingRuleError("getitem", "llvm", "an index array where only basic "
                                   "indexing (a view) is compiled; boolean masks computed at "
                                   "run time give value-dependent shapes, which cannot be "
                                   "compiled")
    n_real = sum(1 for p in parts if p is not None and p is not Ellipsis)
    if any(p is Ellipsis for p in parts):
        k = [i for i, p in enumerate(parts) if p is Ellipsis][0]
        parts[k:k + 1] = [slice(None)] * (len(arr.shape) - n_real)
    parts += [slice(None)] * (len(arr.shape) - sum(1 for p in parts if p is not None))
    off = ir.Constant(I64, 0)
    shape, strides = [], []
    d = 0
    for p in parts:
        if p is None:
            shape.append(1)
            strides.append(0)
            continue
        n, st = arr.shape[d], arr.strides[d]
        if isinstance(p, slice):
            start, stop, step = p.indices(n)
            shape.append(len(range(start, stop, step)))
            strides.append(st * step)
            off = b.add(off, ir.Constant(I64, start * st))
        elif isinstance(p, (int, np.integer)) and not isinstance(p, bool):
            i = int(p)
            if not -n <= i < n:
                raise ShapeError(f"index {i} is out of bounds for axis {d} with size {n}")
            off = b.add(off, ir.Constant(I64, (i % n) * st))
        elif isinstance(p, Scalar) and p.dtype.kind in "iu":
            i = cast(b, p.value, p.dtype, np.int64)
            i = b.select(b.icmp_signed("<", i, ir.Constant(I64, 0)),
                         b.add(i, ir.Constant(I64, n)), i)
            bad = b.icmp_unsigned(">=", i, ir.Constant(I64, n))
            em.fail_if(bad, 2, f"index out of bounds for axis {d} with size {n}")
            off = b.add(off, b.mul(i, ir.Constant(I64, st)))
        else:
            raise MissingRuleError("getitem", "llvm",
                                   f"index {p!r} (advanced or boolean indexing) is not "
                                   "supported under jit; value-dependent shapes cannot be "
                                   "compiled")
        d += 1
    from .kernels import elem_ptr
    ptr = b.bitcast(elem_ptr(b, arr, off), arr.ptr.type)
    view = Array(ptr, arr.dtype, shape, strides, owner=arr.owner)
    return view


@lowering("getitem")
def _getitem(em, s, args, kwargs):
    x = args[0]
    index = args[1:]
    if isinstance(x, (tuple, list, dict)):
        if len(index) != 1:
            raise MissingRuleError("getitem", "llvm", "container indexed with several keys")
        k = index[0]
        if isinstance(k, slice):
            return x[k]
        if isinstance(k, Scalar):
            raise MissingRuleError("getitem", "llvm", "a list indexed by a run-time value")
        return x[k]
    index = splat_index(index)
    v = _as_viewable(em, x)
    from .reverse import _is_advanced
    if _is_advanced(index):
        from .gathers import advanced_getitem
        return advanced_getitem(em, s, v, index)
    view = _index_view(em, v, index)
    if s.out.shape == ():
        return Scalar(load_mem(em.b, view, ir.Constant(I64, 0)), view.dtype)
    return view


@lowering("getattr_leaf")
def _getattr_leaf(em, s, args, kwargs):
    # a pytree node is a tuple here (tree_util.node_aval); its aval knows
    # which child the field is
    from ...tree_util import field_index
    return args[0][field_index(s.args[0].aval, args[1])]


@lowering("setitem")
def _setitem(em, s, args, kwargs):
    b = em.b
    x, value, index = args[0], args[1], splat_index(args[2:])
    src = em.runtime(x)
    dest = em.name_buffer(s.target, s.out.dtype, s.out.shape)
    same = isinstance(src, Array) and src.owner == dest.owner and dest.owner is not None
    if not same:
        if isinstance(src, Array) and src.contiguous and src.dtype == dest.dtype:
            # copy unless src already is the target's buffer (a loop's
            # previous value): writing in place is then NumPy's semantics
            differ = b.icmp_unsigned("!=", b.ptrtoint(src.ptr, I64), b.ptrtoint(dest.ptr, I64))
            with b.if_then(differ):
                em.copy_into(dest, src)
        else:
            em.kern.assign(b, dest, src)
    v = em.runtime(value) if not isinstance(value, (bool, int, float)) else value
    if isinstance(v, Array) and v.owner == dest.owner and dest.owner is not None:
        v = em.as_array(Lazy("positive", [v], v.dtype, v.shape, calc=v.dtype))
    from .reverse import _is_advanced
    if _is_advanced(index):
        from .gathers import advanced_setitem
        return advanced_setitem(em, dest, index, v)
    view = _index_view(em, dest, index)
    if view.shape == ():
        s_val = em.scalar(v, dest.dtype) if not isinstance(v, (bool, int, float)) else \
            Scalar(const(dest.dtype, v), dest.dtype)
        store_mem(b, view, ir.Constant(I64, 0), s_val.value)
    else:
        em.kern.assign(b, view, v)
    return dest


@lowering("make_slice")
def _make_slice(em, s, args, kwargs):
    raise MissingRuleError("make_slice", "llvm", "slice bounds computed at run time give "
                           "value-dependent shapes; use static bounds under jit")


# ------------------------------------------------------------ containers

@lowering("make_tuple")
def _make_tuple(em, s, args, kwargs):
    return tuple(_captured(em, a, v) for a, v in zip(s.args, args))


@lowering("make_list")
def _make_list(em, s, args, kwargs):
    return [_captured(em, a, v) for a, v in zip(s.args, args)]


@lowering("make_dict")
def _make_dict(em, s, args, kwargs):
    return dict(zip(kwargs["keys"], [_captured(em, a, v) for a, v in zip(s.args, args)]))


@lowering("to_tuple", "to_list")
def _to_sequence(em, s, args, kwargs):
    """tuple(x) / list(x): an array's rows as views (scalars for a 1-D
    array), copied when x's buffer is reused later."""
    x = args[0]
    if isinstance(x, (tuple, list)):
        items = [_captured(em, s.args[0], v) for v in x]
    else:
        x = _as_viewable(em, em.runtime(x))
        items = [_captured(em, s.args[0], _index_view(em, x, (i,))) for i in range(x.shape[0])]
    return tuple(items) if s.prim == "to_tuple" else items


@lowering("list_append")
def _list_append(em, s, args, kwargs):
    return list(args[0]) + [_captured(em, s.args[1], args[1])]


def _captured(em, arg, v):
    """A value stored in a container must not change when its name's buffer
    is reused: copy arrays of names assigned more than once."""
    if isinstance(v, Lazy):
        return em.as_array(v)
    if isinstance(v, Array) and arg.name and arg.name not in em.plan.stable:
        buf = em.buffer(None, v.dtype, v.shape)
        em.kern.assign(em.b, buf, v)
        return buf
    return v


@lowering("add_any")
def _add_any(em, s, args, kwargs):
    def add(a, b, aval):
        if a is None:
            return b
        if b is None:
            return a
        if isinstance(a, (tuple, list)):
            return type(a)(add(x, y, av) for x, y, av in zip(a, b, aval))
        if isinstance(a, dict):
            return {k: add(a[k], b[k], aval[k]) for k in a}
        node = Lazy("add", [em.runtime(a), em.runtime(b)], aval.dtype, aval.shape,
                    calc=aval.dtype)
        if aval.shape == ():
            return em.bind(None, node, aval)
        buf = em.buffer(None, aval.dtype, aval.shape)
        em.kern.assign(em.b, buf, node)
        return buf
    return add(args[0], args[1], s.out)


# ------------------------------------------------------------ reductions

def _axes(axis, nd):
    if nd == 0:
        return ()   # NumPy reduces a 0-d value over axis 0 / -1 to itself
    if axis is None:
        return tuple(range(nd))
    if isinstance(axis, (tuple, list)):
        return tuple(sorted(a % nd for a in axis))
    return (axis % nd,)


#: NumPy's messages for reductions of zero elements that have no identity
_NO_IDENTITY = {
    "max": "zero-size array to reduction operation maximum which has no identity",
    "min": "zero-size array to reduction operation minimum which has no identity",
    "argmax": "attempt to get argmax of an empty sequence",
    "argmin": "attempt to get argmin of an empty sequence",
}


def _reduce_rule(kind):
    def rule(em, s, args, kwargs):
        x = em.runtime(args[0])
        axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
        keepdims = kwargs.get("keepdims", args[2] if len(args) > 2 else False)
        nd = len(x.shape)
        axes = _axes(axis, nd)
        out = s.out
        if isinstance(x, Scalar) or nd == 0:
            return em.bind(None, Lazy("cast", [x], out.dtype, (), calc=out.dtype), out)
        if kind in _NO_IDENTITY and kwargs.get("initial") is None and \
                size_of([x.shape[d] for d in axes]) == 0:
            # shapes are static, so whether this reduction is empty is known
            # now; it still fails only when run, as NumPy does (it may sit
            # in a branch that is not taken).  ShapeError is a ValueError.
            em.fail_if(ir.Constant(ir.IntType(1), 1), 1, _NO_IDENTITY[kind])
        if out.shape == () or size_of(out.shape) == 1 and not keepdims and out.shape == ():
            return em.kern.reduce(em.b, kind, x, axes, keepdims, out.dtype)
        dest = em.result_buffer(s, out)
        flat = Array(dest.ptr, out.dtype, [x.shape[d] for d in range(nd) if d not in axes],
                     owner=dest.owner)
        if size_of(flat.shape) == 1 and len(axes) == nd:
            r = em.kern.reduce(em.b, kind, x, axes, keepdims, out.dtype)
            store_mem(em.b, dest, ir.Constant(I64, 0), r.value)
        else:
            em.kern.reduce(em.b, kind, x, axes, keepdims, out.dtype, dest=flat)
        return Array(dest.ptr, out.dtype, out.shape, owner=dest.owner)
    return rule


for _k in ("sum", "prod", "max", "min", "any", "all", "argmax", "argmin"):
    LOWERINGS[_k] = _reduce_rule(_k)


def _cumulative(kind):
    def rule(em, s, args, kwargs):
        x = em.runtime(args[0])
        axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
        if axis is None:
            x = em.contiguous(x)
            x = Array(x.ptr, x.dtype, (size_of(x.shape),))
            axis = 0
        dest = em.result_buffer(s, s.out)
        return em.kern.cumulative(em.b, kind, x, axis % len(x.shape), dest)
    return rule


LOWERINGS["cumsum"] = _cumulative("cumsum")
LOWERINGS["cumprod"] = _cumulative("cumprod")


@lowering("unbroadcast")
def _unbroadcast(em, s, args, kwargs):
    g, x = em.runtime(args[0]), args[1]
    target = s.out
    gshape = g.shape
    k = len(gshape) - len(target.shape)
    axes = tuple(range(k)) + tuple(k + d for d, n in enumerate(target.shape)
                                   if n == 1 and gshape[k + d] != 1)
    if not axes:
        return g
    if target.shape == ():
        return em.kern.reduce(em.b, "sum", g, axes, False, target.dtype)
    dest = em.result_buffer(s, target)
    flat = Array(dest.ptr, target.dtype, [gshape[d] for d in range(len(gshape)) if d not in axes])
    em.kern.reduce(em.b, "sum", g, axes, False, target.dtype, dest=flat)
    return Array(dest.ptr, target.dtype, target.shape, owner=dest.owner)


@lowering("expand_reduced")
def _expand_reduced(em, s, args, kwargs):
    g = em.runtime(args[0])
    shape = s.out.shape
    axis = kwargs.get("axis", args[2] if len(args) > 2 else None)
    keepdims = kwargs.get("keepdims", args[3] if len(args) > 3 else False)
    axes = _axes(axis, len(shape))
    kshape = tuple(1 if d in axes else n for d, n in enumerate(shape))
    if isinstance(g, Scalar):
        return Lazy("positive", [g], g.dtype, shape, calc=g.dtype)
    if not keepdims:
        g = _as_viewable(em, g)
        g = em.contiguous(g)
        g = Array(g.ptr, g.dtype, kshape)
    elif isinstance(g, Lazy):
        g = em.as_array(g)
    strides = [0 if n == 1 else st for n, st in zip(g.shape, g.strides)]
    return Array(g.ptr, g.dtype, shape, [0 if kn == 1 and n != 1 else st for kn, n, st in
                                         zip(kshape, shape, strides)], owner=g.owner)


# --------------------------------------------------------------- matmul

@lowering("matmul", "dot")
def _matmul(em, s, args, kwargs):
    a, bm = em.runtime(args[0]), em.runtime(args[1])
    out = s.out
    if isinstance(a, Scalar) or isinstance(bm, Scalar):
        return Lazy("multiply", [a, bm], out.dtype, out.shape, calc=out.dtype)
    a, bm = _as_viewable(em, a), _as_viewable(em, bm)
    if s.prim == "dot" and (len(a.shape) > 2 or len(bm.shape) > 2):
        # dot(a, b)[i.., k.., m] = sum_j a[i.., j] b[k.., j, m]: an einsum
        from .linalg import _einsum
        la, lb, out = dot_labels(len(a.shape), len(bm.shape))
        return _einsum(em, s, [f"{la},{lb}->{out}", a, bm], {})
    a2 = Array(a.ptr, a.dtype, (1,) + a.shape, (0,) + a.strides) if len(a.shape) == 1 else a
    b2 = Array(bm.ptr, bm.dtype, bm.shape + (1,), bm.strides + (0,)) \
        if len(bm.shape) == 1 else bm
    if len(a2.shape) > 2 or len(b2.shape) > 2:
        return _batched_matmul(em, s, a2, b2, out)
    m, n = a2.shape[0], b2.shape[1]
    if out.shape == ():
        dest = em.buffer(None, out.dtype, (1, 1))
    else:
        dest = em.result_buffer(s, out)
    d2 = Array(dest.ptr, out.dtype, (m, n))
    if a2.dtype != out.dtype:
        a2 = em.as_array(Lazy("cast", [a2], out.dtype, a2.shape))
    if b2.dtype != out.dtype:
        b2 = em.as_array(Lazy("cast", [b2], out.dtype, b2.shape))
    em.kern.gemm(em.b, a2, b2, d2, em.blas)
    if out.shape == ():
        return Scalar(load_mem(em.b, d2, ir.Constant(I64, 0)), out.dtype)
    return Array(dest.ptr, out.dtype, out.shape, owner=dest.owner)


def _batched_matmul(em, s, a, bm, out):
    # the stack dims come from the operands: out has dropped the unit
    # matrix dim of a 1-D operand (4,) @ (2, 4, 5) -> (2, 5), so out.shape[:-2]
    # would be () and only the first matrix was computed
    batch = tuple(np.broadcast_shapes(a.shape[:-2], bm.shape[:-2]))
    dest = em.result_buffer(s, out)
    m, n = a.shape[-2], bm.shape[-1]
    nb = len(batch)

    def bstrides(x):
        k = nb - (len(x.shape) - 2)
        return [0] * k + [0 if x.shape[d] == 1 else x.strides[d] for d in range(len(x.shape) - 2)]
    sa, sb = bstrides(a), bstrides(bm)
    b = em.b
    from .kernels import loop_nest, elem_ptr
    with loop_nest(b, batch, name="bt") as idx:
        oa = ob = od = ir.Constant(I64, 0)
        for i, xa, xb, xd in zip(idx, sa, sb, c_strides(batch)):
            oa = b.add(oa, b.mul(i, ir.Constant(I64, xa)))
            ob = b.add(ob, b.mul(i, ir.Constant(I64, xb)))
            od = b.add(od, b.mul(i, ir.Constant(I64, xd * m * n)))
        a2 = Array(b.bitcast(elem_ptr(b, a, oa), a.ptr.type), a.dtype, a.shape[-2:],
                   a.strides[-2:])
        b2 = Array(b.bitcast(elem_ptr(b, bm, ob), bm.ptr.type), bm.dtype, bm.shape[-2:],
                   bm.strides[-2:])
        d2 = Array(b.bitcast(elem_ptr(b, dest, od), dest.ptr.type), out.dtype, (m, n))
        em.kern.gemm(b, a2, b2, d2, em.blas)
    return Array(dest.ptr, out.dtype, out.shape, owner=dest.owner)


# --------------------------------------------------------- shape building

@lowering("concatenate")
def _concatenate(em, s, args, kwargs):
    parts = args[0]
    axis = kwargs.get("axis", args[1] if len(args) > 1 else 0)
    out = s.out
    if axis is None:
        raise MissingRuleError("concatenate", "llvm", "axis=None")
    axis %= len(out.shape)
    dest = em.buffer(None, out.dtype, out.shape)
    start = 0
    for p in parts:
        p = em.runtime(p)
        n = p.shape[axis]
        index = [slice(None)] * axis + [slice(start, start + n)]
        view = _index_view(em, dest, index)
        em.kern.assign(em.b, view, p)
        start += n
    final = em.name_buffer(s.target, out.dtype, out.shape)
    em.copy_into(final, dest)
    return final


@lowering("zeros", "ones", "zeros_like", "ones_like")
def _fill(em, s, args, kwargs):
    dest = em.name_buffer(s.target, s.out.dtype, s.out.shape)
    v = 1 if s.prim.startswith("ones") else 0
    if s.out.shape == ():
        return Scalar(const(s.out.dtype, v), s.out.dtype)
    em.kern.assign(em.b, dest, v)
    return dest


def zeros_of(em, aval, key):
    """Zeros of type `aval` (a container of them for a container), array
    leaves in buffers named after `key`: a cotangent nobody contributed to."""
    if isinstance(aval, (tuple, list)):
        return type(aval)(zeros_of(em, a, f"{key}.{i}") for i, a in enumerate(aval))
    if isinstance(aval, dict):
        return {k: zeros_of(em, a, f"{key}.{k}") for k, a in aval.items()}
    if not isinstance(aval, ShapedArray):
        return aval
    if aval.shape == ():
        return Scalar(const(aval.dtype, 0), aval.dtype, aval.weak_type)
    dest = em.name_buffer(key, aval.dtype, aval.shape)
    em.kern.assign(em.b, dest, 0)
    return dest


@lowering("zero_adjoint")
def _zero_adjoint(em, s, args, kwargs):
    return zeros_of(em, s.out, s.target)


@lowering("getattr_adjoint")
def _getattr_adjoint(em, s, args, kwargs):
    # a node (a tuple here) of zeros but for the cotangent at the field
    from ...tree_util import field_index
    try:
        i = field_index(s.args[1].aval, args[2])
    except ValueError:
        i = None   # static data of the node: no cotangent
    return type(s.out)(args[0] if k == i else zeros_of(em, a, f"{s.target}.{k}")
                       for k, a in enumerate(s.out))


# forward mode's zero tangent: zeros of its output's structure (the shape
# rule already made integer leaves float)
LOWERINGS["tangent_zeros"] = _zero_adjoint


@lowering("inverse_axes")
def _inverse_axes(em, s, args, kwargs):
    axes = args[0]
    if axes is None:
        return None
    if not all(isinstance(a, (int, np.integer)) for a in axes):
        raise MissingRuleError("inverse_axes", "llvm", "transpose axes must be known at "
                               "compile time under jit")
    return tuple(int(i) for i in np.argsort(axes))


@lowering("eye")
def _eye(em, s, args, kwargs):
    dest = em.name_buffer(s.target, s.out.dtype, s.out.shape)
    em.kern.assign(em.b, dest, 0)
    n, m = s.out.shape
    k = kwargs.get("k", args[2] if len(args) > 2 else 0) or 0
    b = em.b
    for i in range(n):
        j = i + k
        if 0 <= j < m:
            store_mem(b, dest, ir.Constant(I64, i * m + j), const(s.out.dtype, 1))
    return dest


@lowering("arange")
def _arange(em, s, args, kwargs):
    vals = list(args) + [None] * (3 - len(args))
    start, stop, step = vals[:3]
    start = kwargs.get("start", start)
    stop = kwargs.get("stop", stop)
    step = kwargs.get("step", step)
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    dest = em.name_buffer(s.target, s.out.dtype, s.out.shape)
    b = em.b
    dt = s.out.dtype
    with loop(b, s.out.shape[0]) as i:
        if dt.kind == "f":
            v = b.fadd(const(dt, start), b.fmul(cast(b, i, np.int64, dt), const(dt, step)))
        else:
            v = b.add(const(dt, start), b.mul(cast(b, i, np.int64, dt), const(dt, step)))
        store_mem(b, dest, i, v)
    return dest


@lowering("where_scalar")
def _unused(em, s, args, kwargs):  # pragma: no cover
    raise MissingRuleError(s.prim, "llvm")


@lowering("check_svd_vjp")
def _check_svd_vjp(em, s, args, kwargs):
    # the refusal depends only on the shape: decided while compiling
    from ...runtime.reverse_support import check_svd_vjp
    a = args[0]
    full = kwargs.get("full_matrices", args[1] if len(args) > 1 else True)
    check_svd_vjp(np.empty(tuple(a.shape), a.dtype), full)
    return None


@lowering("check")
def _check(em, s, args, kwargs):
    cond = args[0]
    msg = kwargs.get("message", args[1] if len(args) > 1 else "") or "check failed"
    c = em.runtime(cond)
    if not isinstance(c, Scalar):
        c = em.kern.reduce(em.b, "all", c, tuple(range(len(c.shape))), False, np.bool_)
    v = cast(em.b, c.value, c.dtype, np.bool_)
    em.fail_if(em.b.not_(v), 3, str(msg))
    return None


def register():
    for name, rule in LOWERINGS.items():
        p = PRIMITIVES.get(name)
        if p is not None:
            p.lowerings["llvm"] = rule


register()

# reverse mode's helpers, gathers and the views their adjoints use
from . import reverse  # noqa: E402,F401
# vmap's helpers: axis moves, per-lane selection, indexing and contractions
from . import batching  # noqa: E402,F401
# einsum and LU-based linear algebra; sorting, take_along_axis and array
from . import linalg, sort  # noqa: E402,F401
# LAPACK factorizations: cholesky, qr, eigh, svd
from . import lapack  # noqa: E402,F401
# print and vmap's per-lane print: a call back into Python
from . import printing  # noqa: E402,F401

from . import sequences  # noqa: E402,F401  (tuple/list + and *: a hook of seqfix's)
