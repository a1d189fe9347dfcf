"""Core form → a real Python function with registered source.

Owns printing core form as readable Python (with `# <user line>` comments
that map statements back to the code they came from) and turning it into a
function whose source linecache knows, so `inspect.getsource`, tracebacks,
`cotan.source` and later transformations all read it.  Must not change the
program.
"""

import ast
import hashlib

import gast

from ..runtime.table import PRIMITIVES
from .parse import GENERATED_PREFIX, register_source

#: generated function -> its CoreFunction
_generated = {}


def to_source(fdef, comments=True):
    """Readable Python for a core-form gast FunctionDef."""
    lines = []
    params = ", ".join(a.id for a in fdef.args.args)
    lines.append(f"def {fdef.name}({params}):")
    doc = getattr(fdef, "cotan_doc", None)
    if doc:
        lines.append(f"    {doc!r}" if "\n" not in doc else '    """' + doc + '"""')
    _block(fdef.body, 1, lines, comments, [None])
    return "\n".join(lines) + "\n"


def _expr(node):
    return ast.unparse(ast.fix_missing_locations(gast.gast_to_ast(node)))


def _block(stmts, depth, lines, comments, last_origin):
    pad = "    " * depth
    for s in stmts:
        origin = getattr(s, "cotan_origin", None)
        if comments and origin and origin != last_origin[0]:
            lines.append(f"{pad}# {origin}")
            last_origin[0] = origin
        if isinstance(s, gast.If):
            lines.append(f"{pad}if {_expr(s.test)}:")
            _block(s.body, depth + 1, lines, comments, last_origin)
            if s.orelse:
                lines.append(f"{pad}else:")
                _block(s.orelse, depth + 1, lines, comments, last_origin)
            last_origin[0] = None
        elif isinstance(s, gast.For):
            lines.append(f"{pad}for {s.target.id} in {_expr(s.iter)}:")
            _block(s.body, depth + 1, lines, comments, last_origin)
            last_origin[0] = None
        elif isinstance(s, gast.While):
            lines.append(f"{pad}while {_expr(s.test)}:")
            _block(s.body, depth + 1, lines, comments, last_origin)
            last_origin[0] = None
        else:
            lines.append(pad + _expr(s))


def materialize(core, label):
    """A Python function for CoreFunction `core`.

    `label` says what produced it ("core form", "grad", "vmap", ...); it
    goes into the registered file name, which is deterministic: the same
    source always gets the same name.
    """
    source = to_source(core.node)
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    origin = getattr(core.source_fn, "__qualname__", core.name)
    filename = f"{GENERATED_PREFIX}{label} of {origin} {digest}>"
    register_source(filename, source)
    namespace = dict(PRIMITIVES)
    namespace["range"] = range
    namespace.update(core.captured)
    namespace["__name__"] = "cotan.generated"
    code = compile(source, filename, "exec")
    exec(code, namespace)
    fn = namespace[core.node.name]
    fn.__cotan_core__ = core
    fn.__qualname__ = f"{label}({origin})" if label != "core form" else core.node.name
    _generated[fn] = core
    return fn


def generated_core(fn):
    """The CoreFunction behind a generated function, or None."""
    return getattr(fn, "__cotan_core__", None)
