"""Binding LLVM for ahead-of-time builds: a named target, optimization,
object code.

Owns what AOT needs from `llvmlite.binding` beyond the jit's host set-up in
llvm/binding.py: a target machine for a *named* CPU (`"host"`, or a
portable baseline such as `"x86-64-v2"`, whose code must not use host-only
features), the O3 pipeline run with that machine (so vectorization only
uses the target's instructions), position-independent object code, and the
list of glibc libmvec variants the target may call.  Must not build IR
(aot_emit.py) nor run the system compiler (aot_link.py); must not change
llvm_binding's jit state (it only calls `llvm_binding.initialize()`).
"""

import os
import threading

import llvmlite.binding as llvm

from .llvm import binding as llvm_binding

_lock = threading.Lock()
_targets = {}

# CPU names LLVM knows whose baseline includes AVX2 (so glibc's AVX2 libmvec
# variants `_ZGVdN4v_*` may be called).  Anything else gets scalar libm
# unless the caller names `+avx2` in `features`.
_AVX2_CPUS = {
    "x86-64-v3", "x86-64-v4", "haswell", "broadwell", "skylake", "skylake-avx512",
    "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server",
    "tigerlake", "rocketlake", "alderlake", "raptorlake", "meteorlake",
    "sapphirerapids", "emeraldrapids", "graniterapids", "znver1", "znver2", "znver3",
    "znver4", "znver5",
}

# libm functions with AVX2 libmvec variants that compiled code may call
_VECTOR_FUNCTIONS = ("sin", "cos", "tan", "exp", "log", "pow", "atan", "asin", "acos", "sinh",
                     "cosh", "tanh", "asinh", "acosh", "atanh", "expm1", "log1p", "atan2",
                     "log2", "log10", "exp2", "cbrt")


class AotTarget:
    """A target machine for one (cpu, features) pair, with its pass builder.

    `vector_math` has the shape of llvm_binding's: {(libm name, float bits):
    (libmvec symbol, lanes)}; empty when the target has no AVX2."""

    def __init__(self, cpu, features):
        s = llvm_binding.initialize()
        self.requested = cpu
        if cpu == "host":
            self.cpu = llvm.get_host_cpu_name()
            self.features = llvm.get_host_cpu_features().flatten() if features is None \
                else features
        else:
            self.cpu = cpu
            self.features = features or ""
        self.triple = llvm.get_process_triple()
        self.tm = s["target"].create_target_machine(cpu=self.cpu, features=self.features,
                                                    opt=3, reloc="pic", codemodel="default")
        self.data_layout = str(self.tm.target_data)
        self.vector_math = self._vector_math()
        # llvmlite's pass builder borrows the tuning options: keep both alive
        self.pto = llvm.create_pipeline_tuning_options(speed_level=3)
        self.pto.loop_vectorization = True
        self.pto.slp_vectorization = True
        self.pto.loop_unrolling = True
        self.pb = llvm.create_pass_builder(self.tm, self.pto)

    def has_avx2(self):
        if "+avx2" in self.features.split(","):
            return True
        if "-avx2" in self.features.split(","):
            return False
        return self.cpu in _AVX2_CPUS

    def _vector_math(self):
        if os.uname().machine != "x86_64" or not self.has_avx2():
            return {}
        found = {}
        # llvm_binding.initialize() loaded libmvec into the process: a symbol
        # that resolves here exists in the libmvec the .so will link against
        for fn in _VECTOR_FUNCTIONS:
            nargs = 2 if fn in ("pow", "atan2") else 1
            for bits, lanes, suffix in ((64, 4, ""), (32, 8, "f")):
                sym = f"_ZGVdN{lanes}{'v' * nargs}_{fn}{suffix}"
                if llvm.address_of_symbol(sym):
                    found[(fn, bits)] = (sym, lanes)
        return found

    def describe(self):
        feats = f" +features {self.features}" if self.features and self.requested != "host" \
            else ""
        return f"{self.triple}, cpu {self.cpu}{feats}"


def target(cpu="host", features=None):
    """The (cached) AotTarget for `cpu`."""
    key = (cpu, features)
    with _lock:
        t = _targets.get(key)
        if t is None:
            t = _targets[key] = AotTarget(cpu, features)
        return t


def optimize(ir_text, tgt):
    """Parse, verify and O3-optimize IR for `tgt`; returns the ModuleRef."""
    mod = llvm.parse_assembly(ir_text)
    mod.triple = tgt.triple
    mod.data_layout = tgt.data_layout
    mod.verify()
    with _lock:
        tgt.pb.getModulePassManager().run(mod, tgt.pb)
    return mod


def hide_symbols(mod, entry, new_entry):
    """Rename the entry function and give every defined, non-local symbol
    hidden visibility: the shared object exports only the C wrappers, so
    two cotan libraries can be loaded in one process."""
    fn = mod.get_function(entry)
    fn.name = new_entry
    for g in list(mod.functions) + list(mod.global_variables):
        if g.is_declaration:
            continue
        if g.linkage not in (llvm.Linkage.internal, llvm.Linkage.private):
            g.visibility = "hidden"


def undefined_symbols(mod):
    return sorted(f.name for f in mod.functions
                  if f.is_declaration and not f.name.startswith("llvm."))


def object_code(mod, tgt):
    return tgt.tm.emit_object(mod)


def assembly(mod, tgt):
    return tgt.tm.emit_assembly(mod)
