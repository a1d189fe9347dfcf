"""The XLA backend: typed program → StableHLO text → PJRT executable.

Owns `emit.py` (the walk over the typed program: values, control flow,
stacks, the error flag), `lowerings.py` (the one lowering table, registered
into `Primitive.lowerings["xla"]`, with declared reasons for what it does
not lower), `liveness.py` (minimal loop-carried and branch-result sets),
`binding.py` (jaxlib's PJRT client: compile, serialize, buffers) and
`backend.py` (the `Lowered` stages of one signature).  Must not touch the
LLVM backend's modules nor runtime/dispatch.py's caches.
"""
