"""The XLA backend's stages for one call signature.

Owns `lower_xla(core, in_avals, device)` returning `XlaLowered`, whose
stages are printable (`as_text("python" | "typed" | "stablehlo" | "hlo")`)
and whose `compile()` gives an `XlaExecutable` (the loaded PJRT executable
plus the signature it was emitted for, the captured arrays and the error
messages).  Must not know about Python-level calling (runtime/xla_dispatch.py).
"""

from ...autodiff.materialize import to_source
from ..infer import infer_function, typed_text
from . import binding
from .emit import emit_stablehlo


class XlaExecutable:
    def __init__(self, exe, emitted, device, from_cache):
        self.exe = exe
        self.device = device
        self.in_leaves = emitted.in_leaves
        self.out_leaves = emitted.out_leaves
        self.messages = emitted.messages
        self.captures = emitted.captures
        self.from_cache = from_cache
        # captured arrays go to the device once
        self.capture_buffers = [binding.to_device(c, device) for c in emitted.captures]


class XlaLowered:
    def __init__(self, core, in_avals, device):
        self.core = core
        self.in_avals = list(in_avals)
        self.device = device
        self._typed = None
        self._emitted = None

    @property
    def typed(self):
        if self._typed is None:
            self._typed = infer_function(self.core, self.in_avals)
        return self._typed

    @property
    def out_aval(self):
        return self.typed.out_aval

    @property
    def emitted(self):
        if self._emitted is None:
            self._emitted = emit_stablehlo(self.typed)
        return self._emitted

    def as_text(self, stage="stablehlo"):
        if stage == "python":
            return to_source(self.core.node)
        if stage == "typed":
            return typed_text(self.typed)
        if stage == "stablehlo":
            return self.emitted.text
        if stage == "hlo":
            return self.compile().exe.hlo_modules()[0].to_string()
        raise ValueError(f"unknown stage {stage!r}: use 'python', 'typed', 'stablehlo' or "
                         "'hlo'")

    def compile(self):
        exe, cached = binding.compile_text(self.emitted.text, self.device)
        return XlaExecutable(exe, self.emitted, self.device, cached)


def lower_xla(core, in_avals, device):
    return XlaLowered(core, in_avals, device)
