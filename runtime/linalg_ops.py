"""Contraction and dense linear-algebra primitives.

Owns matmul, dot, einsum and the LAPACK-backed kernels inv, solve, det,
slogdet, cholesky, qr, eigh and svd, with explicit shape rules: running
the kernels on zero stand-ins would cost a full contraction at compile time
(matmul) or fail on a singular matrix (inv).  dtypes come from probing the
kernel on 1x1 stand-ins of ones.  Multi-output kernels return plain tuples
(not NumPy's named results) so they are ordinary pytrees.  Compositions
(`vdot`, `tensordot`, `linalg.norm`, `pinv`, ...) live in `cotan.numpy`.
Must not hold derivative, batching or lowering rules.
"""

import numpy as np

from ..codegen.abstract import ShapedArray, broadcast_shapes, shape_of
from .numeric_rules import any_abstract, probe_dtype, unit_dummy
from .table import primitive


def _explicit(shape_fn):
    """Register `impl` with a rule built from a pure shape function:
    `shape_fn(*shapes, **params)` returns the output shape, or a list of
    shapes for a tuple of outputs."""
    def wrap(impl):
        def rule(*args, **params):
            if not any_abstract(args, params):
                return impl(*args, **params)
            out = shape_fn(*[tuple(shape_of(a)) for a in args], **params)
            with np.errstate(all="ignore"):
                # constant arrays too get unit stand-ins: a (3, 3) constant
                # beside a (1,) stand-in fails the probe (jit of `w @ h`
                # with w a global array was refused)
                probe = impl(*[np.ones((1,) * a.ndim, a.dtype) if isinstance(a, np.ndarray)
                               and a.ndim else unit_dummy(a) for a in args], **params)
            if isinstance(out, list):
                return tuple(ShapedArray(s, np.result_type(p)) for s, p in zip(out, probe))
            return ShapedArray(out, np.result_type(probe))
        rule.__name__ = f"shape_rule({impl.__name__})"
        return primitive(impl.__name__.lstrip("_"), abstract_eval=rule)(impl)
    return wrap


def _square(shape, who):
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{who}: expected a stack of square matrices, got shape {shape}")


# -- contractions --------------------------------------------------------------

def _matmul_shape(sa, sb):
    if not sa or not sb:
        raise ValueError("matmul: operands must not be 0-d")
    a2 = (1,) + sa if len(sa) == 1 else sa
    b2 = sb + (1,) if len(sb) == 1 else sb
    if a2[-1] != b2[-2]:
        raise ValueError(f"matmul: contracted dimensions differ, shapes {sa} and {sb}")
    out = broadcast_shapes(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    if len(sb) == 1:
        out = out[:-1]
    if len(sa) == 1:
        out = out[:-2] + out[-1:] if len(sb) > 1 else out[:-1]
    return out


@_explicit(_matmul_shape)
def _matmul(a, b):
    """matmul(a, b) == numpy.matmul(a, b)."""
    return np.matmul(a, b)


def _dot_shape(sa, sb):
    if not sa or not sb:
        return broadcast_shapes(sa, sb)
    k = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != k:
        raise ValueError(f"dot: contracted dimensions differ, shapes {sa} and {sb}")
    return sa[:-1] + (sb[:-2] + sb[-1:] if len(sb) > 1 else ())


@_explicit(_dot_shape)
def _dot(a, b):
    """dot(a, b) == numpy.dot(a, b)."""
    return np.dot(a, b)


def _einsum_shape(subscripts, *shapes, optimize=False):
    spec = subscripts.replace(" ", "")
    ins, out = spec.split("->") if "->" in spec else (spec, None)
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {len(terms)} terms for {len(shapes)} operands")
    sizes, ellipsis, counts = {}, (), {}
    for term, shp in zip(terms, shapes):
        if "..." in term:
            before, after = term.split("...")
            ell = shp[len(before):len(shp) - len(after)]
            ellipsis = broadcast_shapes(ellipsis, ell)
            dims = list(zip(before, shp[:len(before)])) + \
                list(zip(after, shp[len(shp) - len(after):]))
        else:
            if len(term) != len(shp):
                raise ValueError(f"einsum: term {term!r} does not match shape {shp}")
            dims = list(zip(term, shp))
        for label, d in dims:
            counts[label] = counts.get(label, 0) + 1
            if sizes.get(label, 1) not in (1, d) and d != 1:
                raise ValueError(f"einsum: label {label!r} has sizes {sizes[label]} and {d}")
            sizes[label] = d if sizes.get(label, 1) == 1 else sizes[label]
    if out is None:
        # NumPy's implicit mode: broadcast dims, then labels seen once, sorted
        out = "..." + "".join(sorted(c for c, n in counts.items() if n == 1))
    before, _, after = out.partition("...")
    ell = ellipsis if "..." in out else ()
    return tuple(sizes[c] for c in before) + tuple(ell) + tuple(sizes[c] for c in after)


def _einsum_rule(subscripts, *operands, optimize=False):
    if not any_abstract(operands):
        return _einsum(subscripts, *operands, optimize=optimize)
    shp = _einsum_shape(subscripts, *[tuple(shape_of(o)) for o in operands])
    return ShapedArray(shp, probe_dtype(_einsum, subscripts, *operands))


def _einsum(subscripts, *operands, optimize=False):
    """einsum(subscripts, *operands, optimize=False) == numpy.einsum(subscripts, *operands, optimize=optimize)."""
    return np.einsum(subscripts, *operands, optimize=optimize)


einsum = primitive("einsum", abstract_eval=_einsum_rule)(_einsum)
matmul = _matmul
dot = _dot


# -- LAPACK kernels ------------------------------------------------------------

def _inv_shape(sa):
    _square(sa, "inv")
    return sa


@_explicit(_inv_shape)
def _inv(a):
    """inv(a) == numpy.linalg.inv(a)."""
    return np.linalg.inv(a)


def _solve_shape(sa, sb):
    _square(sa, "solve")
    if len(sb) == 1:
        return broadcast_shapes(sa[:-2], ()) + (sa[-1],)
    return broadcast_shapes(sa[:-2], sb[:-2]) + sb[-2:]


@_explicit(_solve_shape)
def _solve(a, b):
    """solve(a, b) == numpy.linalg.solve(a, b)."""
    return np.linalg.solve(a, b)


def _det_shape(sa):
    _square(sa, "det")
    return sa[:-2]


@_explicit(_det_shape)
def _det(a):
    """det(a) == numpy.linalg.det(a)."""
    return np.linalg.det(a)


@_explicit(lambda sa: [_det_shape(sa), _det_shape(sa)])
def _slogdet(a):
    """slogdet(a) == tuple(numpy.linalg.slogdet(a)): (sign, logabsdet)."""
    return tuple(np.linalg.slogdet(a))


@_explicit(_inv_shape)
def _cholesky(a):
    """cholesky(a) == numpy.linalg.cholesky(a) (lower triangular)."""
    return np.linalg.cholesky(a)


def _qr_shape(sa, mode="reduced"):
    batch, (m, n) = sa[:-2], sa[-2:]
    k = m if mode == "complete" else min(m, n)
    if mode == "r":
        return batch + (k, n)
    return [batch + (m, k), batch + (k, n)]


def _qr_rule(a, mode="reduced"):
    if not any_abstract((a,)):
        return _qr(a, mode)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"qr: mode {mode!r} is not supported (use 'reduced', 'complete' or 'r')")
    out = _qr_shape(tuple(a.shape), mode)
    dt = probe_dtype(lambda x: np.linalg.qr(x, "r"), a)
    return ShapedArray(out, dt) if mode == "r" else tuple(ShapedArray(s, dt) for s in out)


def _qr(a, mode="reduced"):
    """qr(a, mode='reduced') == numpy.linalg.qr(a, mode): (q, r), or r for mode='r'."""
    out = np.linalg.qr(a, mode)
    return out if mode == "r" else tuple(out)


qr = primitive("qr", abstract_eval=_qr_rule)(_qr)


def _eigh_shape(sa, UPLO="L"):
    _square(sa, "eigh")
    return [sa[:-1], sa]


@_explicit(_eigh_shape)
def _eigh(a, UPLO="L"):
    """eigh(a, UPLO='L') == tuple(numpy.linalg.eigh(a, UPLO)): (eigenvalues, eigenvectors)."""
    return tuple(np.linalg.eigh(a, UPLO))


def _svd_rule(a, full_matrices=True, compute_uv=True, hermitian=False):
    if not any_abstract((a,)):
        return _svd(a, full_matrices, compute_uv, hermitian)
    batch, (m, n) = tuple(a.shape[:-2]), tuple(a.shape[-2:])
    k = min(m, n)
    dt = probe_dtype(lambda x: np.linalg.svd(x, compute_uv=False), a)
    s = ShapedArray(batch + (k,), dt)
    if not compute_uv:
        return s
    um, vn = (m, n) if full_matrices else (k, k)
    return (ShapedArray(batch + (m, um), dt), s, ShapedArray(batch + (vn, n), dt))


def _svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """svd(a, full_matrices=True, compute_uv=True, hermitian=False) == numpy.linalg.svd(...): (u, s, vh), or s."""
    out = np.linalg.svd(a, full_matrices, compute_uv, hermitian)
    return tuple(out) if compute_uv else out


svd = primitive("svd", abstract_eval=_svd_rule)(_svd)
inv, solve, det, slogdet, cholesky, eigh = _inv, _solve, _det, _slogdet, _cholesky, _eigh
