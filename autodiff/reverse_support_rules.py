"""JVP and batching rules of the helper primitives that only reverse mode
emits and that are newer than forward.py / batching (`assemble_adjoint`,
`check_svd_vjp`).

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


def _unchanged_check(c):
    """A run-time check reads only shapes: the same call, per batch."""
    c.assign(c.call())
    return False


PRIMITIVES["check_svd_vjp"].batch_rule = _unchanged_check
