"""cotan.scipy.special: the common functions of `scipy.special`.

Owns `expit`, `logit`, `xlogy`, `logsumexp` (compositions of primitives,
written so their unused branches stay finite and their derivatives stay
nan-free) and `erf`, `gammaln`, `digamma`, `polygamma` (primitives of
`runtime/more_ops.py` with rules in `autodiff/fft_rules.py`, registered only
when SciPy is importable; importing this module without SciPy raises
ImportError saying so).  Written in the composition subset cotan's source
transformer inlines (see `cotan.numpy._math`); must not call SciPy or
NumPy directly or define primitives.
"""

from ..runtime import more_ops as _more_ops

if not _more_ops.SPECIAL_PRIMITIVES:
    raise ImportError("cotan.scipy.special needs SciPy: install scipy")

from ..runtime.adjoint_helpers import stop_gradient  # noqa: E402
from ..runtime.elementwise import (  # noqa: E402
    absolute, add, divide, equal, exp, greater_equal, isfinite, isnan, log, logical_and,
    logical_not, multiply, sign, subtract, where)
from ..runtime.more_ops import erf, gammaln, polygamma  # noqa: E402,F401
from ..runtime.reductions import max, sum  # noqa: E402
from ..runtime.shape_ops import reshape  # noqa: E402
from ..runtime.static_helpers import static_reduced_shape  # noqa: E402
from ..runtime.structural import shape  # noqa: E402

__all__ = ["expit", "logit", "xlogy", "logsumexp", "erf", "gammaln", "digamma", "polygamma"]


def expit(x):
    """scipy.special.expit(x) == 1 / (1 + exp(-x)), without overflow for large |x|."""
    # exp(-|x|), spelled with where so the derivative at 0 is not abs's kink
    e = exp(where(greater_equal(x, 0), multiply(x, -1.0), x))
    return where(greater_equal(x, 0), divide(1.0, add(1.0, e)), divide(e, add(1.0, e)))


def logit(p):
    """scipy.special.logit(p) == log(p / (1 - p))."""
    return log(divide(p, subtract(1.0, p)))


def xlogy(x, y):
    """scipy.special.xlogy(x, y) == x * log(y), and 0 where x == 0 (unless y is nan)."""
    zero = logical_and(equal(x, 0), logical_not(isnan(y)))
    safe_y = where(zero, 1.0, y)
    return where(zero, 0.0, multiply(x, log(safe_y)))


def digamma(x):
    """scipy.special.digamma(x) == polygamma(0, x)."""
    return polygamma(0, x)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """scipy.special.logsumexp(a, axis, b, keepdims, return_sign): log(sum(b * exp(a))) computed stably."""
    m = max(a, axis=axis, keepdims=True)
    # the shift cancels in value and derivative: keep it out of the gradient
    m = stop_gradient(where(isfinite(m), m, 0.0))
    terms = exp(subtract(a, m))
    if b is not None:
        terms = multiply(b, terms)
    s = sum(terms, axis=axis, keepdims=True)
    if return_sign:
        sgn = sign(s)
        s = absolute(s)
    out = add(log(s), m)
    if not keepdims:
        out = reshape(out, static_reduced_shape(shape(a), axis, False))
        if return_sign:
            sgn = reshape(sgn, static_reduced_shape(shape(a), axis, False))
    if return_sign:
        return out, sgn
    return out
