"""Finding and parsing a function's source.

Owns `parse_function`: source text (from the file, a lambda's line, or the
linecache entry of a generated function) → a gast `FunctionDef` plus the
environment its free names resolve in (closure cells, globals, builtins) and
the mapping from AST positions back to file positions.  Must not normalize:
that is `normalize.py`'s job.
"""

import builtins
import copy
import inspect
import linecache
import textwrap
import types

import gast

from ..errors import SourceUnavailableError, TransformError

#: filename prefix of generated sources registered with linecache
GENERATED_PREFIX = "<cotan "


class ParsedFunction:
    """A parsed function and where its names and lines come from."""

    def __init__(self, fn, node, filename, line_offset, col_offset, source_lines):
        self.fn = fn
        self.node = node                  # gast.FunctionDef (lambdas converted)
        self.filename = filename
        self.line_offset = line_offset    # file line = node line + line_offset
        self.col_offset = col_offset      # file col = node col + col_offset
        self.source_lines = source_lines  # the dedented text, for origins
        self.name = getattr(fn, "__name__", "<lambda>")
        self.qualname = getattr(fn, "__qualname__", self.name)
        self.globals = getattr(fn, "__globals__", {})
        self.closure = _closure_vars(fn)
        #: parameters bound outside the function (a partial's arguments, a
        #: bound method's object): free names of the body, as constants
        self.bound = {}

    @property
    def is_generated(self):
        return self.filename.startswith(GENERATED_PREFIX)

    def file_position(self, node):
        lineno = getattr(node, "lineno", None)
        if lineno is None:
            return None, None
        col = getattr(node, "col_offset", None)
        return lineno + self.line_offset, (None if col is None else col + self.col_offset)

    def error(self, message, node=None, hint=None):
        lineno, col = self.file_position(node) if node is not None else (None, None)
        return TransformError(message, self.filename, lineno, col,
                              function=self.qualname, hint=hint)

    def line_text(self, node):
        """The user's source line of `node` (for `# grad of:` comments)."""
        lineno = getattr(node, "lineno", None)
        if lineno is None or not 1 <= lineno <= len(self.source_lines):
            return None
        return self.source_lines[lineno - 1].strip()

    def lookup(self, name):
        """(found, value) of a free name: bound parameters, closure, then
        globals, then builtins."""
        if name in self.bound:
            return True, self.bound[name]
        if name in self.closure:
            cell = self.closure[name]
            try:
                return True, cell.cell_contents
            except ValueError:
                return False, None
        if name in self.globals:
            return True, self.globals[name]
        if hasattr(builtins, name):
            return True, getattr(builtins, name)
        return False, None


def _closure_vars(fn):
    code = getattr(fn, "__code__", None)
    cells = getattr(fn, "__closure__", None) or ()
    if code is None:
        return {}
    return dict(zip(code.co_freevars, cells))


def unwrap(fn):
    """The plain Python function behind decorators cotan knows."""
    seen = set()
    while id(fn) not in seen:
        seen.add(id(fn))
        inner = getattr(fn, "__cotan_wrapped__", None)
        if inner is None:
            break
        fn = inner
    return fn


def parse_function(fn):
    """Parse `fn`'s source into a `ParsedFunction`.

    Raises SourceUnavailableError when there is no Python source.
    A function carrying `__cotan_bound__ = (func, {param: value})` (see
    callables.py: partials, bound methods) reads as `func` without those
    parameters, their values bound as constants.
    """
    bound = getattr(fn, "__cotan_bound__", None)
    if bound is not None:
        return _parse_bound(fn, *bound)
    if isinstance(fn, types.MethodType):
        raise SourceUnavailableError(fn, "bound methods are not supported; "
                                     "transform a plain function and pass the object explicitly")
    if not isinstance(fn, types.FunctionType):
        raise SourceUnavailableError(fn, f"it is a {type(fn).__name__}, not a Python function")
    code = fn.__code__
    filename = code.co_filename
    if fn.__name__ == "<lambda>":
        whole = _whole_file_module(filename)
        if whole is not None:
            # the file's own coordinates: lambdas share lines and statements,
            # and a lambda inside a statement spanning several lines has no
            # source that parses on its own
            module, lines = whole
            node = _find_lambda(fn, module, 0, 0, filename)
            return ParsedFunction(fn, node, filename, 0, 0, [ln.rstrip("\n") for ln in lines])
    module = _generated_module(fn)
    if module is not None:
        lines, first = linecache.getlines(filename), 1
    else:
        try:
            lines, first = inspect.getsourcelines(fn)
        except (OSError, TypeError) as e:
            raise SourceUnavailableError(fn, str(e)) from None
    if not lines:
        raise SourceUnavailableError(fn, "its source is empty")
    raw = "".join(lines)
    dedented = textwrap.dedent(raw)
    indent = _indent_width(lines[0]) - _indent_width(dedented.splitlines(True)[0])
    line_offset = max(first, 1) - 1
    if module is None:
        try:
            module = gast.parse(dedented)
        except SyntaxError:
            module = None
    if fn.__name__ == "<lambda>":
        if module is None:
            raise SourceUnavailableError(fn, "the lambda's source line could not be parsed on its own")
        node = _find_lambda(fn, module, line_offset, indent, filename)
    else:
        if module is None or not module.body or not isinstance(
                module.body[0], (gast.FunctionDef, gast.AsyncFunctionDef)):
            raise SourceUnavailableError(fn, "its source does not parse as a function definition")
        node = module.body[0]
    node.decorator_list = []
    parsed = ParsedFunction(fn, node, filename, line_offset, indent,
                            dedented.splitlines())
    if isinstance(node, gast.AsyncFunctionDef):
        raise parsed.error("async functions cannot be transformed", node)
    return parsed


def _parse_bound(wrapper, func, bound):
    inner = parse_function(func)
    node = copy.deepcopy(inner.node)
    a = node.args
    # the parameters left are the wrapper's, positional and keyword-only as
    # its signature says (a partial's keyword makes its parameter
    # keyword-only, with the partial's value as default)
    own = {p.id: p for p in list(getattr(a, "posonlyargs", None) or []) + list(a.args)
           + list(a.kwonlyargs)}
    pos, kwonly = [], []
    for p in inspect.signature(wrapper).parameters.values():
        if p.name in own:
            (kwonly if p.kind is p.KEYWORD_ONLY else pos).append(own[p.name])
    a.posonlyargs, a.args, a.kwonlyargs = [], pos, kwonly
    a.defaults, a.kw_defaults = [], [None] * len(kwonly)
    parsed = ParsedFunction(func, node, inner.filename, inner.line_offset, inner.col_offset,
                            inner.source_lines)
    parsed.bound = dict(bound)
    return parsed


def _generated_module(fn):
    """The parsed text of a function cotan generated, when that text is the
    function and nothing else; None otherwise.  inspect would tokenize the
    text again only to find where the function ends (a tenth of the time
    of normalizing a gradient)."""
    code = fn.__code__
    if not code.co_filename.startswith(GENERATED_PREFIX) or code.co_firstlineno != 1 \
            or fn.__name__ == "<lambda>":
        return None
    lines = linecache.getlines(code.co_filename)
    if not lines or lines[0][:1].isspace():
        return None
    try:
        module = gast.parse("".join(lines))
    except SyntaxError:
        return None
    if len(module.body) != 1 or getattr(module.body[0], "name", None) != fn.__name__:
        return None
    return module


def _indent_width(line):
    return len(line) - len(line.lstrip())


_file_modules = {}


def _whole_file_module(filename):
    """(parsed module, lines) of a whole source file, cached per file text;
    None if linecache has no text for it or the text does not parse."""
    lines = linecache.getlines(filename)
    if not lines:
        return None
    text = "".join(lines)
    got = _file_modules.get(filename)
    if got is not None and got[0] == text:
        return got[1], lines
    try:
        module = gast.parse(text)
    except (SyntaxError, ValueError):
        return None
    _file_modules[filename] = (text, module)
    return module, lines


def _signature_matches(lam, code):
    a = lam.args
    npos = code.co_argcount
    nkw = code.co_kwonlyargcount
    names = code.co_varnames
    if [x.id for x in list(a.posonlyargs) + list(a.args)] != list(names[:npos]):
        return False
    if [x.id for x in a.kwonlyargs] != list(names[npos:npos + nkw]):
        return False
    flags = code.co_flags
    has_var, has_kw = bool(flags & inspect.CO_VARARGS), bool(flags & inspect.CO_VARKEYWORDS)
    return (a.vararg is not None) == has_var and (a.kwarg is not None) == has_kw


def _code_positions(code):
    """The (line, end line, col, end col) of the code's instructions, in
    file coordinates (RESUME and other instructions without a source range
    left out)."""
    positions = getattr(code, "co_positions", None)
    if positions is None:
        return []
    out = set()
    for line, end_line, col, end_col in positions():
        if None in (line, end_line, col, end_col) or (line == end_line and col == end_col):
            continue
        out.add((line, end_line, col, end_col))
    return sorted(out)


def _span(node, line_offset, col_offset):
    return ((node.lineno + line_offset, node.col_offset + col_offset),
            (node.end_lineno + line_offset, node.end_col_offset + col_offset))


def _inside(pos, span):
    (l0, c0), (l1, c1) = span
    line, end_line, col, end_col = pos
    return (l0, c0) <= (line, col) and (end_line, end_col) <= (l1, c1)


def _nested_functions(lam):
    """How many functions (lambdas, comprehensions) the lambda's own code
    makes: each is a code object among its constants."""
    count = 0
    todo = [lam.body] + list(lam.args.defaults) + [d for d in lam.args.kw_defaults if d]
    while todo:
        n = todo.pop()
        if isinstance(n, (gast.Lambda, gast.ListComp, gast.SetComp, gast.DictComp,
                          gast.GeneratorExp)):
            count += 1
            continue
        todo.extend(gast.iter_child_nodes(n))
    return count


def _constant_defaults(lam):
    return all(isinstance(d, gast.Constant)
               for d in list(lam.args.defaults) + [d for d in lam.args.kw_defaults if d])


def _find_lambda(fn, module, line_offset, col_offset, filename):
    """The lambda node that compiled to `fn`'s code object.

    Candidates start on the code's first line and have its parameters; of
    those, the one whose source range holds every instruction's position
    (`co_positions`: column offsets tell apart lambdas sharing a line, the
    innermost range wins for nested ones) and that makes as many functions
    as the code holds code objects.  Candidates left over with the same text
    compile to the same code and resolve their free names through `fn`'s own
    closure and globals, so any of them is `fn`; otherwise cotan cannot tell
    which lambda `fn` is and says so."""
    code = fn.__code__
    cands = [n for n in gast.walk(module) if isinstance(n, gast.Lambda)
             and n.lineno + line_offset == code.co_firstlineno and _signature_matches(n, code)]
    positions = _code_positions(code)
    if len(cands) > 1 and positions:
        holding = [c for c in cands
                   if all(_inside(p, _span(c, line_offset, col_offset)) for p in positions)]
        if holding:
            cands = holding
    if len(cands) > 1:
        ncode = sum(1 for c in code.co_consts if isinstance(c, types.CodeType))
        same = [c for c in cands if _nested_functions(c) == ncode]
        cands = same or cands
    if len(cands) > 1 and positions:
        # nested lambdas: the innermost range that still holds every position
        def extent(c):
            (l0, c0), (l1, c1) = _span(c, line_offset, col_offset)
            return (l1 - l0, (c1 - c0) if l1 == l0 else c1)
        smallest = min(extent(c) for c in cands)
        cands = [c for c in cands if extent(c) == smallest]
    if len(cands) > 1:
        texts = {gast.dump(c) for c in cands}
        if len(texts) > 1 or not _constant_defaults(cands[0]):
            raise TransformError(
                f"cannot tell which of the {len(cands)} lambdas on this line is the function "
                "being transformed: they take the same parameters and their code does not "
                "say where it was written", filename, code.co_firstlineno,
                None, function=getattr(fn, "__qualname__", "<lambda>"),
                hint="define the function with `def`, or put each lambda on its own line")
    if not cands:
        raise SourceUnavailableError(fn, "no lambda with its parameters was found on line "
                                     f"{code.co_firstlineno} of {filename}")
    lam = copy.deepcopy(cands[0])
    fdef = gast.FunctionDef(
        name="lambda_fn", args=lam.args,
        body=[gast.Return(value=lam.body)], decorator_list=[], returns=None,
        type_comment=None, type_params=[])
    gast.copy_location(fdef, lam)
    gast.copy_location(fdef.body[0], lam.body)
    return fdef


def register_source(filename, source):
    """Make generated `source` visible to linecache (and so to inspect and
    tracebacks) under `filename`."""
    lines = source.splitlines(True)
    # mtime None tells linecache.checkcache the entry has no file to check.
    linecache.cache[filename] = (len(source), None, lines, filename)
