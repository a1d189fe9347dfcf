"""Matrix products in compiled code (llvmlite.ir): NumPy's bundled
OpenBLAS `cblas_?gemm` for float operands BLAS can read in place
(transposed views are passed as transpose flags, never copied), a loop
kernel otherwise.

Owns `emit_gemm` and the threading policy of products: below
GEMM_THREADED_MIN_FLOPS BLAS runs on one thread (OpenBLAS's threads spin),
and from GEMM_SPLIT_MIN_FLOPS the rows are split over cotan's own
short-lived threads, each a one-thread BLAS call.  Must not walk programs
nor bind LLVM.
"""

import os

import numpy as np
from llvmlite import ir

from .kernels import elem_ptr, load_mem, loop, num_threads, store_mem
from .values import I32, I64, PTR, Lazy, cast, reg_type, scalar_op

GEMM_THREADED_MIN_FLOPS = float(os.environ.get("COTAN_GEMM_THREADED_MIN_FLOPS", 1e9))
#: products from this many flops to GEMM_THREADED_MIN_FLOPS are split by
#: rows over cotan's threads (one-thread BLAS calls)
GEMM_SPLIT_MIN_FLOPS = float(os.environ.get("COTAN_GEMM_SPLIT_MIN_FLOPS", 5e7))



def emit_gemm(kern, b, a, bm, dest, blas):
    """dest(m,n) = a(m,k) @ bm(k,n): 2-D Arrays with any strides."""
    m, k = a.shape
    n = bm.shape[1]
    dt = dest.dtype
    key = {np.dtype(np.float64): "d", np.dtype(np.float32): "s"}.get(dt)
    if (key in blas and a.dtype == dt and bm.dtype == dt and m and n and k
            and _blas_layout(a) and _blas_layout(bm)):
        ta, lda = _blas_layout(a)
        tb, ldb = _blas_layout(bm)
        one_thread = 2 * m * n * k < GEMM_THREADED_MIN_FLOPS and \
            "set_threads" in blas and "get_threads" in blas
        if one_thread:
            # OpenBLAS's threads spin; below ~1 GFLOP they cost more than
            # they give, and on a busy machine much more (5x measured at
            # 256x784x512 on 2 loaded cores)
            set_fn = kern.module.globals.get(blas["set_threads"]) or ir.Function(
                kern.module, ir.FunctionType(ir.VoidType(), [I32]), blas["set_threads"])
            get_fn = kern.module.globals.get(blas["get_threads"]) or ir.Function(
                kern.module, ir.FunctionType(I32, []), blas["get_threads"])
            old_threads = b.call(get_fn, [])
            b.call(set_fn, [ir.Constant(I32, 1)])
        fty = reg_type(dt)
        fn = kern.module.globals.get(blas[key]) or ir.Function(
            kern.module, ir.FunctionType(ir.VoidType(), [I32, I32, I32, I64, I64, I64, fty,
                                                         PTR, I64, PTR, I64, fty, PTR, I64]),
            blas[key])

        def rows(kb, c, operands, start, stop, lanes):
            # C[start:stop] = op(A)[start:stop] @ op(B): row i of op(A)
            # is element i*lda (not transposed) or i (transposed)
            a_, b_ = operands.children
            step = lda if ta == 111 else 1
            a_ptr = elem_ptr(kb, a_, kb.mul(start, ir.Constant(I64, step)))
            c_ptr = elem_ptr(kb, c, kb.mul(start, ir.Constant(I64, n)))
            kb.call(fn, [ir.Constant(I32, 101), ir.Constant(I32, ta), ir.Constant(I32, tb),
                         kb.sub(stop, start), ir.Constant(I64, n), ir.Constant(I64, k),
                         ir.Constant(fty, 1.0), kb.bitcast(a_ptr, PTR),
                         ir.Constant(I64, lda), b_.ptr, ir.Constant(I64, ldb),
                         ir.Constant(fty, 0.0), kb.bitcast(c_ptr, PTR),
                         ir.Constant(I64, n)])

        nthreads = num_threads()
        if one_thread and nthreads > 1 and 2 * m * n * k >= GEMM_SPLIT_MIN_FLOPS \
                and m >= 8 * nthreads:
            # our own threads, each a one-thread BLAS call on a block of
            # rows: they exist only for this call (OpenBLAS's own spin)
            kern._parallel(b, dest, Lazy("gemm", [a, bm], dt, dest.shape), m, 1,
                           nthreads, rows, None)
        else:
            rows(b, dest, Lazy("gemm", [a, bm], dt, dest.shape), ir.Constant(I64, 0),
                 ir.Constant(I64, m), None)
        if one_thread:
            b.call(set_fn, [old_threads])
        return dest
    # loop kernel: i, p, j with the j loop innermost (vectorizes)
    kern.assign(b, dest, 0)
    with loop(b, m, name="mi") as i:
        with loop(b, k, name="mp") as p:
            av = cast(b, load_mem(b, a, b.add(b.mul(i, ir.Constant(I64, a.strides[0])),
                                              b.mul(p, ir.Constant(I64, a.strides[1])))),
                      a.dtype, dt)
            with loop(b, n, name="mj") as j:
                bv = cast(b, load_mem(b, bm, b.add(
                    b.mul(p, ir.Constant(I64, bm.strides[0])),
                    b.mul(j, ir.Constant(I64, bm.strides[1])))), bm.dtype, dt)
                off = b.add(b.mul(i, ir.Constant(I64, n)), j)
                old = load_mem(b, dest, off)
                prod = scalar_op(b, kern.math, "multiply", [av, bv], dt)
                store_mem(b, dest, off, scalar_op(b, kern.math, "add", [old, prod], dt))
    return dest


def _blas_layout(a):
    """(CblasNoTrans=111 / CblasTrans=112, leading dimension) for a 2-D view
    BLAS can read in place, or None."""
    r, c = a.shape
    sr, sc = a.strides
    if (sc == 1 or c == 1) and sr >= max(1, c):
        return 111, max(sr, c, 1) if r > 1 else max(c, 1)
    if (sr == 1 or r == 1) and sc >= max(1, r):
        return 112, max(sc, r, 1) if c > 1 else max(r, 1)
    return None
