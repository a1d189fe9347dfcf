"""Reverse mode's stacks in the XLA emitter (mixed into emit.Emitter).

Owns `StackLowering`: the stack primitives (`new_stack`, `push`, `pop`,
`pop_restore`, `copy_stack` of a static stack).  A stack that inference
emulates at compile time ("static") is a Python list of values; a native
one is a fixed-capacity buffer per leaf of its element type plus a count,
carried through loops like any value.  The capacity is the number of
pushes the loops around them allow (`_plan_stacks`: static trip counts,
and bounds derived from enclosing counters); a push under a loop with no
such bound is refused with the loop named, and every push checks the
bound into the error status.  Second-order stacks (`stack_unpop`,
`stack_unpush`) are refused.  Must not emit control flow (emit.py).
"""

import numpy as np

from ...errors import MissingRuleError
from ...runtime.table import PRIMITIVES
from ..abstract import ShapedArray
from ..infer import TAssign, TFor, TIf, TWhile, Undefined, is_static
from ..infer_stacks import StackRef, stack_of
from .values import SV, get_path, leaves_with_paths, rebuild


class StackLowering:
    def _plan_stacks(self):
        """Capacity of each native stack: its pushes times the trip counts of
        the loops around them.  A loop whose bounds are run-time values
        derived from enclosing loop counters (a triangular nest) gets the
        largest trip count those counters' ranges allow; a push under a loop
        with no such bound is refused."""
        counts = {}

        def interval(arg, iv):
            if arg.name is None or is_static(arg.aval):
                v = arg.aval
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                    return None
                return (int(v), int(v))
            return iv.get(arg.name)

        def assign(s, iv):
            if not isinstance(s.out, ShapedArray) or s.out.shape != () or \
                    s.out.dtype.kind not in "iu":
                iv.pop(s.target, None)
                return
            ins = [interval(a, iv) for a in s.args]
            r = None
            if s.prim is None and ins and ins[0] is not None:
                r = ins[0]
            elif s.prim in ("add", "subtract", "multiply") and len(ins) == 2 and \
                    None not in ins:
                (a, b), (c, d) = ins
                if s.prim == "add":
                    r = (a + c, b + d)
                elif s.prim == "subtract":
                    r = (a - d, b - c)
                else:
                    prods = [a * c, a * d, b * c, b * d]
                    r = (min(prods), max(prods))
            elif s.prim == "negative" and ins and ins[0] is not None:
                r = (-ins[0][1], -ins[0][0])
            if r is None:
                iv.pop(s.target, None)
            else:
                iv[s.target] = r

        def trips(s, iv):
            start, stop = interval(s.start, iv), interval(s.stop, iv)
            step = s.step.aval if is_static(s.step.aval) else None
            if start is None or stop is None or not isinstance(step, (int, np.integer)) \
                    or step == 0:
                return None, None
            step = int(step)
            if step > 0:
                n = max(0, -(-(stop[1] - start[0]) // step))
                var = (start[0], max(start[0], stop[1] - 1))
            else:
                n = max(0, -(-(start[1] - stop[0]) // -step))
                var = (min(start[1], stop[0] + 1), start[1])
            return n, var

        def walk(stmts, mult, why, iv):
            for s in stmts:
                if isinstance(s, TAssign):
                    if s.prim == "push":
                        st = stack_of(s.args[0])
                        if self.stack_kinds.get(st, ("static",))[0] == "native":
                            if why is not None:
                                raise MissingRuleError(
                                    "push", "xla",
                                    f"reverse mode through the loop `{why}` saves values on "
                                    "a stack whose size is known only at run time (the trip "
                                    "count is not static), and XLA needs static shapes; give "
                                    "the loop a static trip count (a range over a "
                                    "static_argnums argument or a constant), or wrap the loop "
                                    "body in cotan.checkpoint")
                            counts[st] = counts.get(st, 0) + mult
                    else:
                        assign(s, iv)
                elif isinstance(s, TIf):
                    walk(s.body, mult, why, dict(iv))
                    walk(s.orelse, mult, why, dict(iv))
                    for n in s.merged:
                        iv.pop(n, None)
                elif isinstance(s, TFor):
                    n, var = trips(s, iv) if why is None else (None, None)
                    inner = dict(iv)
                    if n is None:
                        inner.pop(s.var, None)
                        walk(s.body, mult, why or s.origin, inner)
                    else:
                        inner[s.var] = var
                        # names the body reassigns are not bounded across trips
                        for name in s.carried:
                            if name != s.var:
                                inner.pop(name, None)
                        walk(s.body, mult * n, None, inner)
                    for name in list(s.carried) + [s.var]:
                        iv.pop(name, None)
                elif isinstance(s, TWhile):
                    walk(s.body, mult, why or s.origin, {})
                    for name in s.carried:
                        iv.pop(name, None)
        walk(self.tf.body, 1, None, {})
        self.capacity = counts

    def stack_op(self, s, env):
        st = stack_of(s.args[0]) if s.args else s.target
        if s.prim == "new_stack":
            st = s.out.name if isinstance(s.out, StackRef) else s.target
            kind, elem = self.stack_kinds.get(st, ("static", None))
            if kind == "static":
                self.static_stacks[st] = []
            else:
                self._new_native(st, elem)
            return s.out
        kind, elem = self.stack_kinds.get(st, ("static", None))
        args = [self.value_of(a, env) for a in s.args]
        if kind == "static":
            lst = self.static_stacks.setdefault(st, [])
            if s.prim == "push":
                lst.append(args[1])
                return None
            if s.prim == "pop":
                return lst.pop()
            if s.prim == "pop_restore":
                lst.pop()
                return lst[-1] if lst else args[1]
            if s.prim == "copy_stack":
                self.static_stacks[s.out.name] = list(lst)
                return s.out
            raise MissingRuleError(s.prim, "xla", PRIMITIVES[s.prim].no_rule.get("xla", ""))
        if s.prim == "push":
            self._push(st, elem, args[1])
            return None
        if s.prim in ("pop", "pop_restore"):
            return self._pop(st, elem, args[1] if s.prim == "pop_restore" else None,
                             s.prim == "pop_restore")
        raise MissingRuleError(s.prim, "xla", PRIMITIVES[s.prim].no_rule.get("xla", ""))

    def _new_native(self, st, elem):
        cap = max(1, self.capacity.get(st, 0))
        state = [self.const(0, np.int64)]
        for _, a in leaves_with_paths(elem):
            state.append(self.const(0, a.dtype, (cap,) + a.shape))
        self.native[st] = state

    def _push(self, st, elem, value):
        state = self.native[st]
        count = state[0]
        cap = max(1, self.capacity.get(st, 0))
        # the capacity is a proven bound; the check turns a flaw in that
        # proof into an error instead of XLA's clamped (overwritten) writes
        self.check(self.compare("LT", count, self.const(cap, np.int64)),
                   f"{self.where()}: reverse-mode stack {st!r} overflowed its static "
                   f"capacity {cap} (a cotan bug: please report it)")
        zero = self.const(0, np.int64)
        for j, (path, a) in enumerate(leaves_with_paths(elem)):
            v = get_path(value, path)
            # a version not defined yet (`result = None` before an early
            # return's flag guards it): its record is never read
            v = self.const(0, a.dtype, a.shape) if v is None or isinstance(v, Undefined) \
                else self.rt(v, a.dtype, a.shape)
            buf = state[1 + j]
            upd = self.reshape(v, (1,) + a.shape)
            state[1 + j] = self.dynamic_update_slice(buf, upd, [count] + [zero] * len(a.shape))
        state[0] = self.binary("stablehlo.add", count, self.const(1, np.int64))

    def _pop(self, st, elem, current, restore):
        state = self.native[st]
        count = self.binary("stablehlo.subtract", state[0], self.const(1, np.int64))
        state[0] = count
        zero = self.const(0, np.int64)
        if restore:
            at = self.binary("stablehlo.maximum",
                             self.binary("stablehlo.subtract", count, self.const(1, np.int64)),
                             zero)
            has = self.compare("GT", count, zero)
        else:
            at = count
        leaves = {}
        for j, (path, a) in enumerate(leaves_with_paths(elem)):
            buf = state[1 + j]
            v = self.reshape(self.dynamic_slice(buf, [at] + [zero] * len(a.shape),
                                                (1,) + a.shape), a.shape)
            if restore:
                cur = get_path(current, path)
                if cur is not None and not isinstance(cur, Undefined):
                    v = self.select(has, v, self.rt(cur, a.dtype, a.shape))
            leaves[path] = SV(v.name, a)
        return rebuild(elem, leaves)

