"""Derivatives of vmap's own helper primitives.

Owns the JVP and VJP templates of the primitives batched code calls
(runtime/batching_support.py), so `grad(vmap(f))`, `jvp(vmap(f))` and
`vmap(vmap(grad(f)))` differentiate through them like any other code.  The
templates follow the conventions of autodiff/jvp_rules.py (`d[x]`: tangent
of x) and autodiff/vjp_rules.py (`g`: cotangent of the output, assign
`d<param>`).  Every data argument of these helpers enters linearly (or
bilinearly: matmul_lanes, matmul_lanes_adjoint), so the rules are the
helpers themselves or their transposes.  The rules these helpers lack on
purpose are declared where they are registered
(runtime/batching_support.py, `no_rule=`), so differentiating through them
raises MissingRuleError with the reason.  Must not hold batching rules.
"""

from ..runtime.table import PRIMITIVES

d = None  # `d[x]` in JVP bodies; never evaluated (bodies are spliced)


from .rule_registry import jvp as _jvp, vjp_rule as _vjp  # noqa: E402


# -- JVP -----------------------------------------------------------------------------

@_jvp("batch_move_in")
def _(z, x, spec):
    d[z] = batch_move_in(d[x], spec)  # noqa: F821


@_jvp("batch_move_out")
def _(z, x, spec, state, n):
    d[z] = batch_move_out(d[x], spec, state, n)  # noqa: F821


@_jvp("batch_broadcast")
def _(z, x, state, n):
    d[z] = batch_broadcast(d[x], state, n)  # noqa: F821


@_jvp("batch_lift")
def _(z, x, *ranks):
    d[z] = reshape(d[x], shape(z))  # noqa: F821


@_jvp("batch_sum_unbatched")
def _(z, g, state):
    d[z] = batch_sum_unbatched(d[g], state)  # noqa: F821


@_jvp("select_lanes")
def _(z, mask, a, b):
    d[z] = select_lanes(mask, d[a], d[b])  # noqa: F821


@_jvp("getitem_lanes")
def _(z, x, batched, idx, *, clip=False):
    d[z] = getitem_lanes(d[x], batched, idx, clip=clip)  # noqa: F821


@_jvp("matmul_lanes")
def _(z, a, b, batched):
    d[z] = matmul_lanes(d[a], b, batched) + matmul_lanes(a, d[b], batched)  # noqa: F821


@_jvp("setitem_lanes")
def _(z, x, value, batched, idx, *, clip=False):
    # functional update: linear in (x, value) jointly
    d[z] = setitem_lanes(d[x], d[value], batched, idx, clip=clip)  # noqa: F821


@_jvp("unbroadcast_lanes")
def _(z, t, x, x_batched):
    d[z] = unbroadcast_lanes(d[t], x, x_batched)  # noqa: F821  (x gives only a shape)


@_jvp("getitem_lanes_adjoint")
def _(z, g, x, batched, idx):
    d[z] = getitem_lanes_adjoint(d[g], x, batched, idx)  # noqa: F821  (x gives only a shape)


@_jvp("matmul_lanes_adjoint")
def _(z, g, a, b, batched, wrt, *, keep_lanes=False):
    # bilinear in g and the other operand (the operand `wrt` gives only a shape)
    d[z] = (matmul_lanes_adjoint(d[g], a, b, batched, wrt, keep_lanes=keep_lanes)  # noqa: F821
            + matmul_lanes_adjoint(g, d[a], d[b], batched, wrt, keep_lanes=keep_lanes))  # noqa: F821


# -- VJP -----------------------------------------------------------------------------

@_vjp("batch_move_in")
def _(g, z, x, spec):
    dx = batch_move_out(g, spec, True, 0)  # noqa: F821


def _is_container_code(code):
    return isinstance(code, tuple) and bool(code) and code[0] in ("tuple", "list", "dict")


def _moved_out_state(spec, state):
    """The state code saying which leaves of batch_move_out's cotangent have
    no lane axis to sum: batched leaves, and unbatched leaves whose out_axes
    entry is None (handed out unchanged, never broadcast over the lanes)."""
    if _is_container_code(spec) or _is_container_code(state):
        shape = spec if _is_container_code(spec) else state

        def part(code, i):
            return code[2 if code[0] == "dict" else 1][i] if _is_container_code(code) else code
        kids = shape[2] if shape[0] == "dict" else shape[1]
        children = tuple(_moved_out_state(part(spec, i), part(state, i))
                         for i in range(len(kids)))
        return (shape[0], shape[1], children) if shape[0] == "dict" else (shape[0], children)
    return bool(state is True or spec is None)


@_vjp("batch_move_out")
def _(ctx, g, z, args, kwargs):
    import gast
    x, spec, state = args[0], args[1], args[2]
    if isinstance(spec, gast.Constant) and isinstance(state, gast.Constant):
        state = gast.Constant(value=_moved_out_state(spec.value, state.value), kind=None)
    ctx.contribute(x, ctx.call("batch_sum_unbatched",
                               [ctx.call("batch_move_in", [g, spec]), state]))


PRIMITIVES["batch_move_out"].vjp_rule.cotan_builder = True


@_vjp("batch_broadcast")
def _(g, z, x, state, n):
    dx = batch_sum_unbatched(g, state)  # noqa: F821


@_vjp("batch_lift")
def _(g, z, x, *ranks):
    dx = reshape(g, shape(x))  # noqa: F821


@_vjp("batch_sum_unbatched")
def _(g, z, x, state):
    # every leaf of x has the batch axis first; for a container, length(x)
    # would count its entries, not the lanes
    dx = batch_broadcast(g, state, batch_size("batch_sum_unbatched", ("x",), (x,), (0,)))  # noqa: F821


@_vjp("select_lanes")
def _(g, z, mask, a, b):
    da = select_lanes(mask, g, zero_adjoint(g))  # noqa: F821
    db = select_lanes(mask, zero_adjoint(g), g)  # noqa: F821


@_vjp("getitem_lanes")
def _(g, z, x, batched, idx, *, clip=False):
    dx = getitem_lanes_adjoint(g, x, batched, idx)  # noqa: F821


@_vjp("matmul_lanes")
def _(g, z, a, b, batched):
    da = matmul_lanes_adjoint(g, a, b, batched, 0)  # noqa: F821
    db = matmul_lanes_adjoint(g, a, b, batched, 1)  # noqa: F821


@_vjp("unbroadcast_lanes")
def _(g, z, t, x, x_batched):
    # the transpose of a per-lane sum: per-lane broadcasting back to t's shape
    dt = broadcast_to(batch_lift(g, ndim(t) - 1), shape(t))  # noqa: F821
