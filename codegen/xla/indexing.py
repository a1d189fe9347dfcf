"""Indexing for the XLA backend (part of the one table in lowerings.py).

Owns `getitem` (static slices and ints as one `stablehlo.slice`, run-time
ints as a checked `dynamic_slice`, integer arrays as one `gather` placed
as NumPy's advanced indexing places it), `setitem` (a `dynamic_update_slice`
for a box, otherwise a scatter at the flat positions the same getitem
selects from an iota), `take`, and the adjoints `getitem_adjoint` /
`assemble_adjoint` (scatter-adds).  Every run-time index is checked into
the module's error status: XLA would clamp it silently.  Must not walk
programs.
"""

import numpy as np

from ...errors import MissingRuleError
from ..abstract import ShapedArray
from .emit import SV, DynamicSlice, tensor_type
from .lowerings import lowering


# -------------------------------------------------------------- indexing

def _components(index):
    """The index parts: getitem(x, (a, b)) (a tuple built at compile time)
    means getitem(x, a, b), as `x[index]` does in NumPy."""
    index = list(index)
    if len(index) == 1 and isinstance(index[0], tuple):
        index = list(index[0])
    return index


def _normalize_index(x_shape, index):
    """[(kind, value)] per component after expanding Ellipsis."""
    index = list(index)
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    if any(i is Ellipsis for i in index):
        k = next(j for j, i in enumerate(index) if i is Ellipsis)
        index[k:k + 1] = [slice(None)] * (len(x_shape) - n_real)
    index += [slice(None)] * (len(x_shape) - sum(1 for i in index if i is not None))
    return index


def _bool_static(i):
    return isinstance(i, np.ndarray) and i.dtype == np.bool_


def _index_positions(em, shape, index):
    """For getitem/setitem: the flat positions (int64 array of the result's
    shape) that `x[index]` selects in an array of `shape`, checked."""
    size = int(np.prod(shape))
    flat = em.reshape(em.iota((size,), 0), shape) if shape else em.const(0, np.int64)
    return _gather(em, flat, index)


def _gather(em, x, index):
    """x[index] for static slices/ints/None, run-time ints and int arrays."""
    index = _components(index)
    for k, i in enumerate(index):
        if isinstance(i, DynamicSlice):
            raise MissingRuleError("getitem", "xla", f"{em.where()}: a slice with run-time "
                                   "bounds has a run-time length; XLA needs static shapes "
                                   "(use static bounds, or a fixed-size slice via a mask)")
        if _bool_static(i):
            nz = np.nonzero(i)
            index[k:k + 1] = list(nz)
        if isinstance(i, SV) and i.dtype == np.bool_ and i.shape != ():
            raise MissingRuleError("getitem", "xla", f"{em.where()}: a boolean mask gives a "
                                   "result whose length depends on run-time values; use "
                                   "np.where(mask, x, 0) instead")
    index = _normalize_index(x.shape, index)
    advanced = [k for k, i in enumerate(index) if (isinstance(i, SV) and i.shape != ()) or
                isinstance(i, np.ndarray) and i.ndim > 0]
    if advanced and any(i is None for i in index):
        raise MissingRuleError("getitem", "xla", f"{em.where()}: None (newaxis) mixed with "
                               "array indices is not lowered")
    # 1. static slices and static ints: one stablehlo.slice (+ reverses)
    starts, limits, strides, rev = [], [], [], []
    axis = 0
    comps = []
    for i in index:
        if i is None:
            comps.append(("new", None))
            continue
        n = x.shape[axis]
        if isinstance(i, slice):
            st, sp, step = i.indices(n)
            count = len(range(st, sp, step))
            if step < 0:
                rev.append(axis)
                st = n - 1 - st
                step = -step
            starts.append(st)
            limits.append(st + (count - 1) * step + 1 if count else st)
            strides.append(step)
            comps.append(("slice", None))
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool) and not advanced:
            j = int(i) + n if int(i) < 0 else int(i)
            starts.append(j)
            limits.append(j + 1)
            strides.append(1)
            comps.append(("int", None))
        else:
            starts.append(0)
            limits.append(n)
            strides.append(1)
            comps.append(("dyn", i))
        axis += 1
    y = x
    if rev:
        y = em.reverse(y, rev)
    if (starts, limits, strides) != ([0] * len(x.shape), list(x.shape), [1] * len(x.shape)):
        y = em.slice(y, starts, limits, strides)
    dims = [c for c in comps if c[0] != "new"]
    dyn = [(a, c[1]) for a, c in enumerate(dims) if c[0] == "dyn"]
    if not advanced:
        # 2. run-time scalar ints: dynamic_slice of size 1, checked
        if dyn:
            zero = em.const(0, np.int64)
            st = [zero] * len(y.shape)
            sizes = list(y.shape)
            for a, i in dyn:
                st[a] = _checked_index(em, i, y.shape[a])
                sizes[a] = 1
            y = em.dynamic_slice(y, st, sizes)
        shape = []
        for c, d in zip([c for c in comps], _expand_dims(comps, y.shape)):
            if c[0] in ("slice", "new"):
                shape.append(d)
        return em.reshape(y, tuple(shape))
    # 3. advanced: the array and int components gather together
    adv_axes = [a for a, _ in dyn]
    idx = [_as_index_array(em, i, y.shape[a]) for a, i in dyn]
    bshape = tuple(np.broadcast_shapes(*[v.shape for v in idx]))
    idx = [em.reshape(em.bcast(v, bshape), bshape + (1,)) for v in idx]
    ivec = em.concatenate(idx, len(bshape)) if len(idx) > 1 else idx[0]
    adjacent = adv_axes == list(range(adv_axes[0], adv_axes[0] + len(adv_axes)))
    rest = [a for a in range(len(y.shape)) if a not in adv_axes]
    nb = len(bshape)
    if adjacent:
        p = adv_axes[0]
        offset = [k for k in range(p)] + [nb + k for k in range(p, len(rest))]
    else:
        offset = [nb + k for k in range(len(rest))]
    out_shape = [0] * (nb + len(rest))
    for k, a in zip(offset, rest):
        out_shape[k] = y.shape[a]
    bpos = [k for k in range(len(out_shape)) if k not in offset]
    for k, d in zip(bpos, bshape):
        out_shape[k] = d
    sizes = [1 if a in adv_axes else y.shape[a] for a in range(len(y.shape))]
    out = ShapedArray(tuple(out_shape), y.dtype)
    return em.op(
        f'"stablehlo.gather"({y.name}, {ivec.name}) {{dimension_numbers = '
        f"#stablehlo.gather<offset_dims = [{', '.join(map(str, offset))}], "
        f"collapsed_slice_dims = [{', '.join(map(str, adv_axes))}], "
        f"start_index_map = [{', '.join(map(str, adv_axes))}], index_vector_dim = {nb}>, "
        f"slice_sizes = array<i64: {', '.join(map(str, sizes))}>, indices_are_sorted = false}}"
        f" : ({y.type}, {ivec.type}) -> {tensor_type(out.shape, y.dtype)}",
        out)


def _expand_dims(comps, shape):
    """Sizes per component of the sliced value (1 for None)."""
    out, a = [], 0
    for c in comps:
        if c[0] == "new":
            out.append(1)
        else:
            out.append(shape[a])
            a += 1
    return out


def _checked_index(em, i, n):
    """A run-time scalar index, negative counted from the end, checked."""
    i = em.rt(i, np.int64)
    if i.shape != ():
        i = em.reshape(i, ())
    nn = em.const(n, np.int64)
    j = em.select(em.compare("LT", i, em.const(0, np.int64)), em.binary("stablehlo.add", i, nn), i)
    ok = em.binary("stablehlo.and", em.compare("GE", j, em.const(0, np.int64)),
                   em.compare("LT", j, nn))
    em.check(ok, f"{em.where()}: index out of bounds for an axis of size {n}")
    return j


def _as_index_array(em, i, n):
    if isinstance(i, (int, np.integer)):
        j = int(i)
        if not -n <= j < n:
            raise IndexError(f"index {j} is out of bounds for an axis of size {n}")
        return em.const(j % n, np.int64)
    if isinstance(i, np.ndarray):
        if ((i < -n) | (i >= n)).any():
            raise IndexError(f"{em.where()}: index out of bounds for an axis of size {n}")
        return em.capture(np.where(i < 0, i + n, i).astype(np.int64))
    v = em.rt(i, np.int64)
    nn = em.const(n, np.int64, v.shape)
    zero = em.const(0, np.int64, v.shape)
    j = em.select(em.compare("LT", v, zero), em.binary("stablehlo.add", v, nn), v)
    ok = em.binary("stablehlo.and", em.compare("GE", j, zero), em.compare("LT", j, nn))
    em.check(ok, f"{em.where()}: index out of bounds for an axis of size {n}")
    return j


@lowering("getitem")
def _getitem(em, s, args, kwargs):
    x = args[0]
    if isinstance(x, (tuple, list, dict)):
        idx = args[1]
        if isinstance(idx, SV):
            raise MissingRuleError("getitem", "xla", f"{em.where()}: a container indexed by "
                                   "a run-time value")
        return x[idx]
    return _gather(em, em.rt(x), args[1:])


def _scatter(em, x, positions, values, combine):
    """x (flattened) with `values` written (or added) at flat `positions`."""
    size = int(np.prod(x.shape))
    flat = em.reshape(x, (size,))
    n = int(np.prod(positions.shape))
    pos = em.reshape(positions, (n, 1))
    vals = em.reshape(em.bcast(em.convert(values, x.dtype), positions.shape), (n,))
    et = flat.type[len(f"tensor<{size}x"):-1]
    scalar = f"tensor<{et}>"
    name = em.fresh("sc")
    body = "%b" if combine == "set" else "%r"
    em.line(f'{name} = "stablehlo.scatter"({flat.name}, {pos.name}, {vals.name}) ({{')
    em.line(f"  ^bb0(%a: {scalar}, %b: {scalar}):")
    if combine == "add":
        em.line(f"    %r = stablehlo.add %a, %b : {scalar}")
    em.line(f"    stablehlo.return {body} : {scalar}")
    em.line(f"}}) {{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [], "
            f"inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], "
            f"index_vector_dim = 1>, indices_are_sorted = false, unique_indices = false}} : "
            f"({flat.type}, {pos.type}, {vals.type}) -> {flat.type}")
    return em.reshape(SV(name, flat.aval), x.shape)


@lowering("setitem")
def _setitem(em, s, args, kwargs):
    out = s.out
    x = em.rt(args[0], out.dtype)
    value = args[1]
    index = _components(args[2:])
    # a box of static or run-time ints and full / unit-step slices: one update
    norm = _normalize_index(x.shape, list(index)) if all(
        not isinstance(i, (np.ndarray, DynamicSlice)) and i is not None and
        not (isinstance(i, SV) and i.shape != ()) for i in index) else None
    if norm is not None and all(not isinstance(i, slice) or i.indices(n)[2] == 1
                                for i, n in zip(norm, x.shape)):
        starts, sizes = [], []
        for i, n in zip(norm, x.shape):
            if isinstance(i, slice):
                a, b, _ = i.indices(n)
                starts.append(em.const(a, np.int64))
                sizes.append(max(0, b - a))
            elif isinstance(i, SV):
                starts.append(_checked_index(em, i, n))
                sizes.append(1)
            else:
                starts.append(em.const(int(i) % n, np.int64))
                sizes.append(1)
        if 0 in sizes:
            return x
        vshape = tuple(d for d, i in zip(sizes, norm) if isinstance(i, slice))
        v = em.rt(value, out.dtype)
        v = em.reshape(em.bcast(v, vshape), tuple(sizes))
        return em.dynamic_update_slice(x, v, starts)
    positions = _index_positions(em, x.shape, index)
    return _scatter(em, x, positions, em.rt(value, out.dtype), "set")


def _zeros_of(em, aval):
    if isinstance(aval, ShapedArray):
        return em.const(0, aval.dtype, aval.shape)
    if isinstance(aval, (tuple, list)):
        return type(aval)(_zeros_of(em, a) for a in aval)
    if isinstance(aval, dict):
        return {k: _zeros_of(em, a) for k, a in aval.items()}
    return aval


def _add_tree(em, a, b, aval):
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(aval, (tuple, list)):
        return type(aval)(_add_tree(em, x, y, v) for x, y, v in zip(a, b, aval))
    if isinstance(aval, dict):
        return {k: _add_tree(em, a[k], b[k], aval[k]) for k in aval}
    if not isinstance(aval, ShapedArray):
        return aval
    return em.binary("stablehlo.add", em.rt(a, aval.dtype, aval.shape),
                     em.rt(b, aval.dtype, aval.shape))


def _array_adjoint(em, g, out, index):
    zeros = em.const(0, out.dtype, out.shape)
    if out.shape == ():
        return em.rt(g, out.dtype)
    positions = _index_positions(em, out.shape, index)
    return _scatter(em, zeros, positions, em.rt(g, out.dtype), "add")


def _container_adjoint(em, g, x, out, index):
    if len(index) != 1 or isinstance(index[0], SV):
        raise MissingRuleError("getitem_adjoint", "xla", f"{em.where()}: a container indexed "
                               "by a run-time value")
    idx = index[0]
    if isinstance(x, dict):
        res = dict(_zeros_of(em, out))
        res[idx] = _add_tree(em, g, None, out[idx])
        return res
    res = list(_zeros_of(em, out))
    if isinstance(idx, slice):
        for i, gi in zip(range(*idx.indices(len(x))), g):
            res[i] = gi
    else:
        res[int(idx)] = g
    return type(out)(res)


@lowering("getitem_adjoint")
def _getitem_adjoint(em, s, args, kwargs):
    g, x = args[0], args[1]
    if isinstance(x, (tuple, list, dict)):
        return _container_adjoint(em, g, x, s.out, args[2:])
    return _array_adjoint(em, g, s.out, args[2:])


@lowering("assemble_adjoint")
def _assemble_adjoint(em, s, args, kwargs):
    x, paths, adjoints = args[0], args[1], args[2:]
    out = s.out
    total = None
    for path, g in zip(paths, adjoints):
        if g is None:
            continue
        if isinstance(x, (tuple, list, dict)):
            part = _container_adjoint(em, g, x, out, list(path))
        else:
            part = _array_adjoint(em, g, out, list(path))
        total = part if total is None else _add_tree(em, total, part, out)
    return _zeros_of(em, out) if total is None else total


@lowering("take")
def _take(em, s, args, kwargs):
    x = em.rt(args[0])
    ind = args[1]
    if isinstance(ind, (tuple, list)):
        ind = np.asarray(ind)       # take's indices are one array, never a tuple index
    axis = kwargs.get("axis", args[2] if len(args) > 2 else None)
    if axis is None:
        x = em.reshape(x, (int(np.prod(x.shape)),))
        axis = 0
    axis = int(axis) % len(x.shape)
    return _gather(em, x, [slice(None)] * axis + [ind])
