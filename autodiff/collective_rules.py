"""Derivative and batching rules of the collectives, and vmap's named axes.

Owns the JVP, VJP and batching rules of `psum`, `pmean`, `pmax`, `pmin`,
`all_gather`, `ppermute`, `axis_index` and `ppermute_lanes`
(runtime/collectives.py), attached to the primitive table by name like every
other rule, and `bind_vmap_axis`, the step `vmap(f, axis_name=...)` runs
before batching.

Derivatives are those of the whole mapped function.  Under pmap shard k
computes y_k from x_k, and a derivative taken inside the shards (grad inside
pmap) is the derivative of the map X -> Y with one cotangent per shard.  So
`psum`'s transpose is `psum` (y_k = sum_j x_j, hence dx_j = sum_k g_k), `pmean`'s
is `pmean`, `all_gather`'s is a reduce-scatter (the psum of the cotangents,
then this shard's slice), `ppermute`'s is the inverse permutation, and
`pmax`/`pmin` send the summed cotangent to the shards holding the extreme
value (ties share it equally, like `max`).  `pmap(grad(f))` where f ends in
`psum` therefore gives N times the per-shard gradient (each of the N
replicated outputs is a separate output of the mapped function); data
parallel training takes `pmean` of per-shard gradients instead, which is the
gradient of the mean loss (tests/test_collectives.py checks both against
finite differences of the whole pmapped function).

Named axes.  `bind_vmap_axis` rewrites every collective over the vmapped
axis name to carry `lanes=<a mapped argument>` and drops that name from its
`axis_name`, so the batching rule is called for it even when its operand is
not batched (and `axis_index` gets an argument at all); the rules below turn
it into a reduction over the batch axis (psum -> sum over axis 0, all_gather
-> the batch axis moved into place, ppermute -> `ppermute_lanes`,
axis_index -> arange(n)).  A collective over another name stays a collective
on the batched operand (one more leading axis), so nested names work:
`vmap(vmap(f, axis_name="j"), axis_name="i")`, and pmap around vmap.  Must not
hold the collectives' implementations nor the transformations.
"""

import gast

from ..errors import ShapeError
from ..runtime.table import PRIMITIVES
from ..runtime.collectives import COLLECTIVES
from .rule_registry import vjp_rule
from .syntax import clone, walk
from .batching import Call, Const, Name, is_tree_state
from .normalize import CoreFunction


def _call(fn, args, keywords=None):
    return gast.Call(func=Name(fn), args=[clone(a) if isinstance(a, gast.AST) else Name(a)
                                          for a in args],
                     keywords=[gast.keyword(arg=k, value=clone(v))
                               for k, v in (keywords or {}).items()])


#: the parameters of each collective, in order (positional or keyword)
SIGNATURES = {
    "psum": ("x", "axis_name"), "pmean": ("x", "axis_name"), "pmax": ("x", "axis_name"),
    "pmin": ("x", "axis_name"), "all_gather": ("x", "axis_name"),
    "ppermute": ("x", "axis_name", "perm"), "axis_index": ("axis_name",),
    "ppermute_lanes": ("x", "perm", "axis"),
}


def _bind(prim, args, kwargs):
    """name -> gast atom of a collective call's arguments (positional or keyword)."""
    out = dict(zip(SIGNATURES[prim], args))
    for k, v in kwargs.items():
        out[k] = v
    return out


def _const(prim, bound, name, default=None):
    v = bound.get(name)
    if v is None:
        return default
    if isinstance(v, gast.Constant):
        return v.value
    if isinstance(v, gast.Tuple) and all(isinstance(e, gast.Constant) for e in v.elts):
        return tuple(e.value for e in v.elts)
    raise ShapeError(f"{prim}: {name} must be a constant (a literal in the source), got a "
                     "value computed at run time; write it as a literal")


# ---------------------------------------------------------------- JVP rules
# every collective is linear in x but pmax/pmin: the tangent is the same
# collective applied to the tangent

def _jvp_linear(prim):
    def rule(ctx, z, args, keywords):
        t = ctx.tangent(args[0])
        if ctx.is_zero(t):
            return None
        return ctx.call(prim, [t] + list(args[1:]), keywords)
    rule.cotan_builder = True
    rule.cotan_widen = False
    return rule


def _jvp_extreme(prim):
    def rule(ctx, z, args, keywords):
        x = args[0]
        t = ctx.tangent(x)
        if ctx.is_zero(t):
            return None
        b = _bind(prim, args, keywords)
        kws = {"axis_name": b["axis_name"]}
        # hit = 1.0 where this shard holds the extreme value: the tangent is
        # the mean of the tangents of the shards that hold it
        hit = ctx.call("select", [ctx.call("equal", [x, Name(z)]),
                                  ctx.call("ones_like", [x]), ctx.call("zeros_like", [x])])
        return ctx.call("divide", [ctx.call("psum", [ctx.call("multiply", [t, hit])], kws),
                                   ctx.call("psum", [hit], kws)])
    rule.cotan_builder = True
    rule.cotan_widen = False
    return rule


for _p in ("psum", "pmean", "all_gather", "ppermute", "ppermute_lanes"):
    PRIMITIVES[_p].jvp_rule = _jvp_linear(_p)
for _p in ("pmax", "pmin"):
    PRIMITIVES[_p].jvp_rule = _jvp_extreme(_p)


# ---------------------------------------------------------------- VJP rules

def _vjp(name):
    return vjp_rule(name, builder=True)


@_vjp("psum")
def _(ctx, g, z, args, kwargs):
    b = _bind("psum", args, kwargs)
    ctx.contribute(args[0], _call("psum", [g], {"axis_name": b["axis_name"]}))


@_vjp("pmean")
def _(ctx, g, z, args, kwargs):
    b = _bind("pmean", args, kwargs)
    ctx.contribute(args[0], _call("pmean", [g], {"axis_name": b["axis_name"]}))


def _vjp_extreme(prim):
    def rule(ctx, g, z, args, kwargs):
        x = args[0]
        kws = {"axis_name": _bind(prim, args, kwargs)["axis_name"]}
        hit = _call("select", [_call("equal", [x, z]), _call("ones_like", [x]),
                               _call("zeros_like", [x])])
        share = _call("divide", [_call("psum", [g], kws), _call("psum", [hit], kws)])
        ctx.contribute(x, _call("multiply", [share, hit]))
    rule.cotan_builder = True
    return rule


PRIMITIVES["pmax"].vjp_rule = _vjp_extreme("pmax")
PRIMITIVES["pmin"].vjp_rule = _vjp_extreme("pmin")


@_vjp("all_gather")
def _(ctx, g, z, args, kwargs):
    # reduce-scatter: every shard's cotangent for slice k summed, slice k kept
    b = _bind("all_gather", args, kwargs)
    axis = _const("all_gather", b, "axis", 0)
    total = _call("psum", [g], {"axis_name": b["axis_name"]})
    ctx.contribute(args[0], _call("take", [total, _call("axis_index", [b["axis_name"]])],
                                  {"axis": Const(axis)}))


def _flip_inverse(prim, kwargs):
    inv = kwargs.get("inverse")
    if inv is not None and not isinstance(inv, gast.Constant):
        raise ShapeError(f"{prim}: inverse must be a literal True or False")
    return not (inv.value if inv is not None else False)


@_vjp("ppermute")
def _(ctx, g, z, args, kwargs):
    b = _bind("ppermute", args, kwargs)
    ctx.contribute(args[0], _call("ppermute", [g, b["axis_name"], b["perm"]],
                                  {"inverse": Const(_flip_inverse("ppermute", kwargs))}))


@_vjp("ppermute_lanes")
def _(ctx, g, z, args, kwargs):
    b = _bind("ppermute_lanes", args, kwargs)
    kws = {"axis": b.get("axis", Const(0)),
           "inverse": Const(_flip_inverse("ppermute_lanes", kwargs))}
    ctx.contribute(args[0], _call("ppermute_lanes", [g, b["perm"]], kws))


# ---------------------------------------------------------------- batching rules

def _batch(*names):
    def attach(rule):
        for n in names:
            PRIMITIVES[n].batch_rule = rule
        return rule
    return attach


def _operand(c):
    if c.args and is_tree_state(c.states[0]):
        raise ShapeError(f"vmap: {c.prim} of a tuple, list or dict is not batched; apply it "
                         "to each array (e.g. a dict comprehension over the leaves)")
    return c.args[0]


def _rest_names(c, b):
    """The axis names left for the collective once the vmapped one is gone."""
    rest = _const(c.prim, b, "axis_name")
    return rest if isinstance(rest, tuple) else (rest,)


_REDUCE = {"psum": "sum", "pmax": "max", "pmin": "min"}


@_batch("psum", "pmean", "pmax", "pmin")
def _(c):
    b = _bind(c.prim, c.args, c.kwargs)
    x = _operand(c)
    if "lanes" not in c.kwargs:      # another axis: the same collective, lanes kept apart
        c.assign(c.call())
        return True
    if c.batched(0):
        if c.prim == "pmean":
            red = Call("divide", [Call("sum", [x], {"axis": Const(0)}), Name(c.n)])
        else:
            red = Call(_REDUCE[c.prim], [x], {"axis": Const(0)})
    else:                             # the same value on every lane
        red = Call("multiply", [x, Name(c.n)]) if c.prim == "psum" else clone(x)
    rest = _rest_names(c, b)
    if rest:
        tmp = c.fresh(c.out + "_lanes")
        c.assign(red, tmp)
        red = Call(c.prim, [Name(tmp)], {"axis_name": Const(rest)})
    c.assign(red)
    return False


def _single(c, b):
    rest = _rest_names(c, b)
    if rest:
        raise ShapeError(f"vmap: {c.prim} over several axis names at once is not supported; "
                         "call it once per name")


@_batch("all_gather")
def _(c):
    b = _bind("all_gather", c.args, c.kwargs)
    x = _operand(c)
    axis = _const("all_gather", b, "axis", 0)
    if "lanes" not in c.kwargs:
        # the gathered axis goes in front of the per-lane axis `axis`
        c.assign(c.call(kwargs={"axis": Const(axis + 1 if axis >= 0 else axis)}))
        return True
    _single(c, b)
    c.assign(Call("batch_move_out", [x, Const(axis), Const(c.batched(0)), Name(c.n)]))
    return False


@_batch("ppermute")
def _(c):
    b = _bind("ppermute", c.args, c.kwargs)
    x = _operand(c)
    if "lanes" not in c.kwargs:
        c.assign(c.call())
        return True
    _single(c, b)
    if not c.batched(0):
        x = Call("batch_broadcast", [x, Const(False), Name(c.n)])
    kws = {"axis": Const(0)}
    if "inverse" in c.kwargs:
        kws["inverse"] = c.kwargs["inverse"]
    c.assign(Call("ppermute_lanes", [x, b["perm"]], kws))
    return True


@_batch("ppermute_lanes")
def _(c):
    b = _bind("ppermute_lanes", c.args, c.kwargs)
    if not c.batched(0):
        raise ShapeError("vmap: ppermute's permutation cannot differ per lane")
    axis = _const("ppermute_lanes", b, "axis", 0)
    kws = {"axis": Const(axis + 1)}
    if "inverse" in c.kwargs:
        kws["inverse"] = c.kwargs["inverse"]
    c.assign(Call("ppermute_lanes", [c.args[0], b["perm"]], kws))
    return True


@_batch("axis_index")
def _(c):
    b = _bind("axis_index", c.args, c.kwargs)
    if "lanes" not in c.kwargs:
        raise ShapeError("vmap: axis_index's axis name cannot be a batched value")
    _single(c, b)
    c.assign(Call("arange", [Name(c.n)]))
    return True


# ---------------------------------------------------------------- vmap's named axis

def _axis_position(prim):
    return SIGNATURES[prim].index("axis_name")


def bind_vmap_axis(core, axis_name, lanes_param):
    """`core` with every collective over `axis_name` marked for vmap's rules
    (see the module docstring); `lanes_param` names a mapped parameter.
    Returns `core` itself when no collective names the axis."""
    key = (core, axis_name, lanes_param)
    if key not in _bound:
        _bound[key] = _bind_vmap_axis(core, axis_name, lanes_param)
    return _bound[key]


_bound = {}


def _bind_vmap_axis(core, axis_name, lanes_param):
    node = clone(core.node)
    used = {n.id for n in walk(node) if isinstance(n, gast.Name)}
    lanes = "lanes"
    k = 0
    while lanes in used or lanes in core.captured or lanes in PRIMITIVES:
        k += 1
        lanes = f"lanes_{k}"
    found = [False]

    def visit(stmts):
        for s in stmts:
            if isinstance(s, (gast.If, gast.For, gast.While)):
                visit(s.body)
                visit(s.orelse)
                continue
            v = getattr(s, "value", None)
            if not (isinstance(s, gast.Assign) and isinstance(v, gast.Call)
                    and isinstance(v.func, gast.Name) and v.func.id in COLLECTIVES):
                continue
            prim = v.func.id
            pos = _axis_position(prim)
            where = None
            if len(v.args) > pos:
                where = ("arg", pos)
                atom = v.args[pos]
            else:
                for i, kw in enumerate(v.keywords):
                    if kw.arg == "axis_name":
                        where, atom = ("kw", i), kw.value
            if where is None:
                continue
            if isinstance(atom, gast.Name) and atom.id in core.captured and isinstance(
                    core.captured[atom.id], (str, tuple)):
                # a global or closure constant naming the axis (AXIS = "batch")
                atom = gast.Constant(value=core.captured[atom.id], kind=None)
            names = _const(prim, {"axis_name": atom}, "axis_name")
            names = names if isinstance(names, tuple) else (names,)
            if axis_name not in names:
                continue
            rest = tuple(n for n in names if n != axis_name)
            new = gast.Constant(value=rest, kind=None)
            if where[0] == "arg":
                v.args[pos] = new
            else:
                v.keywords[where[1]].value = new
            v.keywords.append(gast.keyword(arg="lanes", value=Name(lanes)))
            found[0] = True

    visit(node.body)
    if not found[0]:
        return core
    first = gast.Assign(targets=[gast.Name(id=lanes, ctx=gast.Store(), annotation=None,
                                           type_comment=None)],
                        value=Name(lanes_param), type_comment=None)
    node.body.insert(0, first)
    return CoreFunction(core.name, node, core.captured, core.source_fn)
