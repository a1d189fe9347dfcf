"""Reverse over reverse through loops that overwrite values: the first
gradient pushes those values to stacks, and the second reverse pass gives
each stack an adjoint stack.  References are central differences of the
first gradient."""

import numpy as np
import pytest

import cotan
from cotan.errors import MissingRuleError

V = np.array([0.4, -1.0, 0.7])
X0 = np.array([0.3, -0.7, 1.1])


def loop_scalar(x):
    s = x
    for i in range(4):
        s = np.sin(s) * x + s * s * 0.1
    return s


def while_scalar(x):
    s = x
    k = 0
    while k < 3:
        s = s * np.cos(s) + x
        k = k + 1
    return s


def rnn(x):
    h = np.zeros(3)
    w = np.array([[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [-0.1, 0.2, 0.3]])
    for t in range(5):
        h = np.tanh(w @ h + x * t)
    return np.sum(h ** 2)


def nested_with_branch(x):
    total = 0.0
    for i in range(3):
        y = x[i]
        for j in range(2):
            if y > 0:
                y = y * x[j] + 1.0
            else:
                y = np.exp(y) * x[j]
        total = total + y * y
    return total


def hvp_rnn(x):
    return cotan.grad(rnn)(x) @ V


def hvp_nested(x):
    return cotan.grad(nested_with_branch)(x) @ V


def _fd(fn, x, eps=1e-6):
    if np.ndim(x) == 0:
        return (fn(x + eps) - fn(x - eps)) / (2 * eps)
    return np.array([(fn(x + eps * e) - fn(x - eps * e)) / (2 * eps) for e in np.eye(len(x))])


@pytest.mark.parametrize("fn", [loop_scalar, while_scalar], ids=lambda f: f.__name__)
def test_second_derivative_through_a_loop(fn):
    x = 0.8
    got = cotan.grad(cotan.grad(fn))(x)
    np.testing.assert_allclose(got, _fd(cotan.grad(fn), x), rtol=1e-6)


@pytest.mark.parametrize("fn,inner", [(hvp_rnn, rnn), (hvp_nested, nested_with_branch)],
                         ids=["rnn", "nested_loops_with_branch"])
def test_hessian_vector_product_through_loops(fn, inner):
    got = cotan.grad(fn)(X0)
    want = _fd(lambda x: cotan.grad(inner)(x) @ V, X0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)


def test_second_order_gradient_can_be_called_repeatedly():
    g2 = cotan.grad(cotan.grad(loop_scalar))
    np.testing.assert_allclose(g2(0.8), g2(0.8), rtol=0)
    np.testing.assert_allclose(g2(0.5), _fd(cotan.grad(loop_scalar), 0.5), rtol=1e-6)


def test_third_order_reverse_through_a_loop_is_refused():
    with pytest.raises(MissingRuleError, match="stack_unpush"):
        cotan.grad(cotan.grad(cotan.grad(loop_scalar)))
