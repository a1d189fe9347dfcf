"""A singular matrix for inv/solve and one that is not positive definite for
cholesky raise numpy.linalg.LinAlgError under jit, as NumPy (and cotan's
eager transformations, which run NumPy) do; the class is also a cotan
error (cotan.errors.LinAlgError)."""

import numpy as np
import pytest

import cotan
from cotan.errors import CotanError, LinAlgError

SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])
INDEFINITE = np.array([[1.0, 2.0], [2.0, 1.0]])


def _inv(a):
    return np.linalg.inv(a)


def _solve(a, b):
    return np.linalg.solve(a, b)


def _chol(a):
    return np.linalg.cholesky(a)


@pytest.mark.parametrize("call", [
    lambda: cotan.jit(_inv)(SINGULAR),
    lambda: cotan.jit(_solve)(SINGULAR, np.ones(2)),
    lambda: cotan.jit(_chol)(INDEFINITE),
], ids=["inv", "solve", "cholesky"])
def test_jit_raises_numpys_linalgerror(call):
    with pytest.raises(np.linalg.LinAlgError) as info:
        call()
    assert isinstance(info.value, CotanError) and isinstance(info.value, LinAlgError)


def test_plain_numpy_agrees():
    for f, args in [(_inv, (SINGULAR,)), (_solve, (SINGULAR, np.ones(2))), (_chol, (INDEFINITE,))]:
        with pytest.raises(np.linalg.LinAlgError):
            f(*args)


def test_a_good_matrix_still_works_after_a_failure():
    f = cotan.jit(_inv)
    with pytest.raises(np.linalg.LinAlgError):
        f(SINGULAR)
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(f(a), np.linalg.inv(a), rtol=1e-12)
    np.testing.assert_allclose(cotan.jit(_chol)(a), np.linalg.cholesky(a), rtol=1e-12)


def test_except_clause_user_code_writes():
    def safe_inv(a):
        try:
            return cotan.jit(_inv)(a)
        except np.linalg.LinAlgError:
            return None
    assert safe_inv(SINGULAR) is None
