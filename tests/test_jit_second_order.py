"""Second-order reverse mode and checkpointing under `jit`.

A gradient through a loop keeps overwritten values on stacks; its gradient
gives every stack an adjoint stack (`stack_unpop` / `stack_unpush`), and
`cotan.vjp`'s backward function copies stacks (`copy_stack`).  Under jit
the stacks are native buffers (run-time loops) or compile-time lists
(unrolled loops); each program here is compared with the eager result of
the same generated function, and one with central differences of the
jitted first-order gradient."""

import numpy as np
import pytest

import cotan
from cotan.errors import TypeInferenceError
from cotan.reverse_api import _vjp_pair

from .programs import PROGRAMS
from .test_grad_second_order import (V, X0, hvp_rnn, loop_scalar,
                                     nested_with_branch, while_scalar)


def _close(got, want, rtol=1e-9):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=1e-12)


# -- programs ---------------------------------------------------------------------

def runtime_trip(x, n):
    s = x
    for i in range(n):
        s = np.sin(s) * x + 0.3 * s
    return s


def value_dependent_while(x):
    s = x
    while s < 4.0:
        s = s * 1.5 + np.sin(x) * 0.1
    return s * x


def nested_mixed(x):
    h = np.zeros(3)
    c = 0.5
    for i in range(3):
        for j in range(2):
            h = np.tanh(h * c + x * (i - j))
            c = c * 0.9 + np.sum(h) * 0.1
    return np.sum(h * h) + c


def branch_on_array(x):
    h = x
    for i in range(4):
        if np.sum(h) > 0.0:
            h = np.sin(h) * x
        else:
            h = h * h + x
    return np.sum(h)


W = [np.array([0.5, -0.3, 0.2]), np.array([0.2, 0.7, -0.1]), np.array([-0.4, 0.1, 0.6])]


def unrolled(x):
    # indexing a list with the counter: the primal loop is unrolled at
    # compile time, the adjoint sweeps stay run-time loops popping from it
    s = x
    for i in range(3):
        s = np.sin(s * W[i]) * x
    return np.sum(s)


def hvp_nested(x):
    return np.sum(cotan.grad(nested_with_branch)(x) * V)


def hvp_nested_matmul(x):
    # `g @ V` with V a constant array: matmul's dtype probe once refused it
    return cotan.grad(nested_with_branch)(x) @ V


def hvp_nested_mixed(x):
    return np.sum(cotan.grad(nested_mixed)(x) * V)


def hvp_branch_on_array(x):
    return np.sum(cotan.grad(branch_on_array)(x) * V)


def hvp_unrolled(x):
    return np.sum(cotan.grad(unrolled)(x) * V)


# -- the second-order corpus -------------------------------------------------------

@pytest.mark.parametrize("fn", [loop_scalar, while_scalar], ids=lambda f: f.__name__)
def test_second_derivative_through_a_loop(fn):
    gg = cotan.grad(cotan.grad(fn))
    for x in (0.8, -0.3):
        _close(cotan.jit(gg)(x), gg(x))


def rnn_weights_argument(x, w):
    h = np.zeros(3)
    for t in range(5):
        h = np.tanh(w @ h + x * t)
    return np.sum(h ** 2)


def hvp_rnn_weights_argument(x, w):
    return np.sum(cotan.grad(rnn_weights_argument)(x, w) * V)


@pytest.mark.parametrize("fn", [hvp_rnn, hvp_nested, hvp_nested_matmul,
                                hvp_nested_mixed, hvp_branch_on_array, hvp_unrolled],
                         ids=lambda f: f.__name__)
def test_hessian_vector_product(fn):
    g = cotan.grad(fn)
    _close(cotan.jit(g)(X0), g(X0))


def test_hessian_vector_product_of_an_rnn():
    w = np.array([[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [-0.1, 0.2, 0.3]])
    g = cotan.grad(hvp_rnn_weights_argument)
    _close(cotan.jit(g)(X0, w), g(X0, w))


def test_hessian_vector_product_of_a_lambda():
    g = cotan.grad(lambda x: np.sum(cotan.grad(nested_mixed)(x) * V))
    _close(cotan.jit(g)(X0), g(X0))


def test_against_finite_differences_of_the_jitted_gradient():
    jg = cotan.jit(cotan.grad(nested_with_branch))
    jh = cotan.jit(cotan.grad(hvp_nested))
    eps = 1e-6
    fd = (jg(X0 + eps * V) - jg(X0 - eps * V)) / (2 * eps)   # H @ V (H is symmetric)
    np.testing.assert_allclose(jh(X0), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("n", [1, 5])
def test_run_time_trip_count(n):
    gg = cotan.grad(cotan.grad(runtime_trip))
    _close(cotan.jit(gg)(0.7, n), gg(0.7, n))


def test_zero_trips():
    # runtime_trip(x, 0) == x; (eagerly this gradient reads the loop body's
    # never-assigned temporaries when the loop runs zero times)
    jgg = cotan.jit(cotan.grad(cotan.grad(runtime_trip)))
    assert jgg(0.7, 0) == 0.0
    _close(jgg(0.7, 3), cotan.grad(cotan.grad(runtime_trip))(0.7, 3))


def test_value_dependent_while():
    gg = cotan.grad(cotan.grad(value_dependent_while))
    for x in (0.3, 1.1, 5.0):       # 6, 3 and 0 trips
        _close(cotan.jit(gg)(x), gg(x))


def test_repeated_calls_start_from_empty_adjoint_stacks():
    jgg = cotan.jit(cotan.grad(cotan.grad(runtime_trip)))
    first = jgg(0.7, 4)
    jgg(0.2, 9)
    _close(jgg(0.7, 4), first, rtol=0)


def test_second_derivative_computed_in_a_jitted_loop():
    # the inner stacks are made again each trip: their adjoint stacks too
    gg = cotan.grad(cotan.grad(loop_scalar))

    def total(x):
        acc = 0.0
        for k in range(3):
            acc = acc + gg(x * (k + 1.0))
        return acc
    _close(cotan.jit(total)(0.3), total(0.3))


_LOOP_PROGRAMS = ["concat_stack", "for_accumulate", "for_overwrite", "for_over_shape",
                  "for_product", "for_with_branch", "for_break", "for_continue",
                  "while_value_dependent", "while_with_break", "nested_loops",
                  "nested_while_for", "loop_trip_from_value", "loop_early_return",
                  "recurrence_scalar", "rnn_loop", "loop_over_list", "inplace_in_loop",
                  "newton_sqrt"]


def _hvp(prog, args):
    """grad of (grad(f) . v) with respect to the first differentiated argument."""
    a0 = prog.argnums[0]
    g = cotan.grad(prog.fn, argnums=a0)
    v = np.random.default_rng(1).uniform(-1, 1, np.shape(args[a0]))
    if len(args) == 1:
        def h(x):
            return np.sum(g(x) * v)
    elif len(args) == 2:
        def h(x, y):
            return np.sum(g(x, y) * v)
    else:
        def h(x, y, z):
            return np.sum(g(x, y, z) * v)
    return cotan.grad(h, argnums=a0)


@pytest.mark.parametrize("prog", [p for p in PROGRAMS if p.name in _LOOP_PROGRAMS],
                         ids=lambda p: p.name)
def test_corpus_hessian_vector_products(prog):
    args = prog.make_args(np.random.default_rng(0))
    hv = _hvp(prog, args)
    assert "stack_unpush(" in cotan.source(hv)      # the program needs adjoint stacks
    _close(cotan.jit(hv)(*args), hv(*args))


def test_both_kinds_of_stack_are_compiled():
    # a loop appending to a list is unrolled: its stacks are compile-time
    # lists; a run-time loop's are native buffers
    unrolled_list = [p for p in PROGRAMS if p.name == "loop_over_list"][0]
    args = unrolled_list.make_args(np.random.default_rng(0))
    kinds = {
        "loop_over_list": cotan.jit(_hvp(unrolled_list, args)).lower(*args).typed.stacks,
        "nested_with_branch": cotan.jit(cotan.grad(hvp_nested)).lower(X0).typed.stacks}
    assert {k: {kind for kind, _ in v.values()} for k, v in kinds.items()} == {
        "loop_over_list": {"static"}, "nested_with_branch": {"native"}}


def test_a_stack_saved_on_a_stack_is_refused():
    g1 = cotan.grad(loop_scalar)

    def outer(x):
        acc = 0.0
        for k in range(3):
            acc = acc + g1(x * (k + 1.0)) * x
        return acc
    go = cotan.grad(outer)
    with pytest.raises(TypeInferenceError, match="saves a reverse-mode stack on another stack"):
        cotan.jit(go)(0.3)


# -- a first-order bug these programs meet --------------------------------------------

def carried_view(x):
    s = x
    for i in range(3):
        s = np.sin(s) + x
    return np.sum(s)


def scaled_twice(s, x):
    for k in range(3):
        s = s * x + 0.1 * s
    return np.sum(s)


def test_first_order_gradient_reading_a_carried_alias():
    g = cotan.grad(scaled_twice)
    _close(cotan.jit(g)(X0, X0), g(X0, X0))


def test_hessian_vector_product_reading_a_carried_alias():
    g = cotan.grad(lambda x: np.sum(cotan.grad(carried_view)(x) * V))
    _close(cotan.jit(g)(X0), g(X0))


# -- checkpointing -------------------------------------------------------------------

@pytest.fixture
def no_disk_cache(monkeypatch):
    # the disk cache keys a program by its source, where a checkpointed call
    # is a primitive's name, not the code it stands for (that name is reused
    # by another function in another process)
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")


def _step(s, x):
    for k in range(3):
        s = np.sin(s) * x
    return s


def _step_alias(s, x):
    for k in range(3):
        s = np.sin(s) * x + 0.1 * s
    return s


def test_checkpoint_inside_a_loop_under_jit_grad(no_disk_cache):
    step = cotan.checkpoint(_step)

    def f(x):
        s = x
        for i in range(4):
            s = step(s, x)
        return np.sum(s * s)
    g = cotan.grad(f)
    assert "_vjp(" in cotan.source(g)
    _close(cotan.jit(g)(X0), g(X0))
    _close(cotan.jit(f)(X0), f(X0))


def test_checkpoint_whose_gradient_reads_a_carried_alias(no_disk_cache):
    step = cotan.checkpoint(_step_alias)

    def f(x):
        s = x
        for i in range(2):
            s = step(s, x)
        return np.sum(s * s)
    g = cotan.grad(f)
    _close(cotan.jit(g)(X0), g(X0))


def test_checkpoint_with_a_run_time_trip_count(no_disk_cache):
    step = cotan.checkpoint(_step)

    def f(x, n):
        s = x
        for i in range(n):
            s = step(s, x) * 0.9
        return s

    g = cotan.grad(f)
    for n in (0, 3):
        _close(cotan.jit(g)(0.6, n), g(0.6, n))


# -- copies of stacks (vjp's backward function) --------------------------------------------

def vjp_loop(x):
    s = x
    for i in range(4):
        s = np.sin(s) * x
    return np.sum(s)


def test_backward_function_with_stacks_passed_as_lists():
    forward, backward = _vjp_pair(vjp_loop, False)
    out, residuals = forward(X0)
    lists = tuple(list(r) if isinstance(r, list) else r for r in residuals)
    _close(cotan.jit(backward)(*lists, 1.0), backward(*residuals, 1.0))


def test_forward_and_backward_compiled_together():
    forward, backward = _vjp_pair(vjp_loop, False)

    def both(x):
        out, r = forward(x)
        a = backward(r[0], r[1], r[2], r[3], r[4], r[5], 1.0)
        b = backward(r[0], r[1], r[2], r[3], r[4], r[5], 2.0)     # copies: pops again
        return a[0] + b[0] * 10.0
    _close(cotan.jit(both)(X0), both(X0))


def _early_return_before_a_while(x):
    # random program 100314: the return in the first trip leaves the loops'
    # stacks popped before inference has seen anything pushed on them
    v0 = x * 1.0
    for i1 in range(x.shape[0]):
        for i2 in range(1, x.shape[0]):
            if 2.0 > 0.3:
                return np.sum(np.tanh(x)) + np.sum(v0)
            k3 = i1 + 1
            while k3 < x.shape[0]:
                v0[0:1] = x[0:1] * np.exp(np.tanh(v0[i2]))
                if k3 == 0:
                    break
                k3 = k3 + 1
        for i5 in range(i1, x.shape[0]):
            v0[1] = (v0[1] + x[0]) / (1.0 + (0.25 - x[i1]) ** 2)
    return np.sum(np.tanh(x)) + np.sum(v0)


def test_jit_grad_pop_before_any_push_is_typed_or_refused():
    from cotan.errors import CotanError
    x = np.array([0.3, -0.8])
    want = cotan.grad(_early_return_before_a_while)(x)
    np.testing.assert_allclose(want, 1.0 / np.cosh(x) ** 2 + 1.0, rtol=1e-12)
    try:
        got = cotan.jit(cotan.grad(_early_return_before_a_while))(x)
    except CotanError:
        return      # a clear refusal is allowed; an IndexError is not
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _optional_helper(a, b):
    if 0.25 * np.tanh(1.5) > 1.5:
        return b
    return b / (1 + a ** 2)


def _zero_trip_inlined_early_return(x, y):
    for i in range(1):
        for j in range(0, i):
            y = _optional_helper(y, y)
    return np.mean(x) + y


def test_stack_of_values_that_are_all_none():
    # the inlined helper's `result = None` is saved on a stack nothing else
    # is pushed to: nothing is stored, and None comes back
    g = cotan.grad(_zero_trip_inlined_early_return, argnums=(0, 1))
    want = g(np.ones(2), 0.5)
    got = cotan.jit(g)(np.ones(2), 0.5)
    np.testing.assert_allclose(got[0], want[0])
    assert float(got[1]) == pytest.approx(float(want[1]))
