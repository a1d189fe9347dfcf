"""Static helper primitives: shape and axis arithmetic for compositions.

Owns the `static_*` primitives.  Each takes and returns only static values
(shapes, axes, ints, tuples of ints or slices, dtypes, small constant index
arrays) so that `cotan.numpy` compositions stay plain calls: Python logic
too involved for the composition subset (axis normalization, tuple
arithmetic, split bounds) lives here.  Their rules evaluate them outright
(constant folding); they are non-differentiable and refuse abstract
arguments (an abstract value's dtype is the structural `dtype` primitive).
Under `vmap` they see per-example shapes, as the compositions calling them
do.  Must not hold array kernels: anything that touches array data belongs
in the other numeric modules.
"""

import builtins

import numpy as np

from .numeric_rules import any_abstract, normalize_axes, normalize_axis, reduced_shape
from .table import primitive


def _static(impl):
    """Register `impl` (named static_*) as a non-differentiable primitive
    whose rule runs it on its (necessarily concrete) arguments."""
    def rule(*args, **params):
        if any_abstract(args, params):
            raise TypeError(f"{impl.__name__}: expects static values (shapes, axes, "
                            "ints), got an array computed at run time")
        return impl(*args, **params)
    rule.__name__ = f"static_rule({impl.__name__})"
    return primitive(impl.__name__, abstract_eval=rule, differentiable=False)(impl)


def _ints(x):
    return tuple(int(v) for v in x)


@_static
def static_reduced_count(shape, axis=None, ddof=0):
    """static_reduced_count(shape, axis, ddof) == number of elements a reduction over `axis` combines, minus ddof."""
    n = 1
    for a in normalize_axes(axis, len(shape)):
        n *= int(shape[a])
    return n - int(ddof)


@_static
def static_reduced_shape(shape, axis=None, keepdims=False):
    """static_reduced_shape(shape, axis, keepdims) == numpy.sum(numpy.empty(shape), axis, keepdims=keepdims).shape."""
    return reduced_shape(_ints(shape), axis, keepdims)


@_static
def static_normalize_axis(axis, ndim):
    """static_normalize_axis(axis, ndim) == numpy.lib.array_utils.normalize_axis_index(axis, ndim)."""
    return normalize_axis(axis, ndim)


@_static
def static_expand_dims_shape(shape, axis):
    """static_expand_dims_shape(shape, axis) == numpy.expand_dims(numpy.empty(shape), axis).shape."""
    axes = normalize_axes(axis, len(shape) + (len(axis) if isinstance(axis, (tuple, list)) else 1))
    dims = iter(_ints(shape))
    return tuple(1 if i in axes else next(dims) for i in range(len(shape) + len(axes)))


@_static
def static_squeeze_shape(shape, axis=None):
    """static_squeeze_shape(shape, axis) == numpy.squeeze(numpy.empty(shape), axis).shape."""
    if axis is None:
        return tuple(d for d in _ints(shape) if d != 1)
    axes = normalize_axes(axis, len(shape))
    for a in axes:
        if shape[a] != 1:
            raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    return tuple(d for i, d in enumerate(_ints(shape)) if i not in axes)


@_static
def static_swapaxes_perm(ndim, axis1, axis2):
    """static_swapaxes_perm(ndim, axis1, axis2) == the transpose permutation numpy.swapaxes applies."""
    perm = list(range(ndim))
    a, b = normalize_axis(axis1, ndim), normalize_axis(axis2, ndim)
    perm[a], perm[b] = perm[b], perm[a]
    return tuple(perm)


@_static
def static_moveaxis_perm(ndim, source, destination):
    """static_moveaxis_perm(ndim, source, destination) == the transpose permutation numpy.moveaxis applies."""
    src = [normalize_axis(a, ndim) for a in (source if isinstance(source, (tuple, list)) else [source])]
    dst = [normalize_axis(a, ndim) for a in
           (destination if isinstance(destination, (tuple, list)) else [destination])]
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same number of elements")
    order = [a for a in range(ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return tuple(order)


@_static
def static_atleast_shape(shape, n):
    """static_atleast_shape(shape, n) == numpy.atleast_{n}d(numpy.empty(shape)).shape for n in 1, 2, 3."""
    shape = _ints(shape)
    if len(shape) >= n:
        return shape
    if n == 3 and len(shape) == 1:
        return (1,) + shape + (1,)
    if n == 3 and len(shape) == 2:
        return shape + (1,)
    return (1,) * (n - len(shape)) + shape


@_static
def static_broadcast_shapes(shapes):
    """static_broadcast_shapes(shapes) == numpy.broadcast_shapes(*shapes)."""
    return tuple(np.broadcast_shapes(*[_ints(s) for s in shapes]))


@_static
def static_lowest(dtype):
    """static_lowest(dtype) == -inf for floats, numpy.iinfo(dtype).min for ints, False for bool."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return -float("inf")
    return False if dt.kind == "b" else int(np.iinfo(dt).min)


@_static
def static_highest(dtype):
    """static_highest(dtype) == inf for floats, numpy.iinfo(dtype).max for ints, True for bool."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return float("inf")
    return True if dt.kind == "b" else int(np.iinfo(dt).max)


@_static
def static_eps_cutoff(shape, dtype):
    """static_eps_cutoff(shape, dtype) == max(shape[-2:]) * numpy.finfo(dtype).eps, NumPy's default pinv/matrix_rank tolerance."""
    dt = np.dtype(dtype)
    dt = dt if dt.kind == "f" else np.dtype(np.float64)
    return builtins.max(int(shape[-2]), int(shape[-1])) * float(np.finfo(dt).eps)


@_static
def static_tile_plan(shape, reps):
    """static_tile_plan(shape, reps) == (shape to reshape to, shape to broadcast to, result shape) of numpy.tile."""
    reps = _ints(reps) if isinstance(reps, (tuple, list)) else (int(reps),)
    shape = _ints(shape)
    d = builtins.max(len(shape), len(reps))
    shape = (1,) * (d - len(shape)) + shape
    reps = (1,) * (d - len(reps)) + reps
    interleaved_a = tuple(v for s in shape for v in (1, s))
    interleaved_b = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    return interleaved_a, interleaved_b, tuple(r * s for r, s in zip(reps, shape))


@_static
def static_repeat_indices(n, repeats):
    """static_repeat_indices(n, repeats) == numpy.repeat(numpy.arange(n), repeats), for static repeats."""
    return np.repeat(np.arange(int(n)), repeats)


@_static
def static_roll_plan(shape, shift, axis=None):
    """static_roll_plan(shape, shift, axis) == ((axis, gather indices), ...) realising numpy.roll (axis None: of the raveled array, shape is then 1-D)."""
    axes = (0,) if axis is None else (axis if isinstance(axis, (tuple, list)) else (axis,))
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,) * len(axes)
    if len(shifts) != len(axes):
        shifts, axes = np.broadcast_arrays(shifts, axes)
    total = {}
    for s, a in zip(shifts, axes):
        a = normalize_axis(int(a), len(shape))
        total[a] = total.get(a, 0) + int(s)
    return tuple((a, (np.arange(shape[a]) - s) % builtins.max(shape[a], 1))
                 for a, s in sorted(total.items()))


@_static
def static_split_indices(shape, indices_or_sections, axis=0, even=True):
    """static_split_indices(shape, indices_or_sections, axis, even) == the index tuples of the pieces numpy.split (even) or numpy.array_split returns."""
    axis = normalize_axis(axis, len(shape))
    n = int(shape[axis])
    if isinstance(indices_or_sections, (tuple, list, np.ndarray)):
        cuts = [0] + [int(i) for i in indices_or_sections] + [n]
    else:
        sections = int(indices_or_sections)
        if even and n % sections:
            raise ValueError("array split does not result in an equal division")
        base, extra = divmod(n, sections)
        sizes = [base + 1] * extra + [base] * (sections - extra)
        cuts = [0] + list(np.cumsum(sizes, dtype=int))
    lead = (builtins.slice(None),) * axis
    return tuple(lead + (builtins.slice(int(a), int(b)),) for a, b in zip(cuts[:-1], cuts[1:]))


@_static
def static_axis_slice(ndim, axis, start, stop):
    """static_axis_slice(ndim, axis, start, stop) == the index tuple selecting start:stop along `axis`."""
    axis = normalize_axis(axis, ndim)
    return (builtins.slice(None),) * axis + (builtins.slice(start, stop),)


@_static
def static_tensordot_plan(shape_a, shape_b, axes=2):
    """static_tensordot_plan(shape_a, shape_b, axes) == (perm_a, 2-D shape_a, perm_b, 2-D shape_b, result shape) of numpy.tensordot."""
    sa, sb = _ints(shape_a), _ints(shape_b)
    if isinstance(axes, (tuple, list)):
        ax_a, ax_b = axes
        ax_a = list(ax_a) if isinstance(ax_a, (tuple, list)) else [ax_a]
        ax_b = list(ax_b) if isinstance(ax_b, (tuple, list)) else [ax_b]
    else:
        ax_a = list(range(len(sa) - int(axes), len(sa)))
        ax_b = list(range(int(axes)))
    ax_a = [normalize_axis(a, len(sa)) for a in ax_a]
    ax_b = [normalize_axis(b, len(sb)) for b in ax_b]
    if [sa[a] for a in ax_a] != [sb[b] for b in ax_b]:
        raise ValueError(f"tensordot: shape-mismatch for sum, shapes {sa} and {sb}")
    free_a = [a for a in range(len(sa)) if a not in ax_a]
    free_b = [b for b in range(len(sb)) if b not in ax_b]
    k = int(np.prod([sa[a] for a in ax_a], dtype=np.int64))
    m = int(np.prod([sa[a] for a in free_a], dtype=np.int64))
    n = int(np.prod([sb[b] for b in free_b], dtype=np.int64))
    return (tuple(free_a + ax_a), (m, k), tuple(ax_b + free_b), (k, n),
            tuple(sa[a] for a in free_a) + tuple(sb[b] for b in free_b))


@_static
def static_kron_plan(shape_a, shape_b):
    """static_kron_plan(shape_a, shape_b) == (a's interleaved shape, b's interleaved shape, result shape) of numpy.kron."""
    sa, sb = _ints(shape_a), _ints(shape_b)
    d = builtins.max(len(sa), len(sb))
    sa = (1,) * (d - len(sa)) + sa
    sb = (1,) * (d - len(sb)) + sb
    return (tuple(v for s in sa for v in (s, 1)), tuple(v for s in sb for v in (1, s)),
            tuple(x * y for x, y in zip(sa, sb)))


@_static
def static_meshgrid_shapes(sizes, indexing="xy"):
    """static_meshgrid_shapes(sizes, indexing) == (per-input reshape shapes, result shape) of numpy.meshgrid."""
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    sizes = _ints(sizes)
    n = len(sizes)
    shapes = []
    for i in range(n):
        s = [1] * n
        s[i] = sizes[i]
        if indexing == "xy" and n > 1:
            s[0], s[1] = s[1], s[0]
        shapes.append(tuple(s))
    out = list(sizes)
    if indexing == "xy" and n > 1:
        out[0], out[1] = out[1], out[0]
    return tuple(shapes), tuple(out)


@_static
def static_diag_indices(n, k=0):
    """static_diag_indices(n, k) == (size, rows, cols): numpy.diag(v, k) puts v[i] at (rows[i], cols[i]) of a size x size matrix."""
    n, k = int(n), int(k)
    i = np.arange(n)
    return n + abs(k), i + builtins.max(-k, 0), i + builtins.max(k, 0)


@_static
def static_axis_vector_shape(ndim, axis, n):
    """static_axis_vector_shape(ndim, axis, n) == the shape putting a length-n vector along `axis` of an ndim array."""
    axis = normalize_axis(axis, ndim)
    return tuple(n if i == axis else 1 for i in range(ndim))


@_static
def static_norm_kind(ord, ndim, axis=None):
    """static_norm_kind(ord, ndim, axis) == (kind, axes) numpy.linalg.norm dispatches on: 'frobenius', 'vector-<ord>' or 'matrix-<ord>'."""
    if axis is None:
        axes = tuple(range(ndim))
        if ord is not None and ndim not in (1, 2):
            raise ValueError("Improper number of dimensions to norm.")
    else:
        axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(normalize_axis(a, ndim) for a in axes)
    if ord is None or (ord == "fro" and len(axes) == 2):
        return "frobenius", axes
    name = {float("inf"): "inf", -float("inf"): "-inf"}.get(ord, ord)
    if len(axes) == 1:
        if name in ("fro", "nuc"):
            raise ValueError(f"Invalid norm order '{ord}' for vectors")
        return ("vector-" + str(name) if name in (0, 1, 2, "inf", "-inf") else "vector-p"), axes
    if len(axes) == 2:
        if name not in ("fro", "nuc", 1, -1, 2, -2, "inf", "-inf"):
            raise ValueError("Invalid norm order for matrices.")
        return "matrix-" + str(name), axes
    raise ValueError("Improper number of dimensions to norm.")


@_static
def static_pad_plan(shape, pad_width, mode="constant"):
    """static_pad_plan(shape, pad_width, mode) == (padded shape, flat positions
    of the original's elements in the padded array, in C order, padded size) for
    numpy.pad.  Flat positions rather than a tuple of slices: an index that is
    one tuple-valued part reads differently to vmap's per-lane indexing."""
    if mode != "constant":
        from ..errors import TransformError
        raise TransformError(f"np.pad(..., mode={mode!r}) is not supported by cotan (only "
                             "mode='constant'); build the border with np.concatenate of "
                             "slices (e.g. a[:1] repeated for 'edge') instead")
    shape = _ints(shape)
    try:
        pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (len(shape), 2))
    except ValueError:
        raise ValueError(f"np.pad: pad_width {pad_width!r} does not fit an array of "
                         f"{len(shape)} dimensions") from None
    if np.any(pw < 0):
        raise ValueError(f"np.pad: pad_width {pad_width!r} has negative entries")
    out = tuple(int(s + a + b) for s, (a, b) in zip(shape, pw))
    inside = tuple(builtins.slice(int(a), int(a) + s) for s, (a, _) in zip(shape, pw))
    size = int(np.prod(out, dtype=np.int64))
    flat = np.arange(size, dtype=np.int64).reshape(out)[inside]
    return out, flat.reshape(-1), size
