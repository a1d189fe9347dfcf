"""The one `Lowered` / `Compiled` pair every backend's pipeline returns.

Owns the backend-neutral part of a lowering: the core form and input
abstract values it was made for, the typed program (inferred once, shared
by every later stage), the list of printable stages (`as_text(stage)`:
"python" and "typed" for every backend, then the backend's own, e.g.
"llvm"/"asm", "stablehlo"/"hlo", "cuda"/"host"), `COTAN_DUMP=<folder>`
(every stage written there once), and `Compiled`, what `compile()` gives:
the backend, the device and the output abstract value, plus the backend's
executable.  A backend subclasses both and implements `_backend_text` and
`compile`.  Must not import any backend.
"""

import hashlib
import os
import re

from ..autodiff.materialize import to_source
from .infer import infer_function, typed_text

COMMON_STAGES = ("python", "typed")


class Lowered:
    #: the backend's name ("cpu", "xla", "cuda")
    backend = None
    #: the stages `as_text` prints beyond COMMON_STAGES, first is the default
    backend_stages = ()
    #: stages COTAN_DUMP writes, with file extensions
    dump_stages = ()

    def __init__(self, core, in_avals, device=None, key_text=""):
        self.core = core
        self.in_avals = list(in_avals)
        self.device = device
        self.key_text = key_text
        self._typed = None
        self._out_aval = None

    @property
    def out_aval(self):
        """The output abstract value (inferring the typed program unless a
        cache hit already told it)."""
        return self._out_aval if self._out_aval is not None else self.typed.out_aval

    @out_aval.setter
    def out_aval(self, v):
        self._out_aval = v

    @property
    def stages(self):
        return COMMON_STAGES + tuple(self.backend_stages)

    @property
    def typed(self):
        if self._typed is None:
            self._typed = infer_function(self.core, self.in_avals)
        return self._typed

    def as_text(self, stage=None):
        stage = stage or self.backend_stages[0]
        text = self._text(stage)
        self.dump()
        return text

    def _text(self, stage):
        if stage == "python":
            return to_source(self.core.node)
        if stage == "typed":
            return typed_text(self.typed)
        if stage in self.backend_stages:
            return self._backend_text(stage)
        raise ValueError(f"unknown stage {stage!r} for the {self.backend} backend: use "
                         + ", ".join(repr(s) for s in self.stages))

    def _backend_text(self, stage):
        raise NotImplementedError

    def compile(self):
        raise NotImplementedError

    def dump(self):
        folder = os.environ.get("COTAN_DUMP")
        if not folder or getattr(self, "_dumped", False):
            return
        self._dumped = True
        os.makedirs(folder, exist_ok=True)
        tag = re.sub(r"[^A-Za-z0-9_]", "_", self.core.name) + "_" + \
            hashlib.sha1((self.backend + self.key_text + repr(self.in_avals)).encode()
                         ).hexdigest()[:8]
        for stage, ext in (("python", "py"), ("typed", "typed.txt")) + tuple(self.dump_stages):
            with open(os.path.join(folder, f"{tag}.{ext}"), "w") as f:
                f.write(self._text(stage))


class Compiled:
    """What `Lowered.compile()` returns: the backend's executable for one
    signature, with what every caller needs to know about it."""

    backend = None

    def __init__(self, out_aval, device=None):
        self.out_aval = out_aval
        self.device = device
