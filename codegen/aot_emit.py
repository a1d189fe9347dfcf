"""The CPU backend's program, prepared for a shared object.

Owns `build_module(core, in_avals, name, target)`: the jit's typed program
and kernel plan emitted by llvm/emit.py, with what a standalone library
needs instead of what the jit resolves in-process:

* no BLAS: matmul uses the loop kernel (the jit calls NumPy's bundled
  OpenBLAS, which a standalone `.so` cannot rely on);
* libmvec only where the *target* CPU has AVX2, whatever the host has;
* the scalar math aliases (`cotan.sin`, ...) that the jit binds to libm
  addresses get bodies calling libm, so the object needs only libc/libm;
* the entry `cotan_entry` renamed `<name>__cotan_entry` and hidden.

Also the C-level signature (`AbiSignature`): input and output leaves in
cotan.tree_util order (tuple/list items in order, dict values by sorted
key) and the permutation from the emitter's output order to that order.
Must not change llvm_emit / llvm_kernels (it calls `emit_module` with its
own environment) nor run the system compiler (aot_link.py).
"""

import contextlib
import os
import threading

from llvmlite import ir

from ..errors import CompileError
from . import aot_binding
from .llvm import binding as llvm_binding
from .abstract import ShapedArray
from .llvm.backend import lower_cpu
from .llvm.emit import ENTRY, emit_module
from .llvm.kernels import llvm_text
from .plan import plan_function

_env_lock = threading.Lock()

# The libraries a cotan shared object may depend on.
ALLOWED_LIBRARIES = ("libc", "libm", "libmvec", "libpthread", "ld-linux")


class Leaf:
    """One run-time array (or scalar) crossing the C boundary."""

    __slots__ = ("path", "dtype", "shape")

    def __init__(self, path, aval):
        self.path = path
        self.dtype = aval.dtype
        self.shape = aval.shape

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __repr__(self):
        return f"Leaf({self.path!r}, {self.dtype}, {self.shape})"


class AbiSignature:
    """Inputs and outputs of a compiled function at the C boundary."""

    def __init__(self, inputs, outputs, out_order, in_avals, out_aval):
        self.inputs = inputs            # [Leaf] in tree_util order
        self.outputs = outputs          # [Leaf] in tree_util order
        self.out_order = out_order      # emitter output k -> tree_util position
        self.in_avals = in_avals
        self.out_aval = out_aval

    @property
    def input_dims(self):
        return [d for leaf in self.inputs for d in leaf.shape]


def _walk(aval, path, out, sort_keys):
    if isinstance(aval, (tuple, list)):
        for k, a in enumerate(aval):
            _walk(a, f"{path}[{k}]", out, sort_keys)
    elif isinstance(aval, dict):
        keys = sorted(aval) if sort_keys else list(aval)
        for k in keys:
            _walk(aval[k], f"{path}[{k!r}]", out, sort_keys)
    elif isinstance(aval, ShapedArray):
        out.append(Leaf(path, aval))


def abi_signature(params, in_avals, out_aval):
    """The AbiSignature of a program with `params` called with `in_avals`
    (whose dicts the caller built with sorted keys: the emitter reads inputs
    in insertion order) returning `out_aval`."""
    inputs = []
    for p, a in zip(params, in_avals):
        _walk(a, p, inputs, sort_keys=False)     # the order the emitter reads
    emitted, ordered = [], []
    _walk(out_aval, "result", emitted, sort_keys=False)
    _walk(out_aval, "result", ordered, sort_keys=True)
    position = {leaf.path: k for k, leaf in enumerate(ordered)}
    return AbiSignature(inputs, ordered, [position[leaf.path] for leaf in emitted],
                        in_avals, out_aval)


@contextlib.contextmanager
def _threads(n):
    """Emit with `n` worker threads for large elementwise loops: the emitter
    reads COTAN_NUM_THREADS when it emits, and bakes the count in."""
    with _env_lock:
        old = os.environ.get("COTAN_NUM_THREADS")
        os.environ["COTAN_NUM_THREADS"] = str(int(n))
        try:
            yield
        finally:
            if old is None:
                del os.environ["COTAN_NUM_THREADS"]
            else:
                os.environ["COTAN_NUM_THREADS"] = old


def define_math_forwarders(module):
    """Give each declared `cotan.<fn>` alias a body calling libm's `<fn>`:
    the jit binds the aliases to libm addresses in-process, a shared object
    must resolve them itself."""
    for g in list(module.globals.values()):
        if not (isinstance(g, ir.Function) and g.is_declaration
                and g.name.startswith("cotan.")):
            continue
        target_name = g.name[len("cotan."):]
        callee = module.globals.get(target_name)
        if callee is None:
            callee = ir.Function(module, g.function_type, target_name)
        g.linkage = "internal"
        g.attributes.add("alwaysinline")
        b = ir.IRBuilder(g.append_basic_block("entry"))
        b.ret(b.call(callee, list(g.args)))


def entry_symbol(name):
    return f"{name}__cotan_entry"


def build_module(core, in_avals, name, tgt, threads=1):
    """(optimized ModuleRef, AbiSignature) of `core` for `in_avals`."""
    lowered = lower_cpu(core, in_avals, f"aot:{name}:{in_avals!r}")
    tf = lowered.typed
    plan = plan_function(tf)
    env = dict(llvm_binding.initialize())
    env["gemm"] = {}
    env["lapack"] = {}      # AOT libraries link no BLAS/LAPACK: the lowerings say so
    env["print"] = False    # nor Python to print with
    env["vector_math"] = tgt.vector_math
    with _threads(threads):
        (module,), _, _ = emit_module(tf, plan, env)
    define_math_forwarders(module)
    mod = aot_binding.optimize(llvm_text(module), tgt)
    aot_binding.hide_symbols(mod, ENTRY, entry_symbol(name))
    # what the object still needs must come from libc/libm/libmvec: a
    # symbol only the jit's process provides (BLAS) would fail at load time
    jit_only = [s for s in aot_binding.undefined_symbols(mod) if s.startswith(("cotan.",
                                                                                "scipy_"))]
    if jit_only:
        raise CompileError(f"aot: {core.name} needs {', '.join(jit_only)}, which only the "
                           "jit's process provides; this function cannot be compiled ahead "
                           "of time yet")
    return mod, abi_signature(core.params, in_avals, tf.out_aval)
