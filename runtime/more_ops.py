"""Kernels added for issue 16's NumPy coverage that are not formulas of
other primitives.

Owns the eager kernels and shape rules of: the counter-based random number
primitives behind `cotan.random` (`random_*`), `unique_plan` (the index
arrays of `numpy.unique`), `eig` (`numpy.linalg.eig`) and, when SciPy is
installed, the special functions `erf`, `gammaln` and `polygamma`.
Everything else issue 16 added is a composition in `cotan.numpy`.  Must
not hold derivative, batching or lowering rules (autodiff/fft_rules.py).

Random streams.  A key is a uint32 array of shape (2,) (a batch of keys:
shape (..., 2)).  Every draw builds a fresh `numpy.random.Philox` whose
128-bit key is the cotan key's 64 bits plus a tag naming the operation, so
a result depends only on (key, operation, arguments): reproducible and
independent of call order, as JAX's keys are.
"""

import importlib.util

import numpy as np

from ..errors import ShapeError
from .numeric_rules import by_running, concrete_only
from .table import primitive

_TAGS = {"split": 1, "fold_in": 2, "normal": 3, "uniform": 4, "randint": 5,
         "bernoulli": 6, "permutation": 7}


def _key_words(key, what):
    k = np.asarray(key)
    if k.shape != (2,) or k.dtype != np.uint32:
        raise ShapeError(f"cotan.random.{what}: a key is a uint32 array of shape (2,) (from "
                         f"cotan.random.PRNGKey or split), got {k.dtype} {k.shape}; under "
                         "vmap, map over the leading axis of a (n, 2) batch of keys")
    return (int(k[0]) << 32) | int(k[1])


def _generator(key, what, counter=0):
    words = np.array([_key_words(key, what), _TAGS[what]], dtype=np.uint64)
    return np.random.Generator(np.random.Philox(
        key=words, counter=np.array([counter, 0, 0, 0], dtype=np.uint64)))


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _random_key(seed):
    """random_key(seed): the key of an integer seed (JAX's PRNGKey)."""
    s = int(seed) & 0xFFFFFFFFFFFFFFFF
    return np.array([s >> 32, s & 0xFFFFFFFF], dtype=np.uint32)


def _random_split(key, num=2):
    """random_split(key, num): num new keys, shape (num, 2)."""
    return _generator(key, "split").integers(0, 2 ** 32, size=(int(num), 2), dtype=np.uint32)


def _random_fold_in(key, data):
    """random_fold_in(key, data): a new key from key and an integer."""
    return _generator(key, "fold_in", int(data) & 0xFFFFFFFFFFFFFFFF).integers(
        0, 2 ** 32, size=2, dtype=np.uint32)


def _random_normal(key, shape=(), dtype="float64"):
    """random_normal(key, shape, dtype): standard normal samples."""
    return np.asarray(_generator(key, "normal").standard_normal(
        _shape(shape), dtype=np.dtype(dtype)))


def _random_uniform(key, shape=(), dtype="float64", minval=0.0, maxval=1.0):
    """random_uniform(key, shape, dtype, minval, maxval): uniform samples in [minval, maxval)."""
    dt = np.dtype(dtype)
    u = _generator(key, "uniform").random(_shape(shape), dtype=dt)
    lo, hi = np.asarray(minval, dt), np.asarray(maxval, dt)
    return np.asarray(np.broadcast_to(lo + u * (hi - lo), np.broadcast_shapes(
        _shape(shape), lo.shape, hi.shape)).astype(dt))


def _random_randint(key, shape, minval, maxval, dtype="int64"):
    """random_randint(key, shape, minval, maxval, dtype): integers in [minval, maxval)."""
    return np.asarray(_generator(key, "randint").integers(
        minval, maxval, size=_shape(shape), dtype=np.dtype(dtype)))


def _random_bernoulli(key, p=0.5, shape=None):
    """random_bernoulli(key, p, shape): booleans, True with probability p."""
    p = np.asarray(p)
    s = p.shape if shape is None else _shape(shape)
    return np.asarray(_generator(key, "bernoulli").random(s) < p)


def _random_permutation(key, n):
    """random_permutation(key, n): a random permutation of range(n)."""
    return _generator(key, "permutation").permutation(int(n))


def _unique_plan(ar, axis=None, equal_nan=True):
    """unique_plan(ar, axis, equal_nan): (index, inverse, counts) of numpy.unique on ar."""
    if axis is not None:
        raise ShapeError("numpy.unique: only axis=None (unique elements of the flattened "
                         "array) is supported by cotan; reshape or loop over the axis instead")
    _, index, inverse, counts = np.unique(ar, return_index=True, return_inverse=True,
                                          return_counts=True, equal_nan=equal_nan)
    return index, inverse, counts


def _eig(a):
    """eig(a) == numpy.linalg.eig(a) as a plain tuple (w, v)."""
    w, v = np.linalg.eig(a)
    return w, v


_RANDOM = [("random_key", _random_key), ("random_split", _random_split),
           ("random_fold_in", _random_fold_in), ("random_normal", _random_normal),
           ("random_uniform", _random_uniform), ("random_randint", _random_randint),
           ("random_bernoulli", _random_bernoulli), ("random_permutation", _random_permutation)]
_made = {name: primitive(name, abstract_eval=by_running(impl), differentiable=False)(impl)
         for name, impl in _RANDOM}
random_key = _made["random_key"]
random_split = _made["random_split"]
random_fold_in = _made["random_fold_in"]
random_normal = _made["random_normal"]
random_uniform = _made["random_uniform"]
random_randint = _made["random_randint"]
random_bernoulli = _made["random_bernoulli"]
random_permutation = _made["random_permutation"]
RANDOM_PRIMITIVES = tuple(name for name, _ in _RANDOM)

unique_plan = primitive("unique_plan", differentiable=False, abstract_eval=concrete_only(
    _unique_plan, "numpy.unique's output length depends on the input's values; not "
    "supported under jit"))(_unique_plan)
# the dtype of eig's result (real or complex) depends on the values
eig = primitive("eig", abstract_eval=concrete_only(
    _eig, "numpy.linalg.eig's result is real or complex depending on the values; not "
    "supported under jit"))(_eig)

# SciPy is optional (cotan.scipy.special needs it) and slow to import: the
# primitives exist when it is installed, and import it at their first call
_HAVE_SCIPY = importlib.util.find_spec("scipy") is not None


def _special():
    import scipy.special
    return scipy.special


SPECIAL_PRIMITIVES = ()
if _HAVE_SCIPY:
    def _erf(x):
        """erf(x) == scipy.special.erf(x)."""
        return _special().erf(x)

    def _gammaln(x):
        """gammaln(x) == scipy.special.gammaln(x), log |Gamma(x)|."""
        return _special().gammaln(x)

    def _polygamma(k, x):
        """polygamma(k, x) == scipy.special.polygamma(k, x) (k = 0: digamma)."""
        out = _special().polygamma(k, x)
        # scipy computes in float64; keep the argument's precision as its ufuncs do
        return out.astype(np.result_type(x, np.float16)) if isinstance(out, np.ndarray) \
            else np.result_type(x, np.float16).type(out)

    erf = primitive("erf", abstract_eval=by_running(_erf))(_erf)
    gammaln = primitive("gammaln", abstract_eval=by_running(_gammaln))(_gammaln)
    polygamma = primitive("polygamma", abstract_eval=by_running(_polygamma))(_polygamma)
    SPECIAL_PRIMITIVES = ("erf", "gammaln", "polygamma")


def _static_gradient_axes(ndim, axis, nspacing):
    """static_gradient_axes(ndim, axis, nspacing) == the axes numpy.gradient differentiates along, checked against the number of spacings."""
    if axis is None:
        axes = tuple(range(ndim))
    elif isinstance(axis, (int, np.integer)):
        axes = (int(axis),)
    else:
        axes = tuple(int(a) for a in axis)
    axes = tuple(a + ndim if a < 0 else a for a in axes)
    if any(a < 0 or a >= ndim for a in axes) or len(set(axes)) != len(axes):
        raise ShapeError(f"numpy.gradient: axis {axis!r} is out of range or repeated for an "
                         f"array of {ndim} dimensions")
    if nspacing not in (0, 1, len(axes)):
        raise ShapeError(f"numpy.gradient: {nspacing} spacings given for {len(axes)} axes; give "
                         "none, one, or one per axis")
    return axes


static_gradient_axes = primitive("static_gradient_axes", abstract_eval=_static_gradient_axes,
                                 differentiable=False)(_static_gradient_axes)


def _static_convolve_indices(n, m):
    """static_convolve_indices(n, m) == the (n + m - 1, m) gather of the input padded by m - 1 zeros on each side whose rows dotted with v give numpy.convolve's full output."""
    return np.arange(n + m - 1)[:, None] + (m - 1) - np.arange(m)[None, :]


static_convolve_indices = primitive("static_convolve_indices",
                                    abstract_eval=_static_convolve_indices,
                                    differentiable=False)(_static_convolve_indices)
