"""Matrix products on the GPU: cuBLAS through ctypes, or a tiled CUDA C kernel.

Owns finding and loading libcublas (the `nvidia-cublas` wheel's, else the
system's), a cuBLAS handle bound to a CudaRuntime's context and stream,
`?gemm` with cuBLAS's column-major convention (the `gemm` of
codegen/cuda/runtime_api.py), cuBLAS status codes as cotan errors, and
the tiled kernel (`GEMM_SOURCE`) that does the same product where cuBLAS
cannot be loaded (or `COTAN_CUDA_GEMM=tiled` asks for it).  pycuda is
not imported here: the tiled path launches through the runtime it is
given, so the CPU test harness can run it too.  Must not generate the
backend's kernels (codegen/cuda/) nor manage device memory.
"""

import ctypes
import ctypes.util
import glob
import importlib.metadata
import importlib.util
import os
import re

import numpy as np

from ..errors import CotanError, CompileError


class CublasUnavailable(CotanError, RuntimeError):
    """libcublas cannot be found or loaded; the message lists what was tried."""


class CublasError(CotanError, RuntimeError):
    """A cuBLAS call returned an error status."""


# cublasStatus_t (cublas_api.h)
STATUS = {
    0: "CUBLAS_STATUS_SUCCESS",
    1: "CUBLAS_STATUS_NOT_INITIALIZED",
    3: "CUBLAS_STATUS_ALLOC_FAILED",
    7: "CUBLAS_STATUS_INVALID_VALUE",
    8: "CUBLAS_STATUS_ARCH_MISMATCH",
    11: "CUBLAS_STATUS_MAPPING_ERROR",
    13: "CUBLAS_STATUS_EXECUTION_FAILED",
    14: "CUBLAS_STATUS_INTERNAL_ERROR",
    15: "CUBLAS_STATUS_NOT_SUPPORTED",
    16: "CUBLAS_STATUS_LICENSE_ERROR",
}
_STATUS_HINT = {
    1: "the cuBLAS handle was not created (no current CUDA context?)",
    3: "out of GPU memory for cuBLAS's workspace",
    7: "an argument is out of range (m, n, k < 0, or a leading dimension too small)",
    8: "the GPU lacks a feature this routine needs",
    13: "the kernel failed on the GPU",
}
OP = {"N": 0, "T": 1, "C": 2}   # cublasOperation_t

_PREFERRED_WHEELS = ("nvidia-cublas", "nvidia-cublas-cu13", "nvidia-cublas-cu12")


def _check(status, what):
    if status != 0:
        name = STATUS.get(status, f"status {status}")
        hint = _STATUS_HINT.get(status)
        raise CublasError(f"{what} failed: {name}" + (f" ({hint})" if hint else ""))


def _sonames_in(directory):
    """libcublas.so.N files (not libcublasLt) of `directory`, newest major first,
    then a plain libcublas.so."""
    found = []
    for p in glob.glob(os.path.join(directory, "libcublas.so*")):
        m = re.fullmatch(r"libcublas\.so(?:\.(\d+)(?:\.[\d.]+)?)?", os.path.basename(p))
        if m:
            found.append((int(m.group(1)) if m.group(1) else -1, p))
    found.sort(key=lambda t: (-t[0], len(t[1])))
    return [p for _, p in found]


def wheel_library_dirs(distributions=None, package_dirs=None):
    """Folders that hold a pip-installed libcublas: the files the
    nvidia-cublas* distributions record, then `<nvidia>/*/lib` of the
    `nvidia` namespace package (the cu12 wheel's nvidia/cublas/lib, the cu13
    wheel's nvidia/cu13/lib)."""
    dirs = []
    if distributions is None:
        distributions = []
        for name in _PREFERRED_WHEELS:
            try:
                distributions.append(importlib.metadata.distribution(name))
            except importlib.metadata.PackageNotFoundError:
                pass
    for dist in distributions:
        for f in dist.files or ():
            if os.path.basename(str(f)).startswith("libcublas.so"):
                d = os.path.dirname(str(dist.locate_file(f)))
                if d not in dirs:
                    dirs.append(d)
    if package_dirs is None:
        package_dirs = []
        try:
            spec = importlib.util.find_spec("nvidia")
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            package_dirs = list(spec.submodule_search_locations)
    found = []
    for base in package_dirs:
        for d in sorted(glob.glob(os.path.join(base, "*", "lib"))):
            majors = [_major(p) for p in _sonames_in(d)]
            if d not in dirs and majors:
                found.append((-max(majors), d))
    # the newest release first (cu13's before cu12's when both are installed)
    return dirs + [d for _, d in sorted(found)]


def _major(path):
    m = re.search(r"libcublas\.so\.(\d+)", os.path.basename(path))
    return int(m.group(1)) if m else -1


def system_library_dirs(environ=None):
    environ = os.environ if environ is None else environ
    dirs = []
    for var in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"):
        if environ.get(var):
            dirs.append(os.path.join(environ[var], "lib64"))
    dirs += ["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"]
    return dirs


def library_candidates(environ=None, distributions=None, package_dirs=None, system_dirs=None):
    """Paths (or, last, a bare soname for the loader's own search) to try,
    in order: $COTAN_CUBLAS, the wheel, the system.  A $COTAN_CUBLAS that
    names no file is an error, not a silent fall-through."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("COTAN_CUBLAS")
    if explicit:
        if not os.path.isfile(explicit):
            raise CublasUnavailable(f"COTAN_CUBLAS={explicit!r} names no file; point it at a "
                                    "libcublas.so.N or unset it")
        return [explicit]
    out = []
    for d in wheel_library_dirs(distributions, package_dirs):
        out += [p for p in _sonames_in(d) if p not in out]
    for d in (system_dirs if system_dirs is not None else system_library_dirs(environ)):
        out += [p for p in _sonames_in(d) if p not in out]
    name = ctypes.util.find_library("cublas")
    if name and name not in out:
        out.append(name)
    return out


def _preload_lt(path):
    """libcublas needs libcublasLt of the same release; a wheel's lies beside
    it, where the loader does not look unless told (no RPATH in older wheels)."""
    d = os.path.dirname(path)
    if not d:
        return
    m = re.search(r"libcublas\.so(\.\d+)?", os.path.basename(path))
    suffix = m.group(1) if m and m.group(1) else ""
    lt = os.path.join(d, "libcublasLt.so" + suffix)
    if os.path.exists(lt):
        ctypes.CDLL(lt, mode=ctypes.RTLD_GLOBAL)


_c_int = ctypes.c_int
_c_void_p = ctypes.c_void_p


def _declare(lib):
    """Prototypes of the few cuBLAS v2 entry points used (the `_v2` symbols:
    the unsuffixed ones are the legacy handle-less API)."""
    lib.cublasCreate_v2.argtypes = [ctypes.POINTER(_c_void_p)]
    lib.cublasDestroy_v2.argtypes = [_c_void_p]
    lib.cublasSetStream_v2.argtypes = [_c_void_p, _c_void_p]
    lib.cublasGetVersion_v2.argtypes = [_c_void_p, ctypes.POINTER(_c_int)]
    for name, real in (("cublasDgemm_v2", ctypes.c_double), ("cublasSgemm_v2", ctypes.c_float)):
        fn = getattr(lib, name)
        fn.argtypes = [_c_void_p, _c_int, _c_int, _c_int, _c_int, _c_int,
                       ctypes.POINTER(real), _c_void_p, _c_int, _c_void_p, _c_int,
                       ctypes.POINTER(real), _c_void_p, _c_int]
    for fn in (lib.cublasCreate_v2, lib.cublasDestroy_v2, lib.cublasSetStream_v2,
               lib.cublasGetVersion_v2, lib.cublasDgemm_v2, lib.cublasSgemm_v2):
        fn.restype = _c_int
    return lib


_LIB = None


def load_library(candidates=None):
    """The first candidate that loads and exports cublasDgemm_v2."""
    global _LIB
    if _LIB is not None and candidates is None:
        return _LIB
    tried = []
    for path in (library_candidates() if candidates is None else candidates):
        try:
            _preload_lt(path)
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            lib = _declare(lib)
        except (OSError, AttributeError) as e:
            tried.append(f"{path}: {e}")
            continue
        lib._cotan_path = path
        if candidates is None:
            _LIB = lib
        return lib
    raise CublasUnavailable(
        "cuBLAS not found: " + ("; ".join(tried) if tried else "no libcublas.so in the "
                                "nvidia-cublas wheel nor the system") +
        ". `pip install nvidia-cublas` (or set COTAN_CUBLAS to a libcublas.so.N)")


class Cublas:
    """A cuBLAS handle on the current context, its work on `stream_handle`."""

    def __init__(self, stream_handle, lib=None):
        self.lib = lib if lib is not None else load_library()
        h = _c_void_p()
        _check(self.lib.cublasCreate_v2(ctypes.byref(h)), "cublasCreate")
        self.handle = h
        _check(self.lib.cublasSetStream_v2(h, _c_void_p(stream_handle or None)),
               "cublasSetStream")
        v = _c_int()
        _check(self.lib.cublasGetVersion_v2(h, ctypes.byref(v)), "cublasGetVersion")
        self.version = v.value

    def describe(self):
        return f"cublas {self.version}"

    def gemm(self, dtype, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        dt = np.dtype(dtype)
        if dt == np.float64:
            fn, real = self.lib.cublasDgemm_v2, ctypes.c_double
        elif dt == np.float32:
            fn, real = self.lib.cublasSgemm_v2, ctypes.c_float
        else:
            raise CompileError(f"cuda gemm: cuBLAS ?gemm takes float32 or float64, not {dt}")
        if m == 0 or n == 0:
            return
        # leading dimensions of empty operands (k == 0) must still be >= 1
        _check(fn(self.handle, op_code(transa), op_code(transb), int(m), int(n), int(k),
                  ctypes.byref(real(alpha)), _c_void_p(int(a) or None), max(1, int(lda)),
                  _c_void_p(int(b) or None), max(1, int(ldb)),
                  ctypes.byref(real(beta)), _c_void_p(int(c)), max(1, int(ldc))),
               f"cublas{'D' if dt == np.float64 else 'S'}gemm(m={m}, n={n}, k={k}, "
               f"lda={lda}, ldb={ldb}, ldc={ldc})")

    def close(self):
        if self.handle is not None:
            self.lib.cublasDestroy_v2(self.handle)
            self.handle = None


def op_code(trans):
    """0 for 'N' (or 0/False), 1 for 'T' (or 1/True); 'C' is 'T' on reals."""
    if isinstance(trans, str):
        t = trans.upper()
        if t not in OP:
            raise CompileError(f"cuda gemm: transpose flag {trans!r} is not 'N', 'T' or 'C'")
        return min(OP[t], 1)
    if trans in (0, 1):
        return int(trans)
    raise CompileError(f"cuda gemm: transpose flag {trans!r} is not 'N', 'T' or 'C'")


# ---------------------------------------------------------------- tiled kernel

GEMM_TILE_M = 64
GEMM_TILE_N = 64
GEMM_THREADS = 256
GEMM_KERNELS = ("cotan_gemm_f64", "cotan_gemm_f32")

# Column-major C = alpha*op(A)@op(B) + beta*C.  A block computes a 64x64
# tile of C with 256 threads, 4x4 outputs each (rows ti+16r, cols tj+16s),
# over 16-deep slabs of op(A) and op(B) staged in shared memory.  Loads are
# ordered so consecutive threads read consecutive addresses for either
# transpose; the +1 column pads the strided shared stores off one bank.
# beta == 0 does not read C (as cuBLAS: C may hold NaN).
GEMM_SOURCE = r"""
#define CG_TM 64
#define CG_TN 64
#define CG_TK 16
#define CG_THREADS 256

template <typename T>
__device__ __forceinline__ void cotan_gemm_tile(
    int transa, int transb, int m, int n, int k, T alpha,
    const T* __restrict__ A, int lda, const T* __restrict__ B, int ldb,
    T beta, T* __restrict__ C, int ldc)
{
    __shared__ T As[CG_TK][CG_TM + 1];
    __shared__ T Bs[CG_TK][CG_TN + 1];
    const int tiles_m = (m + CG_TM - 1) / CG_TM;
    const int i0 = (int)(blockIdx.x % (unsigned)tiles_m) * CG_TM;
    const int j0 = (int)(blockIdx.x / (unsigned)tiles_m) * CG_TN;
    const int t = (int)threadIdx.x;
    const int ti = t % 16, tj = t / 16;
    T acc[4][4];
    for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s)
            acc[r][s] = T(0);
    for (int p0 = 0; p0 < k; p0 += CG_TK) {
        for (int e = t; e < CG_TM * CG_TK; e += CG_THREADS) {
            int ii, pp;
            if (transa) { pp = e % CG_TK; ii = e / CG_TK; }
            else        { ii = e % CG_TM; pp = e / CG_TM; }
            const int gi = i0 + ii, gp = p0 + pp;
            T v = T(0);
            if (gi < m && gp < k)
                v = transa ? A[gp + (long long)gi * lda] : A[gi + (long long)gp * lda];
            As[pp][ii] = v;
        }
        for (int e = t; e < CG_TN * CG_TK; e += CG_THREADS) {
            int jj, pp;
            if (transb) { jj = e % CG_TN; pp = e / CG_TN; }
            else        { pp = e % CG_TK; jj = e / CG_TK; }
            const int gj = j0 + jj, gp = p0 + pp;
            T v = T(0);
            if (gj < n && gp < k)
                v = transb ? B[gj + (long long)gp * ldb] : B[gp + (long long)gj * ldb];
            Bs[pp][jj] = v;
        }
        __syncthreads();
#pragma unroll
        for (int pp = 0; pp < CG_TK; ++pp) {
            T a[4], b[4];
            for (int r = 0; r < 4; ++r) a[r] = As[pp][ti + 16 * r];
            for (int s = 0; s < 4; ++s) b[s] = Bs[pp][tj + 16 * s];
            for (int r = 0; r < 4; ++r)
                for (int s = 0; s < 4; ++s)
                    acc[r][s] += a[r] * b[s];
        }
        __syncthreads();
    }
    for (int r = 0; r < 4; ++r) {
        const int gi = i0 + ti + 16 * r;
        if (gi >= m) continue;
        for (int s = 0; s < 4; ++s) {
            const int gj = j0 + tj + 16 * s;
            if (gj >= n) continue;
            T* c = C + gi + (long long)gj * ldc;
            *c = beta == T(0) ? alpha * acc[r][s] : alpha * acc[r][s] + beta * *c;
        }
    }
}

extern "C" __global__ void __launch_bounds__(CG_THREADS) cotan_gemm_f64(
    int transa, int transb, int m, int n, int k, double alpha,
    const double* __restrict__ A, int lda, const double* __restrict__ B, int ldb,
    double beta, double* __restrict__ C, int ldc)
{
    cotan_gemm_tile<double>(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

extern "C" __global__ void __launch_bounds__(CG_THREADS) cotan_gemm_f32(
    int transa, int transb, int m, int n, int k, float alpha,
    const float* __restrict__ A, int lda, const float* __restrict__ B, int ldb,
    float beta, float* __restrict__ C, int ldc)
{
    cotan_gemm_tile<float>(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
"""


def gemm_grid(m, n):
    return -(-m // GEMM_TILE_M) * -(-n // GEMM_TILE_N)


class TiledGemm:
    """`gemm` by GEMM_SOURCE's kernels, launched through any KernelRuntime."""

    def __init__(self, runtime, reason=""):
        self.rt = runtime
        self.reason = reason
        self._module = None

    def describe(self):
        return "tiled kernel" + (f" ({self.reason})" if self.reason else "")

    def gemm(self, dtype, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        dt = np.dtype(dtype)
        if dt == np.float64:
            kernel = "cotan_gemm_f64"
        elif dt == np.float32:
            kernel = "cotan_gemm_f32"
        else:
            raise CompileError(f"cuda gemm: the tiled kernel takes float32 or float64, not {dt}")
        ta, tb = op_code(transa), op_code(transb)
        if m == 0 or n == 0:
            return
        grid = gemm_grid(m, n)
        if grid >= 2 ** 31:
            raise CompileError(f"cuda gemm: a {m}x{n} product needs {grid} tiles, more than "
                               "one launch holds; install cuBLAS (pip install nvidia-cublas)")
        if self._module is None:
            self._module = self.rt.load(GEMM_SOURCE, GEMM_KERNELS)
        i32, real = np.int32, dt.type
        self.rt.launch(self._module, kernel, grid, GEMM_THREADS, 0,
                       (i32(ta), i32(tb), i32(m), i32(n), i32(k), real(alpha),
                        a, i32(max(1, lda)), b, i32(max(1, ldb)), real(beta), c,
                        i32(max(1, ldc))))

    def close(self):
        self._module = None


def make_gemm(runtime):
    """cuBLAS on the runtime's stream, else the tiled kernel (saying why)."""
    if os.environ.get("COTAN_CUDA_GEMM", "").lower() == "tiled":
        return TiledGemm(runtime, "COTAN_CUDA_GEMM=tiled")
    try:
        return Cublas(runtime.stream.handle)
    except CublasUnavailable as e:
        return TiledGemm(runtime, str(e))
