"""cotan: source-to-source differentiation, batching and compilation.

The public face: transformations (`grad`, `jvp`, `vmap`, `jit`, ...), the
NumPy namespace `cotan.numpy`, `cotan.tree_util` and `cotan.errors`.  This
module only re-exports; the work lives in `cotan.autodiff`, `cotan.codegen`
and `cotan.runtime`.
"""

import os as _os

# In a source checkout the stages live beside this folder (autodiff/,
# codegen/, runtime/); installed, they live inside it.  Searching the parent
# folder too makes `cotan.autodiff` importable from a checkout without an
# install, e.g. for `pytest` run from the repository root.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(_os.path.dirname(__file__), "autodiff")) \
        and _os.path.isfile(_os.path.join(_root, "autodiff", "__init__.py")):
    __path__.append(_root)

__version__ = "0.1.0"

from . import errors  # noqa: E402
from . import tree_util  # noqa: E402
from ._api import *  # noqa: E402,F401,F403
from ._api import __all__ as _api_all  # noqa: E402
from . import numpy  # noqa: E402
from . import random  # noqa: E402

__all__ = ["errors", "tree_util", "numpy", "random"] + list(_api_all)

from .autodiff import pytree_rules as _pytree_rules  # noqa: E402,F401  (p.w on pytree nodes)
from .runtime.table import seal_table as _seal_table  # noqa: E402
_seal_table()
