"""cotan.pmap on the cpu backend: argument splitting and result stacking,
static arguments, devices, the compiled (segmented) program against the
eager one and a Python loop over slices, collectives inside loops and
branches, and errors (no hang when shards disagree)."""

import warnings

import numpy as np
import pytest

import cotan
from cotan import lax
from cotan.errors import ShapeError

N = 4


@pytest.fixture(autouse=True)
def four_devices(monkeypatch):
    monkeypatch.setenv("COTAN_NUM_DEVICES", str(N))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def step(w, x, lr):
    return w - lr * np.tanh(x @ w)


def test_no_collectives_is_a_loop_over_slices(rng):
    W = rng.normal(size=(N, 3, 3))
    x = rng.normal(size=(3, 3))
    got = cotan.pmap(step, in_axes=(0, None, None))(W, x, 0.1)
    np.testing.assert_allclose(got, np.stack([step(w, x, 0.1) for w in W]), rtol=1e-13)


def test_in_axes_out_axes_and_pytrees(rng):
    def f(p, x):
        return {"y": p["a"] * x + p["b"], "s": np.sum(x)}
    A = rng.normal(size=(3, N))         # mapped along axis 1
    b = rng.normal(size=3)              # shared
    X = rng.normal(size=(N, 3))
    got = cotan.pmap(f, in_axes=({"a": 1, "b": None}, 0), out_axes={"y": 1, "s": 0})(
        {"a": A, "b": b}, X)
    np.testing.assert_allclose(got["y"], (A.T * X + b).T, rtol=1e-14)
    np.testing.assert_allclose(got["s"], X.sum(axis=1), rtol=1e-14)


def total(x):
    return lax.psum(np.sum(x), "i")


def test_out_axes_none_returns_the_replicated_value_and_checks_it(rng):
    X = rng.normal(size=(N, 5))
    np.testing.assert_allclose(cotan.pmap(total, axis_name="i", out_axes=None)(X), X.sum())
    with pytest.raises(ShapeError, match="out_axes=None.*differs"):
        cotan.pmap(np.sum, out_axes=None)(X)


def scaled(x, k):
    return x.reshape((k, -1)) * lax.axis_index("i")


def test_static_broadcasted_argnums():
    X = np.arange(16.0).reshape(N, 4)
    got = cotan.pmap(scaled, axis_name="i", static_broadcasted_argnums=(1,))(X, 2)
    np.testing.assert_array_equal(got, np.stack([x.reshape(2, 2) * k for k, x in enumerate(X)]))


def controlled(x, n):
    s = x
    for k in range(n):
        s = np.sin(s) + lax.psum(s, "i") * 0.1
        if lax.pmax(np.sum(s), "i") > 2.0:
            s = s * 0.5
    t = 0
    while lax.psum(t, "i") < 8:
        t = t + 1
    return s * t


def controlled_reference(X, n):
    S = X.copy()
    for _ in range(n):
        S = np.sin(S) + S.sum(axis=0) * 0.1
        S = np.where(np.sum(S, axis=1).max() > 2.0, S * 0.5, S)
    return S * 2          # t = 2 on each of 4 shards reaches psum 8


def test_collectives_inside_loops_and_branches(rng):
    X = rng.normal(size=(N, 3))
    ref = controlled_reference(X, 3)
    eager = cotan.pmap(controlled, axis_name="i", in_axes=(0, None), jit=False)(X, 3)
    compiled = cotan.pmap(controlled, axis_name="i", in_axes=(0, None))(X, 3)
    np.testing.assert_allclose(eager, ref, rtol=1e-13)
    np.testing.assert_allclose(compiled, ref, rtol=1e-13)


def test_segments_are_compiled_once_and_shared_by_the_shards(rng):
    p = cotan.pmap(controlled, axis_name="i", in_axes=(0, None))
    p(rng.normal(size=(N, 3)), 2)
    prog = p.program().__self__
    assert len(prog.segments) >= 4
    assert all(seg.eager_reason is None for seg in prog.segments)
    assert all(seg.jitted for seg in prog.segments)


def lossy(x):
    return np.sum((x - lax.pmean(x, "i")) ** 2)


def test_grad_with_loop_carried_stacks_across_collectives_runs_as_python(rng):
    # jit holds reverse-mode stacks natively, so a stack that crosses a cut
    # makes the whole program run as generated Python, with a warning
    def looped(x):
        s = 0.0
        for k in range(3):
            s = s + lax.psum(np.sum(np.sin(x * k)), "i")
        return s
    X = rng.normal(size=(N, 2))
    with pytest.warns(RuntimeWarning, match="runs as Python"):
        g = cotan.pmap(cotan.grad(looped), axis_name="i")(X)
    ref = N * sum(k * np.cos(X * k) for k in range(3))
    np.testing.assert_allclose(g, ref, rtol=1e-13)


def test_devices():
    devs = cotan.devices("cpu")
    assert len(devs) == N == cotan.local_device_count() == cotan.device_count()
    assert [d.id for d in devs] == list(range(N))
    assert repr(devs[1]) == "cpu:1"
    got = cotan.pmap(total, axis_name="i", devices=devs[:2])(np.ones((2, 3)))
    np.testing.assert_allclose(got, [6.0, 6.0])


def test_more_slices_than_devices_is_refused():
    with pytest.raises(ShapeError, match="size 5.*4 cpu devices.*COTAN_NUM_DEVICES"):
        cotan.pmap(total, axis_name="i")(np.ones((5, 2)))


def test_mismatched_sizes_are_refused():
    with pytest.raises(ShapeError, match="different sizes"):
        cotan.pmap(step, in_axes=(0, 0, None))(np.ones((4, 2, 2)), np.ones((3, 2, 2)), 0.1)


def only_first_sums(x):
    if lax.axis_index("i") == 0:
        x = lax.psum(x, "i")
    return x


def test_shards_that_disagree_raise_instead_of_hanging():
    with pytest.raises(lax.CollectiveMismatchError, match="returned while shard 0 waits"):
        cotan.pmap(only_first_sums, axis_name="i", jit=False)(np.ones((N, 2)))


def different_collectives(x):
    if lax.axis_index("i") == 1:
        return lax.pmax(x, "i")
    return lax.psum(x, "i")


def test_different_collectives_are_named():
    with pytest.raises(lax.CollectiveMismatchError, match="different collectives.*pmax"):
        cotan.pmap(different_collectives, axis_name="i", jit=False)(np.ones((N, 2)))


def raises_on_two(x):
    if lax.axis_index("i") == 2:
        raise ValueError("shard two is unhappy")
    return lax.psum(x, "i")


def test_an_error_in_one_shard_is_raised_and_the_others_stop():
    with pytest.raises(ValueError, match="shard two is unhappy"):
        cotan.pmap(raises_on_two, axis_name="i", jit=False)(np.ones((N, 2)))


def test_unnamed_pmap_has_no_axis_for_collectives():
    def f(x):
        return lax.psum(x, "i")
    with pytest.raises(lax.AxisNameError, match="'i' is not bound"):
        cotan.pmap(f, jit=False)(np.ones((2, 2)))


def test_other_backends_say_what_is_missing():
    from cotan.errors import MissingRuleError
    with pytest.raises(MissingRuleError, match="not built yet"):
        cotan.pmap(total, backend="xla")


def two_axes(x):
    return x / lax.psum(x, ("i", "j")) + lax.axis_index("i") * 10.0 + lax.axis_index("j") \
        + lax.pmax(x, "i")


def test_nested_pmap_matches_nested_vmap():
    # the collective over the outer axis meets the shards with the same inner index
    Y = np.arange(1.0, 5.0).reshape(2, 2)
    ref = Y / Y.sum() + np.arange(2)[:, None] * 10.0 + np.arange(2) + Y.max(axis=0)
    for jit in (True, False):
        got = cotan.pmap(cotan.pmap(two_axes, axis_name="j", jit=jit), axis_name="i",
                         jit=jit)(Y)
        np.testing.assert_allclose(got, ref, rtol=1e-14)
    np.testing.assert_allclose(cotan.vmap(cotan.vmap(two_axes, axis_name="j"),
                                          axis_name="i")(Y), ref, rtol=1e-14)


AXIS = "batch"


def named_by_a_global(x):
    return x / lax.psum(x, AXIS)


def test_axis_name_from_a_global_constant():
    X = np.arange(1.0, 5.0)
    np.testing.assert_allclose(cotan.vmap(named_by_a_global, axis_name="batch")(X), X / 10)
    np.testing.assert_allclose(cotan.pmap(named_by_a_global, axis_name="batch")(X), X / 10)


def writes_its_input(x):
    x[0] = 0.0
    return x


def test_slices_are_read_only_views_of_the_input():
    # eager shards get views of the caller's array: writing into one is refused
    # instead of changing the caller's data
    X = np.ones((2, 3))
    with pytest.raises(ValueError, match="read-only"):
        cotan.pmap(writes_its_input, jit=False)(X)
    np.testing.assert_array_equal(X, 1.0)
    # compiled, the write is a functional update (cotan's normal form)
    got = cotan.pmap(writes_its_input)(X)
    np.testing.assert_array_equal(got[:, 0], 0.0)
    np.testing.assert_array_equal(X, 1.0)
