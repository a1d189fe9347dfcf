"""Pytrees: nested tuples, lists, dicts, namedtuples, dataclasses, None and
registered node types.

Owns flattening and rebuilding of nested containers, the registry of user
node types, the per-node helpers the runtime uses to take a node apart and
put it back together (`node_children`, `rebuild_like`, `field_index`), and
the tuple-shaped stand-ins (`node_aval`) that carry a user node's structure
through compiled code.  Leaves are anything that is not a node.  Must not
import the transformation machinery.
"""

import collections
import dataclasses

__all__ = [
    "tree_flatten", "tree_unflatten", "tree_leaves", "tree_map",
    "tree_structure", "register_pytree_node", "register_pytree_node_class",
    "register_dataclass", "PyTreeDef",
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


def register_pytree_node_class(cls):
    """Class decorator: `cls` is a node through its `tree_flatten()` method
    and its `tree_unflatten(aux_data, children)` classmethod."""
    register_pytree_node(cls, lambda n: n.tree_flatten(), cls.tree_unflatten)
    return cls


def register_dataclass(nodetype, data_fields=None, meta_fields=None, drop_fields=()):
    """Make the dataclass `nodetype` a node: `data_fields` are its children
    (the arrays transformations see), `meta_fields` are static (part of the
    structure, compared for equality).  Without lists, fields marked
    `dataclasses.field(metadata={"static": True})` are the meta fields and
    the others the data fields.  Usable as a decorator."""
    if not dataclasses.is_dataclass(nodetype):
        raise TypeError(f"register_dataclass: {nodetype!r} is not a dataclass")
    fields = [f for f in dataclasses.fields(nodetype) if f.name not in drop_fields]
    if data_fields is None and meta_fields is None:
        meta_fields = [f.name for f in fields if f.metadata.get("static", False)]
    if meta_fields is None:
        meta_fields = [f.name for f in fields if f.name not in data_fields]
    if data_fields is None:
        data_fields = [f.name for f in fields if f.name not in meta_fields]
    data_fields, meta_fields = tuple(data_fields), tuple(meta_fields)
    init = [f.name for f in fields if f.init]
    missing = set(init) - set(data_fields) - set(meta_fields)
    if missing:
        raise ValueError(f"register_dataclass: fields {sorted(missing)} of "
                         f"{nodetype.__name__} are neither data nor meta fields")
    _registry[nodetype] = _dataclass_handlers(nodetype, data_fields, meta_fields)
    _fields_of[nodetype] = data_fields
    _meta_of[nodetype] = meta_fields
    return nodetype


def _dataclass_handlers(cls, data_fields, meta_fields):
    def flatten(x):
        return ([getattr(x, n) for n in data_fields],
                tuple(getattr(x, n) for n in meta_fields))

    def unflatten(meta, children):
        # object.__new__ + setattr: frozen dataclasses and ones whose
        # __init__/__post_init__ compute or check fields rebuild the same
        obj = object.__new__(cls)
        for n, v in zip(data_fields, children):
            object.__setattr__(obj, n, v)
        for n, v in zip(meta_fields, meta):
            object.__setattr__(obj, n, v)
        return obj
    return flatten, unflatten


#: node type -> the attribute names of its children, in order (namedtuples
#: and dataclasses; registered classes are matched by identity, field_index)
_fields_of = {}
_meta_of = {}     # dataclass node type -> its meta (static) field names


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields") and type(x) is not tuple \
        and not hasattr(type(x), "_cotan_node")


def _node_handlers(x):
    t = type(x)
    if t in _registry:
        return _registry[t]
    if hasattr(t, "_cotan_node"):
        return (lambda n: (list(n), None), lambda _, c, _t=t: _t(c))
    if _is_namedtuple(x):
        return (lambda n: (list(n), None), lambda _, c, _t=t: _t(*c))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        # an unregistered dataclass: every field is a child (JAX would need
        # register_dataclass; cotan accepts the common case as it is)
        register_dataclass(t, [f.name for f in dataclasses.fields(t)], [])
        return _registry[t]
    return None


def is_node(x):
    """Whether `x` is a pytree node (not a leaf)."""
    return _node_handlers(x) is not None


def is_user_node(x):
    """A node other than tuple, list, dict and None: a namedtuple, a
    dataclass, a registered class (or its compiled stand-in)."""
    return type(x) not in (tuple, list, dict, type(None)) and is_node(x)


def node_children(x):
    """`(children, aux)` of the node `x`, one level deep."""
    children, aux = _node_handlers(x)[0](x)
    return list(children), aux


def rebuild_like(x, children):
    """A node of `x`'s type and static data with `children` (one level)."""
    handlers = _node_handlers(x)
    _, aux = handlers[0](x)
    return handlers[1](aux, list(children))


def field_index(x, name):
    """The position, among `x`'s children, of the child `x.name` is; a
    ValueError when the attribute is not one of the children."""
    t = type(x)
    if hasattr(t, "_cotan_node"):
        names = t._cotan_node[2]
    else:
        if _is_namedtuple(x):
            names = t._fields
        else:
            _node_handlers(x)   # registers an unregistered dataclass
            names = _fields_of.get(t)
    if names is not None:
        if name in names:
            return names.index(name)
        raise ValueError(f"{name!r} is not a data field of {t.__name__}")
    # a class registered with flatten/unflatten functions: the child that is
    # the attribute's value
    value = getattr(x, name)
    hits = [i for i, c in enumerate(node_children(x)[0]) if c is value]
    if len(hits) != 1:
        raise ValueError(f"attribute {name!r} of {t.__name__} is not one of the children "
                         "its flatten function returns")
    return hits[0]


def field_names(x):
    """The attribute names of `x`'s children, where each child is one
    (None where some child has no attribute)."""
    try:
        return tuple(_attr_name(x, i) for i in range(len(node_children(x)[0])))
    except ValueError:
        return None


def _attr_name(x, i):
    t = type(x)
    if _is_namedtuple(x):
        return t._fields[i]
    if t in _fields_of:
        return _fields_of[t][i]
    child = node_children(x)[0][i]
    names = [n for n, v in getattr(x, "__dict__", {}).items() if v is child]
    if len(names) != 1:
        raise ValueError(i)
    return names[0]


_node_aval_classes = {}


def node_aval(x, children):
    """A tuple standing for the user node `x` with `children`: its class
    (one per node type and static data) remembers how to rebuild `x` and
    answers `.name` for x's fields, so compiled code, which sees tuples,
    reads `p.w` as `p[field_index]` and returns a node of x's type."""
    _, aux = node_children(x)
    return _node_aval_class(type(x), aux, field_names(x) or ())(children)


def _node_aval_class(t, aux, names):
    key = (t, _hashable(aux), names)
    cls = _node_aval_classes.get(key)
    if cls is not None:
        return cls
    index = {n: i for i, n in enumerate(names)}
    meta = dict(zip(_meta_of[t], aux or ())) if t in _meta_of else {}

    def __getattr__(self, name):
        if name in index:
            return self[index[name]]
        if name in meta:        # static data: a constant in compiled code
            return meta[name]
        raise AttributeError(name)
    # the repr names the type fully: jit's disk cache keys on it
    label = f"{t.__module__}.{t.__qualname__}{list(names)}{aux!r}"
    cls = type(f"{t.__name__}Aval", (tuple,), {
        "__slots__": (), "_cotan_node": (t, aux, names), "__getattr__": __getattr__,
        "__repr__": lambda self: f"{label}{tuple.__repr__(self)}",
        "__reduce__": lambda self: (_node_aval_again, (t, aux, names, tuple(self)))})
    _node_aval_classes[key] = cls
    return cls


def _node_aval_again(t, aux, names, children):
    """Unpickling a node_aval (jit's disk cache stores output types)."""
    return _node_aval_class(t, aux, names)(children)


def from_node_aval(a, children):
    """The user node `a` (a node_aval) stands for, with `children`."""
    t, aux, _ = type(a)._cotan_node
    return _registry[t][1](aux, list(children)) if t in _registry else t(*children)


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
