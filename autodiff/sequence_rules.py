"""Derivative rules of tuple and list `+` / `*` (runtime/structural.py).

Owns the JVP and VJP rules of `seq_concat`, `seq_repeat` and
`seq_repeat_adjoint`: a concatenation's tangent is the concatenation of the
tangents (an operand without one gets materialised zeros, so the tangent
keeps the container's structure), and its cotangent splits at the first
operand's length; a repetition's cotangent is the sum of its chunks.  The
batching rules are in batching_rules.py, the lowerings in codegen/.  Must not
hold rules of other primitives.
"""

import gast

from ..runtime.table import PRIMITIVES


def _const(v):
    return gast.Constant(value=v, kind=None)


def _jvp_builder(name):
    def attach(rule):
        rule.cotan_widen = False
        rule.cotan_builder = True
        PRIMITIVES[name].jvp_rule = rule
        return rule
    return attach


def _vjp_builder(name):
    def attach(rule):
        rule.cotan_builder = True
        PRIMITIVES[name].vjp_rule = rule
        return rule
    return attach


@_jvp_builder("seq_concat")
def _seq_concat_jvp(ctx, z, args, keywords):
    tangents = [ctx.tangent(a) for a in args]
    if all(ctx.is_zero(t) for t in tangents):
        return None
    return ctx.call("seq_concat", [ctx.materialize(t) for t in tangents])


@_jvp_builder("seq_repeat")
def _seq_repeat_jvp(ctx, z, args, keywords):
    t = ctx.tangent(args[0])
    if ctx.is_zero(t):
        return None
    return ctx.call("seq_repeat", [t, args[1]])


@_jvp_builder("seq_repeat_adjoint")
def _seq_repeat_adjoint_jvp(ctx, z, args, keywords):
    t = ctx.tangent(args[0])
    if ctx.is_zero(t):
        return None
    return ctx.call("seq_repeat_adjoint", [t, args[1]])


@_vjp_builder("seq_concat")
def _seq_concat_vjp(ctx, g, z, args, kwargs):
    a, b = args
    cut = ctx.call("length", [a])
    ctx.contribute(a, ctx.call("getitem", [g, ctx.call("make_slice",
                                                        [_const(None), cut, _const(None)])]))
    ctx.contribute(b, ctx.call("getitem", [g, ctx.call("make_slice",
                                                        [ctx.call("length", [a]),
                                                         _const(None), _const(None)])]))


@_vjp_builder("seq_repeat")
def _seq_repeat_vjp(ctx, g, z, args, kwargs):
    ctx.contribute(args[0], ctx.call("seq_repeat_adjoint", [g, args[0]]))


@_vjp_builder("seq_repeat_adjoint")
def _seq_repeat_adjoint_vjp(ctx, g, z, args, kwargs):
    # the transpose of summing the chunks: repeating the cotangent
    gin, a = args
    count = ctx.call("floor_divide", [ctx.call("length", [gin]), ctx.call("length", [a])])
    ctx.contribute(gin, ctx.call("seq_repeat", [g, count]))


#: primitives whose result is a list / a tuple
_MAKES = {"make_list": "list", "list_append": "list", "to_list": "list",
          "make_tuple": "tuple", "to_tuple": "tuple"}


def _container_kind(rev, name):
    """'list' or 'tuple' when every assignment of `name` in the function
    reverse mode differentiates makes one of that kind (None otherwise)."""
    from .reverse_analysis import _walk_assigns
    kinds = set()
    for a in _walk_assigns(rev.body):
        if a.targets[0].id != name:
            continue
        v = a.value
        if isinstance(v, gast.Call) and isinstance(v.func, gast.Name) and v.func.id in _MAKES:
            kinds.add(_MAKES[v.func.id])
        elif isinstance(v, gast.Call) and isinstance(v.func, gast.Name) \
                and v.func.id in ("seq_concat", "seq_repeat") \
                and isinstance(v.args[0], gast.Name):
            kinds.add(_container_kind(rev, v.args[0].id))
        else:
            return None
    return kinds.pop() if len(kinds) == 1 else None


def sequence_conversion_vjp(ctx, g, z, args, kwargs):
    """The VJP of tuple(x) / list(x): a container `x` gets the cotangent's
    entries in a container of its own kind (a list of differently shaped
    arrays is no array); an array `x` gets the rows stacked back."""
    x = args[0]
    kind = _container_kind(ctx.rev, x.id) if isinstance(x, gast.Name) else None
    if kind is not None:
        ctx.contribute(x, ctx.call("to_" + kind, [g]))
        return
    ctx.contribute(x, ctx.call("reshape", [ctx.call("array", [g]), ctx.call("shape", [x])]))


sequence_conversion_vjp.cotan_builder = True
