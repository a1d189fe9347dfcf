"""Casts and outputs without a derivative.

A cast to an integer or bool dtype carries no derivative (like `floor`);
a cast between float dtypes does (the cotangent goes back in the input's
dtype).  `grad` of a function whose output is an int, a bool or None is
refused with NonDifferentiableError naming the function and the type, in
every mode that runs it (eager, jit, vmap); `jvp` of an int-valued output
gives float zeros of the output's shape.  References are independent:
central finite differences of the function, and the cast's own values.
"""

import numpy as np
import pytest

import cotan
from cotan.errors import NonDifferentiableError

V = np.array([0.31, 1.24, 2.57])


def _fd_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def int_cast(v):
    return np.sum((v * 10).astype(int) * v)


def bool_cast(v):
    return np.sum((v - 1.0).astype(bool) * v * v)


def asarray_int(v):
    return np.sum(np.asarray(v * 10, dtype=int) * v)


def array_int(v):
    return np.sum(np.array(v * 10, dtype=np.int32) * v)


def float32_cast(v):
    return np.sum(np.sin(v).astype(np.float32) * v)


def float_cast_by_name(v):
    return np.sum(np.asarray(v * v, dtype="float64") * v)


CASTS = [int_cast, bool_cast, asarray_int, array_int, float_cast_by_name]


@pytest.mark.parametrize("f", CASTS, ids=lambda f: f.__name__)
def test_grad_through_casts_matches_finite_differences(f):
    np.testing.assert_allclose(cotan.grad(f)(V), _fd_grad(f, V), rtol=1e-6, atol=1e-7)


def test_int_cast_gradient_is_the_integer_part():
    # d/dv sum(int(10 v) * v) = int(10 v): the cast contributes nothing
    np.testing.assert_array_equal(cotan.grad(int_cast)(V), (V * 10).astype(int))


def test_float32_cast_keeps_its_derivative_in_the_input_dtype():
    g = cotan.grad(float32_cast)(V)
    assert g.dtype == np.float64
    want = np.sin(V).astype(np.float32) + np.cos(V).astype(np.float32) * V
    np.testing.assert_allclose(g, want, rtol=1e-6)
    t = np.array([0.3, -1.1, 0.7])
    _, dout = cotan.jvp(float32_cast, (V,), (t,))
    np.testing.assert_allclose(dout, np.sum(want * t), rtol=1e-6)


@pytest.mark.parametrize("f", CASTS, ids=lambda f: f.__name__)
def test_jvp_through_casts_matches_finite_differences(f):
    t = np.array([0.3, -1.1, 0.7])
    _, dout = cotan.jvp(f, (V,), (t,))
    eps = 1e-6
    fd = (f(V + eps * t) - f(V - eps * t)) / (2 * eps)
    np.testing.assert_allclose(dout, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f", CASTS, ids=lambda f: f.__name__)
def test_vmap_and_jit_of_grad_through_casts(f):
    xs = np.stack([V, 1.7 * V, 0.4 * V])
    want = np.stack([_fd_grad(f, x) for x in xs])
    np.testing.assert_allclose(cotan.vmap(cotan.grad(f))(xs), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(cotan.jit(cotan.grad(f))(V), want[0], rtol=1e-6, atol=1e-7)


def test_jvp_of_an_int_valued_output_is_a_float_zero():
    out, dout = cotan.jvp(lambda v: (v * 10).astype(int), (V,), (np.ones(3),))
    np.testing.assert_array_equal(out, [3, 12, 25])
    assert dout.dtype == np.float64 and dout.shape == (3,)
    np.testing.assert_array_equal(dout, 0.0)
    out, dout = cotan.jvp(lambda v: np.argmax(v), (V,), (np.ones(3),))
    assert out == 2 and np.shape(dout) == () and np.result_type(dout) == np.float64
    assert dout == 0.0


def test_jvp_of_a_bool_output_is_a_float_zero():
    _, dout = cotan.jvp(lambda v: v > 1.0, (V,), (np.ones(3),))
    assert np.result_type(dout) == np.float64 and np.shape(dout) == (3,)
    np.testing.assert_array_equal(dout, 0.0)


def returns_argmax(x):
    return np.argmax(x)


def returns_bool(x):
    return np.sum(x) > 0.0


def returns_none(x):
    y = x * 2.0   # noqa: F841
    return None


def returns_int(x):
    return 3


NONDIFF = [(returns_argmax, "int64"), (returns_bool, "bool"), (returns_none, "None"),
           (returns_int, "int")]


@pytest.mark.parametrize("f,kind", NONDIFF, ids=lambda v: getattr(v, "__name__", v))
def test_grad_of_a_non_float_output_is_refused(f, kind):
    with pytest.raises(NonDifferentiableError, match=f"{f.__name__}.*{kind}"):
        cotan.grad(f)(V)


@pytest.mark.parametrize("f,kind", NONDIFF, ids=lambda v: getattr(v, "__name__", v))
def test_vmap_of_grad_of_a_non_float_output_is_refused(f, kind):
    with pytest.raises(NonDifferentiableError, match=f.__name__):
        cotan.vmap(cotan.grad(f))(np.stack([V, V]))


@pytest.mark.parametrize("f,kind", NONDIFF, ids=lambda v: getattr(v, "__name__", v))
def test_jit_of_grad_of_a_non_float_output_is_refused(f, kind):
    # compile-time check (the output's type is known); codegen wraps shape-rule
    # errors, so the refusal is a cotan error that carries the message
    with pytest.raises(cotan.errors.CotanError, match=f"{f.__name__}.*{kind}"):
        cotan.jit(cotan.grad(f))(V)


def constant_output(x):
    return 2.5


def test_grad_of_a_constant_float_output_is_still_zero():
    np.testing.assert_array_equal(cotan.grad(constant_output)(V), 0.0)
    np.testing.assert_array_equal(cotan.vmap(cotan.grad(constant_output))(np.stack([V, V])), 0.0)


def test_jit_grad_of_a_constant_float_output_is_still_zero():
    np.testing.assert_array_equal(cotan.jit(cotan.grad(constant_output))(V), 0.0)


def test_jit_grad_of_a_constant_int_output_is_refused():
    with pytest.raises(cotan.errors.NonDifferentiableError):
        cotan.jit(cotan.grad(lambda x: 3))(V)
