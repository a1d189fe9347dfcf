"""Normalization: user Python → core form.

Owns `normalize_function`, which runs the named passes

    parse → check_supported → desugar_control_flow → flatten → simplify

and returns a `CoreFunction` (see core_form.py for the grammar).  Flattening
resolves every callee (NumPy, `math`, builtins and array methods become
`cotan.numpy` primitives; Python helpers, `cotan.numpy` compositions and
local functions are inlined), turns operators into primitive calls, nested
expressions into one statement each, and subscript and augmented assignment
into functional updates that keep NumPy's aliasing semantics (see `_Views`).
Must not differentiate, batch or compile.
"""

import copy
import types

import gast
import numpy

from ..errors import TransformError
from ..runtime.table import Primitive, PRIMITIVES
from . import resolve
from .core_form import is_constant_value
from .desugar import desugar_control_flow
from .names import NameScope
from .parse import parse_function, unwrap
from .simplify import simplify

# ---------------------------------------------------------------- gast helpers


def Name(id_, store=False):
    return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(),
                     annotation=None, type_comment=None)


def Const(v):
    return gast.Constant(value=v, kind=None)


def Call(prim, args, keywords=None):
    return gast.Call(func=Name(prim), args=list(args),
                     keywords=[gast.keyword(arg=k, value=v) for k, v in (keywords or {}).items()])


def Assign(target, value):
    return gast.Assign(targets=[Name(target, store=True)], value=value, type_comment=None)


_BINOPS = {
    gast.Add: "add", gast.Sub: "subtract", gast.Mult: "multiply",
    gast.Div: "divide", gast.FloorDiv: "floor_divide", gast.Mod: "remainder",
    gast.Pow: "power", gast.MatMult: "matmul", gast.BitAnd: "bitwise_and",
    gast.BitOr: "bitwise_or", gast.BitXor: "bitwise_xor",
    gast.LShift: "left_shift", gast.RShift: "right_shift",
}
_UNARYOPS = {gast.USub: "negative", gast.UAdd: "positive", gast.Not: "logical_not",
             gast.Invert: "invert"}
_CMPOPS = {gast.Lt: "less", gast.LtE: "less_equal", gast.Gt: "greater",
           gast.GtE: "greater_equal", gast.Eq: "equal", gast.NotEq: "not_equal",
           gast.Is: "is_", gast.IsNot: "is_not"}

#: primitives whose value is simple enough to fold when every argument is a
#: constant (the result must be a plain Python constant to be folded)
_UNSUPPORTED = {
    gast.Try: "try/except", gast.With: "with", gast.AsyncWith: "async with",
    gast.ClassDef: "class definitions", gast.Global: "global",
    gast.Nonlocal: "nonlocal", gast.Delete: "del", gast.Yield: "yield",
    gast.YieldFrom: "yield from", gast.Await: "await", gast.Raise: "raise",
    gast.Import: "import", gast.ImportFrom: "import", gast.SetComp: "set comprehensions",
    gast.DictComp: "dict comprehensions", gast.GeneratorExp: "generator expressions",
    gast.Set: "set literals", gast.NamedExpr: "the walrus operator :=",
    gast.AsyncFor: "async for", gast.Starred: "star-unpacking",
}
if hasattr(gast, "TryStar"):
    _UNSUPPORTED[gast.TryStar] = "try/except*"
if hasattr(gast, "Match"):
    _UNSUPPORTED[gast.Match] = "match statements"

_HINTS = {
    "try/except": "Move the error handling outside the transformed function.",
    "global": "Pass the value in as an argument and return the new value.",
    "nonlocal": "Pass the value in as an argument and return the new value.",
    "del": "Drop the `del`; names go out of scope when the function returns.",
    "yield": "Build a list and return it instead of a generator.",
    "raise": "Check inputs before calling the transformed function, or use `assert`.",
    "import": "Import at module level.",
    "class definitions": "Define the class at module level.",
}


def check_supported(parsed):
    """Raise TransformError at the first construct cotan cannot transform."""
    for node in gast.walk(parsed.node):
        for kind, what in _UNSUPPORTED.items():
            if isinstance(node, kind):
                raise parsed.error(f"{what} is not supported", node,
                                   hint=_HINTS.get(what, "Rewrite it with the constructs "
                                                   "listed in cotan's README."))
        if isinstance(node, gast.FunctionDef) and node is not parsed.node:
            if node.decorator_list:
                raise parsed.error("decorated local functions are not supported", node,
                                   hint="Define the decorated function at module level.")


# ------------------------------------------------------------------ results


class CoreFunction:
    """A function in core form, ready to be printed or transformed.

    `node` is the gast FunctionDef; each statement carries `cotan_origin`,
    the text of the user line it came from.  `captured` maps the names the
    body reads but does not define (constants, arrays captured from globals
    and closures) to their values.
    """

    def __init__(self, name, node, captured, source_fn=None):
        self.name = name
        self.node = node
        self.captured = captured
        self.source_fn = source_fn

    @property
    def params(self):
        return [a.id for a in self.node.args.args]


_cache = {}


def normalize_function(fn):
    """The core form of `fn` (cached per function and code object)."""
    fn = unwrap(fn)
    key = (fn, getattr(fn, "__code__", None))
    hit = _cache.get(key)
    if hit is not None:
        return hit
    parsed = _parsed(fn)
    core = _normalize_parsed(parsed)
    _cache[key] = core
    return core


_parse_cache = {}


def _parsed(fn):
    key = (fn, getattr(fn, "__code__", None))
    p = _parse_cache.get(key)
    if p is None:
        p = parse_function(fn)
        check_supported(p)
        _parse_cache[key] = p
    return p


def _normalize_parsed(parsed):
    node = copy.deepcopy(parsed.node)
    reserved = set(PRIMITIVES) | {"range", "_"}
    scope = NameScope(reserved)
    fl = _Flattener(parsed, scope, captured={}, out=[], inline_stack=(parsed.fn,))
    params = fl.bind_own_params(node)
    node = desugar_control_flow(node, _LocalScope(scope, fl))
    body = fl.block(node.body, top=True)
    fn_name = parsed.name if parsed.name.isidentifier() else "lambda_fn"
    fdef = gast.FunctionDef(
        name=fn_name,
        args=gast.arguments(args=[Name(p, store=False) for p in params], posonlyargs=[],
                            vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                            defaults=[]),
        body=body, decorator_list=[], returns=None, type_comment=None, type_params=[])
    for a in fdef.args.args:
        a.ctx = gast.Param()
    simplify(fdef, fl.captured)
    return CoreFunction(fn_name, fdef, fl.captured, source_fn=parsed.fn)


class _LocalScope:
    """NameScope view used by desugaring: fresh flag names are locals."""

    def __init__(self, scope, fl):
        self.scope = scope
        self.fl = fl

    def fresh(self, base):
        name = self.scope.fresh(base)
        self.fl.rename[name] = Name(name)
        self.fl.locals.add(name)
        return name


# --------------------------------------------------------------- flattening


def _stored_names(stmts):
    names = set()
    for s in stmts:
        for n in gast.walk(s):
            if isinstance(n, gast.Name) and isinstance(n.ctx, (gast.Store, gast.Param)):
                names.add(n.id)
            elif isinstance(n, (gast.FunctionDef,)) and n is not s:
                names.add(n.name)
        if isinstance(s, gast.FunctionDef):
            names.add(s.name)
    return names


def _mutated_names(stmts):
    """Names assigned, aug-assigned or subscript-assigned anywhere in stmts."""
    names = _stored_names(stmts)
    for s in stmts:
        for n in gast.walk(s):
            if isinstance(n, (gast.Assign, gast.AugAssign, gast.AnnAssign)):
                targets = n.targets if isinstance(n, gast.Assign) else [n.target]
                for t in targets:
                    base = t
                    while isinstance(base, gast.Subscript):
                        base = base.value
                    if isinstance(base, gast.Name):
                        names.add(base.id)
            elif isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute) \
                    and n.func.attr == "append" and isinstance(n.func.value, gast.Name):
                names.add(n.func.value.id)
    return names


class _LocalFunction:
    """A `def` or `lambda` inside the function being normalized."""

    def __init__(self, node, env):
        self.node = node
        self.env = env  # the _Flattener it was defined in


class _Views:
    """Which names may share memory with which (NumPy aliasing).

    `y = x` makes y an alias of x; `y = x[0, 1:3]` (basic indexing with
    known ints and slices) makes y a view of x.  A subscript assignment into
    either side is followed by re-deriving the other side, so the program
    means what NumPy means.  Views through reshape/transpose/... (or basic
    indexing whose index might be an array) cannot be written through
    functionally: an in-place update of such a name is refused.
    """

    def __init__(self):
        self.of = {}     # name -> (kind, base, defining statement, names it reads)

    def record(self, name, kind, base, stmt, reads):
        self.of[name] = (kind, base, stmt, frozenset(reads))

    def forget(self, name):
        """`name` was rebound: it no longer views anything; views whose
        index read `name` can no longer be re-derived."""
        self.of.pop(name, None)
        for k, (kind, base, stmt, reads) in list(self.of.items()):
            if name in reads and name != base:
                self.of[k] = ("stale", base, stmt, reads)

    def dependents(self, base):
        return [k for k, v in self.of.items() if v[1] == base]

    def snapshot(self):
        return dict(self.of)

    def merge_after_block(self, before):
        """Views created inside a block may or may not exist after it."""
        for k, v in list(self.of.items()):
            if before.get(k) != v:
                self.of[k] = ("uncertain",) + v[1:]


class _Flattener:
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
        self.views = _Views()
        self.origin = None
        self.origin_override = origin_override
        self.known_ints = set()
        self.slice_names = set()
        self.poisoned = {}
        self._origins = _origin_table(parsed)

    # ---- names

    def error(self, msg, node, hint=None):
        return self.parsed.error(msg, node, hint=hint)

    def bind_own_params(self, fdef):
        a = fdef.args
        if a.vararg or a.kwarg or a.kwonlyargs or getattr(a, "posonlyargs", None):
            raise self.error("a transformed function takes plain positional parameters "
                             "(no *args, **kwargs or keyword-only parameters)", fdef,
                             hint="Wrap it: def g(x, y): return f(x, y, option=...)")
        self.locals = _stored_names(fdef.body) | {p.id for p in a.args}
        params = []
        for p in a.args:
            params.append(self.local_name(p.id))
        for name in sorted(self.locals - {p.id for p in a.args}):
            self.local_name(name)
        return params

    def local_name(self, user_name):
        """The emitted name of a user local (renamed only on collision)."""
        node = self.rename.get(user_name)
        if node is None:
            emitted = self.scope.fresh(user_name)
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
        return stmt

    def emit_call(self, prim, args, keywords=None, target=None, node=None):
        """Emit `target = prim(args)`, folding it when every input is constant."""
        p = PRIMITIVES.get(prim)
        if p is None:
            raise self.error(f"internal: no primitive {prim!r}", node)
        if target is None and not p.effectful:
            folded = self._fold(p, args, keywords)
            if folded is not None:
                return folded
        name = target or ("_" if p.effectful else self.fresh("t"))
        self.emit(Assign(name, Call(prim, args, keywords)))
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

    def sub_block(self, stmts):
        before = self.views.snapshot()
        out = self.block(stmts)
        self.views.merge_after_block(before)
        return out

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
        method(s)

    def stmt_Pass(self, s):
        pass

    def stmt_Expr(self, s):
        v = s.value
        if isinstance(v, gast.Constant):
            return  # docstrings and bare constants
        if isinstance(v, gast.Call) and isinstance(v.func, gast.Attribute) \
                and v.func.attr == "append" and self._is_dynamic(v.func.value):
            return self._list_append(v)
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
            name = self.store_name_pending(target.id)
            atom = self.expr(value_node, target=name)
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

    def store_name_pending(self, user_name):
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
        self.views.forget(emitted)
        self.poisoned.pop(emitted, None)
        self.known_ints.discard(emitted)
        last = self.out[-1] if self.out else None
        if last is None or not isinstance(last, gast.Assign) or last.targets[0].id != emitted:
            return
        if isinstance(last.value, gast.Name) and last.value.id != emitted:
            self.views.record(emitted, "alias", last.value.id, last, {last.value.id})
            return
        call = last.value
        if isinstance(call, gast.Call) and isinstance(call.func, gast.Name) \
                and call.args and isinstance(call.args[0], gast.Name):
            base = call.args[0].id
            fname = call.func.id
            reads = {a.id for a in call.args if isinstance(a, gast.Name)}
            if fname == "getitem":
                idx = call.args[1:]
                def is_int(i):
                    return (isinstance(i, gast.Constant) and type(i.value) is int) or \
                        (isinstance(i, gast.Name) and i.id in self.known_ints)
                def is_slice(i):
                    return (isinstance(i, gast.Constant) and (i.value is None or i.value is Ellipsis)) \
                        or (isinstance(i, gast.Name) and i.id in self.slice_names)
                if all(is_int(i) or is_slice(i) for i in idx):
                    # with a slice in the index the result is always a view;
                    # all ints give a row (a view) or an element (a copy)
                    kind = "slice" if any(is_slice(i) for i in idx) else "intview"
                else:
                    kind = "maybe"
                self.views.record(emitted, kind, base, last, reads)
            elif fname in resolve.VIEW_FUNCTIONS:
                self.views.record(emitted, "other", base, last, reads)

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
        self._propagate_update(name, target)

    def _propagate_update(self, name, node, came_from=None):
        """`name` was just updated in place: update every name sharing its
        memory, as NumPy would (see `_Views`)."""
        for dep in self.views.dependents(name):
            if dep == came_from or dep == name:
                continue
            kind, _, stmt, reads = self.views.of[dep]
            if kind in ("alias", "slice", "other"):
                new = copy.deepcopy(stmt)
                self.emit(new)
                self.views.record(dep, kind, name, new, reads)
                self._propagate_update(dep, node, came_from=name)
            else:
                # it may or may not share memory (an element is a copy, a
                # row is a view): refuse only if it is read again
                self.poisoned[dep] = (name, kind)
        rec = self.views.of.get(name)
        if rec is None or rec[1] == came_from:
            return
        kind, base, stmt, reads = rec
        if kind == "alias":
            self.assign_to(base, Name(name))
        elif kind in ("slice", "intview"):
            idx = stmt.value.args[1:]
            self.emit_call("setitem", [Name(base), Name(name)] + list(idx), target=base)
        else:
            what = {"other": "a reshaped/transposed view",
                    "maybe": "possibly a view (its index may be an array)",
                    "stale": "a view whose index variable has changed since",
                    "uncertain": "possibly a view (it was made inside an if or loop)"}[kind]
            raise self.error(
                f"in-place update of {name!r}, which is {what} of {base!r}: NumPy would "
                f"change {base!r} too and cotan cannot follow that here", node,
                hint=f"Make the copy explicit ({name} = ....copy()) or update "
                     f"{base!r} directly.")
        self.poisoned.pop(base, None)
        self._propagate_update(base, node, came_from=name)

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
            self.emit_call(op, [cur, v], target=name)
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
        body = self.sub_block(s.body)
        orelse = self.sub_block(s.orelse)
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
        before = self.views.snapshot()
        saved = self.out
        self.out = []
        for c in s.body:
            self.stmt(c)
        self.set_origin(s)
        new = self.expr(s.test, target=cond_name if not self._is_user_name(cond_name) else None)
        if not (isinstance(new, gast.Name) and new.id == cond_name):
            self.assign_to(cond_name, new)
        body = self.out
        self.out = saved
        self.views.merge_after_block(before)
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
            return Name(t)
        return atom

    def _range_loop(self, s, args, bind, origin, plain_range=False):
        target = s.target
        simple = plain_range and isinstance(target, gast.Name) \
            and target.id not in _stored_names(s.body)
        before = self.views.snapshot()
        saved = self.out
        self.out = []
        if simple:
            idx_name = self.store_name_pending(target.id)
            self.views.forget(idx_name)
        else:
            idx_name = self.fresh("i")
            bind(Name(idx_name))
        self.known_ints.add(idx_name)
        for c in s.body:
            self.stmt(c)
        body = self.out
        self.out = saved
        self.views.merge_after_block(before)
        if not body:
            return
        node = gast.For(target=Name(idx_name, store=True),
                        iter=gast.Call(func=Name("range"), args=args, keywords=[]),
                        body=body, orelse=[], type_comment=None)
        node.cotan_origin = origin
        self.out.append(node)

    # ---- expressions

    def _is_local(self, user_name):
        return self._lookup_local(user_name) is not None

    _nested = False

    def _lookup_local(self, user_name):
        f = self
        while f is not None:
            if user_name in f.rename:
                return f.rename[user_name]
            if not f._nested:
                return None
            f = f.parent
        return None

    def _lookup_local_func(self, user_name):
        f = self
        while f is not None:
            if user_name in f.local_funcs:
                return f.local_funcs[user_name]
            if user_name in f.rename:
                return None
            if not f._nested:
                return None
            f = f.parent
        return None

    def _is_dynamic(self, node):
        return self._static_value(node)[0] is False

    def _static_value(self, node):
        """(True, value) if `node` names a value known at transform time
        (globals, closures, modules and their attributes), else (False, None)."""
        if isinstance(node, gast.Name):
            if self._lookup_local(node.id) is not None or self._lookup_local_func(node.id) is not None:
                return False, None
            found, value = self._env_lookup(node.id)
            if not found:
                raise self.error(f"name {node.id!r} is not defined", node)
            return True, value
        if isinstance(node, gast.Attribute):
            ok, base = self._static_value(node.value)
            if not ok:
                return False, None
            try:
                return True, getattr(base, node.attr)
            except AttributeError:
                raise self.error(f"{_describe(base)} has no attribute {node.attr!r}", node) from None
        return False, None

    def _env_lookup(self, name):
        f = self
        while f._nested and f.parent is not None:
            f = f.parent
        return f.parsed.lookup(name)

    def _static_callee(self, func):
        try:
            ok, v = self._static_value(func)
        except TransformError:
            return None
        return v if ok else None

    def expr(self, node, target=None, discard=False):
        """Flatten `node`; return its atom.  With `target`, the final value is
        assigned to that name (and the atom is that name)."""
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.error(f"{type(node).__name__} expressions are not supported", node)
        atom = method(node, target) if method.__code__.co_argcount > 2 else method(node)
        if target is not None and not (isinstance(atom, gast.Name) and atom.id == target):
            self.assign_to(target, atom)
            return Name(target)
        return atom

    def expr_Constant(self, node):
        return Const(node.value)

    def expr_Name(self, node):
        local = self._lookup_local(node.id)
        if local is not None and isinstance(local, gast.Name) and local.id in self.poisoned:
            base, kind = self.poisoned[local.id]
            raise self.error(
                f"{node.id!r} may share memory with {base!r}, which was updated in place "
                "since: NumPy semantics here depend on whether it is a view or a copy", node,
                hint=f"Write `{node.id} = ....copy()` where it is made, or read it before "
                     f"updating {base!r}.")
        if local is not None:
            return copy.copy(local) if isinstance(local, gast.Constant) else Name(local.id)
        if self._lookup_local_func(node.id) is not None:
            raise self.error(f"local function {node.id!r} can only be called, not used as a value",
                             node)
        ok, value = self._static_value(node)
        return self.static_atom(node.id, value, node)

    def static_atom(self, name, value, node):
        """An atom for a value known at transform time."""
        if is_constant_value(value) and not isinstance(value, bytes):
            return Const(value)
        if isinstance(value, (numpy.bool_, numpy.integer, numpy.floating)) and numpy.ndim(value) == 0:
            return self.capture(name, value)
        dt = resolve.dtype_constant(value)
        if dt is not None:
            return Const(dt)
        if isinstance(value, (numpy.ndarray, list, dict)) or hasattr(value, "__array__"):
            return self.capture(name, value)
        if isinstance(value, tuple):
            return self.capture(name, value)
        if isinstance(value, (types.ModuleType, types.FunctionType, Primitive, type)) or callable(value):
            raise self.error(f"{_describe(value)} can only be called here, not used as a value",
                             node, hint="Call it, or pass its result in as an argument.")
        return self.capture(name, value)

    def expr_Attribute(self, node):
        ok, value = self._static_value(node)
        if ok:
            return self.static_atom(node.attr, value, node)
        attr = node.attr
        prim = resolve.ARRAY_ATTRIBUTES.get(attr)
        if prim is None:
            raise self.error(f"attribute {attr!r} of an array is not supported", node,
                             hint="Supported: " + ", ".join(sorted(resolve.ARRAY_ATTRIBUTES)))
        base = self.expr(node.value)
        return self.call_function(resolve.cotan_function(prim), [base], {}, None, node)

    def expr_BinOp(self, node, target=None):
        op = _BINOPS.get(type(node.op))
        a = self.expr(node.left)
        b = self.expr(node.right)
        return self.call_op(op, [a, b], target, node)

    def expr_UnaryOp(self, node, target=None):
        op = _UNARYOPS[type(node.op)]
        if isinstance(node.op, gast.USub) and isinstance(node.operand, gast.Constant) \
                and isinstance(node.operand.value, (int, float, complex)) \
                and not isinstance(node.operand.value, bool):
            return Const(-node.operand.value)
        a = self.expr(node.operand)
        return self.call_op(op, [a], target, node)

    def call_op(self, name, args, target, node):
        """An operator: the cotan.numpy function of that name (a primitive
        or a composition to inline)."""
        fn = resolve.cotan_function(name)
        if fn is None:
            raise self.error(f"operator {name!r} is not supported by cotan.numpy", node)
        return self.call_function(fn, args, {}, target, node)

    def expr_Compare(self, node, target=None):
        for op in node.ops:
            if type(op) not in _CMPOPS:
                raise self.error(f"comparison {type(op).__name__} is not supported", node,
                                 hint="`in` / `not in` cannot be transformed; compare explicitly.")
        if len(node.ops) == 1:
            a = self.expr(node.left)
            b = self.expr(node.comparators[0])
            return self.emit_call(_CMPOPS[type(node.ops[0])], [a, b], target=target, node=node)
        # a < b < c  ==  (a < b) and (b < c), with b evaluated once
        left = self.expr(node.left)
        result = self.fresh("cmp")
        terms = []
        for op, right in zip(node.ops, node.comparators):
            terms.append((op, left, right))
            left = None
        return self._chain(terms, result, node)

    def _chain(self, terms, result, node):
        op, left, right_node = terms[0]
        right = self._snapshot_if_name(self.expr(right_node))
        first = self.emit_call(_CMPOPS[type(op)], [left, right], target=result, node=node)
        if len(terms) == 1:
            return first
        saved = self.out
        self.out = []
        rest = [(terms[1][0], right, terms[1][2])] + terms[2:]
        self._chain(rest, result, node)
        body = self.out
        self.out = saved
        self._emit_if(first, body, [], self.origin)
        return Name(result)

    def _snapshot_if_name(self, atom):
        return atom

    def expr_BoolOp(self, node, target=None):
        if getattr(node, "cotan_pure", False):
            atoms = [self.expr(v) for v in node.values]
            prim = "logical_or" if isinstance(node.op, gast.Or) else "logical_and"
            acc = atoms[0]
            for i, a in enumerate(atoms[1:]):
                last = i == len(atoms) - 2
                acc = self.emit_call(prim, [acc, a], target=target if last else None)
            return acc
        # `a and b` is `b if a else a`, evaluated lazily like Python does.
        # The result goes to a fresh name: the operands may read the target.
        result = self.fresh("t")
        first = self.expr(node.values[0], target=result)
        if isinstance(first, gast.Constant):
            is_and = isinstance(node.op, gast.And)
            if bool(first.value) != is_and or len(node.values) == 1:
                return first
            rest = gast.BoolOp(op=node.op, values=node.values[1:]) if len(node.values) > 2 \
                else node.values[1]
            return self.expr(rest, target=target)
        saved = self.out
        self.out = []
        rest = gast.BoolOp(op=node.op, values=node.values[1:]) if len(node.values) > 2 \
            else node.values[1]
        self.expr(rest, target=result)
        body = self.out
        self.out = saved
        if isinstance(node.op, gast.And):
            self._emit_if(Name(result), body, [], self.origin)
        else:
            self._emit_if(Name(result), [], body, self.origin)
        return Name(result)

    def expr_IfExp(self, node, target=None):
        test = self.expr(node.test)
        if isinstance(test, gast.Constant):
            return self.expr(node.body if test.value else node.orelse, target=target)
        result = self.fresh("t")
        body = self.block_expr(node.body, result)
        orelse = self.block_expr(node.orelse, result)
        self._emit_if(test, body, orelse, self.origin)
        return Name(result)

    def block_expr(self, node, result):
        saved = self.out
        self.out = []
        self.expr(node, target=result)
        out = self.out
        self.out = saved
        return out

    def expr_Tuple(self, node, target=None):
        atoms = [self.expr(e) for e in node.elts]
        if all(isinstance(a, gast.Constant) for a in atoms):
            return Const(tuple(a.value for a in atoms))
        return self.emit_call("make_tuple", atoms, target=target)

    def expr_List(self, node, target=None):
        atoms = [self.expr(e) for e in node.elts]
        return self.emit_call("make_list", atoms, target=target)

    def expr_Dict(self, node, target=None):
        keys = []
        for k in node.keys:
            if k is None or not isinstance(k, gast.Constant):
                raise self.error("dict literal keys must be constants", node)
            keys.append(k.value)
        atoms = [self.expr(v) for v in node.values]
        return self.emit_call("make_dict", atoms, {"keys": Const(tuple(keys))}, target=target)

    def expr_JoinedStr(self, node, target=None):
        fmt = []
        atoms = []
        for part in node.values:
            if isinstance(part, gast.Constant):
                fmt.append(str(part.value).replace("{", "{{").replace("}", "}}"))
            elif isinstance(part, gast.FormattedValue):
                conv = {-1: "", 115: "!s", 114: "!r", 97: "!a"}.get(part.conversion, "")
                spec = ""
                if part.format_spec is not None:
                    if not all(isinstance(v, gast.Constant) for v in part.format_spec.values):
                        raise self.error("nested f-string format specs are not supported", part)
                    spec = ":" + "".join(str(v.value) for v in part.format_spec.values)
                fmt.append("{" + conv + spec + "}")
                atoms.append(self.expr(part.value))
        return self.emit_call("strformat", [Const("".join(fmt))] + atoms, target=target)

    def expr_ListComp(self, node, target=None):
        if len(node.generators) != 1 or node.generators[0].is_async:
            raise self.error("only list comprehensions with one `for` are supported", node)
        gen = node.generators[0]
        result = target or self.fresh("lst")
        self.emit_call("make_list", [], target=result)
        # the comprehension's own variables must not leak into the function
        shadow = {}
        for n in gast.walk(gen.target):
            if isinstance(n, gast.Name):
                shadow[n.id] = self.rename.get(n.id)
                self.rename[n.id] = Name(self.fresh(n.id))
        append = gast.Expr(value=gast.Call(
            func=gast.Attribute(value=Name(result), attr="append", ctx=gast.Load()),
            args=[node.elt], keywords=[]))
        body = [append]
        for cond in reversed(gen.ifs):
            body = [gast.If(test=cond, body=body, orelse=[])]
        loop = gast.For(target=gen.target, iter=gen.iter, body=body, orelse=[], type_comment=None)
        for n in gast.walk(loop):
            gast.copy_location(n, node) if not hasattr(n, "lineno") else None
        self.rename.setdefault(result, Name(result))
        self.stmt_For(loop)
        for k, v in shadow.items():
            if v is None:
                self.rename.pop(k, None)
            else:
                self.rename[k] = v
        return Name(result)

    def expr_Subscript(self, node, target=None):
        base = self.expr(node.value)
        idx = self.index_atoms(node.slice)
        return self.emit_call("getitem", [base] + idx, target=target, node=node)

    def index_atoms(self, sl):
        parts = sl.elts if isinstance(sl, gast.Tuple) else [sl]
        atoms = []
        for p in parts:
            if isinstance(p, gast.Slice):
                bounds = [self.expr(b) if b is not None else Const(None)
                          for b in (p.lower, p.upper, p.step)]
                sl_atom = self.emit_call("make_slice", bounds)
                self.slice_names.add(sl_atom.id)
                atoms.append(sl_atom)
            else:
                atoms.append(self.expr(p))
        return atoms

    def expr_Lambda(self, node):
        raise self.error("a lambda can only be assigned to a name and called", node)

    def expr_Call(self, node, target=None, discard=False):
        for a in node.args:
            if isinstance(a, gast.Starred):
                raise self.error("star-unpacking in calls is not supported", a,
                                 hint="Pass the arguments one by one.")
        for k in node.keywords:
            if k.arg is None:
                raise self.error("**kwargs in calls is not supported", node)
        func = node.func
        # local functions
        if isinstance(func, gast.Name):
            lf = self._lookup_local_func(func.id)
            if lf is not None:
                args = [self.expr(a) for a in node.args]
                kws = {k.arg: self.expr(k.value) for k in node.keywords}
                return self.inline_local(lf, args, kws, target, node)
        if isinstance(func, gast.Call):
            ok, callee = self._static_call(func)
        else:
            ok, callee = self._static_value(func)
        if ok and getattr(callee, "__cotan_inline__", None) is not None:
            return self._inline_transformation(callee, node, target)
        if ok:
            if callee is range or callee is enumerate or callee is zip:
                raise self.error(f"{callee.__name__}() is only supported as the iterable of a "
                                 "for loop", node)
            if callee is isinstance:
                raise self.error("isinstance() is not supported inside transformed code", node,
                                 hint="Decide on types outside the function.")
            if callee in (max, min, sum):
                return self._builtin_reduce(callee, node, target)
            if callee is tuple or callee is list:
                if len(node.args) != 1:
                    raise self.error(f"{callee.__name__}() takes one argument here", node)
                a = self.expr(node.args[0])
                # tuple(x.shape) and friends: a tuple is what we hold already
                prim = "to_tuple" if callee is tuple else "to_list"
                return self.emit_call(prim, [a], target=target, node=node)
            args = [self.expr(a) for a in node.args]
            kws = {k.arg: self.expr(k.value) for k in node.keywords}
            dt = resolve.dtype_constant(callee) if isinstance(callee, type) \
                and issubclass(callee, numpy.generic) else None
            if dt is not None:
                # np.float32(v): a conversion to that dtype
                if len(args) != 1 or kws:
                    raise self.error(f"{callee.__name__}() takes one argument here", node)
                return self.emit_call("astype", [args[0], Const(dt)], target=target, node=node)
            fn = resolve.translate_callable(callee)
            if fn is None and getattr(callee, "__cotan_wrapped__", None) is not None:
                raise self.error(
                    f"calling the transformed function {_describe(callee)} inside another "
                    "transformed function is not supported yet", node,
                    hint="Call the plain Python function; transform the outer function.")
            if fn is None:
                raise self.error(
                    f"cotan does not know how to transform a call of {_describe(callee)}", node,
                    hint="Use cotan.numpy / NumPy functions or Python functions defined in a file.")
            return self.call_function(fn, args, kws, target, node)
        # methods of values computed at run time: arrays (and lists)
        if isinstance(func, gast.Attribute):
            meth = func.attr
            name = resolve.ARRAY_METHODS.get(meth)
            if name is None:
                raise self.error(f"method {meth!r} is not supported", node,
                                 hint="Use the cotan.numpy / NumPy function instead.")
            base = self.expr(func.value)
            args = [self.expr(a) for a in node.args]
            kws = {k.arg: self.expr(k.value) for k in node.keywords}
            if meth in resolve.VARIADIC_SHAPE_METHODS and len(args) > 1:
                args = [self.expr_Tuple_atoms(args)]
            fn = resolve.cotan_function(name)
            if fn is None:
                raise self.error(f"method {meth!r} is not available in cotan.numpy", node)
            return self.call_function(fn, [base] + args, kws, target, node)
        raise self.error("only calls of named functions and array methods are supported", node)

    def expr_Tuple_atoms(self, atoms):
        if all(isinstance(a, gast.Constant) for a in atoms):
            return Const(tuple(a.value for a in atoms))
        return self.emit_call("make_tuple", atoms)

    def _static_call(self, call):
        """`cotan.grad(f)` inside transformed code: a transformation whose
        arguments are all known now is applied now, and its result (a
        generated function) is inlined like any helper."""
        ok, fn = self._static_value(call.func) if not isinstance(call.func, gast.Call) \
            else self._static_call(call.func)
        if not ok or not getattr(fn, "__cotan_static__", False):
            raise self.error("only calls of named functions (or of cotan transformations of "
                             "them, like cotan.grad(f)(x)) are supported", call)
        args, kws = [], {}
        for a in call.args:
            got = self._static_argument(a)
            if got is _DYNAMIC:
                raise self.error(f"{_describe(fn)}: its arguments must be known when the "
                                 "function is transformed (functions, constants, globals)", a)
            args.append(got)
        for k in call.keywords:
            got = self._static_argument(k.value)
            if got is _DYNAMIC:
                raise self.error(f"{_describe(fn)}: argument {k.arg!r} must be known when "
                                 "the function is transformed", k.value)
            kws[k.arg] = got
        return True, fn(*args, **kws)

    def _static_argument(self, node):
        if isinstance(node, gast.Constant):
            return node.value
        if isinstance(node, (gast.Tuple, gast.List)):
            parts = [self._static_argument(e) for e in node.elts]
            if any(p is _DYNAMIC for p in parts):
                return _DYNAMIC
            return tuple(parts) if isinstance(node, gast.Tuple) else parts
        if isinstance(node, gast.Name):
            lf = self._lookup_local_func(node.id)
            if lf is not None:
                raise self.error("transforming a local function inside transformed code is "
                                 "not supported", node, hint="Define it at module level.")
        try:
            ok, v = self._static_value(node)
        except TransformError:
            return _DYNAMIC
        return v if ok else _DYNAMIC

    def _inline_transformation(self, callee, node, target):
        """`cotan.jvp(f, (x,), (v,))` inside transformed code: the
        transformation names the generated function to inline and how the
        call's arguments map onto it (`__cotan_inline__`)."""
        if not node.args:
            raise self.error(f"{_describe(callee)} needs a function argument", node)
        fn = self._static_argument(node.args[0])
        if fn is _DYNAMIC:
            raise self.error(f"{_describe(callee)}: the function must be known when the "
                             "enclosing function is transformed", node.args[0])
        groups = []
        for a in node.args[1:]:
            if not isinstance(a, (gast.Tuple, gast.List)):
                raise self.error(f"{_describe(callee)} inside transformed code needs its "
                                 "argument tuples written out, e.g. (x,) and (v,)", a)
            groups.append([self.expr(e) for e in a.elts])
        static_kw = {}
        for k in node.keywords:
            v = self._static_argument(k.value)
            if v is _DYNAMIC:
                raise self.error(f"{_describe(callee)}: {k.arg}= must be a constant here", k.value)
            static_kw[k.arg] = v
        inline_fn, flat_args = callee.__cotan_inline__(fn, groups, **static_kw)
        return self.call_function(inline_fn, flat_args, {}, target, node)

    def _builtin_reduce(self, callee, node, target):
        args = [self.expr(a) for a in node.args]
        if node.keywords:
            raise self.error(f"{callee.__name__}() keywords are not supported", node)
        if callee is sum:
            if len(args) == 2:
                total = self.call_function(resolve.cotan_function("sum"),
                                           [args[0]], {"axis": Const(0)}, None, node)
                return self.emit_call("add", [total, args[1]], target=target)
            return self.call_function(resolve.cotan_function("sum"), args,
                                      {"axis": Const(0)}, target, node)
        if len(args) == 1:
            return self.call_function(resolve.cotan_function(callee.__name__), args, {}, target, node)
        prim = "maximum" if callee is max else "minimum"
        acc = args[0]
        for i, a in enumerate(args[1:]):
            acc = self.emit_call(prim, [acc, a], target=target if i == len(args) - 2 else None)
        return acc

    # ---- calls and inlining

    def call_function(self, fn, args, kws, target, node):
        if isinstance(fn, Primitive):
            return self.emit_call(fn.name, args, kws, target=target, node=node)
        if isinstance(fn, types.FunctionType):
            return self.inline_global(fn, args, kws, target, node)
        raise self.error(f"cotan does not know how to transform a call of {_describe(fn)}", node)

    def inline_global(self, fn, args, kws, target, node):
        fn = unwrap(fn)
        if fn in self.inline_stack:
            raise self.error(f"recursive call of {fn.__qualname__!r} cannot be inlined", node,
                             hint="Rewrite the recursion as a loop.")
        parsed = _parsed(fn)
        override = self.origin_override
        if override is None and _is_cotan_internal(fn):
            override = self.origin
        child = _Flattener(parsed, self.scope, self.captured, self.out,
                           self.inline_stack + (fn,), parent=self, origin_override=override)
        return child.inline_body(copy.deepcopy(parsed.node), args, kws, target, node,
                                 defaults=fn.__defaults__, kwdefaults=fn.__kwdefaults__)

    def inline_local(self, lf, args, kws, target, node):
        fdef = lf.node
        if any(fdef is f for f in self.inline_stack if isinstance(f, gast.AST)):
            raise self.error(f"recursive call of {fdef.name!r} cannot be inlined", node)
        child = _Flattener(self.parsed, self.scope, self.captured, self.out,
                           self.inline_stack + (fdef,), parent=lf.env,
                           origin_override=self.origin_override)
        child._nested = True
        child.origin = self.origin
        defaults = []
        for d in fdef.args.defaults:
            if not isinstance(d, gast.Constant):
                raise self.error("defaults of local functions must be constants", d)
            defaults.append(d.value)
        kwdefaults = {}
        for k, d in zip(fdef.args.kwonlyargs, fdef.args.kw_defaults):
            if d is not None:
                if not isinstance(d, gast.Constant):
                    raise self.error("defaults of local functions must be constants", d)
                kwdefaults[k.id] = d.value
        return child.inline_body(copy.deepcopy(fdef), args, kws, target, node,
                                 defaults=tuple(defaults), kwdefaults=kwdefaults)

    def inline_body(self, fdef, args, kws, target, call_node, defaults, kwdefaults):
        """Bind arguments, then flatten the callee's body into the caller's
        statement list; returns the atom holding the callee's result."""
        a = fdef.args
        positional = list(getattr(a, "posonlyargs", []) or []) + list(a.args)
        names = [p.id for p in positional]
        bound = {}
        if len(args) > len(names) and a.vararg is None:
            raise self.error(f"{fdef.name}() takes {len(names)} positional arguments but "
                             f"{len(args)} were given", call_node)
        for n, v in zip(names, args):
            bound[n] = v
        extra = args[len(names):]
        kwonly = [k.id for k in a.kwonlyargs]
        for k, v in kws.items():
            if k in bound:
                raise self.error(f"{fdef.name}() got multiple values for argument {k!r}", call_node)
            if k not in names and k not in kwonly:
                raise self.error(f"{fdef.name}() got an unexpected keyword argument {k!r}",
                                 call_node)
            bound[k] = v
        defaults = defaults or ()
        for n, d in zip(names[len(names) - len(defaults):], defaults):
            bound.setdefault(n, self.static_atom(n, d, call_node))
        for k in kwonly:
            if k not in bound and kwdefaults and k in kwdefaults:
                bound[k] = self.static_atom(k, kwdefaults[k], call_node)
        missing = [n for n in names + kwonly if n not in bound]
        if missing:
            raise self.error(f"{fdef.name}() missing argument(s): {', '.join(missing)}", call_node)
        if a.vararg is not None:
            bound[a.vararg.id] = self.emit_call("make_tuple", extra) if extra else Const(())
        if a.kwarg is not None:
            bound[a.kwarg.id] = self.emit_call("make_dict", [], {"keys": Const(())})
        mutated = _mutated_names(fdef.body)
        self.locals = _stored_names(fdef.body) | set(bound)
        for n, atom in bound.items():
            if n in mutated or (isinstance(atom, gast.Name) and _is_view_target(atom.id)):
                emitted = self.scope.fresh(n)
                self.rename[n] = Name(emitted)
                self.assign_to(emitted, atom)
                if isinstance(atom, gast.Name):
                    # the parameter aliases the caller's array (NumPy passes
                    # by reference), so in-place updates write through
                    self.views.record(emitted, "alias", atom.id, self.out[-1], {atom.id})
            else:
                self.rename[n] = atom
        for n in sorted(self.locals - set(bound)):
            self.local_name(n)
        fdef = desugar_control_flow(fdef, _LocalScope(self.scope, self))
        body, ret = fdef.body[:-1], fdef.body[-1]
        for s in body:
            self.stmt(s)
        self.set_origin(ret)
        return self.expr(ret.value, target=target)


def _is_view_target(name):
    return False


_DYNAMIC = object()


def _op_symbol(op):
    return {gast.Add: "+", gast.Sub: "-", gast.Mult: "*", gast.Div: "/",
            gast.FloorDiv: "//", gast.Mod: "%", gast.Pow: "**", gast.MatMult: "@"}.get(type(op), "op")


def _describe(value):
    if isinstance(value, types.ModuleType):
        return f"module {value.__name__!r}"
    mod = getattr(value, "__module__", None)
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if name:
        return f"{mod + '.' if mod else ''}{name}"
    return f"a {type(value).__name__} object"


def _is_cotan_internal(fn):
    mod = getattr(fn, "__module__", "") or ""
    return mod == "cotan" or mod.startswith("cotan.")


def _origin_table(parsed):
    """For generated sources: line number -> the origin comment above it."""
    if not parsed.is_generated:
        return {}
    table = {}
    current = None
    for i, line in enumerate(parsed.source_lines, start=1):
        s = line.strip()
        if s.startswith("#"):
            current = s[1:].strip()
        elif s:
            table[i] = current
    return table
