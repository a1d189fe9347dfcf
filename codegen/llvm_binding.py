"""Binding LLVM: target machine, optimization, MCJIT, native symbols.

Owns everything that touches `llvmlite.binding`: initialization, the host
target machine (host CPU name and features, O3), the optimization pipeline,
MCJIT engines (kept alive as long as their functions), object code for the
disk cache, and the native symbols compiled code calls: glibc's libmvec
vector math (checked by address lookup; scalar libm otherwise), libm, and
NumPy's bundled OpenBLAS `cblas_?gemm` (ILP64).  IR *construction* lives
in llvm_emit.py / llvm_kernels.py (llvmlite.ir only); this module must not
build IR.
"""

import ctypes
import ctypes.util
import glob
import os
import threading

import llvmlite.binding as llvm

_lock = threading.Lock()
_state = {}


def initialize():
    """Initialize LLVM and the native symbols once per process."""
    with _lock:
        if _state:
            return _state
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_default_triple()
        cpu = llvm.get_host_cpu_name()
        features = llvm.get_host_cpu_features().flatten()
        tm = target.create_target_machine(cpu=cpu, features=features, opt=3,
                                          reloc="pic", codemodel="jitdefault")
        _state.update(target=target, tm=tm, cpu=cpu, features=features,
                      triple=llvm.get_process_triple(),
                      data_layout=str(tm.target_data))
        _state["vector_math"] = _load_vector_math(features)
        _state["gemm"] = _load_blas()
        _register_libm()
        return _state


def target_key():
    s = initialize()
    return f"{s['triple']}|{s['cpu']}|{s['features']}|llvm{llvm.llvm_version_info}"


def _load_vector_math(features):
    """{(libm name, float bits): (vector symbol, lanes)} of libmvec variants found."""
    found = {}
    if not os.uname().machine == "x86_64":
        return found
    for lib in ("libmvec.so.1", ctypes.util.find_library("mvec") or ""):
        try:
            if lib:
                llvm.load_library_permanently(lib)
                break
        except RuntimeError:
            continue
    avx2 = "+avx2" in features
    if not avx2:
        return found
    for fn in ("sin", "cos", "tan", "exp", "log", "pow", "atan", "asin", "acos", "sinh",
               "cosh", "tanh", "asinh", "acosh", "atanh", "expm1", "log1p", "atan2",
               "log2", "log10", "exp2", "cbrt"):
        # AVX2 variants: 4 doubles / 8 floats per call
        for bits, lanes, suffix in ((64, 4, ""), (32, 8, "f")):
            nargs = 2 if fn in ("pow", "atan2") else 1
            sym = f"_ZGVdN{lanes}{'v' * nargs}_{fn}{suffix}"
            if llvm.address_of_symbol(sym):
                found[(fn, bits)] = (sym, lanes)
    return found


def _load_blas():
    """Addresses of NumPy's OpenBLAS dgemm/sgemm (64-bit integer API), or {}."""
    try:
        import numpy
        libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir,
                                      "numpy.libs", "libscipy_openblas*"))
        for path in libs:
            llvm.load_library_permanently(path)
            out = {}
            for name, key in (("scipy_cblas_dgemm64_", "d"), ("scipy_cblas_sgemm64_", "s")):
                addr = llvm.address_of_symbol(name)
                if addr:
                    out[key] = name
            if out:
                # thread-count control: small products run on one thread
                for name, key in (("scipy_openblas_set_num_threads64_", "set_threads"),
                                  ("scipy_openblas_get_num_threads64_", "get_threads")):
                    if llvm.address_of_symbol(name):
                        out[key] = name
                return out
    except Exception:  # no bundled BLAS: the loop kernel is used instead
        pass
    return {}


def _register_libm():
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    # `cotan.<fn>` aliases: LLVM would turn a call of `exp` into the
    # `llvm.exp` intrinsic, which it then scalarizes; the aliases keep scalar
    # calls plain calls.
    for fn in ("sin", "cos", "tan", "exp", "log", "pow", "atan", "asin", "acos", "sinh",
               "cosh", "tanh", "asinh", "acosh", "atanh", "expm1", "log1p", "atan2",
               "fmod", "rint", "sqrt", "floor", "ceil", "trunc"):
        for suffix in ("", "f"):
            try:
                addr = ctypes.cast(getattr(libm, fn + suffix), ctypes.c_void_p).value
            except AttributeError:
                continue
            llvm.add_symbol(f"cotan.{fn}{suffix}", addr)
    libc = ctypes.CDLL(None)
    for fn in ("malloc", "realloc", "free", "memcpy", "memset", "pthread_create", "pthread_join"):
        try:
            llvm.add_symbol(fn, ctypes.cast(getattr(libc, fn), ctypes.c_void_p).value)
        except AttributeError:
            pass


#: unoptimized IR (characters) above which the cheaper pipeline is used
#: (O2, loops vectorized but not unrolled, no SLP): on jit(grad(mlp_loss))
#: (52 KB of IR) O3 with unrolling took 2.5x longer to optimize and
#: generate code for and made 3.5x more IR, with no measured run-time
#: gain (big programs spend their time in BLAS, vector math and
#: memory-bound loops, which still vectorize)
BIG_IR = int(os.environ.get("COTAN_BIG_IR", 30_000))


def _pass_builder(s, big):
    key = "pb_big" if big else "pb"
    if key not in s:
        # built once and kept: llvmlite's pass builder borrows the tuning
        # options, and building many of them has crashed LLVM
        pto = llvm.create_pipeline_tuning_options(speed_level=2 if big else 3)
        pto.loop_vectorization = True
        pto.slp_vectorization = not big
        pto.loop_unrolling = not big
        s["pto_big" if big else "pto"] = pto
        s[key] = llvm.create_pass_builder(s["tm"], pto)
    return s[key]


def optimize(ir_text):
    """Parse and optimize LLVM IR text (O3, or the cheaper pipeline when
    it is big); returns the ModuleRef."""
    s = initialize()
    mod = llvm.parse_assembly(ir_text)
    mod.triple = s["triple"]
    mod.data_layout = s["data_layout"]
    mod.verify()
    with _lock:
        pb = _pass_builder(s, len(ir_text) > BIG_IR)
        pb.getModulePassManager().run(mod, pb)
    return mod


def assembly(mod):
    return initialize()["tm"].emit_assembly(mod)


class NativeModule:
    """A JIT-compiled module; keeps the engine (and so the code) alive."""

    def __init__(self, mod, object_code=None):
        s = initialize()
        self.mod = mod
        # the engine takes ownership of its target machine: give it its own
        tm = s["target"].create_target_machine(cpu=s["cpu"], features=s["features"], opt=3,
                                               reloc="pic", codemodel="jitdefault")
        self.engine = llvm.create_mcjit_compiler(mod, tm)
        # keep the object code MCJIT produces, for the disk cache (no second
        # code generation pass)
        self.object_code = object_code

        def notify(module, buffer):
            if self.object_code is None:
                self.object_code = bytes(buffer)
        self.engine.set_object_cache(notify, None)
        if object_code is not None:
            self.engine.add_object_file(llvm.ObjectFileRef.from_data(object_code))
        self.engine.finalize_object()

    def address(self, name):
        addr = self.engine.get_function_address(name)
        if not addr:
            raise KeyError(name)
        return addr


def empty_module_for_objects():
    return llvm.parse_assembly("")


def object_code(mod):
    return initialize()["tm"].emit_object(mod)
