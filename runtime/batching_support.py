"""Helper primitives that batched (vmapped) code calls.

Owns the run-time side of `vmap`: moving the mapped axis of the inputs to
position 0 and of the outputs to `out_axes`, the batch-size check (with an
error naming the arguments and their sizes), broadcasting unbatched values
to the batch ("promotion"), lifting a batched operand's rank for
broadcasting, the per-lane `select` that freezes finished lanes, the
`any`-reduction of a while predicate, per-lane print/check, per-lane
indexing (`getitem_lanes`, `setitem_lanes`), `matmul_lanes`, and
`map_lanes`, the always-correct fallback that runs a primitive once per
lane and stacks the results.

Conventions: a batched value has its batch axis at position 0 (every leaf,
for containers).  A *state code* describes which leaves of a value are
batched: True (all), False (none), or ('tuple'|'list', (codes...)) /
('dict', (keys...), (codes...)) for containers of mixed leaves.  `in_axes` /
`out_axes` specs are coded the same way with ints/None at the leaves.

Must not import the stages (autodiff/ attaches the batching rules of these
primitives).
"""

import numpy as np

from ..errors import ShapeError
from .table import PRIMITIVES, primitive
from ..tree_util import is_user_node, node_children, rebuild_like

_NON_DATA = (str, slice, type(None), type(Ellipsis), np.dtype, type)


def _is_container(x):
    return isinstance(x, (tuple, list, dict)) or is_user_node(x)


def _seq_kids(x):
    """The children of a tuple, list or user pytree node (namedtuple,
    dataclass, registered class), or None for anything else: vmap treats
    the nodes as sequences of their children."""
    if type(x) in (tuple, list):
        return x
    if isinstance(x, (tuple, list)) or is_user_node(x):
        return node_children(x)[0]
    return None


def _seq_like(x, items):
    """A sequence (or node) of x's type and static data with `items`."""
    if type(x) in (tuple, list):
        return type(x)(items)
    return rebuild_like(x, list(items))


def _children(code, x):
    """(key, sub-code) pairs of a container code, matched against x."""
    kind = code[0]
    if kind == "dict":
        return list(zip(code[1], code[2]))
    return list(enumerate(code[1]))


def _map_coded(fn, x, code):
    """Apply fn(leaf, leaf_code) to the leaves of x, where `code` is a
    prefix of x's structure (a bool/int/None applies to a whole subtree)."""
    if isinstance(code, tuple) and code and code[0] in ("tuple", "list", "dict"):
        if code[0] == "dict":
            if not isinstance(x, dict):
                raise ShapeError(f"vmap: expected a dict with keys {code[1]}, got {type(x).__name__}")
            return {k: _map_coded(fn, x[k], c) for k, c in _children(code, x)}
        kids = _seq_kids(x) if not isinstance(x, dict) else None
        if kids is None or len(kids) != len(code[1]):
            raise ShapeError(f"vmap: expected a sequence of {len(code[1])} entries "
                             f"matching the axes spec, got {type(x).__name__}")
        return _seq_like(x, [_map_coded(fn, v, c) for v, c in zip(kids, code[1])])
    if isinstance(x, dict):
        return {k: _map_coded(fn, v, code) for k, v in x.items()}
    kids = _seq_kids(x)
    if kids is not None:
        return _seq_like(x, [_map_coded(fn, v, code) for v in kids])
    return fn(x, code)


def _leaves_coded(x, code, path=""):
    out = []

    def visit(v, c, p):
        if isinstance(c, tuple) and c and c[0] in ("tuple", "list", "dict"):
            keys = c[1] if c[0] == "dict" else range(len(c[1]))
            subs = c[2] if c[0] == "dict" else c[1]
            vs = v if isinstance(v, dict) else _seq_kids(v)
            for k, sc in zip(keys, subs):
                visit(vs[k], sc, f"{p}[{k!r}]")
        elif isinstance(v, dict):
            for k, sv in v.items():
                visit(sv, c, f"{p}[{k!r}]")
        elif _seq_kids(v) is not None:
            for k, sv in enumerate(_seq_kids(v)):
                visit(sv, c, f"{p}[{k}]")
        else:
            out.append((p, v, c))
    visit(x, code, path)
    return out


# -- entry and exit ---------------------------------------------------------------

def _batch_size(fn_name, arg_names, args, specs, lead=None):
    """batch_size(fn_name, arg_names, args, specs) == the common size of the
    mapped axes of `args`; ShapeError naming every argument and size when
    they differ or when no argument is mapped.  `lead[i]`: how many leading
    axes outer vmaps added to args[i] (not part of what the user sees)."""
    sizes = []
    lead = lead or (0,) * len(args)
    for name, arg, spec, k in zip(arg_names, args, specs, lead):
        for path, leaf, axis in _leaves_coded(arg, spec, name):
            if axis is None or leaf is None:
                continue
            shape = np.shape(leaf)[k:]
            if not -len(shape) <= axis < len(shape):
                raise ShapeError(
                    f"vmap of {fn_name!r}: in_axes={axis} for argument {path} of shape "
                    f"{shape}, which has no axis {axis}; pass in_axes=None for "
                    "arguments that are not mapped")
            sizes.append((path, shape[axis]))
    if not sizes:
        raise ShapeError(f"vmap of {fn_name!r}: no argument is mapped (every in_axes is "
                         "None, or the mapped arguments have no arrays); map at least one")
    first = sizes[0][1]
    if any(s != first for _, s in sizes):
        listing = ", ".join(f"{p}: {s}" for p, s in sizes)
        raise ShapeError(f"vmap of {fn_name!r}: the mapped axes have different sizes "
                         f"({listing}); every mapped argument needs the same batch size")
    return int(first)


batch_size = primitive("batch_size", differentiable=False)(_batch_size)


def _batch_move_in(x, spec):
    """batch_move_in(x, spec) == x with every leaf's axis `spec` (a coded in_axes
    prefix) moved to position 0; None leaves x alone."""
    def leaf(v, axis):
        if axis is None or v is None:
            return v
        return np.moveaxis(np.asarray(v), axis, 0)
    return _map_coded(leaf, x, spec)


batch_move_in = primitive("batch_move_in")(_batch_move_in)


def _promote(x, code, n):
    def leaf(v, batched):
        if batched or isinstance(v, _NON_DATA):
            return v
        a = np.asarray(v)
        return np.broadcast_to(a, (n,) + a.shape)
    return _map_coded(leaf, x, code)


def _batch_broadcast(x, state, n):
    """batch_broadcast(x, state, n) == x with every leaf that `state` marks
    unbatched broadcast to a leading axis of size n (strings, slices and None
    are left alone)."""
    if state is True:
        return x
    return _promote(x, state, n)


batch_broadcast = primitive("batch_broadcast")(_batch_broadcast)


def _batch_move_out(x, spec, state, n):
    """batch_move_out(x, spec, state, n): promote `x` (state code) and move each
    leaf's batch axis from 0 to `spec` (coded out_axes; None: leaf unbatched)."""
    def leaf(v, pair):
        axis, batched = pair
        if axis is None or isinstance(v, _NON_DATA):
            return v
        a = np.asarray(v)
        if not batched:
            a = np.broadcast_to(a, (n,) + a.shape)
        return np.moveaxis(a, 0, axis)
    return _move_out(x, spec, state, leaf)


def _move_out(x, spec, state, leaf):
    # walk spec and state together; each may be a prefix of the other
    def split(code, k, kind):
        if isinstance(code, tuple) and code and code[0] in ("tuple", "list", "dict"):
            if code[0] == "dict":
                return dict(zip(code[1], code[2]))[k]
            return code[1][k]
        return code
    if isinstance(x, dict):
        return {k: _move_out(v, split(spec, k, "dict"), split(state, k, "dict"), leaf)
                for k, v in x.items()}
    kids = _seq_kids(x)
    if kids is not None:
        return _seq_like(x, [_move_out(v, split(spec, i, "seq"), split(state, i, "seq"), leaf)
                             for i, v in enumerate(kids)])
    return leaf(x, (spec, state))


batch_move_out = primitive("batch_move_out")(_batch_move_out)


# -- broadcasting and selection ---------------------------------------------------

def _batch_lift(x, *ranks):
    """batch_lift(x, *ranks) == x (batched at 0) with size-1 axes inserted after
    the batch axis until its per-lane rank is at least max(ranks)."""
    if x is None or isinstance(x, _NON_DATA) or _is_container(x):
        return x
    a = np.asarray(x)
    want = max((int(r) for r in ranks), default=0)
    have = a.ndim - 1
    if have >= want:
        return x
    return a.reshape(a.shape[:1] + (1,) * (want - have) + a.shape[1:])


batch_lift = primitive("batch_lift")(_batch_lift)


def _select_lanes(mask, a, b):
    """select_lanes(mask, a, b) == per lane (axis 0), a where mask else b, over
    pytrees; a None side (a value not yet defined) yields the other side."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict):
        return {k: _select_lanes(mask, a[k], b[k]) for k in a}
    if _seq_kids(a) is not None:
        return _seq_like(a, [_select_lanes(mask, u, v)
                             for u, v in zip(_seq_kids(a), _seq_kids(b))])
    if isinstance(a, _NON_DATA):
        return a
    m = np.asarray(mask)
    a = np.asarray(a)
    b = np.asarray(b)
    nd = max(a.ndim, b.ndim)
    m = m.reshape(m.shape + (1,) * (nd - m.ndim))
    return np.where(m, a, b)


select_lanes = primitive("select_lanes")(_select_lanes)


@primitive("lanes_any", differentiable=False)
def lanes_any(mask):
    """lanes_any(mask) == bool(numpy.any(mask)): is any lane still running?"""
    return bool(np.any(mask))


@primitive("range_active", differentiable=False)
def range_active(i, stop, step):
    """range_active(i, stop, step) == per lane, is `i` still inside range(.., stop, step)?"""
    i, stop, step = np.asarray(i), np.asarray(stop), np.asarray(step)
    return np.where(step > 0, i < stop, i > stop)


@primitive("errstate_quiet", differentiable=False, effectful=True)
def errstate_quiet():
    """errstate_quiet() silences NumPy floating-point warnings and returns the
    previous settings: branches run for lanes that did not take them."""
    return np.seterr(all="ignore")


@primitive("errstate_restore", differentiable=False, effectful=True)
def errstate_restore(old):
    """errstate_restore(old) puts back the settings errstate_quiet returned."""
    np.seterr(**old)


# -- per-lane effects ---------------------------------------------------------------

def _lane(x, batched, b):
    return x[b] if batched else x


@primitive("print_lanes", differentiable=False, effectful=True)
def print_lanes(mask, batched, *xs, sep=" ", end="\n", n=1):
    """print_lanes(mask, batched, *xs): one print per active lane (mask None:
    every lane), `batched[i]` saying whether xs[i] has a batch axis."""
    for b in range(n):
        if mask is not None and not np.asarray(mask)[b]:
            continue
        print(*[_lane_tree(x, f, b) for x, f in zip(xs, batched)], sep=sep, end=end)


def _lane_tree(x, batched, b):
    if not batched:
        return x
    if isinstance(x, dict):
        return {k: _lane_tree(v, True, b) for k, v in x.items()}
    if _seq_kids(x) is not None:
        return _seq_like(x, [_lane_tree(v, True, b) for v in _seq_kids(x)])
    return x[b]


@primitive("check_lanes", differentiable=False, effectful=True)
def check_lanes(mask, cond, message=""):
    """check_lanes(mask, cond, message): `assert` on every active lane of cond."""
    c = np.asarray(cond)
    c = c.reshape(c.shape[0], -1).all(axis=1) if c.ndim > 1 else c
    if mask is not None:
        c = c | ~np.asarray(mask, dtype=bool)
    if not np.all(c):
        bad = [int(i) for i in np.nonzero(~c)[0]]
        raise AssertionError(f"{message} (failed in vmap lanes {bad})" if message
                             else f"assertion failed in vmap lanes {bad}")


# -- indexing ---------------------------------------------------------------------

def _advanced(i):
    return isinstance(i, (np.ndarray, list)) or (
        isinstance(i, (int, np.integer)) and not isinstance(i, bool))


def _getitem_lanes(x, batched, idx, clip=False):
    """getitem_lanes(x, batched, idx) == per lane x[idx], where batched[0] says
    whether x is batched and batched[1:] whether each index part is; integer
    index arrays are clipped into range when `clip` (masked lanes)."""
    xb, ib = batched[0], batched[1:]
    if isinstance(x, (tuple, list, dict)) and not any(ib):
        from .structural import _index
        return x[_index(idx)]
    n = None
    if xb:
        n = np.shape(x)[0]
    for part, f in zip(idx, ib):
        if f:
            n = np.shape(part)[0]
    x = np.asarray(x)
    if not xb:
        x = np.broadcast_to(x, (n,) + x.shape)
    if clip:
        idx = tuple(_clip_index(p, f, x, k) for k, (p, f) in enumerate(zip(idx, ib)))
    if not any(ib):
        return _getitem_batched_unbatched_index(x, idx)
    # a batched index: every lane gathers with its own index; vectorised
    # through an explicit lane index when the index parts are integer arrays
    # and slices; otherwise one lane at a time
    if all(_is_int_index(p) or p is None or isinstance(p, slice) for p in idx) \
            and not any(p is None or p is Ellipsis for p in idx):
        parts = [np.asarray(p) if f else p for p, f in zip(idx, ib)]
        adv = [k for k, p in enumerate(parts) if not isinstance(p, slice)]
        if adv == list(range(len(adv))):
            lanes = np.arange(n)
            arrs = [(np.asarray(p) if ib[k] else np.broadcast_to(np.asarray(p), (n,) + np.shape(p)))
                    for k, p in enumerate(parts[:len(adv)])]
            rank = max(a.ndim for a in arrs)
            arrs = [a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:]) for a in arrs]
            lanes = lanes.reshape((n,) + (1,) * (rank - 1))
            return x[(lanes, *arrs, *parts[len(adv):])]
    from .structural import _index
    out = [x[b][_index(tuple(p[b] if f else p for p, f in zip(idx, ib)))] for b in range(n)]
    return np.stack([np.asarray(o) for o in out])


def _is_int_index(p):
    if isinstance(p, (bool, np.bool_)):
        return False
    if isinstance(p, (int, np.integer)):
        return True
    if isinstance(p, np.ndarray):
        return p.dtype.kind in "iu"
    return False


def _clip_index(p, batched, x, k):
    if not _is_int_index(p) or k + 1 >= x.ndim:
        return p
    size = x.shape[k + 1]
    if size == 0:
        return p
    return np.clip(p, -size, size - 1)


def _getitem_batched_unbatched_index(x, idx):
    full = (slice(None),) + tuple(idx)
    out = x[full]
    # NumPy puts the dimensions of separated advanced indices first, which
    # would move the batch axis; find where it went and move it back
    if any(isinstance(p, (np.ndarray, list)) for p in idx):
        kinds = ["s"] + [("a" if _advanced(p) or (isinstance(p, np.ndarray)) else "s")
                         for p in idx]
        pos = [k for k, c in enumerate(kinds) if c == "a"]
        if pos and pos != list(range(pos[0], pos[-1] + 1)):
            adv_nd = np.broadcast_shapes(*[
                (np.count_nonzero(np.asarray(p)),) if np.asarray(p).dtype == bool
                else np.shape(p) for p in idx if _advanced(p)])
            out = np.moveaxis(out, len(adv_nd), 0)
    return out


getitem_lanes = primitive("getitem_lanes")(_getitem_lanes)


def _setitem_lanes(x, value, batched, idx, clip=False):
    """setitem_lanes(x, value, batched, idx) == per lane a copy of x with
    x[idx] = value; batched = flags for (x, value, *idx)."""
    xb, vb, ib = batched[0], batched[1], batched[2:]
    n = None
    for part, f in [(x, xb), (value, vb)] + list(zip(idx, ib)):
        if f:
            n = np.shape(part)[0]
    x = np.asarray(x)
    out = np.array(np.broadcast_to(x, (n,) + x.shape) if not xb else x, copy=True)
    if out.dtype != np.result_type(out, value) and np.result_type(out, value).kind == "c":
        out = out.astype(np.result_type(out, value))
    if clip:
        idx = tuple(_clip_index(p, f, out, k) for k, (p, f) in enumerate(zip(idx, ib)))
    from .structural import _index
    if not any(ib):
        v = np.asarray(value)
        if vb:
            # the value's batch axis must line up with the selection's
            sel = _getitem_batched_unbatched_index(out, idx)
            v = v.reshape(v.shape[:1] + (1,) * (sel.ndim - v.ndim) + v.shape[1:])
            v = np.broadcast_to(v, sel.shape)
            for b in range(n):
                out[b][_index(tuple(idx))] = v[b]
            return out
        out[(slice(None),) + tuple(idx)] = v
        return out
    for b in range(n):
        out[b][_index(tuple(p[b] if f else p for p, f in zip(idx, ib)))] = \
            value[b] if vb else value
    return out


setitem_lanes = primitive("setitem_lanes", no_rule={
    "vjp": "the adjoint of a per-lane in-place update (grad of vmap of code that "
           "assigns into a batched index) is not written yet; take vmap of the "
           "gradient (vmap(grad(f))) instead of grad(vmap(f))"})(_setitem_lanes)


# -- contractions -----------------------------------------------------------------

@primitive("matmul_lanes")
def matmul_lanes(a, b, batched):
    """matmul_lanes(a, b, batched) == per lane numpy.matmul(a, b), where
    batched = (a batched?, b batched?)."""
    ab, bb = batched
    a, b = np.asarray(a), np.asarray(b)
    ra, rb = a.ndim - ab, b.ndim - bb
    if ra == 0 or rb == 0:
        raise ValueError("matmul: operands must not be 0-d")
    if ra == 1:
        a = np.expand_dims(a, -2)
    if rb == 1:
        b = np.expand_dims(b, -1)
    pa, pb = a.ndim - ab, b.ndim - bb
    want = max(pa, pb)
    if ab:
        a = a.reshape(a.shape[:1] + (1,) * (want - pa) + a.shape[1:])
    if bb:
        b = b.reshape(b.shape[:1] + (1,) * (want - pb) + b.shape[1:])
    if ab and not bb:
        pass  # b broadcasts from the right
    if bb and not ab:
        a = a.reshape((1,) * (b.ndim - a.ndim) + a.shape) if a.ndim < b.ndim else a
    out = np.matmul(a, b)
    if rb == 1:
        out = out[..., 0]
    if ra == 1:
        out = out[..., 0, :] if rb != 1 else out[..., 0]
    return out


# -- the fallback ---------------------------------------------------------------

def _stack_tree(outs):
    first = outs[0]
    if isinstance(first, dict):
        return {k: _stack_tree([o[k] for o in outs]) for k in first}
    if _seq_kids(first) is not None:
        kids = [_seq_kids(o) for o in outs]
        return _seq_like(first, [_stack_tree([k[i] for k in kids])
                                 for i in range(len(kids[0]))])
    if isinstance(first, _NON_DATA) and not isinstance(first, str):
        return first
    return np.stack([np.asarray(o) for o in outs])


_MAP_LANES_NO_DERIVATIVE = (
    "map_lanes runs a primitive without a vectorised batching rule lane by lane, "
    "and its derivative would be that primitive's rule applied lane by lane, which "
    "no template can say; differentiate before batching (vmap(grad(f)), "
    "vmap(jvp(f))) instead of after")


@primitive("map_lanes", no_rule={"jvp": _MAP_LANES_NO_DERIVATIVE,
                                 "vjp": _MAP_LANES_NO_DERIVATIVE})
def map_lanes(prim, batched, n, *args, **params):
    """map_lanes(prim, batched, n, *args, **params) == the primitive named
    `prim` applied lane by lane (batched[i]: does args[i] have a batch axis?),
    its results stacked along a new axis 0.  The always-correct batching rule
    of primitives without a vectorised one."""
    p = PRIMITIVES[prim]
    outs = []
    for b in range(n):
        lane_args = [_lane_tree(a, f, b) for a, f in zip(args, batched)]
        outs.append(p.impl(*lane_args, **params))
    if n == 0:
        raise ShapeError(f"vmap: primitive {prim!r} cannot be mapped over an empty batch")
    return _stack_tree(outs)


@primitive("unbroadcast_lanes")
def unbroadcast_lanes(g, x, x_batched):
    """unbroadcast_lanes(g, x, x_batched) == per lane unbroadcast(g, x) for a
    batched g: summed over the axes broadcasting added to each lane of x
    (its real part for a real x, as unbroadcast)."""
    from .adjoint_helpers import real_for
    g = np.asarray(real_for(g, x))
    target = np.shape(x)[1:] if x_batched else np.shape(x)
    lane = g.shape[1:]
    if lane == tuple(target):
        return g
    lead = len(lane) - len(target)
    axes = tuple(1 + i for i in range(lead)) + tuple(
        1 + lead + i for i, d in enumerate(target) if d == 1 and lane[lead + i] != 1)
    out = np.sum(g, axis=axes, dtype=g.dtype, keepdims=True)
    return out.reshape((g.shape[0],) + tuple(target))


@primitive("lane_length", differentiable=False)
def lane_length(x):
    """lane_length(x) == len() of one lane of batched x: len(x) for a list or
    tuple of batched values, x.shape[1] for a batched array."""
    return len(x) if _is_container(x) else np.shape(x)[1]


@primitive("axes_after_batch", differentiable=False)
def axes_after_batch(axis, ndim):
    """axes_after_batch(axis, ndim) == the per-lane `axis` argument of a
    reduction, for an operand of total rank ndim batched at 0 (None: every
    axis but the batch axis)."""
    if axis is None:
        return tuple(range(1, ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(a + 1 if a >= 0 else a for a in axis)
    return axis + 1 if axis >= 0 else axis


@primitive("batch_shape", differentiable=False)
def batch_shape(shape, n):
    """batch_shape(shape, n) == (n,) + tuple(shape) (an int shape counts as (shape,))."""
    if isinstance(shape, (int, np.integer)):
        return (n, int(shape))
    return (n,) + tuple(shape)


@primitive("lane_perm", differentiable=False)
def lane_perm(axes, ndim):
    """lane_perm(axes, ndim) == the permutation of a rank-ndim operand batched
    at 0 that applies the per-lane transpose `axes` (None: reversed)."""
    r = ndim - 1
    if axes is None:
        axes = tuple(range(r))[::-1]
    return (0,) + tuple((a % r) + 1 for a in axes)


# -- adjoints (reverse mode of batched code: grad of vmap) ------------------------

@primitive("batch_sum_unbatched")
def batch_sum_unbatched(g, state):
    """batch_sum_unbatched(g, state) == g with the batch axis summed away on
    the leaves `state` marks unbatched: the adjoint of batch_broadcast."""
    if state is True or g is None:
        return g

    def leaf(v, batched):
        if batched or v is None or isinstance(v, _NON_DATA):
            return v
        return np.sum(v, axis=0)
    return _map_coded(leaf, g, state)


def _lane_adjoint(adjoint, g, operand, batched, k, args, keep_lanes=False):
    """Per lane `adjoint(g, *args)` for operand args[k]; summed over lanes
    when that operand is not batched."""
    n = np.shape(g)[0]
    outs = [adjoint(g[b], *[_lane_tree(a, f, b) for a, f in zip(args, batched)])
            for b in range(n)]
    out = np.stack([np.asarray(o) for o in outs])
    return out if batched[k] or keep_lanes else np.sum(out, axis=0)


_SECOND_ORDER_THROUGH_VMAP = (
    "reverse mode over the gradient of batched code (grad of grad of vmap) is not "
    "written yet; use forward-over-reverse (jvp of grad of vmap, or hessian) instead")


@primitive("getitem_lanes_adjoint", no_rule={"vjp": _SECOND_ORDER_THROUGH_VMAP})
def getitem_lanes_adjoint(g, x, batched, idx):
    """The adjoint of x in getitem_lanes(x, batched, idx)."""
    from .structural import _index
    xb, ib = batched[0], batched[1:]

    def adj(gl, xl, *parts):
        out = np.zeros(np.shape(xl), np.result_type(gl, np.float64))
        np.add.at(out, _index(parts), gl)
        return out
    return _lane_adjoint(adj, g, x, (xb,) + tuple(ib), 0, (x,) + tuple(idx))


@primitive("matmul_lanes_adjoint", no_rule={"vjp": _SECOND_ORDER_THROUGH_VMAP})
def matmul_lanes_adjoint(g, a, b, batched, wrt, keep_lanes=False):
    """matmul_lanes_adjoint(g, a, b, batched, wrt, keep_lanes): see
    `_matmul_lanes_adjoint`; its real part for a real operand `wrt` (complex16)."""
    from .adjoint_helpers import real_for
    return real_for(_matmul_lanes_adjoint(g, a, b, batched, wrt, keep_lanes), (a, b)[wrt])


def _matmul_lanes_adjoint(g, a, b, batched, wrt, keep_lanes=False):
    """The adjoint of operand `wrt` (0: a, 1: b) in matmul_lanes(a, b, batched),
    for a batched cotangent g: batched when that operand is (or when
    `keep_lanes`: per-lane adjoints, as vmap of a gradient wants), else summed
    over the lanes."""
    ab, bb = batched
    ra, rb = np.ndim(a) - ab, np.ndim(b) - bb
    if 1 <= ra <= 2 and 1 <= rb <= 2:
        # one einsum per case, the lane axis as label z
        sa = "mk" if ra == 2 else "k"
        sb = "kn" if rb == 2 else "k"
        sg = ("m" if ra == 2 else "") + ("n" if rb == 2 else "")
        za, zb = ("z" if ab else "") + sa, ("z" if bb else "") + sb
        if wrt == 0:
            return np.einsum(f"z{sg},{zb}->{'z' + sa if keep_lanes else za}", g, b)
        return np.einsum(f"{za},z{sg}->{'z' + sb if keep_lanes else zb}", a, g)
    def adj(gl, al, bl):
        gl, al, bl = np.asarray(gl), np.asarray(al), np.asarray(bl)
        mine = (al, bl)[wrt]
        if al.ndim == 1 and bl.ndim == 1:
            full = gl * (bl if wrt == 0 else al)
        elif wrt == 0 and bl.ndim == 1:
            full = np.multiply.outer(gl, bl)
        elif wrt == 0 and al.ndim == 1:
            full = np.matmul(gl[..., None, :], np.swapaxes(bl, -1, -2))[..., 0, :]
        elif wrt == 0:
            full = np.matmul(gl, np.swapaxes(bl, -1, -2))
        elif al.ndim == 1:
            full = al[:, None] * gl[..., None, :]
        elif bl.ndim == 1:
            full = np.matmul(np.swapaxes(al, -1, -2), gl[..., None])[..., 0]
        else:
            full = np.matmul(np.swapaxes(al, -1, -2), gl)
        lead = full.ndim - mine.ndim
        if lead > 0:
            full = full.sum(axis=tuple(range(lead)))
        return full
    return _lane_adjoint(adj, g, (a, b)[wrt], batched, wrt, (a, b), keep_lanes)


# -- shape/dtype rules ------------------------------------------------------------
# Every helper's output shape follows from its inputs' shapes (lanes_any's
# value is a run-time bool), so running it on stand-ins gives the rule.

def _map_lanes_rule(running):
    """map_lanes' shape rule: the mapped primitive's own rule on one lane's
    abstract values, its results given the batch axis.  A primitive whose rule
    runs its kernel on stand-ins (or batched arguments known at compile time,
    whose lanes differ) keeps `running`, which maps the kernel itself:
    explicit rules exist precisely where stand-ins fail (`solve` of a
    singular stand-in) or cost a full computation."""
    from ..codegen.abstract import ShapedArray
    from .numeric_rules import any_abstract, tree_leaves, tree_map

    def lane_aval(v):
        if isinstance(v, ShapedArray) and v.shape:
            return ShapedArray(v.shape[1:], v.dtype, v.weak_type)
        raise TypeError("not a batched abstract value")

    def batched_aval(v, n):
        if isinstance(v, ShapedArray):
            return ShapedArray((n,) + tuple(v.shape), v.dtype)
        if v is None or isinstance(v, _NON_DATA):
            return v
        a = np.asarray(v)   # the same on every lane, as the kernel would stack it
        return np.broadcast_to(a, (n,) + a.shape)

    def rule(prim, batched, n, *args, **params):
        p = PRIMITIVES.get(prim)
        own = getattr(p, "abstract_eval", None)
        if own is None or getattr(own, "__name__", "").startswith("by_running") or \
                not isinstance(n, (int, np.integer)) or not any_abstract(args, params) or \
                any(f and not all(isinstance(v, ShapedArray) for v in tree_leaves(a))
                    for a, f in zip(args, batched)):
            return running(prim, batched, n, *args, **params)
        try:
            lanes = [tree_map(lane_aval, a) if f else a for a, f in zip(args, batched)]
        except TypeError:
            return running(prim, batched, n, *args, **params)
        return tree_map(lambda v: batched_aval(v, int(n)), own(*lanes, **params))
    return rule


def _attach_rules():
    from ..codegen.abstract import ShapedArray
    from .numeric_rules import by_running
    special = {
        "map_lanes": _map_lanes_rule(by_running(map_lanes.impl)),
        "lanes_any": lambda mask: ShapedArray((), np.bool_),
        # the previous settings: a dict of the four error kinds, whose
        # values ('warn', 'ignore', ...) are only known at run time
        "errstate_quiet": lambda: dict.fromkeys(np.geterr(), ""),
        "errstate_restore": lambda old: None,
        "print_lanes": lambda *a, **k: None,
        "check_lanes": lambda *a, **k: None,
    }
    for name, value in list(globals().items()):
        p = value
        if getattr(p, "abstract_eval", "x") is None and PRIMITIVES.get(getattr(p, "name", None)) is p:
            p.abstract_eval = special.get(p.name) or by_running(p.impl)


_attach_rules()
