"""grad of every program in tests/programs.py agrees with central finite
differences, and every generated gradient is valid core form."""

import numpy as np
import pytest

import cotan
from cotan.autodiff.core_form import validate
from cotan.autodiff.materialize import generated_core
from cotan.tree_util import tree_flatten, tree_unflatten

from tests.programs import PROGRAMS


def numerical_grad(fn, args, argnum, eps=1e-6):
    """Central differences of scalar `fn` in every leaf of args[argnum]."""
    leaves, tree = tree_flatten(args[argnum])
    leaves = [np.asarray(l, dtype=np.float64) for l in leaves]
    out = []
    for k, leaf in enumerate(leaves):
        g = np.zeros_like(leaf)
        for i in np.ndindex(leaf.shape):
            vals = []
            for delta in (eps, -eps):
                moved = leaf.copy()
                moved[i] += delta
                new = list(leaves)
                new[k] = moved
                a = list(args)
                a[argnum] = tree_unflatten(tree, new)
                vals.append(float(fn(*a)))
            g[i] = (vals[0] - vals[1]) / (2 * eps)
        out.append(g)
    return tree_unflatten(tree, out)


def assert_tree_close(got, want, rtol=1e-5, atol=1e-6):
    gl, gt = tree_flatten(got)
    wl, wt = tree_flatten(want)
    assert gt == wt, f"gradient structure {gt} != {wt}"
    for a, b in zip(gl, wl):
        np.testing.assert_allclose(np.asarray(a, dtype=float), b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_grad_matches_finite_differences(prog):
    args = prog.make_args(np.random.default_rng(0))
    g = cotan.grad(prog.fn, argnums=prog.argnums)
    validate(generated_core(g).node)
    got = g(*args)
    assert len(got) == len(prog.argnums)
    for a, gi in zip(prog.argnums, got):
        assert_tree_close(gi, numerical_grad(prog.fn, args, a))


@pytest.mark.parametrize("prog", PROGRAMS[:20], ids=[p.name for p in PROGRAMS[:20]])
def test_value_and_grad_value_is_the_function(prog):
    args = prog.make_args(np.random.default_rng(1))
    value, _ = cotan.value_and_grad(prog.fn, argnums=prog.argnums)(*args)
    np.testing.assert_allclose(value, prog.fn(*args), rtol=1e-12)
