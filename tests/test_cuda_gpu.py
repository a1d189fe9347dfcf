"""The GPU side of the cuda backend: runtime/cuda_device.py, runtime/cublas.py
and the cuda parts of runtime/devices.py.

Two kinds of test live here.
- Tests that run on any machine (no GPU, no driver): pycuda is never
  imported by importing cotan; the errors where pycuda or the driver is
  missing; cuBLAS discovery over fake library folders; the tiled gemm
  kernel compiled by nvcc for sm_90 without warnings, and its numerics
  with the kernel compiled as host C++ by a small shim (threads of a block
  as std::threads meeting at a std::barrier); and CudaRuntime itself over
  an emulated pycuda.driver whose "device memory" is host memory, so
  transfers, offsets, the pool, argument packing, module loading and the
  tiled gemm launch run end to end (the shim runs the kernel).
- Tests marked `cuda` (`pytest -m cuda`) that need a real GPU: the same
  runtime on pycuda, cuBLAS, device arrays and the corpus under
  jit(backend="cuda").  They are skipped only where no NVIDIA driver
  (libcuda.so.1) exists, with that reason.
"""

import ctypes
import os
import shutil
import struct
import subprocess
import sys
import threading
import types

import numpy as np
import pytest

import cotan
from cotan.errors import CotanError, CompileError
from cotan.runtime import cuda_device, cublas, devices as devices_mod
from cotan.runtime.cuda_device import CudaUnavailableError, CudaError, BlockPool, size_class

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NVCC = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc"
                                if os.path.exists("/usr/local/cuda/bin/nvcc") else None)


# ================================================================ lazy import

def test_importing_cotan_and_the_cuda_modules_never_imports_pycuda(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import sys\n"
        "import cotan, cotan.codegen.cuda, cotan.codegen.cuda.runtime_api\n"
        "import cotan.runtime.cuda_device, cotan.runtime.cublas, cotan.runtime.devices\n"
        "def f(x):\n    return x + 1.0\n"
        "assert cotan.jit(f)(1.0) == 2.0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pycuda'))\n")
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ================================================================ errors without a GPU

@pytest.fixture
def fresh_driver_state(monkeypatch):
    """cuda_device's memo of the driver and runtimes, emptied for one test."""
    monkeypatch.setattr(cuda_device, "_DRIVER", None)
    monkeypatch.setattr(cuda_device, "_DRIVER_ERROR", None)
    monkeypatch.setattr(cuda_device, "_RUNTIMES", {})
    monkeypatch.setattr(cuda_device, "_CURRENT", threading.local())
    monkeypatch.setattr(devices_mod, "_CUDA", None)
    for name in list(sys.modules):
        if name == "pycuda" or name.startswith("pycuda."):
            monkeypatch.delitem(sys.modules, name)
    return monkeypatch


def test_without_pycuda_the_error_says_pip_install(fresh_driver_state):
    fresh_driver_state.setitem(sys.modules, "pycuda", None)   # import pycuda -> ImportError
    with pytest.raises(CudaUnavailableError) as e:
        cotan.devices("cuda")
    assert "pip install cotan[cuda]" in str(e.value)
    assert isinstance(e.value, CotanError)
    # the failure is remembered, and said the same way again
    with pytest.raises(CudaUnavailableError, match=r"pip install cotan\[cuda\]"):
        cuda_device.get_runtime()


def test_without_a_driver_library_the_error_names_libcuda(fresh_driver_state, tmp_path):
    pkg = tmp_path / "pycuda"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VERSION_TEXT = 'fake'\n")
    # what pycuda's _driver extension raises where no driver is installed
    (pkg / "driver.py").write_text(
        "raise ImportError('libcuda.so.1: cannot open shared object file: "
        "No such file or directory')\n")
    fresh_driver_state.syspath_prepend(str(tmp_path))
    with pytest.raises(CudaUnavailableError) as e:
        cotan.devices("cuda")
    msg = str(e.value)
    assert "no NVIDIA driver (libcuda.so.1) found" in msg
    assert "backend='cpu'" in msg


def test_a_stub_driver_that_fails_cuinit_is_told_apart(fresh_driver_state):
    drv = types.ModuleType("pycuda.driver")

    class Error(Exception):
        pass

    def init():
        raise Error("cuInit failed: CUDA_ERROR_STUB_LIBRARY")

    drv.Error, drv.init = Error, init
    pkg = types.ModuleType("pycuda")
    pkg.driver = drv
    fresh_driver_state.setitem(sys.modules, "pycuda", pkg)
    fresh_driver_state.setitem(sys.modules, "pycuda.driver", drv)
    with pytest.raises(CudaUnavailableError, match=r"no usable NVIDIA driver \(libcuda.so.1\) "
                                                   r"found: cuInit failed.*STUB_LIBRARY"):
        cuda_device.get_runtime()


def test_unknown_backend_names_cuda_among_the_choices():
    with pytest.raises(ValueError, match="'cuda'"):
        cotan.devices("tpu")


# ================================================================ cuBLAS discovery

def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_cublas_is_found_in_the_wheel_layouts_newest_first(tmp_path):
    nv = tmp_path / "nvidia"
    _touch(nv / "cu13" / "lib" / "libcublasLt.so.13")
    cu13 = _touch(nv / "cu13" / "lib" / "libcublas.so.13")
    cu12 = _touch(nv / "cublas" / "lib" / "libcublas.so.12")
    _touch(nv / "cudnn" / "lib" / "libcudnn.so.9")           # not a cuBLAS folder
    got = cublas.library_candidates(environ={}, distributions=[], package_dirs=[str(nv)],
                                    system_dirs=[])
    got = [p for p in got if os.path.isabs(p)]
    assert got == [str(cu13), str(cu12)]


def test_cublas_files_recorded_by_the_distribution_come_first(tmp_path):
    lib = _touch(tmp_path / "site" / "nvidia" / "cu13" / "lib" / "libcublas.so.13")
    _touch(tmp_path / "site" / "nvidia" / "cu13" / "lib" / "libcublasLt.so.13")
    system = _touch(tmp_path / "usr" / "lib" / "libcublas.so.12")

    class FakeDist:
        files = ["nvidia/cu13/lib/libcublas.so.13", "nvidia/cu13/lib/libcublasLt.so.13",
                 "nvidia/cu13/include/cublas_api.h"]

        def locate_file(self, f):
            return tmp_path / "site" / f

    got = cublas.library_candidates(environ={}, distributions=[FakeDist()], package_dirs=[],
                                    system_dirs=[str(system.parent)])
    got = [p for p in got if os.path.isabs(p)]
    assert got == [str(lib), str(system)]


def test_cotan_cublas_overrides_and_a_wrong_one_is_an_error(tmp_path):
    lib = _touch(tmp_path / "libcublas.so.13")
    assert cublas.library_candidates(environ={"COTAN_CUBLAS": str(lib)}) == [str(lib)]
    with pytest.raises(cublas.CublasUnavailable, match="COTAN_CUBLAS"):
        cublas.library_candidates(environ={"COTAN_CUBLAS": str(tmp_path / "missing.so")})


def test_an_unloadable_cublas_lists_what_was_tried(tmp_path):
    bad = _touch(tmp_path / "libcublas.so.13")       # an empty file: not an ELF object
    with pytest.raises(cublas.CublasUnavailable) as e:
        cublas.load_library([str(bad)])
    assert str(bad) in str(e.value) and "pip install nvidia-cublas" in str(e.value)


class _FakeCublasLib:
    """Records cuBLAS calls; `status` is what gemm returns."""

    def __init__(self, status=0):
        self.status = status
        self.calls = []

    def cublasCreate_v2(self, href):
        ctypes.cast(href, ctypes.POINTER(ctypes.c_void_p))[0] = 0xABC
        return 0

    def cublasSetStream_v2(self, h, s):
        self.calls.append(("stream", h.value, s.value))
        return 0

    def cublasGetVersion_v2(self, h, vref):
        ctypes.cast(vref, ctypes.POINTER(ctypes.c_int))[0] = 130100
        return 0

    def cublasDestroy_v2(self, h):
        self.calls.append(("destroy",))
        return 0

    def _gemm(self, tag, args):
        h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc = args
        self.calls.append((tag, ta, tb, m, n, k, alpha._obj.value, a.value, lda, b.value, ldb,
                           beta._obj.value, c.value, ldc))
        return self.status

    def cublasDgemm_v2(self, *args):
        return self._gemm("D", args)

    def cublasSgemm_v2(self, *args):
        return self._gemm("S", args)


def test_cublas_gemm_passes_column_major_arguments_on_the_stream():
    lib = _FakeCublasLib()
    h = cublas.Cublas(0x5000, lib=lib)
    assert h.describe() == "cublas 130100"
    assert lib.calls[0] == ("stream", 0xABC, 0x5000)
    h.gemm(np.float64, "T", "N", 3, 4, 5, 2.0, 0x100, 5, 0x200, 5, 0.5, 0x300, 3)
    h.gemm(np.float32, "N", "T", 3, 4, 0, 1.0, 0x100, 3, 0x200, 4, 0.0, 0x300, 3)
    h.gemm(np.float64, "N", "N", 0, 4, 5, 1.0, 0x100, 1, 0x200, 5, 0.0, 0x300, 1)  # empty: no call
    assert lib.calls[1] == ("D", 1, 0, 3, 4, 5, 2.0, 0x100, 5, 0x200, 5, 0.5, 0x300, 3)
    assert lib.calls[2] == ("S", 0, 1, 3, 4, 0, 1.0, 0x100, 3, 0x200, 4, 0.0, 0x300, 3)
    assert len(lib.calls) == 3
    h.close()
    assert lib.calls[-1] == ("destroy",)


def test_cublas_status_becomes_a_cotan_error_naming_it():
    h = cublas.Cublas(0, lib=_FakeCublasLib(status=7))
    with pytest.raises(cublas.CublasError, match="CUBLAS_STATUS_INVALID_VALUE.*out of range"):
        h.gemm(np.float64, "N", "N", 2, 2, 2, 1.0, 1, 2, 2, 2, 0.0, 3, 2)
    with pytest.raises(CompileError, match="float32 or float64"):
        h.gemm(np.int32, "N", "N", 2, 2, 2, 1, 1, 2, 2, 2, 0, 3, 2)
    with pytest.raises(CompileError, match="transpose flag"):
        cublas.op_code("X")


# ================================================================ the tiled kernel

@pytest.mark.skipif(NVCC is None, reason="nvcc not found")   # CI machines have it
def test_tiled_gemm_kernel_compiles_for_sm90_without_warnings(tmp_path):
    src = tmp_path / "gemm.cu"
    src.write_text(cublas.GEMM_SOURCE)
    for flag in ("-cubin", "-ptx"):
        out = subprocess.run([NVCC, "-arch=sm_90", flag, "-Werror", "all-warnings",
                              "-o", str(tmp_path / "gemm.out"), str(src)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "warning" not in (out.stdout + out.stderr).lower()


SHIM_HEADER = r"""
// CUDA C kernels compiled as host C++: a block's threads are std::threads
// that meet at a std::barrier in __syncthreads; blocks run one after another,
// so __shared__ (a function-local static) is the running block's memory.
#include <barrier>
#include <thread>
#include <vector>
struct cg_dim3 { unsigned x, y, z; };
static thread_local cg_dim3 threadIdx;
static cg_dim3 blockIdx, blockDim, gridDim;
static std::barrier<> *cg_barrier;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict
#define __launch_bounds__(n)
static inline void __syncthreads() { cg_barrier->arrive_and_wait(); }
template <class K> static void cg_run(unsigned grid, unsigned block, K kernel) {
    gridDim = {grid, 1, 1}; blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx = {b, 0, 0};
        std::barrier<> bar(block);
        cg_barrier = &bar;
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < block; ++t)
            ts.emplace_back([=] { threadIdx = {t, 0, 0}; kernel(); });
        for (auto &th : ts) th.join();
    }
}
"""

SHIM_ENTRIES = r"""
#define CG_ENTRY(NAME, T) \
extern "C" void shim_##NAME(unsigned grid, unsigned block, int ta, int tb, int m, int n, \
    int k, T alpha, const T *A, int lda, const T *B, int ldb, T beta, T *C, int ldc) { \
    cg_run(grid, block, [=] { NAME(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); }); }
CG_ENTRY(cotan_gemm_f64, double)
CG_ENTRY(cotan_gemm_f32, float)
"""


@pytest.fixture(scope="module")
def gemm_shim(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler for the host shim")
    d = tmp_path_factory.mktemp("shim")
    src = d / "gemm_shim.cpp"
    src.write_text(SHIM_HEADER + cublas.GEMM_SOURCE + SHIM_ENTRIES)
    so = d / "gemm_shim.so"
    out = subprocess.run([cxx, "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-o",
                          str(so), str(src)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lib = ctypes.CDLL(str(so))
    for name, real in (("shim_cotan_gemm_f64", ctypes.c_double),
                       ("shim_cotan_gemm_f32", ctypes.c_float)):
        fn = getattr(lib, name)
        ci, cp = ctypes.c_int, ctypes.c_void_p
        fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ci, ci, ci, ci, ci, real, cp, ci, cp, ci,
                       real, cp, ci]
        fn.restype = None
    return lib


def _col_major(mat, ld):
    """`mat` (rows x cols) stored column-major with leading dimension ld >= rows."""
    rows, cols = mat.shape
    store = np.full((max(cols, 1), ld), np.nan, mat.dtype)
    store[:cols, :rows] = mat.T
    return store


def _from_col_major(store, rows, cols):
    return store[:cols, :rows].T


class ShimRuntime(cuda_device.KernelRuntime):
    """The contract on host memory with the shim running the gemm kernels:
    enough of a KernelRuntime to drive TiledGemm as a GPU runtime would."""

    name = "shim"

    def __init__(self, lib):
        self.lib = lib
        self.loads = []

    class Buf:
        def __init__(self, arr):
            self.arr = arr
            self.nbytes = arr.nbytes

    def load(self, source, kernel_names):
        self.loads.append(tuple(kernel_names))
        assert source == cublas.GEMM_SOURCE
        return self.lib

    def empty(self, nbytes):
        return self.Buf(np.empty(nbytes, np.uint8))

    def upload(self, array):
        return self.Buf(np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8).copy())

    def download(self, buf, shape, dtype, offset=0):
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return buf.arr[offset:offset + n].view(dtype).reshape(shape).copy()

    def read_scalar(self, buf, dtype, offset=0):
        return self.download(buf, (), dtype, offset)[()]

    def buffer_at(self, buf, offset):
        return self.Buf(buf.arr[offset:])

    def copy(self, dst, src, nbytes, dst_offset=0, src_offset=0):
        dst.arr[dst_offset:dst_offset + nbytes] = src.arr[src_offset:src_offset + nbytes]

    def memset_zero(self, buf, nbytes, offset=0):
        buf.arr[offset:offset + nbytes] = 0

    def launch(self, module, kernel, grid, block, shared_bytes, args):
        conv = []
        for a in args:
            if isinstance(a, self.Buf):
                conv.append(a.arr.ctypes.data)
            else:
                assert isinstance(a, np.generic), a
                conv.append(a.item())
        getattr(module, "shim_" + kernel)(grid, block, *conv)

    def gemm(self, *args):
        cublas.TiledGemm(self).gemm(*args)

    def synchronize(self):
        pass


GEMM_CASES = [  # m, n, k
    (70, 45, 33), (1, 1, 1), (64, 64, 16), (130, 3, 17), (5, 70, 0), (3, 2, 40)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ta,tb", [("N", "N"), ("T", "N"), ("N", "T"), ("T", "T")])
@pytest.mark.parametrize("mnk", GEMM_CASES, ids=lambda t: "x".join(map(str, t)))
def test_tiled_gemm_matches_numpy(gemm_shim, rng, dtype, ta, tb, mnk):
    m, n, k = mnk
    opa = rng.standard_normal((m, k)).astype(dtype)
    opb = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    a_stored = opa if ta == "N" else opa.T
    b_stored = opb if tb == "N" else opb.T
    lda, ldb, ldc = a_stored.shape[0] + 3, b_stored.shape[0] + 1, m + 2
    rt = ShimRuntime(gemm_shim)
    a = rt.upload(_col_major(a_stored, lda))
    b = rt.upload(_col_major(b_stored, ldb))
    for alpha, beta in ((1.5, 0.0), (-0.5, 2.0)):
        cstore = _col_major(c0 if beta else np.full_like(c0, np.nan), ldc)  # beta 0: C unread
        c = rt.upload(cstore)
        rt.gemm(dtype, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        got = _from_col_major(rt.download(c, cstore.shape, dtype), m, n)
        want = alpha * (opa.astype(np.float64) @ opb.astype(np.float64))
        if beta:
            want = want + beta * c0
        tol = 1e-12 if dtype == np.float64 else 2e-5
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, k))
        # the padding rows of C (ld > m) are never written
        full = rt.download(c, cstore.shape, dtype)
        np.testing.assert_array_equal(np.isnan(full[:n, m:]), np.isnan(cstore[:n, m:]))
    assert rt.loads == [cublas.GEMM_KERNELS] * 2


def test_tiled_gemm_grid_covers_every_tile():
    assert cublas.gemm_grid(1, 1) == 1
    assert cublas.gemm_grid(64, 64) == 1
    assert cublas.gemm_grid(65, 64) == 2
    assert cublas.gemm_grid(130, 129) == 9


# ================================================================ the runtime, emulated driver

def make_fake_driver(shim=None, n_devices=1, cc=(9, 0)):
    """A pycuda.driver look-alike: device memory is host memory (so the
    shim can run kernels on it), every access is bounds-checked against a
    live allocation, launches pack their arguments as pycuda does."""
    drv = types.ModuleType("pycuda.driver")

    class Error(Exception):
        pass

    class LogicError(Error):
        pass

    class MemoryError_(Error):
        pass

    state = types.SimpleNamespace(allocs={}, live=0, budget=None, allocated=0, freed=0,
                                  syncs=0, launches=[], images=[], refuse_cubin=False,
                                  attributes=[], contexts=[])
    drv.Error, drv.LogicError, drv.MemoryError = Error, LogicError, MemoryError_
    drv.state = state
    drv.init = lambda: None

    class Context:
        def push(self):
            state.contexts.append(self)

        @staticmethod
        def pop():
            state.contexts.pop()

    class Device:
        def __init__(self, i):
            self.i = i

        @staticmethod
        def count():
            return n_devices

        def name(self):
            return f"Fake GPU {self.i}"

        def compute_capability(self):
            return cc

        def total_memory(self):
            return 1 << 32

        def retain_primary_context(self):
            return Context()

    class Stream:
        handle = 0x5150

        def synchronize(self):
            state.syncs += 1

    class Alloc:
        def __init__(self, n):
            if state.budget is not None and state.live + n > state.budget:
                raise MemoryError_("cuMemAlloc failed: out of memory")
            self.arr = np.zeros(n, np.uint8)
            self.ptr = self.arr.ctypes.data
            self.n = n
            state.allocs[self.ptr] = self
            state.live += n
            state.allocated += 1

        def __int__(self):
            return self.ptr

        def free(self):
            del state.allocs[self.ptr]
            state.live -= self.n
            state.freed += 1

    def check(ptr, n):
        ptr = int(ptr)
        for base, a in state.allocs.items():
            if base <= ptr and ptr + n <= base + a.n:
                return ptr
        raise LogicError(f"invalid device address range 0x{ptr:x}+{n}")

    def memcpy_htod_async(dst, src, stream=None):
        src = np.ascontiguousarray(src)
        ctypes.memmove(check(dst, src.nbytes), src.ctypes.data, src.nbytes)

    def memcpy_dtoh_async(dst, src, stream=None):
        ctypes.memmove(dst.ctypes.data, check(src, dst.nbytes), dst.nbytes)

    def memcpy_dtod_async(dst, src, n, stream=None):
        ctypes.memmove(check(dst, n), check(src, n), n)

    def memset_d8_async(dst, value, n, stream=None):
        ctypes.memset(check(dst, n), value, n)

    class Function:
        def __init__(self, name):
            self.name = name
            self.arg_format = None

        def prepare(self, arg_types):
            self.arg_format = "".join(arg_types)

        def set_attribute(self, attr, value):
            state.attributes.append((self.name, attr, value))

        def prepared_async_call(self, grid, block, stream, *args, shared_size=0):
            struct.pack(self.arg_format, *args)      # what pycuda's packing would refuse
            state.launches.append((self.name, grid, block, self.arg_format, args, shared_size))
            if shim is not None and self.name.startswith("cotan_gemm"):
                for a, ch in zip(args, self.arg_format):
                    if ch == "P":
                        check(a, 1)
                getattr(shim, "shim_" + self.name)(grid[0], block[0],
                                                   *[a.item() if isinstance(a, np.generic)
                                                     else a for a in args])

    class Module:
        def __init__(self, names):
            self.names = names

        def get_function(self, name):
            if name not in self.names:
                raise LogicError("cuModuleGetFunction failed: named symbol not found")
            return Function(name)

    def module_from_buffer(image):
        state.images.append(bytes(image))
        if state.refuse_cubin and image.startswith(b"CUBIN"):
            raise LogicError("cuModuleLoadData failed: device kernel image is invalid")
        return Module(set(cublas.GEMM_KERNELS) | {"k", "scale"})

    drv.Context, drv.Device, drv.Stream = Context, Device, Stream
    drv.mem_alloc = Alloc
    drv.pagelocked_empty = lambda n, dtype: np.zeros(n, dtype)
    drv.memcpy_htod_async, drv.memcpy_dtoh_async = memcpy_htod_async, memcpy_dtoh_async
    drv.memcpy_dtod_async, drv.memset_d8_async = memcpy_dtod_async, memset_d8_async
    drv.module_from_buffer = module_from_buffer
    drv.mem_get_info = lambda: (1 << 31, 1 << 32)
    drv.function_attribute = types.SimpleNamespace(MAX_DYNAMIC_SHARED_SIZE_BYTES=8)
    return drv


@pytest.fixture
def fake_gpu(fresh_driver_state, request):
    """CudaRuntime over the emulated driver (and a fake nvcc: the kernels'
    real compilation is codegen/cuda/nvcc.py's business, tested there)."""
    shim = request.getfixturevalue("gemm_shim") if "gemm_shim" in request.fixturenames else None
    drv = make_fake_driver(shim)
    pkg = types.ModuleType("pycuda")
    pkg.driver = drv
    mp = fresh_driver_state
    mp.setitem(sys.modules, "pycuda", pkg)
    mp.setitem(sys.modules, "pycuda.driver", drv)
    nvcc = types.ModuleType("cotan.codegen.cuda.nvcc")
    nvcc.calls = []

    def compile_cubin(source, arch):
        nvcc.calls.append(("cubin", arch))
        return b"CUBIN" + source.encode()[:16]

    def compile_ptx(source, arch):
        nvcc.calls.append(("ptx", arch))
        return b"PTX" + source.encode()[:16]

    nvcc.compile_cubin, nvcc.compile_ptx = compile_cubin, compile_ptx
    import cotan.codegen.cuda as cuda_pkg
    mp.setitem(sys.modules, "cotan.codegen.cuda.nvcc", nvcc)
    mp.setattr(cuda_pkg, "nvcc", nvcc, raising=False)
    drv.nvcc = nvcc
    yield drv
    for rt in list(cuda_device._RUNTIMES.values()):
        rt.close()


def test_devices_lists_the_gpus(fake_gpu):
    devs = cotan.devices("cuda")
    assert [repr(d) for d in devs] == ["cuda:0"]
    assert devs[0].backend == "cuda" and devs[0].raw[0] == "Fake GPU 0"
    assert devs[0].raw[1] == (9, 0)


@pytest.mark.parametrize("x", [
    np.arange(12.0).reshape(3, 4), np.arange(6, dtype=np.float32), np.arange(5, dtype=np.int32),
    np.array([True, False, True]), np.array(2.5), np.zeros((0, 3)),
    np.arange(20.0).reshape(4, 5)[:, ::2], np.arange(4.0).astype(">f8")],
    ids=["f64", "f32", "i32", "bool", "0d", "empty", "strided", "bigendian"])
def test_device_put_round_trip(fake_gpu, x):
    dev = cotan.devices("cuda")[0]
    a = cotan.device_put(x, dev)
    assert type(a).__name__ == "DeviceArray"
    assert a.device == dev and a.shape == x.shape
    assert a.dtype == x.dtype.newbyteorder("=") and a.dtype.isnative
    assert a.block_until_ready() is a
    back = np.asarray(a)
    np.testing.assert_array_equal(back, x)
    assert back.flags.c_contiguous
    assert cotan.device_put(a, dev) is a


def test_device_put_a_pytree(fake_gpu):
    dev = cotan.devices("cuda")[0]
    t = cotan.device_put({"w": np.ones(3), "b": (np.zeros(2), np.float64(4.0))}, dev)
    assert t["w"].device == dev
    np.testing.assert_array_equal(np.asarray(t["b"][1]), 4.0)


def test_transfers_offsets_views_copies_and_memset(fake_gpu):
    rt = cuda_device.get_runtime()
    assert rt is cuda_device.get_runtime(cotan.devices("cuda")[0])
    assert rt.arch == "sm_90"
    x = np.arange(10, dtype=np.float64)
    buf = rt.upload(x)
    assert buf.nbytes == 80
    np.testing.assert_array_equal(rt.download(buf, (3,), np.float64, offset=16), [2.0, 3.0, 4.0])
    view = rt.buffer_at(buf, 40)
    assert view.nbytes == 40
    np.testing.assert_array_equal(rt.download(view, (5,), np.float64), x[5:])
    dst = rt.empty(80)
    rt.memset_zero(dst, 80)
    rt.copy(dst, buf, 24, dst_offset=8, src_offset=56)
    np.testing.assert_array_equal(rt.download(dst, (10,), np.float64),
                                  [0, 7, 8, 9, 0, 0, 0, 0, 0, 0])
    rt.memset_zero(dst, 8, offset=16)
    assert rt.read_scalar(dst, np.float64, offset=8) == 7.0
    assert rt.read_scalar(dst, np.float64, offset=16) == 0.0
    flag = rt.upload(np.array([0, 1], np.int64))
    s = rt.read_scalar(flag, np.int64, offset=8)
    assert s == 1 and isinstance(s, np.int64)
    assert rt.read_scalar(rt.upload(np.array([True])), np.bool_) == np.True_
    e = rt.empty(0)
    assert e.nbytes == 0 and rt.download(e, (0,), np.float32).shape == (0,)


def test_out_of_range_transfers_are_refused(fake_gpu):
    rt = cuda_device.get_runtime()
    buf = rt.upload(np.zeros(4))
    with pytest.raises(CudaError, match="outside a 32-byte buffer"):
        rt.download(buf, (4,), np.float64, offset=8)
    with pytest.raises(CudaError, match="outside"):
        rt.read_scalar(buf, np.float64, offset=32)
    with pytest.raises(CudaError, match="outside"):
        rt.copy(buf, buf, 16, dst_offset=24)
    with pytest.raises(CudaError, match="outside"):
        rt.buffer_at(buf, 40)


def test_the_pool_reuses_freed_blocks(fake_gpu):
    rt = cuda_device.get_runtime()
    a = rt.empty(1000)
    ptr = a.ptr
    del a
    b = rt.empty(900)                      # the same size class: the freed block again
    assert b.ptr == ptr and rt.pool.hits == 1
    c = rt.empty(1 << 20)
    c_ptr = c.ptr
    v = rt.buffer_at(c, 64)
    del c                                  # the view keeps its base alive
    d = rt.empty(1 << 20)
    assert d.ptr != c_ptr
    del v                                  # now the base goes back to the pool
    e = rt.empty((1 << 20) - 100)          # the same size class
    assert e.ptr == c_ptr
    assert fake_gpu.state.allocated == 3 and fake_gpu.state.freed == 0


def test_size_classes_bound_the_slack():
    for n in (1, 511, 513, 4095, 4097, 10 ** 5, 10 ** 6 + 1, 3 << 28):
        c = size_class(n)
        assert c >= n and (c - n) <= max(512, c // 16)
    assert size_class(1000) == size_class(900)


def test_the_pool_frees_held_blocks_when_memory_runs_out():
    freed = []
    budget = {"live": 0}

    class Raw(int):
        pass

    def alloc(n):
        if budget["live"] + n > 4096:
            raise MemoryError("out of memory")
        budget["live"] += n
        return Raw(0x1000 + budget["live"])

    def free(raw):
        freed.append(raw)
        budget["live"] -= 2048

    pool = BlockPool(alloc, free, max_held_bytes=1 << 20)
    b1 = pool.acquire(2048)
    pool.acquire(2048)
    pool.release(b1)                      # held, not freed
    assert freed == [] and pool.held_bytes == 2048
    b3 = pool.acquire(1536)               # another class: allocating fails, held freed, retried
    assert freed == [b1.raw] and b3.size == 1536 and pool.held_bytes == 0
    with pytest.raises(CudaError, match="out of GPU memory allocating 4000 bytes"):
        pool.acquire(4000)


def test_the_pool_does_not_hoard_beyond_its_cap():
    freed = []
    pool = BlockPool(lambda n: n, freed.append, max_held_bytes=1024)
    blocks = [pool.acquire(512) for _ in range(3)]
    for b in blocks:
        pool.release(b)
    assert pool.held_bytes == 1024 and len(freed) == 1


def test_launch_packs_typed_arguments(fake_gpu):
    rt = cuda_device.get_runtime()
    mod = rt.load("__global__ void k() {}", ["k"])
    buf = rt.empty(64)
    rt.launch(mod, "k", 7, 128, 0, (buf, np.int64(3), np.float32(2.0), np.float64(1.5),
                                    np.int32(-1), rt.buffer_at(buf, 8)))
    name, grid, block, fmt, args, shared = fake_gpu.state.launches[-1]
    assert (name, grid, block, fmt, shared) == ("k", (7, 1), (128, 1, 1), "PqfdiP", 0)
    assert args[0] == buf.ptr and args[5] == buf.ptr + 8
    rt.launch(mod, "k", 0, 128, 0, (buf,))          # an empty grid launches nothing
    assert len(fake_gpu.state.launches) == 1
    rt.launch(mod, "k", 1, 32, 64 * 1024, (buf,))  # big dynamic shared memory: opted in
    assert fake_gpu.state.attributes == [("k", 8, 65536)]
    assert fake_gpu.state.launches[-1][5] == 65536


def test_launch_refuses_untyped_arguments_and_unknown_kernels(fake_gpu):
    rt = cuda_device.get_runtime()
    mod = rt.load("__global__ void k() {}", ["k"])
    with pytest.raises(CompileError, match=r"kernel 'k': argument 1 is 3 \(int\).*np.int64"):
        rt.launch(mod, "k", 1, 32, 0, (rt.empty(8), 3))
    with pytest.raises(CompileError, match="'other' was not named"):
        rt.launch(mod, "other", 1, 32, 0, ())
    with pytest.raises(CompileError, match="no kernel 'missing'"):
        rt.load("__global__ void k() {}", ["missing"])
    with pytest.raises(CudaError, match="out of range"):
        rt.launch(mod, "k", 1, 2048, 0, ())


def test_modules_are_loaded_once_from_cubin_for_the_device_arch(fake_gpu):
    rt = cuda_device.get_runtime()
    src = "__global__ void k() {}"
    m1 = rt.load(src, ["k"])
    m2 = rt.load(src, ["k"])
    assert m1 is m2 and fake_gpu.nvcc.calls == [("cubin", "sm_90")]
    assert len(fake_gpu.state.images) == 1


def test_a_refused_cubin_falls_back_to_ptx(fake_gpu):
    fake_gpu.state.refuse_cubin = True
    rt = cuda_device.get_runtime()
    rt.load("__global__ void k() {}", ["k"])
    assert fake_gpu.nvcc.calls == [("cubin", "sm_90"), ("ptx", "sm_90")]
    assert fake_gpu.state.images[-1].startswith(b"PTX") and fake_gpu.state.images[-1][-1] == 0


def test_runtime_gemm_without_cublas_runs_the_tiled_kernel(gemm_shim, fake_gpu, monkeypatch, rng):
    monkeypatch.setenv("COTAN_CUDA_GEMM", "tiled")
    rt = cuda_device.get_runtime()
    m, n, k = 37, 70, 19
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    # row-major C = A @ B is column-major C^T = B^T @ A^T: the emitter's swap
    da, db, dc = rt.upload(a), rt.upload(b), rt.empty(m * n * 8)
    rt.gemm(np.float64, "N", "N", n, m, k, 1.0, db, n, da, k, 0.0, dc, n)
    np.testing.assert_allclose(rt.download(dc, (m, n), np.float64), a @ b, rtol=1e-12,
                               atol=1e-12)
    assert rt.gemm_backend.startswith("tiled kernel")
    assert fake_gpu.state.launches[-1][3] == "iiiiidPiPidPi"


def test_closing_a_runtime_returns_every_block(fake_gpu):
    rt = cuda_device.get_runtime()
    bufs = [rt.empty(4096) for _ in range(3)]
    del bufs
    assert fake_gpu.state.freed == 0           # held by the pool
    rt.close()
    assert fake_gpu.state.freed == 3 and fake_gpu.state.contexts == []


# ================================================================ the GPU check's bundle

def test_the_bundle_script_dry_run_names_the_run_command():
    out = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_bundle.sh"), "--dry-run"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "nothing is built" in out.stdout
    assert 'run(command="python3 bench/gpu_check.py' in out.stdout
    assert 'carry=[".whl"]' in out.stdout
    assert "gast==" in out.stdout


def test_the_gpu_check_plans_its_sections_without_a_gpu(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu_check.py"), "--plan",
                          "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for section in ("install", "smoke", "tests", "fused_f32", "fused_f64", "reduction",
                    "mlp", "loop", "overhead"):
        assert section in out.stdout


# ================================================================ on a real GPU (-m cuda)

def _driver_library_present():
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def gpu():
    if not _driver_library_present():
        pytest.skip("no NVIDIA driver (libcuda.so.1) on this machine: the cuda tests need a GPU")
    # a driver is there: anything missing now (pycuda, a GPU) fails, saying what
    return cuda_device.get_runtime()


KERNELS = r"""
extern "C" __global__ void scale(double *y, const double *x, double a, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        y[i] = a * x[i];
}
"""


@pytest.mark.cuda
def test_gpu_is_listed_with_its_arch(gpu):
    devs = cotan.devices("cuda")
    assert devs and repr(devs[0]) == "cuda:0"
    assert gpu.arch == "sm_%d%d" % devs[0].raw[1]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32, np.bool_])
def test_gpu_round_trip(gpu, rng, dtype):
    x = (rng.standard_normal(1000) * 100).astype(dtype)
    buf = gpu.upload(x)
    np.testing.assert_array_equal(gpu.download(buf, x.shape, x.dtype), x)
    it = x.dtype.itemsize
    np.testing.assert_array_equal(gpu.download(buf, (10,), x.dtype, offset=5 * it), x[5:15])
    assert gpu.read_scalar(buf, x.dtype, offset=7 * it) == x[7]
    dst = gpu.empty(x.nbytes)
    gpu.memset_zero(dst, x.nbytes)
    gpu.copy(dst, buf, 3 * it, dst_offset=it, src_offset=2 * it)
    want = np.zeros_like(x)
    want[1:4] = x[2:5]
    np.testing.assert_array_equal(gpu.download(dst, x.shape, x.dtype), want)


@pytest.mark.cuda
def test_gpu_pool_reuses_blocks(gpu):
    a = gpu.empty(1 << 22)
    ptr = a.ptr
    del a
    assert gpu.empty(1 << 22).ptr == ptr


@pytest.mark.cuda
def test_gpu_kernel_launch(gpu, rng):
    mod = gpu.load(KERNELS, ["scale"])
    x = rng.standard_normal(100_003)
    dx, dy = gpu.upload(x), gpu.empty(x.nbytes)
    gpu.launch(mod, "scale", 64, 256, 0, (dy, dx, np.float64(2.5), np.int64(x.size)))
    np.testing.assert_array_equal(gpu.download(dy, x.shape, x.dtype), 2.5 * x)


def _gpu_gemm_check(gpu, gemm, rng, dtype, ta, tb):
    m, n, k = 300, 257, 129
    opa = rng.standard_normal((m, k)).astype(dtype)
    opb = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    a_st, b_st = (opa if ta == "N" else opa.T), (opb if tb == "N" else opb.T)
    lda, ldb, ldc = a_st.shape[0] + 1, b_st.shape[0], m + 3
    a, b = gpu.upload(_col_major(a_st, lda)), gpu.upload(_col_major(b_st, ldb))
    cst = _col_major(c0, ldc)
    c = gpu.upload(cst)
    gemm.gemm(dtype, ta, tb, m, n, k, 0.5, a, lda, b, ldb, -1.0, c, ldc)
    gpu.synchronize()
    got = _from_col_major(gpu.download(c, cst.shape, dtype), m, n)
    want = 0.5 * (opa.astype(np.float64) @ opb.astype(np.float64)) - c0
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * k)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ta,tb", [("N", "N"), ("T", "N"), ("N", "T"), ("T", "T")])
def test_gpu_gemm_cublas(gpu, rng, dtype, ta, tb):
    try:
        lib = cublas.load_library()
    except cublas.CublasUnavailable as e:
        pytest.fail(f"the GPU machine has the nvidia-cublas wheel, yet: {e}")
    gemm = cublas.Cublas(gpu.stream.handle, lib=lib)
    _gpu_gemm_check(gpu, gemm, rng, dtype, ta, tb)
    gemm.close()


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ta,tb", [("N", "N"), ("T", "N"), ("N", "T"), ("T", "T")])
def test_gpu_gemm_tiled(gpu, rng, dtype, ta, tb):
    _gpu_gemm_check(gpu, cublas.TiledGemm(gpu), rng, dtype, ta, tb)


@pytest.mark.cuda
def test_gpu_runtime_gemm_uses_cublas(gpu, rng):
    a, b = rng.standard_normal((8, 5)), rng.standard_normal((5, 6))
    dc = gpu.empty(8 * 6 * 8)
    gpu.gemm(np.float64, "N", "N", 6, 8, 5, 1.0, gpu.upload(b), 6, gpu.upload(a), 5, 0.0, dc, 6)
    np.testing.assert_allclose(gpu.download(dc, (8, 6), np.float64), a @ b, rtol=1e-12)
    assert gpu.gemm_backend.startswith("cublas"), gpu.gemm_backend


@pytest.mark.cuda
def test_gpu_device_array(gpu, rng):
    dev = cotan.devices("cuda")[0]
    x = rng.standard_normal((3, 4))
    a = cotan.device_put(x, dev)
    assert a.device == dev and a.shape == (3, 4) and a.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(a.block_until_ready()), x)


def _corpus():
    sys.path.insert(0, ROOT)
    from tests.programs import PROGRAMS
    return PROGRAMS


def _jit_cuda_or_declared(f, args):
    """As tests/test_jit_programs.py: a declared refusal (a primitive without
    a cuda lowering, with its reason) is an xfail naming it, never a crash."""
    from cotan.errors import MissingRuleError, TypeInferenceError, ShapeError
    try:
        return cotan.jit(f, backend="cuda")(*args)
    except (MissingRuleError, TypeInferenceError, ShapeError) as e:
        pytest.xfail(f"{type(e).__name__}: {str(e).splitlines()[0]}")


@pytest.mark.cuda
@pytest.mark.parametrize("prog", _corpus(), ids=[p.name for p in _corpus()])
def test_gpu_corpus_jit(gpu, prog):
    args = prog.make_args(np.random.default_rng(0))
    want = prog.fn(*args)
    got = _jit_cuda_or_declared(prog.fn, args)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12)


@pytest.mark.cuda
@pytest.mark.parametrize("prog", _corpus(), ids=[p.name for p in _corpus()])
def test_gpu_corpus_jit_grad(gpu, prog):
    args = prog.make_args(np.random.default_rng(0))
    g = cotan.grad(prog.fn, argnums=prog.argnums if len(prog.argnums) > 1 else prog.argnums[0])
    want = g(*args)
    got = _jit_cuda_or_declared(g, args)
    got_leaves, got_tree = cotan.tree_util.tree_flatten(got)
    want_leaves, want_tree = cotan.tree_util.tree_flatten(want)
    assert got_tree == want_tree
    for a, b in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-9, atol=1e-12)


@pytest.mark.cuda
def test_gpu_device_arrays_stay_on_the_gpu_between_calls(gpu, rng):
    dev = cotan.devices("cuda")[0]
    f = cotan.jit(lambda x: x * 2.0 + 1.0, backend="cuda")
    x = rng.standard_normal(1000)
    y = f(cotan.device_put(x, dev))
    assert type(y).__name__ == "DeviceArray" and y.device == dev
    z = f(y)
    np.testing.assert_allclose(np.asarray(z), (x * 2.0 + 1.0) * 2.0 + 1.0, rtol=1e-15)


def _load_gpu_check():
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_check",
                                                  os.path.join(ROOT, "bench", "gpu_check.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_gpu_check_sections_run_on_a_cpu_stand_in(tmp_path, monkeypatch):
    """The check runs once, unattended, on the GPU machine: its sections and
    report are run here with cotan's cpu backend standing in for cuda (no
    JAX, no CuPy), so a slip in the script's own code shows up now."""
    gc = _load_gpu_check()
    monkeypatch.setattr(gc, "N26", 1 << 12)
    real = gc.interleaved
    monkeypatch.setattr(gc, "interleaved",
                        lambda impls, rounds, inner, run, min_rounds=3:
                        real(impls, 1, 2, run, min_rounds=1))

    class CpuCotan:
        tree_util = cotan.tree_util
        grad = staticmethod(cotan.grad)

        @staticmethod
        def jit(f, backend=None):
            assert backend == "cuda"
            return cotan.jit(f)

    rt = ShimRuntime(None)
    rt.gemm_backend = "stand-in"
    env = types.SimpleNamespace(cotan=CpuCotan, rt=rt, jax=None, cp=None, errors={},
                                put=lambda x: x)
    env.cotan_sync = lambda out: gc.Env.cotan_sync(env, out)
    run = gc.Run(str(tmp_path), 600)
    for name, fn in (("copy", lambda: gc.section_copy(run, env)),
                     ("fused_f32", lambda: gc.section_fused(run, env, np.float32)),
                     ("fused_f64", lambda: gc.section_fused(run, env, np.float64)),
                     ("reduction", lambda: gc.section_reduction(run, env)),
                     ("mlp", lambda: gc.section_mlp(run, env)),
                     ("loop", lambda: gc.section_loop(run, env)),
                     ("overhead", lambda: gc.section_overhead(run, env))):
        r = run.section(name, fn)
        assert r["ok"], (name, r.get("traceback"))
    s = run.results["sections"]
    assert s["fused_f64"]["check"]["rel_err_vs_numpy_1e6"] < 1e-13
    assert s["reduction"]["check"]["rel_err"] < 1e-5
    assert s["mlp"]["variant"] == "mlp_loss" and s["mlp"]["loss_check"]["rel_err"] < 1e-4
    assert s["loop"]["check"]["rel_err_vs_numpy"] < 1e-5
    md = (tmp_path / "gpu_check.md").read_text()
    for label in ("D2D copy", "fused 2^26 f32", "fused 2^26 f64", "sum(exp(x)*x)",
                  "MLP jit(loss)", "MLP jit(grad(loss))", "1000-step loop", "x + 1 call"):
        assert label in md
    assert "failed" not in md
    import json
    assert json.loads((tmp_path / "gpu_check.json").read_text())["sections"]["mlp"]["ok"]


def test_two_gpus_each_make_their_context_current_when_used(fresh_driver_state):
    drv = make_fake_driver(n_devices=2)
    pkg = types.ModuleType("pycuda")
    pkg.driver = drv
    fresh_driver_state.setitem(sys.modules, "pycuda", pkg)
    fresh_driver_state.setitem(sys.modules, "pycuda.driver", drv)
    assert [repr(d) for d in cotan.devices("cuda")] == ["cuda:0", "cuda:1"]
    rt0, rt1 = cuda_device.get_runtime(0), cuda_device.get_runtime(1)
    assert drv.state.contexts == [rt1.context]          # one current context, not a pile
    a = rt0.upload(np.arange(3.0))
    assert drv.state.contexts == [rt0.context]
    b = cotan.device_put(np.ones(2), cotan.devices("cuda")[1])
    assert drv.state.contexts == [rt1.context] and b.device.id == 1
    np.testing.assert_array_equal(rt0.download(a, (3,), np.float64), [0.0, 1.0, 2.0])
    assert drv.state.contexts == [rt0.context]
    with pytest.raises(CudaUnavailableError, match="cuda device 2 does not exist"):
        cuda_device.get_runtime(2)
    for rt in (rt0, rt1):
        rt.close()
