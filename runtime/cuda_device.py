"""The GPU kernel runtime: `CudaRuntime`, pycuda underneath.

Owns what the cuda backend's generated host driver calls on a real GPU
(the `KernelRuntime` contract of codegen/cuda/runtime_api.py): loading
modules from cubin built by codegen/cuda/nvcc.py for the present GPU's
arch, launching kernels with typed scalar arguments, device buffers
(`CudaBuffer`) drawn from a pool that reuses freed blocks, transfers,
and `gemm` through cuBLAS (runtime/cublas.py; its tiled kernel where
cuBLAS is absent).  Also the facts runtime/devices.py needs to list GPUs.

pycuda is imported lazily, on the first `get_runtime()`/`cuda_devices()`,
never when cotan or codegen/cuda is imported; where it is missing, or
the driver (libcuda.so.1) is, the error says which and what to do.

Every call goes to one stream per runtime, so stream order is program
order; a freed block returned to the pool may be handed out again at
once, since whatever still reads it was queued earlier on that stream.
One runtime per GPU per process (`get_runtime`), on the device's primary
context (the one the CUDA runtime API, hence JAX and CuPy, also use).
Must not generate CUDA C (codegen/cuda/) nor dispatch jitted calls.
"""

import atexit
import hashlib
import threading

import numpy as np

from ..errors import CotanError, CompileError
from ..codegen.cuda.runtime_api import KernelRuntime


class CudaUnavailableError(CotanError, RuntimeError):
    """The cuda backend cannot run here: pycuda, the NVIDIA driver or a GPU
    is missing.  The message names which."""


class CudaError(CotanError, RuntimeError):
    """A GPU operation failed (a kernel fault, out of memory, a bad launch)."""


INSTALL_HINT = "pip install cotan[cuda]"

_DRIVER = None          # pycuda.driver, once initialised
_DRIVER_ERROR = None    # the CudaUnavailableError raised the first time, raised again


def _driver_import_error(exc):
    text = str(exc)
    if "libcuda" in text or "cuda.so" in text:
        return CudaUnavailableError(
            "no NVIDIA driver (libcuda.so.1) found: the cuda backend needs it, and pycuda "
            f"is installed but could not load it ({text}). Install the "
            "NVIDIA driver (R580+ for CUDA 13) on a machine with an NVIDIA GPU, or use "
            "backend='cpu' / 'xla'.")
    return CudaUnavailableError(
        f"pycuda is installed but `import pycuda.driver` failed ({text}); reinstall it "
        f"with `{INSTALL_HINT}` (it must be built against this machine's CUDA toolkit).")


def import_driver():
    """`pycuda.driver`, initialised (cuInit), or a CudaUnavailableError that
    says what is missing.  The only place that imports pycuda."""
    global _DRIVER, _DRIVER_ERROR
    if _DRIVER is not None:
        return _DRIVER
    if _DRIVER_ERROR is not None:
        raise _DRIVER_ERROR
    try:
        try:
            import pycuda  # noqa: F401
        except ImportError as e:
            raise CudaUnavailableError(
                "the cuda backend needs pycuda, which is not installed: "
                f"`{INSTALL_HINT}` (pycuda links the NVIDIA driver's libcuda.so.1; "
                "without a GPU use backend='cpu' or 'xla').") from e
        try:
            import pycuda.driver as drv
        except ImportError as e:
            raise _driver_import_error(e) from e
        try:
            drv.init()
        except drv.Error as e:
            raise CudaUnavailableError(
                f"no usable NVIDIA driver (libcuda.so.1) found: cuInit failed ({e}). A "
                "stub libcuda or a driver older than the CUDA version pycuda was built "
                "for gives this; install the NVIDIA driver, or use backend='cpu'.") from e
        if drv.Device.count() == 0:
            raise CudaUnavailableError(
                "the NVIDIA driver is present but sees no GPU (Device.count() == 0); "
                "check CUDA_VISIBLE_DEVICES, or use backend='cpu'.")
    except CudaUnavailableError as e:
        _DRIVER_ERROR = e
        raise
    _DRIVER = drv
    return drv


def cuda_devices():
    """(id, name, (major, minor), total bytes) for each GPU the driver sees."""
    drv = import_driver()
    out = []
    for i in range(drv.Device.count()):
        d = drv.Device(i)
        out.append((i, d.name(), d.compute_capability(), d.total_memory()))
    return out


# ---------------------------------------------------------------- memory pool

def size_class(nbytes):
    """The block size a request of `nbytes` is served from: 512-byte
    granules below 4 KiB, then 16 classes per power of two (at most 1/16 of
    the block is slack), so blocks freed by one call fit the next call's
    requests of nearly the same size."""
    if nbytes <= 512:
        return 512
    if nbytes <= 4096:
        return (nbytes + 511) & ~511
    step = 1 << max(9, (nbytes - 1).bit_length() - 4)
    return (nbytes + step - 1) // step * step


class _Block:
    __slots__ = ("raw", "ptr", "size")

    def __init__(self, raw, ptr, size):
        self.raw = raw
        self.ptr = ptr
        self.size = size


class BlockPool:
    """Device blocks by size class: `acquire` reuses a freed block of the
    class or allocates one; `release` keeps it for reuse up to
    `max_held_bytes` held, frees beyond.  An allocation that fails with
    one of `oom_errors` frees every held block and tries once more.

    Written without locks on purpose: `release` runs from `__del__`, i.e.
    at any bytecode boundary, possibly inside `acquire`; it only appends to
    a list (atomic under the GIL), and `acquire` only pops."""

    def __init__(self, allocate, free, max_held_bytes=1 << 30, oom_errors=(MemoryError,)):
        self._allocate = allocate      # size -> raw allocation (int(raw) is the pointer)
        self._free_raw = free          # raw -> None
        self._free = {}                # size class -> [block]
        self.max_held_bytes = max_held_bytes
        self._oom_errors = tuple(oom_errors)
        self.held_bytes = 0
        self.in_use_bytes = 0
        self.hits = 0
        self.misses = 0
        self.closed = False

    def acquire(self, nbytes):
        size = size_class(nbytes)
        lst = self._free.get(size)
        if lst:
            try:
                blk = lst.pop()
            except IndexError:  # emptied by a concurrent acquire
                blk = None
            if blk is not None:
                self.held_bytes -= size
                self.in_use_bytes += size
                self.hits += 1
                return blk
        self.misses += 1
        try:
            raw = self._allocate(size)
        except self._oom_errors:
            self.trim()
            try:
                raw = self._allocate(size)
            except self._oom_errors as e:
                raise CudaError(
                    f"out of GPU memory allocating {nbytes} bytes ({self.in_use_bytes} "
                    "bytes in use by live arrays and buffers of this process); free "
                    "device arrays (del) or use smaller inputs") from e
        self.in_use_bytes += size
        return _Block(raw, int(raw), size)

    def release(self, blk):
        self.in_use_bytes -= blk.size
        if self.closed or self.held_bytes + blk.size > self.max_held_bytes:
            self._free_raw(blk.raw)
            return
        self.held_bytes += blk.size
        self._free.setdefault(blk.size, []).append(blk)

    def trim(self):
        """Free every held block (the next requests allocate anew)."""
        for size in list(self._free):
            lst = self._free.get(size) or []
            while lst:
                try:
                    blk = lst.pop()
                except IndexError:
                    break
                self.held_bytes -= blk.size
                self._free_raw(blk.raw)

    def close(self):
        self.closed = True
        self.trim()


# ---------------------------------------------------------------- buffers

class CudaBuffer:
    """Device memory: `ptr` (int), `nbytes`; a pool block it returns to when
    collected, or (a view from `buffer_at`) the buffer it keeps alive."""

    __slots__ = ("ptr", "nbytes", "_block", "_base", "_rt", "__weakref__")

    def __init__(self, ptr, nbytes, rt, block=None, base=None):
        self.ptr = ptr
        self.nbytes = nbytes
        self._rt = rt
        self._block = block
        self._base = base

    def __int__(self):
        return self.ptr

    def __del__(self):
        blk = self._block
        if blk is not None:
            self._block = None
            try:
                self._rt.pool.release(blk)
            except Exception:  # noqa: BLE001  (interpreter shutdown: the driver may be gone)
                pass

    # what runtime/devices.py's DeviceArray calls on its buffer
    def block_until_ready(self):
        self._rt.synchronize()

    def to_host(self, shape, dtype):
        return self._rt.download(self, shape, dtype)

    def __repr__(self):
        return f"CudaBuffer(0x{self.ptr:x}, {self.nbytes} bytes)"


class CudaModule:
    """A loaded module and the kernels asked for, with each kernel's
    prepared argument format (pycuda packs parameters by that format)."""

    __slots__ = ("raw", "functions", "formats", "key")

    def __init__(self, raw, functions, key):
        self.raw = raw
        self.functions = functions
        self.formats = {}
        self.key = key


# struct format characters of the kernel parameter C types (native
# alignment, which is how CUDA lays out a kernel's parameter buffer)
_SCALAR_FORMAT = {
    np.dtype(np.float64): "d", np.dtype(np.float32): "f",
    np.dtype(np.int64): "q", np.dtype(np.int32): "i",
    np.dtype(np.int16): "h", np.dtype(np.int8): "b",
    np.dtype(np.uint64): "Q", np.dtype(np.uint32): "I",
    np.dtype(np.uint16): "H", np.dtype(np.uint8): "B",
    np.dtype(np.bool_): "?",
}


def pack_arguments(kernel, args):
    """(format, values) for a launch: Buffers as pointers ('P'), NumPy
    scalars by their dtype; anything else is a driver bug, told as one."""
    fmt = []
    vals = []
    for i, a in enumerate(args):
        if type(a) is CudaBuffer:
            fmt.append("P")
            vals.append(a.ptr)
            continue
        ch = _SCALAR_FORMAT.get(a.dtype) if isinstance(a, np.generic) else None
        if ch is None:
            raise CompileError(
                f"cuda launch of kernel {kernel!r}: argument {i} is {a!r} "
                f"({type(a).__name__}); a kernel argument must be a device buffer or a "
                "NumPy scalar of the parameter's C type (np.int64 for long long, "
                "np.float64 for double, np.float32 for float, np.int32 for int)")
        fmt.append(ch)
        vals.append(a)
    return "".join(fmt), vals


_STATIC_SHARED_LIMIT = 48 * 1024   # above it a kernel must opt in to dynamic shared memory


class CudaRuntime(KernelRuntime):
    """The KernelRuntime of one GPU (see the module docstring)."""

    name = "cuda"

    def __init__(self, device_id=0):
        drv = import_driver()
        count = drv.Device.count()
        if not 0 <= device_id < count:
            raise CudaUnavailableError(
                f"cuda device {device_id} does not exist: the driver sees {count} GPU(s); "
                "use one of cotan.devices('cuda')")
        self._drv = drv
        self.device_id = device_id
        self.device = drv.Device(device_id)
        self.device_name = self.device.name()
        self.compute_capability = tuple(self.device.compute_capability())
        self.arch = "sm_%d%d" % self.compute_capability
        self.context = self.device.retain_primary_context()
        self.closed = False
        self._enter()
        self.stream = drv.Stream()
        total = self.device.total_memory()
        self.pool = BlockPool(drv.mem_alloc, lambda raw: raw.free(),
                              max_held_bytes=max(1 << 30, total // 4),
                              oom_errors=(drv.MemoryError,))
        self._modules = {}
        self._scalar_host = drv.pagelocked_empty(16, np.uint8)   # pinned: fast predicate reads
        self._gemm = None

    def __repr__(self):
        return f"CudaRuntime(cuda:{self.device_id}, {self.device_name}, {self.arch})"

    # -- context: current in the calling thread before any driver call --
    def _enter(self):
        if getattr(_CURRENT, "rt", None) is not self:
            prev = getattr(_CURRENT, "rt", None)
            if prev is not None and not prev.closed:
                try:
                    self._drv.Context.pop()
                except self._drv.Error:
                    pass
            self.context.push()
            _CURRENT.rt = self

    def _sync(self):
        try:
            self.stream.synchronize()
        except self._drv.Error as e:
            raise CudaError(f"a GPU operation queued earlier failed on {self.device_name}: "
                            f"{e}") from e

    def _check_range(self, what, buf, offset, nbytes):
        if offset < 0 or offset + nbytes > buf.nbytes:
            raise CudaError(f"cuda {what}: bytes [{offset}, {offset + nbytes}) lie outside "
                            f"a {buf.nbytes}-byte buffer (a host driver bug)")

    # -- KernelRuntime --
    def load(self, source, kernel_names):
        self._enter()
        key = (hashlib.sha256(source.encode()).hexdigest(), self.arch)
        mod = self._modules.get(key)
        if mod is None:
            raw = self._load_image(source)
            mod = CudaModule(raw, {}, key)
            self._modules[key] = mod
        for name in kernel_names:
            if name not in mod.functions:
                try:
                    mod.functions[name] = mod.raw.get_function(name)
                except self._drv.Error as e:
                    raise CompileError(f"cuda: the compiled module has no kernel {name!r} "
                                       f"({e}); it must be declared extern \"C\" __global__") \
                        from e
        return mod

    def _load_image(self, source):
        """A module from cubin for this GPU's arch; PTX (JIT-compiled by the
        driver) where the driver refuses the cubin (a newer arch than the
        toolkit knows, or an older driver)."""
        from ..codegen.cuda import nvcc
        drv = self._drv
        cubin = nvcc.compile_cubin(source, self.arch)
        try:
            return drv.module_from_buffer(cubin)
        except drv.Error as cubin_error:
            ptx = nvcc.compile_ptx(source, self.arch)
            if not ptx.endswith(b"\0"):
                ptx += b"\0"
            try:
                return drv.module_from_buffer(ptx)
            except drv.Error as e:
                raise CompileError(
                    f"cuda: the driver loads neither the {self.arch} cubin ({cubin_error}) "
                    f"nor the PTX ({e}) on {self.device_name}; the NVIDIA driver may be "
                    "older than the CUDA toolkit that compiled them") from e

    def empty(self, nbytes):
        nbytes = int(nbytes)
        if nbytes <= 0:
            return CudaBuffer(0, 0, self)
        self._enter()
        blk = self.pool.acquire(nbytes)
        return CudaBuffer(blk.ptr, nbytes, self, block=blk)

    def upload(self, array):
        a = np.ascontiguousarray(array)
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        buf = self.empty(a.nbytes)
        if a.nbytes:
            # pageable source: the driver has staged it when this returns
            self._drv.memcpy_htod_async(buf.ptr, a, self.stream)
        return buf

    def download(self, buf, shape, dtype, offset=0):
        out = np.empty(shape, dtype)
        if out.nbytes:
            self._check_range("download", buf, offset, out.nbytes)
            self._enter()
            try:
                self._drv.memcpy_dtoh_async(out, buf.ptr + offset, self.stream)
            except self._drv.Error as e:
                raise CudaError(f"cuda download of {out.nbytes} bytes failed: {e}") from e
            self._sync()
        return out

    def read_scalar(self, buf, dtype, offset=0):
        dt = np.dtype(dtype)
        self._check_range("read_scalar", buf, offset, dt.itemsize)
        self._enter()
        host = self._scalar_host[:dt.itemsize]
        try:
            self._drv.memcpy_dtoh_async(host, buf.ptr + offset, self.stream)
        except self._drv.Error as e:
            raise CudaError(f"cuda read of a {dt} scalar failed: {e}") from e
        self._sync()
        return host.view(dt)[0]

    def buffer_at(self, buf, offset):
        offset = int(offset)
        if offset < 0 or offset > buf.nbytes:
            raise CudaError(f"cuda buffer_at: offset {offset} outside a {buf.nbytes}-byte buffer")
        return CudaBuffer(buf.ptr + offset, buf.nbytes - offset, self, base=buf)

    def copy(self, dst, src, nbytes, dst_offset=0, src_offset=0):
        if nbytes <= 0:
            return
        self._check_range("copy (destination)", dst, dst_offset, nbytes)
        self._check_range("copy (source)", src, src_offset, nbytes)
        self._enter()
        self._drv.memcpy_dtod_async(dst.ptr + dst_offset, src.ptr + src_offset, nbytes,
                                    self.stream)

    def memset_zero(self, buf, nbytes, offset=0):
        if nbytes <= 0:
            return
        self._check_range("memset_zero", buf, offset, nbytes)
        self._enter()
        self._drv.memset_d8_async(buf.ptr + offset, 0, nbytes, self.stream)

    def launch(self, module, kernel, grid, block, shared_bytes, args):
        grid = int(grid)
        block = int(block)
        if grid == 0:
            return   # an empty array's kernel: nothing to run (CUDA refuses a 0 grid)
        if not (0 < grid < 2 ** 31 and 0 < block <= 1024):
            raise CudaError(f"cuda launch of {kernel!r}: grid {grid} x block {block} is out of "
                            "range (1 <= grid < 2^31, 1 <= block <= 1024)")
        try:
            fn = module.functions[kernel]
        except KeyError:
            raise CompileError(f"cuda launch: kernel {kernel!r} was not named when its module "
                               "was loaded") from None
        fmt, vals = pack_arguments(kernel, args)
        self._enter()
        prepared = module.formats.get(kernel)
        if prepared is None or prepared[0] != fmt or prepared[1] < shared_bytes:
            if shared_bytes > _STATIC_SHARED_LIMIT:
                fn.set_attribute(self._drv.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                 int(shared_bytes))
            fn.prepare(fmt)
            module.formats[kernel] = (fmt, max(shared_bytes, prepared[1] if prepared else 0))
        try:
            fn.prepared_async_call((grid, 1), (block, 1, 1), self.stream, *vals,
                                   shared_size=int(shared_bytes))
        except self._drv.Error as e:
            raise CudaError(f"cuda launch of kernel {kernel!r} (grid {grid}, block {block}, "
                            f"{shared_bytes} bytes shared) failed: {e}") from e

    def gemm(self, dtype, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        if self._gemm is None:
            self._enter()
            from .cublas import make_gemm
            self._gemm = make_gemm(self)
        self._enter()
        self._gemm.gemm(dtype, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    @property
    def gemm_backend(self):
        """'cublas <version>' or 'tiled kernel' (after the first gemm)."""
        return None if self._gemm is None else self._gemm.describe()

    def synchronize(self):
        self._enter()
        self._sync()

    def memory_info(self):
        """(free, total) bytes on the device, as the driver reports them."""
        self._enter()
        return self._drv.mem_get_info()

    def close(self):
        """Release held memory and the context (atexit does it)."""
        if self.closed:
            return
        try:
            self.synchronize()
        except CotanError:
            pass
        if self._gemm is not None:
            self._gemm.close()
        self.pool.close()
        self.closed = True
        if getattr(_CURRENT, "rt", None) is self:
            try:
                self._drv.Context.pop()
            except self._drv.Error:
                pass
            _CURRENT.rt = None


_CURRENT = threading.local()   # .rt: the runtime whose context is current in this thread
_RUNTIMES = {}
_LOCK = threading.Lock()


def get_runtime(device=0):
    """The process's CudaRuntime of GPU `device` (an int or a cuda Device)."""
    device_id = getattr(device, "id", device)
    rt = _RUNTIMES.get(device_id)
    if rt is not None:
        return rt
    with _LOCK:
        rt = _RUNTIMES.get(device_id)
        if rt is None:
            rt = _RUNTIMES[device_id] = CudaRuntime(device_id)
    return rt


@atexit.register
def _close_all():
    for rt in list(_RUNTIMES.values()):
        try:
            rt.close()
        except Exception:  # noqa: BLE001  (best effort at exit)
            pass
