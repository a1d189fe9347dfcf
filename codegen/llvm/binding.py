"""Binding LLVM: target machine, optimization, MCJIT, native symbols.

Owns everything that touches `llvmlite.binding`: initialization, the host
target machine (host CPU name and features, O3), the optimization pipeline,
MCJIT engines (kept alive as long as their functions), object code for the
disk cache, and the native symbols compiled code calls: glibc's libmvec
vector math (checked by address lookup; scalar libm otherwise), libm, and
NumPy's bundled OpenBLAS `cblas_?gemm` (ILP64).  IR *construction* lives
in llvm/emit.py / llvm/kernels.py (llvmlite.ir only); this module must not
build IR.
"""

import contextlib
import ctypes
import ctypes.util
import glob
import os
import threading

import llvmlite.binding as llvm

#: held around every entry into LLVM from cotan (parsing, optimizing,
#: code generation, engines, process-wide options).  Reentrant: one compile
#: takes it in dispatch and again in the functions below.  While one thread
#: holds it, the parts of a big program are compiled on worker threads with
#: llvmlite's own per-call lock bypassed (`_unlocked`); that is safe only
#: because no other cotan thread can be inside LLVM then (concurrent misses
#: of 8 threads crashed in `create_target_machine` while another thread's
#: parts ran and `set_option` rewrote LLVM's global options).
LOCK = threading.RLock()
_lock = LOCK
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
        _state["lapack"] = _load_lapack()
        _register_libm()
        _register_print()
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


def _load_lapack():
    """{routine: {"d": symbol, "s": symbol}} of the `LAPACKE_?<routine>_work`
    entry points (64-bit integers) of NumPy's bundled OpenBLAS, or {}.
    The `_work` variants: the caller passes the workspace, and no NaN
    check refuses inputs NumPy (which calls LAPACK directly) accepts."""
    found = {}
    try:
        import numpy
        libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir,
                                      "numpy.libs", "libscipy_openblas*"))
        for path in libs:
            llvm.load_library_permanently(path)
            # the routines codegen/llvm/lapack.py calls
            for routine in ("potrf", "geqrf", "orgqr", "syevd", "gesdd"):
                for key in ("d", "s"):
                    name = f"scipy_LAPACKE_{key}{routine}_work64_"
                    if llvm.address_of_symbol(name):
                        found.setdefault(routine, {})[key] = name
            if found:
                return found
    except Exception:  # no bundled LAPACK: the lowerings raise CompileError
        pass
    return found


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


def _register_print():
    """`cotan.print(spec, data)`, which compiled `print` calls
    (llvm/printing.py): decode the spec, rebuild the arguments from `data` and
    run the primitive's own Python implementation."""
    proto = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p))
    callback = _state["print_callback"] = proto(_print_from_native)   # kept alive
    llvm.add_symbol("cotan.print", ctypes.cast(callback, ctypes.c_void_p).value)
    _state["print"] = True


_print_specs = {}


def _print_from_native(spec, data):
    import ast
    import json

    import numpy as np
    from ...runtime.table import PRIMITIVES
    got = _print_specs.get(spec)
    if got is None:
        got = _print_specs[spec] = json.loads(spec.decode())

    def build(a):
        if "static" in a:
            return ast.literal_eval(a["static"])
        if "seq" in a:
            items = [build(x) for x in a["items"]]
            return tuple(items) if a["seq"] == "tuple" else items
        if "format" in a:
            return a["format"].format(*[build(x) for x in a["items"]])
        if "keys" in a:
            return dict(zip([ast.literal_eval(k) for k in a["keys"]],
                            [build(x) for x in a["items"]]))
        dt, shape = np.dtype(a["array"]), tuple(a["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0:
            return np.zeros(shape, dt)
        raw = (ctypes.c_char * (count * dt.itemsize)).from_address(data[a["at"]])
        arr = np.frombuffer(raw, dtype=dt, count=count).reshape(shape).copy()
        if shape == ():
            return arr.item() if a.get("python") else arr[()]
        return arr
    PRIMITIVES[got["prim"]].impl(*[build(a) for a in got["args"]],
                                 **{k: ast.literal_eval(v) for k, v in got["kwargs"].items()})


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


@contextlib.contextmanager
def _code_generation(big):
    """Code generation settings: for big modules, no loop strength
    reduction.  On jit(grad(mlp_loss)) it was the costliest pass of all
    (30 ms of 150), with no run-time difference measured on the MLP, the
    2M-element expression, the recurrence or an RNN gradient: big modules
    spend their time in BLAS, vector math and memory-bound loops.  LLVM's
    switch is process-wide, so it is set only around our own code
    generation, under the lock."""
    if not big:
        yield
        return
    with _lock:
        llvm.set_option("", "-disable-lsr=true")
        try:
            yield
        finally:
            llvm.set_option("", "-disable-lsr=false")


def compile_threads():
    """How many modules a big program is split into, each optimized and
    compiled on a thread of its own (`COTAN_COMPILE_THREADS`, default:
    the cores, at most 4)."""
    try:
        n = int(os.environ.get("COTAN_COMPILE_THREADS", "") or min(4, os.cpu_count() or 1))
    except ValueError:
        n = 1
    return max(1, n)


_workers = {}
_local = threading.local()


def _compile_part(text, s):
    """Optimize one part (its own LLVM context: contexts are not shared
    between threads) and generate its object code."""
    if not hasattr(_local, "pb"):
        # one pass builder and target machine per worker thread, kept
        _local.pto = llvm.create_pipeline_tuning_options(speed_level=2)
        _local.pto.loop_vectorization = True
        _local.pto.slp_vectorization = False
        _local.pto.loop_unrolling = False
        # static relocations: MCJIT resolved a second object's
        # position-independent constant-pool loads against the first
        # object's GOT (wrong numbers; tests/test_jit_parts.py)
        _local.tm = s["target"].create_target_machine(cpu=s["cpu"], features=s["features"],
                                                      opt=3, reloc="static",
                                                      codemodel="jitdefault")
        _local.pb = llvm.create_pass_builder(_local.tm, _local.pto)
    mod = llvm.parse_assembly(text, context=llvm.create_context())
    # the context frees its modules when it is disposed; the module's own
    # wrapper must not dispose it too: when both wrappers end in cyclic
    # garbage (a traceback holding this frame, a Lowered in a cycle) the
    # collector finalizes them in any order, and a module disposed after
    # its context segfaulted ("Garbage-collecting", tests/test_long_run.py)
    mod._owned = True
    mod.triple = s["triple"]
    mod.data_layout = s["data_layout"]
    mod.verify()
    mpm = _local.pb.getModulePassManager()
    run, emit = _unlocked("LLVMPY_RunNewModulePassManager"), \
        _unlocked("LLVMPY_TargetMachineEmitToMemory")
    if run is None or emit is None:
        mpm.run(mod, _local.pb)
        return mod, _local.tm.emit_object(mod)
    run(mpm, mod, _local.pb)
    from llvmlite.binding import ffi
    with ffi.OutputString() as err:
        buf = emit(_local.tm, mod, 1, err)
        if not buf:
            raise RuntimeError(str(err))
    try:
        return mod, ctypes.string_at(ffi.lib.LLVMPY_GetBufferStart(buf),
                                     ffi.lib.LLVMPY_GetBufferSize(buf))
    finally:
        ffi.lib.LLVMPY_DisposeMemoryBuffer(buf)


def _unlocked(name):
    """The C function behind llvmlite's `ffi.lib.<name>` without the lock
    llvmlite puts around every LLVM call (it serializes all threads, so
    parts would compile one after the other).  Safe for the two calls that
    take the time, optimizing and generating code: each part has its own
    LLVM context, pass builder and target machine.  None when this
    llvmlite is built differently (the locked calls are used instead)."""
    try:
        from llvmlite.binding import ffi
        fn = getattr(ffi.lib, name)
        return getattr(fn, "_cfn", None)
    except Exception:
        return None


def compile_parts(texts):
    """(optimized ModuleRefs, object codes or None) of a program's parts.

    A small program's parts are linked into one module and optimized as
    before (MCJIT generates its code: objects None).  A big one's parts
    are optimized and compiled side by side, one thread each (LLVM
    releases the GIL): jit(grad(mlp_loss)) spends most of its compile
    time there."""
    s = initialize()
    big = sum(len(t) for t in texts) > BIG_IR
    if len(texts) == 1 or not big:
        with _lock:
            mod = _parse(texts[0])
            for t in texts[1:]:
                mod.link_in(_parse(t))
            _run_pipeline(mod, s, big)
        return [mod], None
    with _lock:
        pool = _workers.get(len(texts))
        if pool is None:
            import concurrent.futures
            pool = _workers[len(texts)] = concurrent.futures.ThreadPoolExecutor(
                len(texts), thread_name_prefix="cotan-llvm")
        llvm.set_option("", "-disable-lsr=true")     # see _code_generation
        try:
            done = list(pool.map(lambda t: _compile_part(t, s), texts))
        finally:
            llvm.set_option("", "-disable-lsr=false")
    return [m for m, _ in done], [o for _, o in done]


def _parse(text):
    s = initialize()
    with _lock:
        mod = llvm.parse_assembly(text)
        mod.triple = s["triple"]
        mod.data_layout = s["data_layout"]
        mod.verify()
    return mod


def _run_pipeline(mod, s, big):
    with _lock:
        pb = _pass_builder(s, big)
        pb.getModulePassManager().run(mod, pb)
    mod.cotan_big = big


def optimize(ir_text):
    """Parse and optimize LLVM IR text (O3, or the cheaper pipeline when
    it is big); returns the ModuleRef."""
    s = initialize()
    with _lock:
        mod = _parse(ir_text)
        _run_pipeline(mod, s, len(ir_text) > BIG_IR)
    return mod


def assembly(mod):
    tm = initialize()["tm"]
    with _lock:
        return tm.emit_assembly(mod)


class NativeModule:
    """A JIT-compiled program; keeps the engine (and so the code) alive.

    Built from one optimized module (MCJIT generates its code, which is
    kept as `object_codes` for the disk cache) or from object code
    (`object_codes`: one per part, from the disk cache or from
    `compile_parts`), linked into one engine."""

    def __init__(self, mod, object_codes=None):
        s = initialize()
        with _lock:
            self._build(s, mod, object_codes)

    def _build(self, s, mod, object_codes):
        self.mod = mod
        # the engine takes ownership of its target machine: give it its own
        tm = s["target"].create_target_machine(cpu=s["cpu"], features=s["features"], opt=3,
                                               reloc="pic", codemodel="jitdefault")
        self.engine = llvm.create_mcjit_compiler(mod, tm)
        self.object_codes = list(object_codes) if object_codes is not None else None
        # the callback must not hold `self`: engine -> callback -> self ->
        # engine was a cycle, so engines were freed by the garbage collector
        # at arbitrary points instead of when their function was dropped
        generated = []

        def notify(module, buffer):
            if not generated:
                generated.append(bytes(buffer))
        self.engine.set_object_cache(notify, None)
        if object_codes is not None:
            for code in object_codes:
                self.engine.add_object_file(llvm.ObjectFileRef.from_data(code))
            self.engine.finalize_object()
        else:
            with _code_generation(big=getattr(mod, "cotan_big", False)):
                self.engine.finalize_object()
            if generated:
                self.object_codes = generated

    def address(self, name):
        with _lock:
            addr = self.engine.get_function_address(name)
        if not addr:
            raise KeyError(name)
        return addr


def empty_module_for_objects():
    with _lock:
        return llvm.parse_assembly("")


def parse_optimized(text):
    """A module from optimized IR text (the disk cache's fallback), for
    `NativeModule`."""
    with _lock:
        return llvm.parse_assembly(text)


def object_code(mod):
    tm = initialize()["tm"]
    with _lock:
        return tm.emit_object(mod)
