"""Linearization: split a JVP into a primal part that runs once and a
tangent-only part that can be called for many tangents.

Owns `linearize_functions`.  It starts from the forward-mode core form
(`forward.jvp_core`) and separates its statements by dependence: a
statement is on the tangent side if it reads a tangent (transitively),
otherwise on the primal side.  The primal function computes the output and
the *residuals*, the primal values the tangent side reads:

* a value assigned once outside loops is passed as it is;
* a value read outside loops but rebound later is snapshotted where it is
  read (`res = y`);
* a value read inside a loop is pushed onto a list each time
  (`stack = list_append(stack, y)`) and the tangent function reads it back
  in the same order (a tape of exactly what the tangent side needs).

Branch and loop predicates and `range` bounds that the tangent side's
control flow needs are residuals too, so the tangent function repeats the
primal's control flow without any primal arithmetic.  Must not change the
JVP transformation itself.
"""

import copy

import gast

from .syntax import clone, walk
from .core_form import validate
from .forward import jvp_core
from .materialize import materialize
from .names import NameScope
from .normalize import Assign, Call, Const, Name, normalize_function
from .templates import build_function, rule_namespace
from . import jvp_rules
from .transform_lock import serialized


class LinearizeUnsupported(Exception):
    """The JVP's output is not separable (a custom JVP rule mixes the primal
    output with tangents); callers fall back to re-running the JVP."""


def _reads(node):
    """Names an expression reads as values (not the primitives it calls)."""
    if isinstance(node, gast.Call):
        out = []
        for a in list(node.args) + [k.value for k in node.keywords]:
            out += _reads(a)
        return out
    return [n.id for n in walk(node) if isinstance(n, gast.Name)
            and isinstance(n.ctx, gast.Load)]


def _assign_counts(fdef):
    counts = {}
    in_loop = set()

    def walk(stmts, depth):
        for s in stmts:
            if isinstance(s, gast.Assign):
                t = s.targets[0].id
                counts[t] = counts.get(t, 0) + 1
                if depth:
                    in_loop.add(t)
            elif isinstance(s, gast.If):
                walk(s.body, depth)
                walk(s.orelse, depth)
            elif isinstance(s, gast.For):
                counts[s.target.id] = counts.get(s.target.id, 0) + 2
                walk(s.body, depth + 1)
            elif isinstance(s, gast.While):
                walk(s.body, depth + 1)
    walk(fdef.body, 0)
    return counts, in_loop


def _tangent_names(fdef, tangent_params):
    tan = set(tangent_params)
    assigns = [n for n in walk(fdef) if isinstance(n, gast.Assign)]
    changed = True
    while changed:
        changed = False
        for a in assigns:
            t = a.targets[0].id
            if t not in tan and any(r in tan for r in _reads(a.value)):
                tan.add(t)
                changed = True
    return tan


class _Split:
    def __init__(self, core, n_tangent):
        self.core = core
        fdef = core.node
        params = core.params
        self.primal_params = params[:len(params) - n_tangent]
        self.tangent_params = params[len(params) - n_tangent:]
        self.tan = _tangent_names(fdef, self.tangent_params)
        self.counts, self.in_loop = _assign_counts(fdef)
        used = {n.id for n in walk(fdef) if isinstance(n, gast.Name)}
        self.scope = NameScope(used | set(params))
        self.residuals = []          # names the primal returns / tangent takes
        self.primal_init = []
        self.tangent_init = []

    def fixed(self, name):
        """A value that never changes once bound: pass it as it is."""
        if name in self.primal_params and name not in self.counts:
            return True
        return self.counts.get(name) == 1 and name not in self.in_loop

    def read(self, name, depth, loop_targets):
        """Make primal `name` available to the tangent side at this point:
        (primal statements, tangent statements, atom on the tangent side)."""
        if name in loop_targets or name in self.tan:
            return [], [], name
        if name not in self.counts and name not in self.primal_params:
            return [], [], name  # a captured global: both functions see it
        if self.fixed(name):
            if name not in self.residuals:
                self.residuals.append(name)
            return [], [], name
        if depth == 0:
            snap = self.scope.fresh("res_" + name)
            self.residuals.append(snap)
            return [Assign(snap, Name(name))], [], snap
        stack = self.scope.fresh("stack_" + name)
        counter = self.scope.fresh("i_" + name)
        value = self.scope.fresh(name + "_r")
        self.residuals.append(stack)
        self.primal_init.append(Assign(stack, Call("make_list", [])))
        self.tangent_init.append(Assign(counter, Const(0)))
        push = [Assign(stack, Call("list_append", [Name(stack), Name(name)]))]
        pop = [Assign(value, Call("getitem", [Name(stack), Name(counter)])),
               Assign(counter, Call("add", [Name(counter), Const(1)]))]
        return push, pop, value

    def block(self, stmts, depth, loop_targets):
        primal, tangent = [], []
        for s in stmts:
            if isinstance(s, gast.Assign):
                if s.targets[0].id not in self.tan:
                    primal.append(s)
                    continue
                s = clone(s)
                renames = {}
                for r in sorted(set(_reads(s.value))):
                    p, t, atom = self.read(r, depth, loop_targets)
                    primal += p
                    tangent += t
                    if atom != r:
                        renames[r] = atom
                for n in walk(s.value):
                    if isinstance(n, gast.Name) and n.id in renames:
                        n.id = renames[n.id]
                tangent.append(s)
            elif isinstance(s, gast.If):
                pb, tb = self.block(s.body, depth, loop_targets)
                pe, te = self.block(s.orelse, depth, loop_targets)
                if pb or pe:
                    primal.append(self._copy_if(s, pb, pe, s.test.id))
                if tb or te:
                    p, t, atom = self.read(s.test.id, depth, loop_targets)
                    primal += p
                    tangent += t
                    tangent.append(self._copy_if(s, tb, te, atom))
            elif isinstance(s, gast.For):
                bounds = s.iter.args
                inner_targets = loop_targets | {s.target.id}
                pb, tb = self.block(s.body, depth + 1, inner_targets)
                if tb:
                    new_bounds = []
                    for b in bounds:
                        if isinstance(b, gast.Name):
                            p, t, atom = self.read(b.id, depth, loop_targets)
                            primal += p
                            tangent += t
                            new_bounds.append(Name(atom))
                        else:
                            new_bounds.append(clone(b))
                    node = copy.copy(s)
                    node.iter = gast.Call(func=Name("range"), args=new_bounds, keywords=[])
                    node.body = tb
                    tangent.append(node)
                if pb:
                    node = copy.copy(s)
                    node.body = pb
                    primal.append(node)
            elif isinstance(s, gast.While):
                pb, tb = self.block(s.body, depth + 1, loop_targets)
                if tb:
                    test = s.test.id
                    flag = self.scope.fresh(test + "_t")
                    p0, t0, a0 = self.read(test, depth, loop_targets)
                    p1, t1, a1 = self.read(test, depth + 1, loop_targets)
                    primal += p0
                    tangent += t0 + [Assign(flag, Name(a0))]
                    pb = pb + p1
                    node = copy.copy(s)
                    node.test = Name(flag)
                    node.body = tb + t1 + [Assign(flag, Name(a1))]
                    tangent.append(node)
                node = copy.copy(s)
                node.body = pb
                primal.append(node)
            else:
                raise AssertionError(type(s).__name__)
        return primal, tangent

    @staticmethod
    def _copy_if(s, body, orelse, test):
        node = gast.If(test=Name(test), body=body or [gast.Pass()], orelse=orelse)
        node.cotan_origin = getattr(s, "cotan_origin", None)
        return node

    def split(self):
        fdef = self.core.node
        ret = fdef.body[-1].value
        body = list(fdef.body[:-1])
        last = body[-1] if body else None
        if not (isinstance(ret, gast.Name) and isinstance(last, gast.Assign)
                and last.targets[0].id == ret.id and isinstance(last.value, gast.Call)
                and last.value.func.id == "make_tuple" and len(last.value.args) == 2):
            raise LinearizeUnsupported("unexpected JVP return")
        out, dout = last.value.args
        if isinstance(out, gast.Name) and out.id in self.tan:
            raise LinearizeUnsupported("the primal output depends on tangents")
        primal, tangent = self.block(body[:-1], 0, frozenset())
        if isinstance(dout, gast.Name) and dout.id not in self.tan:
            # a zero tangent computed from primal values only
            p, t, atom = self.read(dout.id, 0, frozenset())
            primal += p
            tangent += t
            dout = Name(atom)
        # a residual read on one branch only is None on the others
        stacks = {a.targets[0].id for a in self.primal_init}
        unset = [Assign(r, Const(None)) for r in self.residuals
                 if r not in self.primal_params and r not in stacks]
        self.primal_init = unset + self.primal_init
        res = gast.Tuple(elts=[Name(r) for r in self.residuals], ctx=gast.Load())
        primal = self.primal_init + primal + [gast.Return(
            value=gast.Tuple(elts=[clone(out), res], ctx=gast.Load()))]
        tangent = self.tangent_init + tangent + [gast.Return(value=clone(dout))]
        name = self.core.name[len("jvp_"):] if self.core.name.startswith("jvp_") \
            else self.core.name
        return (_fdef(f"linearized_{name}", self.primal_params, primal),
                _fdef(f"tangent_{name}", self.residuals + self.tangent_params, tangent))


def _fdef(name, params, body):
    args = [Name(p) for p in params]
    for a in args:
        a.ctx = gast.Param()
    return gast.FunctionDef(
        name=name, args=gast.arguments(args=args, posonlyargs=[], vararg=None, kwonlyargs=[],
                                       kw_defaults=[], kwarg=None, defaults=[]),
        body=body, decorator_list=[], returns=None, type_comment=None, type_params=[])


_cache = {}


@serialized
def linearize_functions(fn, active):
    """(primal function, tangent function, residual count) for Python `fn`
    with tangents for the parameters at indices `active`.

    `primal(*args)` returns `(out, residuals)`; `tangent(*residuals,
    *tangents)` returns the output tangent and does no primal arithmetic.
    """
    core = normalize_function(fn)
    key = (core, tuple(active))
    got = _cache.get(key)
    if got is None:
        names = [core.params[i] for i in active]
        jcore = jvp_core(core, names)
        split = _Split(jcore, len(names))
        pdef, tdef = split.split()
        ns = rule_namespace(jvp_rules)
        ns.update(jcore.captured)
        pcore = build_function(pdef, ns, "linearize", core.name)
        tcore = build_function(tdef, ns, "linearize tangent", core.name)
        validate(pcore.node)
        validate(tcore.node)
        got = (materialize(pcore, "linearize"), materialize(tcore, "linearize tangent"),
               len(split.residuals))
        _cache[key] = got
    return got
