"""Collectives (cotan.lax.psum, ...) as primitives: their values under pmap and
vmap(axis_name=...), and their JVP, VJP and batching rules, each checked
against an independent reference: NumPy over the whole stacked input, central
finite differences (float64) of the whole pmapped function, and a Python loop
over lanes."""

import warnings

import numpy as np
import pytest

import cotan
from cotan import lax
from cotan.runtime.table import PRIMITIVES

N = 4
X = np.array([[0.3, -1.2], [0.9, 0.5], [0.1, 0.5], [-0.4, 2.0]])
W = np.arange(8.0).reshape(4, 2) / 7.0


@pytest.fixture(autouse=True)
def four_devices(monkeypatch):
    monkeypatch.setenv("COTAN_NUM_DEVICES", str(N))
    with warnings.catch_warnings():
        # a segment that falls back to Python warns: none of these should
        warnings.simplefilter("error", RuntimeWarning)
        yield


def f_psum(x):
    return np.sum(np.sin(x) * lax.psum(x * x, "i"))


def f_pmean(x):
    return np.sum(x * lax.pmean(np.sin(x), "i"))


def f_pmax(x):
    return np.sum(np.cos(x) * lax.pmax(x * x, "i"))


def f_pmin(x):
    return np.sum(np.cos(x) * lax.pmin(x, "i"))


def f_gather(x):
    return np.sum(np.sin(lax.all_gather(x, "i")) * W * x)


def f_gather_axis1(x):
    return np.sum(np.sin(lax.all_gather(x, "i", axis=1)) * x[:, None])


def f_ring(x):
    return np.sum(np.cos(x) * lax.ppermute(x * x, "i", ((0, 1), (1, 2), (2, 3), (3, 0))))


def f_partial_perm(x):
    # shards 1 and 3 receive nothing (zeros)
    return np.sum(np.cos(x) * lax.ppermute(x * x, "i", ((0, 2), (1, 0))))


def f_index(x):
    return np.sum(x * x * lax.axis_index("i"))


FUNCTIONS = [f_psum, f_pmean, f_pmax, f_pmin, f_gather, f_gather_axis1, f_ring,
             f_partial_perm, f_index]


def reference(fname, X):
    """Each shard's output computed from the whole stacked input with NumPy."""
    out = []
    for k, x in enumerate(X):
        if fname == "f_psum":
            out.append(np.sum(np.sin(x) * np.sum(X * X, axis=0)))
        elif fname == "f_pmean":
            out.append(np.sum(x * np.mean(np.sin(X), axis=0)))
        elif fname == "f_pmax":
            out.append(np.sum(np.cos(x) * np.max(X * X, axis=0)))
        elif fname == "f_pmin":
            out.append(np.sum(np.cos(x) * np.min(X, axis=0)))
        elif fname == "f_gather":
            out.append(np.sum(np.sin(X) * W * x))
        elif fname == "f_gather_axis1":
            out.append(np.sum(np.sin(X.T) * x[:, None]))
        elif fname == "f_ring":
            out.append(np.sum(np.cos(x) * X[(k - 1) % N] ** 2))
        elif fname == "f_partial_perm":
            src = {2: 0, 0: 1}.get(k)
            recv = X[src] ** 2 if src is not None else np.zeros(2)
            out.append(np.sum(np.cos(x) * recv))
        elif fname == "f_index":
            out.append(np.sum(x * x * k))
    return np.array(out)


def whole(f, X):
    """The pmapped function as one map of the stacked input, summed: what a
    gradient taken inside every shard (cotangent 1 on each) differentiates."""
    return cotan.pmap(f, axis_name="i", jit=False)(X).sum()


def finite_differences(fun, X, h=1e-6):
    g = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        e = np.zeros_like(X)
        e[idx] = h
        g[idx] = (fun(X + e) - fun(X - e)) / (2 * h)
    return g


@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_values_match_numpy_eager_compiled_and_vmap(f):
    ref = reference(f.__name__, X)
    np.testing.assert_allclose(cotan.pmap(f, axis_name="i", jit=False)(X), ref, rtol=1e-13)
    np.testing.assert_allclose(cotan.pmap(f, axis_name="i")(X), ref, rtol=1e-13)
    np.testing.assert_allclose(cotan.vmap(f, axis_name="i")(X), ref, rtol=1e-13)


@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_grad_inside_pmap_is_the_gradient_of_the_whole_map(f):
    fd = finite_differences(lambda X: whole(f, X), X)
    g = cotan.pmap(cotan.grad(f), axis_name="i")(X)
    np.testing.assert_allclose(g, fd, atol=1e-7)
    # compiled and eager differ only by the last bits of vectorised sin/cos
    np.testing.assert_allclose(g, cotan.pmap(cotan.grad(f), axis_name="i", jit=False)(X),
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_grad_through_named_vmap(f):
    fd = finite_differences(lambda X: whole(f, X), X)
    outer = cotan.grad(lambda X: np.sum(cotan.vmap(f, axis_name="i")(X)))(X)
    inner = cotan.vmap(cotan.grad(f), axis_name="i")(X)
    np.testing.assert_allclose(outer, fd, atol=1e-7)
    np.testing.assert_allclose(inner, fd, atol=1e-7)


def vjp_with(f, x, ct):
    y, back = cotan.vjp(f, x)
    return back(ct)[0]


def f_vec(x):
    return np.sin(x) * lax.psum(x, "i") + lax.ppermute(x, "i", ((0, 3), (3, 1), (1, 0))) \
        + lax.pmax(x, "i")


def test_vjp_with_a_different_cotangent_per_shard():
    # the cotangent is sharded: shard k's output gets CT[k]
    CT = np.array([[1.0, -2.0], [0.5, 0.25], [3.0, 1.0], [-1.0, 0.0]])
    got = cotan.pmap(vjp_with, axis_name="i", in_axes=(None, 0, 0), jit=False)(f_vec, X, CT)

    def dotted(X):
        return np.sum(cotan.pmap(f_vec, axis_name="i", jit=False)(X) * CT)
    np.testing.assert_allclose(got, finite_differences(dotted, X), atol=1e-7)


def jvp_of(x, t):
    return cotan.jvp(f_vec, (x,), (t,))[1]


def test_jvp_inside_pmap_matches_finite_differences():
    T = np.array([[0.2, 1.0], [-1.0, 0.3], [0.7, 0.7], [0.1, -0.5]])
    got = cotan.pmap(jvp_of, axis_name="i", jit=False)(X, T)
    F = cotan.pmap(f_vec, axis_name="i", jit=False)
    h = 1e-6
    np.testing.assert_allclose(got, (F(X + h * T) - F(X - h * T)) / (2 * h), atol=1e-7)


def test_pmax_ties_share_the_gradient():
    def f(x):
        return lax.pmax(x, "i") * 1.0
    X = np.array([2.0, 5.0, 5.0, 1.0])
    g = cotan.pmap(cotan.grad(f), axis_name="i")(X)
    # each of the 4 outputs sends 1/2 to each of the two shards holding 5
    np.testing.assert_allclose(g, [0.0, 2.0, 2.0, 0.0])


def test_psum_gradient_is_n_times_and_pmean_of_gradients_is_the_mean_gradient():
    def local_loss(x):
        return np.sum(x ** 3)

    def replicated_loss(x):
        return lax.psum(local_loss(x), "i")

    def mean_grad(x):
        return lax.pmean(cotan.grad(local_loss)(x), "i")
    g_rep = cotan.pmap(cotan.grad(replicated_loss), axis_name="i")(X)
    np.testing.assert_allclose(g_rep, N * 3 * X ** 2, rtol=1e-14)
    g_mean = cotan.pmap(mean_grad, axis_name="i")(X)
    np.testing.assert_allclose(g_mean, np.broadcast_to(np.mean(3 * X ** 2, axis=0), X.shape),
                               rtol=1e-14)


# ---------------------------------------------------------------- named axes

def nested(x):
    return x / lax.psum(x, ("i", "j")) + lax.axis_index("j") * 10.0 \
        + lax.axis_index("i") * 100.0 + lax.pmax(x, "j")


Y = np.arange(1.0, 13.0).reshape(3, 4)
NESTED_REF = Y / Y.sum() + np.arange(4) * 10.0 + np.arange(3)[:, None] * 100.0 \
    + Y.max(axis=1, keepdims=True)


def test_nested_vmap_names():
    got = cotan.vmap(cotan.vmap(nested, axis_name="j"), axis_name="i")(Y)
    np.testing.assert_allclose(got, NESTED_REF, rtol=1e-14)


def test_pmap_around_named_vmap_compiled_and_eager():
    inner = cotan.vmap(nested, axis_name="j")
    np.testing.assert_allclose(cotan.pmap(inner, axis_name="i")(Y), NESTED_REF, rtol=1e-14)
    np.testing.assert_allclose(cotan.pmap(inner, axis_name="i", jit=False)(Y), NESTED_REF,
                               rtol=1e-14)


def test_jit_of_named_vmap():
    np.testing.assert_allclose(cotan.jit(cotan.vmap(f_psum, axis_name="i"))(X),
                               reference("f_psum", X), rtol=1e-13)


def unbatched_operand(x, c):
    # c is the same on every lane: psum gives n * c, all_gather n copies
    return x + lax.psum(c, "i") + np.sum(lax.all_gather(c, "i"))


def test_collectives_of_values_that_are_not_mapped():
    c = np.array([1.0, 2.0])
    got = cotan.vmap(unbatched_operand, axis_name="i", in_axes=(0, None))(X, c)
    np.testing.assert_allclose(got, X + N * c + N * c.sum())
    got = cotan.pmap(unbatched_operand, axis_name="i", in_axes=(0, None))(X, c)
    np.testing.assert_allclose(got, X + N * c + N * c.sum())


def other_axis(x):
    return lax.psum(x, "i")


def test_vmap_without_the_name_leaves_the_collective_to_the_outer_map():
    # inner vmap over an unnamed axis, outer pmap over "i": each lane sums over shards
    Z = np.arange(12.0).reshape(4, 3)
    got = cotan.pmap(cotan.vmap(other_axis), axis_name="i")(Z)
    np.testing.assert_allclose(got, np.broadcast_to(Z.sum(axis=0), Z.shape))


# ---------------------------------------------------------------- errors and the table

def test_unbound_axis_name_is_a_clear_error():
    with pytest.raises(lax.AxisNameError, match="axis name 'k' is not bound.*pmap"):
        lax.psum(np.ones(2), "k")
    with pytest.raises(lax.AxisNameError, match="'k'"):
        cotan.pmap(lambda_free_k, axis_name="i")(X)


def lambda_free_k(x):
    return lax.psum(x, "k")


def test_jit_alone_refuses_collectives_by_name():
    from cotan.errors import MissingRuleError
    # the declared reason (call it through pmap) is in the table; this
    # tree's llvm emitter does not show declared reasons yet
    with pytest.raises(MissingRuleError, match="psum"):
        cotan.jit(f_psum)(X[0])
    assert "pmap" in PRIMITIVES["psum"].no_rule["llvm"]


def test_every_collective_has_its_rules():
    for name in ("psum", "pmean", "pmax", "pmin", "all_gather", "ppermute", "ppermute_lanes"):
        p = PRIMITIVES[name]
        assert p.jvp_rule is not None and p.vjp_rule is not None and p.batch_rule is not None
    assert PRIMITIVES["axis_index"].batch_rule is not None
    assert not PRIMITIVES["axis_index"].differentiable


def ppermute_batched(x):
    return lax.ppermute(x, "i", ((0, 1), (1, 0)))


def test_ppermute_under_vmap_of_pmap_lanes_against_a_loop():
    # an unnamed vmap inside: the lanes of each shard are permuted with it
    Z = np.arange(12.0).reshape(2, 3, 2)
    got = cotan.pmap(cotan.vmap(ppermute_batched), axis_name="i")(Z)
    np.testing.assert_array_equal(got, Z[::-1])


def lanes_permuted(x):
    return lax.ppermute(x, "i", ((0, 2), (2, 1), (1, 0)), inverse=False) * x


def test_ppermute_lanes_rules_against_finite_differences_and_a_loop(rng):
    # what vmap's rule emits, differentiated and batched again
    Z = rng.normal(size=(3, 2))
    vm = cotan.vmap(lanes_permuted, axis_name="i")
    ref = Z[[1, 2, 0]] * Z
    np.testing.assert_allclose(vm(Z), ref, rtol=1e-14)
    fd = finite_differences(lambda Z: np.sum(vm(Z) ** 2), Z)
    np.testing.assert_allclose(cotan.grad(lambda_free_sq(vm))(Z), fd, atol=1e-7)
    B = rng.normal(size=(4, 3, 2))
    np.testing.assert_allclose(cotan.vmap(vm)(B), np.stack([vm(b) for b in B]), rtol=1e-14)
    t = rng.normal(size=Z.shape)
    _, dz = cotan.jvp(vm, (Z,), (t,))
    np.testing.assert_allclose(dz, (vm(Z + 1e-6 * t) - vm(Z - 1e-6 * t)) / 2e-6, atol=1e-7)


def lambda_free_sq(fn):
    def sq(Z):
        return np.sum(fn(Z) ** 2)
    return sq


def second_order(x):
    return np.sin(x) * lax.psum(x ** 3, "i") + lax.pmax(x * x, "i")


def test_grad_of_grad_inside_pmap():
    # the outer grad differentiates the whole map of the inner gradients too
    X = np.array([0.3, -0.7, 1.1, 0.5])
    got = cotan.pmap(cotan.grad(cotan.grad(second_order)), axis_name="i")(X)
    inner = cotan.pmap(cotan.grad(second_order), axis_name="i", jit=False)
    fd = finite_differences(lambda X: inner(X).sum(), X, h=1e-5)
    np.testing.assert_allclose(got, fd, atol=1e-7)


def abstract_agrees(x):
    from cotan.codegen.abstract import abstractify
    for name, args, kw in (("psum", ("i",), {}), ("pmean", ("i",), {}), ("pmax", ("i",), {}),
                           ("pmin", ("i",), {}), ("all_gather", ("i",), {"axis": 1}),
                           ("ppermute", ("i", ((0, 1), (1, 0))), {})):
        out = PRIMITIVES[name](x, *args, **kw)
        aval = PRIMITIVES[name].abstract_eval(abstractify(x), *args, **kw)
        assert (aval.shape, aval.dtype) == (out.shape, out.dtype), name
    k = PRIMITIVES["axis_index"]("i")
    aval = PRIMITIVES["axis_index"].abstract_eval("i")
    assert (aval.shape, aval.dtype) == (np.shape(k), np.asarray(k).dtype)
    return x


def test_abstract_eval_agrees_with_the_kernels():
    cotan.pmap(abstract_agrees, axis_name="i", jit=False)(np.ones((2, 3, 2), np.float32))
