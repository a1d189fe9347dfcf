"""The public reverse-mode API: grad, value_and_grad, vjp, custom_vjp,
checkpoint, stop_gradient, with JAX's semantics."""

import os
import platform
import sys

import numpy as np
import pytest

import cotan
from cotan.autodiff.core_form import validate
from cotan.autodiff.materialize import generated_core
from cotan.errors import CotanError, NonDifferentiableError


def f2(x, y):
    return np.sum(x * np.sin(y))


def test_grad_argnums_tuple():
    x, y = np.arange(3.0), np.ones(3)
    gx, gy = cotan.grad(f2, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, np.sin(y))
    np.testing.assert_allclose(gy, x * np.cos(y))


def test_grad_of_dict_parameters_has_their_structure():
    def loss(p, x):
        return np.sum((x @ p["w"] + p["b"]) ** 2)
    p = {"w": np.ones((2, 3)), "b": np.zeros(3)}
    x = np.arange(4.0).reshape(2, 2)
    g = cotan.grad(loss)(p, x)
    assert set(g) == {"w", "b"}
    r = x @ p["w"] + p["b"]
    np.testing.assert_allclose(g["w"], x.T @ (2 * r))
    np.testing.assert_allclose(g["b"], (2 * r).sum(0))


def test_value_and_grad_and_has_aux():
    def f(x):
        return np.sum(x ** 2), x * 3
    (v, aux), g = cotan.value_and_grad(f, has_aux=True)(np.arange(3.0))
    assert v == 5.0
    np.testing.assert_allclose(aux, [0, 3, 6])
    np.testing.assert_allclose(g, [0, 2, 4])
    g2, aux2 = cotan.grad(f, has_aux=True)(np.arange(3.0))
    np.testing.assert_allclose(g2, [0, 2, 4])


def test_vjp_is_callable_repeatedly():
    out, fn = cotan.vjp(lambda x, y: x * y, np.arange(3.0), np.ones(3))
    np.testing.assert_allclose(out, np.arange(3.0))
    for k in (1.0, 2.0):
        dx, dy = fn(np.full(3, k))
        np.testing.assert_allclose(dx, k * np.ones(3))
        np.testing.assert_allclose(dy, k * np.arange(3.0))


def _loud_loop(x):
    print("primal ran")
    h = x
    for i in range(3):
        h = np.sin(h) * x
    return h


def test_vjp_runs_the_primal_once(capsys):
    x = np.array([0.3, -0.4])
    out, fn = cotan.vjp(_loud_loop, x)
    g = np.array([1.0, 2.0])
    first, second = fn(g), fn(g)     # the stacks survive the first backward
    assert capsys.readouterr().out.count("primal ran") == 1
    np.testing.assert_allclose(out, _loud_loop(x))
    np.testing.assert_allclose(first[0], second[0], rtol=0)
    eps = 1e-6
    want = [(_loud_loop(x + eps * e) - _loud_loop(x - eps * e)) @ g / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(first[0], want, rtol=1e-6)
    code = [ln for ln in cotan.source(fn).splitlines() if not ln.strip().startswith("#")]
    assert not any("sin(" in ln or "print(" in ln for ln in code)


def test_custom_vjp_fwd_runs_once_in_the_primal_sweep():
    calls = []

    @cotan.custom_vjp
    def f(x):
        return np.sin(x)

    def f_fwd(x):
        calls.append(1)
        return np.sin(x), np.cos(x)
    f.defvjp(f_fwd, lambda c, g: (g * c,))

    def loss(x):
        s = 0.0
        for i in range(3):
            x = f(x) * 1.5
            s = s + np.sum(x)
        return s
    x = np.array([0.3, 0.5])
    got = cotan.grad(loss)(x)
    assert len(calls) == 3
    eps = 1e-6
    np.testing.assert_allclose(got, [(loss(x + eps * e) - loss(x - eps * e)) / (2 * eps)
                                     for e in np.eye(2)], rtol=1e-6)


def test_non_scalar_output_is_refused():
    with pytest.raises(NonDifferentiableError, match="scalar"):
        cotan.grad(lambda x: x * 2)(np.ones(3))


def test_integer_input_is_refused():
    with pytest.raises(NonDifferentiableError, match="int64"):
        cotan.grad(lambda x: np.sum(x * 2.0))(np.arange(3))


def test_bad_argnums():
    with pytest.raises(CotanError):
        cotan.grad(f2, argnums=5)


def test_output_independent_of_argument_gives_zeros():
    g = cotan.grad(lambda x, y: np.sum(y ** 2), argnums=0)(np.ones(2), np.ones(2))
    np.testing.assert_allclose(g, [0.0, 0.0])


def test_stop_gradient():
    g = cotan.grad(lambda x: np.sum(x * cotan.stop_gradient(x)))(np.arange(3.0))
    np.testing.assert_allclose(g, np.arange(3.0))


def test_custom_vjp():
    @cotan.custom_vjp
    def clip_grad(x):
        return x

    clip_grad.defvjp(lambda x: (x, None), lambda res, g: (np.clip(g, -1.0, 1.0),))
    g = cotan.grad(lambda x: np.sum(clip_grad(x) * 5.0))(np.ones(2))
    np.testing.assert_allclose(g, [1.0, 1.0])


def test_checkpoint_recomputes_in_the_adjoint_sweep():
    def inner(x):
        return np.sin(np.sin(x))
    ck = cotan.checkpoint(inner)
    g = cotan.grad(lambda x: np.sum(ck(x) * 2.0))
    np.testing.assert_allclose(g(np.ones(2)), 2 * np.cos(np.sin(1.0)) * np.cos(1.0))
    src = cotan.source(g)
    assert "_vjp(" in src and "push(" not in src


def test_second_order():
    def f(x):
        return x ** 3 * np.sin(x)
    gg = cotan.grad(cotan.grad(f))
    validate(generated_core(gg).node)
    x = 0.7
    want = 6 * x * np.sin(x) + 6 * x ** 2 * np.cos(x) - x ** 3 * np.sin(x)
    np.testing.assert_allclose(gg(x), want)


def test_grad_returns_generated_source_with_comments():
    src = cotan.source(cotan.grad(f2))
    assert src.startswith("def grad_f2(x, y):")
    assert "# grad of: return np.sum(x * np.sin(y))" in src


def test_loop_pushes_only_overwritten_values():
    def f(x, w):
        for i in range(3):
            x = np.tanh(x * w)
        return np.sum(x)
    src = cotan.source(cotan.grad(f))
    assert "push(stack_x" in src
    assert "stack_w" not in src


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the allocator setting is glibc's")
def test_repeated_gradient_calls_reuse_freed_memory():
    # a gradient keeps ~10 arrays of 2 MB alive until it returns; without
    # keep_freed_memory glibc returns them to the kernel and every call
    # page-faults them back (about 5,000 faults a call)
    if os.environ.get("COTAN_KEEP_FREED_MEMORY") == "0":
        pytest.skip("turned off by COTAN_KEEP_FREED_MEMORY=0")
    import resource

    def loss(mu, x):
        d = (x[:, None, :] - mu[None]) / 2.0
        return np.sum(np.exp(-np.sum(d ** 2, axis=2)))
    g = cotan.grad(loss)
    args = (np.ones((25, 10)), np.zeros((1000, 10)))
    for _ in range(3):   # the heap settles
        g(*args)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        g(*args)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10 < 500
