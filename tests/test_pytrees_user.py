"""User pytree nodes (namedtuples, dataclasses, registered classes) in and
out of grad, value_and_grad, jvp, vmap and jit, with their fields read as
attributes (`p.w`) inside the transformed code.

References: central finite differences (float64) for derivatives, the
plain function for values, a Python loop for vmap.
"""

import collections
import dataclasses

import numpy as np
import pytest

import cotan
from cotan import tree_util

Params = collections.namedtuple("Params", "w b")


@dataclasses.dataclass
class DParams:
    w: np.ndarray
    b: np.ndarray


class RParams:
    """A class made a node with register_pytree_node."""

    def __init__(self, w, b):
        self.w = w
        self.b = b


tree_util.register_pytree_node(RParams, lambda p: ([p.w, p.b], None),
                               lambda _, c: RParams(*c))


@tree_util.register_pytree_node_class
class CParams:
    """A class made a node with register_pytree_node_class."""

    def __init__(self, w, b):
        self.w = w
        self.b = b

    def tree_flatten(self):
        return [self.w, self.b], None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


@tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SParams:
    w: np.ndarray
    b: np.ndarray
    scale: float = dataclasses.field(default=2.0, metadata={"static": True})


NODE_TYPES = [Params, DParams, RParams, CParams, SParams]


def mlp(p, x):
    return np.sum(np.tanh(x @ p.w + p.b) ** 2)


def mlp_scaled(p, x):
    return np.sum(np.tanh(x @ p.w + p.b) ** 2) * p.scale


def _params(cls, seed=0):
    rng = np.random.default_rng(seed)
    return cls(rng.normal(size=(3, 2)) * 0.5, rng.normal(size=2) * 0.1)


X = np.random.default_rng(1).normal(size=(4, 3))


def _fd_grad(f, p, x, eps=1e-6):
    """Central finite differences of f over every leaf of the pytree p."""
    leaves, tdef = tree_util.tree_flatten(p)
    out = []
    leaves = [np.asarray(v, float) for v in leaves]
    for k, leaf in enumerate(leaves):
        g = np.zeros_like(leaf)
        for i in np.ndindex(leaf.shape):
            up = [np.array(v, copy=True) for v in leaves]
            dn = [np.array(v, copy=True) for v in leaves]
            up[k][i] += eps
            dn[k][i] -= eps
            g[i] = (f(tree_util.tree_unflatten(tdef, up), x) -
                    f(tree_util.tree_unflatten(tdef, dn), x)) / (2 * eps)
        out.append(g)
    return out


def _check_grad(g, p, f=mlp):
    assert type(g) is type(p)
    assert tree_util.tree_structure(g) == tree_util.tree_structure(p)
    for a, b in zip(tree_util.tree_leaves(g), _fd_grad(f, p, X)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.__name__)
def test_grad_returns_the_argument_type(cls):
    p = _params(cls)
    _check_grad(cotan.grad(mlp)(p, X), p)


def test_static_field_of_a_registered_dataclass_is_structure():
    p = _params(SParams)
    g = cotan.grad(mlp_scaled)(p, X)
    _check_grad(g, p, mlp_scaled)
    assert g.scale == 2.0


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.__name__)
def test_value_and_grad(cls):
    p = _params(cls)
    v, g = cotan.value_and_grad(mlp)(p, X)
    np.testing.assert_allclose(v, mlp(p, X), rtol=1e-12)
    _check_grad(g, p)


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.__name__)
def test_jit(cls):
    p = _params(cls)
    np.testing.assert_allclose(cotan.jit(mlp)(p, X), mlp(p, X), rtol=1e-12)


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.__name__)
def test_jit_of_grad(cls):
    p = _params(cls)
    _check_grad(cotan.jit(cotan.grad(mlp))(p, X), p)


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.__name__)
def test_jit_returns_a_node(cls):
    def update(p, x):
        return cls(p.w * 2.0, p.b + x.sum()) if cls is not SParams else \
            cls(p.w * 2.0, p.b + x.sum(), p.scale)
    p = _params(cls)
    q = cotan.jit(cotan.grad(lambda p, x: mlp(p, x)))(p, X)
    assert type(q) is cls
    out = cotan.jit(lambda p: p)(p)
    assert type(out) is cls
    np.testing.assert_array_equal(out.w, p.w)
    _ = update


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.__name__)
def test_jvp(cls):
    p = _params(cls)
    t = _params(cls, seed=5)
    y, dy = cotan.jvp(mlp, (p, X), (t, np.zeros_like(X)))
    eps = 1e-6
    up = tree_util.tree_map(lambda a, b: a + eps * b, p, t)
    dn = tree_util.tree_map(lambda a, b: a - eps * b, p, t)
    np.testing.assert_allclose(y, mlp(p, X), rtol=1e-12)
    np.testing.assert_allclose(dy, (mlp(up, X) - mlp(dn, X)) / (2 * eps), rtol=1e-6)


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.__name__)
def test_vmap_over_data_with_node_params(cls):
    p = _params(cls)
    xs = np.random.default_rng(3).normal(size=(5, 4, 3))
    out = cotan.vmap(mlp, in_axes=(None, 0))(p, xs)
    np.testing.assert_allclose(out, [mlp(p, x) for x in xs], rtol=1e-12)


def test_vmap_over_a_batched_namedtuple():
    ps = Params(np.random.default_rng(4).normal(size=(5, 3, 2)),
                np.random.default_rng(5).normal(size=(5, 2)))
    out = cotan.vmap(mlp, in_axes=(0, None))(ps, X)
    np.testing.assert_allclose(out, [mlp(Params(ps.w[i], ps.b[i]), X) for i in range(5)],
                               rtol=1e-12)


def test_vmap_in_axes_given_as_a_namedtuple():
    ps = Params(np.random.default_rng(4).normal(size=(5, 3, 2)), np.zeros(2) + 0.3)
    out = cotan.vmap(mlp, in_axes=(Params(0, None), None))(ps, X)
    np.testing.assert_allclose(out, [mlp(Params(ps.w[i], ps.b), X) for i in range(5)],
                               rtol=1e-12)


def test_vmap_of_grad_per_example():
    p = _params(Params)
    xs = np.random.default_rng(3).normal(size=(5, 4, 3))
    gs = cotan.vmap(cotan.grad(mlp), in_axes=(None, 0))(p, xs)
    for i in range(5):
        ref = cotan.grad(mlp)(p, xs[i])
        np.testing.assert_allclose(gs.w[i], ref.w, rtol=1e-10)
        np.testing.assert_allclose(gs.b[i], ref.b, rtol=1e-10)


def deep_mlp(params, x):
    h = x
    for layer in params["layers"]:
        h = np.tanh(h @ layer.w + layer.b)
    return np.sum(h ** 2) + params["reg"] * np.sum(params["layers"][0].w ** 2)


def deep_mlp_unrolled(params, x):
    first, second = params["layers"]
    h = np.tanh(x @ first.w + first.b)
    h = np.tanh(h @ second.w + second.b)
    return np.sum(h ** 2) + params["reg"] * np.sum(params["layers"][0].w ** 2)


@pytest.mark.parametrize("cls", [Params, DParams, RParams], ids=lambda c: c.__name__)
def test_nodes_nested_in_dicts_and_lists(cls):
    rng = np.random.default_rng(7)
    params = {"layers": [cls(rng.normal(size=(3, 4)), rng.normal(size=4)),
                         cls(rng.normal(size=(4, 2)), rng.normal(size=2))],
              "reg": 0.1}
    g = cotan.grad(deep_mlp)(params, X)
    assert type(g) is dict and type(g["layers"]) is list
    assert all(type(layer) is cls for layer in g["layers"])
    ref = _fd_grad(deep_mlp, params, X)
    for a, b in zip(tree_util.tree_leaves(g), ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    # jit: the layers unrolled (a run-time loop over layers of different
    # shapes is refused under jit for any container, not only for nodes)
    gj = cotan.jit(cotan.grad(deep_mlp_unrolled))(params, X)
    assert all(type(layer) is cls for layer in gj["layers"])
    for a, b in zip(tree_util.tree_leaves(gj), ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cotan.jit(deep_mlp)(params, X), deep_mlp(params, X),
                               rtol=1e-12)


def test_namedtuple_indexed_and_unpacked():
    def f(p, x):
        w, b = p
        return np.sum((x @ w + p[1]) ** 2) + np.sum(b)
    p = _params(Params)
    g = cotan.grad(f)(p, X)
    _check_grad(g, p, f)
    np.testing.assert_allclose(cotan.jit(f)(p, X), f(p, X), rtol=1e-12)


def test_tree_util_knows_dataclasses_and_registered_classes():
    p = _params(DParams)
    leaves, tdef = tree_util.tree_flatten({"a": p, "b": [RParams(1.0, 2.0)]})
    assert len(leaves) == 4
    back = tree_util.tree_unflatten(tdef, leaves)
    assert type(back["a"]) is DParams and type(back["b"][0]) is RParams
    s = tree_util.tree_flatten(SParams(np.ones(1), np.ones(2), 3.0))
    assert len(s[0]) == 2
    assert tree_util.tree_unflatten(s[1], s[0]).scale == 3.0


def test_unknown_field_is_a_clear_error():
    def f(p, x):
        return np.sum(p.v * x)
    with pytest.raises(Exception, match="'v'"):
        cotan.grad(f)(_params(Params), X)


def test_other_array_attributes_are_refused_by_name():
    def f(x):
        return x.nbytes * np.sum(x)
    for transform in (cotan.grad, cotan.jit):
        with pytest.raises(Exception, match="attribute 'nbytes' of an array is not supported"):
            transform(f)(np.ones(3))
