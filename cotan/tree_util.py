"""Pytrees: nested tuples, lists, dicts, namedtuples and None.

Owns flattening and rebuilding of nested containers and the registry of
user node types.  Leaves are anything that is not a registered node.  Must
not import the transformation machinery.
"""

import collections

__all__ = [
    "tree_flatten", "tree_unflatten", "tree_leaves", "tree_map",
    "tree_structure", "register_pytree_node", "PyTreeDef",
]

_registry = {}


def register_pytree_node(nodetype, flatten_func, unflatten_func):
    """Make `nodetype` a pytree node.

    `flatten_func(node) -> (children, aux_data)`;
    `unflatten_func(aux_data, children) -> node`.
    """
    _registry[nodetype] = (flatten_func, unflatten_func)


register_pytree_node(tuple, lambda t: (list(t), None), lambda _, c: tuple(c))
register_pytree_node(list, lambda t: (list(t), None), lambda _, c: list(c))
register_pytree_node(
    dict,
    lambda d: ([d[k] for k in sorted(d)], tuple(sorted(d))),
    lambda keys, c: dict(zip(keys, c)),
)
register_pytree_node(
    collections.OrderedDict,
    lambda d: (list(d.values()), tuple(d)),
    lambda keys, c: collections.OrderedDict(zip(keys, c)),
)
register_pytree_node(type(None), lambda _: ([], None), lambda _, c: None)


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields") and type(x) is not tuple


def _node_handlers(x):
    t = type(x)
    if t in _registry:
        return _registry[t]
    if _is_namedtuple(x):
        return (lambda n: (list(n), None), lambda _, c, _t=t: _t(*c))
    return None


class PyTreeDef:
    """The structure of a pytree, without its leaves."""

    __slots__ = ("node_type", "aux", "children", "num_leaves", "_unflatten")

    def __init__(self, node_type, aux, children, unflatten=None):
        self.node_type = node_type
        self.aux = aux
        self.children = tuple(children)
        self._unflatten = unflatten
        if node_type is None:
            self.num_leaves = 1
        else:
            self.num_leaves = sum(c.num_leaves for c in self.children)

    def __eq__(self, other):
        return (isinstance(other, PyTreeDef) and self.node_type is other.node_type
                and self.aux == other.aux and self.children == other.children)

    def __hash__(self):
        return hash((self.node_type, _hashable(self.aux), self.children))

    def __repr__(self):
        if self.node_type is None:
            return "*"
        inner = ", ".join(repr(c) for c in self.children)
        if self.node_type is dict:
            inner = ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.aux, self.children))
            return "PyTreeDef({" + inner + "})"
        return f"PyTreeDef({self.node_type.__name__}[{inner}])"

    def unflatten(self, leaves):
        return tree_unflatten(self, leaves)


def _hashable(aux):
    try:
        hash(aux)
        return aux
    except TypeError:
        return repr(aux)


def _flatten(x, is_leaf, leaves):
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return PyTreeDef(None, None, ())
    handlers = _node_handlers(x)
    if handlers is None:
        leaves.append(x)
        return PyTreeDef(None, None, ())
    children, aux = handlers[0](x)
    defs = [_flatten(c, is_leaf, leaves) for c in children]
    return PyTreeDef(type(x), aux, defs, handlers[1])


def tree_flatten(tree, is_leaf=None):
    """`(leaves, treedef)`: the leaves in a fixed order and the structure."""
    leaves = []
    treedef = _flatten(tree, is_leaf, leaves)
    return leaves, treedef


def tree_unflatten(treedef, leaves):
    """Rebuild a pytree of structure `treedef` from `leaves`."""
    it = iter(leaves)
    out = _build(treedef, it)
    rest = list(it)
    if rest:
        raise ValueError(f"tree_unflatten: {len(rest)} leaves too many for {treedef}")
    return out


def _build(treedef, it):
    if treedef.node_type is None:
        try:
            return next(it)
        except StopIteration:
            raise ValueError("tree_unflatten: too few leaves") from None
    children = [_build(c, it) for c in treedef.children]
    return treedef._unflatten(treedef.aux, children)


def tree_leaves(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f, tree, *rest, is_leaf=None):
    """Apply `f` leafwise to `tree` and trees of the same structure."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = []
    for r in rest:
        rl, rd = tree_flatten(r, is_leaf)
        if rd != treedef:
            raise ValueError(f"tree_map: structures differ: {treedef} vs {rd}")
        others.append(rl)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])
