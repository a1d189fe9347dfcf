"""Reverse mode: a core-form function -> its gradient, as source.

Owns `reverse_function(core, argnums, kind, has_aux)`, which writes the
gradient as an ordinary Python function (a primal sweep, then an adjoint
sweep whose statements carry `# grad of: <line>` comments), turns it into
core form with `templates.build_function` and returns the CoreFunction.
`cotan/reverse_api.py` materializes it.

How control flow is reversed (the design card's recipe, as in Tangent):

* Every value the adjoint sweep reads is restored as the sweep walks back:
  a variable that is both overwritten (assigned twice, or inside a loop)
  and read by the adjoint sweep is pushed to its own stack after each
  assignment, and `pop_restore` brings back its previous version when the
  sweep goes back past that assignment.  Nothing else is pushed.
* A `for` over range records its trip count before the loop and runs
  backwards; a `while` counts its iterations (pushed when the loop is
  itself inside a loop); an `if` re-tests its predicate (copied first when
  the branch reassigns it).
* Adjoints appear on their first contribution (`dx = ...`), later ones
  add; an adjoint is zero-initialised only where control flow needs it
  (a contribution inside a loop or in one branch), never otherwise.
* Activity analysis: only values that depend on the differentiated
  arguments get adjoints (the analyses live in reverse_analysis.py).
* The function is first put in versioned names (ssa.py), so only values
  carried around loops are ever overwritten; a reversed `while` counts
  down, so under vmap lanes with fewer iterations pop their own values.

Must not hold derivative rules (vjp_rules.py) or the public API.
"""

import inspect

import gast

from .syntax import clone, walk
from ..errors import MissingRuleError
from ..runtime.table import PRIMITIVES
from . import vjp_rules
from .names import NameScope
from .ssa import version_names
from .templates import build_function, rule_namespace, template_ast, _Substitute
from .simplify import constant_valued_names
from .reverse_analysis import (Assign, Call, Expr, ReverseAnalysis, _assigned, _call_atoms,
                               _reads, _walk_assigns, mark_defined_before, parse_expr)
from .syntax import Const, Name  # noqa: F401  (shared node constructors)

_namespace = None


def namespace():
    """Globals of generated gradients: primitives and rule helpers."""
    global _namespace
    if _namespace is None:
        _namespace = rule_namespace(vjp_rules)
        _namespace["range"] = range
    return _namespace


class _RuleContext:
    """What a rule builder sees: `call` builds an expression, `contribute`
    adds to an operand's adjoint, `unsupported` refuses."""

    def __init__(self, rev, prim, D, out):
        self.rev, self.prim, self.D, self.out = rev, prim, D, out

    def call(self, fn, args):
        return Call(fn, [clone(a) if isinstance(a, gast.AST) else Name(a) for a in args])

    def contribute(self, atom, expr):
        self.rev.contribute(atom, expr, self.D, self.out)

    def splice(self, template, g, z, args, kwargs):
        """Fall back to a template rule (for builders that special-case)."""
        self.rev.apply_template(template, g, z, args, kwargs, self.D, self.out)

    def unsupported(self, what):
        raise MissingRuleError(self.prim, "vjp", f"{what} is not supported")


class Reverser(ReverseAnalysis):
    """One reverse-mode transformation of one CoreFunction."""

    def __init__(self, core, argnums, kind="grad", has_aux=False, what=None,
                 holomorphic=False):
        self.core = core
        # grad(holomorphic=True): the seed and input checks accept complex
        # values (and ask for them); passed on as a trailing constant
        self.holo = [Const(True)] if holomorphic else []
        self.kind = kind
        self.has_aux = has_aux
        fdef = clone(core.node)
        self.fdef = fdef
        self.params = [a.id for a in fdef.args.args]
        self.argnums = argnums
        self.what = what or core.name
        ret = fdef.body[-1]
        self.body = fdef.body[:-1]
        self.ret = ret.value if ret.value is not None else Const(None)
        used = {n.id for n in walk(fdef) if isinstance(n, gast.Name)}
        self.scope = NameScope(used | set(namespace()) | {"range", "_"})
        self.adj = {}
        self.special = set()
        self.stacks = {}
        self.saved = set()
        self.comment = None
        # adjoints that are zero from here on (a loop-carried adjoint after
        # its value's assignment): the zero is written only if no
        # contribution replaces it before the block ends (`flush_zeros`)
        self.pending = {}
        # names a loop alone binds whose zero adjoint is made before the
        # reversed loop: bound to None at the start (see _loop_zero_inits)
        self.unbound = set()

    # ---------------------------------------------------------------- names

    def scope_snapshot(self):
        return set(self.scope.used)

    def scope_restore(self, used):
        self.scope.used = used | set(self.adj.values()) | set(self.stacks.values())

    def adj_name(self, x):
        n = self.adj.get(x)
        if n is None:
            n = self.adj[x] = self.scope.fresh("d" + x.lstrip("_"))
        return n

    # ---------------------------------------------------------------- adjoint sweep

    def contribute(self, atom, expr, D, out):
        if not isinstance(atom, gast.Name) or atom.id not in self.active:
            return
        x = atom.id
        dx = self.adj_name(x)
        if x in self.pending:
            del self.pending[x]     # the first contribution replaces the zero
            value = expr
        elif x in D:
            if x in self.arrays:
                value = gast.BinOp(left=Name(dx), op=gast.Add(), right=expr)
            else:
                value = Call("add_any", [Name(dx), expr])
        else:
            value = expr
            D.add(x)
        out.append(self.mark(Assign(dx, value)))

    def mark(self, stmt):
        if self.comment:
            stmt.cotan_comment = f"grad of: {self.comment}"
        return stmt

    def adj_block(self, stmts, D, keep, depth):
        outer, self.pending = self.pending, {}
        out = []
        for s in reversed(stmts):
            if isinstance(s, gast.Assign):
                out += self.adj_assign(s, D, keep)
            else:
                out += self.flush_zeros()
                if isinstance(s, gast.If):
                    out += self.adj_if(s, D, keep, depth)
                else:
                    out += self.adj_loop(s, D, keep, depth)
        out += self.flush_zeros()
        self.pending = outer
        return out

    def flush_zeros(self):
        out = []
        for y, comment in sorted(self.pending.items()):
            a = Assign(self.adj_name(y), Call("zero_adjoint", [y]))
            if comment:
                a.cotan_comment = f"grad of: {comment}"
            out.append(a)
        self.pending = {}
        return out

    def set_zero(self, y, D):
        """y's adjoint is zero from here on (and must exist: `keep`)."""
        self.pending[y] = self.comment
        D.add(y)

    def restore_stmts(self, y):
        if y not in self.saved:
            return []
        a = Assign(y, Call("pop_restore", [self.stacks[y], y]))
        return [self.mark(a)]

    def adj_assign(self, s, D, keep):
        y = s.targets[0].id
        self.comment = getattr(s, "cotan_origin", None)
        restore = self.restore_stmts(y)
        v = s.value
        if isinstance(v, gast.Call) and v.func.id in ("push", "pop_restore"):
            return self.adj_stack_op(s, D, keep) + restore
        if y not in self.active or y not in D or y in self.pending:
            return restore     # (a pending adjoint is zero, and stays so)
        out = []
        g = self.adj_name(y)
        D.discard(y)
        v = s.value
        if isinstance(v, gast.Name):
            if v.id == y:
                D.add(y)
            else:
                self.contribute(v, Name(g), D, out)
        elif isinstance(v, gast.Call):
            prim = PRIMITIVES[v.func.id]
            if prim.differentiable:
                z = y
                if any(isinstance(a, gast.Name) and a.id == y for a in _call_atoms(v)):
                    g2 = self.scope.fresh(g)
                    out.append(self.mark(Assign(g2, Name(g))))
                    g = g2
                    if restore:
                        z = self.scope.fresh(y)
                        out.append(self.mark(Assign(z, Name(y))))
                        out += restore
                        restore = []
                self.apply_rule(prim, v, g, z, D, out)
        if y in keep and y not in D:
            self.set_zero(y, D)
        return out + restore

    def adj_stack_op(self, s, D, keep):
        """A gradient being differentiated again: its stacks get adjoint
        stacks (a stack's adjoint is a stack of adjoints, walked in reverse).
        Going back past `y = pop_restore(S, y)` puts y's cotangent on the
        adjoint of the value it restored; going back past `push(S, v)` takes
        v's cotangent off.  Every stack operation of an active variable is
        reversed, even with a zero cotangent, so the two stacks stay aligned."""
        call = s.value
        stack = call.args[0]
        if call.func.id == "push":
            v = call.args[1]
            out = []
            if isinstance(v, gast.Name) and v.id in self.active:
                # its own name: left nested, the cotangent would be named
                # after the push statement's target `_`, which is no variable
                t = self.scope.fresh("d" + v.id.lstrip("_") + "_pushed")
                out.append(self.mark(Assign(t, Call("stack_unpush", [clone(stack), v.id]))))
                self.contribute(v, Name(t), D, out)
            return out
        y = s.targets[0].id
        if y not in self.active:
            return []
        g = Name(self.adj_name(y)) if y in D and y not in self.pending else Const(None)
        self.pending.pop(y, None)
        D.discard(y)
        out = [self.mark(Expr(Call("stack_unpop", [clone(stack), g])))]
        if y in keep:
            self.set_zero(y, D)
        return out

    def apply_rule(self, prim, call, g, z, D, out):
        rule = prim.rule("vjp")
        args = list(call.args)
        kwargs = {k.arg: k.value for k in call.keywords}
        if getattr(rule, "cotan_builder", False):
            rule(_RuleContext(self, prim.name, D, out), g, z, args, kwargs)
            return
        self.apply_template(rule, g, z, args, kwargs, D, out)

    def apply_template(self, rule, g, z, args, kwargs, D, out):
        sig = inspect.signature(rule)
        pnames = list(sig.parameters)[2:]
        mapping = {"g": Name(g), "z": Name(z)}
        for i, p in enumerate(pnames):
            if i < len(args):
                mapping[p] = args[i]
            elif p.rstrip("_") in kwargs:
                mapping[p] = kwargs[p.rstrip("_")]
            else:
                d = sig.parameters[p].default
                mapping[p] = Const(None if d is inspect.Parameter.empty else d)
        _, _, _, body = template_ast(rule)
        contributions = {"d" + p: p for p in pnames}
        for lhs in sorted({a.targets[0].id for a in body if isinstance(a, gast.Assign)}):
            if lhs not in contributions:
                mapping[lhs] = Name(self.scope.fresh(lhs))
        for st in body:
            if isinstance(st, gast.Assign) and isinstance(st.targets[0], gast.Name) \
                    and st.targets[0].id in contributions:
                p = contributions[st.targets[0].id]
                target = mapping[p]
                if not isinstance(target, gast.Name) or target.id not in self.active:
                    continue
                expr = _Substitute(mapping).visit(clone(st.value))
                self.contribute(target, expr, D, out)
            else:
                out.append(self.mark(_Substitute(mapping).visit(clone(st))))

    def _zero_inits(self, names):
        out = []
        for x in sorted(names):
            a = Assign(self.adj_name(x), Call("zero_adjoint", [x]))
            out.append(self.mark(a))
        return out

    def adj_if(self, s, D, keep, depth):
        used = self.scope_snapshot()
        D1, D2 = set(D), set(D)
        self.adj_block(s.body, D1, keep, depth)
        self.adj_block(s.orelse, D2, keep, depth)
        maybe = (D1 | D2) - (D1 & D2)
        init = maybe - D
        keep2 = keep | (maybe & D)
        self.scope_restore(used)
        D0 = D | init
        D1, D2 = set(D0), set(D0)
        b1 = self.adj_block(s.body, D1, keep2, depth)
        b2 = self.adj_block(s.orelse, D2, keep2, depth)
        D.clear()
        D.update(D1 & D2)
        if not b1 and not b2:
            return []
        self.comment = getattr(s, "cotan_origin", None)
        inits = self._loop_zero_inits(s, init)
        node = gast.If(test=Name(s.test.id), body=b1, orelse=b2)
        return inits + [node]

    def adj_loop(self, s, D, keep, depth):
        # Which adjoints are live around the reversed body: a fixpoint, as an
        # adjoint made live in one trip can make another live only in the
        # next (a gradient's loop reversed again: `ds_1 = ds` ... `ds =
        # f(t_3)`, `t_3 = ds_1 * x` reaches x one trip after ds).  One pass
        # missed those, and their contributions were dropped.
        used = self.scope_snapshot()
        live = set(D)
        while True:
            D1 = set(live)
            self.adj_block(s.body, D1, keep | live, depth + 1)
            self.scope_restore(used)
            if D1 <= live:
                break
            live |= D1
        new = live - D
        keep2 = keep | D | new
        D.update(new)
        body = self.adj_block(s.body, set(D), keep2, depth + 1)
        if not body:
            return []
        self.comment = getattr(s, "cotan_origin", None)
        if isinstance(s, gast.For):
            n = s.cotan_trips
            out = self._loop_zero_inits(s, new)
            a, c = s.cotan_start, s.cotan_step
            if isinstance(a, gast.Constant) and isinstance(c, gast.Constant):
                a, c = a.value, c.value
                first = f"{n} - 1" if (a, c) == (0, 1) else f"{a} + ({n} - 1) * {c}"
                rng = f"range({first}, {a - c}, {-c})"
            else:
                a, c = gast.unparse(a) if hasattr(gast, "unparse") else _src(a), _src(c)
                rng = f"range({a} + ({n} - 1) * {c}, {a} - {c}, -{c})"
            loop = gast.For(target=Name(s.target.id, store=True), iter=parse_expr(rng),
                            body=body, orelse=[], type_comment=None)
            return out + [loop]
        s.cotan_reversed = True
        s.cotan_depth = depth
        count = s.cotan_count
        out = []
        if depth > 0:
            stack = self.stack_for(count)
            out.append(self.mark(Assign(count, Call("pop", [stack]))))
        out += self._loop_zero_inits(s, new)
        k = self.scope.fresh("i")
        # counting down, like a reversed for: under vmap, lanes with fewer
        # iterations then take part in the last ones, where their pushes are
        loop = gast.For(target=Name(k, store=True), iter=parse_expr(f"range({count} - 1, -1, -1)"),
                        body=body, orelse=[], type_comment=None)
        return out + [loop]

    def _loop_zero_inits(self, s, names):
        """Zero adjoints of `names` before the reversed loop (or the `if`) `s`.
        The zero reads its value's structure; a name only the loop binds is
        unbound when the loop ran zero times (a name an earlier branch bound,
        when that branch was not taken), so the function binds it to None first
        (`unbound`; zero_adjoint(None) is None, and nothing reads that
        adjoint when the loop did not run)."""
        bound = getattr(s, "cotan_defined_before", None)
        if bound is not None:
            self.unbound |= {x for x in names if x not in bound}
        return self._zero_inits(names)

    def stack_for(self, y):
        st = self.stacks.get(y)
        if st is None:
            st = self.stacks[y] = self.scope.fresh("stack_" + y.lstrip("_"))
        return st

    # ---------------------------------------------------------------- primal sweep

    def emit_primal(self, stmts, depth):
        out = []
        for s in stmts:
            if isinstance(s, gast.Assign):
                out.append(s)
                y = s.targets[0].id
                if y in self.saved:
                    out.append(Expr(Call("push", [self.stacks[y], y])))
            elif isinstance(s, gast.If):
                s.body = self.emit_primal(s.body, depth)
                s.orelse = self.emit_primal(s.orelse, depth)
                out.append(s)
            elif isinstance(s, gast.For):
                s.body = self.emit_primal(s.body, depth + 1)
                out.append(s)
            elif isinstance(s, gast.While):
                s.body = self.emit_primal(s.body, depth + 1)
                if getattr(s, "cotan_reversed", False):
                    i, n = s.cotan_counter, s.cotan_count
                    out.append(Assign(i, Const(0)))
                    s.body.insert(0, Assign(i, Call("add", [i, Const(1)])))
                    out.append(s)
                    out.append(Assign(n, Name(i)))
                    if depth > 0:
                        out.append(Expr(Call("push", [self.stack_for(n), n])))
                else:
                    out.append(s)
        return out

    # ---------------------------------------------------------------- driver

    def build(self):
        self.wrt = list(range(len(self.params))) if self.kind == "vjp" else list(self.argnums)
        self.body = self.split_custom_calls(self.body)
        parts_head = self.split_parts()
        self.find_active()
        self.find_kinds()
        # after `prepare`: the trip counts, start/step copies and predicate
        # copies it adds inside loops are overwritten per trip like any value
        body = self.prepare(self.body)
        self.body = body
        overwritten = self.find_overwritten()
        mark_defined_before(body, self.params)
        out_atom, aux_atom = self.ret, None
        extra = []
        if self.has_aux:
            out_atom, aux_atom, extra = self.split_aux(body)
        body = body + extra
        # the seed
        seed_stmts = []
        if self.kind == "vjp":
            gparam = self.scope.fresh("g")
        active_out = isinstance(out_atom, gast.Name) and out_atom.id in self.active
        # pass 1: which primal values does the adjoint sweep read?
        D = set()
        used = self.scope_snapshot()
        if active_out:
            D.add(out_atom.id)
            adj1 = self.adj_block(body, D, set(), 0)
            needed = _reads(adj1)
        else:
            needed = set()
        self.stacks = {}
        self.scope_restore(used)
        # a name given the same constant value by every assignment (a slice
        # `make_slice(0, 1, None)` in a loop body) reads the same in every trip
        self.saved = (needed & overwritten) - self.special \
            - constant_valued_names(self.body, self.params)
        self.unbound = set()
        for y in sorted(self.saved):
            self.stack_for(y)
        adjoint = []
        D = set()
        if active_out:
            o = out_atom.id
            do = self.adj_name(o)
            self.comment = None
            if self.kind == "vjp":
                seed_stmts.append(Assign(do, Name(gparam)))
            else:
                seed_stmts.append(Assign(do, Call("grad_seed", [o, Const(self.what)] + self.holo)))
            D.add(o)
            adjoint = self.adj_block(body, D, set(), 0)
        primal = self.emit_primal(body, 0)
        # run-time checks, stacks, pushes of saved parameters
        head = []
        for i in self.wrt:
            if self.kind != "vjp":
                head.append(Expr(Call("check_grad_input", [
                    self.params[i], Const(f"argument {self.params[i]!r} of {self.what}")]
                    + self.holo)))
        for y in sorted(self.stacks):
            head.append(Assign(self.stacks[y], Call("new_stack", [])))
        for y in sorted(self.unbound):
            head.append(Assign(y, Const(None)))
        for p in self.params:
            if p in self.saved:
                head.append(Expr(Call("push", [self.stacks[p], p])))
        if self.kind != "vjp" and not active_out:
            seed_stmts.append(Expr(Call("grad_seed", [clone(out_atom), Const(self.what)]
                                        + self.holo)))
        # results
        tail = []
        grads = []
        for i in self.wrt:
            p = self.params[i]
            if p in self.parts:
                leaves = [Name(self.adj_name(leaf)) if leaf in D else Const(None)
                          for _, leaf in self.parts[p]]
                if any(isinstance(a, gast.Name) for a in leaves):
                    paths = Const(tuple(key for key, _ in self.parts[p]))
                    grads.append(Call("assemble_adjoint", [p, paths] + leaves))
                    continue
            if p in D:
                grads.append(Name(self.adj_name(p)))
            else:
                grads.append(Call("zero_adjoint", [p]))
        if self.kind == "vjp":
            result = gast.Tuple(elts=grads, ctx=gast.Load())
        else:
            result = grads[0] if isinstance(self.argnums_spec, int) else \
                gast.Tuple(elts=grads, ctx=gast.Load())
            if self.kind == "value_and_grad":
                value = clone(out_atom) if aux_atom is None else gast.Tuple(
                    elts=[clone(out_atom), clone(aux_atom)], ctx=gast.Load())
                result = gast.Tuple(elts=[value, result], ctx=gast.Load())
            elif aux_atom is not None:
                result = gast.Tuple(elts=[result, clone(aux_atom)], ctx=gast.Load())
        grads_only = result
        if self.kind == "vjp":
            outv = clone(out_atom) if aux_atom is None else gast.Tuple(
                elts=[clone(out_atom), clone(aux_atom)], ctx=gast.Load())
            result = gast.Tuple(elts=[outv, result], ctx=gast.Load())
        adjoint = _drop_final_restores(adjoint, result)
        self.pieces = {"forward": head + parts_head + primal, "backward": seed_stmts + adjoint,
                       "result": grads_only, "out": out_atom, "aux": aux_atom}
        final = gast.Return(value=result)
        # without its own comment the return would inherit the last `grad of:` line
        final.cotan_comment = getattr(self.fdef.body[-1], "cotan_origin", None) or "result"
        tail.append(final)
        args = list(self.fdef.args.args)
        if self.kind == "vjp":
            args = args + [Name(gparam)]
        self.build_args = args
        if self.kind == "vjp":
            for a in args:
                a.ctx = gast.Param()
        fdef = gast.FunctionDef(
            name=f"{self.kind}_{self.core.name}",
            args=gast.arguments(args=args, posonlyargs=[], vararg=None, kwonlyargs=[],
                                kw_defaults=[], kwarg=None, defaults=[]),
            body=head + parts_head + primal + seed_stmts + adjoint + tail, decorator_list=[],
            returns=None, type_comment=None, type_params=[])
        return fdef

    def build_split(self):
        """The VJP as two functions: forward(*params) -> (out, residuals),
        residuals being the primal values the adjoint sweep reads, and
        backward(*residuals, g) -> cotangents, which reruns nothing of the
        primal.  Stacks are copied on entry to backward (it pops them), so
        backward can be called repeatedly."""
        self.build()
        p = self.pieces
        g = [a.id for a in self.build_args if a.id not in self.params][0]
        backward = p["backward"]
        result = gast.Return(value=p["result"])
        result.cotan_comment = "result"
        defined = set(self.params) | _assigned(p["forward"])
        residuals = sorted(_free_reads(backward + [result]) & defined - {g})
        stacks = set(self.stacks.values())
        copies = [Assign(r, Call("copy_stack", [r])) for r in residuals if r in stacks]
        outv = clone(p["out"]) if p["aux"] is None else gast.Tuple(
            elts=[clone(p["out"]), clone(p["aux"])], ctx=gast.Load())
        fwd_ret = gast.Return(value=gast.Tuple(elts=[outv, gast.Tuple(
            elts=[Name(r) for r in residuals], ctx=gast.Load())], ctx=gast.Load()))
        fwd_ret.cotan_comment = getattr(self.fdef.body[-1], "cotan_origin", None) or "result"
        # a residual assigned only inside a branch or loop body is unbound on
        # the paths that skip it; backward reads it only on the paths that set it
        top = set(self.params) | {st.targets[0].id for st in p["forward"]
                                  if isinstance(st, gast.Assign)}
        unbound = [Assign(r, Const(None)) for r in residuals if r not in top]
        forward = _function(f"vjp_forward_{self.core.name}", self.params,
                            unbound + p["forward"] + [fwd_ret])
        backward = _function(f"vjp_backward_{self.core.name}", residuals + [g],
                             copies + backward + [result])
        return forward, backward

    def split_aux(self, body):
        r = self.ret
        if isinstance(r, gast.Name):
            for s in body:
                if isinstance(s, gast.Assign) and s.targets[0].id == r.id and \
                        isinstance(s.value, gast.Call) and s.value.func.id == "make_tuple" \
                        and len(s.value.args) == 2 and \
                        sum(1 for a in _walk_assigns(body) if a.targets[0].id == r.id) == 1:
                    return s.value.args[0], s.value.args[1], []
        o, a = self.scope.fresh("out"), self.scope.fresh("aux")
        extra = [Assign(o, Call("getitem", [clone(r), Const(0)])),
                 Assign(a, Call("getitem", [clone(r), Const(1)]))]
        if isinstance(r, gast.Name) and r.id in self.active:
            self.active.add(o)
        return Name(o), Name(a), extra


def _free_reads(stmts):
    """Names `stmts` may read before assigning them (conservative inside
    compound statements)."""
    free, assigned = set(), set()
    for st in stmts:
        free |= _reads([st]) - assigned
        if isinstance(st, gast.Assign):
            assigned.add(st.targets[0].id)
        else:
            assigned |= _assigned([st])
    return free


def _function(name, params, body):
    return gast.FunctionDef(
        name=name,
        args=gast.arguments(args=[gast.Name(id=p, ctx=gast.Param(), annotation=None,
                                            type_comment=None) for p in params],
                            posonlyargs=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                            kwarg=None, defaults=[]),
        body=body, decorator_list=[], returns=None, type_comment=None, type_params=[])


def _drop_final_restores(stmts, result):
    """Top-level `y = pop_restore(...)` statements after which nothing reads
    `y` (the sweep's way back past a first assignment): not needed."""
    reads = {n.id for n in walk(result) if isinstance(n, gast.Name)}
    out = []
    for st in reversed(stmts):
        if isinstance(st, gast.Assign) and isinstance(st.value, gast.Call) \
                and st.value.func.id == "pop_restore" and st.targets[0].id not in reads:
            continue
        reads |= _reads([st])
        out.append(st)
    return out[::-1]


def _src(node):
    import ast
    return ast.unparse(gast.gast_to_ast(node))


def _namespace_for(core):
    ns = dict(namespace())
    ns.update(PRIMITIVES)  # custom_vjp / checkpoint primitives registered later
    ns.update(core.captured)
    return ns


def vjp_functions(core, has_aux=False, what=None):
    """The VJP of CoreFunction `core` split in two CoreFunctions: forward
    (params -> (out, residuals)) and backward (*residuals, g -> cotangents)."""
    nums = tuple(range(len(core.params)))
    core = version_names(core)
    rev = Reverser(core, nums, "vjp", has_aux, what)
    rev.argnums_spec = nums
    fwd, bwd = rev.build_split()
    ns = _namespace_for(core)
    origin = getattr(core.source_fn, "__qualname__", core.name)
    return (build_function(fwd, ns, "vjp forward", origin),
            build_function(bwd, ns, "vjp backward", origin))


def reverse_function(core, argnums=0, kind="grad", has_aux=False, what=None,
                     holomorphic=False):
    """The gradient (kind 'grad' / 'value_and_grad') or the VJP function
    (kind 'vjp': parameters + cotangent -> (output, cotangents)) of
    CoreFunction `core`, as a CoreFunction.  Also returns the pre-normalization
    gast FunctionDef for inspection."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    # Versioned names first: a value overwritten outside loops stays
    # available under its own name, so only loop-carried values need stacks.
    core = version_names(core)
    rev = Reverser(core, nums, kind, has_aux, what, holomorphic)
    rev.argnums_spec = argnums
    fdef = rev.build()
    ns = _namespace_for(core)
    label = {"grad": "grad", "value_and_grad": "value_and_grad", "vjp": "vjp"}[kind]
    origin = getattr(core.source_fn, "__qualname__", core.name)
    return build_function(fdef, ns, label, origin)
