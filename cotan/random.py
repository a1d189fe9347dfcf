"""cotan.random: random numbers from explicit keys, in JAX's shape.

Owns the public random API: `PRNGKey`, `split`, `fold_in`, `normal`,
`uniform`, `randint`, `bernoulli`, `permutation` (and `key`, JAX's newer
name for PRNGKey).  A key is a uint32 array of shape (2,); nothing is global, so a result
depends only on its key and arguments (reproducible, independent of call
order).  Kernels are the `random_*` primitives of `runtime/more_ops.py`
(a counter-based Philox stream per key and operation); they carry no
derivative, so `grad` treats samples as constants, and under `vmap` a batch
of keys gives one stream per key, equal to a Python loop.  Under
`cotan.jit` they are refused by name: draw outside and pass the numbers in.
Written in the composition subset (see `cotan.numpy._math`) so
transformed code inlines these functions; must not call NumPy directly or
define primitives.
"""

from .runtime.more_ops import (
    random_bernoulli, random_fold_in, random_key, random_normal, random_permutation,
    random_randint, random_split, random_uniform)
from .runtime.shape_ops import take
from .runtime.structural import ndim
from .runtime.structural import shape as shape_of

__all__ = ["PRNGKey", "key", "split", "fold_in", "normal", "uniform", "randint", "bernoulli",
           "permutation"]


def PRNGKey(seed):
    """jax.random.PRNGKey(seed): the key (uint32, shape (2,)) of an integer seed."""
    return random_key(seed)


def key(seed):
    """jax.random.key(seed): the same key as PRNGKey(seed)."""
    return random_key(seed)


def split(key, num=2):
    """jax.random.split(key, num): num new independent keys, shape (num, 2)."""
    return random_split(key, num)


def fold_in(key, data):
    """jax.random.fold_in(key, data): a new key determined by key and the integer data."""
    return random_fold_in(key, data)


def normal(key, shape=(), dtype="float64"):
    """jax.random.normal(key, shape, dtype): standard normal samples."""
    return random_normal(key, shape, dtype)


def uniform(key, shape=(), dtype="float64", minval=0.0, maxval=1.0):
    """jax.random.uniform(key, shape, dtype, minval, maxval): samples in [minval, maxval)."""
    return random_uniform(key, shape, dtype, minval, maxval)


def randint(key, shape, minval, maxval, dtype="int64"):
    """jax.random.randint(key, shape, minval, maxval, dtype): integers in [minval, maxval)."""
    return random_randint(key, shape, minval, maxval, dtype)


def bernoulli(key, p=0.5, shape=None):
    """jax.random.bernoulli(key, p, shape): True with probability p."""
    return random_bernoulli(key, p, shape)


def permutation(key, x):
    """jax.random.permutation(key, x): a shuffled range(x) for an int x, else x's rows shuffled."""
    if ndim(x) == 0:
        return random_permutation(key, x)
    return take(x, random_permutation(key, shape_of(x)[0]), axis=0)
