"""Small pieces of syntax every normalization pass uses.

Owns the gast node constructors for core form (`Name`, `Const`, `Call`,
`Assign`), the operator → primitive tables, and read-only queries over user
statements (which names a block assigns or mutates, where generated code
says a statement came from).  Must not transform anything.
"""

import collections
import types

import gast


def walk(node):
    """Every node under `node` (itself included), breadth first like
    `ast.walk`, about three times faster: transformations walk whole
    functions many times, and this was a tenth of `jit(grad(f))`'s
    compile time."""
    AST = gast.AST
    todo = collections.deque([node])
    pop, push = todo.popleft, todo.append
    while todo:
        n = pop()
        for f in n._fields:
            v = getattr(n, f, None)
            if isinstance(v, AST):
                push(v)
            elif type(v) is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
        yield n


def clone(node):
    """A deep copy of a gast tree (or list of trees), like
    `copy.deepcopy` but several times faster; leaf values (constants,
    names) are immutable and shared."""
    if type(node) is list:
        return [clone(x) for x in node]
    if not isinstance(node, gast.AST):
        return node
    cls = type(node)
    new = cls.__new__(cls)
    d = new.__dict__
    d.update(node.__dict__)
    for f in node._fields:
        v = d.get(f)
        if type(v) is list:
            d[f] = [clone(x) for x in v]
        elif isinstance(v, gast.AST):
            d[f] = clone(v)
    return new


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


def _stored_names(stmts):
    names = set()
    for s in stmts:
        for n in walk(s):
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
        for n in walk(s):
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


def core_assigned(stmts):
    """Names that core-form `stmts` assign (loop targets included)."""
    out = set()
    for s in stmts:
        for node in walk(s):
            if isinstance(node, gast.Assign):
                out.add(node.targets[0].id)
            elif isinstance(node, gast.For):
                out.add(node.target.id)
    return out


def core_read_counts(stmts):
    """How many times core-form `stmts` read each name."""
    counts = {}
    for s in stmts:
        for node in walk(s):
            if isinstance(node, gast.Name) and isinstance(node.ctx, gast.Load):
                counts[node.id] = counts.get(node.id, 0) + 1
    return counts
