"""The CPU backend's pipeline: core form → typed → plan → LLVM IR → native.

Owns `lower_cpu(core, in_avals)` returning a `Lowered` whose stages are
printable (`as_text("python" | "typed" | "llvm" | "asm")`, the
neutral part in codegen/lowered.py) and whose
`compile()` gives a `NativeEntry` (the native function's address plus what
the caller needs: output abstract values).  `COTAN_DUMP=<folder>` writes
every stage there.  The disk cache (runtime/disk_cache.py) stores the
object code (one per part) keyed on the core-form source, signature and target.  Must
not know about Python-level calling (runtime/dispatch.py).
"""

from . import binding
from ..lowered import Compiled, Lowered as _Lowered
from .emit import ENTRY, emit_module
from .kernels import llvm_text
from ..plan import plan_function
from . import lowerings  # noqa: F401  (registers the lowerings)


class NativeEntry(Compiled):
    """A compiled function: `address` of `int32 cotan_entry(...)`."""

    backend = "cpu"

    def __init__(self, native, out_aval, n_inputs, n_outputs):
        Compiled.__init__(self, out_aval)
        self.native = native
        self.address = native.address(ENTRY)
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs


class Lowered(_Lowered):
    backend = "cpu"
    backend_stages = ("llvm", "asm", "llvm-unoptimized")
    dump_stages = (("llvm", "ll"), ("asm", "s"))

    def __init__(self, core, in_avals, key_text, out_aval=None):
        _Lowered.__init__(self, core, in_avals, None, key_text)
        self._plan = None
        self._ir = None
        self._opt = None
        self.out_aval = out_aval
        self.n_inputs = self.n_outputs = None

    def part_texts(self):
        """The unoptimized IR of each part (the entry's module first)."""
        if self._ir is None:
            tf = self.typed
            self._plan = plan_function(tf)
            mods, self.n_inputs, self.n_outputs = emit_module(
                tf, self._plan, binding.initialize(), parts=binding.compile_threads())
            self._ir = [llvm_text(m) for m in mods]
        return self._ir

    def llvm_ir(self):
        return "\n".join(self.part_texts())

    def _compiled(self):
        if self._opt is None:
            self._opt = binding.compile_parts(self.part_texts())
        return self._opt

    def optimized(self):
        """The optimized modules (one, or one per part of a big program)."""
        return self._compiled()[0]

    def _backend_text(self, stage):
        if stage == "llvm":
            return "\n".join(str(m) for m in self.optimized())
        if stage == "llvm-unoptimized":
            return self.llvm_ir()
        return "\n".join(binding.assembly(m) for m in self.optimized())

    def compile(self):
        mods, objects = self._compiled()
        self.dump()
        if objects is None:
            native = binding.NativeModule(mods[0])
        else:
            native = binding.NativeModule(binding.empty_module_for_objects(),
                                               object_codes=objects)
        return NativeEntry(native, self.out_aval, self.n_inputs, self.n_outputs)


def lower_cpu(core, in_avals, key_text=""):
    return Lowered(core, list(in_avals), key_text)
