"""cotan.numpy: the NumPy-compatible namespace.

Owns which names exist and what each is bound to: a registered primitive
(`cotan.numpy.sin is cotan.runtime.PRIMITIVES['sin']`), a composition of
primitives from `_math`, `_arrays` or `linalg` (inlined by cotan's source
transformer), a constant, or a NumPy scalar type.  Plain `numpy` calls in
user code resolve to these names.  This module only binds names; kernels
live in `cotan.runtime`, formulas in the composition modules.  Must not
define functions itself.
"""

import numpy as _np

from ..runtime import elementwise as _ew
from ..runtime.creation import (  # noqa: F401
    arange, array, astype, copy, eye, linspace, ones, ones_like, tri, zeros, zeros_like)
from ..runtime.elementwise import (  # noqa: F401
    absolute, add, arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh,
    bitwise_and, bitwise_or, bitwise_xor, ceil, cos, cosh, divide, equal, exp, expm1,
    floor, floor_divide, fmod, greater, greater_equal, invert, isfinite, isinf, isnan,
    less, less_equal, log, log1p, logical_and, logical_not, logical_or, logical_xor,
    maximum, minimum, multiply, negative, not_equal, power, remainder, rint, round,
    sign, sin, sinh, sqrt, subtract, tan, tanh, trunc)
from ..runtime.linalg_ops import dot, einsum, matmul  # noqa: F401
from ..runtime.reductions import (  # noqa: F401
    all, any, argmax, argmin, cumprod, cumsum, max, min, prod, sum)
from ..runtime.shape_ops import (  # noqa: F401
    argsort, broadcast_to, concatenate, diagonal, flip, nonzero, reshape, searchsorted,
    sort, take, take_along_axis, transpose)
from ..runtime.structural import ndim, shape  # noqa: F401
from . import linalg  # noqa: F401
from ._arrays import (  # noqa: F401
    append, argwhere, array_split, asarray, atleast_1d, atleast_2d, atleast_3d,
    broadcast_arrays, column_stack, concat, cross, diag, diff, dsplit, dstack, empty,
    empty_like, expand_dims, flatnonzero, fliplr, flipud, full, full_like, hsplit, hstack,
    identity, inner, kron, logspace, matrix_transpose, meshgrid, moveaxis, outer, pad,
    permute_dims, ravel, repeat, roll, size, split, squeeze, stack, swapaxes, tensordot,
    tile, trace, tril, triu, vdot, vecdot, vsplit, vstack, where)
from ._math import (  # noqa: F401
    allclose, amax, amin, around, average, cbrt, clip, count_nonzero, deg2rad, degrees,
    divmod, exp2, fabs, fix, float_power, fmax, fmin, heaviside, hypot, isclose,
    isneginf, isposinf, log2, log10, logaddexp, logaddexp2, mean, median, nanmax,
    nanmean, nanmin, nanprod, nansum, positive, ptp, rad2deg, radians, reciprocal, sinc,
    square, std, true_divide, var)

# issue 16's additions (compositions, and the fft / random namespaces)
from . import fft  # noqa: F401,E402
from ._arrays import convolve, correlate, unique  # noqa: F401,E402
from ._math import (  # noqa: F401,E402
    frexp, gradient, histogram, interp, ldexp, nanstd, nanvar, polyval, trapezoid)

# complex numbers (complex16): the parts are primitives, angle a composition
from ..runtime.elementwise import conj, imag, real  # noqa: F401,E402
from ._math import angle  # noqa: F401,E402
conjugate = _ew.conj

# NumPy's other names for the same functions (NumPy binds them to one object too)
abs = _ew.absolute  # noqa: A001
mod = _ew.remainder
pow = _ew.power  # noqa: A001
acos, asin, atan, atan2 = _ew.arccos, _ew.arcsin, _ew.arctan, _ew.arctan2
acosh, asinh, atanh = _ew.arccosh, _ew.arcsinh, _ew.arctanh
bitwise_not = bitwise_invert = _ew.invert

# constants and scalar types are NumPy's own objects
pi, e, inf, nan, euler_gamma, newaxis = _np.pi, _np.e, _np.inf, _np.nan, _np.euler_gamma, None
float16, float32, float64 = _np.float16, _np.float32, _np.float64
int8, int16, int32, int64 = _np.int8, _np.int16, _np.int32, _np.int64
uint8, uint16, uint32, uint64 = _np.uint8, _np.uint16, _np.uint32, _np.uint64
bool_, intp, complex64, complex128 = _np.bool_, _np.intp, _np.complex64, _np.complex128

#: constants (not callable)
CONSTANTS = ("pi", "e", "inf", "nan", "euler_gamma", "newaxis")
#: NumPy scalar types, re-exported as they are
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
          "uint16", "uint32", "uint64", "bool_", "intp", "complex64", "complex128")

__all__ = sorted(
    [n for n, v in list(globals().items())
     if not n.startswith("_") and callable(v) and n not in DTYPES]
) + list(CONSTANTS) + list(DTYPES)
#: the functions of the namespace (what the NumPy sweep test walks)
FUNCTIONS = tuple(n for n in __all__ if n not in CONSTANTS and n not in DTYPES)

# numpy.linalg.eig (eager; see runtime/more_ops.py): bound into cotan.numpy.linalg here
from ..runtime.more_ops import eig as _eig  # noqa: E402
linalg.eig = _eig
if "eig" not in linalg.__all__:
    linalg.__all__.append("eig")
