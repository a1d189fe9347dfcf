"""cotan.runtime: the primitive table with its eager NumPy kernels, and the
run-time services of compiled code (dispatch, caches, devices, AOT, pmap).

Importing this package registers every primitive.
"""

from .table import Primitive, PRIMITIVES, primitive, get_primitive  # noqa: F401
from . import structural  # noqa: F401  (registers the structural primitives)
from . import numeric  # noqa: F401  (registers the numeric primitives)
from . import forward_support  # noqa: F401  (registers forward-mode helper primitives)
from . import batching_support  # noqa: F401  (helper primitives of vmap)
from . import reverse_support  # noqa: F401,E402  (registers reverse-mode helpers)
