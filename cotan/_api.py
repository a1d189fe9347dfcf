"""The public transformations, gathered in one place for `cotan/__init__`.

Owns nothing but the list of exported names; each transformation lives in
its own module of `cotan` (the user-facing wrapper) and of `cotan.autodiff`
or `cotan.codegen` (the transformation itself).
"""

from .source import source, normalize

__all__ = ["source", "normalize"]

# Each transformation adds its exports below its own marker line.
# -- reverse mode --
# -- forward mode --
# -- batching --
# -- jit --
# -- aot --
