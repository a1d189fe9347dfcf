"""Transformations used inside transformed code compose as plain source:
`cotan.grad(f)(x)`, `cotan.jvp(f, (x,), (v,))` and `cotan.jit(f)(x)` inside
a function that is itself transformed."""

import numpy as np
import pytest

import cotan
from cotan.errors import TransformError

V = np.array([1.0, 0.5, -1.0])
X0 = np.array([0.3, -0.7, 1.1])


def f(x):
    total = 0.0
    for i in range(3):          # a loop, so the Hessian goes through control flow
        total = total + np.sin(x[i]) * x[i] ** 2
    return total + np.sum(x * x * x)


def fd_hvp(x, v, eps=1e-6):
    g = cotan.grad(f)
    return (g(x + eps * v) - g(x - eps * v)) / (2 * eps)


def test_reverse_over_forward_hvp_through_jvp_inside_grad():
    def directional(x):
        _, dy = cotan.jvp(f, (x,), (V,))
        return dy
    np.testing.assert_allclose(cotan.grad(directional)(X0), fd_hvp(X0, V), rtol=1e-6)


def test_reverse_over_reverse_hvp_through_grad_inside_grad():
    def gv(x):
        return cotan.grad(f)(x) @ V
    np.testing.assert_allclose(cotan.grad(gv)(X0), fd_hvp(X0, V), rtol=1e-6)


def test_forward_over_reverse_hvp():
    _, hv = cotan.jvp(cotan.grad(f), (X0,), (V,))
    np.testing.assert_allclose(hv, fd_hvp(X0, V), rtol=1e-6)


def test_jit_inside_transformed_code_is_the_function_itself():
    def twice(x):
        return cotan.jit(f)(x) * 2.0
    np.testing.assert_allclose(cotan.grad(twice)(X0), 2.0 * cotan.grad(f)(X0), rtol=1e-12)


def test_transformation_of_a_runtime_value_is_refused():
    def bad(x, fns):
        return cotan.grad(fns[0])(x)
    with pytest.raises(TransformError, match="known when the function is transformed"):
        cotan.normalize(bad)


def test_numpy_functions_can_be_transformed_directly():
    a = np.arange(12.0).reshape(3, 4)
    b = np.linspace(-1.0, 1.0, 4)
    np.testing.assert_allclose(cotan.vmap(np.dot, in_axes=(0, None))(a, b), a @ b)
    np.testing.assert_allclose(cotan.grad(np.sum)(b), np.ones(4))
    m = np.array([[2.0, 1.0], [0.5, 3.0]])
    np.testing.assert_allclose(cotan.grad(np.linalg.det)(m), np.linalg.det(m) * np.linalg.inv(m).T)
