"""`cotan.lax`: JAX-`lax`-like names; so far the collectives.

Owns nothing but the exports: the collectives are primitives registered in
runtime/collectives.py, with their derivative and batching rules in
autodiff/collective_rules.py.  They reduce over an axis name bound by an
enclosing `cotan.pmap(f, axis_name=...)` or `cotan.vmap(f, axis_name=...)`:

    psum(x, axis_name)        pmean(x, axis_name)
    pmax(x, axis_name)        pmin(x, axis_name)
    all_gather(x, axis_name, axis=0)
    ppermute(x, axis_name, perm)      # perm: ((source, destination), ...)
    axis_index(axis_name)

`axis_name` may be a tuple of names for psum/pmean/pmax/pmin (reduce over
all of them).  Must not define primitives itself.
"""

from .runtime.collectives import (psum, pmean, pmax, pmin, all_gather, ppermute,  # noqa: F401
                                  axis_index, AxisNameError, CollectiveMismatchError)
from .autodiff import collective_rules  # noqa: F401  (attaches their rules)

__all__ = ["psum", "pmean", "pmax", "pmin", "all_gather", "ppermute", "axis_index",
           "AxisNameError", "CollectiveMismatchError"]
