"""Devices and device arrays: `cotan.devices`, `cotan.device_put`, `DeviceArray`.

Owns the `Device` record (a backend, a platform, an index, and for xla
the PJRT device it stands for) and `DeviceArray`, an array living on one
device: `.device`, `.shape`, `.dtype`, `np.asarray(a)` / `__array__`
copying to the host, `.block_until_ready()`; passed to a function jitted
for the same device it is used in place (no host round trip).  The cpu
(LLVM) backend computes in host memory, so its one device, "cpu:0", holds
NumPy arrays.  A cuda device ("cuda:0") holds a `CudaBuffer` of its
runtime (runtime/cuda_device.py, which imports pycuda only when a cuda
device is first asked for).  Must not compile anything (codegen/) nor
dispatch calls.
"""

import numpy as np

from ..codegen.abstract import ShapedArray


class Device:
    __slots__ = ("backend", "platform", "id", "raw")

    def __init__(self, backend, platform, id, raw=None):
        self.backend = backend
        self.platform = platform
        self.id = id
        self.raw = raw

    def __repr__(self):
        if self.backend == "cpu":
            return "cpu:0"
        if self.backend == "cuda":
            return f"cuda:{self.id}"
        return f"xla:{self.platform}:{self.id}"

    def __eq__(self, other):
        return isinstance(other, Device) and (self.backend, self.platform, self.id) == (
            other.backend, other.platform, other.id)

    def __hash__(self):
        return hash((self.backend, self.platform, self.id))


_CPU = Device("cpu", "cpu", 0)
_XLA = None
_CUDA = None


def _xla_devices():
    global _XLA
    if _XLA is None:
        from ..codegen.xla import binding
        _XLA = [Device("xla", d.platform, d.id, d) for d in binding.devices()]
    return _XLA


def _cuda_devices():
    """The GPUs the NVIDIA driver sees; `raw` is (name, compute capability,
    total bytes).  Raises CudaUnavailableError saying what is missing."""
    global _CUDA
    if _CUDA is None:
        from .cuda_device import cuda_devices
        _CUDA = [Device("cuda", "gpu", i, (name, cc, total))
                 for i, name, cc, total in cuda_devices()]
    return _CUDA


def devices(backend=None):
    """The devices of `backend`: 'cpu' gives the cpu devices pmap shards over
    (one per core, `COTAN_NUM_DEVICES`, every process's under
    cotan.distributed), 'xla' the PJRT devices, 'cuda' the GPUs (an error
    saying what is missing where pycuda or the NVIDIA driver is); None gives
    the default backend's (cpu, what `jit` compiles for), as `jax.devices()`
    gives its default backend's."""
    from .pmap_cpu import cpu_devices
    if backend in ("cpu", None):
        return cpu_devices()
    if backend == "xla":
        return list(_xla_devices())
    if backend == "cuda":
        return list(_cuda_devices())
    raise ValueError(f"unknown backend {backend!r}: use 'cpu', 'xla' or 'cuda'")


def default_device(backend):
    return devices(backend)[0]


class DeviceArray:
    """An array on one device.  Immutable; `np.asarray` copies it to the host."""

    __slots__ = ("_buf", "_aval", "_device", "_host", "__weakref__")
    __array_priority__ = 100

    def __init__(self, buf, aval, device, host=None):
        self._buf = buf
        self._aval = aval
        self._device = device
        self._host = host

    @property
    def device(self):
        return self._device

    @property
    def shape(self):
        return self._aval.shape

    @property
    def dtype(self):
        return self._aval.dtype

    @property
    def ndim(self):
        return len(self._aval.shape)

    @property
    def size(self):
        return self._aval.size

    @property
    def aval(self):
        return ShapedArray(self._aval.shape, self._aval.dtype)

    def block_until_ready(self):
        if self._buf is not None:
            self._buf.block_until_ready()
        return self

    def _value(self):
        if self._host is None:
            if self._device.backend == "cuda":
                host = self._buf.to_host(self._aval.shape, self._aval.dtype)
                host.flags.writeable = False
                self._host = host
                return host
            from ..codegen.xla import binding
            host = binding.to_host(self._buf)
            host.flags.writeable = False
            self._host = host
        return self._host

    def __array__(self, dtype=None, copy=None):
        v = np.array(self._value(), copy=True)
        return v if dtype is None else v.astype(dtype)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __float__(self):
        return float(self._value())

    def __int__(self):
        return int(self._value())

    def __repr__(self):
        return f"DeviceArray({np.array2string(self._value(), separator=', ')}, " \
               f"dtype={self.dtype}, device={self.device!r})"


def device_put(x, device=None):
    """`x` (an array or a pytree of them) copied to `device` (default: the
    first xla device when jaxlib is installed, else cpu:0)."""
    if device is None:
        from ..codegen.xla import binding
        device = default_device("xla" if binding.available() else "cpu")
    if not isinstance(device, Device):
        raise TypeError(f"device_put: {device!r} is not a device; use one of cotan.devices()")
    if isinstance(x, (tuple, list)):
        return type(x)(device_put(e, device) for e in x)
    if isinstance(x, dict):
        return {k: device_put(v, device) for k, v in x.items()}
    if isinstance(x, DeviceArray):
        if x.device == device:
            return x
        x = np.asarray(x)
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError("device_put: only numeric arrays can be placed on a device")
    aval = ShapedArray(arr.shape, arr.dtype)
    if device.backend == "cpu":
        host = np.array(arr, copy=True)
        host.flags.writeable = False
        return DeviceArray(None, aval, device, host)
    if device.backend == "cuda":
        from .cuda_device import get_runtime
        if not arr.dtype.isnative:   # kernels read native byte order: the copy converts
            arr = arr.astype(arr.dtype.newbyteorder("="))
            aval = ShapedArray(arr.shape, arr.dtype)
        return DeviceArray(get_runtime(device.id).upload(arr), aval, device)
    from ..codegen.xla import binding
    return DeviceArray(binding.to_device(arr, device.raw), aval, device)
