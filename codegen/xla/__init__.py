"""The XLA backend: typed program → StableHLO text → PJRT executable.

Owns `emit.py` (the walk over the typed program: control flow, the error
status, the value helpers lowerings use), `values.py` (SSA values, element
types), `stacks.py` (reverse-mode stacks with static capacities),
`lowerings.py` (the one lowering table, registered into
`Primitive.lowerings["xla"]`, with declared reasons for what it does not
lower; `indexing.py`, `batching.py` and `ordering.py` add their rules to
it), `liveness.py` (minimal loop-carried and branch-result sets),
`binding.py` (jaxlib's PJRT client: compile, serialize, buffers) and
`backend.py` (the `Lowered` stages of one signature).  Must not touch the
LLVM backend's modules nor runtime/dispatch.py's caches.
"""
