"""Primitives the reverse-mode transformation emits.

Owns the run-time side of generated gradients: the per-variable stacks of
the primal sweep (`new_stack`, `push`, `pop_restore`), loop trip counts
(`trip_count`), the run-time checks `grad` needs (`check_grad_input`,
`grad_seed`), the allocator setting gradients need (`keep_freed_memory`), zero adjoints of arbitrary pytrees (`zero_adjoint`), container adjoints built from the adjoints of
their parts (`assemble_adjoint`) and the
adjoint kernels of gathers (`getitem_adjoint`, `take_adjoint`,
`take_along_axis_adjoint`, `diagonal_adjoint`, `split_like`,
`unstack_like`, `einsum_expand`, `matmul_grad_a/b`, `dot_grad_a/b`).  The
kernels are differentiable and get VJP rules in autodiff/vjp_rules.py, so
second-order gradients go through them.  Must not import the stages.
"""

import numpy as np

from ..codegen.abstract import ShapedArray, shape_of, dtype_of, result_dtype
from ..errors import NonDifferentiableError
from .adjoint_helpers import _add_any, real_for
from .numeric_rules import any_abstract, by_running, tree_map
from .table import primitive
from ..tree_util import rebuild_like


# -- stacks of overwritten values ----------------------------------------------

class Stack(list):
    """A stack of the primal sweep: a list, plus the adjoint stack a second
    reverse pass keeps beside it (`adjoint`, created on first use).  The
    adjoint stack mirrors the stack's length as the second adjoint sweep
    walks back: one cotangent (None = zero) per value on the stack."""

    __slots__ = ("adjoint",)

    def __init__(self, *args):
        super().__init__(*args)
        self.adjoint = None


@primitive("new_stack", abstract_eval=lambda: [], differentiable=False, effectful=True)
def new_stack():
    """new_stack() == []: a stack the primal sweep pushes overwritten values to."""
    return Stack()


@primitive("push", abstract_eval=lambda st, v: None, differentiable=False, effectful=True)
def push(stack, value):
    """push(stack, value): stack.append(value); returns None."""
    stack.append(value)


def _pop_restore(stack, current):
    """pop_restore(stack, current): drop the top of `stack` (the value the
    adjoint sweep just went back past) and return the value below it, the
    variable's previous version; `current` if there is none."""
    stack.pop()
    return stack[-1] if stack else current


# Differentiable; reverse mode handles it itself (with `stack_unpop`, see
# autodiff/reverse.py), so it has no template rule.
pop_restore = primitive(
    "pop_restore", abstract_eval=lambda st, cur: cur, effectful=True,
    no_rule={"vjp": "reverse mode differentiates stack operations itself "
                    "(stack_unpop / stack_unpush), not through a rule"})(_pop_restore)


@primitive("pop", abstract_eval=lambda st: st[-1] if isinstance(st, list) and st else None,
           differentiable=False, effectful=True)
def pop(stack):
    """pop(stack) == stack.pop()."""
    return stack.pop()


_STACK_NOT_BATCHED = ("second-order reverse mode through loops runs on one example; "
                      "vmap the outer gradient's caller instead (vmap(grad(grad(f))) "
                      "is not supported through loops that overwrite values)")


@primitive("copy_stack", abstract_eval=lambda st: st, differentiable=False,
           no_rule={"batching": _STACK_NOT_BATCHED})
def copy_stack(stack):
    """copy_stack(stack): a copy of a primal-sweep stack, for an adjoint
    sweep that may run more than once on the same residuals (vjp)."""
    return Stack(stack)


def _adjoint_stack(stack):
    adj = stack.adjoint
    if adj is None:
        # first use: the primal stack is in its final state, and every
        # value still on it has a zero cotangent so far
        adj = stack.adjoint = [None] * len(stack)
    return adj


@primitive("stack_unpop", abstract_eval=lambda st, g: None, differentiable=False,
           effectful=True, no_rule={"batching": _STACK_NOT_BATCHED})
def stack_unpop(stack, g):
    """stack_unpop(stack, g): the adjoint of `y = pop_restore(stack, y)` for
    cotangent `g` of the restored value (None = zero): `g` goes to the value
    the restore read (the new top), and the dropped value's slot comes back
    with a zero cotangent.  (When the stack was empty the restore returned
    `current`, the version before the variable's first assignment, which
    no adjoint statement reads: its cotangent is zero.)"""
    adj = _adjoint_stack(stack)
    if adj and g is not None:
        adj[-1] = g if adj[-1] is None else _add_any(adj[-1], g)
    adj.append(None)


def _stack_unpush(stack, value):
    """stack_unpush(stack, value): the adjoint of `push(stack, value)`: the
    cotangent accumulated for the pushed value (zeros shaped like `value`
    when nothing read it), taken off the adjoint stack."""
    adj = _adjoint_stack(stack)
    g = adj.pop() if adj else None
    if not adj:
        stack.adjoint = None    # back before the first push: ready for another sweep
    return zero_adjoint(value) if g is None else g


# Differentiable without a rule: a third reverse pass through a loop
# must fail loudly, not give zeros.
stack_unpush = primitive(
    "stack_unpush", abstract_eval=lambda st, v: v, effectful=True,
    no_rule={"vjp": "third-order reverse mode through loops that overwrite values "
                    "is not supported; use jacfwd (forward mode) for the outer "
                    "derivative",
             "jvp": "forward over second-order reverse through loops is not supported; "
                    "take jacfwd before the two grads (grad(grad(jvp)))",
             "batching": _STACK_NOT_BATCHED})(_stack_unpush)


@primitive("trip_count", differentiable=False,
           abstract_eval=lambda a, b, c: ShapedArray((), np.int64, weak_type=True)
           if any_abstract((a, b, c)) else len(range(a, b, c)))
def trip_count(start, stop, step):
    """trip_count(start, stop, step) == len(range(start, stop, step))."""
    return len(range(int(start), int(stop), int(step)))


# -- checks ------------------------------------------------------------------------

def _is_float_leaf(v):
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (float, complex)):
        return True
    if isinstance(v, int):
        return False
    return np.issubdtype(np.result_type(v), np.inexact)


@primitive("check_grad_input", abstract_eval=lambda x, what="", holomorphic=False: None,
           differentiable=False, effectful=True)
def check_grad_input(x, what="", holomorphic=False):
    """check_grad_input(x, what, holomorphic): refuse integer or boolean leaves of a
    differentiated argument (their gradient would silently be zero), and,
    for grad(holomorphic=True), real ones."""
    leaves = []
    tree_map(leaves.append, x)
    for leaf in leaves:
        if leaf is None:
            continue
        if not _is_float_leaf(leaf):
            raise NonDifferentiableError(
                f"{what} has dtype {np.result_type(leaf)}, but only floating-point "
                "(or complex) inputs can be differentiated. Convert it first "
                "(e.g. x.astype(float)), or leave it out of argnums.")
        if holomorphic and not _is_complex_leaf(leaf):
            raise NonDifferentiableError(
                f"{what} has dtype {np.result_type(leaf)}, but grad(holomorphic=True) "
                "differentiates with respect to complex inputs only. Pass it as a complex "
                "array (e.g. x.astype(complex)), or drop holomorphic=True for a real input.")


def _is_complex_leaf(v):
    if isinstance(v, ShapedArray):
        return np.dtype(v.dtype).kind == "c"
    return isinstance(v, complex) or np.result_type(v).kind == "c"


# -- the allocator -------------------------------------------------------------------

_ALLOCATOR_TUNED = False


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory for reuse (once per process).

    Why: a generated gradient keeps every primal intermediate alive until it
    returns (the adjoint sweep reads them), so it frees many arrays of the
    largest intermediate's size at once.  glibc hands the heap top back to
    the kernel whenever more than M_TRIM_THRESHOLD (by default twice the
    largest freed block, a few MB) is free, so every call page-faults its
    whole working set again: on the GMM benchmark 3,800 faults, 10 of a
    15 ms gradient.  With the thresholds raised, arrays up to 32 MB come
    from the heap and up to 256 MB of freed heap is kept for the next call.
    The setting is process-wide; COTAN_KEEP_FREED_MEMORY=0 leaves malloc
    alone.  Nothing happens off glibc."""
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    import os
    import platform
    if os.environ.get("COTAN_KEEP_FREED_MEMORY", "1") == "0" or \
            platform.libc_ver()[0] != "glibc":
        return
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3   # <malloc.h>
    mallopt(m_mmap_threshold, 32 << 20)            # glibc's largest allowed value
    mallopt(m_trim_threshold, 256 << 20)


_COMPLEX_OUTPUT = (
    "{what} returned {kind}; grad of a complex output is defined only for a holomorphic "
    "function. Pass holomorphic=True to grad if {what} is holomorphic (the gradient is "
    "then the complex derivative f'(z)), or differentiate a real-valued function of "
    "its output (e.g. np.real(...), np.abs(...) ** 2); use cotan.vjp or cotan.jacfwd "
    "for the full derivative.")
_REAL_OUTPUT = ("{what} returned {kind}, but grad(holomorphic=True) needs a complex "
                "output (a holomorphic function's value is complex). Drop "
                "holomorphic=True for a real-valued function.")


def _check_complex_output(out, what, holomorphic):
    dt = np.dtype(out.dtype) if isinstance(out, ShapedArray) else np.result_type(out)
    if dt.kind == "c" and not holomorphic:
        raise NonDifferentiableError(_COMPLEX_OUTPUT.format(what=what, kind=_type_of(out)))
    if dt.kind != "c" and holomorphic:
        raise NonDifferentiableError(_REAL_OUTPUT.format(what=what, kind=_type_of(out)))


def _grad_seed(out, what="", holomorphic=False):
    """grad_seed(out, what, holomorphic) == numpy.ones_like(out), after checking that
    `out` is a real floating-point scalar (what `grad` differentiates), or a
    complex one under holomorphic=True."""
    keep_freed_memory()
    if out is None:
        raise NonDifferentiableError(
            f"{what} returned None; grad needs a floating-point scalar output. "
            "Return the value to differentiate (e.g. a loss).")
    if isinstance(out, (tuple, list, dict)) or np.ndim(out) != 0:
        raise NonDifferentiableError(
            f"{what} must return a scalar to be differentiated with grad, but it "
            f"returned {_describe(out)}. Use cotan.vjp or cotan.jacrev for "
            "non-scalar outputs, or reduce the output (e.g. with .sum()).")
    if not _is_float_leaf(out):
        raise NonDifferentiableError(
            f"{what} returned {_type_of(out)}; grad needs a floating-point output "
            "(an integer or bool output has no derivative). Convert it with "
            "float(...) or .astype(float) if a derivative is meant.")
    _check_complex_output(out, what, holomorphic)
    if isinstance(out, float):
        return 1.0
    if isinstance(out, complex):
        return 1.0 + 0.0j
    return np.ones_like(out)


def _type_of(out):
    if isinstance(out, ShapedArray):
        return f"a value of dtype {out.dtype}"
    if isinstance(out, (bool, int)):
        return f"a Python {type(out).__name__}"
    return f"a value of dtype {np.result_type(out)} ({type(out).__name__})"


def _abstract_grad_seed(out, what="", holomorphic=False):
    """Under jit: the same refusals as the eager check, at compile time
    (dtypes and shapes are known); a float scalar seed is always abstract,
    so the (effectful) call is lowered rather than folded away."""
    if isinstance(out, ShapedArray):
        if out.shape != ():
            raise NonDifferentiableError(
                f"{what} must return a scalar to be differentiated with grad, but it "
                f"returned an array of shape {out.shape}. Use cotan.vjp or cotan.jacrev "
                "for non-scalar outputs, or reduce the output (e.g. with .sum()).")
        if not np.issubdtype(out.dtype, np.inexact):
            raise NonDifferentiableError(
                f"{what} returned {_type_of(out)}; grad needs a floating-point output "
                "(an integer or bool output has no derivative). Convert it with "
                "float(...) or .astype(float) if a derivative is meant.")
        _check_complex_output(out, what, holomorphic)
        return out
    seed = _grad_seed(out, what, holomorphic)
    return ShapedArray((), np.result_type(seed), weak_type=isinstance(seed, float))


def _describe(out):
    if isinstance(out, (tuple, list, dict)):
        return f"a {type(out).__name__}"
    return f"an array of shape {np.shape(out)}"


# effectful: when the output carries no derivative the seed is unused, and
# the check must still run (an int, bool or None output is refused, not
# given a zero gradient)
grad_seed = primitive("grad_seed", differentiable=False, effectful=True,
                      abstract_eval=_abstract_grad_seed)(_grad_seed)


def _zero_leaf(v):
    if isinstance(v, float):
        return 0.0
    v = np.asarray(v)
    dt = v.dtype if np.issubdtype(v.dtype, np.inexact) else np.float64
    return np.zeros(v.shape, dt)


def _zero_leaf_abstract(v):
    if not isinstance(v, ShapedArray):
        return _zero_leaf(v)
    dt = dtype_of(v)
    return ShapedArray(shape_of(v), dt if np.issubdtype(dt, np.inexact) else np.float64)


@primitive("zero_adjoint", differentiable=False,
           abstract_eval=lambda x: tree_map(_zero_leaf_abstract, x))
def zero_adjoint(x):
    """zero_adjoint(x): zeros with the structure and shapes of the pytree `x`."""
    return tree_map(_zero_leaf, x)


@primitive("check_svd_vjp", abstract_eval=lambda a, full_matrices=True: None,
           differentiable=False, effectful=True)
def check_svd_vjp(a, full_matrices=True):
    """check_svd_vjp(a, full_matrices): refuse the gradient of a full
    (full_matrices=True) SVD of a non-square matrix: the extra columns of U
    (or rows of Vh) are not unique, so their cotangent has no meaning."""
    m, n = np.shape(a)[-2:]
    if full_matrices and m != n:
        raise NonDifferentiableError(
            f"the gradient of svd(a) for a {m}x{n} matrix needs full_matrices=False "
            "(with full_matrices=True the extra singular vectors are not unique)")


# -- adjoints of gathers ---------------------------------------------------------------

def _index(components):
    return components[0] if len(components) == 1 else tuple(components)


def _getitem_adjoint(g, x, *index):
    """getitem_adjoint(g, x, *index): the adjoint of `x[index]`: zeros shaped
    like `x` with `g` added at `index` (repeated indices accumulate); for a
    tuple, list or dict `x`, a container of zero adjoints with `g` at `index`."""
    if isinstance(x, (tuple, list)):
        out = [zero_adjoint(v) for v in x]
        idx = _index(index)
        if isinstance(idx, slice):
            for i, gi in zip(range(*idx.indices(len(x))), g):
                out[i] = gi
        else:
            out[idx] = g
        return rebuild_like(x, out)   # a namedtuple keeps its type
    if isinstance(x, dict):
        out = {k: zero_adjoint(v) for k, v in x.items()}
        out[_index(index)] = g
        return out
    out = _zero_leaf(x)
    if isinstance(out, float):
        return g
    g = np.asarray(g)
    if g.dtype != out.dtype and np.issubdtype(g.dtype, np.inexact):
        out = out.astype(np.result_type(out, g))
    idx = _index(index)
    parts = idx if isinstance(idx, tuple) else (idx,)
    if all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts):
        out[idx] += g   # basic indexing: no repeated elements, no need for add.at
    else:
        np.add.at(out, idx, g)
    return out


getitem_adjoint = primitive("getitem_adjoint",
                            abstract_eval=by_running(_getitem_adjoint))(_getitem_adjoint)


def _assemble_adjoint(x, paths, *adjoints):
    """assemble_adjoint(x, paths, *adjoints): the adjoint of `x` from the
    adjoints of its parts `x[path]` (one per path; None stands for zero).
    For a dict, list or tuple `x` the parts are placed into a container of
    `x`'s structure, with zero adjoints only for the parts nobody read (no
    zero-and-add per part); otherwise the getitem adjoints are summed."""
    if isinstance(x, (dict, list, tuple)) and all(len(p) == 1 for p in paths):
        keyed = isinstance(x, dict)
        given = {}
        for (k,), g in zip(paths, adjoints):
            if g is None:
                continue
            if not keyed:
                if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
                    break
                k = int(k) % len(x)
            given[k] = g if k not in given else _add_any(given[k], g)
        else:
            if keyed:
                return {k: given[k] if k in given else zero_adjoint(v) for k, v in x.items()}
            return rebuild_like(x, [given[i] if i in given else zero_adjoint(v)
                                    for i, v in enumerate(x)])
    total = None
    for path, g in zip(paths, adjoints):
        if g is not None:
            total = _add_any(total, _getitem_adjoint(g, x, *path))
    return zero_adjoint(x) if total is None else total


assemble_adjoint = primitive("assemble_adjoint",
                             abstract_eval=by_running(_assemble_adjoint))(_assemble_adjoint)


def _take_adjoint(g, x, indices, axis=None):
    """take_adjoint(g, x, indices, axis): the adjoint of numpy.take."""
    out = np.zeros(np.shape(x), np.result_type(g))
    if axis is None:
        np.add.at(out.reshape(-1), indices, g)
        return out
    ax = axis % out.ndim
    idx = (slice(None),) * ax + (np.asarray(indices),)
    np.add.at(out, idx, g)
    return out


take_adjoint = primitive("take_adjoint", abstract_eval=by_running(_take_adjoint))(_take_adjoint)


def _take_along_axis_adjoint(g, x, indices, axis=-1):
    """take_along_axis_adjoint(g, x, indices, axis): the adjoint of numpy.take_along_axis."""
    out = np.zeros(np.shape(x), np.result_type(g))
    ax = axis % out.ndim
    grids = np.indices(np.shape(indices), sparse=True)
    idx = tuple(indices if i == ax else grids[i] for i in range(out.ndim))
    np.add.at(out, idx, g)
    return out


take_along_axis_adjoint = primitive(
    "take_along_axis_adjoint",
    abstract_eval=by_running(_take_along_axis_adjoint))(_take_along_axis_adjoint)


def _diagonal_adjoint(g, x, offset=0, axis1=0, axis2=1):
    """diagonal_adjoint(g, x, offset, axis1, axis2): zeros shaped like `x` with
    `g` on the diagonal numpy.diagonal reads."""
    out = np.zeros(np.shape(x), np.result_type(g))
    view = np.diagonal(out, offset, axis1, axis2)
    view.setflags(write=True)
    view[...] = g
    return out


diagonal_adjoint = primitive("diagonal_adjoint",
                             abstract_eval=by_running(_diagonal_adjoint))(_diagonal_adjoint)


def _split_like(g, arrays, axis=0):
    """split_like(g, arrays, axis): `g` cut along `axis` into pieces shaped
    like the arrays numpy.concatenate joined (the adjoint of concatenate)."""
    if axis is None:
        sizes = [np.size(a) for a in arrays]
        flat = np.reshape(g, -1)
        bounds = np.cumsum(sizes)[:-1]
        return [real_for(np.reshape(p, np.shape(a)), a)
                for p, a in zip(np.split(flat, bounds), arrays)]
    sizes = [np.shape(a)[axis] for a in arrays]
    bounds = np.cumsum(sizes)[:-1]
    return [real_for(p, a) for p, a in zip(np.split(g, bounds, axis=axis), arrays)]


split_like = primitive("split_like", abstract_eval=by_running(_split_like))(_split_like)


def _unstack_like(g, obj):
    """unstack_like(g, obj): `g` cut into the nested list/tuple structure of
    `obj` (the adjoint of numpy.array(obj)); reshaped like `obj` at leaves."""
    if isinstance(obj, (list, tuple)):
        return rebuild_like(obj, [_unstack_like(g[i], o) for i, o in enumerate(obj)])
    return real_for(np.reshape(g, np.shape(obj)), obj)


unstack_like = primitive("unstack_like", abstract_eval=by_running(_unstack_like))(_unstack_like)


def _einsum_labels(term, ndim, ell):
    """The labels of one einsum term for an operand of `ndim` dimensions,
    with '...' spelled out as the letters `ell` (right-aligned)."""
    if "..." not in term:
        return term
    before, after = term.split("...")
    n = ndim - len(before) - len(after)
    return before + (ell[len(ell) - n:] if n else "") + after


def _einsum_expand(t, x, spec):
    """einsum_expand(t, x, spec): `t` (labels `src`) brought to the shape of
    `x` (labels `dst`), with spec 'src->dst': labels only `t` has are summed,
    labels only `x` has are broadcast, a label `x` repeats gets `t` on that
    diagonal (zeros elsewhere), and dimensions under '...' that `x` has
    fewer of, or of size 1, are summed (the adjoint of einsum's broadcasting).
    This is the step from an einsum's cotangent to one operand's adjoint;
    einsum_expand with the spec reversed is its own adjoint."""
    src, dst = spec.split("->")
    t = np.asarray(t)
    xshape = np.shape(x)
    used = set(src + dst) - {"."}
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
    ell = "".join(free[:max(t.ndim, len(xshape))])
    tl = _einsum_labels(src, t.ndim, ell)
    xl = _einsum_labels(dst, len(xshape), ell)
    # '...' dimensions of size 1 in x that t has at full size: sum them first
    axes = tuple(i for i, c in enumerate(tl) if c in ell and c in xl
                 and xshape[xl.index(c)] == 1 and t.shape[i] != 1)
    if axes:
        t = np.sum(t, axis=axes, keepdims=True)
    uniq = "".join(dict.fromkeys(xl))
    kept = "".join(c for c in uniq if c in tl)
    if tl != kept:
        t = np.einsum(f"{tl}->{kept}", t)
    sizes = dict(zip(xl, xshape))
    shape = [t.shape[kept.index(c)] if c in kept else 1 for c in uniq]
    full = np.broadcast_to(np.reshape(t, shape), [sizes[c] for c in uniq])
    if uniq == xl:
        return full
    out = np.zeros(xshape, np.result_type(t, np.float64) if t.dtype.kind in "biu" else t.dtype)
    np.einsum(f"{xl}->{uniq}", out)[...] = full    # a writable view of the diagonal
    return out


def _expand_for(expand):
    """einsum_expand, its real part for a real x (a real operand of a
    complex einsum: its cotangent is real)."""
    def einsum_expand(t, x, spec):
        return real_for(expand(t, x, spec), x)
    einsum_expand.__doc__ = expand.__doc__
    return einsum_expand


_einsum_expand = _expand_for(_einsum_expand)
einsum_expand = primitive("einsum_expand",
                          abstract_eval=by_running(_einsum_expand))(_einsum_expand)


# -- contractions ------------------------------------------------------------------------

def _reduce_to(g, shape):
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape)
                                      if d == 1 and g.shape[lead + i] != 1)
    if axes:
        g = np.sum(g, axis=axes, keepdims=True)
    return np.reshape(g, shape)


def _matmul_grad_a(g, b, a):
    """matmul_grad_a(g, b, a): the adjoint of `a` in `a @ b` for cotangent `g`."""
    a_shape, b = np.shape(a), np.asarray(b)
    g = np.asarray(g)
    if b.ndim == 1 and len(a_shape) == 1:
        return g * b
    if b.ndim == 1:
        g = g[..., None]
        b2 = b[None, :]
    else:
        b2 = np.swapaxes(b, -1, -2)
    if len(a_shape) == 1:
        g = g[..., None, :]
    out = np.matmul(g, b2)
    if len(a_shape) == 1:
        out = out[..., 0, :]
    return _reduce_to(out, a_shape)


def _matmul_grad_b(g, a, b):
    """matmul_grad_b(g, a, b): the adjoint of `b` in `a @ b` for cotangent `g`."""
    b_shape, a = np.shape(b), np.asarray(a)
    g = np.asarray(g)
    if a.ndim == 1 and len(b_shape) == 1:
        return g * a
    if a.ndim == 1:
        g = g[..., None, :]
        a2 = a[:, None]
    else:
        a2 = np.swapaxes(a, -1, -2)
    if len(b_shape) == 1:
        g = g[..., None]
    out = np.matmul(a2, g)
    if len(b_shape) == 1:
        out = out[..., 0]
    return _reduce_to(out, b_shape)


def _product_adjoint_rule(impl):
    """Shape rule of `impl(g, other, x)`: the adjoint has x's shape and the
    product's dtype.  (Running the product on stand-ins would cost a full
    matmul at every compile.)"""
    def rule(g, other, x):
        if not any_abstract((g, other, x)):
            return impl(g, other, x)
        dt = result_dtype(g, other)
        if not np.issubdtype(dt, np.inexact):
            dt = np.dtype(np.float64)
        if dt.kind == "c" and np.dtype(dtype_of(x)).kind != "c":
            dt = np.real(np.zeros((), dt)).dtype    # a real operand's adjoint is real
        return ShapedArray(shape_of(x), dt)
    rule.__name__ = f"product_adjoint_rule({impl.__name__})"
    return rule


def _real_adjoint(impl):
    """impl(g, other, x), its real part when x is real and the product complex."""
    def adjoint(g, other, x):
        return real_for(impl(g, other, x), x)
    adjoint.__name__ = adjoint.__qualname__ = impl.__name__
    adjoint.__doc__ = impl.__doc__
    return adjoint


_matmul_grad_a, _matmul_grad_b = _real_adjoint(_matmul_grad_a), _real_adjoint(_matmul_grad_b)
matmul_grad_a = primitive("matmul_grad_a",
                          abstract_eval=_product_adjoint_rule(_matmul_grad_a))(_matmul_grad_a)
matmul_grad_b = primitive("matmul_grad_b",
                          abstract_eval=_product_adjoint_rule(_matmul_grad_b))(_matmul_grad_b)


def dot_labels(na, nb):
    """einsum labels of numpy.dot for operands of ranks na, nb: (a's, b's,
    the result's); a's last axis contracts with b's second-to-last (its
    only one when b is 1-D).  Above 2-D dot is not matmul: it pairs every
    stack of a with every stack of b."""
    la = "abcdefghijklm"[:na]
    lb = "nopqrstuvwxyz"[:nb]
    lb = lb[:-2] + la[-1] + lb[-1] if nb > 1 else la[-1]
    return la, lb, la[:-1] + lb.replace(la[-1], "")


def _dot_grad_a(g, b, a):
    """dot_grad_a(g, b, a): the adjoint of `a` in numpy.dot(a, b)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return _reduce_to(np.asarray(np.multiply(g, b)), np.shape(a))
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        la, lb, out = dot_labels(np.ndim(a), np.ndim(b))
        return np.einsum(f"{out},{lb}->{la}", g, b)
    return _matmul_grad_a(g, b, a)


def _dot_grad_b(g, a, b):
    """dot_grad_b(g, a, b): the adjoint of `b` in numpy.dot(a, b)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return _reduce_to(np.asarray(np.multiply(g, a)), np.shape(b))
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        la, lb, out = dot_labels(np.ndim(a), np.ndim(b))
        return np.einsum(f"{la},{out}->{lb}", a, g)
    return _matmul_grad_b(g, a, b)


_dot_grad_a, _dot_grad_b = _real_adjoint(_dot_grad_a), _real_adjoint(_dot_grad_b)
dot_grad_a = primitive("dot_grad_a", abstract_eval=_product_adjoint_rule(_dot_grad_a))(_dot_grad_a)
dot_grad_b = primitive("dot_grad_b", abstract_eval=_product_adjoint_rule(_dot_grad_b))(_dot_grad_b)


@primitive("inverse_axes", differentiable=False,
           abstract_eval=lambda axes: None if axes is None else tuple(int(i) for i in np.argsort(axes)))
def inverse_axes(axes):
    """inverse_axes(axes): the permutation undoing numpy.transpose(x, axes) (None for None)."""
    return None if axes is None else tuple(int(i) for i in np.argsort(axes))
