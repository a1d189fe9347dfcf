"""The XLA backend's stages for one call signature.

Owns `lower_xla(core, in_avals, device)` returning `XlaLowered`, whose
stages are printable (`as_text("python" | "typed" | "stablehlo" | "hlo")`;
the neutral part is codegen/lowered.py)
and whose `compile()` gives an `XlaExecutable` (the loaded PJRT executable
plus the signature it was emitted for, the captured arrays and the error
messages).  Must not know about Python-level calling (runtime/xla_dispatch.py).
"""

from ..lowered import Compiled, Lowered
from . import binding
from .emit import emit_stablehlo


class XlaExecutable(Compiled):
    backend = "xla"

    def __init__(self, exe, emitted, device, from_cache, out_aval=None):
        Compiled.__init__(self, out_aval, device)
        self.exe = exe
        self.in_leaves = emitted.in_leaves
        self.out_leaves = emitted.out_leaves
        self.messages = emitted.messages
        self.captures = emitted.captures
        self.from_cache = from_cache
        # captured arrays go to the device once
        self.capture_buffers = [binding.to_device(c, device) for c in emitted.captures]


class XlaLowered(Lowered):
    backend = "xla"
    backend_stages = ("stablehlo", "hlo")
    dump_stages = (("stablehlo", "mlir"),)

    def __init__(self, core, in_avals, device):
        Lowered.__init__(self, core, in_avals, device)
        self._emitted = None

    @property
    def emitted(self):
        if self._emitted is None:
            self._emitted = emit_stablehlo(self.typed)
        return self._emitted

    def _backend_text(self, stage):
        if stage == "stablehlo":
            return self.emitted.text
        return self.compile().exe.hlo_modules()[0].to_string()

    def compile(self):
        exe, cached = binding.compile_text(self.emitted.text, self.device)
        self.dump()
        return XlaExecutable(exe, self.emitted, self.device, cached, self.typed.out_aval)


def lower_xla(core, in_avals, device):
    return XlaLowered(core, in_avals, device)
