"""One lock for source transformations.

Owns `serialized`, the decorator every cache-or-transform entry point wears
(normalize, jvp, linearize, grad/vjp, vmap).  Transformations fill caches
keyed by function and register generated sources with linecache, so two
threads transforming at once (an eager `pmap` runs `cotan.jvp` in a thread
per device) could each see a half-built entry.  The lock is re-entrant
because transformations call one another; running a generated function
never takes it.  Must not hold any transformation itself.
"""

import functools
import threading

TRANSFORM_LOCK = threading.RLock()


def serialized(fn):
    @functools.wraps(fn)
    def locked(*args, **kwargs):
        with TRANSFORM_LOCK:
            return fn(*args, **kwargs)
    return locked
