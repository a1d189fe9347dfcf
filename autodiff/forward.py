"""Forward mode: CoreFunction -> a function computing primal and tangent outputs.

Owns `jvp_core` (the transformation) and `jvp_function` (it, materialized
and cached).  The output keeps the input's control flow as it is (no tape):
each statement is followed (or, when it rebinds one of its own inputs,
preceded) by its tangent statement(s), spliced from the primitive's JVP
template (autodiff/jvp_rules.py) and commented `# jvp of: <user line>`.

Zero tangents are tracked symbolically: a name whose tangent is known to be
zero has no tangent variable, statements reading only such names get no
tangent statement, and templates are simplified (`dx * y + x * 0` ->
`dx * y`).  A zero is materialized (`tangent_zeros(v)`) only where a value
is needed: where control flow merges a path with a tangent and one without,
inside containers, and for a zero output tangent.

The generated function takes the primal parameters followed by one tangent
per *active* parameter (`dx` for `x`) and returns `(out, dout)`.  It is
written as ordinary Python (gast) and turned into core form by
`templates.build_function`, like every transformation.  `linearize` (the
primal/tangent split) lives in `autodiff/linearize.py`.  Must not touch
reverse mode or batching.
"""

import copy

import gast

from .syntax import clone, walk
from ..errors import TransformError
from ..runtime.table import PRIMITIVES
from . import jvp_rules
from .core_form import validate
from .materialize import materialize
from .names import NameScope
from .normalize import Assign, Call, Const, Name, normalize_function
from .templates import build_function, rule_namespace, template_ast
from .transform_lock import serialized

ZERO = "__cotan_zero__"


def _zero(primal):
    node = Name(ZERO)
    node.cotan_primal = primal
    return node


def is_zero(node):
    return isinstance(node, gast.Name) and node.id == ZERO


# -- zero simplification ------------------------------------------------------------

#: primitives linear in every positional argument that can carry a tangent
_ZERO_IF_ANY = {"multiply", "matmul", "dot"}
#: primitives linear in their first argument (zero in, zero out)
_ZERO_IF_FIRST = {
    "getitem", "reshape", "transpose", "broadcast_to", "sum", "cumsum", "flip",
    "diagonal", "take", "take_along_axis", "concatenate", "array", "astype", "copy",
    "to_float", "to_tuple", "to_list", "unbroadcast", "expand_reduced", "negative",
}


def materialize_zero(node):
    """A value for a symbolic zero: 0.0 for a constant's, else tangent_zeros(v)."""
    primal = node.cotan_primal
    if isinstance(primal, gast.Constant) and isinstance(primal.value, (int, float, bool)):
        return Const(0.0)
    return Call("tangent_zeros", [clone(primal)])


def simplify_zeros(node):
    """Propagate symbolic zeros through a tangent expression.

    Returns the simplified expression, or a zero node if it is zero.
    Zeros left in positions that need a value are materialized.
    """
    if is_zero(node):
        return node
    if isinstance(node, gast.BinOp):
        left, right = simplify_zeros(node.left), simplify_zeros(node.right)
        lz, rz = is_zero(left), is_zero(right)
        op = node.op
        if isinstance(op, gast.Add):
            if lz:
                return right
            if rz:
                return left
        elif isinstance(op, gast.Sub):
            if rz:
                return left
            if lz:
                return gast.UnaryOp(op=gast.USub(), operand=right)
        elif isinstance(op, (gast.Mult, gast.MatMult)):
            if lz or rz:
                return left if lz else right
        elif isinstance(op, gast.Div):
            if lz:
                return left
        if _number(left) and _number(right) and isinstance(op, (gast.Add, gast.Sub)):
            v = left.value + right.value if isinstance(op, gast.Add) else left.value - right.value
            return Const(v)
        return gast.BinOp(left=_value(left), op=op, right=_value(right))
    if isinstance(node, gast.UnaryOp):
        operand = simplify_zeros(node.operand)
        if is_zero(operand) and isinstance(node.op, (gast.USub, gast.UAdd)):
            return operand
        return gast.UnaryOp(op=node.op, operand=_value(operand))
    if isinstance(node, gast.Call) and isinstance(node.func, gast.Name):
        fname = node.func.id
        args = [simplify_zeros(a) for a in node.args]
        kws = [gast.keyword(arg=k.arg, value=_value(simplify_zeros(k.value)))
               for k in node.keywords]
        zeros = [is_zero(a) for a in args]
        if fname in _ZERO_IF_ANY and any(zeros):
            return args[zeros.index(True)]
        if fname == "einsum" and any(zeros[1:]):
            return args[1 + zeros[1:].index(True)]
        if fname in _ZERO_IF_FIRST and args and zeros[0]:
            return args[0]
        if fname == "power" and len(args) == 2 and _number(args[1]) and args[1].value == 1:
            return args[0]
        if fname == "solve" and len(args) == 2 and zeros[1]:
            return args[1]
        if fname in ("select", "where") and len(args) == 3:
            if zeros[1] and zeros[2]:
                return args[1]
            # a scalar zero broadcasts against the other branch
            args = [args[0]] + [Const(0.0) if z else a for a, z in zip(args[1:], zeros[1:])]
        elif fname == "add_any" and len(args) == 2:
            if zeros[0]:
                return args[1]
            if zeros[1]:
                return args[0]
        elif fname == "setitem" and len(args) >= 2:
            if zeros[0] and zeros[1]:
                return args[0]
            if zeros[1]:
                args[1] = Const(0.0)
        elif fname == "list_append" and all(zeros):
            return args[0]
        return gast.Call(func=node.func, args=[_value(a) for a in args], keywords=kws)
    if isinstance(node, (gast.Tuple, gast.List)):
        elts = [simplify_zeros(e) for e in node.elts]
        if elts and all(is_zero(e) for e in elts):
            z = _zero(type(node)(elts=[e.cotan_primal for e in elts], ctx=gast.Load()))
            return z
        return type(node)(elts=[_value(e) for e in elts], ctx=gast.Load())
    return node


def _number(node):
    return isinstance(node, gast.Constant) and type(node.value) in (int, float)


def _value(node):
    return materialize_zero(node) if is_zero(node) else node


# -- templates -------------------------------------------------------------------------

class _RuleInfo:
    """What forward mode needs to know about one template, computed once."""

    def __init__(self, rule):
        params, kwonly, vararg, body = template_ast(rule)
        self.params, self.kwonly, self.vararg, self.body = params, kwonly, vararg, body
        self.out = params[0]
        self.diff_params = set()
        self.uses_out = False
        self.locals = set()
        for s in body:
            for n in walk(s):
                if _is_d(n) and isinstance(n.slice, gast.Name) and isinstance(n.ctx, gast.Load):
                    self.diff_params.add(n.slice.id)
            if isinstance(s, gast.Assign):
                t = s.targets[0]
                if isinstance(t, gast.Name):
                    self.locals.add(t.id)
        for s in body:
            for n in _walk_outside_d(s):
                if isinstance(n, gast.Name) and n.id == self.out and isinstance(n.ctx, gast.Load):
                    self.uses_out = True


def _is_d(node):
    return isinstance(node, gast.Subscript) and isinstance(node.value, gast.Name) \
        and node.value.id == "d"


def _walk_outside_d(node):
    todo = [node]
    while todo:
        n = todo.pop()
        if _is_d(n):
            continue
        yield n
        todo.extend(gast.iter_child_nodes(n))


_rule_info = {}


def rule_info(rule):
    got = _rule_info.get(rule)
    if got is None:
        got = _rule_info[rule] = _RuleInfo(rule)
    return got


class _Splice(gast.NodeTransformer):
    """Bind a template body: parameters -> atoms, `d[p]` -> tangents,
    template locals -> fresh names, `*index` -> the spliced atoms."""

    def __init__(self, mapping, tangent, local_names, vararg, rest, out_tangent, omit=()):
        self.omit = set(omit)
        self.mapping = mapping
        self.tangent = tangent
        self.local_names = local_names
        self.vararg = vararg
        self.rest = rest
        self.out_tangent = out_tangent

    def visit_Subscript(self, node):
        if _is_d(node):
            p = node.slice.id
            if isinstance(node.ctx, gast.Store):
                return Name(self.out_tangent, store=True)
            return self.tangent(self.mapping[p])
        return self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in self.local_names:
            return Name(self.local_names[node.id], store=isinstance(node.ctx, gast.Store))
        rep = self.mapping.get(node.id)
        if rep is not None:
            return clone(rep)
        return node

    def visit_Call(self, node):
        # keywords the primal call left at their defaults stay unwritten
        node.keywords = [k for k in node.keywords if not (
            isinstance(k.value, gast.Name) and k.value.id in self.omit and k.arg == k.value.id)]
        self.generic_visit(node)
        args = []
        for a in node.args:
            if isinstance(a, gast.Starred) and isinstance(a.value, gast.Name) \
                    and a.value.id == self.vararg:
                args.extend(clone(r) for r in self.rest)
            else:
                args.append(a)
        node.args = args
        return node


class RuleContext:
    """What rule builders see: tangents of atoms, zero tests, call building."""

    def __init__(self, fwd, active):
        self.fwd = fwd
        self.active = active

    def tangent(self, atom):
        if isinstance(atom, gast.Name) and atom.id in self.active:
            return Name(self.fwd.tangent_name(atom.id))
        return _zero(atom)

    @staticmethod
    def is_zero(node):
        return is_zero(node)

    @staticmethod
    def materialize(node):
        return _value(node)

    @staticmethod
    def call(prim, args, keywords=None):
        kws = keywords or {}
        return gast.Call(func=Name(prim), args=[clone(a) for a in args],
                         keywords=[gast.keyword(arg=k, value=clone(v))
                                   for k, v in kws.items()])

    def capture(self, value, base):
        """A global name for `value` in the generated function."""
        return Name(self.fwd.capture(value, base))

    def need_tangent_stack(self, stack):
        """Ask for a tangent stack beside reverse mode's stack `stack`."""
        self.fwd.request_stack(stack)


# -- the transformation ----------------------------------------------------------------

class _Forward:
    def __init__(self, core, active_params):
        self.core = core
        used = {n.id for n in walk(core.node) if isinstance(n, gast.Name)}
        used |= {a.id for a in core.node.args.args}
        self.namespace = rule_namespace(jvp_rules)
        self.namespace.update(core.captured)
        self.scope = NameScope(used | set(self.namespace) | {ZERO, "d"})
        self.tangents = {}
        self.active_params = list(active_params)
        self.tangent_stacks = set()
        self.rerun = False

    def request_stack(self, stack):
        if isinstance(stack, gast.Name) and stack.id not in self.tangent_stacks:
            self.tangent_stacks.add(stack.id)
            self.rerun = True

    def stack_op(self, s, active, out):
        """Reverse mode's stacks (a gradient being differentiated again):
        values pushed with a tangent get their tangent pushed to a tangent
        stack, so `pop_restore` can restore the tangent with the value.
        Returns True when `s` was handled here."""
        call = s.value
        fname = call.func.id
        origin = getattr(s, "cotan_origin", None)
        target = s.targets[0].id
        if fname == "new_stack" and target in self.tangent_stacks:
            out.append(clone(s))
            out.append(self._mark(Assign(self.tangent_name(target), Call("new_stack", [])),
                                  origin))
            active.add(target)
            return True
        if fname == "push" and len(call.args) == 2:
            stack, value = call.args
            value_active = isinstance(value, gast.Name) and value.id in active
            if isinstance(stack, gast.Name) and stack.id in active:
                dv = Name(self.tangent_name(value.id)) if value_active else \
                    materialize_zero(_zero(value))
                out.append(clone(s))
                out.append(self._mark(Assign("_", Call("push", [
                    Name(self.tangent_name(stack.id)), dv])), origin))
                return True
            if value_active:
                self.request_stack(stack)
            return False
        if fname == "pop" and len(call.args) == 1:
            stack = call.args[0]
            if isinstance(stack, gast.Name) and stack.id in active:
                out.append(clone(s))
                out.append(self._mark(Assign(self.tangent_name(target), Call("pop", [
                    Name(self.tangent_name(stack.id))])), origin))
                active.add(target)
                return True
        return False

    def tangent_name(self, name):
        t = self.tangents.get(name)
        if t is None:
            t = self.tangents[name] = self.scope.fresh("d" + name)
        return t

    def capture(self, value, base):
        for k, v in self.namespace.items():
            if v is value and k.startswith(base):
                return k
        name = self.scope.fresh(base)
        self.namespace[name] = value
        return name

    # ---- statements

    def block(self, stmts, active, defined):
        out = []
        for s in stmts:
            if isinstance(s, gast.Assign):
                self.assign(s, active, defined, out)
            elif isinstance(s, gast.If):
                self.if_(s, active, defined, out)
            elif isinstance(s, (gast.For, gast.While)):
                self.loop(s, active, defined, out)
            else:
                raise TransformError(f"jvp: unexpected {type(s).__name__} in core form")
        return out

    def assign(self, s, active, defined, out):
        target = s.targets[0].id
        value = s.value
        origin = getattr(s, "cotan_origin", None)
        if not isinstance(value, gast.Call):
            out.append(clone(s))
            if isinstance(value, gast.Name) and value.id in active:
                t = Assign(self.tangent_name(target), Name(self.tangent_name(value.id)))
                out.append(self._mark(t, origin))
                active.add(target)
            else:
                active.discard(target)
            defined.add(target)
            return
        if value.func.id in ("new_stack", "push", "pop") and self.stack_op(s, active, out):
            defined.add(target)
            return
        prim = PRIMITIVES[value.func.id]
        arg_atoms = list(value.args) + [k.value for k in value.keywords]
        has_active = any(isinstance(a, gast.Name) and a.id in active for a in arg_atoms)
        if not prim.differentiable or not has_active:
            out.append(clone(s))
            active.discard(target)
            defined.add(target)
            return
        rule = prim.rule("jvp")  # MissingRuleError carries a declared reason
        stmts = self.instantiate(rule, s, active)
        defined.add(target)
        if stmts is None:
            out.append(clone(s))
            active.discard(target)
            return
        tangent_stmts, order = stmts
        for t in tangent_stmts:
            self._mark(t, origin)
        if order == "after":
            out.append(clone(s))
            out.extend(tangent_stmts)
        elif order == "before":
            out.extend(tangent_stmts)
            out.append(clone(s))
        else:  # the output rebinds an input and the rule reads the output
            tmp = order
            primal = clone(s)
            primal.targets = [Name(tmp, store=True)]
            out.append(primal)
            out.extend(tangent_stmts)
            rebind = Assign(target, Name(tmp))
            rebind.cotan_origin = origin
            out.append(rebind)
        active.add(target)

    @staticmethod
    def _mark(stmt, origin):
        stmt.cotan_comment = f"jvp of: {origin}" if origin else "jvp"
        return stmt

    def instantiate(self, rule, s, active):
        """(tangent statements, order) for primal statement `s`, or None if
        its tangent is zero.  order: 'after', 'before' or a temporary name
        the primal output goes to first."""
        target = s.targets[0].id
        call = s.value
        ctx = RuleContext(self, active)
        arg_names = {a.id for a in list(call.args) + [k.value for k in call.keywords]
                     if isinstance(a, gast.Name)}
        out_tangent = self.tangent_name(target)
        if getattr(rule, "cotan_builder", False):
            expr = rule(ctx, target, list(call.args), {k.arg: k.value for k in call.keywords})
            if expr is None:
                return None
            expr = simplify_zeros(expr)
            if is_zero(expr):
                return None
            return [Assign(out_tangent, expr)], ("before" if target in arg_names else "after")
        info = rule_info(rule)
        mapping = {}
        for p, a in zip(info.params[1:], call.args):
            mapping[p] = a
        # a sum of tangents with a term missing may be narrower than the output
        widen = getattr(rule, "cotan_widen", False) and any(
            not (isinstance(mapping[p], gast.Name) and mapping[p].id in active)
            and not isinstance(mapping[p], gast.Constant)
            for p in info.diff_params if p in mapping)
        order = "after"
        out_atom = target
        if target in arg_names:
            if info.uses_out or widen:
                order = out_atom = self.scope.fresh(target + "_new")
            else:
                order = "before"
        mapping[info.out] = Name(out_atom)
        rest = list(call.args[len(info.params) - 1:]) if info.vararg else []
        given = {k.arg: k.value for k in call.keywords}
        if not info.vararg:
            # core form passes keywords positionally too (`diagonal(a, 2, 0, 1)`)
            given.update(PRIMITIVES[call.func.id].bind_extra(call.args, len(info.params) - 1))
        for k, default in info.kwonly.items():
            if k in given:
                mapping[k] = given[k]
            else:
                mapping[k] = clone(default) if default is not None else Const(None)
        unknown = set(given) - set(info.kwonly)
        if unknown:
            raise TransformError(f"jvp rule of {call.func.id!r} does not take keyword(s) "
                                 f"{sorted(unknown)}")
        local_names = {n: self.scope.fresh(n) for n in info.locals}
        splice = _Splice(mapping, ctx.tangent, local_names, info.vararg, rest, out_tangent,
                         omit=set(info.kwonly) - set(given))
        stmts = []
        for stmt in info.body:
            stmts.append(splice.visit(clone(stmt)))
        final = stmts[-1]
        final.value = simplify_zeros(final.value)
        if is_zero(final.value):
            return None
        if widen:
            final.value = Call("broadcast_to", [final.value, Call("shape", [Name(out_atom)])])
        for stmt in stmts[:-1]:
            stmt.value = _value(simplify_zeros(stmt.value))
        return stmts, order

    def if_(self, s, active, defined, out):
        body_act, else_act = set(active), set(active)
        body_def, else_def = set(defined), set(defined)
        body = self.block(s.body, body_act, body_def)
        orelse = self.block(s.orelse, else_act, else_def)
        merged = body_act | else_act
        body += self._zero_fill(sorted(merged - body_act), body_def)
        orelse += self._zero_fill(sorted(merged - else_act), else_def)
        node = gast.If(test=clone(s.test), body=body or [gast.Pass()], orelse=orelse)
        node.cotan_origin = getattr(s, "cotan_origin", None)
        out.append(node)
        active.clear()
        active.update(merged)
        defined.clear()
        defined.update(body_def & else_def)

    def loop(self, s, active, defined, out):
        target = s.target.id if isinstance(s, gast.For) else None
        head = set(active) - {target}
        for _ in range(len(self.core.params) + 1000):
            body_act = set(head)
            body_def = set(defined) | ({target} if target else set())
            body = self.block(s.body, body_act, body_def)
            if body_act <= head:
                break
            head |= body_act
        head.discard(target)
        # a tangent the body dropped must be zero when the next iteration reads it
        body += self._zero_fill(sorted(head - body_act), body_def)
        out.extend(self._zero_fill(sorted(head - active), defined))
        node = copy.copy(s)
        node.body = body
        out.append(node)
        active.clear()
        active.update(head)

    def _zero_fill(self, names, defined):
        stmts = []
        for n in names:
            if n in defined:
                z = Assign(self.tangent_name(n), Call("tangent_zeros", [Name(n)]))
                z.cotan_comment = f"jvp: {n} has no tangent on this path"
                stmts.append(z)
        return stmts

    # ---- the function

    def function(self, name):
        fdef = self.core.node
        params = self.core.params
        used, tangents = set(self.scope.used), dict(self.tangents)
        while True:
            # tangent stacks found on the way need the pass rerun from the start
            self.rerun = False
            self.scope.used, self.tangents = set(used), dict(tangents)
            active = set(self.active_params)
            defined = set(params)
            body = self.block(fdef.body[:-1], active, defined)
            if not self.rerun:
                break
        ret = fdef.body[-1].value
        if isinstance(ret, gast.Name) and ret.id in active:
            dret = Name(self.tangent_name(ret.id))
        else:
            dret = materialize_zero(_zero(ret if ret is not None else Const(None)))
        ret_stmt = gast.Return(value=gast.Tuple(elts=[clone(ret), dret],
                                                ctx=gast.Load()))
        ret_stmt.cotan_origin = getattr(fdef.body[-1], "cotan_origin", None)
        body.append(ret_stmt)
        args = [Name(p) for p in params] + [Name(self.tangent_name(p))
                                            for p in self.active_params]
        for a in args:
            a.ctx = gast.Param()
        return gast.FunctionDef(
            name=name, args=gast.arguments(args=args, posonlyargs=[], vararg=None,
                                           kwonlyargs=[], kw_defaults=[], kwarg=None,
                                           defaults=[]),
            body=body, decorator_list=[], returns=None, type_comment=None, type_params=[])


def jvp_core(core, active_params=None):
    """Forward-mode CoreFunction of `core`: parameters `(*params, *d_active)`,
    returning `(out, dout)`.  `active_params` (default: all) names the
    parameters that get a tangent; the others' tangents are zero."""
    if active_params is None:
        active_params = core.params
    fwd = _Forward(core, active_params)
    fdef = fwd.function(f"jvp_{core.name}")
    out = build_function(fdef, fwd.namespace, "jvp", core.name)
    validate(out.node)
    return out


_cache = {}


@serialized
def jvp_function(fn, active=None):
    """The materialized JVP of Python function `fn` (see `jvp_core`);
    `active` is a tuple of parameter indices with tangents (default: all)."""
    core = normalize_function(fn)
    key = (core, None if active is None else tuple(active))
    got = _cache.get(key)
    if got is None:
        names = core.params if active is None else [core.params[i] for i in active]
        got = materialize(jvp_core(core, names), "jvp")
        _cache[key] = got
    return got
