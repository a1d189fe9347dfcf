"""JVP and batching rules of the helper primitives that only reverse mode
emits and that are newer than forward.py / batching (`assemble_adjoint`,
`unbroadcast_product`).

Owns nothing but these attachments, so that forward-over-reverse
(`jacfwd(grad(f))`) and `vmap(grad(f))` see a rule for every primitive a
generated gradient calls.  Must not hold VJP rules (vjp_rules.py) or touch
other primitives' rules.
"""

import gast

from ..runtime.table import PRIMITIVES


def _assemble_adjoint_jvp(ctx, z, args, keywords):
    """assemble_adjoint(x, paths, *parts) is linear in its parts jointly:
    its tangent assembles the parts' tangents (None for a zero tangent)."""
    tangents = [ctx.tangent(a) for a in args[2:]]
    if all(ctx.is_zero(t) for t in tangents):
        return None
    parts = [gast.Constant(value=None, kind=None) if ctx.is_zero(t) else t for t in tangents]
    return ctx.call("assemble_adjoint", list(args[:2]) + parts, keywords)


_assemble_adjoint_jvp.cotan_builder = True
_assemble_adjoint_jvp.cotan_widen = False
PRIMITIVES["assemble_adjoint"].jvp_rule = _assemble_adjoint_jvp


def _by_lanes(c):
    """Batched: run lane by lane (like reverse mode's other gather adjoints)."""
    return c.map_lanes()


PRIMITIVES["assemble_adjoint"].batch_rule = _by_lanes


def _unbroadcast_product_jvp(ctx, z, args, keywords):
    """unbroadcast_product(g, y, x) is bilinear in (g, y); x gives a shape."""
    g, y, x = args
    dg, dy = ctx.tangent(g), ctx.tangent(y)
    terms = []
    if not ctx.is_zero(dg):
        terms.append(ctx.call("unbroadcast_product", [dg, y, x]))
    if not ctx.is_zero(dy):
        terms.append(ctx.call("unbroadcast_product", [g, dy, x]))
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else ctx.call("add", terms)


_unbroadcast_product_jvp.cotan_builder = True
_unbroadcast_product_jvp.cotan_widen = False
PRIMITIVES["unbroadcast_product"].jvp_rule = _unbroadcast_product_jvp


def _unbroadcast_product_batch(c):
    """Batched: the per-lane product (operands lifted to a common per-lane
    rank), then the per-lane unbroadcast."""
    if not (c.batched(0) or c.batched(1)):
        c.assign(c.call())
        return False
    g, y = c.fresh("g"), c.fresh("y")
    c.emit(Assign(g, Call("batch_lift", [c.promoted(0), c.rank(1)])))
    c.emit(Assign(y, Call("batch_lift", [c.promoted(1), c.rank(0)])))
    c.assign(Call("unbroadcast_lanes", [Call("multiply", [_name(g), _name(y)]), c.args[2],
                                        gast.Constant(value=c.batched(2), kind=None)]))
    return True


PRIMITIVES["unbroadcast_product"].batch_rule = _unbroadcast_product_batch


def _name(n, store=False):
    return gast.Name(id=n, ctx=gast.Store() if store else gast.Load(), annotation=None,
                     type_comment=None)


def Call(fn, args):
    return gast.Call(func=_name(fn), args=[_name(a) if isinstance(a, str) else a for a in args],
                     keywords=[])


def Assign(target, value):
    return gast.Assign(targets=[_name(target, store=True)], value=value, type_comment=None)
