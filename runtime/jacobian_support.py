"""Shape arithmetic and assembly for the generated Jacobian drivers.

Owns the `static_jacobian_*` primitives (shape-only arithmetic, folded under
every transformation like runtime/static_helpers.py's, so they need no
derivative, batching or lowering rule) and the eager, pytree-general
implementations of the three steps `cotan.jacfwd` / `cotan.jacrev` generate
calls to: the one-hot basis, and the assembly of stacked columns (forward
mode) or rows (reverse mode) into JAX's `out.shape + in.shape` blocks.  The
matching array-only compositions that transformations inline are generated
in cotan/forward_api.py.  Must not hold array kernels beyond these reshapes.
"""

import numpy as np

from ..errors import NonDifferentiableError
from .numeric_rules import any_abstract
from .table import primitive

__all__ = ["basis_tree", "check_dtypes", "columns_tree", "rows_tree"]


def _static(impl):
    def rule(*args, **params):
        if any_abstract(args, params):
            raise TypeError(f"{impl.__name__}: expects static shapes, got an array "
                            "computed at run time")
        return impl(*args, **params)
    rule.__name__ = f"static_rule({impl.__name__})"
    return primitive(impl.__name__, abstract_eval=rule, differentiable=False)(impl)


def _size(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _offsets(shapes):
    offs, off = [], 0
    for s in shapes:
        offs.append(off)
        off += _size(s)
    return offs, off


def _check_dtype(dtype, what, need=None):
    """`need`: None (any inexact dtype), "real" (a Jacobian driver without
    holomorphic=True: JAX's jacfwd inputs, jacrev outputs) or "complex"
    (holomorphic=True)."""
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.inexact):
        raise NonDifferentiableError(
            f"{what} has {dt.name} values; Jacobians are taken with respect to (and of) "
            "floating-point values only: cast it with .astype(float) or leave it out of "
            "argnums")
    if need == "real" and dt.kind == "c":
        raise NonDifferentiableError(
            f"{what} has {dt.name} values; without holomorphic=True this Jacobian is taken "
            "of real values only. Pass holomorphic=True if the function is holomorphic "
            "(the Jacobian is then its complex derivative), or split the value into "
            "np.real and np.imag parts.")
    if need == "complex" and dt.kind != "c":
        raise NonDifferentiableError(
            f"{what} has {dt.name} values, but holomorphic=True needs complex inputs and "
            "outputs: pass complex arrays (e.g. x.astype(complex)), or drop holomorphic=True.")
    return dt


@_static
def static_jacobian_size(shapes, checked=None):
    """static_jacobian_size(shapes, checked) == the total number of elements of arrays of
    these shapes (`checked`, ignored, keeps the jacobian_array_check calls alive)."""
    return _offsets(shapes)[1]


@_static
def static_jacobian_dtype(dtype, what, need=None):
    """static_jacobian_dtype(dtype, what, need) == dtype, refusing integer and bool dtypes (and complex or real ones per `need`) by name."""
    return _check_dtype(dtype, what, need).name


@_static
def static_jacobian_block(shapes, i):
    """static_jacobian_block(shapes, i) == (index, shape): the columns of eye(N) that
    belong to array i of `shapes` and the shape (N, *shapes[i]) they are reshaped to."""
    offs, n = _offsets(shapes)
    return ((slice(None), slice(offs[i], offs[i] + _size(shapes[i]))),
            (n,) + tuple(int(d) for d in shapes[i]))


@_static
def static_jacobian_rows(shapes, i, checked=None):
    """static_jacobian_rows(shapes, i, checked) == slice of the leading axis that belongs
    to array i (`checked` as for static_jacobian_size)."""
    offs, _ = _offsets(shapes)
    return slice(offs[i], offs[i] + _size(shapes[i]))


@_static
def static_jacobian_last(ndim):
    """static_jacobian_last(ndim) == the permutation moving axis 0 to the end."""
    return tuple(range(1, int(ndim))) + (0,)


@_static
def static_jacobian_shape(lead_shape, in_shape):
    """static_jacobian_shape(cols_shape, in_shape) == cols_shape[:-1] + in_shape
    (the columns of one input, moved last, reshaped to out.shape + in.shape)."""
    return tuple(int(d) for d in lead_shape[:-1]) + tuple(int(d) for d in in_shape)


@_static
def static_jacobian_row_shape(out_shape, rows_shape, checked=None):
    """static_jacobian_row_shape(out_shape, rows_shape, checked) == out_shape + rows_shape[1:]
    (`checked` as for static_jacobian_size)."""
    return tuple(int(d) for d in out_shape) + tuple(int(d) for d in rows_shape[1:])


# -- the eager, pytree-general steps ----------------------------------------------------


def _flatten(x):
    from ..tree_util import tree_flatten
    return tree_flatten(x)


def _unflatten(tree, leaves):
    from ..tree_util import tree_unflatten
    return tree_unflatten(tree, leaves)


def basis_tree(xs, what, need=None):
    """For a tuple `xs` of pytrees: a tuple of pytrees like them whose leaf of
    shape s is the block (N, *s) of the N x N identity (N: all their elements),
    in the leaf's dtype.  `what` names the values in the error for integers."""
    flat = []
    for k, x in enumerate(xs):
        leaves, tree = _flatten(x)
        flat.append((leaves, tree))
    shapes = [np.shape(leaf) for leaves, _ in flat for leaf in leaves]
    offs, n = _offsets(shapes)
    out, j = [], 0
    for k, (leaves, tree) in enumerate(flat):
        blocks = []
        for leaf in leaves:
            dt = _check_dtype(np.result_type(leaf), what[k] if isinstance(what, tuple) else what,
                              need)
            size = _size(shapes[j])
            b = np.zeros((n, size), dt)
            b[offs[j]:offs[j] + size] = np.eye(size, dtype=dt)
            blocks.append(b.reshape((n,) + shapes[j]))
            j += 1
        out.append(_unflatten(tree, blocks))
    return tuple(out)


def check_dtypes(xs, what, need=None):
    """Refuse, by name, integer or bool leaves of the arguments `xs` (and per `need`)."""
    for k, x in enumerate(xs):
        for leaf in _flatten(x)[0]:
            _check_dtype(np.result_type(leaf), what[k], need)


def columns_tree(dout, xs, single):
    """Forward mode's assembly: `dout` is the output pytree with each leaf
    stacked over the N basis vectors (N, *out.shape); the result has the
    output's structure, each leaf holding (for each argument of `xs`, a tuple
    of them unless `single`) a pytree like the argument of blocks
    out.shape + in.shape."""
    in_flat = [_flatten(x) for x in xs]
    shapes = [np.shape(leaf) for leaves, _ in in_flat for leaf in leaves]
    offs, n = _offsets(shapes)
    out_leaves, out_tree = _flatten(dout)
    result = []
    for d in out_leaves:
        d = np.asarray(d)
        oshape = d.shape[1:]
        cols = np.moveaxis(d, 0, -1)
        per_arg, j = [], 0
        for leaves, tree in in_flat:
            blocks = []
            for _ in leaves:
                size = _size(shapes[j])
                blocks.append(cols[..., offs[j]:offs[j] + size].reshape(oshape + shapes[j]))
                j += 1
            per_arg.append(_unflatten(tree, blocks))
        result.append(per_arg[0] if single else tuple(per_arg))
    return _unflatten(out_tree, result)


def rows_tree(cts, out, single):
    """Reverse mode's assembly: `cts` is a tuple (one per argument) of
    pytrees whose leaves are stacked over the M output elements (M, *in.shape);
    the result is shaped as `columns_tree`'s."""
    out_leaves, out_tree = _flatten(out)
    oshapes = [np.shape(o) for o in out_leaves]
    offs, m = _offsets(oshapes)
    ct_flat = [_flatten(c) for c in cts]
    result = []
    for k, oshape in enumerate(oshapes):
        rows = slice(offs[k], offs[k] + _size(oshape))
        per_arg = []
        for leaves, tree in ct_flat:
            blocks = [np.asarray(c)[rows].reshape(oshape + np.shape(c)[1:]) for c in leaves]
            per_arg.append(_unflatten(tree, blocks))
        result.append(per_arg[0] if single else tuple(per_arg))
    return _unflatten(out_tree, result)


# -- the refusal of pytrees inside transformed code ------------------------------------


def _is_container(x):
    return isinstance(x, (tuple, list, dict))


def _array_check_eval(x, what):
    if _is_container(x):
        from ..errors import TransformError
        raise TransformError(
            f"{what} is a {type(x).__name__} (a pytree): a Jacobian that is transformed "
            "further (jit, vmap, grad, jvp, jacfwd/jacrev of it) takes and returns arrays "
            "and scalars only. Call the Jacobian itself (not a transformation of it) for "
            "pytrees, or pass the leaves as separate arguments")
    return None


@primitive("jacobian_array_check", abstract_eval=_array_check_eval,
           differentiable=False)
def jacobian_array_check(x, what):
    """jacobian_array_check(x, what) == None, raising for a tuple, list or dict `x`.

    It reads only whether its argument is a container, which every
    transformation keeps, and its result (None) is static, so jit folds it
    (no lowering) and batching passes it on unbatched.  It is not a
    `static_*` helper because those refuse batched arguments."""
    return _array_check_eval(x, what)


def _array_check_batched(c):
    # the check reads only the value's kind, which batching keeps
    from ..autodiff.batching import Call
    c.assign(Call("jacobian_array_check", list(c.args)))
    return False


jacobian_array_check.batch_rule = _array_check_batched
