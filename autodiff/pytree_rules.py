"""JVP, VJP and batching rules of the pytree-field primitives
(`getattr_leaf`, `getattr_adjoint`, runtime/pytree_ops.py).

Owns these attachments only: a field read is linear in the node (its
tangent reads the tangent's field, its adjoint puts the cotangent at the
field of a zero node of the same type), and batched it reads the field of
the batched node.  Must not touch other primitives' rules.
"""

from ..runtime import pytree_ops  # noqa: F401  (registers the primitives)
from ..runtime.table import PRIMITIVES


def _builder(fn):
    fn.cotan_builder = True
    fn.cotan_widen = False
    return fn


@_builder
def _getattr_leaf_jvp(ctx, z, args, keywords):
    t = ctx.tangent(args[0])
    if ctx.is_zero(t):
        return None
    return ctx.call("getattr_leaf", [t] + list(args[1:]), keywords)


@_builder
def _getattr_leaf_vjp(ctx, g, z, args, kwargs):
    ctx.contribute(args[0], ctx.call("getattr_adjoint", [g] + list(args)))


@_builder
def _getattr_adjoint_jvp(ctx, z, args, keywords):
    t = ctx.tangent(args[0])
    if ctx.is_zero(t):
        return None
    return ctx.call("getattr_adjoint", [t] + list(args[1:]), keywords)


@_builder
def _getattr_adjoint_vjp(ctx, g, z, args, kwargs):
    ctx.contribute(args[0], ctx.call("getattr_leaf", [g, args[2]]))


def _getattr_leaf_batch(c):
    """Every leaf of a batched node is batched at axis 0 once its state is
    promoted, so the field read is the same call on the batched node."""
    from .batching import is_tree_state, Call
    if is_tree_state(c.states[0]):
        c.assign(Call("getattr_leaf", [c.promoted(0)] + list(c.args[1:])))
    else:
        c.assign(c.call())
    return True


def _by_lanes(c):
    return c.map_lanes()


def _getattr_adjoint_batch(c):
    """Lane by lane; the result is a node, which batched add_any must know
    (its state is True like an array's)."""
    if not hasattr(c.batcher, "cotan_node_names"):
        c.batcher.cotan_node_names = set()
    c.batcher.cotan_node_names.add(c.out)
    return c.map_lanes()


PRIMITIVES["getattr_leaf"].jvp_rule = _getattr_leaf_jvp
PRIMITIVES["getattr_leaf"].vjp_rule = _getattr_leaf_vjp
PRIMITIVES["getattr_leaf"].batch_rule = _getattr_leaf_batch
PRIMITIVES["getattr_adjoint"].jvp_rule = _getattr_adjoint_jvp
PRIMITIVES["getattr_adjoint"].vjp_rule = _getattr_adjoint_vjp
PRIMITIVES["getattr_adjoint"].batch_rule = _getattr_adjoint_batch


def _unbatched(c):
    """A dict's keys are the same in every lane."""
    c.assign(c.call())
    return False


PRIMITIVES["dict_keys"].batch_rule = _unbatched
PRIMITIVES["has_key"].batch_rule = _unbatched
