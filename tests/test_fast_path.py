"""The native fast call path (runtime/fastcall.py) for pytree arguments:
dicts, tuples, lists and None of arrays and Python scalars, any number of
leaves up to its limit, pytree outputs.  A call that does not match a
registered signature exactly (keys, order, leaf types, dtypes, shapes,
layout) takes the Python path and gets what it would have got there.
Observable through `_fast_calls`, the C counter of calls it served."""

import numpy as np
import pytest

import cotan
from cotan.errors import CotanError
from cotan.runtime import dispatch

pytestmark = pytest.mark.skipif(dispatch._FAST is None,
                                reason="no C compiler: the ctypes path only")


def served(jf, *args):
    """(result, whether the fast path served the call)."""
    before = jf._fast_calls
    out = jf(*args)
    return out, jf._fast_calls == before + 1


def params(n, rng, shape=(3,)):
    return {f"w{k}": rng.standard_normal(shape) for k in range(n)}


def weighted_sum(p):
    s = 0.0
    k = 1.0
    for v in p.values():
        s = s + np.sum(v) * k
        k = k + 1.0
    return s


def test_dict_of_100_leaves_takes_the_fast_path():
    rng = np.random.default_rng(0)
    p = params(100, rng)
    jf = cotan.jit(weighted_sum)
    first = jf(p)                       # compiles, registers the signature
    got, fast = served(jf, p)
    assert fast
    want = sum(np.sum(p[f"w{k}"]) * (k + 1) for k in range(100))
    assert got == pytest.approx(want, rel=1e-12)
    assert got == first == jf._call_slow(p)
    # new arrays of the same signature, keys as fresh (equal, not identical) strings
    q = {"".join(["w", str(k)]): v + 1.0 for k, v in enumerate(p.values())}
    got, fast = served(jf, q)
    assert fast and got == pytest.approx(want + sum(3 * (k + 1) for k in range(100)), rel=1e-12)


def gradient_step(p, x):
    h = np.tanh(x @ p["layers"][0]["w"] + p["layers"][0]["b"])
    h = np.tanh(h @ p["layers"][1]["w"] + p["layers"][1]["b"])
    out = h @ p["head"][0] + p["head"][1]
    return {"loss": np.sum(out * out) * p["scale"], "parts": (h, [out, None]), "tag": 3}


def nested_params(rng):
    return {"layers": [{"w": rng.standard_normal((4, 5)), "b": rng.standard_normal(5)},
                       {"w": rng.standard_normal((5, 5)), "b": rng.standard_normal(5)}],
            "head": (rng.standard_normal((5, 2)), rng.standard_normal(2)),
            "scale": 0.5}


def check_same(got, want):
    assert type(got) is type(want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            check_same(got[k], want[k])
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            check_same(a, b)
    elif isinstance(want, np.ndarray):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        assert got.dtype == want.dtype
    else:
        assert got == pytest.approx(want, rel=1e-12)


def test_nested_pytree_in_and_out_takes_the_fast_path():
    rng = np.random.default_rng(1)
    p, x = nested_params(rng), rng.standard_normal((3, 4))
    jf = cotan.jit(gradient_step)
    slow = jf(p, x)
    got, fast = served(jf, p, x)
    assert fast
    check_same(got, slow)
    check_same(got, jf._call_slow(p, x))
    want = gradient_step(p, x)                   # eager NumPy
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-12)
    np.testing.assert_allclose(got["parts"][0], want["parts"][0], rtol=1e-12)
    np.testing.assert_allclose(got["parts"][1][0], want["parts"][1][0], rtol=1e-12)
    assert got["parts"][1][1] is None and got["tag"] == 3
    assert type(got["parts"]) is tuple and type(got["parts"][1]) is list


def test_gradient_of_a_parameter_dict_takes_the_fast_path():
    rng = np.random.default_rng(2)
    p, x = nested_params(rng), rng.standard_normal((3, 4))

    def loss(p, x):
        return gradient_step(p, x)["loss"]
    g = cotan.jit(cotan.grad(loss))
    g(p, x)
    got, fast = served(g, p, x)
    assert fast
    check_same(got, cotan.grad(loss)(p, x))


def mismatches(p, rng):
    """Calls that must not match the signature registered for `p`."""
    keys = list(p)
    yield "a key more", {**p, "extra": rng.standard_normal(3)}
    yield "a key less", {k: p[k] for k in keys[:-1]}
    yield "another key", {**{k: p[k] for k in keys[:-1]}, "other": p[keys[-1]]}
    yield "keys in another order", {k: p[k] for k in reversed(keys)}
    yield "another shape", {**p, keys[0]: rng.standard_normal(4)}
    yield "another dtype", {**p, keys[0]: p[keys[0]].astype(np.float32)}
    yield "a strided view", {**p, keys[0]: rng.standard_normal(6)[::2]}
    yield "a Python float leaf", {**p, keys[0]: 2.0}
    yield "a numpy scalar leaf", {**p, keys[0]: np.float64(2.0)}


def sum_of_leaves(p):
    s = 0.0
    for v in p.values():
        s = s + np.sum(v)
    return s


def sum_of_items(p):
    s = 0.0
    for v in p:
        s = s + np.sum(v)
    return s


@pytest.mark.parametrize("case", range(9))
def test_mismatching_structure_falls_back_to_the_python_path(case):
    rng = np.random.default_rng(3)
    p = params(20, rng)
    jf = cotan.jit(sum_of_leaves)
    jf(p)
    assert served(jf, p)[1]
    label, other = list(mismatches(p, rng))[case]
    got, fast = served(jf, other)
    assert not fast, label
    want = sum(np.sum(np.asarray(v)) for v in cotan.tree_util.tree_leaves(other))
    assert got == pytest.approx(want, rel=1e-12), label
    assert served(jf, p)[1]             # the first signature still matches


def test_a_tuple_or_list_for_a_tuple_falls_back():
    rng = np.random.default_rng(5)
    leaves = [rng.standard_normal(3) for _ in range(20)]
    jf = cotan.jit(sum_of_items)
    want = sum(np.sum(v) for v in leaves)
    assert jf(tuple(leaves)) == pytest.approx(want)
    assert served(jf, tuple(leaves))[1]
    for other in (list(leaves), tuple(leaves[:-1]), tuple(leaves) + (np.ones(3),)):
        got, fast = served(jf, other)
        assert not fast
        assert got == pytest.approx(sum(np.sum(v) for v in other), rel=1e-12)


def test_more_than_16_plain_arrays_take_the_fast_path():
    rng = np.random.default_rng(4)
    for n in (17, 40):
        src = (f"def f({', '.join(f'x{k}' for k in range(n))}):\n    s = x0\n" +
               "".join(f"    s = s + x{k} * {k}.0\n" for k in range(1, n)) + "    return s\n")
        namespace = {}
        exec(compile(src, f"<many_{n}>", "exec"), namespace)
        xs = [rng.standard_normal(5) for _ in range(n)]
        jf = cotan.jit(_with_source(namespace["f"], src, n))
        jf(*xs)
        got, fast = served(jf, *xs)
        assert fast
        np.testing.assert_allclose(got, sum(x * k for k, x in enumerate(xs)) + xs[0] * 1.0 -
                                   xs[0] * 0.0, rtol=1e-12)


def _with_source(fn, src, n):
    """A function cotan can read the source of (a file of its own)."""
    import importlib.util
    import os
    import tempfile
    folder = tempfile.mkdtemp(prefix="cotan-fastpath-")
    path = os.path.join(folder, f"many_{n}.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(f"many_{n}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.f


def scaled(p, t):
    return {"a": p["a"] * p["k"], "b": [p["b"][0] + t]}


def test_python_scalar_leaves_take_the_fast_path_with_their_values():
    jf = cotan.jit(scaled)
    p = {"a": np.arange(3.0), "k": 2.0, "b": [np.ones(2)]}
    jf(p, 1)
    got, fast = served(jf, {"a": np.arange(3.0), "k": -3.0, "b": [np.zeros(2)]}, 5)
    assert fast
    np.testing.assert_array_equal(got["a"], np.arange(3.0) * -3.0)
    np.testing.assert_array_equal(got["b"][0], np.full(2, 5.0))
    # a bool where an int was, an int too big for int64: the Python path
    assert not served(jf, p, True)[1]
    with pytest.raises(OverflowError):
        jf(p, 2 ** 70)


def add_pair(p):
    return p["a"] + p["b"]


def test_a_wrong_shape_still_gets_the_clear_error():
    jf = cotan.jit(add_pair)
    jf({"a": np.ones(3), "b": np.ones(3)})
    assert served(jf, {"a": np.ones(3), "b": np.ones(3)})[1]
    with pytest.raises(CotanError) as e:
        jf({"a": np.ones(3), "b": np.ones(4)})
    assert "(3,)" in str(e.value) and "(4,)" in str(e.value)


def identity(x):
    return x


def test_an_empty_dict_is_not_a_0d_array():
    # the signature key of a dict was ("d", keys): an empty dict read as a
    # float64 array of shape (), and got that signature's compiled entry
    jf = cotan.jit(identity)
    assert jf(np.array(2.0)) == 2.0
    assert jf({}) == {}
    assert jf({}) == {}
    assert jf(np.array(3.0)) == 3.0


Pair = __import__("collections").namedtuple("Pair", "a b")


def pair_sum(p):
    return p.a * 2.0 + p.b


def test_fast_path_refuses_what_it_cannot_flatten():
    # a user pytree node (namedtuple) keeps the Python path
    jf = cotan.jit(pair_sum)
    x = Pair(np.ones(2), np.arange(2.0))
    jf(x)
    got, fast = served(jf, x)
    assert not fast
    np.testing.assert_array_equal(got, np.array([2.0, 3.0]))
