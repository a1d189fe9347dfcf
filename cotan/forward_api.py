"""Forward-mode public API: `jvp`, `linearize`, `jacfwd`, `jacrev`, `hessian`,
`custom_jvp`.

Owns the user-facing wrappers: pytree handling of arguments and outputs,
choosing which arguments get tangents, and assembling Jacobians with JAX's
shapes (`out.shape + in.shape`).  The transformation itself lives in
`cotan.autodiff.forward` (JVP) and `cotan.autodiff.linearize`; `jacrev` is
built on reverse mode's `vjp` and `hessian` on reverse mode's `grad`
(forward over reverse).  Must not generate code itself.
"""

import functools

import numpy as np

from . import tree_util
from .autodiff.forward import jvp_function
from .autodiff.linearize import LinearizeUnsupported, linearize_functions
from .autodiff.parse import unwrap
from .codegen.abstract import eval_by_running
from .errors import CotanError, ShapeError
from .runtime.table import PRIMITIVES, Primitive

__all__ = ["jvp", "linearize", "jacfwd", "jacrev", "hessian", "custom_jvp"]


def _fname(fun):
    return getattr(fun, "__qualname__", getattr(fun, "__name__", repr(fun)))


def _is_inexact(leaf):
    return np.issubdtype(np.result_type(leaf), np.inexact)


def _active(args, argnums=None):
    """Indices of the arguments that get tangents: those asked for whose
    leaves include a floating or complex value (integers have no tangent)."""
    idx = range(len(args)) if argnums is None else argnums
    return tuple(i for i in idx
                 if any(_is_inexact(leaf) for leaf in tree_util.tree_leaves(args[i])))


def _check_tangent(fun, i, primal, tangent):
    ps, ts = tree_util.tree_structure(primal), tree_util.tree_structure(tangent)
    if ps != ts:
        raise ShapeError(f"jvp of {_fname(fun)}: the tangent of argument {i} has structure "
                         f"{ts}, but the primal has {ps}; pass tangents shaped like the primals")
    for p, t in zip(tree_util.tree_leaves(primal), tree_util.tree_leaves(tangent)):
        if np.shape(p) != np.shape(t):
            raise ShapeError(f"jvp of {_fname(fun)}: argument {i} has shape {np.shape(p)} "
                             f"but its tangent has shape {np.shape(t)}; they must match")


def _as_tuple(xs, what, fun):
    if not isinstance(xs, (tuple, list)):
        raise TypeError(f"{what} of {_fname(fun)} must be a tuple or list of arguments, "
                        f"got {type(xs).__name__}; write (x,) for one argument")
    return tuple(xs)


def _split_aux(fun, out, has_aux):
    if not has_aux:
        return out, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"{_fname(fun)} was transformed with has_aux=True, so it must "
                        "return a pair (output, auxiliary data)")
    return out[0], out[1]


def jvp(fun, primals, tangents, has_aux=False):
    """Forward-mode derivative: `(fun(*primals), J(primals) @ tangents)`.

    `primals` and `tangents` are tuples with one entry (a pytree) per
    argument, with matching structures and shapes.  Arguments whose leaves
    are all integers get no tangent (theirs is ignored).  With `has_aux`,
    `fun` returns `(out, aux)` and the result is `(out, tangent_out, aux)`.
    """
    primals = _as_tuple(primals, "primals", fun)
    tangents = _as_tuple(tangents, "tangents", fun)
    if len(primals) != len(tangents):
        raise TypeError(f"jvp of {_fname(fun)}: {len(primals)} primals but "
                        f"{len(tangents)} tangents; give one tangent per argument")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        _check_tangent(fun, i, p, t)
    active = _active(primals)
    g = jvp_function(fun, active)
    out, dout = g(*primals, *[tangents[i] for i in active])
    if has_aux:
        out, aux = _split_aux(fun, out, True)
        return out, dout[0], aux
    return out, dout


def linearize(fun, *primals):
    """`(fun(*primals), f_jvp)` where `f_jvp(*tangents)` is the JVP at
    `primals`.  The primal computation runs once, here; `f_jvp` runs only
    tangent arithmetic on the saved residuals (`cotan.source(f_jvp)` shows
    it)."""
    active = _active(primals)
    try:
        primal_fn, tangent_fn, _ = linearize_functions(fun, active)
    except LinearizeUnsupported:
        primal_fn = None
    if primal_fn is None:
        out = unwrap(fun)(*primals)

        def f_jvp(*tangents):
            return jvp(fun, primals, tangents)[1]
        return out, f_jvp
    out, residuals = primal_fn(*primals)

    def f_jvp(*tangents):
        if len(tangents) != len(primals):
            raise TypeError(f"the linearized {_fname(fun)} takes {len(primals)} tangents "
                            f"(one per argument), got {len(tangents)}")
        for i, (p, t) in enumerate(zip(primals, tangents)):
            _check_tangent(fun, i, p, t)
        return tangent_fn(*residuals, *[tangents[i] for i in active])

    f_jvp.__cotan_source__ = lambda: _source_of(tangent_fn)
    f_jvp.__cotan_primal__ = primal_fn
    f_jvp.__cotan_tangent__ = tangent_fn
    return out, f_jvp


def _source_of(fn):
    from .source import source
    return source(fn)


# -- Jacobians ----------------------------------------------------------------------------

def _argnums_tuple(argnums, nargs, fun):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(f"argnums {argnums} is out of range for {_fname(fun)} "
                             f"called with {nargs} arguments")
    return tuple(a % nargs for a in nums)


def _assemble(out, in_trees, in_leaves, columns, rows_first):
    """Jacobian pytree: outer structure of `out`, inner of the inputs.

    `columns[k]` is an array (N, *out_leaf_k.shape) holding, for each of the N
    scalar inputs (all input leaves flattened and concatenated), the
    derivative of output leaf k (rows_first=False), or an array
    (out_leaf_k.size, N) for reverse mode (rows_first=True).
    """
    out_leaves, out_def = tree_util.tree_flatten(out)
    blocks = []
    for k, o in enumerate(out_leaves):
        oshape = np.shape(o)
        osize = int(np.prod(oshape, dtype=int))
        mat = columns[k].reshape(osize, -1) if rows_first else columns[k].reshape(-1, osize).T
        per_arg = []
        off = 0
        for tree, leaves in zip(in_trees, in_leaves):
            leaf_blocks = []
            for leaf in leaves:
                ishape = np.shape(leaf)
                n = int(np.prod(ishape, dtype=int))
                leaf_blocks.append(mat[:, off:off + n].reshape(oshape + ishape))
                off += n
            per_arg.append(tree_util.tree_unflatten(tree, leaf_blocks))
        blocks.append(per_arg)
    return out_def, blocks


def _jacobian_result(out_def, blocks, single):
    leaves = [b[0] if single else tuple(b) for b in blocks]
    return tree_util.tree_unflatten(out_def, leaves)


def _basis(leaves):
    """Yield, for each scalar position of the flattened input leaves, the
    list of tangent leaves that is one there and zero elsewhere."""
    dtypes = [np.result_type(leaf) if _is_inexact(leaf) else np.float64 for leaf in leaves]
    for j, leaf in enumerate(leaves):
        for idx in np.ndindex(*np.shape(leaf)):
            ts = [np.zeros(np.shape(x), dt) for x, dt in zip(leaves, dtypes)]
            ts[j][idx] = 1
            yield ts


def jacfwd(fun, argnums=0, has_aux=False):
    """The Jacobian of `fun` by forward mode, one JVP per input element.

    The result has `fun`'s output structure; each leaf holds, for the
    argument(s) in `argnums` (a tuple of them if `argnums` is a tuple), a
    pytree of arrays shaped `out_leaf.shape + in_leaf.shape`.
    """
    single = isinstance(argnums, int)

    @functools.wraps(unwrap(fun))
    def jacobian(*args):
        nums = _argnums_tuple(argnums, len(args), fun)
        for i in nums:
            for leaf in tree_util.tree_leaves(args[i]):
                if not _is_inexact(leaf):
                    raise TypeError(f"jacfwd of {_fname(fun)}: argument {i} has integer "
                                    f"values ({np.result_type(leaf)}); differentiate with "
                                    "respect to floating-point arguments only")
        g = jvp_function(fun, nums)
        trees, leaves = [], []
        for i in nums:
            ls, tree = tree_util.tree_flatten(args[i])
            trees.append(tree)
            leaves.append(ls)
        flat = [leaf for ls in leaves for leaf in ls]
        got = None
        if JACOBIAN_STRATEGY["batched"] and flat:
            got = _jacfwd_batched(g, args, nums, trees, leaves, flat, has_aux)
        if got is None:
            got = _jacfwd_loop(g, args, trees, leaves, flat, has_aux)
        if got is None:  # the arguments hold no elements at all
            out, aux = _split_aux(fun, unwrap(fun)(*args), has_aux)
            columns = [np.zeros((0,) + np.shape(o)) for o in tree_util.tree_leaves(out)]
        else:
            out, aux, columns = got
        out_def, blocks = _assemble(out, trees, leaves, columns, rows_first=False)
        jac = _jacobian_result(out_def, blocks, single)
        return (jac, aux) if has_aux else jac
    return _driver(jacobian, f"jacfwd({_fname(fun)})")


def _driver(fn, what):
    """Mark a Python driver (jacfwd, jacrev): transforming it further is
    refused by name.  functools.wraps pointed `__wrapped__` at the user's
    function, and a transformation reading the source through it compiled
    that function instead of the Jacobian (a silently wrong result)."""
    del fn.__wrapped__
    fn.__cotan_driver__ = what
    return fn


#: how jacfwd pushes its basis vectors: all at once through `vmap` of the
#: JVP when batching is available (set "batched" False to force one JVP per
#: basis vector, e.g. to compare)
JACOBIAN_STRATEGY = {"batched": True}


def _jacfwd_loop(g, args, trees, leaves, flat, has_aux):
    cols, out, aux = None, None, None
    for ts in _basis(flat):
        it = iter(ts)
        tangent_args = [tree_util.tree_unflatten(tree, [next(it) for _ in ls])
                        for tree, ls in zip(trees, leaves)]
        out, dout = g(*args, *tangent_args)
        if has_aux:
            out, aux = out
            dout = dout[0]
        douts = tree_util.tree_leaves(dout)
        if cols is None:
            cols = [[] for _ in douts]
        for k, v in enumerate(douts):
            cols[k].append(np.asarray(v))
    if cols is None:
        return None
    return out, aux, [np.stack(c) for c in cols]


_batched_cache = {}


def _jacfwd_batched(g, args, nums, trees, leaves, flat, has_aux):
    """Every basis vector in one call of `vmap(jvp)`; None if vmap is not
    available or cannot batch this function (the loop is then used)."""
    try:
        from .vmap_api import vmap
    except ImportError:
        return None
    n = sum(int(np.size(x)) for x in flat)
    eye = np.eye(n)
    tangent_args, off = [], 0
    for tree, ls in zip(trees, leaves):
        tl = []
        for x in ls:
            k = int(np.size(x))
            tl.append(eye[:, off:off + k].reshape((n,) + np.shape(x)).astype(
                np.result_type(x)))
            off += k
        tangent_args.append(tree_util.tree_unflatten(tree, tl))
    try:
        key = (g, len(args), len(nums))
        batched = _batched_cache.get(key)
        if batched is None:
            batched = _batched_cache[key] = vmap(
                g, in_axes=(None,) * len(args) + (0,) * len(nums))
        out, dout = batched(*args, *tangent_args)
    except Exception:
        return None
    out = tree_util.tree_map(lambda v: np.asarray(v)[0], out)
    aux = None
    if has_aux:
        out, aux = out
        dout = dout[0]
    return out, aux, [np.asarray(v) for v in tree_util.tree_leaves(dout)]


def _reverse():
    try:
        from . import reverse_api
    except ImportError:
        reverse_api = None
    if reverse_api is None or not hasattr(reverse_api, "vjp"):
        raise CotanError("jacrev and hessian need reverse mode (cotan.reverse_api), "
                         "which is not available in this build")
    return reverse_api


def jacrev(fun, argnums=0, has_aux=False):
    """The Jacobian of `fun` by reverse mode (reverse mode's `vjp`), one
    pullback per output element; shapes as for `jacfwd`."""
    single = isinstance(argnums, int)

    @functools.wraps(unwrap(fun))
    def jacobian(*args):
        rev = _reverse()
        nums = _argnums_tuple(argnums, len(args), fun)
        if has_aux:
            out, pullback, aux = rev.vjp(_partial_args(fun, args, nums),
                                         *[args[i] for i in nums], has_aux=True)
        else:
            out, pullback = rev.vjp(_partial_args(fun, args, nums), *[args[i] for i in nums])
        trees, leaves = [], []
        for i in nums:
            ls, tree = tree_util.tree_flatten(args[i])
            trees.append(tree)
            leaves.append(ls)
        out_leaves, out_def = tree_util.tree_flatten(out)
        rows = _jacrev_rows_batched(fun, args, nums, out_leaves, out_def, leaves, has_aux)
        if rows is not None:
            out_def, blocks = _assemble(out, trees, leaves, rows, rows_first=True)
            jac = _jacobian_result(out_def, blocks, single)
            return (jac, aux) if has_aux else jac
        rows = []
        for k, o in enumerate(out_leaves):
            rk = []
            for idx in np.ndindex(*np.shape(o)):
                cts = [np.zeros(np.shape(x), np.result_type(x)) for x in out_leaves]
                cts[k][idx] = 1
                grads = pullback(tree_util.tree_unflatten(out_def, cts))
                flat = []
                for g, ls in zip(grads, leaves):
                    gl = tree_util.tree_leaves(g) if g is not None else [None] * len(ls)
                    for gv, x in zip(gl, ls):
                        flat.append(np.zeros(np.size(x)) if gv is None
                                    else np.ravel(np.asarray(gv)))
                rk.append(np.concatenate(flat) if flat else np.zeros(0))
            rows.append(np.stack(rk) if rk else np.zeros((0, sum(np.size(x) for ls in leaves
                                                                 for x in ls))))
        out_def, blocks = _assemble(out, trees, leaves, rows, rows_first=True)
        jac = _jacobian_result(out_def, blocks, single)
        return (jac, aux) if has_aux else jac
    return _driver(jacobian, f"jacrev({_fname(fun)})")


def _jacrev_rows_batched(fun, args, nums, out_leaves, out_def, leaves, has_aux):
    """All pullbacks at once: the generated backward function of `vjp`,
    vmapped over a stack of one-hot cotangents (one per output element).
    None where batching does not apply (the caller loops instead)."""
    rev = _reverse()
    from .vmap_api import vmap
    part = _partial_args(fun, args, nums)
    forward, backward = rev._vjp_pair(unwrap(part), has_aux)
    out, residuals = forward(*[args[i] for i in nums])
    sizes = [int(np.size(o)) for o in out_leaves]
    m = sum(sizes)
    if m == 0:
        return None
    cts, offset = [], 0
    for o, size in zip(out_leaves, sizes):
        basis = np.zeros((m, size), np.result_type(o))
        basis[offset:offset + size] = np.eye(size)
        cts.append(basis.reshape((m,) + np.shape(o)))
        offset += size
    try:
        pullbacks = vmap(backward, in_axes=(None,) * len(residuals) + (0,))
        grads = pullbacks(*residuals, tree_util.tree_unflatten(out_def, cts))
    except CotanError:
        return None
    flat = []
    for g, ls in zip(grads, leaves):
        gl = tree_util.tree_leaves(g) if g is not None else [None] * len(ls)
        for gv, x in zip(gl, ls):
            flat.append(np.zeros((m, np.size(x))) if gv is None
                        else np.reshape(np.broadcast_to(gv, (m,) + np.shape(x)), (m, -1)))
    full = np.concatenate(flat, axis=1) if flat else np.zeros((m, 0))
    rows, offset = [], 0
    for size in sizes:
        rows.append(full[offset:offset + size])
        offset += size
    return rows


def _partial_args(fun, args, nums):
    """`fun` as a function of the arguments in `nums` only, the others fixed
    (a generated-code-friendly closure: cotan inlines it)."""
    if tuple(nums) == tuple(range(len(args))):
        return fun
    fixed = list(args)
    inner = unwrap(fun)
    n = len(args)
    pos = {i: k for k, i in enumerate(nums)}
    # build `lambda a0, a1: fun(c0, a0, c1, a1)` as source so normalization
    # can read it; the fixed arguments are globals of the generated module
    names = [f"a{pos[i]}" if i in pos else f"c{i}" for i in range(n)]
    src = (f"def partial_{getattr(inner, '__name__', 'fn')}({', '.join(f'a{k}' for k in range(len(nums)))}):\n"
           f"    return fun({', '.join(names)})\n")
    from .autodiff.parse import GENERATED_PREFIX, register_source
    filename = f"{GENERATED_PREFIX}partial of {_fname(fun)} {abs(hash(src))}>"
    register_source(filename, src)
    ns = {"fun": inner}
    ns.update({f"c{i}": fixed[i] for i in range(n) if i not in pos})
    exec(compile(src, filename, "exec"), ns)
    return next(v for k, v in ns.items() if k.startswith("partial_"))


def hessian(fun, argnums=0):
    """The Hessian of scalar-valued `fun`: forward over reverse,
    `jacfwd(grad(fun, argnums), argnums)`.  Shapes follow JAX:
    `in.shape + in.shape` per pair of input leaves."""
    rev = _reverse()
    if not hasattr(rev, "grad"):
        raise CotanError("hessian needs reverse mode's grad")
    return jacfwd(rev.grad(fun, argnums=argnums), argnums=argnums)


# -- custom rules ----------------------------------------------------------------------------

class custom_jvp:
    """A function with a user-supplied JVP (JAX semantics).

        @cotan.custom_jvp
        def f(x):
            return np.log1p(np.exp(x))

        @f.defjvp
        def f_jvp(primals, tangents):
            (x,), (dx,) = primals, tangents
            return f(x), dx / (1 + np.exp(-x))

    Transformed code sees `f` as one primitive (through
    `__cotan_primitive__`); forward mode splices a call of the JVP function
    (which is inlined, so it may itself be differentiated again).
    """

    def __init__(self, fun, nondiff_argnums=()):
        if nondiff_argnums:
            raise NotImplementedError("custom_jvp: nondiff_argnums is not supported; close "
                                      "over the non-differentiable values instead")
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.jvp = None
        name = "custom_jvp_" + getattr(fun, "__name__", "fn").replace("<lambda>", "lambda")
        base, k = name, 1
        while name in PRIMITIVES:
            name = f"{base}_{k}"
            k += 1
        prim = Primitive(name, self._impl, eval_by_running(self._impl), differentiable=True)
        prim.cotan_custom = True
        def rule(ctx, z, args, keywords):
            return self._rule(ctx, z, args, keywords)
        rule.cotan_builder = True
        rule.cotan_widen = False
        prim.jvp_rule = rule
        PRIMITIVES[name] = prim
        self.__cotan_primitive__ = prim

    def _impl(self, *args):
        return self.fun(*args)

    def defjvp(self, jvp_fn):
        """Set the JVP: `jvp_fn(primals, tangents) -> (primal_out, tangent_out)`."""
        self.jvp = jvp_fn
        return jvp_fn

    def __call__(self, *args):
        return self.fun(*args)

    def _rule(self, ctx, z, args, keywords):
        import gast
        if self.jvp is None:
            raise CotanError(f"custom_jvp function {_fname(self.fun)} has no JVP rule; "
                             "define one with @f.defjvp")
        tangents = [ctx.tangent(a) for a in args]
        if all(ctx.is_zero(t) for t in tangents):
            return None
        fn = ctx.capture(self.jvp, getattr(self.jvp, "__name__", "custom_jvp_rule"))
        call = gast.Call(func=fn, args=[
            gast.Tuple(elts=list(args), ctx=gast.Load()),
            gast.Tuple(elts=[ctx.materialize(t) for t in tangents], ctx=gast.Load())],
            keywords=[])
        return gast.Subscript(value=call, slice=gast.Constant(value=1, kind=None),
                              ctx=gast.Load())
