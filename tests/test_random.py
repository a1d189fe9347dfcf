"""cotan.random: explicit keys, counter-based streams, and transformations.

A key is uint32 of shape (2,); a result depends only on its key and
arguments.  Checked: shapes and dtypes, reproducibility, independence of
call order, that split/fold_in give distinct streams, the distributions
(moments and ranges on large draws), that samples carry no derivative under
grad, that vmap over a batch of keys equals a Python loop, and that jit
refuses the draws by name.
"""

import numpy as np
import pytest

import cotan
import cotan.numpy as cnp
import cotan.random as cr
from cotan.errors import CotanError, MissingRuleError


def test_prngkey_is_uint32_pair():
    k = cr.PRNGKey(0)
    assert k.dtype == np.uint32 and k.shape == (2,)
    np.testing.assert_array_equal(cr.PRNGKey(42), [0, 42])
    np.testing.assert_array_equal(cr.PRNGKey(2 ** 32 + 5), [1, 5])
    np.testing.assert_array_equal(cr.key(7), cr.PRNGKey(7))


def test_split_shape_and_distinct_keys():
    ks = cr.split(cr.PRNGKey(1), 5)
    assert ks.shape == (5, 2) and ks.dtype == np.uint32
    assert len({tuple(k) for k in ks}) == 5
    assert cr.split(cr.PRNGKey(1)).shape == (2, 2)


@pytest.mark.parametrize("draw", [
    lambda k: cr.normal(k, (4, 3)),
    lambda k: cr.uniform(k, (5,), "float32", -1.0, 2.0),
    lambda k: cr.randint(k, (6,), 0, 10),
    lambda k: cr.bernoulli(k, 0.3, (7,)),
    lambda k: cr.permutation(k, 9),
    lambda k: cr.split(k, 3),
    lambda k: cr.fold_in(k, 17),
])
def test_draws_are_reproducible_and_order_independent(draw):
    k1, k2 = cr.split(cr.PRNGKey(3))
    a1 = draw(k1)
    b = draw(k2)
    a2 = draw(k1)          # after another key's draw: the same numbers
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, b)


def test_different_operations_on_one_key_are_different_streams():
    k = cr.PRNGKey(5)
    assert not np.allclose(cr.normal(k, (8,)), cr.uniform(k, (8,)))
    assert not np.array_equal(cr.split(k, 1)[0], cr.fold_in(k, 0))
    assert not np.array_equal(cr.fold_in(k, 1), cr.fold_in(k, 2))


def test_shapes_and_dtypes():
    k = cr.PRNGKey(0)
    assert cr.normal(k).shape == () and cr.normal(k).dtype == np.float64
    assert cr.normal(k, (2, 3), np.float32).dtype == np.float32
    u = cr.uniform(k, (3,), minval=np.array([0.0, 10.0, 20.0]), maxval=np.array([1.0, 11.0, 21.0]))
    assert u.shape == (3,) and np.all((u >= [0, 10, 20]) & (u < [1, 11, 21]))
    assert cr.randint(k, (4,), -3, 3, "int32").dtype == np.int32
    assert cr.bernoulli(k, np.full((2, 2), 0.5)).shape == (2, 2)
    x = np.arange(12.0).reshape(4, 3)
    p = cr.permutation(k, x)
    assert p.shape == (4, 3)
    np.testing.assert_array_equal(np.sort(p[:, 0]), x[:, 0])
    np.testing.assert_array_equal(np.sort(cr.permutation(k, 10)), np.arange(10))


def test_distributions():
    k = cr.PRNGKey(11)
    z = cr.normal(k, (200000,))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    u = cr.uniform(k, (200000,), minval=2.0, maxval=5.0)
    assert u.min() >= 2.0 and u.max() < 5.0 and abs(u.mean() - 3.5) < 0.01
    r = cr.randint(k, (100000,), 3, 7)
    assert set(np.unique(r)) == {3, 4, 5, 6}
    b = cr.bernoulli(k, 0.25, (100000,))
    assert b.dtype == np.bool_ and abs(b.mean() - 0.25) < 0.01


def test_bad_key_is_refused_by_name():
    with pytest.raises(CotanError, match="cotan.random.normal: a key is a uint32"):
        cr.normal(np.array([1, 2, 3], np.uint32), (2,))
    with pytest.raises(CotanError, match="uint32"):
        cr.uniform(np.array([1.0, 2.0]))


def noisy_loss(w, key):
    eps = cr.normal(key, (3,))
    return np.sum((w + eps) ** 2)


def test_samples_carry_no_derivative_under_grad():
    w, key = np.array([0.5, -1.0, 2.0]), cr.PRNGKey(4)
    g = cotan.grad(noisy_loss)(w, key)
    np.testing.assert_allclose(g, 2 * (w + cr.normal(key, (3,))), rtol=1e-12)


def draw_and_scale(key, s):
    return s * cr.normal(key, (4,)) + cr.uniform(key, (4,))


def test_vmap_over_keys_equals_a_python_loop():
    keys = cr.split(cr.PRNGKey(9), 5)
    got = cotan.vmap(draw_and_scale, in_axes=(0, None))(keys, 2.0)
    want = np.stack([draw_and_scale(k, 2.0) for k in keys])
    np.testing.assert_array_equal(got, want)


def split_then_draw(key):
    a, b = cr.split(key)
    return cr.normal(a, (2,)) - cr.bernoulli(b, 0.5, (2,))


def test_vmap_of_split_and_fold_in():
    keys = cr.split(cr.PRNGKey(2), 3)
    np.testing.assert_array_equal(cotan.vmap(split_then_draw)(keys),
                                  np.stack([split_then_draw(k) for k in keys]))
    folded = cotan.vmap(lambda k: cr.fold_in(k, 3))(keys)
    np.testing.assert_array_equal(folded, np.stack([cr.fold_in(k, 3) for k in keys]))


def per_example_grad(w, key):
    return cotan.grad(noisy_loss)(w, key)


def test_vmap_of_grad_with_per_lane_keys():
    w = np.array([0.1, 0.2, 0.3])
    keys = cr.split(cr.PRNGKey(6), 4)
    got = cotan.vmap(per_example_grad, in_axes=(None, 0))(w, keys)
    np.testing.assert_allclose(got, np.stack([per_example_grad(w, k) for k in keys]))


def test_permutation_of_an_array_is_differentiable():
    key = cr.PRNGKey(8)
    x = np.arange(5.0)
    c = np.arange(5.0) + 1
    g = cotan.grad(lambda x: np.sum(cr.permutation(key, x) * c))(x)
    perm = cr.permutation(key, 5)
    want = np.zeros(5)
    want[perm] = c
    np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("draw", [noisy_loss, lambda w, k: np.sum(w) + cr.uniform(k)])
def test_jit_refuses_draws_by_name(draw, monkeypatch):
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")
    with pytest.raises(MissingRuleError, match="random_"):
        cotan.jit(draw)(np.ones(3), cr.PRNGKey(0))


def test_namespace():
    for name in cr.__all__:
        assert callable(getattr(cr, name))
    assert cnp.float32 is np.float32
