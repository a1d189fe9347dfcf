"""Reading generated code: `cotan.source` and `cotan.normalize`.

Owns the user-facing access to core form and generated source.  Must not
transform anything itself (it calls autodiff.normalize).
"""

import inspect

from .autodiff.materialize import materialize, generated_core  # noqa: F401
from .autodiff.normalize import normalize_function
from .autodiff.parse import unwrap

_core_fns = {}


def normalize(fn):
    """The core form of `fn` as a runnable Python function.

    It computes what `fn` computes; `cotan.source` of it shows the one
    primitive call per statement that every transformation works on.
    """
    fn = unwrap(fn)
    key = (fn, getattr(fn, "__code__", None))
    got = _core_fns.get(key)
    if got is None:
        got = materialize(normalize_function(fn), "core form")
        _core_fns[key] = got
    return got


def source(fn):
    """The Python source of `fn`; for a transformed function, the source
    cotan generated for it (compiled backends: the Python stage)."""
    gen = getattr(fn, "__cotan_source__", None)
    if callable(gen):
        return gen()
    fn = unwrap(fn)
    return inspect.getsource(fn)
