"""The CPU backend's pipeline: core form → typed → plan → LLVM IR → native.

Owns `lower_cpu(core, in_avals)` returning a `Lowered` whose stages are
printable (`as_text("python" | "typed" | "llvm" | "asm")`) and whose
`compile()` gives a `NativeEntry` (the native function's address plus what
the caller needs: output abstract values).  `COTAN_DUMP=<folder>` writes
every stage there.  The disk cache (runtime/disk_cache.py) stores the
object code (one per part) keyed on the core-form source, signature and target.  Must
not know about Python-level calling (runtime/dispatch.py).
"""

import hashlib
import os
import re

from ...autodiff.materialize import to_source
from . import binding
from ..infer import infer_function, typed_text
from .emit import ENTRY, emit_module
from .kernels import llvm_text
from ..plan import plan_function
from . import lowerings  # noqa: F401  (registers the lowerings)



class NativeEntry:
    """A compiled function: `address` of `int32 cotan_entry(...)`."""

    def __init__(self, native, out_aval, n_inputs, n_outputs):
        self.native = native
        self.address = native.address(ENTRY)
        self.out_aval = out_aval
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs


class Lowered:
    def __init__(self, core, in_avals, key_text, out_aval=None):
        self.core = core
        self.in_avals = in_avals
        self.key_text = key_text
        self._typed = None
        self._plan = None
        self._ir = None
        self._opt = None
        self.out_aval = out_aval
        self.n_inputs = self.n_outputs = None

    @property
    def typed(self):
        if self._typed is None:
            self._typed = infer_function(self.core, self.in_avals)
            self.out_aval = self._typed.out_aval
        return self._typed

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

    def as_text(self, stage="llvm"):
        text = self._text(stage)
        self.dump()
        return text

    def _text(self, stage):
        if stage == "python":
            return to_source(self.core.node)
        if stage == "typed":
            return typed_text(self.typed)
        if stage == "llvm":
            return "\n".join(str(m) for m in self.optimized())
        if stage == "llvm-unoptimized":
            return self.llvm_ir()
        if stage == "asm":
            return "\n".join(binding.assembly(m) for m in self.optimized())
        raise ValueError(f"unknown stage {stage!r}: use 'python', 'typed', 'llvm' or 'asm'")

    def compile(self):
        mods, objects = self._compiled()
        self.dump()
        if objects is None:
            native = binding.NativeModule(mods[0])
        else:
            native = binding.NativeModule(binding.empty_module_for_objects(),
                                               object_codes=objects)
        return NativeEntry(native, self.out_aval, self.n_inputs, self.n_outputs)

    def dump(self):
        folder = os.environ.get("COTAN_DUMP")
        if not folder or getattr(self, "_dumped", False):
            return
        self._dumped = True
        os.makedirs(folder, exist_ok=True)
        tag = re.sub(r"[^A-Za-z0-9_]", "_", self.core.name) + "_" + \
            hashlib.sha1(self.key_text.encode()).hexdigest()[:8]
        for stage, ext in (("python", "py"), ("typed", "typed.txt"), ("llvm", "ll"),
                           ("asm", "s")):
            with open(os.path.join(folder, f"{tag}.{ext}"), "w") as f:
                f.write(self._text(stage))


def lower_cpu(core, in_avals, key_text=""):
    return Lowered(core, list(in_avals), key_text)
