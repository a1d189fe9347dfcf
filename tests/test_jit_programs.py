"""Every program of the shared corpus under `jit` and `jit(grad(...))`,
against the eager results.  A program that needs a primitive without an
llvm lowering is reported as xfail naming it (MissingRuleError), never a
crash or a wrong answer."""

import numpy as np
import pytest

import cotan
from cotan.errors import MissingRuleError, TypeInferenceError, ShapeError

from .programs import PROGRAMS


def _run(f, args):
    try:
        return f(*args)
    except (MissingRuleError, TypeInferenceError, ShapeError) as e:
        pytest.xfail(f"{type(e).__name__}: {str(e).splitlines()[0]}")


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_program_under_jit(prog):
    args = prog.make_args(np.random.default_rng(0))
    want = prog.fn(*args)
    got = _run(cotan.jit(prog.fn), args)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_program_under_jit_grad(prog):
    args = prog.make_args(np.random.default_rng(0))
    g = cotan.grad(prog.fn, argnums=prog.argnums if len(prog.argnums) > 1 else prog.argnums[0])
    want = g(*args)
    got = _run(cotan.jit(g), args)
    got_leaves, got_tree = cotan.tree_util.tree_flatten(got)
    want_leaves, want_tree = cotan.tree_util.tree_flatten(want)
    assert got_tree == want_tree
    for a, b in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
