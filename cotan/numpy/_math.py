"""Elementwise and reduction compositions of `cotan.numpy`.

Owns the NumPy functions that are short formulas of primitives: `square`,
`log2`, `hypot`, `logaddexp`, `clip`, `heaviside`, `isclose`, `mean`,
`var`, `std`, `median`, the nan-reductions, ...  cotan's source
transformer inlines these bodies, so they are written in the composition
subset only: primitive and composition calls, operators, `if` on runtime
values or on static parameters, loops, literals, subscripts and returns;
static shape arithmetic goes through `static_*` primitives.  Python
numeric constants stay Python scalars so NEP 50 keeps the array's dtype
(`multiply(log(x), 1.44...)` stays float32 for float32 x).  Must not call
NumPy directly or define primitives.
"""

from ..runtime.creation import astype, zeros_like
from ..runtime.elementwise import (
    absolute, add, divide, equal, exp, floor_divide, greater, isinf, isnan, less,
    less_equal, log, log1p, logical_and, logical_not, logical_or, maximum, minimum,
    multiply, power, remainder, round, sign, sin, sqrt, subtract, trunc, where)
from ..runtime.reductions import all, max, min, prod, sum
from ..runtime.shape_ops import broadcast_to, reshape, sort, take
from ..runtime.static_helpers import (
    static_axis_vector_shape, static_highest, static_lowest,
    static_normalize_axis,
    static_reduced_count, static_reduced_shape)
from ..runtime.structural import dtype as dtype_of
from ..runtime.structural import ndim, shape

_LOG2_E = 1.4426950408889634     # 1 / ln 2
_LOG10_E = 0.4342944819032518    # 1 / ln 10
_LN_2 = 0.6931471805599453
_PI = 3.141592653589793


# -- elementwise -----------------------------------------------------------------

def true_divide(x1, x2):
    """numpy.true_divide: the same ufunc as divide."""
    return divide(x1, x2)


def positive(x):
    """numpy.positive(x) == +x."""
    return multiply(x, 1)


def square(x):
    """numpy.square(x) == x * x."""
    return multiply(x, x)


def reciprocal(x):
    """numpy.reciprocal(x) == 1 / x (for float x; NumPy's integer reciprocal truncates instead)."""
    return divide(1.0, x)


def exp2(x):
    """numpy.exp2(x) == 2 ** x."""
    return power(2.0, x)


def log2(x):
    """numpy.log2(x) == log(x) / ln 2."""
    return multiply(log(x), _LOG2_E)


def log10(x):
    """numpy.log10(x) == log(x) / ln 10."""
    return multiply(log(x), _LOG10_E)


def cbrt(x):
    """numpy.cbrt(x) == sign(x) * |x| ** (1/3)."""
    return multiply(sign(x), power(absolute(x), 0.3333333333333333))


def fabs(x):
    """numpy.fabs(x) == |x| as a float."""
    return multiply(absolute(x), 1.0)


def deg2rad(x):
    """numpy.deg2rad(x) == x * pi / 180."""
    return multiply(x, 0.017453292519943295)


def rad2deg(x):
    """numpy.rad2deg(x) == x * 180 / pi."""
    return multiply(x, 57.29577951308232)


def radians(x):
    """numpy.radians: the same ufunc as deg2rad."""
    return deg2rad(x)


def degrees(x):
    """numpy.degrees: the same ufunc as rad2deg."""
    return rad2deg(x)


def sinc(x):
    """numpy.sinc(x) == sin(pi x) / (pi x), 1 at 0."""
    at_zero = equal(x, 0)
    # dividing by a safe stand-in keeps the unused branch free of 0/0
    y = multiply(where(at_zero, 1.0, x), _PI)
    return where(at_zero, 1.0, divide(sin(y), y))


def hypot(x1, x2):
    """numpy.hypot(x1, x2) == sqrt(x1**2 + x2**2)."""
    return sqrt(add(multiply(x1, x1), multiply(x2, x2)))


def logaddexp(x1, x2):
    """numpy.logaddexp(x1, x2) == log(exp(x1) + exp(x2)), computed stably."""
    d = subtract(x1, x2)
    stable = where(less(x1, x2), _log1p_exp_above(x2, d, 1.0), _log1p_exp_above(x1, d, -1.0))
    # d is nan when both are the same infinity (or a nan): x1 + x2 is then right
    return where(isnan(d), add(x1, x2), stable)


def logaddexp2(x1, x2):
    """numpy.logaddexp2(x1, x2) == log2(2**x1 + 2**x2), computed stably."""
    d = subtract(x1, x2)
    stable = where(less(x1, x2), _log1p_exp2_above(x2, d, 1.0),
                   _log1p_exp2_above(x1, d, -1.0))
    return where(isnan(d), add(x1, x2), stable)


def _log1p_exp_above(hi, d, s):
    """hi + log1p(exp(s d)) for the branch where s d <= 0 (helper of
    logaddexp).  Each branch is the analytic function itself, so its
    derivatives are exact up to any order, and at x1 == x2 each argument
    gets half; max(x1, x2) + log1p(exp(-|d|)) would give one argument all
    of it there (the kinks of max and |d| do not cancel).  The clamp at 0
    keeps the branch `where` discards finite (so its zero cotangent stays
    zero) and passes the derivative of d at the tie."""
    return add(hi, log1p(exp(minimum(multiply(d, s), 0.0))))


def _log1p_exp2_above(hi, d, s):
    """hi + log2(1 + 2**(s d)) for s d <= 0 (helper of logaddexp2)."""
    return add(hi, multiply(log1p(power(2.0, minimum(multiply(d, s), 0.0))), _LOG2_E))


def fmax(x1, x2):
    """numpy.fmax(x1, x2): maximum that ignores a nan operand."""
    return where(isnan(x1), x2, where(isnan(x2), x1, maximum(x1, x2)))


def fmin(x1, x2):
    """numpy.fmin(x1, x2): minimum that ignores a nan operand."""
    return where(isnan(x1), x2, where(isnan(x2), x1, minimum(x1, x2)))


def float_power(x1, x2):
    """numpy.float_power(x1, x2) == power in float64."""
    return power(astype(x1, "float64"), astype(x2, "float64"))


def fix(x):
    """numpy.fix(x): round toward zero (== trunc)."""
    return trunc(x)


def around(a, decimals=0):
    """numpy.around: the same function as round."""
    return round(a, decimals)


def divmod(x1, x2):  # noqa: A001
    """numpy.divmod(x1, x2) == (x1 // x2, x1 % x2)."""
    return floor_divide(x1, x2), remainder(x1, x2)


def heaviside(x1, x2):
    """numpy.heaviside(x1, x2): 0 for x1 < 0, x2 at 0, 1 for x1 > 0, nan for nan."""
    h = add(zeros_like(x1), x2)      # x2 broadcast, in the promoted dtype
    zero = zeros_like(h)
    step = where(less(x1, 0), zero, where(greater(x1, 0), add(zero, 1), h))
    return where(isnan(x1), add(x1, zero), step)


def isposinf(x):
    """numpy.isposinf(x) == isinf(x) & (x > 0)."""
    return logical_and(isinf(x), greater(x, 0))


def isneginf(x):
    """numpy.isneginf(x) == isinf(x) & (x < 0)."""
    return logical_and(isinf(x), less(x, 0))


def clip(a, a_min=None, a_max=None):
    """numpy.clip(a, a_min, a_max) == minimum(maximum(a, a_min), a_max)."""
    if a_min is not None:
        a = maximum(a, a_min)
    if a_max is not None:
        a = minimum(a, a_max)
    return a


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """numpy.isclose(a, b, rtol, atol, equal_nan): |a - b| <= atol + rtol |b|, equal infinities close."""
    within = less_equal(absolute(subtract(a, b)), add(atol, multiply(rtol, absolute(b))))
    close = logical_or(equal(a, b), within)
    if equal_nan:
        close = logical_or(close, logical_and(isnan(a), isnan(b)))
    return close


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """numpy.allclose(a, b, ...) == all(isclose(a, b, ...))."""
    return all(isclose(a, b, rtol, atol, equal_nan))


# -- reductions ----------------------------------------------------------------------

def amax(a, axis=None, keepdims=False):
    """numpy.amax: the same function as max."""
    return max(a, axis=axis, keepdims=keepdims)


def amin(a, axis=None, keepdims=False):
    """numpy.amin: the same function as min."""
    return min(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, dtype=None, keepdims=False):
    """numpy.mean(a, axis, dtype, keepdims=keepdims) == sum / count."""
    total = sum(a, axis=axis, keepdims=keepdims, dtype=dtype)
    return divide(total, static_reduced_count(shape(a), axis))


def var(a, axis=None, dtype=None, ddof=0, keepdims=False):
    """numpy.var(a, axis, dtype, ddof=ddof, keepdims=keepdims) == sum((a - mean)**2) / (n - ddof)."""
    d = subtract(a, mean(a, axis=axis, dtype=dtype, keepdims=True))
    total = sum(multiply(d, d), axis=axis, keepdims=keepdims)
    return divide(total, static_reduced_count(shape(a), axis, ddof))


def std(a, axis=None, dtype=None, ddof=0, keepdims=False):
    """numpy.std(a, axis, dtype, ddof=ddof, keepdims=keepdims) == sqrt(var)."""
    return sqrt(var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


def ptp(a, axis=None, keepdims=False):
    """numpy.ptp(a, axis, keepdims=keepdims) == max - min."""
    return subtract(max(a, axis=axis, keepdims=keepdims), min(a, axis=axis, keepdims=keepdims))


def median(a, axis=None, keepdims=False):
    """numpy.median(a, axis, keepdims=keepdims): mean of the middle one or two sorted values (nan not propagated)."""
    if axis is None:
        flat = reshape(a, (-1,))
        ax = 0
    else:
        flat = a
        ax = static_normalize_axis(axis, ndim(a))
    n = shape(flat)[ax]
    middle = take(sort(flat, axis=ax), ((n - 1) // 2, n // 2), axis=ax)
    m = mean(middle, axis=ax)
    if keepdims:
        m = reshape(m, static_reduced_shape(shape(a), axis, True))
    return m


def nansum(a, axis=None, dtype=None, keepdims=False):
    """numpy.nansum(a, axis, dtype, keepdims=keepdims): sum treating nan as 0."""
    return sum(where(isnan(a), 0, a), axis=axis, dtype=dtype, keepdims=keepdims)


def nanprod(a, axis=None, dtype=None, keepdims=False):
    """numpy.nanprod(a, axis, dtype, keepdims=keepdims): product treating nan as 1."""
    return prod(where(isnan(a), 1, a), axis=axis, dtype=dtype, keepdims=keepdims)


def nanmean(a, axis=None, dtype=None, keepdims=False):
    """numpy.nanmean(a, axis, dtype, keepdims=keepdims): mean over the non-nan values."""
    total = nansum(a, axis=axis, dtype=dtype, keepdims=keepdims)
    count = sum(logical_not(isnan(a)), axis=axis, keepdims=keepdims)
    return divide(total, astype(count, dtype_of(total)))


def nanmax(a, axis=None, keepdims=False):
    """numpy.nanmax(a, axis, keepdims=keepdims): max ignoring nan (nan where all are nan)."""
    m = max(where(isnan(a), static_lowest(dtype_of(a)), a), axis=axis, keepdims=keepdims)
    all_nan = all(isnan(a), axis=axis, keepdims=keepdims)
    return where(all_nan, max(a, axis=axis, keepdims=keepdims), m)


def nanmin(a, axis=None, keepdims=False):
    """numpy.nanmin(a, axis, keepdims=keepdims): min ignoring nan (nan where all are nan)."""
    m = min(where(isnan(a), static_highest(dtype_of(a)), a), axis=axis, keepdims=keepdims)
    all_nan = all(isnan(a), axis=axis, keepdims=keepdims)
    return where(all_nan, min(a, axis=axis, keepdims=keepdims), m)


def count_nonzero(a, axis=None, keepdims=False):
    """numpy.count_nonzero(a, axis, keepdims=keepdims) == sum(a != 0)."""
    return sum(_not_equal_zero(a), axis=axis, keepdims=keepdims)


def _not_equal_zero(a):
    """a != 0 (helper of count_nonzero)."""
    return logical_not(equal(a, 0))


def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """numpy.average(a, axis, weights, returned, keepdims=keepdims): weighted mean."""
    if weights is None:
        avg = mean(a, axis=axis, keepdims=keepdims)
        scale = add(zeros_like(avg), static_reduced_count(shape(a), axis))
    else:
        w = weights
        if ndim(weights) != ndim(a):
            w = reshape(weights, static_axis_vector_shape(ndim(a), axis, shape(weights)[0]))
        scale = sum(broadcast_to(w, shape(a)), axis=axis, keepdims=keepdims)
        avg = divide(sum(multiply(a, w), axis=axis, keepdims=keepdims), scale)
    if returned:
        return avg, scale
    return avg

