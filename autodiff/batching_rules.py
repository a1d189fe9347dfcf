"""Batching rules: one for every primitive in the table.

Owns the vmap rule of each primitive, attached by name
(`PRIMITIVES[name].batch_rule`).  A rule receives a `batching.BatchCall`
for one statement `z = prim(...)` in which at least one argument is
batched (always at axis 0; see batching.py) and emits the batched form,
returning the state of `z`.  Where it can, a rule is a template whose body
is spliced (`c.template`): `z` is the output, `n` the batch size and `PRIM`
the primitive itself.  Primitives with no vectorised form fall back to
`map_lanes`, which runs them lane by lane (correct, slower); those whose
per-lane results could not be stacked (shapes that depend on values) are
refused with a ShapeError.  Must not hold derivative rules.
"""

from ..errors import NonDifferentiableError, ShapeError
from ..runtime.table import PRIMITIVES
from .batching import Assign, Call, Const, Name, make_tree_state, is_tree_state, tree_children, any_batched
import gast
from .syntax import walk


from . import batching_derivatives  # noqa: E402,F401  (derivatives of vmap's helpers)


def batch_rule(*names):
    def register(fn):
        # the table is still growing: a name not (or no longer) registered is skipped
        for name in names:
            if name in PRIMITIVES:
                PRIMITIVES[name].batch_rule = _binding_parameters(fn)
        return fn
    return register


def _required_positional(prim):
    """How many leading positional parameters of `prim` have no default
    (None when its implementation takes *args: every argument is data)."""
    import inspect
    try:
        params = list(inspect.signature(prim.impl).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               and p.default is p.empty)


def _binding_parameters(fn):
    """`fn` seeing parameters passed by position as keywords.

    A call may spell a parameter positionally (`sum(g, 0, True)`: the VJP of
    a reduction does), and the rules read parameters by keyword: a rule that
    did not see them fell back to running lane by lane, or ignored them.
    The implementation's signature says which name each position binds."""
    if getattr(fn, "binds_parameters", False):
        return fn

    def rule(c):
        n = _required_positional(PRIMITIVES[c.prim])
        if n is not None and len(c.args) > n:
            extra = PRIMITIVES[c.prim].bind_extra(c.args, n)
            for k in extra:
                if k in c.kwargs:
                    raise TypeError(f"{c.prim}() got multiple values for argument {k!r}")
            states = dict(zip(extra, c.states[n:]))
            c.args, c.states = c.args[:n], c.states[:n]
            c.kwargs = {**c.kwargs, **extra}
            c.kw_states = {**c.kw_states, **states}
        return fn(c)
    rule.__name__ = fn.__name__
    rule.__qualname__ = fn.__qualname__
    rule.__doc__ = fn.__doc__
    rule.__wrapped__ = fn
    rule.binds_parameters = True
    return rule


def bind_parameters_of_all_rules():
    """Give every attached batching rule (those other modules attach too:
    FFTs, reverse mode's helpers) the keyword view of its parameters."""
    for p in PRIMITIVES.values():
        r = p.batch_rule
        if r is not None and not getattr(r, "binds_parameters", False):
            p.batch_rule = _binding_parameters(r)


# ---------------------------------------------------------------- elementwise

ELEMENTWISE = [
    "add", "subtract", "multiply", "divide", "power", "maximum", "minimum", "arctan2",
    "remainder", "fmod", "negative", "absolute", "sin", "cos", "tan", "arcsin", "arccos",
    "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "exp", "expm1",
    "log", "log1p", "sqrt", "sign", "floor", "ceil", "trunc", "rint", "floor_divide",
    "round", "isnan", "isinf", "isfinite", "equal", "not_equal", "less", "less_equal",
    "greater", "greater_equal", "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "where", "select",
    "range_active", "left_shift", "right_shift", "positive",
]


@batch_rule(*ELEMENTWISE)
def elementwise(c):
    """Broadcasting ops: a batched operand whose per-lane rank is lower than
    another operand's gets size-1 axes after its batch axis, so NumPy's
    right-aligned broadcasting cannot pair the batch axis with a data axis."""
    args = []
    for i, a in enumerate(c.args):
        if is_tree_state(c.states[i]):
            a = c.promoted(i)
        if c.batched(i):
            others = [c.rank(j) for j, o in enumerate(c.args)
                      if j != i and not isinstance(o, gast.Constant)]
            if others:
                a = Call("batch_lift", [a] + others)
        args.append(a)
    c.assign(c.call(args))
    return True


@batch_rule("astype", "copy", "zeros_like", "ones_like", "stop_gradient",
            "inv", "det", "slogdet", "cholesky", "eigh", "svd", "qr")
def leading_axis_ok(c):
    """Ops that act on each lane's trailing axes already (NumPy's linalg
    broadcasts over leading axes; casts and copies are elementwise)."""
    if c.batched(0) and not any(any_batched(s) for s in c.states[1:]):
        c.assign(c.call())
        return True
    return c.map_lanes()


# ---------------------------------------------------------------- reductions


def _reduce(x, *, axis=None, keepdims=False):
    z = PRIM(x, axis=axes_after_batch(axis, ndim(x)), keepdims=keepdims)  # noqa: F821


def _flat_reduce(x):
    z = PRIM(reshape(x, (n, -1)), axis=1)  # noqa: F821


@batch_rule("sum", "prod", "max", "min", "any", "all", "argmax", "argmin")
def reduction(c):
    known, axis = c.kw_const("axis")
    if c.prim in ("argmax", "argmin"):
        if not known:
            return c.map_lanes()
        if axis is None:
            kd = c.kw_const("keepdims", False)
            if kd != (True, False):
                return c.map_lanes()
            c.template(_flat_reduce, args=c.args[:1])
            return True
    c.template(_reduce, params={"axis": c.kw("axis"), "keepdims": c.kw("keepdims", False)})
    return True


def _scan(x, *, axis=None):
    z = PRIM(x, axis=axes_after_batch(axis, ndim(x)))  # noqa: F821


@batch_rule("cumsum", "cumprod")
def scan(c):
    known, axis = c.kw_const("axis")
    if not known or axis is None or len(c.args) > 1:
        return c.map_lanes()
    c.template(_scan, params={"axis": c.kw("axis")})
    return True


# ---------------------------------------------------------------- shape queries


@batch_rule("shape")
def shape_rule(c):
    c.assign(Call("getitem", [Call("shape", c.args), Call("make_slice", [1, None, None])]))
    return False


@batch_rule("ndim")
def ndim_rule(c):
    c.assign(Call("subtract", [Call("ndim", c.args), 1]))
    return False


@batch_rule("length")
def length_rule(c):
    c.assign(Call("lane_length", c.args))
    return False


@batch_rule("size")
def size_rule(c):
    c.assign(Call("prod", [Call("getitem", [Call("shape", c.args),
                                            Call("make_slice", [1, None, None])])],
                  {"dtype": Const("int64")}))
    return False


@batch_rule("is_", "is_not")
def identity_rule(c):
    """A batched value is an array, never None: `x is None` is known --
    unless x may hold None (a name some path binds to None: joined with a
    batched branch it is batched, but still None at run time), where the
    test runs (its answer is the same for every lane)."""
    if any(isinstance(a, gast.Constant) and a.value is None for a in c.args) and \
            not any(isinstance(a, gast.Name) and a.id in _may_be_none(c.batcher)
                    for a in c.args):
        c.assign(Const(c.prim == "is_not"))
        c.batcher.consts[c.out] = c.prim == "is_not"
        return False
    return unchanged_unbatched(c)


def _may_be_none(batcher):
    """Names of the function being batched that a branch of an `if` binds
    to None, directly or through copies (computed once per batcher).  Only
    branches: there a None can meet a batched value from the other branch
    (placeholders bound to None at the top are overwritten before use)."""
    got = getattr(batcher, "_may_be_none", None)
    if got is None:
        in_branches = [st for n in walk(batcher.core.node) if isinstance(n, gast.If)
                       for st in n.body + n.orelse]
        seeds = {id(st) for st in in_branches if isinstance(st, gast.Assign)
                 and isinstance(st.value, gast.Constant) and st.value.value is None}
        assigns = [n for n in walk(batcher.core.node) if isinstance(n, gast.Assign)
                   and isinstance(n.targets[0], gast.Name)
                   and (id(n) in seeds or isinstance(n.value, gast.Name))]
        got = set()
        changed = True
        while changed:
            changed = False
            for a in assigns:
                t, v = a.targets[0].id, a.value
                if t in got:
                    continue
                if (isinstance(v, gast.Constant) and v.value is None) or \
                        (isinstance(v, gast.Name) and v.id in got):
                    got.add(t)
                    changed = True
        batcher._may_be_none = got
    return got


@batch_rule("dtype", "static_dtype")
def unchanged_unbatched(c):
    """Results that are the same for every lane."""
    c.assign(c.call())
    return False


# ---------------------------------------------------------------- structural


@batch_rule("make_tuple", "make_list")
def make_sequence(c):
    c.assign(c.call())
    return make_tree_state("tuple" if c.prim == "make_tuple" else "list", c.states)


@batch_rule("make_dict")
def make_dict_rule(c):
    keys = c.kwargs["keys"].value if isinstance(c.kwargs.get("keys"), gast.Constant) else None
    c.assign(c.call())
    if keys is None:
        return True if any(any_batched(s) for s in c.states) else False
    return make_tree_state("dict", c.states, keys)


@batch_rule("list_append")
def list_append_rule(c):
    xs, x = c.states
    if xs == x and not is_tree_state(xs):
        c.assign(c.call())
        return xs
    c.assign(Call("list_append", [c.promoted(0), c.promoted(1)]))
    return True


@batch_rule("seq_concat")
def seq_concat_rule(c):
    """Lanes share a container's structure: concatenating two containers of
    known states concatenates the states; otherwise every leaf is batched."""
    a, b = c.states
    if is_tree_state(a) and is_tree_state(b) and a[0] == b[0] and a[0] != "dict":
        c.assign(c.call())
        return make_tree_state(a[0], tree_children(a) + tree_children(b))
    if not is_tree_state(a) and not is_tree_state(b) and a == b:
        c.assign(c.call())
        return a
    c.assign(Call("seq_concat", [c.promoted(0), c.promoted(1)]))
    return True


@batch_rule("seq_repeat")
def seq_repeat_rule(c):
    if c.batched(1):
        raise ShapeError("vmap: the repetition count of a tuple or list (`seq * n`) differs "
                         "per lane; every lane must build the same structure")
    st = c.states[0]
    c.assign(c.call())
    if is_tree_state(st):
        if isinstance(c.args[1], gast.Constant) and isinstance(c.args[1].value, int):
            return make_tree_state(st[0], tree_children(st) * c.args[1].value)
        c.assign(Call("seq_repeat", [c.promoted(0), c.args[1]]))
        return True
    return st


@batch_rule("seq_repeat_adjoint")
def seq_repeat_adjoint_rule(c):
    # the chunks' leaves add lane by lane: the sum of batched leaves is batched
    c.assign(Call("seq_repeat_adjoint", [c.promoted(0), c.args[1]]))
    return True


@batch_rule("operand_guard")
def operand_guard_rule(c):
    # a batched value keeps its kind (an array, or a container of them)
    c.assign(c.call())
    return False


def _splice_tuple_index(c, first):
    """`x[IDX]` with IDX a constant tuple is `x[IDX[0], IDX[1], ...]` (as
    structural._index reads one tuple part): the per-lane helpers take the
    index part by part."""
    parts = c.args[first:]
    if len(parts) == 1 and isinstance(parts[0], gast.Constant) \
            and isinstance(parts[0].value, tuple):
        elts = [Const(v) for v in parts[0].value]
        c.args = c.args[:first] + elts
        c.states = c.states[:first] + [False] * len(elts)


@batch_rule("getitem")
def getitem_rule(c):
    if not is_tree_state(c.states[0]):
        _splice_tuple_index(c, 1)
    xs, ids = c.states[0], c.states[1:]
    # a constant index into a container of known states: pick the child
    if is_tree_state(xs) and not any(any_batched(s) for s in ids) and len(c.args) == 2 \
            and isinstance(c.args[1], gast.Constant):
        key = c.args[1].value
        kids = tree_children(xs)
        if xs[0] == "dict" and key in xs[1]:
            c.assign(c.call())
            return kids[xs[1].index(key)]
        if xs[0] != "dict" and isinstance(key, int) and -len(kids) <= key < len(kids):
            c.assign(c.call())
            return kids[key]
    x = c.promoted(0) if is_tree_state(xs) else c.args[0]
    flags = (any_batched(xs),) + tuple(any_batched(s) for s in ids)
    idx = [c.promoted(i + 1) if is_tree_state(s) else a
           for i, (a, s) in enumerate(zip(c.args[1:], ids))]
    kw = {"clip": Const(True)} if c.mask is not None and any(flags[1:]) else {}
    c.assign(Call("getitem_lanes", [x, Const(flags), gast.Tuple(elts=idx, ctx=gast.Load())], kw))
    return True


@batch_rule("setitem")
def setitem_rule(c):
    _splice_tuple_index(c, 2)
    flags = tuple(any_batched(s) for s in c.states)
    args = [c.promoted(i) if is_tree_state(s) else a
            for i, (a, s) in enumerate(zip(c.args, c.states))]
    kw = {"clip": Const(True)} if c.mask is not None and any(flags[2:]) else {}
    c.assign(Call("setitem_lanes", args[:2] + [Const(flags), gast.Tuple(elts=args[2:],
                                                                       ctx=gast.Load())], kw))
    return True


@batch_rule("make_slice")
def make_slice_rule(c):
    raise ShapeError("vmap: a slice whose bounds differ per lane would give each lane a "
                     "different shape; index with a gather (take / an index array) or a "
                     "mask instead")


@batch_rule("to_float")
def to_float_rule(c):
    c.assign(Call("astype", [c.args[0], Const("float64")]))
    return True


@batch_rule("to_int")
def to_int_rule(c):
    c.assign(Call("astype", [c.args[0], Const("int64")]))
    return True


@batch_rule("print")
def print_rule(c):
    flags = tuple(any_batched(s) for s in c.states)
    args = [c.promoted(i) if is_tree_state(s) else a
            for i, (a, s) in enumerate(zip(c.args, c.states))]
    mask = gast.Name(id=c.mask, ctx=gast.Load(), annotation=None, type_comment=None) \
        if c.mask else Const(None)
    kw = dict(c.kwargs)
    kw["n"] = gast.Name(id=c.n, ctx=gast.Load(), annotation=None, type_comment=None)
    c.assign(Call("print_lanes", [mask, Const(flags)] + args, kw))
    return False


@batch_rule("check")
def check_rule(c):
    mask = gast.Name(id=c.mask, ctx=gast.Load(), annotation=None, type_comment=None) \
        if c.mask else Const(None)
    c.assign(Call("check_lanes", [mask, c.promoted(0)] + c.args[1:], c.kwargs))
    return False


# ---------------------------------------------------------------- shape ops


def _reshape(x, shape):
    z = reshape(x, batch_shape(shape, n))  # noqa: F821


def _transpose(x, *, axes=None):
    z = transpose(x, lane_perm(axes, ndim(x)))  # noqa: F821


def _broadcast_to(x, shape):
    # size() of a shape tuple is its length (of an int shape, 1)
    z = broadcast_to(batch_lift(x, size(shape)), batch_shape(shape, n))  # noqa: F821


def _only_first_batched(c):
    return c.batched(0) and not any(any_batched(s) for s in c.states[1:]) \
        and not any(any_batched(s) for s in c.kw_states.values())


@batch_rule("reshape")
def reshape_rule(c):
    if not _only_first_batched(c):
        return c.map_lanes()
    c.template(_reshape)
    return True


@batch_rule("transpose")
def transpose_rule(c):
    if not _only_first_batched(c):
        return c.map_lanes()
    axes = c.args[1] if len(c.args) > 1 else c.kw("axes")
    c.template(_transpose, args=[c.args[0]], params={"axes": axes})
    return True


@batch_rule("broadcast_to")
def broadcast_to_rule(c):
    if not _only_first_batched(c):
        return c.map_lanes()
    c.template(_broadcast_to)
    return True


def _axis_arg(c, pos, name, default):
    """(atom, known, value) of an axis given positionally or by keyword."""
    if len(c.args) > pos:
        a = c.args[pos]
    else:
        a = c.kwargs.get(name, Const(default))
    if isinstance(a, gast.Constant):
        return a, True, a.value
    return a, False, None


def _with_axes(c, changes, npos):
    """The call with positional args past `npos` turned into keywords
    `changes` replaces."""
    names = list(changes)
    kw = dict(c.kwargs)
    for k, v in changes.items():
        kw[k] = v
    return Call(c.prim, c.args[:npos], kw), names


@batch_rule("flip", "sort", "argsort")
def axis_op_rule(c):
    default = None if c.prim == "flip" else -1
    a, known, val = _axis_arg(c, 1, "axis", default)
    if not _only_first_batched(c) or (known and val is None and c.prim != "flip"):
        return c.map_lanes()
    new = Call("axes_after_batch", [a, Call("ndim", [c.args[0]])])
    call, _ = _with_axes(c, {"axis": new}, 1)
    c.assign(call)
    return True


@batch_rule("diagonal")
def diagonal_rule(c):
    if not _only_first_batched(c):
        return c.map_lanes()
    off = c.args[1] if len(c.args) > 1 else c.kwargs.get("offset", Const(0))
    a1, _, _ = _axis_arg(c, 2, "axis1", 0)
    a2, _, _ = _axis_arg(c, 3, "axis2", 1)
    nd = Call("ndim", [c.args[0]])
    c.assign(Call("diagonal", [c.args[0]], {
        "offset": off, "axis1": Call("axes_after_batch", [a1, nd]),
        "axis2": Call("axes_after_batch", [a2, nd])}))
    return True


@batch_rule("concatenate")
def concatenate_rule(c):
    a, known, val = _axis_arg(c, 1, "axis", 0)
    if (known and val is None) or any(any_batched(s) for s in c.kw_states.values()) \
            or (len(c.states) > 1 and any_batched(c.states[1])):
        return c.map_lanes()
    kw = dict(c.kwargs)
    kw["axis"] = Call("axes_after_batch", [a, 0])
    c.assign(Call("concatenate", [c.promoted(0)], kw))
    return True


@batch_rule("take")
def take_rule(c):
    a, known, val = _axis_arg(c, 2, "axis", None)
    if not _only_first_batched(c) or not known or val is None:
        return c.map_lanes()
    c.assign(Call("take", [c.args[0], c.args[1]],
                  {"axis": Call("axes_after_batch", [a, Call("ndim", [c.args[0]])])}))
    return True


@batch_rule("take_along_axis")
def take_along_axis_rule(c):
    a, known, val = _axis_arg(c, 2, "axis", -1)
    if not known or val is None or (len(c.states) > 2 and any_batched(c.states[2])):
        return c.map_lanes()
    x, i = c.promoted(0), c.promoted(1)
    c.assign(Call("take_along_axis", [x, i],
                  {"axis": Call("axes_after_batch", [a, Call("ndim", [c.args[1]])])}))
    return True


@batch_rule("searchsorted")
def searchsorted_rule(c):
    if c.batched(0) or any(any_batched(s) for s in c.states[2:]):
        return c.map_lanes()
    c.assign(c.call())
    return True


@batch_rule("nonzero")
def nonzero_rule(c):
    raise ShapeError("vmap: nonzero's result has a different shape in each lane; use a "
                     "boolean mask with where/select instead")


# ---------------------------------------------------------------- creation


@batch_rule("zeros", "ones", "eye", "tri", "arange")
def creation_rule(c):
    raise ShapeError(f"vmap: the shape/size arguments of {c.prim} differ per lane "
                     "(they depend on a mapped value); every lane must build the same shape")


@batch_rule("array", "linspace", "to_tuple", "to_list", "strformat", "solve", "einsum",
            "dot")
def lane_by_lane(c):
    return c.map_lanes()


# ---------------------------------------------------------------- linalg


@batch_rule("matmul")
def matmul_rule(c):
    flags = (c.batched(0), c.batched(1))
    c.assign(Call("matmul_lanes", [c.args[0], c.args[1], Const(flags)]))
    return True


# ---------------------------------------------------------------- adjoint helpers


def _expand_reduced(g, shape, *, axis=None, keepdims=False):
    z = expand_reduced(g, batch_shape(shape, n),  # noqa: F821
                       axis=axes_after_batch(axis, add(size(shape), 1)),  # noqa: F821
                       keepdims=keepdims)


@batch_rule("expand_reduced")
def expand_reduced_rule(c):
    if not _only_first_batched(c) or len(c.args) > 2:
        return c.map_lanes()
    c.template(_expand_reduced, args=c.args[:2],
               params={"axis": c.kw("axis"), "keepdims": c.kw("keepdims", False)})
    return True


@batch_rule("add_any")
def add_any_rule(c):
    # adjoints of a pytree node (getattr_adjoint's results, which
    # pytree_rules records): their state collapsed to True, but they have no
    # ndim for the elementwise rule; lane by lane is right for them
    nodes = getattr(c.batcher, "cotan_node_names", set())
    if any(isinstance(a, gast.Name) and a.id in nodes for a in c.args):
        nodes.add(c.out)
        return c.map_lanes()
    if not any(is_tree_state(s) for s in c.states):
        return elementwise(c)
    c.assign(Call("add_any", [c.promoted(0), c.promoted(1)]))
    return True


# ---------------------------------------------------------------- static helpers


def _static_refused(c):
    raise ShapeError(f"vmap: {c.prim} expects static values (shapes, axes) but got a value "
                     "that differs per lane")


for _p in list(PRIMITIVES):
    if _p.startswith("static_") and _p != "static_dtype":
        PRIMITIVES[_p].batch_rule = _static_refused
for _p in ("axes_after_batch", "batch_shape", "lane_perm", "errstate_quiet",
           "errstate_restore"):
    if _p in PRIMITIVES:
        PRIMITIVES[_p].batch_rule = _static_refused


# ---------------------------------------------------------------- vmap's own helpers
# (nested vmap batches the code an inner vmap generated)


@batch_rule("batch_size")
def batch_size_rule(c):
    """An inner vmap's batch size, read from arguments an outer vmap maps:
    their mapped axes sit one further right."""
    st = c.states[2]
    count = len(c.args[1].value) if isinstance(c.args[1], gast.Constant) else None
    if count is None:
        raise ShapeError("vmap: internal: batch_size with unknown argument names")
    flags = tree_children(st) if is_tree_state(st) else [any_batched(st)] * count
    lead = c.kwargs.get("lead")
    old = lead.value if isinstance(lead, gast.Constant) else (0,) * count
    new = tuple(o + (1 if any_batched(f) else 0) for o, f in zip(old, flags))
    c.assign(c.call(kwargs={"lead": Const(new)}))
    return False


@batch_rule("lanes_any")
def lanes_any_rule(c):
    """An inner loop keeps going while any lane of any outer lane is active;
    the inner select already freezes every finished (outer, inner) lane."""
    c.assign(c.call())
    return False


@batch_rule("select_lanes")
def select_lanes_rule(c):
    c.assign(Call("select_lanes", [c.promoted(0), c.promoted(1), c.promoted(2)]))
    return True


for _p in ("batch_move_in", "batch_broadcast", "batch_move_out", "print_lanes",
           "check_lanes", "getitem_lanes", "setitem_lanes", "matmul_lanes", "map_lanes",
           "batch_lift", "batch_sum_unbatched", "getitem_lanes_adjoint",
           "matmul_lanes_adjoint", "lane_length", "unbroadcast_lanes"):
    if _p in PRIMITIVES:
        PRIMITIVES[_p].batch_rule = lane_by_lane


# ---------------------------------------------------------------- other transformations' helpers
# (vmap of a gradient or a JVP batches the code reverse and forward mode emit)


@batch_rule("tangent_zeros", "zero_adjoint")
def zeros_shaped_like(c):
    """Zeros shaped like the (possibly batched) operand: same state."""
    c.assign(c.call())
    return c.states[0]


@batch_rule("push")
def push_rule(c):
    """A stack that receives a batched value anywhere holds only batched
    values: batching.py marks it batched from its creation once any push to
    it is batched (`Batcher.batched_stacks`), and every push then broadcasts
    its value, so the pops return one type on every trip."""
    stack = c.args[0].id
    masked = c.batcher.masked_pushes.get(getattr(c.args[1], "id", None))
    if masked:
        # In a branch of a batched `if`, the lanes that did not take it push
        # their current value again (the top of their stack, since every
        # assignment of a saved name is pushed): each lane's stack then reads
        # as if it had pushed only on its own path, and the mirror-ordered
        # pops of the adjoint sweep drop these copies again.
        mask, before = masked
        c.assign(Call("push", [c.args[0], Call("select_lanes", [
            Name(mask), c.promoted(1), Name(before)])]))
        c.batcher.batched_stacks.add(stack)
        c.batcher.states[stack] = True
    elif any_batched(c.states[0]) or any_batched(c.states[1]):
        c.assign(Call("push", [c.args[0], c.promoted(1)]))
        c.batcher.batched_stacks.add(stack)
        c.batcher.states[stack] = True
    else:
        c.assign(c.call())
    return False


@batch_rule("pop_restore")
def pop_restore_rule(c):
    """`y = pop_restore(stack, y)`: batched when the stack is (see push_rule);
    a stack of unbatched values restoring a batched `y` is broadcast."""
    popped = Call("pop_restore", [c.args[0], c.promoted(1)])
    if not any_batched(c.states[0]):
        popped = Call("batch_broadcast", [popped, Const(False), gast.Name(
            id=c.n, ctx=gast.Load(), annotation=None, type_comment=None)])
    c.assign(popped)
    return True


@batch_rule("pop")
def pop_rule(c):
    """pop(stack): the popped value is batched when the stack is."""
    c.assign(c.call())
    return any_batched(c.states[0])


@batch_rule("check_grad_input", "new_stack", "inverse_axes")
def unchanged_effect(c):
    c.assign(c.call())
    return False


@batch_rule("matmul_grad_a", "matmul_grad_b")
def matmul_grad_rule(c):
    """matmul_grad_a(g, b, a) / matmul_grad_b(g, a, b): the per-lane adjoint
    of a matmul operand, vectorised over lanes (einsum with a lane label)."""
    if c.prim == "matmul_grad_a":
        (g, b, a), (sg, sb, sa), wrt = c.args, c.states, 0
    else:
        (g, a, b), (sg, sa, sb), wrt = c.args, c.states, 1
    gi = 0
    g = c.promoted(gi) if not any_batched(sg) else g
    flags = (any_batched(sa), any_batched(sb))
    c.assign(Call("matmul_lanes_adjoint", [g, a, b, Const(flags), Const(wrt)],
                  {"keep_lanes": Const(True)}))
    return True


@batch_rule("unbroadcast")
def unbroadcast_rule(c):
    if not c.batched(0):
        return c.map_lanes()
    c.assign(Call("unbroadcast_lanes", [c.args[0], c.args[1], Const(c.batched(1))]))
    return True


@batch_rule("grad_seed")
def grad_seed_rule(c):
    """Every lane's seed, and the output check once for all lanes: the seed
    is unused when the output has no derivative, and the check (refusing an
    int, bool or container output) must still run.  It checks the lanes'
    sum, which has one lane's shape and (but for bool) its dtype."""
    if is_tree_state(c.states[0]):
        what = c.kw("what", "the function")
        what = what.value if isinstance(what, gast.Constant) else "the function"
        raise NonDifferentiableError(
            f"{what} must return a scalar to be differentiated with grad, but it returns "
            "a container. Use cotan.vjp or cotan.jacrev for non-scalar outputs.")
    c.map_lanes()
    lanes = c.fresh("lanes")
    c.emit(Assign(lanes, Call("sum", [c.args[0]], {"axis": Const(0)})))
    c.emit(Assign("_", Call("grad_seed", [Name(lanes)] + c.args[1:], c.kwargs)))
    return True


@batch_rule("trip_count", "getitem_adjoint", "take_adjoint",
            "take_along_axis_adjoint", "diagonal_adjoint", "split_like", "unstack_like",
            "einsum_expand", "dot_grad_a", "dot_grad_b", "assemble_adjoint")
def lane_by_lane_helpers(c):
    return c.map_lanes()


bind_parameters_of_all_rules()
