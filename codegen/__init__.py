"""cotan.codegen: abstract values and type/shape inference, kernel planning
and the backend emitters (llvm, cuda, xla)."""
