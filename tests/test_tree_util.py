"""Pytrees: flatten/unflatten round trips, maps and registration."""

import collections

import numpy as np
import pytest

from cotan import tree_util as tu

Point = collections.namedtuple("Point", "x y")


def test_round_trip_nested_containers():
    tree = {"b": (1, [2, 3]), "a": None, "c": Point(np.ones(2), 4.0)}
    leaves, treedef = tu.tree_flatten(tree)
    assert len(leaves) == 5 and treedef.num_leaves == 5
    back = tu.tree_unflatten(treedef, leaves)
    assert back["b"] == (1, [2, 3]) and back["a"] is None
    assert isinstance(back["c"], Point) and back["c"].y == 4.0


def test_dict_leaves_are_in_sorted_key_order():
    assert tu.tree_leaves({"z": 1, "a": 2, "m": 3}) == [2, 3, 1]


def test_tree_map_over_several_trees():
    a = {"w": np.ones(3), "b": 2.0}
    b = {"w": np.arange(3.0), "b": 1.0}
    out = tu.tree_map(lambda u, v: u + v, a, b)
    np.testing.assert_allclose(out["w"], [1.0, 2.0, 3.0])
    assert out["b"] == 3.0


def test_tree_map_structure_mismatch_raises():
    with pytest.raises(ValueError, match="structures differ"):
        tu.tree_map(lambda u, v: u, (1, 2), [1, 2])


def test_structures_compare_and_hash():
    s1 = tu.tree_structure({"a": 1, "b": (2, 3)})
    s2 = tu.tree_structure({"a": 5, "b": (6, 7)})
    assert s1 == s2 and hash(s1) == hash(s2)
    assert s1 != tu.tree_structure({"a": 1, "b": [2, 3]})


def test_register_pytree_node():
    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b
    tu.register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda _, c: Pair(*c))
    out = tu.tree_map(lambda v: v * 2, Pair(1, (2, 3)))
    assert isinstance(out, Pair) and out.a == 2 and out.b == (4, 6)


def test_is_leaf_stops_descent():
    leaves = tu.tree_leaves({"a": (1, 2), "b": 3}, is_leaf=lambda n: isinstance(n, tuple))
    assert leaves == [(1, 2), 3]


def test_unflatten_wrong_leaf_count_raises():
    _, treedef = tu.tree_flatten((1, 2))
    with pytest.raises(ValueError):
        tu.tree_unflatten(treedef, [1])
    with pytest.raises(ValueError):
        tu.tree_unflatten(treedef, [1, 2, 3])
