"""`jit` of indexing with index arrays: plain gathers and scatters laid
out as NumPy lays them out, `jit(vmap(f))` of fancy indexing (per-lane
gathers with batched and unbatched index arrays, every in_axes), per-example
gradients through index arrays (a scatter-add per lane), the adjoint of
batched indexing with repeated indices, masked lanes' clipping and clean
errors for out-of-range indices.  Every result is compared with the eager
result of the same (generated) function."""

import numpy as np
import pytest

import cotan
from cotan.errors import MissingRuleError

RNG = np.random.default_rng(0)
X1 = RNG.normal(size=(4, 6))          # a batch of 4 vectors
X2 = RNG.normal(size=(4, 3, 5))       # a batch of 4 matrices
IDX = np.array([0, 2, 2, 5])          # repeated index
IDXS = np.array([[0, 1, 1], [5, 4, 3], [2, 2, 2], [-1, 0, -6]])   # one per lane


def _same(got, want):
    g_leaves, g_tree = cotan.tree_util.tree_flatten(got)
    w_leaves, w_tree = cotan.tree_util.tree_flatten(want)
    assert g_tree == w_tree
    for a, b in zip(g_leaves, w_leaves):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def _check(f, *args):
    _same(cotan.jit(f)(*args), f(*args))


# -- plain jit: NumPy's layout of advanced indices ----------------------------------

def take_rows(x):
    return x[np.array([2, 0, 2])]


def int_between_arrays(x):
    return x[0, :, np.array([1, 3])]        # separated advanced indices: first


def adjacent_arrays(x):
    return x[:, np.array([[0, 1]]), np.array([4, 2])]


def static_mask(x):
    return x[:, np.array([True, False, True])]


@pytest.mark.parametrize("f", [take_rows, int_between_arrays, adjacent_arrays, static_mask])
def test_jit_gather_follows_numpy_layout(f):
    _check(f, X2)


def weighted_int_between_arrays(x):
    return np.sum(int_between_arrays(x) * np.arange(6.0).reshape(2, 3))


def test_jit_grad_of_int_between_arrays():
    _check(cotan.grad(weighted_int_between_arrays), X2[:2])


def scatter_rows(x, v):
    y = x.copy()
    y[np.array([0, 2, 0])] = v
    return y


def test_jit_scatter_with_index_array():
    _check(scatter_rows, X2[0], np.arange(5.0))


# -- jit(vmap): per-lane gathers ------------------------------------------------------

def gather(x, i):
    return x[i]


def gather_sum(x, i):
    return np.sum(x[i] * 2.0)


def gather_cols(x, i):
    return x[:, i]


def gather_pair(x, i, j):
    return x[i, j]


@pytest.mark.parametrize("in_axes,args", [
    ((0, None), (X1, IDX)),
    ((None, 0), (X1[0], IDXS)),
    ((0, 0), (X1, IDXS)),
    ((1, None), (X1.T, IDX)),
    ((0, 1), (X1, IDXS.T)),
], ids=["x_batched", "index_batched", "both", "x_axis1", "index_axis1"])
def test_jit_vmap_gather(in_axes, args):
    _check(cotan.vmap(gather, in_axes=in_axes), *args)
    _check(cotan.vmap(gather_sum, in_axes=in_axes), *args)


@pytest.mark.parametrize("in_axes", [(0, None), (0, 0), (None, 0)])
def test_jit_vmap_gather_columns(in_axes):
    x = X2 if in_axes[0] == 0 else X2[0]
    i = np.array([[4, 0], [1, 1], [2, 3], [0, -1]]) if in_axes[1] == 0 else np.array([4, 0])
    _check(cotan.vmap(gather_cols, in_axes=in_axes), x, i)


def test_jit_vmap_gather_with_two_index_arrays():
    i = np.array([[0, 2], [1, 1], [2, 0], [0, 0]])
    j = np.array([4, 0])
    _check(cotan.vmap(gather_pair, in_axes=(0, 0, None)), X2, i, j)
    _check(cotan.vmap(gather_pair, in_axes=(None, 0, None)), X2[0], i, j)


def masked(x):
    return np.sum(np.exp(x[np.array([True, False, True, True, False, True])]))


def test_jit_vmap_static_boolean_mask():
    _check(cotan.vmap(masked), X1)


def put(x, i, v):
    y = x.copy()
    y[i] = v
    return y


@pytest.mark.parametrize("in_axes", [(0, 0, 0), (None, 0, None), (0, None, 0)])
def test_jit_vmap_scatter_with_index_arrays(in_axes):
    x = X1 if in_axes[0] == 0 else X1[0]
    i = np.array([[0, 1], [5, 4], [2, 3], [-1, 0]]) if in_axes[1] == 0 else np.array([1, 3])
    v = np.arange(8.0).reshape(4, 2) if in_axes[2] == 0 else 7.0
    _check(cotan.vmap(put, in_axes=in_axes), x, i, v)


# -- per-example gradients through index arrays ---------------------------------------

def loss(x, i):
    return np.sum(x[i] ** 2) + x[1] * x[i[0]]


@pytest.mark.parametrize("in_axes,args", [
    ((0, None), (X1, IDX)),
    ((0, 0), (X1, IDXS)),
], ids=["shared_index", "per_example_index"])
def test_jit_per_example_gradients_with_index_arrays(in_axes, args):
    _check(cotan.vmap(cotan.grad(loss), in_axes=in_axes), *args)


def pair_loss(x):
    pair = [np.sin(x), x ** 2]
    return np.sum(pair[1] * pair[0])


def test_jit_per_example_gradient_through_a_list():
    _check(cotan.vmap(cotan.grad(pair_loss)), X1)


# -- the adjoint of batched indexing (grad of vmap): a scatter-add per lane ------------

def total_of_gathers(x, i):
    return np.sum(cotan.vmap(gather_sum, in_axes=(None, 0))(x, i))


def total_of_batched_gathers(x, i):
    return np.sum(cotan.vmap(gather_sum, in_axes=(0, 0))(x, i))


def test_jit_scatter_add_repeated_indices_summed_over_lanes():
    g = cotan.grad(total_of_gathers)
    got = cotan.jit(g)(X1[0], IDXS)
    want = np.zeros(6)
    for row in IDXS:
        np.add.at(want, row, 2.0)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    _same(got, g(X1[0], IDXS))


def test_jit_scatter_add_repeated_indices_per_lane():
    _check(cotan.grad(total_of_batched_gathers), X1, IDXS)


# -- out of range ----------------------------------------------------------------------

def test_jit_vmap_out_of_range_index_is_a_clean_error():
    bad = IDXS.copy()
    bad[2, 1] = 6
    vf = cotan.vmap(gather, in_axes=(None, 0))
    with pytest.raises(IndexError):
        vf(X1[0], bad)
    with pytest.raises(IndexError, match="out of bounds"):
        cotan.jit(vf)(X1[0], bad)


def test_jit_scatter_add_out_of_range_is_a_clean_error():
    bad = IDXS.copy()
    bad[0, 0] = -7
    with pytest.raises(IndexError, match="out of bounds"):
        cotan.jit(cotan.grad(total_of_gathers))(X1[0], bad)


def walk_pairs(x, base, start):
    i = start
    while i < 4 and np.sum(x[base + i]) > 0:
        i = i + 1
    return i


def walk(x, start):
    i = start
    while i < 5 and x[i] > 0:
        i = i + 1
    return i


def test_jit_vmap_masked_lanes_clip_like_eager():
    """A finished lane keeps indexing (masked) past the end: its indices are
    clipped, as the eager batched code clips them, instead of failing."""
    x = np.array([[1., 2, 3, 4, 5], [1, -1, 1, 1, 1], [1, 1, 1, 1, -9]])
    start = np.array([3, 0, 0])
    _check(cotan.vmap(walk, in_axes=(0, 0)), x, start)
    _check(cotan.vmap(walk_pairs, in_axes=(0, None, 0)), x, np.array([0, 1]), start)


# -- what stays refused ----------------------------------------------------------------

def runtime_mask(x):
    return np.sum(x[x > 0])


def test_jit_vmap_runtime_boolean_mask_is_refused_clearly():
    with pytest.raises(MissingRuleError, match="value-dependent"):
        cotan.jit(cotan.vmap(runtime_mask))(X1)
