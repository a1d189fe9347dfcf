"""The public transformations, gathered in one place for `cotan/__init__`.

Owns nothing but the list of exported names; each transformation lives in
its own module of `cotan` (the user-facing wrapper) and of `cotan.autodiff`
or `cotan.codegen` (the transformation itself).
"""

from .source import source, normalize

__all__ = ["source", "normalize"]

# Each transformation adds its exports below its own marker line.
# -- reverse mode --
from .reverse_api import grad, value_and_grad, vjp, custom_vjp, checkpoint, stop_gradient  # noqa: E402,F401
__all__ += ["grad", "value_and_grad", "vjp", "custom_vjp", "checkpoint", "stop_gradient"]
# -- forward mode --
from .forward_api import jvp, linearize, jacfwd, jacrev, hessian, custom_jvp  # noqa: E402
__all__ += ["jvp", "linearize", "jacfwd", "jacrev", "hessian", "custom_jvp"]
# -- batching --
from .vmap_api import vmap  # noqa: E402
__all__ += ["vmap"]
# -- jit --
from .jit_api import jit  # noqa: E402
from .runtime.dispatch import release_all_scratch as release_scratch  # noqa: E402
__all__ += ["jit", "release_scratch"]
# -- devices (xla backend) --
from .runtime.devices import devices, device_put, DeviceArray  # noqa: E402
__all__ += ["devices", "device_put", "DeviceArray"]
# -- aot --
from . import aot  # noqa: E402
from .aot import ShapeDtype  # noqa: E402
__all__ += ["aot", "ShapeDtype"]

# -- pmap and collectives --
from . import lax, distributed  # noqa: E402
from .pmap_api import pmap, local_devices, device_count, local_device_count  # noqa: E402
__all__ += ["pmap", "lax", "distributed", "local_devices", "device_count",
            "local_device_count"]

# -- composition: transformations usable inside transformed code --
import sys as _sys  # noqa: E402
from .compose import install as _install  # noqa: E402
_install(_sys.modules[__name__])
