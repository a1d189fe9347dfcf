"""LLVM lowerings of the LAPACK factorizations: cholesky, qr, eigh, svd.

Owns the `llvm` lowerings of `cholesky` (potrf, the lower triangle with
the upper zeroed), `qr` (geqrf, then orgqr for Q; modes 'reduced',
'complete' and 'r'), `eigh` (syevd, jobz 'V', the given UPLO) and `svd`
(gesdd, jobz 'A'/'S'/'N' by full_matrices/compute_uv; hermitian=True
through syevd and a sort by magnitude, as NumPy does), over stacks of
matrices.  They call LAPACK the way NumPy does, so the results agree:
each matrix is copied into a column-major float64 scratch (NumPy
computes float32 and integer input in float64 too and casts the results)
and handed to the `LAPACKE_d<routine>_work` entry points of NumPy's
bundled OpenBLAS that binding._load_lapack found (`em.lapack`), with
one heap workspace per call sized by LAPACK's own query.  A LAPACK
failure (info != 0) exits with NumPy's LinAlgError message.  Where no
LAPACK is linked (cotan.aot libraries need only libc, libm and libmvec)
the lowerings raise CompileError.  Adds its rules to
lowerings.LOWERINGS.  Must not walk
programs nor bind LLVM: routines are declared by symbol name and MCJIT
resolves them.
"""

import numpy as np
from llvmlite import ir

from ...errors import CompileError, MissingRuleError, ShapeError
from .kernels import load_mem, loop, loop_nest, store_mem
from .linalg import _sub_view, entry_alloca
from .lowerings import LOWERINGS, _as_viewable, lowering, register
from .sort import _less
from .values import I8, I32, I64, PTR, Array, cast, const, reg_type, size_of

F64 = np.dtype(np.float64)
_COL_MAJOR = 102        # LAPACK_COL_MAJOR: no transposing copies inside LAPACKE

# argument kinds of the LAPACKE_d<routine>_work functions after the layout;
# WORK/LWORK/IWORK/LIWORK mark the workspace arguments
_SIGNATURES = {
    "potrf": ("char", "int", "ptr", "int"),
    "geqrf": ("int", "int", "ptr", "int", "ptr", "WORK", "LWORK"),
    "orgqr": ("int", "int", "int", "ptr", "int", "ptr", "WORK", "LWORK"),
    "syevd": ("char", "char", "int", "ptr", "int", "ptr", "WORK", "LWORK", "IWORK", "LIWORK"),
    "gesdd": ("char", "int", "int", "ptr", "int", "ptr", "ptr", "int", "ptr", "int",
              "WORK", "LWORK", "IWORK"),
}
_IR_TYPES = {"char": I8, "int": I64, "ptr": PTR, "WORK": PTR, "LWORK": I64, "IWORK": PTR,
             "LIWORK": I64}


def _c(n):
    return ir.Constant(I64, n)


def _routine(em, prim, routine):
    """The declared `LAPACKE_d<routine>_work`, or CompileError without LAPACK."""
    # cotan.aot empties the BLAS table (its libraries do not link NumPy's
    # OpenBLAS) but copies the rest of the jit's environment: LAPACK lives
    # in that same OpenBLAS, so no BLAS means no LAPACK either
    table = em.lapack if em.blas else {}
    sym = table.get(routine, {}).get("d")
    if sym is None:
        raise CompileError(
            f"{prim}: compiled code here has no LAPACK to call ({routine} is missing). "
            f"Libraries built by cotan.aot link only libc, libm and libmvec, so {prim} "
            f"cannot be compiled ahead of time: call it through cotan.jit, or compute "
            f"np.linalg.{prim} outside the ahead-of-time function and pass the result in")
    fn = em.module.globals.get(sym)
    if fn is None:
        kinds = _SIGNATURES[routine]
        fnty = ir.FunctionType(I64, [I32] + [_IR_TYPES[k] for k in kinds])
        fn = ir.Function(em.module, fnty, sym)
        for arg, k in zip(fn.args[1:], kinds):
            if k == "char":
                arg.add_attribute("signext")    # C's char argument
    return fn


def _call(em, prim, routine, *args, work=None):
    """info = LAPACKE_d<routine>_work(COL_MAJOR, *args, <workspace>): `args`
    are Python ints and one-letter strings (constants), Arrays or pointers;
    `work` is a _Workspace (or the query's stand-ins)."""
    b = em.b
    fn = _routine(em, prim, routine)
    vals = [ir.Constant(I32, _COL_MAJOR)]
    given = iter(args)
    for k in _SIGNATURES[routine]:
        if k in ("WORK", "LWORK", "IWORK", "LIWORK"):
            vals.append(work[k])
            continue
        a = next(given)
        if k == "char":
            vals.append(ir.Constant(I8, ord(a)))
        elif k == "int":
            vals.append(_c(a) if isinstance(a, int) else a)
        else:
            ptr = a.ptr if isinstance(a, Array) else a
            vals.append(b.bitcast(ptr, PTR))
    return b.call(fn, vals)


class _Workspace:
    """LAPACK's workspace for every matrix of one lowering: sized by the
    routines' own queries (lwork = -1) before the loop over the stack,
    allocated once, freed after the loop or before a failure exit."""

    def __init__(self, em, prim, queries, int_work=0):
        """queries: [(routine, args)]; int_work: a fixed integer workspace
        length (gesdd), used when the routine does not report one."""
        b = em.b
        self.em = em
        size = entry_alloca(em, reg_type(F64))
        isize = entry_alloca(em, I64)
        need = _c(1)
        ineed = _c(max(1, int_work))
        stand_in = {"WORK": b.bitcast(size, PTR), "LWORK": _c(-1),
                    "IWORK": b.bitcast(isize, PTR), "LIWORK": _c(-1)}
        for routine, args in queries:
            b.store(const(F64, 0), size)
            b.store(_c(0), isize)
            info = _call(em, prim, routine, *args, work=stand_in)
            em.fail_if(b.icmp_signed("!=", info, _c(0)), 1,
                       f"{prim}: LAPACK {routine} workspace query failed")
            # the size comes back as a double: exact below 2**53
            n = b.fptosi(b.load(size), I64)
            need = b.select(b.icmp_signed(">", n, need), n, need)
            if "LIWORK" in _SIGNATURES[routine]:
                n = b.load(isize)
                ineed = b.select(b.icmp_signed(">", n, ineed), n, ineed)
        malloc = em.module.globals["malloc"]
        self.free_fn = em.module.globals["free"]
        self.work = b.call(malloc, [b.mul(need, _c(8))])
        self.iwork = b.call(malloc, [b.mul(ineed, _c(8))])
        none = ir.Constant(PTR, None)
        failed = b.or_(b.icmp_unsigned("==", self.work, none),
                       b.icmp_unsigned("==", self.iwork, none))
        with b.if_then(failed):
            self.free()
        em.fail_if(failed, 1, f"{prim}: out of memory for the LAPACK workspace")
        self.args = {"WORK": self.work, "LWORK": need, "IWORK": self.iwork,
                     "LIWORK": ineed}

    def __getitem__(self, k):
        return self.args[k]

    def free(self):
        b = self.em.b
        b.call(self.free_fn, [self.work])
        b.call(self.free_fn, [self.iwork])

    def check(self, info, message):
        """Exit with `message` (freeing the workspace) when info != 0."""
        b = self.em.b
        bad = b.icmp_signed("!=", info, _c(0))
        with b.if_then(bad):
            self.free()
        self.em.fail_if(bad, 5, message)   # 5: LinAlgError, as NumPy raises


# ------------------------------------------------------------- helpers

def _square(prim, shape):
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeError(f"{prim}: expected a stack of square matrices, got shape "
                         f"{tuple(shape)}")
    return shape[-1]


def _col_major(arr, rows, cols, ld):
    """The rows x cols matrix stored column-major (leading dimension ld)."""
    return Array(arr.ptr, F64, (rows, cols), (1, ld))


def _load(em, scratch, src):
    """scratch <- src (a strided matrix of any dtype), column-major float64."""
    m, n = src.shape
    em.kern.assign(em.b, _col_major(scratch, m, n, max(1, m)), src)


def _store_triangle(em, dest, scratch, ld, lower):
    """dest <- the lower (upper) triangle of the column-major scratch,
    zeros elsewhere, cast to dest's dtype."""
    b = em.b
    rows, cols = dest.shape
    with loop_nest(b, (rows, cols), name="tri") as (i, j):
        keep = b.icmp_signed("<=" if lower else ">=", j, i)
        v = cast(b, load_mem(b, scratch, b.add(b.mul(j, _c(ld)), i)), F64, dest.dtype)
        off = b.add(b.mul(i, _c(dest.strides[0])), b.mul(j, _c(dest.strides[1])))
        store_mem(b, dest, off, b.select(keep, v, const(dest.dtype, 0)))


def _scratch(em, *shape):
    n = 1
    for d in shape:
        n *= d
    return em.buffer(None, F64, (max(1, n),))


# ------------------------------------------------------------ cholesky

@lowering("cholesky")
def _cholesky(em, s, args, kwargs):
    a = _as_viewable(em, args[0])
    out = s.out
    n = _square("cholesky", a.shape)
    batch = tuple(out.shape[:-2])
    _routine(em, "cholesky", "potrf")
    dest = em.result_buffer(s, out)
    scr = _scratch(em, n, n)
    b = em.b
    with loop_nest(b, batch, name="chb") as bidx:
        _load(em, scr, _sub_view(em, a, bidx, batch, 2))
        # NumPy: potrf on the lower triangle, the upper one zeroed
        info = _call(em, "cholesky", "potrf", "L", n, scr, max(1, n))
        em.fail_if(b.icmp_signed("!=", info, _c(0)), 5, "Matrix is not positive definite")  # LinAlgError
        _store_triangle(em, _sub_view(em, dest, bidx, batch, 2), scr, max(1, n), lower=True)
    return dest


# ------------------------------------------------------------------ qr

@lowering("qr")
def _qr(em, s, args, kwargs):
    a = _as_viewable(em, args[0])
    mode = kwargs.get("mode", args[1] if len(args) > 1 else "reduced")
    m, n = a.shape[-2:]
    batch = tuple(a.shape[:-2])
    k = min(m, n)
    # columns of Q (and rows of R): NumPy's `mc`
    mc = m if mode == "complete" and m > n else k
    lda = max(1, m)
    scr, tau = _scratch(em, m, n), _scratch(em, k)
    queries = [("geqrf", (m, n, scr, lda, tau))]
    if mode == "r":
        r_dest = em.result_buffer(s, s.out)
    else:
        q_aval, r_aval = s.out
        q_dest = em.buffer(None, q_aval.dtype, q_aval.shape)
        r_dest = em.buffer(None, r_aval.dtype, r_aval.shape)
        qscr = _scratch(em, m, mc)
        queries.append(("orgqr", (m, mc, k, qscr, lda, tau)))
    work = _Workspace(em, "qr", queries)
    b = em.b
    message = "Incorrect argument found while performing QR factorization"
    with loop_nest(b, batch, name="qrb") as bidx:
        _load(em, scr, _sub_view(em, a, bidx, batch, 2))
        work.check(_call(em, "qr", "geqrf", m, n, scr, lda, tau, work=work), message)
        _store_triangle(em, _sub_view(em, r_dest, bidx, batch, 2), scr, lda, lower=False)
        if mode != "r":
            # the reflectors (first min(n, mc) columns) into Q's scratch
            cols = min(n, mc)
            if m * cols:
                em.copy_into(Array(qscr.ptr, F64, (m * cols,)), Array(scr.ptr, F64,
                                                                       (m * cols,)))
            work.check(_call(em, "qr", "orgqr", m, mc, k, qscr, lda, tau, work=work),
                       message)
            em.kern.assign(b, _sub_view(em, q_dest, bidx, batch, 2),
                           _col_major(qscr, m, mc, lda))
    work.free()
    return r_dest if mode == "r" else (q_dest, r_dest)


# ---------------------------------------------------------------- eigh

def _syevd_stack(em, prim, a, jobz, uplo, each):
    """syevd on every matrix of the stack `a`; calls each(bidx, w scratch,
    vector scratch (column-major n x n)) after every successful call."""
    n = _square(prim, a.shape)
    batch = tuple(a.shape[:-2])
    lda = max(1, n)
    scr, w = _scratch(em, n, n), _scratch(em, n)
    work = _Workspace(em, prim, [("syevd", (jobz, uplo, n, scr, lda, w))])
    b = em.b
    with loop_nest(b, batch, name="evb") as bidx:
        _load(em, scr, _sub_view(em, a, bidx, batch, 2))
        work.check(_call(em, prim, "syevd", jobz, uplo, n, scr, lda, w, work=work),
                   "Eigenvalues did not converge")
        each(bidx, w, scr)
    work.free()


@lowering("eigh")
def _eigh(em, s, args, kwargs):
    a = _as_viewable(em, args[0])
    uplo = str(kwargs.get("UPLO", args[1] if len(args) > 1 else "L")).upper()
    w_aval, v_aval = s.out
    n = _square("eigh", a.shape)
    batch = tuple(a.shape[:-2])
    _routine(em, "eigh", "syevd")
    w_dest = em.buffer(None, w_aval.dtype, w_aval.shape)
    v_dest = em.buffer(None, v_aval.dtype, v_aval.shape)

    def each(bidx, w, scr):
        em.kern.assign(em.b, _sub_view(em, w_dest, bidx, batch, 1), Array(w.ptr, F64, (n,)))
        em.kern.assign(em.b, _sub_view(em, v_dest, bidx, batch, 2),
                       _col_major(scr, n, n, max(1, n)))
    _syevd_stack(em, "eigh", a, "V", uplo, each)
    return w_dest, v_dest


# ----------------------------------------------------------------- svd

def _fill_identity(em, dest):
    """Every matrix of the stack `dest` (contiguous) set to the identity."""
    b = em.b
    em.kern.assign(b, dest, 0)
    rows, cols = dest.shape[-2:]
    with loop(b, size_of(dest.shape[:-2]), name="idb") as i:
        with loop(b, min(rows, cols), name="idd") as d:
            off = b.add(b.mul(i, _c(rows * cols)), b.mul(d, _c(cols + 1)))
            store_mem(b, dest, off, const(dest.dtype, 1))


def _svd_outputs(em, s, compute_uv):
    if compute_uv:
        return tuple(em.buffer(None, o.dtype, o.shape) for o in s.out)
    return (em.result_buffer(s, s.out),)


@lowering("svd")
def _svd(em, s, args, kwargs):
    names = ("full_matrices", "compute_uv", "hermitian")
    flags = dict(zip(names, (True, True, False)))
    flags.update(zip(names, args[1:]))
    flags.update({k: v for k, v in kwargs.items() if k in names})
    for k, v in flags.items():
        if not isinstance(v, (bool, int, np.bool_, np.integer)):
            raise MissingRuleError("svd", "llvm", f"{k} computed at run time: the output "
                                   "shapes depend on it, pass a constant")
    a = _as_viewable(em, args[0])
    if flags["hermitian"]:
        return _svd_hermitian(em, s, a, bool(flags["compute_uv"]))
    compute_uv, full = bool(flags["compute_uv"]), bool(flags["full_matrices"])
    m, n = a.shape[-2:]
    batch = tuple(a.shape[:-2])
    k = min(m, n)
    jobz = "N" if not compute_uv else "A" if full else "S"
    u_cols, vt_rows = (m, n) if jobz == "A" else (k, k)
    _routine(em, "svd", "gesdd")
    if k == 0:
        outs = _svd_outputs(em, s, compute_uv)
        if compute_uv:
            # gesdd returns at once, leaving U and V^T unset; NumPy gives
            # identities (empty in the reduced case)
            for dest in (outs[0], outs[2]):
                _fill_identity(em, dest)
        return outs if compute_uv else outs[0]
    lda, ldu, ldvt = max(1, m), max(1, m), max(1, vt_rows)
    scr, sv = _scratch(em, m, n), _scratch(em, k)
    if compute_uv:
        u, vt = _scratch(em, m, u_cols), _scratch(em, vt_rows, n)
    else:
        u, vt, ldu, ldvt = scr, scr, 1, 1    # not referenced with jobz 'N'
    call_args = (jobz, m, n, scr, lda, sv, u, ldu, vt, ldvt)
    # gesdd's integer workspace is 8 min(m, n), not reported by the query
    work = _Workspace(em, "svd", [("gesdd", call_args)], int_work=8 * k)
    outs = _svd_outputs(em, s, compute_uv)
    s_dest = outs[1] if compute_uv else outs[0]
    b = em.b
    with loop_nest(b, batch, name="svb") as bidx:
        _load(em, scr, _sub_view(em, a, bidx, batch, 2))
        work.check(_call(em, "svd", "gesdd", *call_args, work=work), "SVD did not converge")
        em.kern.assign(b, _sub_view(em, s_dest, bidx, batch, 1), Array(sv.ptr, F64, (k,)))
        if compute_uv:
            em.kern.assign(b, _sub_view(em, outs[0], bidx, batch, 2),
                           _col_major(u, m, u_cols, ldu))
            em.kern.assign(b, _sub_view(em, outs[2], bidx, batch, 2),
                           _col_major(vt, vt_rows, n, ldvt))
    work.free()
    return outs if compute_uv else outs[0]


def _svd_hermitian(em, s, a, compute_uv):
    """NumPy's svd(hermitian=True): eigh (eigvalsh without vectors), then
    |w| in descending order; with vectors u's columns follow the order and
    vh = (u * copysign(1, w))^T.  The order is that of a stable ascending
    sort of |w| (in the output dtype, as NumPy sorts) read backwards."""
    n = _square("svd(hermitian=True)", a.shape)
    batch = tuple(a.shape[:-2])
    _routine(em, "svd", "syevd")
    outs = _svd_outputs(em, s, compute_uv)
    s_dest = outs[1] if compute_uv else outs[0]
    dt = s_dest.dtype
    vals = em.buffer(None, dt, (max(1, n),))
    rank = entry_alloca(em, I64)
    b = em.b
    fabs = em.math.intrinsic("llvm.fabs", reg_type(dt))

    def each(bidx, w, scr):
        sv = _sub_view(em, s_dest, bidx, batch, 1)
        with loop(b, n, name="hv") as i:
            store_mem(b, vals, i, cast(b, load_mem(b, w, i), F64, dt))
        with loop(b, n, name="hi") as i:
            wi = load_mem(b, vals, i)
            ai = b.call(fabs, [wi])
            b.store(_c(0), rank)
            with loop(b, n, name="hj") as j:
                aj = b.call(fabs, [load_mem(b, vals, j)])
                before = _less(b, aj, ai, dt)
                tie = b.and_(b.not_(before), b.not_(_less(b, ai, aj, dt)))
                before = b.or_(before, b.and_(tie, b.icmp_signed("<", j, i)))
                b.store(b.add(b.load(rank), b.zext(before, I64)), rank)
            p = b.sub(_c(n - 1), b.load(rank))
            store_mem(b, sv, b.mul(p, _c(sv.strides[0])), ai)
            if compute_uv:
                u = _sub_view(em, outs[0], bidx, batch, 2)
                vh = _sub_view(em, outs[2], bidx, batch, 2)
                # copysign(1, w): the sign bit, so -1 also for -0.0
                bits = ir.IntType(dt.itemsize * 8)
                neg = b.icmp_signed("<", b.bitcast(wi, bits), ir.Constant(bits, 0))
                sgn = b.select(neg, const(dt, -1), const(dt, 1))
                with loop(b, n, name="hr") as r:
                    x = cast(b, load_mem(b, scr, b.add(b.mul(i, _c(n)), r)), F64, dt)
                    store_mem(b, u, b.add(b.mul(r, _c(u.strides[0])),
                                          b.mul(p, _c(u.strides[1]))), x)
                    store_mem(b, vh, b.add(b.mul(p, _c(vh.strides[0])),
                                           b.mul(r, _c(vh.strides[1]))), b.fmul(x, sgn))
    _syevd_stack(em, "svd", a, "V" if compute_uv else "N", "L", each)
    return outs if compute_uv else outs[0]


register()
