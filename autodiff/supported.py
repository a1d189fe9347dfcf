"""What user code may contain: the check run before any other processing,
and the cache of parsed functions.

Owns `check_supported` (a TransformError with file, line, caret and a hint
at the first construct cotan cannot transform) and `parsed_function`.
Must not normalize.
"""

import gast

from .syntax import walk
from .parse import parse_function


_UNSUPPORTED = {
    gast.Try: "try/except", gast.With: "with", gast.AsyncWith: "async with",
    gast.ClassDef: "class definitions", gast.Global: "global",
    gast.Yield: "yield",
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
    "yield": "Build a list and return it instead of a generator.",
    "raise": "Check inputs before calling the transformed function, or use `assert`.",
    "import": "Import at module level.",
    "class definitions": "Define the class at module level.",
}


def check_supported(parsed):
    """Raise TransformError at the first construct cotan cannot transform."""
    for node in walk(parsed.node):
        for kind, what in _UNSUPPORTED.items():
            if isinstance(node, kind):
                raise parsed.error(f"{what} is not supported", node,
                                   hint=_HINTS.get(what, "Rewrite it with the constructs "
                                                   "listed in cotan's README."))
        if isinstance(node, gast.FunctionDef) and node is not parsed.node:
            if not all(_transparent_decorator(parsed, d) for d in node.decorator_list):
                raise parsed.error("decorated local functions are not supported (only "
                                   "@cotan.jit, which changes nothing inside transformed "
                                   "code, is)", node,
                                   hint="Define the decorated function at module level.")


def _transparent_decorator(parsed, node):
    """Whether a local function's decorator leaves its meaning unchanged
    inside transformed code: `@cotan.jit` (the enclosing transformation
    compiles, or not, the whole function), spelled as a name or attribute."""
    import sys
    path = []
    while isinstance(node, gast.Attribute):
        path.append(node.attr)
        node = node.value
    if not isinstance(node, gast.Name):
        return False
    found, value = parsed.lookup(node.id)
    for attr in reversed(path):
        if not found:
            return False
        value = getattr(value, attr, None)
    cotan = sys.modules.get("cotan")
    return found and cotan is not None and value is getattr(cotan, "jit", None)


# ------------------------------------------------------------------ results




_parse_cache = {}


def parsed_function(fn):
    """`parse_function(fn)` checked by `check_supported`, parsed once."""
    key = (fn, getattr(fn, "__code__", None))
    p = _parse_cache.get(key)
    if p is None:
        p = parse_function(fn)
        check_supported(p)
        _parse_cache[key] = p
    return p
