"""What a generated CUDA host driver may call: the kernel runtime interface.

Owns the contract between the cuda backend's generated host driver (Python
source that runs the typed program's control flow on the host and launches
kernels) and the thing that executes kernels.  Two implementations exist:
the GPU one (runtime/cuda_device.py: pycuda + cuBLAS, the `cuda` extra) and
the CPU test harness (tests/cuda_harness.py: the same CUDA C compiled as
host C++, the grid run as loops), so the driver and its kernels are tested
end to end on machines without a GPU.  Must not import pycuda, compile
anything or know about the emitter.

Conventions every implementation keeps:
- A `Buffer` is opaque to the driver except `.nbytes`; device memory is
  never read by the driver other than through `download`/`read_scalar`.
- `launch` arguments are Buffers (passed as device pointers, optionally
  with a byte offset via `buffer_at(buf, offset)`) or NumPy scalars whose
  dtype is the kernel parameter's C type (np.int64 for `long long`,
  np.float64 for `double`, np.float32 for `float`, np.int32 for `int`).
- `gemm` follows cuBLAS's column-major `?gemm` (cublasDgemm / cublasSgemm):
  C = alpha * op(A) @ op(B) + beta * C with op = identity or transpose
  ("N"/"T"), leading dimensions in elements.  A row-major product is the
  column-major product of the transposes; the emitter does that swap.
- Every call is ordered after the calls before it (one stream); `download`
  and `read_scalar` synchronize.
"""

import abc


class KernelRuntime(abc.ABC):
    #: "cuda" for a GPU, "harness" for the CPU test harness
    name = None

    @abc.abstractmethod
    def load(self, source, kernel_names):
        """Compile CUDA C `source` (cached by the implementation) and return
        a module handle from which `launch` can run `kernel_names`."""

    @abc.abstractmethod
    def empty(self, nbytes):
        """A new uninitialised buffer of `nbytes` bytes (0 allowed)."""

    @abc.abstractmethod
    def upload(self, array):
        """A new buffer holding the C-contiguous bytes of the NumPy `array`."""

    @abc.abstractmethod
    def download(self, buf, shape, dtype, offset=0):
        """A new C-contiguous NumPy array of `shape`/`dtype` read from `buf`
        starting at byte `offset`."""

    @abc.abstractmethod
    def read_scalar(self, buf, dtype, offset=0):
        """One element of `dtype` at byte `offset` of `buf`, as a NumPy scalar
        (how the driver reads `if`/`while` predicates and trip counts)."""

    @abc.abstractmethod
    def buffer_at(self, buf, offset):
        """A view of `buf` starting `offset` bytes in (not owning memory)."""

    @abc.abstractmethod
    def copy(self, dst, src, nbytes, dst_offset=0, src_offset=0):
        """Device-to-device copy of `nbytes` bytes."""

    @abc.abstractmethod
    def memset_zero(self, buf, nbytes, offset=0):
        """Set `nbytes` bytes of `buf` from `offset` to zero."""

    @abc.abstractmethod
    def launch(self, module, kernel, grid, block, shared_bytes, args):
        """Run `kernel` of `module` on a 1-D `grid` of 1-D `block`s (ints)
        with `shared_bytes` of dynamic shared memory and `args`."""

    @abc.abstractmethod
    def gemm(self, dtype, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        """Column-major C = alpha*op(A)@op(B) + beta*C for float32/float64
        Buffers `a`, `b`, `c` (see the module docstring)."""

    @abc.abstractmethod
    def synchronize(self):
        """Wait until every queued call has finished."""
