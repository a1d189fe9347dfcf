"""Specification of the llvm lowerings of the LAPACK factorizations
(codegen/llvm/lapack.py: cholesky, qr, eigh, svd) and of searchsorted
(codegen/llvm/sort.py): each under `cotan.jit` against eager NumPy, in
float64 and float32, on square, rectangular, stacked and integer input,
their failure paths, `jit(grad(f))` against eager `cotan.grad`, and the
clear refusal of `cotan.aot`, whose libraries link no LAPACK."""

import numpy as np
import pytest

import cotan
from cotan.runtime.table import PRIMITIVES
from cotan.codegen.llvm.lowerings import LOWERINGS
from cotan.errors import CompileError, CotanError

NEW = ("cholesky", "qr", "eigh", "svd", "searchsorted")

SQUARE = [(1, 1), (3, 3), (6, 6), (2, 4, 4), (2, 3, 2, 2)]
RECT = [(5, 3), (3, 5), (4, 4), (2, 6, 2), (2, 2, 3, 5)]


def _tol(dtype):
    return dict(rtol=2e-6, atol=2e-6) if np.dtype(dtype) == np.float32 else \
        dict(rtol=1e-12, atol=1e-13)


def _check(f, *args, dtype=np.float64):
    """jit(f) gives NumPy's results: same pytree, shapes, dtypes, values
    (NumPy and the lowerings run the same LAPACK drivers in float64, so
    even the signs of the vectors agree)."""
    want = f(*args)
    got = cotan.jit(f)(*args)
    want = tuple(want) if isinstance(want, tuple) else (want,)
    got = tuple(got) if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, **_tol(dtype))


def _spd(rng, shape, dtype=np.float64):
    x = rng.normal(size=shape)
    a = x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])
    return a.astype(dtype)


def _symmetric(rng, shape, dtype=np.float64):
    x = rng.normal(size=shape)
    return (x + np.swapaxes(x, -1, -2)).astype(dtype)


def test_new_lowerings_are_registered():
    for name in NEW:
        assert name in LOWERINGS and not PRIMITIVES[name].no_rule.get("llvm")


# ------------------------------------------------------------ cholesky

def _cholesky(a):
    return np.linalg.cholesky(a)


@pytest.mark.parametrize("shape", SQUARE, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cholesky_matches_numpy(rng, shape, dtype):
    _check(lambda a: np.linalg.cholesky(a), _spd(rng, shape, dtype), dtype=dtype)


def test_cholesky_reads_only_the_lower_triangle(rng):
    a = _spd(rng, (4, 4))
    a[0, 3] = 1e6           # upper triangle: ignored, as by NumPy
    _check(lambda a: np.linalg.cholesky(a), a)


def test_cholesky_of_an_integer_matrix_is_float64():
    _check(lambda a: np.linalg.cholesky(a), np.array([[4, 2], [2, 3]]))


def test_cholesky_of_a_matrix_that_is_not_positive_definite_raises(rng):
    f = cotan.jit(lambda a: np.linalg.cholesky(a))
    with pytest.raises(CotanError, match="Matrix is not positive definite"):
        f(np.array([[1.0, 2.0], [2.0, 1.0]]))
    # one bad matrix in a stack fails the call; the function still works after
    stack = _spd(rng, (3, 2, 2))
    stack[1] = -stack[1]
    with pytest.raises(CotanError, match="not positive definite"):
        f(stack)
    good = _spd(rng, (3, 2, 2))
    np.testing.assert_allclose(f(good), np.linalg.cholesky(good), rtol=1e-12)


# ------------------------------------------------------------------ qr

def _qr_fn(mode):
    def f(a):
        return np.linalg.qr(a, mode=mode)
    return f


@pytest.mark.parametrize("shape", RECT, ids=str)
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_qr_matches_numpy(rng, shape, mode, dtype):
    a = rng.normal(size=shape).astype(dtype)
    _check(_qr_fn(mode), a, dtype=dtype)


def test_qr_of_an_integer_matrix_and_of_a_rank_deficient_one():
    _check(_qr_fn("reduced"), np.arange(12).reshape(4, 3))
    _check(_qr_fn("complete"), np.ones((3, 2)))


def test_qr_keeps_nans_as_numpy_does():
    a = np.array([[2.0, np.nan], [1.0, 3.0]])
    got = cotan.jit(_qr_fn("reduced"))(a)
    want = np.linalg.qr(a)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_allclose(g[~np.isnan(g)], w[~np.isnan(w)], rtol=1e-12)


# ---------------------------------------------------------------- eigh

def _eigh_fn(uplo):
    def f(a):
        return np.linalg.eigh(a, UPLO=uplo)
    return f


@pytest.mark.parametrize("shape", SQUARE, ids=str)
@pytest.mark.parametrize("uplo", ["L", "U"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_eigh_matches_numpy(rng, shape, uplo, dtype):
    _check(_eigh_fn(uplo), _symmetric(rng, shape, dtype), dtype=dtype)


def test_eigh_reads_the_triangle_uplo_names(rng):
    a = rng.normal(size=(4, 4))       # not symmetric: the triangles differ
    _check(_eigh_fn("L"), a)
    _check(_eigh_fn("U"), a)


def test_eigh_of_an_integer_matrix_is_float64():
    _check(_eigh_fn("L"), np.array([[2, 1, 0], [1, 3, 1], [0, 1, 4]]))


def test_eigh_of_a_matrix_with_nans_gives_numpy_result():
    # NumPy gives NaNs (no error) when the NaN is in the triangle read
    a = np.array([[2.0, 1.0], [np.nan, 3.0]])
    for uplo in ("L", "U"):
        w, v = cotan.jit(_eigh_fn(uplo))(a)
        ww, vv = np.linalg.eigh(a, UPLO=uplo)
        np.testing.assert_array_equal(np.isnan(w), np.isnan(ww))
        np.testing.assert_array_equal(np.isnan(v), np.isnan(vv))


# ----------------------------------------------------------------- svd

def _svd_fn(full_matrices, compute_uv, hermitian=False):
    def f(a):
        return np.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv,
                             hermitian=hermitian)
    return f


@pytest.mark.parametrize("shape", RECT, ids=str)
@pytest.mark.parametrize("full,uv", [(True, True), (False, True), (True, False)],
                         ids=["full", "reduced", "values"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_svd_matches_numpy(rng, shape, full, uv, dtype):
    a = rng.normal(size=shape).astype(dtype)
    _check(_svd_fn(full, uv), a, dtype=dtype)


@pytest.mark.parametrize("shape", SQUARE, ids=str)
@pytest.mark.parametrize("uv", [True, False], ids=["uv", "values"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hermitian_svd_matches_numpy(rng, shape, uv, dtype):
    # eigenvalues of both signs: the sign moves into vh, the order is by |w|
    _check(_svd_fn(True, uv, hermitian=True), _symmetric(rng, shape, dtype), dtype=dtype)


def test_svd_of_an_integer_matrix_is_float64():
    _check(_svd_fn(False, True), np.arange(6).reshape(2, 3))
    _check(_svd_fn(True, False), np.arange(6).reshape(3, 2))


def test_svd_of_a_matrix_with_nans_raises_as_numpy_does():
    a = np.array([[1.0, np.nan], [0.0, 1.0]])
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.svd(a)
    with pytest.raises(CotanError, match="SVD did not converge"):
        cotan.jit(_svd_fn(True, True))(a)


# ------------------------------------------------------- in programs

def test_factorizations_inside_a_loop_and_on_computed_input(rng):
    a = _spd(rng, (3, 3))

    def f(a):
        acc = np.zeros((3, 3))
        for i in range(3):
            q, r = np.linalg.qr(a + i)
            w, v = np.linalg.eigh(a * (i + 1))
            acc = acc + q @ r + v * w + np.linalg.cholesky(a + i * np.eye(3))
        return acc, np.linalg.svd(acc, compute_uv=False)
    _check(f, a)


def test_factorization_written_back_to_its_input_name(rng):
    a = _spd(rng, (2, 3, 3))

    def f(a):
        a = np.linalg.cholesky(a)
        a = np.linalg.qr(a, mode="r")
        return a
    _check(f, a)


@pytest.mark.parametrize("shape", [(0, 0), (2, 0, 0), (0, 3), (3, 0), (0, 2, 2)], ids=str)
def test_empty_matrices_match_numpy(shape):
    # gesdd returns at once on an empty matrix: NumPy's U and V^T are identities
    a = np.zeros(shape)
    for fn in (_qr_fn("reduced"), _qr_fn("complete"), _svd_fn(True, True),
               _svd_fn(False, True), _svd_fn(True, False)):
        _check(fn, a)
    if shape[-1] == shape[-2]:
        for fn in (_cholesky, _eigh_fn("L"), _svd_fn(True, True, hermitian=True)):
            _check(fn, a)


def test_jit_of_vmap_over_a_stack(rng):
    a = _spd(rng, (5, 3, 3))

    def f(a):
        w, v = np.linalg.eigh(a)
        return np.linalg.cholesky(a), w, np.linalg.svd(a, compute_uv=False), \
            np.linalg.qr(a)[1]
    _check(cotan.vmap(f), a)


# ------------------------------------------------------ jit(grad(...))

def _check_grad(f, *args):
    g = cotan.grad(f)
    want = g(*args)
    got = cotan.jit(g)(*args)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_grad_of_cholesky(rng):
    a = _spd(rng, (4, 4))

    def f(a):
        return np.sum(np.linalg.cholesky(a) ** 2 * np.arange(16.0).reshape(4, 4))
    _check_grad(f, a)


def test_grad_of_eigh(rng):
    a = _symmetric(rng, (4, 4))

    def f(a):
        w, v = np.linalg.eigh(a)
        return np.sum(w * np.arange(4.0)) + np.sum(v[:, 0] ** 4)
    _check_grad(f, a)


def test_grad_of_reduced_qr(rng):
    a = rng.normal(size=(5, 3))

    def f(a):
        q, r = np.linalg.qr(a)
        return np.sum(q[:, 0] ** 3) + np.sum(r * r)
    _check_grad(f, a)


def test_grad_of_qr_r(rng):
    a = rng.normal(size=(4, 4))

    def f(a):
        return np.sum(np.linalg.qr(a, mode="r") ** 2)
    _check_grad(f, a)


def test_grad_of_svd(rng):
    a = rng.normal(size=(4, 3))

    def f(a):
        u, s, vh = np.linalg.svd(a, full_matrices=False)
        return np.sum(s * np.arange(1.0, 4.0)) + np.sum(u[:, 0] ** 4) + np.sum(vh ** 3)
    _check_grad(f, a)


def test_grad_of_singular_values(rng):
    a = rng.normal(size=(3, 5))

    def f(a):
        return np.sum(np.linalg.svd(a, compute_uv=False) ** 2)
    _check_grad(f, a)


# --------------------------------------------------------------- aot

def test_aot_refuses_lapack_with_a_clear_error(tmp_path):
    def chol(a):
        return np.linalg.cholesky(a)
    with pytest.raises(CompileError, match="cholesky.*cotan.aot.*libc, libm and libmvec"):
        cotan.aot.compile(chol, (np.eye(3),), output=str(tmp_path / "libchol.so"))


# -------------------------------------------------------- searchsorted

def _search_fn(side):
    def f(a, v):
        return np.searchsorted(a, v, side=side)
    return f


SORTED = np.array([-1.0, 0.0, 0.0, 0.5, 2.0, 2.0, 2.0, 7.0, np.nan, np.nan])
QUERIES = np.array([[-5.0, -1.0, 0.0, 0.25], [2.0, 7.0, 8.0, np.nan], [np.inf, -np.inf, 0.5, 1.0]])


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_with_ties_nans_and_out_of_range_values(side):
    _check(_search_fn(side), SORTED, QUERIES)
    _check(_search_fn(side), SORTED[:8], QUERIES)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 8, 9, 64, 100])
def test_searchsorted_every_length(rng, side, n):
    a = np.sort(rng.integers(0, 10, size=n)).astype(np.float64)
    v = np.arange(-1.0, 11.0, 0.5)
    _check(_search_fn(side), a, v)


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_scalar_query_and_mixed_dtypes(side):
    a = np.array([1, 2, 2, 3, 5])
    _check(_search_fn(side), a, 2)
    _check(_search_fn(side), a, 2.5)
    _check(_search_fn(side), a, np.array([0.5, 2.0, 9.0], np.float32))
    _check(_search_fn(side), np.array([1.0, 1.0000001, 2.0], np.float32), np.float64(1.00000001))
    _check(_search_fn(side), np.array([0, 3, 200], np.uint8), np.array([-1, 3, 300]))
    _check(_search_fn(side), np.array([False, True, True]), np.array([True, False]))


def test_searchsorted_default_side_and_computed_operands(rng):
    x = rng.normal(size=8)
    q = rng.normal(size=(2, 3))

    def f(x, q):
        return np.searchsorted(np.sort(x), q * 2.0)
    _check(f, x, q)
