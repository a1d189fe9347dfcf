"""`jit` of batched code: `jit(vmap(f))` over the vmap corpus and
`jit(vmap(grad(f)))` (per-example gradients) over the shared corpus,
against the eager (uncompiled) results of the same generated functions.
A program that needs a primitive without an llvm lowering is xfail naming
it (MissingRuleError), never a crash or a wrong answer."""

import numpy as np
import pytest

import cotan
from cotan.errors import MissingRuleError, ShapeError, TypeInferenceError

from .programs import PROGRAMS as GRAD_PROGRAMS
from .test_vmap_programs import PROGRAMS as VMAP_PROGRAMS


def _run(f, args):
    try:
        return f(*args)
    except (MissingRuleError, TypeInferenceError, ShapeError) as e:
        pytest.xfail(f"{type(e).__name__}: {str(e).splitlines()[0]}")


def _close(got, want):
    g_leaves, g_tree = cotan.tree_util.tree_flatten(got)
    w_leaves, w_tree = cotan.tree_util.tree_flatten(want)
    assert g_tree == w_tree
    for a, b in zip(g_leaves, w_leaves):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                   rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fn,args,in_axes", VMAP_PROGRAMS,
                         ids=[p[0].__name__ for p in VMAP_PROGRAMS])
def test_jit_of_vmap_matches_eager(fn, args, in_axes):
    axes = in_axes if in_axes is not None else (0,) * len(args)
    vf = cotan.vmap(fn, in_axes=axes)
    want = vf(*args)
    _close(_run(cotan.jit(vf), args), want)


@pytest.mark.parametrize("prog", GRAD_PROGRAMS, ids=[p.name for p in GRAD_PROGRAMS])
def test_jit_of_per_example_gradients(prog):
    """vmap(grad(f)) over a batch of 3 copies of the first argument
    (slightly perturbed, so value-dependent loops still end on every lane),
    the others shared."""
    args = prog.make_args(np.random.default_rng(0))
    first = np.asarray(args[0])
    if first.dtype.kind != "f":
        pytest.skip("first argument is not a float array")
    batch = np.stack([first, first * 1.05 + 0.01, first * 0.95])
    g = cotan.grad(prog.fn, argnums=0)
    try:
        pg = cotan.vmap(g, in_axes=(0,) + (None,) * (len(args) - 1))
        want = pg(batch, *args[1:])
    except Exception as e:  # the eager transformation itself is not ours to test
        pytest.skip(f"vmap(grad) is not available eagerly: {type(e).__name__}")
    _close(_run(cotan.jit(pg), (batch,) + tuple(args[1:])), want)


def test_jit_vmap_keeps_fusion_and_matches_loop():
    def f(x, k):
        return np.sum(np.sin(x) * k)
    xs = np.linspace(0, 1, 12).reshape(3, 4)
    k = np.arange(4.0)
    got = cotan.jit(cotan.vmap(f, in_axes=(0, None)))(xs, k)
    np.testing.assert_allclose(got, [f(x, k) for x in xs], rtol=1e-12)


def test_jit_vmap_out_axes_moves_the_batch_axis():
    def f(x):
        return x * 2.0
    xs = np.arange(12.0).reshape(3, 4)
    vf = cotan.vmap(f, in_axes=1, out_axes=1)
    np.testing.assert_allclose(cotan.jit(vf)(xs), vf(xs))


def test_jit_per_example_gradients_of_mlp_loss():
    def loss(w, x, y):
        return np.mean((np.tanh(x @ w) - y) ** 2)
    rng = np.random.default_rng(0)
    w, x, y = rng.normal(size=(4, 2)), rng.normal(size=(5, 3, 4)), rng.normal(size=(5, 3, 2))
    pg = cotan.vmap(cotan.grad(loss), in_axes=(None, 0, 0))
    want = np.stack([cotan.grad(loss)(w, x[i], y[i]) for i in range(5)])
    np.testing.assert_allclose(cotan.jit(pg)(w, x, y), want, rtol=1e-10)
