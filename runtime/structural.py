"""Structural primitives: the ones normalization itself emits.

Owns indexing (`getitem`, the functional `setitem`, `make_slice`),
containers (`make_tuple`, `make_list`, `make_dict`, `list_append`), shape
queries (`shape`, `ndim`, `length`), conversions (`to_float`, `to_int`),
identity tests (`is_`, `is_not`) and the effectful `print` and `check`.
Numeric primitives live in `numeric`; rules for these live in autodiff/.
"""

import builtins

import numpy as np

from ..codegen.abstract import ShapedArray, eval_by_running, abstractify
from .table import primitive


def _index(components):
    return components[0] if len(components) == 1 else tuple(components)


def _getitem(x, *index):
    """getitem(x, *index) == x[index]; index parts are ints, slices, None, ..., arrays."""
    return x[_index(index)]


getitem = primitive("getitem", abstract_eval=eval_by_running(_getitem))(_getitem)


def _setitem(x, value, *index):
    """setitem(x, value, *index): a copy of `x` with `x[index] = value`.

    The functional form of subscript assignment; normalization rebinds the
    name (`x = setitem(x, v, i)`) so the program's meaning is NumPy's.
    """
    out = np.array(x, copy=True)
    out[_index(index)] = value
    return out


setitem = primitive("setitem", abstract_eval=eval_by_running(_setitem))(_setitem)


def _make_slice(start, stop, step):
    """make_slice(a, b, c) == slice(a, b, c): the core form of `a:b:c`."""
    return builtins.slice(start, stop, step)


def _slice_abstract(start, stop, step):
    parts = [start, stop, step]
    if any(isinstance(p, ShapedArray) for p in parts):
        # the slice's length would depend on values the compiler does not
        # know (dropping the bounds read the whole axis: a wrong number)
        from ..errors import ShapeError
        which = ", ".join(n for n, p in zip(("start", "stop", "step"), parts)
                          if isinstance(p, ShapedArray))
        raise ShapeError(
            f"a slice whose {which} is a run-time value: under jit the length of "
            "`a[start:stop]` must be known when compiling. Mark the arguments the bounds "
            "come from static (static_argnums / static_argnames), or use a fixed-length "
            "window (e.g. a[i:i + 3] with i from range(...) over static bounds, or np.take)")
    return builtins.slice(start, stop, step)


make_slice = primitive("make_slice", abstract_eval=_slice_abstract,
                       differentiable=False)(_make_slice)


@primitive("make_tuple", abstract_eval=lambda *xs: tuple(xs))
def make_tuple(*xs):
    """make_tuple(a, b, ...) == (a, b, ...)."""
    return tuple(xs)


@primitive("make_list", abstract_eval=lambda *xs: list(xs))
def make_list(*xs):
    """make_list(a, b, ...) == [a, b, ...]."""
    return list(xs)


@primitive("make_dict", abstract_eval=lambda *xs, keys: dict(zip(keys, xs)))
def make_dict(*values, keys):
    """make_dict(a, b, keys=('x', 'y')) == {'x': a, 'y': b}."""
    return dict(zip(keys, values))


@primitive("list_append", abstract_eval=lambda xs, x: list(xs) + [x])
def list_append(xs, x):
    """list_append(xs, x) == xs + [x]: the functional `xs.append(x)`."""
    return list(xs) + [x]


def _shape_abstract(x):
    return tuple(x.shape) if isinstance(x, ShapedArray) else np.shape(x)


@primitive("shape", abstract_eval=_shape_abstract, differentiable=False)
def shape(x):
    """shape(x) == numpy.shape(x), a tuple of ints."""
    return np.shape(x)


@primitive("ndim", abstract_eval=lambda x: len(_shape_abstract(x)), differentiable=False)
def ndim(x):
    """ndim(x) == numpy.ndim(x)."""
    return np.ndim(x)


def _length_abstract(x):
    if isinstance(x, ShapedArray):
        if not x.shape:
            raise TypeError("len() of a 0-d array")
        return x.shape[0]
    return builtins.len(x)


@primitive("length", abstract_eval=_length_abstract, differentiable=False)
def length(x):
    """length(x) == len(x)."""
    return builtins.len(x)


@primitive("to_float", abstract_eval=lambda x: ShapedArray((), np.float64, weak_type=True)
           if isinstance(x, ShapedArray) else builtins.float(x))
def to_float(x):
    """to_float(x) == float(x)."""
    return builtins.float(x)


@primitive("to_int", abstract_eval=lambda x: ShapedArray((), np.int64, weak_type=True)
           if isinstance(x, ShapedArray) else builtins.int(x), differentiable=False)
def to_int(x):
    """to_int(x) == int(x)."""
    return builtins.int(x)


def _identity_abstract(a, b, negate):
    """`a is b` is known without values when one side is an array and the
    other a constant such as None (an array is never None)."""
    abs_a, abs_b = isinstance(a, ShapedArray), isinstance(b, ShapedArray)
    if abs_a and abs_b:
        return abstractify(True)
    if abs_a or abs_b:
        return negate
    return (a is not b) if negate else (a is b)


@primitive("is_", abstract_eval=lambda a, b: _identity_abstract(a, b, False),
           differentiable=False)
def is_(a, b):
    """is_(a, b) == (a is b)."""
    return a is b


@primitive("is_not", abstract_eval=lambda a, b: _identity_abstract(a, b, True),
           differentiable=False)
def is_not(a, b):
    """is_not(a, b) == (a is not b)."""
    return a is not b


@primitive("print", abstract_eval=lambda *xs, **kw: None, differentiable=False,
           effectful=True)
def print_(*xs, sep=" ", end="\n"):
    """print(...) == builtins.print(...); returns None."""
    builtins.print(*xs, sep=sep, end=end)


@primitive("check", abstract_eval=lambda cond, message="": None, differentiable=False,
           effectful=True)
def check(cond, message=""):
    """check(cond, message): `assert cond, message`, evaluated even under -O."""
    if not np.all(cond):
        raise AssertionError(message)


@primitive("size", abstract_eval=lambda x: x.size if isinstance(x, ShapedArray) else np.size(x),
           differentiable=False)
def size(x):
    """size(x) == numpy.size(x)."""
    return np.size(x)


@primitive("dtype", abstract_eval=lambda x: x.dtype if isinstance(x, ShapedArray)
           else np.result_type(x), differentiable=False)
def dtype(x):
    """dtype(x) == x.dtype (numpy.result_type for Python scalars)."""
    return np.result_type(x)


@primitive("strformat", abstract_eval=lambda fmt, *xs: "", differentiable=False)
def strformat(fmt, *xs):
    """strformat(fmt, *xs) == fmt.format(*xs): the core form of f-strings."""
    return fmt.format(*xs)


@primitive("to_tuple", abstract_eval=lambda x: tuple(x) if not isinstance(x, ShapedArray)
           else tuple(ShapedArray(x.shape[1:], x.dtype) for _ in range(x.shape[0])))
def to_tuple(x):
    """to_tuple(x) == tuple(x)."""
    return tuple(x)


@primitive("to_list", abstract_eval=lambda x: list(x) if not isinstance(x, ShapedArray)
           else [ShapedArray(x.shape[1:], x.dtype) for _ in range(x.shape[0])])
def to_list(x):
    """to_list(x) == list(x)."""
    return list(x)


# -- tuple and list `+` and `*` ---------------------------------------------------------------
#
# Normalization emits these where an operand of `+` / `*` is known to be a tuple
# or list (a display, a shape, a name bound to one); `add` / `multiply` would
# compute NumPy's elementwise meaning instead of Python's.  The checks make a
# guess that the other operand did not confirm an error, never a wrong value.

def _sequence_kind(v):
    return type(v).__name__ if isinstance(v, (tuple, list)) else None


def _seq_error(msg):
    from ..errors import TransformError
    return TransformError(msg)


def _seq_concat(a, b):
    """seq_concat(a, b) == a + b for two tuples or two lists (Python's `+`)."""
    ka, kb = _sequence_kind(a), _sequence_kind(b)
    if ka is None or kb is None:
        other = b if ka is not None else a
        raise _seq_error(
            f"`+` of a {type(a).__name__} and a {type(b).__name__}: cotan read this `+` as "
            f"tuple/list concatenation (one operand is a tuple or list), but the other is "
            f"{'an array' if not isinstance(other, (int, float, complex)) else 'a number'}. "
            "For elementwise arithmetic, convert the sequence first: np.asarray((...)).")
    if ka != kb:
        raise _seq_error(f"can only concatenate {ka} (not {kb!r}) to {ka}")
    return a + b


seq_concat = primitive("seq_concat", abstract_eval=_seq_concat)(_seq_concat)


def _repeat_count(n):
    if isinstance(n, (bool, int, np.integer)):
        return int(n)
    if isinstance(n, ShapedArray) and n.shape == () and np.issubdtype(n.dtype, np.integer):
        raise _seq_error("the repetition count of a tuple or list (`seq * n`) must be known "
                         "when the function is compiled; it is computed at run time here")
    raise _seq_error(f"can't multiply a sequence by a non-int of type "
                     f"{type(n).__name__!r}: cotan read this `*` as tuple/list repetition "
                     "(one operand is a tuple or list); for elementwise arithmetic convert "
                     "the sequence first: np.asarray((...))")


def _seq_repeat(a, n):
    """seq_repeat(a, n) == a * n for a tuple or list and an int (Python's `*`)."""
    if _sequence_kind(a) is None:
        raise _seq_error(f"internal: seq_repeat of a {type(a).__name__}")
    return a * _repeat_count(n)


seq_repeat = primitive("seq_repeat", abstract_eval=_seq_repeat)(_seq_repeat)


def _seq_repeat_adjoint(g, a):
    """seq_repeat_adjoint(g, a): the adjoint of `a * n` from the cotangent `g`
    of the repetition: the sum of its len(a)-long chunks, shaped like `a`."""
    return _sum_chunks(g, a, False)


def _sum_chunks(g, a, abstract):
    from .adjoint_helpers import _add_any
    from .table import PRIMITIVES
    if abstract:
        _add_any = PRIMITIVES["add_any"].abstract_eval  # noqa: F811
    k = len(a)
    if k == 0:
        return type(a)()
    total = None
    for i in range(0, len(g), k):
        chunk = list(g[i:i + k])
        total = chunk if total is None else [_add_any(t, c) for t, c in zip(total, chunk)]
    if total is None:
        from .reverse_support import zero_adjoint
        return PRIMITIVES["zero_adjoint"].abstract_eval(a) if abstract else zero_adjoint(a)
    return type(a)(total)


seq_repeat_adjoint = primitive(
    "seq_repeat_adjoint", abstract_eval=lambda g, a: _sum_chunks(g, a, True),
    no_rule={"llvm": "the gradient of a tuple or list repeated (`[x] * n`) with entries that "
                     "carry a derivative is not compiled yet; write the entries out "
                     "((x, x, x)) or repeat an array (np.tile)"})(_seq_repeat_adjoint)


def _operand_guard(other, op):
    """operand_guard(other, op): `other` must not be what would make Python read
    `op` ('add' or 'multiply') on a list display as concatenation or
    repetition: cotan converted the display to an array (NumPy's reading)."""
    seq = isinstance(other, (tuple, list))
    rep = op == "multiply" and isinstance(other, (bool, int, np.integer))
    if seq or rep:
        what = "concatenation" if op == "add" else "repetition"
        raise _seq_error(
            f"`{'+' if op == 'add' else '*'}` of a list display and a "
            f"{type(other).__name__}: cotan read the list as an array (NumPy's meaning), "
            f"but Python would compute list {what} here. Bind the list to a name first "
            "(`lst = [...]`), or convert the other operand, so that the meaning is known "
            "when the function is transformed.")
    return None


operand_guard = primitive("operand_guard", abstract_eval=_operand_guard, differentiable=False,
                          effectful=True)(_operand_guard)
