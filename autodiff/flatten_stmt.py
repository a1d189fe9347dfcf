"""Flattening of statements: the first half of the flattener.

Owns `Flattener`: names and fresh temporaries, emitting core-form
statements (folding calls whose inputs are all constants), assignments of
every target form, subscript and augmented assignment as functional
`setitem` updates (NumPy's aliasing is kept by `views.ViewTracking`, mixed
in), and `if`/`for`/`while` — a loop body is flattened again from the joined
state at its head until that state settles.  Expressions and calls are in
`flatten_expr.py`.  Must not differentiate, batch or compile.
"""


import gast
import numpy

from ..runtime.table import PRIMITIVES
from . import resolve
from .core_form import is_constant_value
from .flatten_expr import ExpressionFlattener, LocalScope, _LocalFunction  # noqa: F401
from .syntax import walk  # noqa: E402
from .syntax import (Name, Const, Call, Assign, _BINOPS, _op_symbol,  # noqa: F401
                     _stored_names, _mutated_names, _origin_table)
from .views import Views, ViewTracking


class Flattener(ViewTracking, ExpressionFlattener):
    """Turns user statements into core-form statements (see normalize.py)."""

    def __init__(self, parsed, scope, captured, out, inline_stack, parent=None,
                 origin_override=None):
        self.parsed = parsed
        self.scope = scope
        self.captured = captured          # emitted name -> value
        self._captured_ids = {}
        self.out = out
        self.inline_stack = inline_stack
        self.parent = parent
        self.rename = {}                  # user local -> atom node
        self.locals = set()
        self.local_funcs = {}
        self.fn_aliases = {}              # user local -> a function it names (act = np.tanh)
        self.deleted = set()              # user locals unbound by `del`
        self.nonlocal_owner = {}          # user name declared nonlocal -> its frame
        self.call_depth = 0               # control depth of the call sites inlining this frame
        self.control_depth = 0            # inside how many if/for/while bodies
        self.views = Views()
        self.origin = None
        self.origin_override = origin_override
        self.known_ints = set()
        # emitted name -> (kind, length or None) for names known to hold a
        # tuple or a list here (flatten_expr.py: tuple/list `+` and `*`)
        self.seq_kinds = {}
        self.slice_names = set()
        # temporaries that are views (`m.T`, `m[0:2]` inside an expression):
        # name -> serial of the statement that made them.  A temporary is
        # read only by the statement that made it, so its record is dropped
        # when that statement ends, unless a name made from it still needs it.
        self.view_temps = {}
        self.serial = [0]
        self.poisoned = {}
        self._origins = _origin_table(parsed)

    # ---- names

    def error(self, msg, node, hint=None):
        return self.parsed.error(msg, node, hint=hint)

    def bind_own_params(self, fdef):
        a = fdef.args
        if a.vararg or a.kwarg:
            raise self.error("a transformed function takes named parameters "
                             "(no *args or **kwargs)", fdef,
                             hint="Wrap it: def g(x, y): return f(x, y)")
        # core form has positional parameters only: positional-only, then
        # the others, then keyword-only (callables.present gives generated
        # functions the user's signature back)
        own = list(getattr(a, "posonlyargs", None) or []) + list(a.args) + list(a.kwonlyargs)
        self.locals = _stored_names(fdef.body) | {p.id for p in own}
        params = []
        for p in own:
            params.append(self.local_name(p.id))
        for name in sorted(self.locals - {p.id for p in own}):
            self.local_name(name)
        return params

    def local_name(self, user_name):
        """The emitted name of a user local (renamed only on collision)."""
        node = self.rename.get(user_name)
        if node is None:
            # `_` stays `_`: it is the name discarded results go to, in user
            # code and in generated code alike
            emitted = "_" if user_name == "_" else self.scope.fresh(user_name)
            node = Name(emitted)
            self.rename[user_name] = node
        return node.id if isinstance(node, gast.Name) else None

    def fresh(self, base="t"):
        return self.scope.fresh(base)

    def capture(self, name, value):
        key = (name, id(value))
        got = self._root()._captured_ids.get(key)
        if got is not None:
            return Name(got)
        emitted = self.scope.fresh(name)
        root = self._root()
        root._captured_ids[key] = emitted
        self.captured[emitted] = value
        return Name(emitted)

    def _root(self):
        f = self
        while f.parent is not None:
            f = f.parent
        return f

    # ---- emitting

    def emit(self, stmt):
        stmt.cotan_origin = self.origin_override or self.origin
        self.out.append(stmt)
        self.note_sequence_kind(stmt)
        return stmt

    def emit_call(self, prim, args, keywords=None, target=None, node=None):
        """Emit `target = prim(args)`, folding it when every input is constant."""
        p = PRIMITIVES.get(prim)
        if p is None:
            raise self.error(f"internal: no primitive {prim!r}", node)
        if prim == "length" and len(args) == 1 and not keywords:
            known = self.seq_kind(args[0])
            if known is not None and known[1] is not None:
                # len() of a tuple or list whose length is known: a constant,
                # so that `if len(out) == 1:` folds like Python decides it
                if target is None:
                    return Const(known[1])
                self.assign_to(target, Const(known[1]))
                return Name(target)
        if target is None and not p.effectful:
            folded = self._fold(p, args, keywords)
            if folded is not None:
                return folded
        name = target or ("_" if p.effectful else self.fresh("t"))
        stmt = self.emit(Assign(name, Call(prim, args, keywords)))
        if target is None:
            self.poisoned.pop(name, None)  # a new value (a loop body's second pass reuses names)
        if target is None and (prim == "getitem" or prim in resolve.VIEW_FUNCTIONS):
            # a view made inside an expression: a name assigned from it (or a
            # view of it) shares memory with its base
            if self._record_view(name, stmt):
                self.view_temps[name] = self.serial[0]
        return Name(name)

    def _fold(self, p, args, keywords):
        if not all(isinstance(a, gast.Constant) for a in args):
            return None
        if keywords and not all(isinstance(v, gast.Constant) for v in keywords.values()):
            return None
        if p.name in ("print", "check", "make_slice"):
            return None
        try:
            v = p.impl(*[a.value for a in args],
                       **{k: v.value for k, v in (keywords or {}).items()})
        except Exception:
            return None
        if isinstance(v, numpy.bool_):
            v = bool(v)
        if is_constant_value(v) and not isinstance(v, (bytes,)):
            return Const(v)
        return None

    def assign_to(self, target, atom):
        """`target = atom` (a copy or constant)."""
        self.emit(Assign(target, atom))

    # ---- blocks

    def block(self, stmts, top=False):
        saved = self.out
        self.out = []
        try:
            for s in stmts:
                self.stmt(s)
            return self.out
        finally:
            self.out = saved

    def _collect(self, run):
        """The statements `run()` emits, in a list of their own."""
        saved = self.out
        self.out = []
        try:
            run()
            return self.out
        finally:
            self.out = saved

    def _sub_block_of(self, run):
        """The statements `run()` emits, as a block that may or may not run."""
        entry = self._flow_state()
        out = self._collect(run)
        self._set_flow_state(self._join_flow(entry, self._flow_state()))
        return out

    # ---- loops: the state at a loop's head

    def _naming_state(self):
        root = self._root()
        return (set(self.scope.used), dict(self.captured), dict(root._captured_ids),
                dict(self.rename), set(self.locals), dict(self.local_funcs),
                dict(self.view_temps))

    def _set_naming_state(self, state):
        used, captured, ids, rename, locals_, funcs, temps = state
        self.view_temps.clear()
        self.view_temps.update(temps)
        root = self._root()
        self.scope.used.clear()
        self.scope.used.update(used)
        self.captured.clear()
        self.captured.update(captured)
        root._captured_ids.clear()
        root._captured_ids.update(ids)
        self.rename = rename
        self.locals = locals_
        self.local_funcs = funcs

    def _loop_body(self, run):
        """Flatten a loop body (`run()`) from the state at the loop's head.

        The head is reached from before the loop and from the end of every
        trip, so what is known there is the join of both; a trip may start
        with a name that an earlier trip made a view.  The body is flattened
        again from the joined head until the head no longer changes (names
        and captures are rewound, so the final pass names things as the
        first would).  The state after the loop is that of the head.
        """
        head = self._flow_state()
        for _ in range(16):
            naming = self._naming_state()
            self._set_flow_state(head)
            body = self._collect(run)
            new_head = self._join_flow(head, self._flow_state())
            if self._same_flow(new_head, head):
                self._set_flow_state(new_head)
                return body
            self._set_naming_state((set(naming[0]), dict(naming[1]), dict(naming[2]),
                                    dict(naming[3]), set(naming[4]), dict(naming[5]),
                                    dict(naming[6])))
            head = new_head
        raise self.error("internal: what is known about views at a loop's head did not "
                         "settle", None)

    def set_origin(self, node):
        if self.parsed.is_generated:
            # generated code: the comment above a statement says where it came from
            self.origin = self._origins.get(getattr(node, "lineno", None))
        else:
            self.origin = self.parsed.line_text(node)

    def stmt(self, s):
        self.set_origin(s)
        method = getattr(self, "stmt_" + type(s).__name__, None)
        if method is None:
            raise self.error(f"{type(s).__name__} statements are not supported", s)
        self.serial[0] += 1
        start = self.serial[0]
        control = isinstance(s, (gast.If, gast.For, gast.While))
        self.control_depth += control
        try:
            method(s)
        finally:
            self.control_depth -= control
        self._drop_dead_temps(start)

    def stmt_Delete(self, s):
        # `del name`: the name is unbound from here on (a later read is an
        # error, as in Python); deleting items or attributes is refused
        for t in s.targets:
            if not isinstance(t, gast.Name):
                raise self.error("del of an item or attribute is not supported", t,
                                 hint="Build a new container without the item instead.")
        for t in s.targets:
            self.rename.pop(t.id, None)
            self.local_funcs.pop(t.id, None)
            self.fn_aliases.pop(t.id, None)
            self.deleted.add(t.id)

    def stmt_Pass(self, s):
        pass

    def stmt_Expr(self, s):
        v = s.value
        if isinstance(v, gast.Constant):
            return  # docstrings and bare constants
        if isinstance(v, gast.Call) and isinstance(v.func, gast.Attribute) \
                and v.func.attr == "append" and self._is_dynamic(v.func.value):
            return self._list_append(v)
        if isinstance(v, gast.Call) and isinstance(v.func, gast.Attribute) \
                and v.func.attr == "extend" and self._is_dynamic(v.func.value):
            return self._list_extend(v)
        if isinstance(v, gast.Call):
            self.expr(v, discard=True)
            return
        self.expr(v)

    def _list_append(self, call):
        base = call.func.value
        if not isinstance(base, gast.Name) or len(call.args) != 1 or call.keywords:
            raise self.error("only `name.append(value)` is supported", call)
        item = self.expr(call.args[0])
        lst = self.expr(base)
        name = self.store_name(base.id, base)
        self.emit_call("list_append", [lst, item], target=name)

    def _list_extend(self, call):
        """`xs.extend(items)`: one append per element of `items` (a loop the
        for statement's rules unroll or keep, as for any iterable)."""
        base = call.func.value
        if not isinstance(base, gast.Name) or len(call.args) != 1 or call.keywords:
            raise self.error("only `name.extend(values)` is supported", call)
        item = self.scope.fresh("item")
        append = gast.Expr(value=gast.Call(
            func=gast.Attribute(value=gast.Name(id=base.id, ctx=gast.Load(), annotation=None,
                                                type_comment=None),
                                attr="append", ctx=gast.Load()),
            args=[gast.Name(id=item, ctx=gast.Load(), annotation=None, type_comment=None)],
            keywords=[]))
        loop = gast.For(target=gast.Name(id=item, ctx=gast.Store(), annotation=None,
                                         type_comment=None),
                        iter=call.args[0], body=[append], orelse=[], type_comment=None)
        for n in walk(loop):
            if not hasattr(n, "lineno"):
                gast.copy_location(n, call)
        self.stmt_For(loop)

    def stmt_Assert(self, s):
        cond = self.expr(s.test)
        msg = self.expr(s.msg) if s.msg is not None else Const(
            f"assertion failed: {self.parsed.line_text(s)}")
        self.emit_call("check", [cond, msg], target="_")

    def stmt_Return(self, s):
        value = self.expr(s.value) if s.value is not None else Const(None)
        self.emit(gast.Return(value=value))

    def stmt_FunctionDef(self, s):
        self.local_funcs[s.name] = _LocalFunction(s, self)

    def stmt_AnnAssign(self, s):
        if s.value is None:
            return
        self._assign_target(s.target, s.value)

    def stmt_Assign(self, s):
        if len(s.targets) != 1:
            # a = b = expr: evaluate once, assign to each
            v = self.expr(s.value)
            for t in s.targets:
                self._assign_value(t, v)
            return
        self._assign_target(s.targets[0], s.value)

    def _assign_target(self, target, value_node):
        if isinstance(value_node, gast.Lambda) and isinstance(target, gast.Name):
            fdef = gast.FunctionDef(name=target.id, args=value_node.args,
                                    body=[gast.copy_location(gast.Return(value=value_node.body), value_node)],
                                    decorator_list=[], returns=None, type_comment=None,
                                    type_params=[])
            gast.copy_location(fdef, value_node)
            self.local_funcs[target.id] = _LocalFunction(fdef, self)
            return
        if isinstance(target, gast.Name):
            self.local_funcs.pop(target.id, None)
            self.fn_aliases.pop(target.id, None)
            self.deleted.discard(target.id)
            fn = self._function_value(value_node)
            if fn is not None and self.control_depth == 0:
                # `act = np.tanh`: calls of act are calls of np.tanh (decided
                # here, so only outside branches and loops)
                self.rename.pop(target.id, None)
                self.fn_aliases[target.id] = fn
                return
            name = self.store_name_pending(target.id)
            emitted_before = len(self.out)
            atom = self.expr(value_node, target=name)
            if len(self.out) == emitted_before and isinstance(atom, gast.Name) \
                    and atom.id == name:
                return  # `x = x`: x keeps its value and what it shares memory with
            self._finish_store(target.id, name, atom, value_node)
            return
        if isinstance(target, (gast.Tuple, gast.List)) and isinstance(value_node, (gast.Tuple, gast.List)) \
                and len(target.elts) == len(value_node.elts):
            # evaluate every right side before any assignment (a, b = b, a)
            atoms = [self.expr(v) for v in value_node.elts]
            atoms = [self._snapshot(a) for a in atoms]
            for t, a in zip(target.elts, atoms):
                self._assign_value(t, a)
            return
        v = self.expr(value_node)
        self._assign_value(target, v)

    def _snapshot(self, atom):
        """Copy a name that a later assignment of the same statement may rebind."""
        if isinstance(atom, gast.Name):
            t = self.fresh("t")
            self.assign_to(t, atom)
            return Name(t)
        return atom

    def _assign_value(self, target, atom):
        """Assign an already computed atom to any target."""
        if isinstance(target, gast.Name):
            self.local_funcs.pop(target.id, None)
            name = self.store_name_pending(target.id)
            if isinstance(atom, gast.Name) and atom.id == name:
                return  # `x = x`
            self.assign_to(name, atom)
            self._finish_store(target.id, name, atom, None)
        elif isinstance(target, (gast.Tuple, gast.List)):
            for i, t in enumerate(target.elts):
                if isinstance(t, gast.Starred):
                    raise self.error("star-unpacking is not supported", t)
                part = self.emit_call("getitem", [atom, Const(i)])
                self._assign_value(t, part)
        elif isinstance(target, gast.Subscript):
            self._subscript_store(target, lambda old: atom)
        elif isinstance(target, gast.Attribute):
            raise self.error("assigning to an attribute is not supported", target,
                             hint="Keep the value in a local variable and return it.")
        else:
            raise self.error(f"cannot assign to {type(target).__name__}", target)

    def stmt_Nonlocal(self, s):
        # an inlined local function writes the enclosing function's variable:
        # its stores go to the frame that holds the name
        if not self._nested:
            raise self.error("nonlocal in the transformed function itself is not supported", s,
                             hint="Pass the value in as an argument and return the new value.")
        for name in s.names:
            f = self.parent
            while f is not None and name not in f.rename:
                f = f.parent if f._nested else None
            if f is None:
                raise self.error(f"nonlocal {name!r}: no enclosing function assigns it "
                                 "before this call", s)
            self.nonlocal_owner[name] = f
            # not a local of this frame: reads find the owner's binding
            self.rename.pop(name, None)
            self.locals.discard(name)

    def store_name_pending(self, user_name):
        owner = self.nonlocal_owner.get(user_name)
        if owner is not None:
            if self.control_depth or self.call_depth:
                # loops and branches find the names they change by reading
                # their own bodies: a write through a call would be missed
                raise self.error(
                    f"nonlocal {user_name!r} assigned in a local function called inside a "
                    "loop or branch (or assigned inside one) is not supported", None,
                    hint=f"Return the new value of {user_name!r} from the local function "
                         "and assign it where it is called.")
            return owner.store_name_pending(user_name)
        if user_name not in self.rename:
            self.locals.add(user_name)
            self.local_name(user_name)
        node = self.rename[user_name]
        if not isinstance(node, gast.Name):
            raise self.error(f"internal: parameter {user_name!r} bound to a constant is assigned", None)
        return node.id

    def store_name(self, user_name, node):
        return self.store_name_pending(user_name)

    def _finish_store(self, user_name, emitted, atom, value_node):
        """Bookkeeping after `emitted = ...`: aliases and views."""
        # what the old value shared memory with: `x = x[1]` views it
        old = self.views.of.get(emitted)
        old_sharers = set(self.views.dependents(emitted)) - {emitted}
        if old is not None:
            old_sharers |= old[3] | {old[1]}
        self.views.forget(emitted)
        self.poisoned.pop(emitted, None)
        self.known_ints.discard(emitted)
        last = self.out[-1] if self.out else None
        if last is None or not isinstance(last, gast.Assign) or last.targets[0].id != emitted:
            return
        self._record_view(emitted, last, old_sharers)

    # ---- in-place updates

    def _subscript_store(self, target, make_value):
        """`base[idx] = make_value(old)` as `base = setitem(base, value, idx)`."""
        chain = []
        t = target
        while isinstance(t, gast.Subscript):
            chain.append(t)
            t = t.value
        if not isinstance(t, gast.Name):
            raise self.error("subscript assignment needs a variable on the left", target)
        base_user = t.id
        if not self._is_local(base_user):
            raise self.error(f"cannot assign into {base_user!r}, which is not a local variable "
                             "(a global or closure value)", target,
                             hint=f"Copy it first: {base_user}_local = {base_user}.copy()")
        chain.reverse()  # outermost subscript first: x[i][j] -> [x[i], x[i][j]]
        base_atom = self.expr(t)
        idx_lists = [self.index_atoms(sub.slice) for sub in chain]
        # read the intermediate containers: x, x[i], x[i][j] ...
        containers = [base_atom]
        for idx in idx_lists[:-1]:
            containers.append(self.emit_call("getitem", [containers[-1]] + idx))
        old = None
        value = make_value(lambda: self.emit_call("getitem", [containers[-1]] + idx_lists[-1]))
        # write back from the innermost level out
        for level in range(len(chain) - 1, -1, -1):
            cont = containers[level]
            if level == 0:
                name = self.store_name(base_user, t)
                self.emit_call("setitem", [cont, value] + idx_lists[level], target=name)
            else:
                value = self.emit_call("setitem", [cont, value] + idx_lists[level])
        del old
        # the containers and old values read for this store are views of the
        # base, but nothing reads them again: do not re-derive them
        self._drop_dead_temps(self.serial[0])
        self._propagate_update(name, target)

    def user_name(self, emitted):
        """The user's name for an emitted name (itself when it has none)."""
        f = self
        while f is not None:
            for user, atom in f.rename.items():
                if isinstance(atom, gast.Name) and atom.id == emitted:
                    return user
            f = f.parent
        return emitted

    def stmt_AugAssign(self, s):
        op = _BINOPS.get(type(s.op))
        if op is None:
            raise self.error(f"operator {type(s.op).__name__} is not supported", s)
        if isinstance(s.target, gast.Name):
            user = s.target.id
            name = self.store_name_pending(user)
            if self.views.of.get(name) or self.views.dependents(name):
                raise self.error(
                    f"augmented assignment to {user!r}, which shares memory with another "
                    "variable: for arrays NumPy updates both in place", s,
                    hint=f"Write `{user} = {user} {_op_symbol(s.op)} ...` to make a new "
                         "array, or copy first.")
            cur = self.expr(s.target)
            v = self.expr(s.value)
            self.binary_op(op, cur, v, name, s, s.target, s.value)
            self._finish_store(user, name, None, None)
            return
        if isinstance(s.target, gast.Subscript):
            rhs = self.expr(s.value)
            self._subscript_store(s.target, lambda old: self.emit_call(op, [old(), rhs]))
            return
        raise self.error("augmented assignment target must be a name or subscript", s)

    # ---- control flow

    def stmt_If(self, s):
        test = self.expr(s.test)
        if isinstance(test, gast.Constant):
            chosen = s.body if test.value else s.orelse
            for c in chosen:
                self.stmt(c)
            return
        self.set_origin(s)
        origin = self.origin
        entry = self._flow_state()
        body = self._collect(lambda: [self.stmt(c) for c in s.body])
        after_body = self._flow_state()
        self._set_flow_state(entry)
        orelse = self._collect(lambda: [self.stmt(c) for c in s.orelse])
        after_else = self._flow_state()
        self._join_view_indices(body, orelse, after_body, after_else, origin)
        self._set_flow_state(self._join_flow(after_body, after_else))
        self._emit_if(test, body, orelse, origin)

    def _emit_if(self, test, body, orelse, origin):
        if not body and not orelse:
            return
        if not body:
            test = self.emit_call("logical_not", [test])
            body, orelse = orelse, []
        if isinstance(test, gast.Constant):
            for st in (body if test.value else orelse):
                self.out.append(st)
            return
        node = gast.If(test=test, body=body, orelse=orelse)
        node.cotan_origin = origin
        self.out.append(node)

    def stmt_While(self, s):
        if s.orelse:
            raise self.error("internal: while-else survived desugaring", s)
        origin = self.origin
        test = self.expr(s.test)
        if isinstance(test, gast.Constant) and not test.value:
            return
        if isinstance(test, gast.Constant):
            # `while True:` needs a name to re-evaluate; the body sets it
            t = self.fresh("go")
            self.assign_to(t, test)
            test = Name(t)
        cond_name = test.id

        def trip():
            for c in s.body:
                self.stmt(c)
            self.set_origin(s)
            new = self.expr(s.test, target=cond_name if not self._is_user_name(cond_name) else None)
            if not (isinstance(new, gast.Name) and new.id == cond_name):
                self.assign_to(cond_name, new)
        body = self._loop_body(trip)
        node = gast.While(test=Name(cond_name), body=body, orelse=[])
        node.cotan_origin = origin
        self.out.append(node)

    def _is_user_name(self, emitted):
        return any(isinstance(v, gast.Name) and v.id == emitted for v in self.rename.values())

    def stmt_For(self, s):
        if s.orelse:
            raise self.error("internal: for-else survived desugaring", s)
        origin = self.origin
        it = s.iter
        callee = self._static_callee(it.func) if isinstance(it, gast.Call) else None
        if callee is range:
            args = [self.expr(a) for a in it.args]
            if it.keywords or not 1 <= len(args) <= 3:
                raise self.error("range() takes 1 to 3 positional arguments", it)
            if len(args) == 1:
                args = [Const(0), args[0], Const(1)]
            elif len(args) == 2:
                args = args + [Const(1)]
            self._range_loop(s, args, lambda idx: self._assign_value(s.target, idx), origin,
                             plain_range=True)
            return
        if callee is enumerate:
            if len(it.args) != 1 or it.keywords:
                raise self.error("only enumerate(sequence) is supported", it)
            seq = self._materialize(self.expr(it.args[0]), s.body)
            n = self.emit_call("length", [seq])
            if not (isinstance(s.target, gast.Tuple) and len(s.target.elts) == 2):
                raise self.error("unpack enumerate as `for i, item in enumerate(...)`", s.target)
            ti, tx = s.target.elts

            def bind(idx):
                self._assign_value(ti, idx)
                self._assign_value(tx, self.emit_call("getitem", [seq, idx]))
            self._range_loop(s, [Const(0), n, Const(1)], bind, origin)
            return
        if callee is zip:
            seqs = [self._materialize(self.expr(a), s.body) for a in it.args]
            if not seqs or it.keywords:
                raise self.error("zip() needs positional sequences", it)
            n = self.emit_call("length", [seqs[0]])
            for other in seqs[1:]:
                n = self.emit_call("minimum", [n, self.emit_call("length", [other])])
            if not (isinstance(s.target, gast.Tuple) and len(s.target.elts) == len(seqs)):
                raise self.error(f"unpack zip of {len(seqs)} sequences into {len(seqs)} names",
                                 s.target)

            def bindz(idx):
                for t, q in zip(s.target.elts, seqs):
                    self._assign_value(t, self.emit_call("getitem", [q, idx]))
            self._range_loop(s, [Const(0), n, Const(1)], bindz, origin)
            return
        seq = self._materialize(self.expr(it), s.body)
        n = self.emit_call("length", [seq])

        def bind_item(idx):
            self._assign_value(s.target, self.emit_call("getitem", [seq, idx]))
        self._range_loop(s, [Const(0), n, Const(1)], bind_item, origin)

    def _materialize(self, atom, body=()):
        """Keep a loop's sequence in a name of its own when the body rebinds
        the user's variable."""
        mutated = _mutated_names(body)
        rebound = any(isinstance(v, gast.Name) and v.id == getattr(atom, "id", None)
                      for k, v in self.rename.items() if k in mutated)
        if isinstance(atom, gast.Name) and rebound:
            t = self.fresh("seq")
            self.assign_to(t, atom)
            # NumPy iterates the array itself: an update in place of the
            # user's variable is seen by the later trips, a rebinding is not
            self._record_view(t, self.out[-1])
            return Name(t)
        return atom

    def _range_loop(self, s, args, bind, origin, plain_range=False):
        target = s.target
        guard = getattr(s, "cotan_trip_guard", None)
        # with a trip guard (a `break` or `return` in the body) the user's
        # target is bound under the guard, from an index of the loop's own
        simple = plain_range and guard is None and isinstance(target, gast.Name) \
            and target.id not in _stored_names(s.body)
        idx_name = self.store_name_pending(target.id) if simple else self.fresh("i")

        def trip():
            if simple:
                self.views.forget(idx_name)
            self.known_ints.add(idx_name)
            if guard is None:
                if not simple:
                    bind(Name(idx_name))
                for c in s.body:
                    self.stmt(c)
                return
            self.set_origin(s)
            test = self.expr(guard)

            def guarded():
                bind(Name(idx_name))
                for c in s.body:
                    self.stmt(c)
            self._emit_if(test, self._sub_block_of(guarded), [], origin)
        body = self._loop_body(trip)
        # an empty loop is kept: its target's last value may be read after
        # it, and simplify replaces the loop by that value when it is
        node = gast.For(target=Name(idx_name, store=True),
                        iter=gast.Call(func=Name("range"), args=args, keywords=[]),
                        body=body, orelse=[], type_comment=None)
        node.cotan_origin = origin
        self.out.append(node)
