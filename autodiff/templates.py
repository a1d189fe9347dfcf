"""Rule templates and the round trip every transformation ends with.

Owns two things the forward, reverse and batching transformations share:

* `template_statements`: a rule is a small Python function whose body is
  spliced into generated code with its parameters replaced by the program's
  names (as in Tangent), so a rule reads like the math:

      def _(z, x, y):
          d[x] += unbroadcast(d[z] * y, x)

* `build_function`: a transformation writes its output as ordinary Python
  (nested expressions, operators, spliced rule bodies, `# grad of:`
  comments), and this turns that text into a real function and normalizes it
  back into core form, exactly like user code.  So a transformation never
  emits core form by hand and generated code is parsed by the same path as
  user code (DESIGN.md invariant 1).

Must not know about any particular transformation.
"""

import ast
import hashlib
import inspect
import textwrap

import gast

from .syntax import clone
from ..runtime.table import PRIMITIVES
from .parse import GENERATED_PREFIX, register_source

_template_cache = {}


_module_functions = {}


def _function_node(fn):
    """The gast FunctionDef of `fn`: its module's file is parsed once and
    the definition found by name and first line (inspect.getsource would
    tokenize the file again for each of the many rules a gradient uses)."""
    code = fn.__code__
    path = code.co_filename
    defs = _module_functions.get(path)
    if defs is None:
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (OSError, SyntaxError, ValueError):
            tree = None
        defs = _module_functions[path] = {}
        for n in tree.body if tree is not None else ():     # rules are module-level
            if isinstance(n, ast.FunctionDef):
                first = min([n.lineno] + [d.lineno for d in n.decorator_list])
                defs[(n.name, first)] = n
    node = defs.get((fn.__name__, code.co_firstlineno))
    if node is None:    # not in a readable file (generated, edited since import)
        return gast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    return gast.ast_to_gast(ast.Module(body=[node], type_ignores=[])).body[0]


def template_ast(rule):
    """(parameter names, keyword-only names with defaults, body) of `rule`."""
    got = _template_cache.get(rule)
    if got is None:
        fdef = _function_node(rule)
        params = [a.id for a in fdef.args.args]
        kwonly = {}
        for a, d in zip(fdef.args.kwonlyargs, fdef.args.kw_defaults):
            kwonly[a.id] = d
        vararg = fdef.args.vararg.id if fdef.args.vararg is not None else None
        body = [s for s in fdef.body
                if not (isinstance(s, gast.Expr) and isinstance(s.value, gast.Constant))]
        got = (params, kwonly, vararg, body)
        _template_cache[rule] = got
    return got


class _Substitute(gast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        rep = self.mapping.get(node.id)
        if rep is None:
            return node
        rep = clone(rep)
        if isinstance(rep, gast.Name):
            rep.ctx = node.ctx
        return gast.copy_location(rep, node)


def as_expr(value):
    """A gast expression for a name (str), an existing gast node or a constant."""
    if isinstance(value, gast.AST):
        return clone(value)
    if isinstance(value, str):
        return gast.Name(id=value, ctx=gast.Load(), annotation=None, type_comment=None)
    return gast.Constant(value=value, kind=None)


def template_statements(rule, args, params=None, extra=None):
    """The body of `rule` with its parameters bound.

    `args` binds the positional parameters (names, constants or gast
    expressions; a trailing `*vararg` parameter receives the rest as a
    tuple expression), `params` the keyword-only parameters (missing ones
    take the template's defaults), `extra` any other name in the body.
    """
    names, kwonly, vararg, body = template_ast(rule)
    mapping = {}
    for n, v in zip(names, args):
        mapping[n] = as_expr(v)
    if vararg is not None:
        rest = [as_expr(v) for v in args[len(names):]]
        mapping[vararg] = gast.Tuple(elts=rest, ctx=gast.Load())
    params = params or {}
    for k, default in kwonly.items():
        if k in params:
            mapping[k] = as_expr(params[k])
        elif default is not None:
            mapping[k] = clone(default)
        else:
            mapping[k] = gast.Constant(value=None, kind=None)
    for k, v in (extra or {}).items():
        mapping[k] = as_expr(v)
    out = []
    for s in body:
        s = _Substitute(mapping).visit(clone(s))
        out.append(s)
    return out


def rule_namespace(*modules):
    """Names rule bodies may use: the rule modules' globals and the primitives."""
    ns = {}
    for m in modules:
        ns.update({k: v for k, v in vars(m).items() if not k.startswith("__")})
    ns.update(PRIMITIVES)
    return ns


def function_source(fdef, comments=None):
    """Python text of a gast FunctionDef whose statements may carry
    `cotan_comment` attributes (written as a comment line above them)."""
    lines = []
    _print_block([fdef], 0, lines, [None])
    return "\n".join(lines) + "\n"


def _print_block(stmts, depth, lines, last=None):
    pad = "    " * depth
    last = last if last is not None else [None]
    for s in stmts:
        comment = getattr(s, "cotan_comment", None) or getattr(s, "cotan_origin", None)
        if comment and comment != last[0]:
            lines.append(f"{pad}# {comment}")
            last[0] = comment
        if isinstance(s, gast.FunctionDef):
            head = ast.unparse(ast.fix_missing_locations(gast.gast_to_ast(
                gast.FunctionDef(name=s.name, args=s.args, body=[gast.Pass()],
                                 decorator_list=[], returns=None, type_comment=None,
                                 type_params=[])))).splitlines()[0]
            lines.append(pad + head)
            _print_block(s.body, depth + 1, lines, last)
        elif isinstance(s, gast.If):
            lines.append(f"{pad}if {_expr(s.test)}:")
            _print_block(s.body or [gast.Pass()], depth + 1, lines, last)
            if s.orelse:
                lines.append(f"{pad}else:")
                _print_block(s.orelse, depth + 1, lines, last)
            last[0] = None
        elif isinstance(s, gast.For):
            lines.append(f"{pad}for {_expr(s.target)} in {_expr(s.iter)}:")
            _print_block(s.body or [gast.Pass()], depth + 1, lines, last)
            last[0] = None
        elif isinstance(s, gast.While):
            lines.append(f"{pad}while {_expr(s.test)}:")
            _print_block(s.body or [gast.Pass()], depth + 1, lines, last)
            last[0] = None
        else:
            lines.append(pad + _expr(s))


def _expr(node):
    return ast.unparse(ast.fix_missing_locations(gast.gast_to_ast(node)))


def build_function(fdef, namespace, label, origin_name):
    """Turn a generated gast FunctionDef (ordinary Python, not yet core
    form) into a core-form CoreFunction by running it through the same
    normalization as user code.

    `namespace` holds every global name the body uses (primitives, rule
    helpers, captured constants).  Returns the CoreFunction.
    """
    from .normalize import normalize_function
    text = function_source(fdef)
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    filename = f"{GENERATED_PREFIX}{label} of {origin_name} (before normalization) {digest}>"
    register_source(filename, text)
    ns = dict(namespace)
    ns.setdefault("__name__", "cotan.generated")
    exec(compile(text, filename, "exec"), ns)
    fn = ns[fdef.name]
    core = normalize_function(fn)
    return core
