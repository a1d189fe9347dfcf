"""`cotan.checkpoint` under jit: checkpointed calls expanded into code.

Owns `expand_checkpoints(core)`.  A checkpointed function is an opaque
primitive to the transformations (`checkpoint_<name>_<n>`, whose VJP calls
`checkpoint_<name>_<n>_vjp`, see cotan/reverse_api.py); compiled code
cannot call Python, so before type inference each such call is replaced by
the code it stands for and the program is normalized again (which inlines
it):

- `y = checkpoint_f_0(a, b)` becomes `y = f(a, b)`: the primal sweep runs
  f and keeps none of its intermediates;
- `c = checkpoint_f_0_vjp(a, b, g)` becomes `c = vjp_f(a, b, g)[1]`, with
  `vjp_f` reverse mode's generated VJP of f: the adjoint sweep reruns f's
  primal (its loops push to stacks local to that call) and its adjoint.

That is checkpointing's trade of memory for recomputation, kept under jit.
Must not type, plan or emit code.
"""

import gast

from ..autodiff.materialize import materialize
from ..autodiff.names import NameScope
from ..autodiff.normalize import normalize_function
from ..autodiff.reverse import reverse_function
from ..autodiff.syntax import Call, Const, Name, clone, walk
from ..autodiff.templates import build_function
from ..errors import CompileError
from ..runtime.table import PRIMITIVES

#: rounds of expansion (a checkpointed function calling another one)
MAX_DEPTH = 16

_vjp_cache = {}


def _checkpointed(name):
    """(function, is_vjp) for a checkpoint primitive's name, else None."""
    if not name.startswith("checkpoint_"):
        return None
    p = PRIMITIVES.get(name)
    if p is None or not p.custom:
        return None
    if name.endswith("_vjp"):
        base = PRIMITIVES.get(name[:-len("_vjp")])
        if base is not None and base.custom:
            return base.impl, True
    if (name + "_vjp") in PRIMITIVES:
        return p.impl, False
    return None


def _vjp_of(fun):
    got = _vjp_cache.get(fun)
    if got is None:
        core = normalize_function(fun)
        rcore = reverse_function(core, tuple(range(len(core.params))), "vjp", False,
                                 what=getattr(fun, "__qualname__", core.name))
        got = _vjp_cache[fun] = materialize(rcore, "vjp")
    return got


def _calls(node):
    return [n for n in walk(node) if isinstance(n, gast.Call) and
            isinstance(n.func, gast.Name) and _checkpointed(n.func.id)]


def expand_checkpoints(core):
    """`core` with every checkpointed call replaced by its code (the same
    CoreFunction when it has none)."""
    for _ in range(MAX_DEPTH):
        if not _calls(core.node):
            return core
        core = _expand_once(core)
    raise CompileError(f"in {core.name!r}: checkpointed functions nest more than "
                       f"{MAX_DEPTH} deep (a checkpointed function calling itself?)")


def _expand_once(core):
    fdef = clone(core.node)
    used = {n.id for n in walk(fdef) if isinstance(n, gast.Name)}
    scope = NameScope(used | set(PRIMITIVES) | set(core.captured) | {"range", "_"})
    namespace = dict(PRIMITIVES)
    namespace.update(core.captured)
    aliases = {}

    def alias(prim_name, fun, is_vjp):
        key = (prim_name, is_vjp)
        if key not in aliases:
            target = _vjp_of(fun) if is_vjp else fun
            base = getattr(fun, "__name__", "checkpointed")
            n = scope.fresh(("vjp_" if is_vjp else "") + "".join(
                c if c.isalnum() else "_" for c in base))
            namespace[n] = target
            aliases[key] = n
        return aliases[key]

    for call in _calls(fdef):
        fun, is_vjp = _checkpointed(call.func.id)
        name = alias(call.func.id, fun, is_vjp)
        if not is_vjp:
            call.func = Name(name)
            continue
        call.args = [Call(name, call.args, {k.arg: k.value for k in call.keywords}),
                     Const(1)]
        call.func = Name("getitem")
        call.keywords = []
    return build_function(fdef, namespace, "checkpoints expanded", core.name)
