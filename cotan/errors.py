"""Every exception cotan raises on purpose.

Owns the exception classes and the formatting of source locations (file,
line, column, the source line and a caret).  It must not import any other
part of cotan: every stage imports it.
"""

import linecache

import numpy as _np


class CotanError(Exception):
    """Base class of every error cotan raises deliberately."""


def format_location(filename, lineno, col_offset=None):
    """`file:line:col` plus the source line and a caret under the column."""
    where = f"{filename}:{lineno}"
    if col_offset is not None:
        where += f":{col_offset + 1}"
    line = linecache.getline(filename, lineno).rstrip("\n") if filename else ""
    if not line:
        return where
    text = f"{where}\n    {line}"
    if col_offset is not None:
        text += "\n    " + " " * col_offset + "^"
    return text


class SourceUnavailableError(CotanError):
    """The source of a function cannot be found (builtin, C extension, REPL)."""

    def __init__(self, fn, reason=""):
        name = getattr(fn, "__qualname__", None) or repr(fn)
        msg = (
            f"cotan needs the Python source of {name!r} to transform it, but "
            f"none is available{': ' + reason if reason else ''}. Define the "
            "function in a file (or a notebook cell) instead of a builtin, a "
            "C extension or `exec`'d text, or wrap the call in a Python function "
            "whose body cotan can read."
        )
        super().__init__(msg)
        self.function = fn


class TransformError(CotanError):
    """User code uses a construct cotan cannot transform.

    The message names the function, the file, line and column, shows the
    source line with a caret, and says what to write instead.
    """

    def __init__(self, message, filename=None, lineno=None, col_offset=None,
                 function=None, hint=None):
        self.filename = filename
        self.lineno = lineno
        self.col_offset = col_offset
        self.function = function
        self.hint = hint
        self.reason = message
        parts = []
        if function:
            parts.append(f"in function {function!r}: {message}")
        else:
            parts.append(message)
        if filename and lineno:
            parts.append(format_location(filename, lineno, col_offset))
        if hint:
            parts.append(hint)
        super().__init__("\n".join(parts))


class MissingRuleError(CotanError, NotImplementedError):
    """A primitive has no rule for the transformation being applied."""

    def __init__(self, primitive, transformation, detail=""):
        self.primitive = primitive
        self.transformation = transformation
        if detail:
            # a declared reason says what to do instead
            msg = f"primitive {primitive!r} has no {transformation} rule: {detail}"
        else:
            msg = (f"primitive {primitive!r} has no {transformation} rule. Rewrite the "
                   f"code without it or register a {transformation} rule for it.")
        super().__init__(msg)


class NonDifferentiableError(CotanError, TypeError):
    """Differentiation was asked of something that has no derivative
    (an integer input, a non-scalar output for `grad`, ...)."""


class ShapeError(CotanError, ValueError):
    """Shapes or dtypes given at a boundary do not fit the signature."""


class LinAlgError(ShapeError, _np.linalg.LinAlgError):
    """A linear-algebra routine failed on its input under jit (a singular
    matrix for inv/solve, one that is not positive definite for cholesky,
    no convergence): `except numpy.linalg.LinAlgError` catches it, as it
    catches NumPy's own."""


class TypeInferenceError(CotanError, TypeError):
    """A variable's dtype or shape cannot be inferred consistently."""


class CompileError(CotanError):
    """A backend failed to compile a function."""
