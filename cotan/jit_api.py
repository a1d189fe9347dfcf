"""`cotan.jit`: the public face of compilation.

Owns the decorator (`@jit`, `@jit(static_argnums=...)`, `jit(f)`); the
work lives in runtime/dispatch.py (signatures, caches, calls) and codegen/
(inference, planning, LLVM).  The returned object carries
`__cotan_wrapped__ = f` so other transformations see through it.
"""

from .runtime.dispatch import JitFunction


def jit(fun=None, *, static_argnums=(), static_argnames=(), backend="cpu"):
    """Compile `fun` to native code, once per call signature.

    `jit(f)(*args)` infers every value's dtype and shape for the arguments'
    signature (pytree structure, dtypes, shapes, static values), compiles
    the whole function to one native function and caches it; later calls
    with the same signature run the native code directly.  `static_argnums`
    / `static_argnames` name arguments whose values are baked in (hashable
    Python values such as sizes or flags).  `jit(f).lower(*args)` returns
    the stages: `.as_text("python" | "typed" | "llvm" | "asm")`.
    """
    if fun is None:
        return lambda f: JitFunction(f, static_argnums, static_argnames, backend)
    return JitFunction(fun, static_argnums, static_argnames, backend)
