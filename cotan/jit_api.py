"""`cotan.jit`: the public face of compilation.

Owns the decorator (`@jit`, `@jit(static_argnums=...)`, `jit(f)`); the
work lives in runtime/dispatch.py (signatures, caches, calls) and codegen/
(inference, planning, LLVM).  The returned object carries
`__cotan_wrapped__ = f` so other transformations see through it.
"""

from .runtime.dispatch import JitFunction


def jit(fun=None, *, static_argnums=(), static_argnames=(), backend="cpu", device=None,
        device_arrays=False):
    """Compile `fun` to native code, once per call signature.

    `jit(f)(*args)` infers every value's dtype and shape for the arguments'
    signature (pytree structure, dtypes, shapes, static values), compiles
    the whole function to one native function and caches it; later calls
    with the same signature run the native code directly.  `static_argnums`
    / `static_argnames` name arguments whose values are baked in (hashable
    Python values such as sizes or flags).  `jit(f).lower(*args)` returns
    the stages: `.as_text("python" | "typed" | "llvm" | "asm")`.
    `backend="xla"` (or an xla `device=`) compiles to StableHLO and runs it
    through jaxlib's PJRT client (runtime/xla_dispatch.py).
    """
    if fun is None:
        return lambda f: jit(f, static_argnums=static_argnums, static_argnames=static_argnames,
                             backend=backend, device=device, device_arrays=device_arrays)
    # -- xla backend (helper "xla"): its own dispatch, keyed by device --
    if backend == "xla" or getattr(device, "backend", None) == "xla":
        from .runtime.xla_dispatch import XlaJitFunction
        return XlaJitFunction(fun, static_argnums, static_argnames, device, device_arrays)
    return JitFunction(fun, static_argnums, static_argnames, backend)
