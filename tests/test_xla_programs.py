"""The shared corpus under the xla backend: `jit(f, backend="xla")`,
`jit(grad(f))`, `jit(vmap(f))` and `jit(vmap(grad(f)))` against eager.

A program the backend refuses (a primitive with a declared no-rule reason,
a reverse-mode stack whose size is only known at run time) is an xfail
naming the reason, never a crash or a wrong number; the refusals of plain
`jit` are listed (anything else refused fails).  Needs jaxlib (the `xla`
extra): without it the module is skipped with that reason.
"""

import numpy as np
import pytest

pytest.importorskip("jaxlib.xla_client", reason="the xla backend needs jaxlib (pip install "
                    "'cotan[xla]')")

import cotan  # noqa: E402
from cotan.errors import MissingRuleError, ShapeError, TypeInferenceError  # noqa: E402

from .programs import PROGRAMS  # noqa: E402
from .test_vmap_programs import PROGRAMS as VMAP_PROGRAMS  # noqa: E402

#: plain-jit refusals: primitives not lowered for xla (declared reasons)
JIT_REFUSED = {"linalg_inv_det": "inv", "linalg_solve": "solve"}


def _close(got, want):
    g_leaves, g_tree = cotan.tree_util.tree_flatten(got)
    w_leaves, w_tree = cotan.tree_util.tree_flatten(want)
    assert g_tree == w_tree
    for a, b in zip(g_leaves, w_leaves):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                   rtol=1e-9, atol=1e-12)


def _run(f, args):
    try:
        return f(*args)
    except (MissingRuleError, TypeInferenceError, ShapeError) as e:
        pytest.xfail(f"refused: {type(e).__name__}: {str(e).splitlines()[0]}")


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_program_under_xla_jit(prog):
    args = prog.make_args(np.random.default_rng(0))
    want = prog.fn(*args)
    jf = cotan.jit(prog.fn, backend="xla")
    if prog.name in JIT_REFUSED:
        with pytest.raises(MissingRuleError, match=JIT_REFUSED[prog.name]):
            jf(*args)
        return
    _close(jf(*args), want)


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_program_under_xla_jit_grad(prog):
    args = prog.make_args(np.random.default_rng(0))
    g = cotan.grad(prog.fn, argnums=prog.argnums if len(prog.argnums) > 1 else prog.argnums[0])
    want = g(*args)
    _close(_run(cotan.jit(g, backend="xla"), args), want)


@pytest.mark.parametrize("fn,args,in_axes", VMAP_PROGRAMS,
                         ids=[p[0].__name__ for p in VMAP_PROGRAMS])
def test_program_under_xla_jit_vmap(fn, args, in_axes):
    axes = in_axes if in_axes is not None else (0,) * len(args)
    vf = cotan.vmap(fn, in_axes=axes)
    want = vf(*args)
    _close(_run(cotan.jit(vf, backend="xla"), args), want)


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_program_under_xla_jit_vmap_grad(prog):
    args = prog.make_args(np.random.default_rng(0))
    first = np.asarray(args[0])
    if first.dtype.kind != "f":
        pytest.skip("first argument is not a float array")
    batch = np.stack([first, first * 1.05 + 0.01, first * 0.95])
    pg = cotan.vmap(cotan.grad(prog.fn, argnums=0), in_axes=(0,) + (None,) * (len(args) - 1))
    try:
        want = pg(batch, *args[1:])
    except Exception as e:  # the eager transformation itself is not this backend's to test
        pytest.skip(f"vmap(grad) is not available eagerly: {type(e).__name__}")
    _close(_run(cotan.jit(pg, backend="xla"), (batch,) + tuple(args[1:])), want)


def test_runtime_trip_count_stack_is_refused_by_name():
    def f(x):
        s = np.sum(x)
        while s < 10.0:
            s = s * 1.5 + 0.1
        return s
    with pytest.raises(MissingRuleError, match="while s < 10.0.*static trip count"):
        cotan.jit(cotan.grad(f), backend="xla")(np.array([0.5, 1.0]))


def test_static_trip_count_stack_matches_eager():
    def f(w, h):
        for _ in range(6):
            h = np.tanh(w @ h + 0.1)
        return np.sum(h ** 2)
    rng = np.random.default_rng(3)
    w, h = rng.normal(size=(4, 4)) * 0.5, rng.normal(size=4)
    g = cotan.grad(f, argnums=(0, 1))
    _close(cotan.jit(g, backend="xla")(w, h), g(w, h))


def test_triangular_nest_gets_a_capacity_from_the_outer_counter():
    def f(x):
        s = 0.0
        for i in range(4):
            for j in range(i + 1, 5):
                s = s + x[i] * np.sin(x[j])
        return s
    x = np.linspace(0.1, 0.9, 5)
    g = cotan.grad(f)
    text = cotan.jit(g, backend="xla").lower(x).as_text("stablehlo")
    # the inner loop runs at most 4 times per outer trip (the bound of its
    # start over the outer counter's range): stacks of 4 * 4 records
    assert "tensor<16xf64>" in text
    _close(cotan.jit(g, backend="xla")(x), g(x))


def test_runtime_step_is_still_refused():
    def f(x):
        s = 0.0
        for i in range(1, 3):
            for j in range(0, 5, i):
                s = s + x[j] ** 2
        return s
    with pytest.raises(MissingRuleError, match="static trip count"):
        cotan.jit(cotan.grad(f), backend="xla")(np.linspace(0.1, 0.9, 5))
