"""Finding and parsing a function's source.

Owns `parse_function`: source text (from the file, a lambda's line, or the
linecache entry of a generated function) → a gast `FunctionDef` plus the
environment its free names resolve in (closure cells, globals, builtins) and
the mapping from AST positions back to file positions.  Must not normalize:
that is `normalize.py`'s job.
"""

import builtins
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
        """(found, value) of a free name: closure, then globals, then builtins."""
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
    """
    if isinstance(fn, types.MethodType):
        raise SourceUnavailableError(fn, "bound methods are not supported; "
                                     "transform a plain function and pass the object explicitly")
    if not isinstance(fn, types.FunctionType):
        raise SourceUnavailableError(fn, f"it is a {type(fn).__name__}, not a Python function")
    code = fn.__code__
    filename = code.co_filename
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
        node = _find_lambda(fn, dedented, module, line_offset)
        if node is None:
            raise SourceUnavailableError(fn, "the lambda's source line could not be parsed on its own")
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


def _find_lambda(fn, text, module, line_offset):
    """The lambda node whose position matches `fn`'s code object."""
    if module is None:
        # A lambda inside a larger statement that getsource cut mid-way:
        # parse just the lambda's own line(s) from the file.
        return None
    code = fn.__code__
    argnames = list(code.co_varnames[:code.co_argcount])
    cands = [n for n in gast.walk(module) if isinstance(n, gast.Lambda)
             and [a.id for a in n.args.args] == argnames
             and n.lineno + line_offset == code.co_firstlineno]
    if len(cands) > 1:
        cols = {p[2] for p in code.co_positions() if p[2] is not None}
        start = min(cols) if cols else None
        cands = [c for c in cands if start is not None and c.body.col_offset <= start] or cands
        cands = cands[-1:]
    if not cands:
        return None
    lam = cands[0]
    fdef = gast.FunctionDef(
        name="lambda_fn" if True else None, args=lam.args,
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
