"""Kernel planning over a typed program: what fuses, what may alias.

Owns `plan_function(tf) -> KernelPlan`:
- `fused`: statements whose elementwise (or broadcasting) result is used
  exactly once, later in the same block, with none of its inputs reassigned
  in between: the emitter keeps them as unmaterialized expressions, so a
  chain `sin(x) * exp(-x * x) + x ** 3` becomes one loop nest with no
  temporaries, and a reduction of such a chain reads it in its own loop.
- `stable`: names assigned once and outside any loop, whose buffers are
  never overwritten, so containers and copies may alias them instead of
  copying (others are copied when captured).
Must not emit code.
"""

from .infer import TAssign, TFor, TIf, TWhile
from .llvm.values import ELEMENTWISE

#: primitives whose result may stay an unmaterialized expression
LAZY_PRIMS = ELEMENTWISE | {"astype"}


class KernelPlan:
    def __init__(self, fused, stable, uses):
        self.fused = fused      # set of id(TAssign)
        self.stable = stable    # set of names
        self.uses = uses


def _count(stmts, defs, uses, in_loop, loop_defs):
    for s in stmts:
        if isinstance(s, TAssign):
            for a in list(s.args) + list(s.kwargs.values()):
                if a.name:
                    uses[a.name] = uses.get(a.name, 0) + 1
            defs[s.target] = defs.get(s.target, 0) + 1
            if in_loop:
                loop_defs.add(s.target)
        elif isinstance(s, TIf):
            if s.pred.name:
                uses[s.pred.name] = uses.get(s.pred.name, 0) + 1
            _count(s.body, defs, uses, in_loop, loop_defs)
            _count(s.orelse, defs, uses, in_loop, loop_defs)
            for n in s.merged:
                uses[n] = uses.get(n, 0) + 2
        elif isinstance(s, (TFor, TWhile)):
            if isinstance(s, TFor):
                for a in (s.start, s.stop, s.step):
                    if a.name:
                        uses[a.name] = uses.get(a.name, 0) + 1
                loop_defs.add(s.var)
                defs[s.var] = defs.get(s.var, 0) + 2
            else:
                uses[s.pred] = uses.get(s.pred, 0) + 2
            _count(s.body, defs, uses, True, loop_defs)
            for n in s.carried:
                uses[n] = uses.get(n, 0) + 2


def _assigned(stmts, out):
    for s in stmts:
        if isinstance(s, TAssign):
            out.add(s.target)
        elif isinstance(s, TIf):
            _assigned(s.body, out)
            _assigned(s.orelse, out)
        elif isinstance(s, TFor):
            out.add(s.var)
            _assigned(s.body, out)
        elif isinstance(s, TWhile):
            _assigned(s.body, out)
    return out


def _plan_block(stmts, uses, defs, fused, deps):
    for p, s in enumerate(stmts):
        if isinstance(s, TIf):
            _plan_block(s.body, uses, defs, fused, deps)
            _plan_block(s.orelse, uses, defs, fused, deps)
            continue
        if isinstance(s, (TFor, TWhile)):
            _plan_block(s.body, uses, defs, fused, deps)
            continue
        if s.static or s.prim not in LAZY_PRIMS or uses.get(s.target, 0) != 1 \
                or defs.get(s.target, 0) != 1 or not hasattr(s.out, "shape"):
            continue
        names = set()
        for a in s.args:
            if a.name:
                names.add(a.name)
                names |= deps.get(a.name, set())
        # find the single use later in this block
        for q in range(p + 1, len(stmts)):
            u = stmts[q]
            if isinstance(u, TAssign) and any(a.name == s.target for a in
                                                list(u.args) + list(u.kwargs.values())):
                between = _assigned(stmts[p + 1:q], set())
                if not (between & names) and u.target not in names:
                    fused.add(id(s))
                    deps[s.target] = names
                break
            if isinstance(u, (TIf, TFor, TWhile)):
                break


def plan_function(tf):
    defs, uses, loop_defs = {}, {}, set()
    _count(tf.body, defs, uses, False, loop_defs)
    if tf.result.name:
        uses[tf.result.name] = uses.get(tf.result.name, 0) + 1
    fused = set()
    _plan_block(tf.body, uses, defs, fused, {})
    stable = {n for n, c in defs.items() if c == 1 and n not in loop_defs}
    stable |= {p for p in tf.params if p not in defs}
    return KernelPlan(fused, stable, uses)
