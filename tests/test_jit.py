"""Specification of `cotan.jit` on the CPU backend.

Every lowered elementwise primitive is checked against its eager NumPy
result; the table sweep makes every primitive either lowered, folded at
compile time (static helpers), or declared without a rule (with a reason) in the table.
"""

import numpy as np
import pytest

import cotan
from cotan.errors import MissingRuleError, ShapeError, TypeInferenceError
from cotan.codegen.llvm.lowerings import LOWERINGS
from cotan.codegen.llvm.values import ELEMENTWISE
from cotan.runtime.table import PRIMITIVES, table_primitives

#: primitives whose results are always known at compile time (folded)
STATIC_ONLY = {"shape", "ndim", "size", "dtype", "length", "static_dtype", "jacobian_array_check"}


def test_every_primitive_is_lowered_or_listed():
    # user-defined primitives (custom_vjp, checkpoint) are made by the tests
    # themselves; the table is what cotan defines
    missing = sorted(n for n in table_primitives() if n not in LOWERINGS
                     and n not in STATIC_ONLY and not n.startswith("static_")
                     and not PRIMITIVES[n].no_rule.get("llvm"))
    assert not missing, f"primitives with no llvm lowering and no declared reason: {missing}"


def test_lowerings_are_registered_in_the_table():
    for name in LOWERINGS:
        if name in PRIMITIVES:
            assert PRIMITIVES[name].lowerings.get("llvm") is LOWERINGS[name]


def _unary(prim):
    def f(x):
        return prim(x)
    return f


def _binary(prim):
    def f(x, y):
        return prim(x, y)
    return f


_POSITIVE = {"log", "log1p", "sqrt", "arccosh"}
_UNIT = {"arcsin", "arccos", "arctanh"}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE - {"where", "select", "round",
                                                       "positive"}))
def test_elementwise_matches_numpy(name):
    prim = PRIMITIVES[name]
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.9, 0.9, (3, 4))
    if name in _POSITIVE:
        x = np.abs(x) + 1.1
    y = rng.uniform(0.5, 2.0, (4,))
    if name in ("logical_not", "logical_and", "logical_or", "logical_xor"):
        x, y = x > 0, y > 1
    if name in ("bitwise_and", "bitwise_or", "bitwise_xor", "invert", "floor_divide",
                "remainder", "fmod"):
        x = (x * 10).astype(np.int64)
        y = (y * 3).astype(np.int64) + 1
    try:
        prim.impl(x, y)
        f, args = _binary(prim), (x, y)
    except TypeError:
        f, args = _unary(prim), (x,)
    with np.errstate(all="ignore"):
        expected = f(*args)
    got = cotan.jit(f)(*args)
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def fused(x):
    return np.sin(x) * np.exp(-x * x) + x ** 3


def test_fused_chain():
    x = np.linspace(-2, 2, 1001)
    np.testing.assert_allclose(cotan.jit(fused)(x), fused(x), rtol=1e-12)


def test_fused_chain_large_uses_threads_and_vector_math():
    x = np.linspace(-2, 2, 300_001)
    np.testing.assert_allclose(cotan.jit(fused)(x), fused(x), rtol=1e-12, atol=1e-14)


def reductions(x):
    return (x.sum(), x.sum(axis=0), x.sum(axis=1, keepdims=True), x.max(axis=0),
            x.min(), np.argmax(x, axis=1), np.argmin(x), x.prod(axis=1), np.cumsum(x, axis=1),
            np.cumprod(x, axis=0), (x > 0).any(axis=0), (x > -5).all())


def test_reductions():
    x = np.random.default_rng(1).normal(size=(5, 7))
    for got, want in zip(cotan.jit(reductions)(x), reductions(x)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def linalg(a, b, v):
    return a @ b, a @ v, v @ v, np.dot(a, b), (a[None] @ b[None])[0]


def test_matmul_shapes():
    rng = np.random.default_rng(2)
    a, b, v = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(4,))
    v3 = rng.normal(size=(4,))
    for got, want in zip(cotan.jit(linalg)(a, b, v3), linalg(a, b, v3)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def control_flow(x, n):
    s = 0.0
    for i in range(n):
        s = s + x[i % 5]
        if s > 2:
            s = s * 0.5
    k = 0
    while s < 100:
        s = s * 3 + 1
        k = k + 1
    return s, k


def test_control_flow_is_native():
    x = np.linspace(0, 1, 5)
    assert cotan.jit(control_flow)(x, 17) == pytest.approx(control_flow(x, 17))


def indexing(x):
    y = x.copy()
    y[0] = 3.0
    y[1:3] += 1
    z = x.T[::2]
    return y, z, x[-1, 1], x[:, None, 0]


def test_getitem_setitem_views():
    x = np.arange(12.0).reshape(4, 3)
    for got, want in zip(cotan.jit(indexing)(x), indexing(x)):
        np.testing.assert_allclose(got, want)


def in_place_loop(x):
    out = np.zeros(x.shape)
    for i in range(x.shape[0]):
        out[i] = x[i] * 2 + out[i - 1]
    return out


def test_setitem_in_loop():
    x = np.arange(6.0)
    np.testing.assert_allclose(cotan.jit(in_place_loop)(x), in_place_loop(x))


def shapes(x):
    return (np.concatenate([x, x], axis=1), np.stack([x, x]), x.reshape(-1), x.T,
            np.broadcast_to(x[0], (4, 3)), np.zeros((2, 2)), np.ones_like(x), np.eye(3),
            np.arange(5), x.astype(np.float32))


def test_shape_ops_and_creation():
    x = np.arange(12.0).reshape(4, 3)
    for got, want in zip(cotan.jit(shapes)(x), shapes(x)):
        assert np.asarray(got).dtype == np.asarray(want).dtype
        np.testing.assert_allclose(got, want)


def pytree(params, x):
    return {"y": params["w"] * x + params["b"], "n": x.shape[0]}


def test_pytrees_and_statics():
    p = {"w": np.ones(3), "b": 2.0}
    out = cotan.jit(pytree)(p, np.arange(3.0))
    np.testing.assert_allclose(out["y"], np.arange(3.0) + 2)
    assert out["n"] == 3


def add_one(x):
    return x + 1.0


def test_cache_and_stages(tmp_path, monkeypatch):
    monkeypatch.setenv("COTAN_DUMP", str(tmp_path))
    jf = cotan.jit(add_one)
    assert jf.__cotan_wrapped__ is add_one
    x = np.ones(8)
    jf(x)
    assert len(jf._cache) == 1
    jf(x + 1)
    assert len(jf._cache) == 1
    jf(np.ones(9))
    assert len(jf._cache) == 2
    low = jf.lower(x)
    assert "add(x, 1.0)" in low.as_text("python")
    assert "f64[8]" in low.as_text("typed")
    assert "cotan_entry" in low.as_text("llvm")
    assert low.as_text("asm")
    assert any(p.suffix == ".ll" for p in tmp_path.iterdir())


def test_decorator_forms():
    @cotan.jit
    def a(x):
        return x * 2

    @cotan.jit(static_argnums=(1,))
    def b(x, n):
        return x * n
    assert a(2.0) == 4.0
    assert b(np.ones(2), 3)[0] == 3.0


def bad_index(x):
    return x[7]


def test_out_of_bounds_constant_index():
    with pytest.raises(ShapeError):
        cotan.jit(bad_index)(np.ones(3))


def runtime_index(x, i):
    return x[i]


def test_out_of_bounds_runtime_index():
    with pytest.raises(IndexError):
        cotan.jit(runtime_index)(np.ones(3), 5)


def changes_dtype(x):
    y = np.zeros(3, dtype=np.int64)
    for i in range(3):
        y = y * x
    return y


def test_changing_type_refused():
    with pytest.raises(TypeInferenceError, match="'y'"):
        cotan.jit(changes_dtype)(np.ones(3))


def mask(x):
    return x[x > 0]


def test_value_dependent_shape_refused():
    with pytest.raises((MissingRuleError, ShapeError)):
        cotan.jit(mask)(np.ones(3))


def test_disk_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("COTAN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COTAN_DISABLE_DISK_CACHE", raising=False)
    jf = cotan.jit(fused)
    x = np.linspace(0, 1, 7)
    jf(x)
    files = list(tmp_path.rglob("*.bin"))
    assert len(files) == 1
    jf2 = cotan.jit(fused)
    np.testing.assert_allclose(jf2(x), fused(x))
    files[0].write_bytes(b"garbage")
    jf3 = cotan.jit(fused)
    np.testing.assert_allclose(jf3(x), fused(x))


def test_disk_cache_keeps_object_code(tmp_path, monkeypatch):
    import pickle
    from cotan.runtime import disk_cache
    monkeypatch.setenv("COTAN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COTAN_DISABLE_DISK_CACHE", raising=False)
    x = np.linspace(0, 1, 7)
    cotan.jit(fused)(x)
    data = next(tmp_path.rglob("*.bin")).read_bytes()
    entry = pickle.loads(data[len(disk_cache.MAGIC) + 64:])
    assert entry["objs"]            # a second process loads this, no codegen
    np.testing.assert_allclose(cotan.jit(fused)(x), fused(x))


def test_fast_call_path_matches_python_path():
    from cotan.runtime import dispatch
    jf = cotan.jit(add_one)
    x = np.arange(8.0)
    first = jf(x)                   # compiles and registers the signature
    np.testing.assert_array_equal(jf(x), first)
    np.testing.assert_array_equal(jf._call_slow(x), first)
    assert jf(2.0) == 3.0 and type(jf(2.0)) is float
    # views, other dtypes and shapes leave the fast path, not the semantics
    np.testing.assert_array_equal(jf(np.arange(16.0)[::2]), np.arange(16.0)[::2] + 1.0)
    np.testing.assert_array_equal(jf(np.arange(3, dtype=np.int32)), np.arange(3) + 1.0)
    if dispatch._FAST is not None:
        assert isinstance(jf, dispatch._FAST.Dispatcher)


def _loop_grad(x):
    s = np.sum(x)
    while s < 10.0:
        s = s * 1.5 + 0.1
    return s


def test_grad_through_runtime_loop_uses_native_stacks():
    g = cotan.grad(_loop_grad)
    x = np.array([0.1, 0.2, 0.3])
    low = cotan.jit(g).lower(x)
    assert "realloc" in low.as_text("llvm-unoptimized")
    for scale in (1.0, 0.01):       # different trip counts, one compiled function
        np.testing.assert_allclose(cotan.jit(g)(x * scale), g(x * scale), rtol=1e-12)


def _gathers(x, i):
    return (x[i] * 2.0, np.take(x, i), np.flip(x), x[np.array([2, 0, 2])],
            np.diagonal(np.outer(x, x)))


def test_gathers_and_views():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    i = np.array([3, 0, 1, -1])
    for got, want in zip(cotan.jit(_gathers)(x, i), _gathers(x, i)):
        np.testing.assert_allclose(got, want)


def _gather_loss(x, i):
    return np.sum(x[i] ** 2)


def test_grad_of_gather_scatters_and_accumulates():
    g = cotan.grad(_gather_loss)
    x = np.array([1.0, 2.0, 3.0])
    i = np.array([0, 2, 2])
    np.testing.assert_allclose(cotan.jit(g)(x, i), g(x, i))


def repeated_differences(x):
    a = x
    for i in range(3):
        a = a[1:] - a[:-1]
    return a


def test_static_loop_whose_value_changes_shape_is_unrolled():
    x = np.arange(8.0) ** 3
    np.testing.assert_array_equal(cotan.jit(repeated_differences)(x), repeated_differences(x))

    def runtime_trips(x, n):
        a = x
        for i in range(n):
            a = a[1:] - a[:-1]
        return a
    with pytest.raises(cotan.errors.TypeInferenceError, match="changes shape"):
        cotan.jit(runtime_trips)(x, np.int64(3))


@pytest.mark.xfail(raises=cotan.errors.ShapeError, strict=True,
                   reason="the reversed unrolled loop pairs each trip's adjoint with the "
                          "next trip's value (static stacks in infer_stacks)")
def test_grad_of_a_static_loop_whose_value_changes_shape():
    def loss(x):
        return np.sum(repeated_differences(x) ** 2)
    x = np.linspace(0.0, 1.0, 8) ** 3
    np.testing.assert_allclose(cotan.jit(cotan.grad(loss))(x), cotan.grad(loss)(x))


INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
              np.uint64]
#: ops whose second operand must not be zero (integer division traps)
_DIVISIONS = {"floor_divide", "remainder", "fmod", "divide"}


def _int_operands(name, dtype):
    rng = np.random.default_rng(1)
    signed = np.dtype(dtype).kind == "i"
    # 37 lanes: a vector body and a scalar remainder
    x = rng.integers(-9 if signed else 0, 10, (3, 37)).astype(dtype)
    if name == "power":
        y = rng.integers(0, 4, (37,)).astype(dtype)
    else:
        y = rng.integers(-5 if signed else 0, 6, (37,)).astype(dtype)
    if name in _DIVISIONS:
        y[y == 0] = 1
    if name in _POSITIVE or name in _UNIT:
        x = np.abs(x) % (2 if name in _UNIT else 9) + (0 if name in _UNIT else 1)
        x = x.astype(dtype)
    return x, y


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE - {"where", "select", "round", "positive"}))
def test_elementwise_integer_dtypes_match_numpy(name, dtype):
    prim = PRIMITIVES[name]
    reference = getattr(np, name, None)
    if not isinstance(reference, np.ufunc):
        reference = prim.impl
    x, y = _int_operands(name, dtype)
    binary = reference.nin == 2 if isinstance(reference, np.ufunc) else True
    if not isinstance(reference, np.ufunc):
        try:
            prim.impl(x, y)
        except TypeError:
            binary = False
    args = (x, y) if binary else (x,)
    f = _binary(prim) if binary else _unary(prim)
    try:
        with np.errstate(all="ignore"):
            expected = reference(*args)
    except TypeError:
        pytest.skip(f"NumPy defines no {name} for {np.dtype(dtype)}")
    expected = np.asarray(expected)
    if expected.dtype == np.float16:
        # compiled code has no float16: a clear refusal is the contract
        with pytest.raises(MissingRuleError):
            cotan.jit(f)(*args)
        return
    got = cotan.jit(f)(*args)
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-6 if expected.dtype == np.float32
                               else 1e-12, atol=0)


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_integer_power_by_python_int(dtype):
    x = np.arange(40).astype(dtype) % 7
    for k in (0, 1, 2, 3, 5):
        got = cotan.jit(lambda v: v ** k)(x)
        assert got.dtype == (x ** k).dtype
        np.testing.assert_array_equal(got, x ** k)


_NO_IDENTITY_REDUCTIONS = [np.max, np.min, np.argmax, np.argmin]


def _numpy_error(fn, *args, **kw):
    with pytest.raises(ValueError) as info:
        fn(*args, **kw)
    return str(info.value)


@pytest.mark.parametrize("reduction", _NO_IDENTITY_REDUCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape,axis", [((0,), None), ((2, 0), None), ((3, 0), 1),
                                        ((0, 3), 0), ((0, 0), 1)])
def test_empty_reduction_without_identity_raises_as_numpy(reduction, shape, axis):
    x = np.zeros(shape)
    message = _numpy_error(reduction, x, axis=axis)
    f = cotan.jit(lambda v: reduction(v, axis=axis))
    with pytest.raises(ValueError, match=message):
        f(x)
    with pytest.raises(ValueError, match=message):
        f(x)   # cached entry


@pytest.mark.parametrize("reduction", _NO_IDENTITY_REDUCTIONS, ids=lambda f: f.__name__)
def test_reduction_over_nonempty_axis_of_empty_array(reduction):
    x = np.zeros((0, 3))
    got = cotan.jit(lambda v: reduction(v, axis=1))(x)
    want = reduction(x, axis=1)
    assert got.shape == want.shape and got.dtype == want.dtype


def test_empty_reduction_direct_and_under_vmap():
    with pytest.raises(ValueError, match="zero-size array to reduction operation maximum"):
        cotan.jit(np.max)(np.zeros(0))
    with pytest.raises(ValueError, match="argmax of an empty sequence"):
        cotan.jit(np.argmax)(np.zeros(0))
    with pytest.raises(ValueError, match="minimum which has no identity"):
        cotan.jit(cotan.vmap(np.min))(np.zeros((4, 0)))
    # no lanes: nothing is reduced, nothing fails (as a Python loop)
    assert cotan.jit(cotan.vmap(np.max))(np.zeros((0, 3))).shape == (0,)


def test_empty_reduction_in_a_branch_not_taken():
    def f(x, c):
        if c > 0.0:
            return np.max(x)
        return 0.0
    g = cotan.jit(f)
    assert g(np.zeros(0), -1.0) == 0.0
    with pytest.raises(ValueError, match="maximum which has no identity"):
        g(np.zeros(0), 1.0)


def _loop_with_numpy_scalar_constants(x):
    s = 0.0
    for i in range(3):
        t = np.cos(1.0)            # np.float64: a float subclass
        u = np.float32(0.5)
        k = np.int64(2)
        s = s + x * t + u * x * x + k * np.sin(x)
    return s


def test_jit_grad_of_loop_assigning_numpy_scalar_constants():
    f = _loop_with_numpy_scalar_constants
    x = 0.7
    # by hand (the float32 term makes finite differences too coarse)
    want = 3 * (np.cos(1.0) + 2 * 0.5 * x + 2 * np.cos(x))
    eager = cotan.grad(f)(x)
    got = cotan.jit(cotan.grad(f))(x)
    np.testing.assert_allclose(eager, want, rtol=1e-6)
    # float32 terms: compiled and eager round differently in the last bits
    np.testing.assert_allclose(got, eager, rtol=1e-6)
    np.testing.assert_allclose(cotan.jit(f)(x), f(x), rtol=1e-6)
    xs = np.array([0.1, -0.4, 1.3])
    np.testing.assert_allclose(cotan.jit(cotan.vmap(cotan.grad(f)))(xs),
                               [cotan.grad(f)(v) for v in xs], rtol=1e-6)


def test_every_backend_lowers_to_the_same_pair():
    # one Lowered/Compiled pair: the neutral stages print the same text on
    # every backend, and an unknown stage names the backend's own stages
    import pytest as _pytest
    from cotan.codegen.lowered import Compiled, Lowered

    def f(x):
        return np.sum(np.sin(x) * 2.0)

    x = np.linspace(0.0, 1.0, 5)
    lows = {"cpu": cotan.jit(f).lower(x), "xla": cotan.jit(f, backend="xla").lower(x)}
    for name, low in lows.items():
        assert isinstance(low, Lowered) and low.backend == name
        assert low.stages[:2] == ("python", "typed")
        assert isinstance(low.compile(), Compiled)
        with _pytest.raises(ValueError, match=f"for the {name} backend"):
            low.as_text("no-such-stage")
    assert lows["cpu"].as_text("typed") == lows["xla"].as_text("typed")
    assert "llvm" in lows["cpu"].stages and "stablehlo" in lows["xla"].stages
