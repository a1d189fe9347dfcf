"""Elementwise numeric primitives: NumPy ufuncs that are real kernels.

Owns arithmetic, complex parts (`real`, `imag`, `conj`), transcendental functions, rounding, comparisons, logical
and bitwise ops, and `where`/`select`.  Each is a thin call of the NumPy
ufunc (so promotion is NumPy's) with `numeric_rules.elementwise_rule` as its
shape/dtype rule; the primitives Python operators normalize to return a
Python scalar for Python scalar operands, as the operator would.  Functions that are short formulas of these (`square`,
`log2`, `hypot`, `clip`, `logaddexp`, ...) are compositions in
`cotan.numpy`, not primitives here.  Must not hold derivative, batching or
lowering rules (autodiff/ and codegen/ attach those by name).
"""

import numpy as np

from .numeric_rules import elementwise_rule
from .table import primitive


def _python_in_python_out(out, args):
    """Python scalars in, Python scalar out, for the operator primitives.

    Normalization turns `n - 1` into `subtract(n, 1)`; NumPy would return
    an `np.int64`, which NEP 50 treats as a strong dtype, so a later
    `x_f32 / (n - 1)` would silently become float64.  Keeping Python's
    result type keeps Python's and NumPy's promotion what the user wrote.
    """
    if isinstance(out, np.generic) and not any(
            isinstance(a, (np.ndarray, np.generic)) for a in args):
        return out.item()
    return out


def _unary(name, ufunc, differentiable=True, operator=False):
    if operator:
        def impl(x):
            return _python_in_python_out(ufunc(x), (x,))
    else:
        def impl(x):
            return ufunc(x)
    impl.__name__ = impl.__qualname__ = name
    impl.__doc__ = f"{name}(x) == numpy.{ufunc.__name__}(x)."
    return primitive(name, abstract_eval=elementwise_rule(impl),
                     differentiable=differentiable)(impl)


#: Python operators whose meaning on tuples and lists is not elementwise
_SEQUENCE_OPERATORS = {"add": "+", "multiply": "*"}


def _refuse_sequence_operator(name, x, y):
    """Normalization gives `+` / `*` of operands it knows to be tuples or
    lists (`(a,) + (b,)`, `x.shape + (1,)`, `[x] * 3`) primitives of their
    own (`seq_concat`, `seq_repeat`); what reaches `add` / `multiply` as a
    sequence came in unknown (an argument), and NumPy would add or scale it
    elementwise where Python concatenates or repeats: refuse it, saying how
    to make the kind known."""
    seq = (tuple, list)
    if name == "add" and isinstance(x, seq) and isinstance(y, seq):
        what = "concatenation"
    elif name == "multiply" and (isinstance(x, seq) and isinstance(y, (int, np.integer))
                                 or isinstance(y, seq) and isinstance(x, (int, np.integer))) \
            and not isinstance(x, bool) and not isinstance(y, bool):
        what = "repetition"
    else:
        return
    from ..errors import TransformError
    raise TransformError(
        f"`{_SEQUENCE_OPERATORS[name]}` of a {type(x).__name__} and a {type(y).__name__} "
        f"(sequence {what}) of values cotan could not tell were sequences when it "
        "transformed the function (arguments, say): it would be computed elementwise, as "
        "NumPy does, instead of as Python does. Convert them where they come in "
        "(`tuple(a) + tuple(b)`, `list(a) * 2`) so that the meaning is known, or use "
        "np.concatenate for arrays.")


def _binary(name, ufunc, differentiable=True, operator=False):
    if operator and name in _SEQUENCE_OPERATORS:
        def impl(x, y):
            _refuse_sequence_operator(name, x, y)
            return _python_in_python_out(ufunc(x, y), (x, y))
    elif operator:
        def impl(x, y):
            return _python_in_python_out(ufunc(x, y), (x, y))
    else:
        def impl(x, y):
            return ufunc(x, y)
    impl.__name__ = impl.__qualname__ = name
    impl.__doc__ = f"{name}(x, y) == numpy.{ufunc.__name__}(x, y)."
    rule = elementwise_rule(impl)
    if name in _SEQUENCE_OPERATORS:
        shape_rule = rule

        def rule(x, y):
            _refuse_sequence_operator(name, x, y)
            return shape_rule(x, y)
    return primitive(name, abstract_eval=rule, differentiable=differentiable)(impl)


# -- differentiable arithmetic --------------------------------------------------
add = _binary("add", np.add, operator=True)
subtract = _binary("subtract", np.subtract, operator=True)
multiply = _binary("multiply", np.multiply, operator=True)
divide = _binary("divide", np.divide, operator=True)
power = _binary("power", np.power, operator=True)
maximum = _binary("maximum", np.maximum)
minimum = _binary("minimum", np.minimum)
arctan2 = _binary("arctan2", np.arctan2)
# remainder and fmod differ in the sign convention and are both libm-level
# kernels; x - floor(x / y) * y loses precision, so neither is a composition.
remainder = _binary("remainder", np.remainder, operator=True)
fmod = _binary("fmod", np.fmod)
negative = _unary("negative", np.negative, operator=True)
absolute = _unary("absolute", np.absolute, operator=True)

# -- complex parts: real-linear, not holomorphic (their rules say how
# -- cotangents of complex values pair with tangents)
real = _unary("real", np.real)
imag = _unary("imag", np.imag)
conj = _unary("conj", np.conjugate)


def _unit_phase(x):
    """unit_phase(x) == numpy.sign(x) (x / |x| for complex x, 0 at 0); the name abs's rules emit."""
    if np.iscomplexobj(x):
        r = np.abs(x)
        return np.where(r == 0, 0, x / np.where(r == 0, 1, r))
    return np.sign(x)


# sign is piecewise constant for real x, but z / |z| is not for complex z:
# absolute's rules call this differentiable twin so second derivatives of
# |z| see it (its derivative is zero on real values)
unit_phase = primitive("unit_phase", abstract_eval=elementwise_rule(_unit_phase))(_unit_phase)

# -- differentiable transcendental functions ------------------------------------
sin = _unary("sin", np.sin)
cos = _unary("cos", np.cos)
tan = _unary("tan", np.tan)
arcsin = _unary("arcsin", np.arcsin)
arccos = _unary("arccos", np.arccos)
arctan = _unary("arctan", np.arctan)
sinh = _unary("sinh", np.sinh)
cosh = _unary("cosh", np.cosh)
tanh = _unary("tanh", np.tanh)
arcsinh = _unary("arcsinh", np.arcsinh)
arccosh = _unary("arccosh", np.arccosh)
arctanh = _unary("arctanh", np.arctanh)
exp = _unary("exp", np.exp)
# expm1 and log1p stay kernels: their point is accuracy near 0, which the
# formulas exp(x) - 1 and log(1 + x) lose.
expm1 = _unary("expm1", np.expm1)
log = _unary("log", np.log)
log1p = _unary("log1p", np.log1p)
sqrt = _unary("sqrt", np.sqrt)

# -- piecewise constant (no derivative) ----------------------------------------
sign = _unary("sign", np.sign, differentiable=False)
floor = _unary("floor", np.floor, differentiable=False)
ceil = _unary("ceil", np.ceil, differentiable=False)
trunc = _unary("trunc", np.trunc, differentiable=False)
rint = _unary("rint", np.rint, differentiable=False)
floor_divide = _binary("floor_divide", np.floor_divide, differentiable=False, operator=True)


def _round(x, decimals=0):
    """round(x, decimals=0) == numpy.round(x, decimals)."""
    return np.round(x, decimals)


round = primitive("round", abstract_eval=elementwise_rule(_round),  # noqa: A001
                  differentiable=False)(_round)

# -- predicates, comparisons, logic (boolean or integer results) ---------------
isnan = _unary("isnan", np.isnan, differentiable=False)
isinf = _unary("isinf", np.isinf, differentiable=False)
isfinite = _unary("isfinite", np.isfinite, differentiable=False)
equal = _binary("equal", np.equal, differentiable=False, operator=True)
not_equal = _binary("not_equal", np.not_equal, differentiable=False, operator=True)
less = _binary("less", np.less, differentiable=False, operator=True)
less_equal = _binary("less_equal", np.less_equal, differentiable=False, operator=True)
greater = _binary("greater", np.greater, differentiable=False, operator=True)
greater_equal = _binary("greater_equal", np.greater_equal, differentiable=False, operator=True)
logical_and = _binary("logical_and", np.logical_and, differentiable=False)
logical_or = _binary("logical_or", np.logical_or, differentiable=False)
logical_xor = _binary("logical_xor", np.logical_xor, differentiable=False)
logical_not = _unary("logical_not", np.logical_not, differentiable=False, operator=True)
bitwise_and = _binary("bitwise_and", np.bitwise_and, differentiable=False, operator=True)
bitwise_or = _binary("bitwise_or", np.bitwise_or, differentiable=False, operator=True)
bitwise_xor = _binary("bitwise_xor", np.bitwise_xor, differentiable=False, operator=True)
invert = _unary("invert", np.invert, differentiable=False, operator=True)


# -- selection -----------------------------------------------------------------
def _where(condition, x, y):
    """where(condition, x, y) == numpy.where(condition, x, y) (the three-argument form)."""
    return np.where(condition, x, y)


where = primitive("where", abstract_eval=elementwise_rule(_where))(_where)


def _select(condition, x, y):
    """select(condition, x, y) == numpy.where(condition, x, y); the name rules emit.

    Not numpy.select: derivative and batching rules emit `select` for their
    own masking so a user's `where` and a rule's mask stay distinguishable
    in generated code.
    """
    return np.where(condition, x, y)


select = primitive("select", abstract_eval=elementwise_rule(_select))(_select)
