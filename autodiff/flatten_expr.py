"""Flattening of expressions and calls: the second half of the flattener.

Owns `ExpressionFlattener`, mixed into `flatten_stmt.Flattener`: name
resolution (locals, closures, globals, modules), operators and literals as
primitive calls, subscripts, comprehensions, and calls — primitives are
emitted, Python helpers and `cotan.numpy` compositions are inlined (their
arguments bound, their body flattened into the caller), transformations
inside transformed code are applied at once.  Must not handle statements
other than through `self.stmt` of the full flattener.
"""

import copy
import types

import gast
import numpy

from .syntax import clone, walk
from ..errors import TransformError
from ..runtime.table import Primitive, PRIMITIVES
from ..runtime import pytree_ops  # noqa: F401  (getattr_leaf: fields of pytree nodes)
from . import callables, resolve
from .core_form import is_constant_value
from .desugar import desugar_control_flow
from .parse import unwrap
from .supported import parsed_function
from . import sequence_rules  # noqa: F401  (rules of the primitives tuple/list + and * become)
from .syntax import (Name, Const, _BINOPS, _UNARYOPS, _CMPOPS,
                     _stored_names, _mutated_names, _describe, _is_cotan_internal)

_DYNAMIC = object()

#: operators for which a list display (or a constant tuple) operand is an
#: array, as NumPy reads it
_ARRAY_OPERATORS = {"add", "subtract", "multiply", "divide", "power", "floor_divide",
                    "remainder", "matmul", "true_divide"}


class _LocalFunction:
    """A `def` or `lambda` inside the function being normalized."""

    def __init__(self, node, env):
        self.node = node
        self.env = env  # the Flattener it was defined in




class LocalScope:
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


class ExpressionFlattener:
    """Expression and call handling of `Flattener` (see flatten_stmt.py)."""

    _nested = False


    def _is_local(self, user_name):
        return self._lookup_local(user_name) is not None

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

    def _lookup_alias(self, user_name):
        """The function a local name was bound to (`act = np.tanh`, a
        parameter given np.tanh), or None."""
        f = self
        while f is not None:
            if user_name in f.fn_aliases:
                return f.fn_aliases[user_name]
            if user_name in f.rename or user_name in f.local_funcs or not f._nested:
                return None
            f = f.parent
        return None

    def _function_value(self, node):
        """The function `node` names when it is one known at transform time
        (np.tanh, operator.add, a module-level function), else None."""
        if not isinstance(node, (gast.Name, gast.Attribute)):
            return None
        try:
            ok, v = self._static_value(node)
        except TransformError:
            return None
        if not ok or not _is_function_like(v):
            return None
        return v

    def _static_value(self, node):
        """(True, value) if `node` names a value known at transform time
        (globals, closures, modules and their attributes), else (False, None)."""
        if isinstance(node, gast.Name):
            alias = self._lookup_alias(node.id)
            if alias is not None:
                return True, alias
            local = self._lookup_local(node.id)
            if isinstance(local, gast.Name) and _is_function_like(self.captured.get(local.id)):
                return True, self.captured[local.id]    # a parameter given a function
            if local is not None or self._lookup_local_func(node.id) is not None:
                return False, None
            if self._is_deleted(node.id):
                raise self.error(f"{node.id!r} is read after `del {node.id}`", node)
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

    def _is_deleted(self, user_name):
        f = self
        while f is not None:
            if user_name in f.deleted:
                return True
            if user_name in f.rename or not f._nested:
                return False
            f = f.parent
        return False

    def arg_atom(self, node):
        """An argument of a call: a function value (np.tanh, operator.add)
        travels as a captured constant that the callee's calls resolve."""
        fn = self._function_value(node)
        if fn is not None:
            return self.capture(getattr(fn, "__name__", "fn"), fn)
        return self.expr(node)

    def expr_Name(self, node):
        local = self._lookup_local(node.id)
        if local is not None and isinstance(local, gast.Name) and local.id in self.poisoned:
            base, kind = self.poisoned[local.id]
            base = self.user_name(base)
            raise self.error(
                f"{node.id!r} may share memory with {base!r}, which was updated in place "
                "since: NumPy semantics here depend on whether it is a view or a copy", node,
                hint=f"Write `{node.id} = ....copy()` where it is made (on every path), or "
                     f"read it before updating {base!r}.")
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
        base = self.expr(node.value)
        if prim is None:
            # not an array attribute: a field of a pytree node (namedtuple,
            # dataclass, registered class), known only at the call
            return self.call_function(PRIMITIVES["getattr_leaf"], [base, Const(attr)], {},
                                      None, node)
        return self.call_function(resolve.cotan_function(prim), [base], {}, None, node)

    def expr_BinOp(self, node, target=None):
        op = _BINOPS.get(type(node.op))
        a = self.expr(node.left)
        b = self.expr(node.right)
        return self.binary_op(op, a, b, target, node, node.left, node.right)

    # ---- tuples and lists as operands of arithmetic

    def seq_kind(self, atom):
        """(kind, length or None) when `atom` is known to hold a tuple or a
        list here ('tuple' / 'list'), else None."""
        if isinstance(atom, gast.Constant):
            v = atom.value
            return (type(v).__name__, len(v)) if type(v) in (tuple, list) else None
        if isinstance(atom, gast.Name):
            known = self.seq_kinds.get(atom.id)
            if known is not None:
                return known
            v = self.captured.get(atom.id, None)
            if type(v) in (tuple, list):
                return (type(v).__name__, len(v))
        return None

    def _kind_of_value(self, v):
        if isinstance(v, (gast.Constant, gast.Name)):
            return self.seq_kind(v)
        if not (isinstance(v, gast.Call) and isinstance(v.func, gast.Name)):
            return None
        prim, args = v.func.id, v.args
        known = [self.seq_kind(a) for a in args]
        if prim == "make_tuple":
            return ("tuple", len(args))
        if prim == "make_list":
            return ("list", len(args))
        if prim == "list_append":
            n = known[0][1] if known and known[0] is not None else None
            return ("list", None if n is None else n + 1)
        if prim in ("to_tuple", "to_list"):
            n = known[0][1] if known and known[0] is not None else None
            return (prim[3:], n)
        if prim == "shape":
            return ("tuple", None)
        if prim == "seq_concat" and len(args) == 2:
            kind = (known[0] or known[1] or (None,))[0]
            n = known[0][1] + known[1][1] if known[0] and known[1] and \
                known[0][1] is not None and known[1][1] is not None else None
            return (kind, n) if kind is not None else None
        if prim == "seq_repeat" and len(args) == 2 and known[0] is not None:
            count = args[1].value if isinstance(args[1], gast.Constant) else None
            n = known[0][1] * count if isinstance(count, int) and known[0][1] is not None \
                else None
            return (known[0][0], n)
        return None

    def note_sequence_kind(self, stmt):
        """Keep `seq_kinds` true after `stmt` (every emitted statement)."""
        if not isinstance(stmt, gast.Assign) or not isinstance(stmt.targets[0], gast.Name):
            return
        name = stmt.targets[0].id
        kind = self._kind_of_value(stmt.value)
        if kind is None:
            self.seq_kinds.pop(name, None)
        else:
            self.seq_kinds[name] = kind

    def binary_op(self, op, a, b, target, node, left=None, right=None):
        """`a op b`: Python's meaning where an operand is known to be a tuple or
        list (`+` concatenates, `*` by an int repeats), NumPy's elsewhere (a
        list display is then an array, as NumPy reads it)."""
        ka, kb = self.seq_kind(a), self.seq_kind(b)
        # a list display, or a list captured from a global or closure, next
        # to a value of unknown kind reads as NumPy reads it (an array)
        display_a = isinstance(left, gast.List) or self._captured_list(a)
        display_b = isinstance(right, gast.List) or self._captured_list(b)
        if op in ("add", "multiply") and (ka or kb):
            if ka and kb:
                if op == "multiply":
                    raise self.error(f"can't multiply a {ka[0]} by a {kb[0]}", node)
                if ka[0] != kb[0]:
                    raise self.error(f'can only concatenate {ka[0]} (not "{kb[0]}") to '
                                     f"{ka[0]}", node)
                return self.emit_call("seq_concat", [a, b], target=target, node=node)
            seq_first = ka is not None
            seq, other = (a, b) if seq_first else (b, a)
            display = display_a if seq_first else display_b
            if op == "add" and not display:
                return self.emit_call("seq_concat", [a, b], target=target, node=node)
            if op == "multiply" and isinstance(other, gast.Constant) \
                    and isinstance(other.value, int):
                return self._repeat_written_out(seq, other.value, (ka or kb)[0], target, node)
            if op == "multiply" and (not display or self._is_static_int(other)):
                return self.emit_call("seq_repeat", [seq, other], target=target, node=node)
            # a list display with a value of unknown kind: NumPy's reading,
            # checked at run time against Python's
            self.emit_call("operand_guard", [other, Const(op)], target="_", node=node)
        if op in _ARRAY_OPERATORS:
            if ka is not None and (display_a or isinstance(a, gast.Constant)):
                a = self._as_array(a, node)
            if kb is not None and (display_b or isinstance(b, gast.Constant)):
                b = self._as_array(b, node)
        return self.call_op(op, [a, b], target, node)

    def _repeat_written_out(self, seq, count, kind, target, node):
        """`seq * 3` as seq + seq + seq: a count known now needs no
        repetition primitive (whose gradient is not compiled)."""
        if count <= 0:
            return self.emit_call("make_tuple" if kind == "tuple" else "make_list", [],
                                  target=target, node=node)
        acc = seq
        for i in range(count - 1):
            acc = self.emit_call("seq_concat", [acc, seq],
                                 target=target if i == count - 2 else None, node=node)
        if count == 1 and isinstance(seq, gast.Name) and kind == "list":
            # `lst * 1` is a new list
            acc = self.emit_call("to_list", [seq], target=target, node=node)
        return acc

    def _captured_list(self, atom):
        return isinstance(atom, gast.Name) and atom.id not in self.seq_kinds \
            and type(self.captured.get(atom.id)) is list

    def _is_static_int(self, atom):
        if isinstance(atom, gast.Constant):
            return isinstance(atom.value, int)
        return isinstance(atom, gast.Name) and atom.id in self.known_ints

    def _as_array(self, atom, node):
        return self.call_function(resolve.cotan_function("asarray"), [atom], {}, None, node)

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
        kind_body = self.seq_kinds.get(result)
        orelse = self.block_expr(node.orelse, result)
        kind = self.seq_kinds.pop(result, None)
        if kind is not None and kind_body is not None and kind[0] == kind_body[0]:
            self.seq_kinds[result] = (kind[0], kind[1] if kind[1] == kind_body[1] else None)
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
        if target is not None and self._reads_name(node, target):
            # `xs = [xs[i] for i in perm]` reads the old xs while the new list
            # grows: build it under another name (the caller stores it)
            target = None
        result = target or self.fresh("lst")
        self.emit_call("make_list", [], target=result)
        # the comprehension's own variables must not leak into the function
        shadow = {}
        for n in walk(gen.target):
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
        for n in walk(loop):
            gast.copy_location(n, node) if not hasattr(n, "lineno") else None
        self.rename.setdefault(result, Name(result))
        self.stmt_For(loop)
        for k, v in shadow.items():
            if v is None:
                self.rename.pop(k, None)
            else:
                self.rename[k] = v
        return Name(result)

    def _reads_name(self, node, name):
        """Whether expression `node` reads the variable stored as `name`."""
        for n in walk(node):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load):
                r = self.rename.get(n.id)
                if n.id == name or (isinstance(r, gast.Name) and r.id == name):
                    return True
        return False

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
                args = [self.arg_atom(a) for a in node.args]
                kws = {k.arg: self.arg_atom(k.value) for k in node.keywords}
                return self.inline_local(lf, args, kws, target, node)
        if isinstance(func, gast.Call):
            ok, callee = self._static_call(func)
        else:
            ok, callee = self._static_value(func)
        if ok and getattr(callee, "__cotan_inline__", None) is not None:
            return self._inline_transformation(callee, node, target)
        if ok and _hashable_key(callee) in _OPERATOR_EXPRS:
            # operator.add(a, b) and friends: exactly what `a + b` means
            return self.expr(_OPERATOR_EXPRS[_hashable_key(callee)](node), target)
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
            # function values go only to Python functions cotan inlines
            ev = self.expr if isinstance(resolve.translate_callable(callee), Primitive) \
                else self.arg_atom
            args = [ev(a) for a in node.args]
            kws = {k.arg: ev(k.value) for k in node.keywords}
            dt = resolve.dtype_constant(callee) if isinstance(callee, type) \
                and issubclass(callee, numpy.generic) else None
            if dt is not None:
                # np.float32(v): a conversion to that dtype
                if len(args) != 1 or kws:
                    raise self.error(f"{callee.__name__}() takes one argument here", node)
                return self.emit_call("astype", [args[0], Const(dt)], target=target, node=node)
            fn = resolve.translate_callable(callee)
            if fn is None and callable(callee):
                # a bound method, partial or callable object: its function
                # with the bound values as constants (autodiff/callables.py)
                fn = callables.callee_function(callee, len(args), tuple(kws))
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
        if isinstance(func, gast.Attribute) and func.attr in ("keys", "values", "items") \
                and not node.args and not node.keywords and isinstance(func.value, gast.Name):
            keys = self.emit_call("dict_keys", [self.expr(func.value)], node=node)
            if func.attr == "keys":
                return keys
            keys_name = self.scope.fresh("keys")
            self.rename[keys_name] = keys
            return self.expr(_dict_view(func.value, func.attr, node, self.scope.fresh("key"),
                                        keys_name), target)
        if isinstance(func, gast.Attribute) and func.attr == "get" and not node.keywords \
                and 1 <= len(node.args) <= 2 and isinstance(func.value, gast.Name):
            # d.get(k, default): `d[k] if k in d else default`, the test being
            # structure (has_key), decided before d[k] is read
            key = self.expr(node.args[0])
            key_name, test_name = self.scope.fresh("key"), self.scope.fresh("has")
            self.rename[key_name] = key
            self.rename[test_name] = self.emit_call("has_key", [self.expr(func.value), key],
                                                    node=node)
            default = node.args[1] if len(node.args) == 2 else gast.Constant(value=None, kind=None)
            ifexp = gast.IfExp(test=_load(test_name), body=gast.Subscript(
                value=func.value, slice=_load(key_name), ctx=gast.Load()), orelse=default)
            for n in gast.walk(ifexp):
                if not hasattr(n, "lineno"):
                    gast.copy_location(n, node)
            return self.expr(ifexp, target)
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
        parsed = parsed_function(fn)
        override = self.origin_override
        if override is None and _is_cotan_internal(fn):
            override = self.origin
        child = type(self)(parsed, self.scope, self.captured, self.out,
                           self.inline_stack + (fn,), parent=self, origin_override=override)
        child._share_memory_facts(self)
        return child.inline_body(clone(parsed.node), args, kws, target, node,
                                 defaults=fn.__defaults__, kwdefaults=fn.__kwdefaults__)

    def inline_local(self, lf, args, kws, target, node):
        fdef = lf.node
        if any(fdef is f for f in self.inline_stack if isinstance(f, gast.AST)):
            raise self.error(f"recursive call of {fdef.name!r} cannot be inlined", node)
        child = type(self)(self.parsed, self.scope, self.captured, self.out,
                           self.inline_stack + (fdef,), parent=lf.env,
                           origin_override=self.origin_override)
        child._share_memory_facts(self)
        child._nested = True
        child.origin = self.origin
        child.call_depth = self.call_depth + self.control_depth
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
        return child.inline_body(clone(fdef), args, kws, target, node,
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
        extra_kws = {}
        for k, v in kws.items():
            if k in bound:
                raise self.error(f"{fdef.name}() got multiple values for argument {k!r}", call_node)
            if k not in names and k not in kwonly:
                if a.kwarg is not None:     # collected by **kwargs
                    extra_kws[k] = v
                    continue
                raise self.error(f"{fdef.name}() got an unexpected keyword argument {k!r}",
                                 call_node)
            bound[k] = v
        defaults = defaults or ()
        for n, d in zip(names[len(names) - len(defaults):], defaults):
            if n not in bound:
                bound[n] = self.capture(n, d) if _is_function_like(d) else \
                    self.static_atom(n, d, call_node)
        for k in kwonly:
            if k not in bound and kwdefaults and k in kwdefaults:
                bound[k] = self.static_atom(k, kwdefaults[k], call_node)
        missing = [n for n in names + kwonly if n not in bound]
        if missing:
            raise self.error(f"{fdef.name}() missing argument(s): {', '.join(missing)}", call_node)
        if a.vararg is not None:
            bound[a.vararg.id] = self.emit_call("make_tuple", extra) if extra else Const(())
        if a.kwarg is not None:
            bound[a.kwarg.id] = self.emit_call("make_dict", list(extra_kws.values()),
                                               {"keys": Const(tuple(extra_kws))})
        mutated = _mutated_names(fdef.body)
        self.locals = _stored_names(fdef.body) | set(bound)
        for n, atom in bound.items():
            if n in mutated:
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
        fdef = desugar_control_flow(fdef, LocalScope(self.scope, self))
        body, ret = fdef.body[:-1], fdef.body[-1]
        for s in body:
            self.stmt(s)
        self.set_origin(ret)
        return self.expr(ret.value, target=target)




def _is_function_like(v):
    """A function value cotan can resolve calls of at transform time (not a
    class, a module or data)."""
    if isinstance(v, (type, types.ModuleType, numpy.ndarray)) or not callable(v):
        return False
    return isinstance(v, (types.FunctionType, types.BuiltinFunctionType, numpy.ufunc,
                          Primitive)) or resolve.translate_callable(v) is not None


def _hashable_key(v):
    try:
        hash(v)
        return v
    except TypeError:
        return None


def _binop(op):
    def build(call):
        if len(call.args) != 2 or call.keywords:
            return _bad_arity(call, 2)
        return gast.copy_location(gast.BinOp(left=call.args[0], op=op(), right=call.args[1]), call)
    return build


def _unop(op):
    def build(call):
        if len(call.args) != 1 or call.keywords:
            return _bad_arity(call, 1)
        return gast.copy_location(gast.UnaryOp(op=op(), operand=call.args[0]), call)
    return build


def _cmpop(op):
    def build(call):
        if len(call.args) != 2 or call.keywords:
            return _bad_arity(call, 2)
        return gast.copy_location(gast.Compare(left=call.args[0], ops=[op()],
                                               comparators=[call.args[1]]), call)
    return build


def _getitem_op(call):
    if len(call.args) != 2 or call.keywords:
        return _bad_arity(call, 2)
    return gast.copy_location(gast.Subscript(value=call.args[0], slice=call.args[1],
                                             ctx=gast.Load()), call)


def _bad_arity(call, n):
    raise TransformError(f"this operator function takes {n} argument(s)")


import operator as _operator  # noqa: E402
_OPERATOR_EXPRS = {
    _operator.add: _binop(gast.Add), _operator.sub: _binop(gast.Sub),
    _operator.mul: _binop(gast.Mult), _operator.truediv: _binop(gast.Div),
    _operator.floordiv: _binop(gast.FloorDiv), _operator.mod: _binop(gast.Mod),
    _operator.pow: _binop(gast.Pow), _operator.matmul: _binop(gast.MatMult),
    _operator.and_: _binop(gast.BitAnd), _operator.or_: _binop(gast.BitOr),
    _operator.xor: _binop(gast.BitXor), _operator.lshift: _binop(gast.LShift),
    _operator.rshift: _binop(gast.RShift),
    _operator.neg: _unop(gast.USub), _operator.pos: _unop(gast.UAdd),
    _operator.not_: _unop(gast.Not), _operator.invert: _unop(gast.Invert),
    _operator.lt: _cmpop(gast.Lt), _operator.le: _cmpop(gast.LtE),
    _operator.gt: _cmpop(gast.Gt), _operator.ge: _cmpop(gast.GtE),
    _operator.eq: _cmpop(gast.Eq), _operator.ne: _cmpop(gast.NotEq),
    _operator.getitem: _getitem_op,
}


def _dict_view(base, meth, call, key, keys_name):
    """`d.keys()`, `d.values()`, `d.items()` as the lists they iterate like:
    `list(d)`, `[d[k] for k in list(d)]`, `[(k, d[k]) for k in list(d)]`
    (a dict's keys are known where its structure is, so under jit the
    comprehension unrolls over constant keys)."""
    def load(n):
        return gast.Name(id=n, ctx=gast.Load(), annotation=None, type_comment=None)
    keys = load(keys_name)
    if True:
        item = gast.Subscript(value=load(base.id), slice=load(key), ctx=gast.Load())
        elt = item if meth == "values" else gast.Tuple(elts=[load(key), item], ctx=gast.Load())
        out = gast.ListComp(elt=elt, generators=[gast.comprehension(
            target=gast.Name(id=key, ctx=gast.Store(), annotation=None, type_comment=None),
            iter=keys, ifs=[], is_async=0)])
    for n in gast.walk(out):
        gast.copy_location(n, call)
    return out


def _load(name):
    return gast.Name(id=name, ctx=gast.Load(), annotation=None, type_comment=None)
