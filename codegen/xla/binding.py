"""jaxlib's PJRT client, as the XLA backend uses it.

Owns the client (`client()`: the default platform, tpu > gpu > cpu), its
devices, compilation of StableHLO text for one device (`compile_text`,
with the explicit device assignment that pins it), the persistent cache of
serialized executables (keyed on jaxlib's version, the platform, the
device and the text's hash), host → device transfers (`to_device`: the
client's batched device put, not JAX's Python path) and device → host
copies.  jaxlib is an optional dependency (the `xla` extra): `available()`
says whether it imports, and `require()` raises a CompileError saying how
to install it.  Must not know about typed programs or dispatch.
"""

import hashlib
import os
import threading

import numpy as np

from ...errors import CompileError

_LOCK = threading.Lock()
_CLIENT = None


def available():
    # XLA's C++ logging prints two INFO lines per client to stderr; warnings
    # and errors still show (a user's own setting wins)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    try:
        import jaxlib.xla_client  # noqa: F401
        return True
    except Exception:
        return False


def require():
    if not available():
        raise CompileError("backend='xla' needs jaxlib (pip install 'cotan[xla]' or "
                           "pip install jaxlib)")
    import jaxlib.xla_client as xc
    return xc


class _AbsentJax:
    """A finder that says at once that `jax` is not installed.

    jaxlib's device put and host copy look up `jax._src.sharding_impls` on
    every call; without JAX that import fails only after a search of every
    path entry (three per transfer, most of a small call's time).  Installed
    only when JAX is absent, so it changes nothing where JAX exists."""

    def find_spec(self, name, path=None, target=None):
        if name == "jax" or name.startswith("jax."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _fast_fail_jax_imports():
    import importlib.util
    import sys
    if "jax" in sys.modules or any(isinstance(f, _AbsentJax) for f in sys.meta_path):
        return
    try:
        if importlib.util.find_spec("jax") is not None:
            return
    except (ImportError, ValueError):
        pass
    sys.meta_path.insert(0, _AbsentJax())


def client():
    """The PJRT client of the default platform: a TPU or GPU plugin when one
    loads, else the CPU client."""
    global _CLIENT
    if _CLIENT is None:
        with _LOCK:
            if _CLIENT is None:
                xc = require()
                _fast_fail_jax_imports()
                c = None
                for make in ("make_tpu_client", "make_gpu_client"):
                    fn = getattr(xc, make, None)
                    if fn is not None:
                        try:
                            c = fn()
                            break
                        except Exception:
                            c = None
                if c is None:
                    # COTAN_XLA_CPU_DEVICES=n: n CPU devices (tests of pinning)
                    n = os.environ.get("COTAN_XLA_CPU_DEVICES")
                    c = xc.make_cpu_client(num_devices=int(n)) if n else xc.make_cpu_client()
                _CLIENT = c
    return _CLIENT


def devices():
    return list(client().devices())


def _sharding_class():
    xc = require()

    class Placement(xc.SingleDeviceSharding):
        """The one-device placement PJRT's device put asks about."""
        memory_kind = None
        is_fully_replicated = True
        is_fully_addressable = True
        num_devices = 1

        def _to_xla_hlo_sharding(self, num_dimensions):
            return xc.HloSharding.replicate()

        @property
        def _device_assignment(self):
            return (self._device,)

        @property
        def device_set(self):
            return {self._device}
    return Placement


_PLACEMENTS = {}
_PLACEMENT_CLASS = None


def placement(device):
    global _PLACEMENT_CLASS
    p = _PLACEMENTS.get(device.id)
    if p is None:
        if _PLACEMENT_CLASS is None:
            _PLACEMENT_CLASS = _sharding_class()
        p = _PLACEMENTS[device.id] = _PLACEMENT_CLASS(device)
    return p


class _Aval:
    """The shape/dtype record the device put reads."""
    __slots__ = ("shape", "dtype", "weak_type", "ndim")

    def __init__(self, shape, dtype):
        self.shape = shape
        self.dtype = dtype
        self.weak_type = False
        self.ndim = len(shape)


def to_device(arr, device):
    """A PJRT buffer holding a copy of NumPy array `arr` on `device`."""
    from jaxlib import _jax
    arr = np.ascontiguousarray(arr)
    return _jax.batched_device_put(_Aval(arr.shape, arr.dtype), placement(device), [arr],
                                   [device], True, True, enable_x64=True)


def to_host(buf):
    """A NumPy copy of a PJRT buffer (the caller owns it)."""
    arr, copied = buf._single_device_array_to_np_array_did_copy()
    return arr if copied else np.array(arr)


def platform_has_f64(device):
    return getattr(device, "platform", "cpu") != "tpu"


# --------------------------------------------------------------- compile

def _cache_dir():
    if os.environ.get("COTAN_DISABLE_DISK_CACHE"):
        return None
    root = os.environ.get("COTAN_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "cotan")
    return os.path.join(root, "xla")


def cache_key(text, device):
    import jaxlib
    c = client()
    h = hashlib.sha256()
    for part in (jaxlib.__version__, c.platform, c.platform_version, str(device.id),
                 device.device_kind if hasattr(device, "device_kind") else "", text):
        h.update(str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


def compile_text(text, device):
    """A loaded executable of StableHLO `text` pinned to `device`, from the
    disk cache when an identical module was compiled before."""
    xc = require()
    c = client()
    opts = xc.CompileOptions()
    da = xc.DeviceAssignment.create(np.array([[device.id]], dtype=np.int32))
    opts.device_assignment = da
    dl = xc.DeviceList((device,))
    folder = _cache_dir()
    path = None
    if folder is not None:
        path = os.path.join(folder, cache_key(text, device) + ".pjrt")
        if os.path.exists(path):
            try:
                with open(path, "rb") as f:
                    return c.deserialize_executable(f.read(), dl, opts), True
            except Exception:
                pass    # stale or damaged: compile again
    try:
        exe = c.compile_and_load(text, dl, opts)
    except Exception as e:
        raise CompileError(f"XLA could not compile the emitted StableHLO: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    if path is not None:
        try:
            os.makedirs(folder, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(c.serialize_executable(exe))
            os.replace(tmp, path)
        except Exception:
            pass
    return exe, False
