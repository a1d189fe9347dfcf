"""The core form: the contract between cotan's stages.

Owns the grammar below and `validate`, which every transformation's output
is checked against in the tests.  Must not transform anything.

Grammar (over gast nodes)::

    function  := def NAME(NAME, ...):  body          # positional params only
    body      := stmt* return_stmt                    # exactly one return, last
    stmt      := NAME = PRIM(atom, ..., KW=atom, ...)  # one primitive call
               | NAME = atom                          # copy or constant
               | if NAME: stmt+ [else: stmt+]
               | for NAME in range(atom, atom, atom): stmt+
               | while NAME: stmt+
    return_stmt := return atom
    atom      := NAME | CONSTANT                      # CONSTANT: None, bool,
                                                     # int, float, complex,
                                                     # str, ..., tuples of these

`PRIM` names a registered primitive (a key of `runtime.PRIMITIVES`).
Nothing else appears: no nested expressions, operators, attributes,
subscripts, `break`/`continue`, augmented or subscript assignment.  A
`while` predicate is recomputed at the end of its body by normalization, so
`while c:` always reads the current value of `c`.
"""

import gast

from ..runtime.table import PRIMITIVES


class CoreFormViolation(AssertionError):
    pass


_CONST_TYPES = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis))


def is_constant_value(v):
    # exact types: NumPy scalars subclass float/int but print differently and
    # promote differently, so they are captured values, not constants
    if type(v) is tuple:
        return all(is_constant_value(e) for e in v)
    if type(v) is float:
        return v == v and v not in (float("inf"), float("-inf"))
    return type(v) in _CONST_TYPES


def is_atom(node):
    if isinstance(node, gast.Name):
        return True
    if isinstance(node, gast.Constant):
        return is_constant_value(node.value)
    if isinstance(node, gast.Tuple):  # a tuple of constants, as re-parsed
        return all(isinstance(e, gast.Constant) and is_constant_value(e.value)
                   or (isinstance(e, gast.Tuple) and is_atom(e)) for e in node.elts)
    if isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.USub):
        # `-1` re-parses as USub(1)
        return isinstance(node.operand, gast.Constant) and isinstance(
            node.operand.value, (int, float, complex))
    return False


def validate(fn_node, primitives=None):
    """Raise CoreFormViolation unless `fn_node` (gast FunctionDef) is core form."""
    prims = PRIMITIVES if primitives is None else primitives
    if not isinstance(fn_node, gast.FunctionDef):
        raise CoreFormViolation("not a function definition")
    a = fn_node.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or getattr(a, "posonlyargs", None):
        raise CoreFormViolation("parameters must be plain positional names")
    body = fn_node.body
    if not body or not isinstance(body[-1], gast.Return):
        raise CoreFormViolation("the body must end with its one return")
    if not is_atom(body[-1].value) if body[-1].value is not None else False:
        raise CoreFormViolation("return value must be an atom")
    _validate_block(body[:-1], prims)
    return True


def _where(node):
    return f" (line {getattr(node, 'lineno', '?')})"


def _validate_block(stmts, prims):
    for s in stmts:
        if isinstance(s, gast.Assign):
            if len(s.targets) != 1 or not isinstance(s.targets[0], gast.Name):
                raise CoreFormViolation("assignment must have one name target" + _where(s))
            v = s.value
            if is_atom(v):
                continue
            if not isinstance(v, gast.Call) or not isinstance(v.func, gast.Name):
                raise CoreFormViolation(f"right side must be a primitive call or an atom{_where(s)}")
            if v.func.id not in prims:
                raise CoreFormViolation(f"{v.func.id!r} is not a primitive{_where(s)}")
            for arg in v.args:
                if not is_atom(arg):
                    raise CoreFormViolation(f"argument of {v.func.id} is not an atom{_where(s)}")
            for kw in v.keywords:
                if kw.arg is None or not is_atom(kw.value):
                    raise CoreFormViolation(f"keyword of {v.func.id} is not an atom{_where(s)}")
        elif isinstance(s, gast.If):
            if not isinstance(s.test, gast.Name):
                raise CoreFormViolation("if predicate must be a name" + _where(s))
            _validate_block(s.body, prims)
            _validate_block(s.orelse, prims)
        elif isinstance(s, gast.For):
            it = s.iter
            if not isinstance(s.target, gast.Name):
                raise CoreFormViolation("for target must be a name" + _where(s))
            if not (isinstance(it, gast.Call) and isinstance(it.func, gast.Name)
                    and it.func.id == "range" and len(it.args) == 3
                    and all(is_atom(x) for x in it.args) and not it.keywords):
                raise CoreFormViolation("for must iterate over range(start, stop, step)" + _where(s))
            if s.orelse:
                raise CoreFormViolation("for-else is not core form" + _where(s))
            _validate_block(s.body, prims)
        elif isinstance(s, gast.While):
            if not isinstance(s.test, gast.Name) or s.orelse:
                raise CoreFormViolation("while predicate must be a name" + _where(s))
            _validate_block(s.body, prims)
        else:
            raise CoreFormViolation(f"{type(s).__name__} is not core form{_where(s)}")
        if isinstance(s, (gast.If, gast.For, gast.While)) and not s.body:
            raise CoreFormViolation("empty block" + _where(s))
