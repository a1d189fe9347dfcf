"""The CPU backend: typed program → LLVM IR (llvmlite.ir) → native code.

Holds the LLVM emitter (emit.py, kernels.py, values.py and the per-topic
lowering modules), the binding to LLVM (binding.py: target machine,
optimization, MCJIT, native symbols) and the pipeline (backend.py).  The
lowering table is `lowerings.LOWERINGS`, registered into
`Primitive.lowerings["llvm"]`; a primitive this backend deliberately cannot
lower is declared with `runtime.table.declare_no_rule(name, "llvm", why)`.
Must not hold backend-neutral stages (those live in codegen/ itself).
"""
