"""Control-flow desugaring: `return`, `break` and `continue` into flags.

Owns the pass that leaves a function with a single final `return`, loops
without `break`/`continue`/`else`, so that every later stage sees structured
control flow only.  Runs on gast that still holds nested expressions; must
not flatten expressions (that is `normalize.py`'s job).

The rewrite, by example::

    for i in range(n):            did_break = False
        if x[i] < 0:              for i_1 in range(n):
            break         →           if not did_break:
        s = s + x[i]                      i = i_1
                                          if x[i] < 0:
                                              did_break = True
                                          if not did_break:
                                              s = s + x[i]

A `for` keeps its trip count (the iterations after a `break` do nothing),
which keeps reverse mode and batching simple; the guard covers the binding
of the loop target too, so after a `break` the target (and everything the
breaking trip assigned) holds what Python leaves there.  Desugaring leaves
the guard on the `for` node (`cotan_trip_guard`) and the flattener places
it around the target's binding and the body.  A `while` gets the flag in
its condition and stops.  A loop's `else` runs under `not did_break`.
"""

import gast


def _name(id_, ctx=None):
    return gast.Name(id=id_, ctx=ctx or gast.Load(), annotation=None, type_comment=None)


def _assign(name, value, like):
    a = gast.Assign(targets=[_name(name, gast.Store())], value=value, type_comment=None)
    return gast.copy_location(a, like)


def _const(v):
    return gast.Constant(value=v, kind=None)


def _none_of(flags, like):
    """Expression `not (f1 or f2 ...)` over flag names (bools, no side effects)."""
    if len(flags) == 1:
        e = gast.UnaryOp(op=gast.Not(), operand=_name(flags[0]))
    else:
        inner = gast.BoolOp(op=gast.Or(), values=[_name(f) for f in flags])
        inner.cotan_pure = True
        e = gast.UnaryOp(op=gast.Not(), operand=inner)
    return gast.copy_location(e, like)


def _walk_same_function(node):
    """Nodes of `node` without descending into nested function definitions."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        for child in gast.iter_child_nodes(n):
            if isinstance(child, (gast.FunctionDef, gast.Lambda, gast.ClassDef)):
                continue
            stack.append(child)


def _has(node, kind):
    return any(isinstance(n, kind) for n in _walk_same_function(node))


def _has_loop_jump(node, kind):
    """Does `node` hold a `break`/`continue` (kind) of the loop it sits in?"""
    if isinstance(node, kind):
        return True
    if isinstance(node, (gast.For, gast.While)):
        return False  # jumps inside belong to the inner loop
    if isinstance(node, (gast.FunctionDef, gast.Lambda, gast.ClassDef)):
        return False
    return any(_has_loop_jump(c, kind) for c in gast.iter_child_nodes(node))


class _Ctx:
    def __init__(self, ret=None, brk=None, cont=None):
        self.ret = ret      # (did_return, result) names, or None
        self.brk = brk      # did_break name of the innermost loop, or None
        self.cont = cont    # did_continue name of the innermost loop, or None


def desugar_control_flow(fn_node, scope):
    """Rewrite `fn_node` (gast FunctionDef) in place; returns it."""
    body = fn_node.body
    returns = [n for n in _walk_same_function(fn_node) if isinstance(n, gast.Return)]
    last = body[-1] if body else None
    simple = (not returns) or (len(returns) == 1 and returns[0] is last)
    if simple:
        ctx = _Ctx()
        new_body = _block(body, ctx, scope)
        if not returns:
            new_body.append(gast.copy_location(gast.Return(value=_const(None)), last or fn_node))
        fn_node.body = new_body
        return fn_node
    did_return = scope.fresh("did_return")
    result = scope.fresh("result")
    ctx = _Ctx(ret=(did_return, result))
    first = body[0]
    new_body = [_assign(did_return, _const(False), first), _assign(result, _const(None), first)]
    new_body += _block(body, ctx, scope)
    new_body.append(gast.copy_location(gast.Return(value=_name(result)), last))
    fn_node.body = new_body
    return fn_node


def _jump_flags(stmt, ctx):
    flags = []
    if ctx.ret and _has(stmt, gast.Return):
        flags.append(ctx.ret[0])
    if ctx.brk and _has_loop_jump(stmt, gast.Break):
        flags.append(ctx.brk)
    if ctx.cont and _has_loop_jump(stmt, gast.Continue):
        flags.append(ctx.cont)
    return flags


def _block(stmts, ctx, scope):
    out = []
    for i, s in enumerate(stmts):
        flags = _jump_flags(s, ctx)  # before _stmt rewrites the jumps away
        out.extend(_stmt(s, ctx, scope))
        rest = stmts[i + 1:]
        if flags and rest:
            rest_out = _block(rest, ctx, scope)
            if rest_out:
                guard = gast.If(test=_none_of(flags, rest[0]), body=rest_out, orelse=[])
                out.append(gast.copy_location(guard, rest[0]))
            return out
    return out


def _stmt(s, ctx, scope):
    if isinstance(s, gast.Return):
        if ctx.ret is None:
            return [s]
        value = s.value if s.value is not None else _const(None)
        return [_assign(ctx.ret[1], value, s), _assign(ctx.ret[0], _const(True), s)]
    if isinstance(s, gast.Break):
        return [_assign(ctx.brk, _const(True), s)]
    if isinstance(s, gast.Continue):
        return [_assign(ctx.cont, _const(True), s)]
    if isinstance(s, gast.If):
        s.body = _block(s.body, ctx, scope) or [gast.Pass()]
        s.orelse = _block(s.orelse, ctx, scope)
        return [s]
    if isinstance(s, (gast.For, gast.While)):
        return _loop(s, ctx, scope)
    return [s]


def _loop(s, ctx, scope):
    has_break = any(_has_loop_jump(c, gast.Break) for c in s.body)
    has_cont = any(_has_loop_jump(c, gast.Continue) for c in s.body)
    has_ret = ctx.ret is not None and any(_has(c, gast.Return) for c in s.body)
    brk = scope.fresh("did_break") if has_break else None
    cont = scope.fresh("did_continue") if has_cont else None
    inner = _Ctx(ret=ctx.ret, brk=brk, cont=cont)
    body = _block(s.body, inner, scope)
    if cont:
        body.insert(0, _assign(cont, _const(False), s.body[0]))
    stop_flags = ([brk] if brk else []) + ([ctx.ret[0]] if has_ret else [])
    pre = [_assign(brk, _const(False), s)] if brk else []
    orelse = _block(s.orelse, ctx, scope) if s.orelse else []
    s.orelse = []
    if isinstance(s, gast.For):
        # The trip guard must also cover binding the loop target: after a
        # `break` the target keeps the value of the trip that broke, as in
        # Python.  The flattener binds the target, so it places the guard.
        s.body = body
        s.cotan_trip_guard = _none_of(stop_flags, s) if stop_flags else None
    else:
        s.body = body
        if stop_flags:
            test = gast.BoolOp(op=gast.And(), values=[_none_of(stop_flags, s), s.test])
            s.test = gast.copy_location(test, s.test)
    post = []
    if orelse:
        # `else` runs when the loop ended without `break` (or `return`).
        if stop_flags:
            post.append(gast.copy_location(
                gast.If(test=_none_of(stop_flags, s), body=orelse, orelse=[]), s))
        else:
            post.extend(orelse)
    return pre + [s] + post
