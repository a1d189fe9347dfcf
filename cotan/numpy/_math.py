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
from ..runtime.elementwise import arctan2, conj, imag, real
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
    """numpy.var(a, axis, dtype, ddof=ddof, keepdims=keepdims) == sum(|a - mean|**2) / (n - ddof)."""
    d = subtract(a, mean(a, axis=axis, dtype=dtype, keepdims=True))
    # |d|^2, real for complex a as NumPy's (real and conj: identities on real a)
    total = sum(real(multiply(conj(d), d)), axis=axis, keepdims=keepdims)
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



# -- issue 16: nan statistics, exponent splitting, polynomials, interpolation,
# -- integration, differences and histograms (compositions; jit and every
# -- transformation come from the primitives they call)

from ..runtime.creation import arange, linspace  # noqa: E402
from ..runtime.elementwise import floor, isfinite, not_equal  # noqa: E402
from ..runtime.adjoint_helpers import stop_gradient  # noqa: E402
from ..runtime.shape_ops import argsort, concatenate, searchsorted  # noqa: E402
from ..runtime.structural import length, list_append, to_tuple  # noqa: E402
from ..runtime.more_ops import static_gradient_axes  # noqa: E402
from ..runtime.shape_ops import transpose  # noqa: E402
from ..runtime.static_helpers import static_moveaxis_perm  # noqa: E402
from ._arrays import ravel  # noqa: E402


def nanvar(a, axis=None, dtype=None, ddof=0, keepdims=False):
    """numpy.nanvar(a, axis, dtype, ddof=ddof, keepdims=keepdims): variance over the non-nan values."""
    missing = isnan(a)
    filled = where(missing, 0, a)
    count = sum(logical_not(missing), axis=axis, keepdims=True)
    total_kept = sum(filled, axis=axis, dtype=dtype, keepdims=True)
    # the count in the sum's dtype: an int64 array would promote float32 to float64
    avg = divide(total_kept, astype(count, dtype_of(total_kept)))
    dev = where(missing, 0, subtract(filled, avg))
    total = sum(real(multiply(conj(dev), dev)), axis=axis, dtype=dtype, keepdims=keepdims)
    n = sum(logical_not(missing), axis=axis, keepdims=keepdims)
    return divide(total, astype(subtract(n, ddof), dtype_of(total)))


def nanstd(a, axis=None, dtype=None, ddof=0, keepdims=False):
    """numpy.nanstd(a, axis, dtype, ddof=ddof, keepdims=keepdims) == sqrt(nanvar)."""
    return sqrt(nanvar(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


def ldexp(x1, x2):
    """numpy.ldexp(x1, x2) == x1 * 2**x2, exact (the power is split in two so it cannot overflow first)."""
    x = multiply(x1, 1.0)
    half = floor_divide(x2, 2)
    scaled = multiply(multiply(x, power(2.0, astype(half, "float64"))),
                      power(2.0, astype(subtract(x2, half), "float64")))
    return astype(scaled, dtype_of(x))


def frexp(x):
    """numpy.frexp(x) == (mantissa in [0.5, 1), int32 exponent) with x == mantissa * 2**exponent."""
    xf = multiply(x, 1.0)
    regular = logical_and(isfinite(xf), not_equal(xf, 0))
    magnitude = astype(absolute(where(regular, xf, 1.0)), "float64")
    e = add(floor(multiply(log(magnitude), _LOG2_E)), 1.0)
    # log2 may round across a power of two: one correction step either way
    m = divide(magnitude, power(2.0, e))
    e = add(e, subtract(astype(_at_least_one(m), "float64"), astype(less(m, 0.5), "float64")))
    mantissa = astype(divide(astype(xf, "float64"), power(2.0, e)), dtype_of(xf))
    return (where(regular, mantissa, xf),
            astype(where(regular, e, 0.0), "int32"))


def _at_least_one(m):
    """m >= 1 (helper of frexp)."""
    return logical_not(less(m, 1.0))


def polyval(p, x):
    """numpy.polyval(p, x): p[0] * x**(n-1) + ... + p[n-1], by Horner's rule."""
    y = zeros_like(x)
    for i in range(length(p)):
        y = add(multiply(y, x), p[i])
    return y


def interp(x, xp, fp, left=None, right=None, period=None):
    """numpy.interp(x, xp, fp, left, right, period): piecewise-linear interpolation on increasing xp."""
    x = astype(x, "float64")
    xp = astype(xp, "float64")
    fp = astype(fp, "float64")
    if period is not None:
        x = remainder(x, period)
        xp = remainder(xp, period)
        order = argsort(xp)
        xp = take(xp, order)
        fp = take(fp, order)
        xp = concatenate((subtract(xp[-1:], period), xp, add(xp[0:1], period)))
        fp = concatenate((fp[-1:], fp, fp[0:1]))
    n = length(xp)
    j = minimum(maximum(subtract(searchsorted(xp, x, "right"), 1), 0), n - 2)
    x0 = take(xp, j)
    f0 = take(fp, j)
    slope = divide(subtract(take(fp, add(j, 1)), f0), subtract(take(xp, add(j, 1)), x0))
    y = add(multiply(slope, subtract(x, x0)), f0)
    # NumPy returns the tabulated value at a node (no 0 * inf there)
    y = where(equal(x, x0), f0, y)
    y = where(equal(x, xp[-1]), fp[-1], y)
    if period is None:
        lo = fp[0]
        hi = fp[-1]
        if left is not None:
            lo = left
        if right is not None:
            hi = right
        y = where(less(x, xp[0]), lo, where(greater(x, xp[-1]), hi, y))
    return y


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """numpy.trapezoid(y, x, dx, axis): the trapezoidal rule along axis."""
    yl = _axis_last(y, axis)
    if x is None:
        d = dx
    elif ndim(x) == 1:
        d = subtract(x[1:], x[:-1])
    else:
        xl = _axis_last(x, axis)
        d = subtract(xl[..., 1:], xl[..., :-1])
    return sum(divide(multiply(d, add(yl[..., 1:], yl[..., :-1])), 2.0), axis=-1)


def gradient(f, *varargs, axis=None, edge_order=1):
    """numpy.gradient(f, *varargs, axis, edge_order): central differences inside, one-sided at the ends."""
    axes = static_gradient_axes(ndim(f), axis, length(varargs))
    out = []
    for k in range(length(axes)):
        spacing = 1.0
        if length(varargs) == 1:
            spacing = varargs[0]
        if length(varargs) > 1:
            spacing = varargs[k]
        g = _gradient_last(_axis_last(multiply(f, 1.0), axes[k]), spacing, edge_order)
        out = list_append(out, transpose(g, axes=static_moveaxis_perm(ndim(g), -1, axes[k])))
    if length(out) == 1:
        return out[0]
    return to_tuple(out)


def _axis_last(a, axis):
    """a with `axis` moved last (the permutation passed by keyword, which
    every transformation keeps)."""
    return transpose(a, axes=static_moveaxis_perm(ndim(a), axis, -1))


def _gradient_last(f, h, edge_order):
    """numpy.gradient of f along its last axis with spacing h (a scalar or coordinates)."""
    if ndim(h) == 0:
        inner = divide(subtract(f[..., 2:], f[..., :-2]), multiply(h, 2.0))
        if edge_order == 1:
            first = divide(subtract(f[..., 1:2], f[..., 0:1]), h)
            last = divide(subtract(f[..., -1:], f[..., -2:-1]), h)
        else:
            first = divide(add(add(multiply(f[..., 0:1], -1.5), multiply(f[..., 1:2], 2.0)),
                               multiply(f[..., 2:3], -0.5)), h)
            last = divide(add(add(multiply(f[..., -1:], 1.5), multiply(f[..., -2:-1], -2.0)),
                              multiply(f[..., -3:-2], 0.5)), h)
        return concatenate((first, inner, last), axis=-1)
    dx = subtract(h[1:], h[:-1])
    dx1 = dx[:-1]
    dx2 = dx[1:]
    a = divide(multiply(dx2, -1.0), multiply(dx1, add(dx1, dx2)))
    b = divide(subtract(dx2, dx1), multiply(dx1, dx2))
    c = divide(dx1, multiply(dx2, add(dx1, dx2)))
    inner = add(add(multiply(a, f[..., :-2]), multiply(b, f[..., 1:-1])), multiply(c, f[..., 2:]))
    if edge_order == 1:
        first = divide(subtract(f[..., 1:2], f[..., 0:1]), dx[0])
        last = divide(subtract(f[..., -1:], f[..., -2:-1]), dx[-1])
    else:
        d1 = dx[0]
        d2 = dx[1]
        a0 = divide(add(multiply(d1, -2.0), multiply(d2, -1.0)), multiply(d1, add(d1, d2)))
        b0 = divide(add(d1, d2), multiply(d1, d2))
        c0 = divide(multiply(d1, -1.0), multiply(d2, add(d1, d2)))
        first = add(add(multiply(a0, f[..., 0:1]), multiply(b0, f[..., 1:2])),
                    multiply(c0, f[..., 2:3]))
        e1 = dx[-2]
        e2 = dx[-1]
        an = divide(e2, multiply(e1, add(e1, e2)))
        bn = divide(multiply(add(e2, e1), -1.0), multiply(e1, e2))
        cn = divide(add(multiply(e2, 2.0), e1), multiply(e2, add(e1, e2)))
        last = add(add(multiply(an, f[..., -3:-2]), multiply(bn, f[..., -2:-1])),
                   multiply(cn, f[..., -1:]))
    return concatenate((first, inner, last), axis=-1)


def histogram(a, bins=10, range=None, density=None, weights=None):  # noqa: A002
    """numpy.histogram(a, bins, range, density, weights) == (counts, edges); carries no derivative."""
    flat = stop_gradient(ravel(a))
    if ndim(bins) == 0:
        if range is None:
            lo = min(flat)
            hi = max(flat)
        else:
            lo = range[0]
            hi = range[1]
        lo = astype(lo, "float64")
        hi = astype(hi, "float64")
        same = equal(lo, hi)
        lo = where(same, subtract(lo, 0.5), lo)
        hi = where(same, add(hi, 0.5), hi)
        edges = linspace(lo, hi, bins + 1)
        nbins = bins
    else:
        edges = stop_gradient(astype(bins, "float64"))
        nbins = length(bins) - 1
    inside = logical_and(less_equal(edges[0], flat), less_equal(flat, edges[-1]))
    # the last bin is closed: a value on the last edge counts in it
    j = minimum(subtract(searchsorted(edges, flat, "right"), 1), nbins - 1)
    hits = logical_and(equal(reshape(j, (-1, 1)), reshape(arange(nbins), (1, -1))),
                       reshape(inside, (-1, 1)))
    if weights is None:
        counts = sum(hits, axis=0)
    else:
        w = stop_gradient(ravel(weights))
        counts = sum(where(hits, reshape(w, (-1, 1)), 0), axis=0)
    if density:
        widths = subtract(edges[1:], edges[:-1])
        counts = divide(divide(counts, sum(counts)), widths)
    return counts, edges


# -- complex numbers (complex16) ----------------------------------------------------

def angle(z, deg=False):
    """numpy.angle(z, deg) == arctan2(imag(z), real(z)), in degrees when deg."""
    a = arctan2(imag(z), real(z))
    if deg:
        return multiply(a, 57.29577951308232)
    return a
