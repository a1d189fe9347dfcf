"""Forward-mode public API: `jvp`, `linearize`, `jacfwd`, `jacrev`, `hessian`,
`custom_jvp`.

Owns the user-facing wrappers: pytree handling of arguments and outputs,
choosing which arguments get tangents, and the Jacobians.  The
transformations themselves live in `cotan.autodiff.forward` (JVP),
`cotan.autodiff.linearize` and reverse mode (`cotan.reverse_api`); a
Jacobian is a short generated function that vmaps the generated JVP
(`jacfwd`) or VJP (`jacrev`) over a one-hot basis and reshapes the result
to JAX's `out.shape + in.shape` (`hessian` is jacfwd of grad).  Must not
differentiate or batch code itself: the driver source it writes only calls
the functions those transformations generated.
"""

import functools

import numpy as np

from . import tree_util
from .autodiff.forward import jvp_function
from .autodiff.linearize import LinearizeUnsupported, linearize_functions
from .autodiff.parse import unwrap
from .autodiff import callables
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
    if callables.takes_variadic(fun):
        fun = callables.fixed_arity(fun, len(primals), ())
    fun = _leading(fun, len(primals), "jvp")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        _check_tangent(fun, i, p, t)
    active = _active(primals)
    g = jvp_function(fun, active)
    out, dout = g(*primals, *[tangents[i] for i in active])
    if has_aux:
        out, aux = _split_aux(fun, out, True)
        return out, dout[0], aux
    return out, dout


def _leading(fun, k, what):
    """`fun` of its first `k` parameters (the others at their defaults),
    checking the count."""
    from .autodiff import callables
    from .autodiff.normalize import normalize_function
    fun = callables.with_leading(fun, k, what)
    n = len(normalize_function(fun).params)
    if n != k:
        raise TypeError(f"{what} of {_fname(fun)}: got {k} primal{'s' if k != 1 else ''} "
                        f"but {_fname(fun)} takes {n} argument{'s' if n != 1 else ''}; "
                        "give one primal per parameter")
    return fun


def _aux_parts(fun):
    """(main, aux): generated functions returning fun(...)[0] and [1]."""
    from .autodiff.normalize import normalize_function
    params = ", ".join(normalize_function(fun).params)
    name = _ident(_fname(fun))
    main = _exec_source(f"def main_of_{name}({params}):\n    return fun({params})[0]\n",
                        f"has_aux output of {_fname(fun)}", {"fun": fun})
    aux = _exec_source(f"def aux_of_{name}({params}):\n    return fun({params})[1]\n",
                       f"has_aux auxiliary of {_fname(fun)}", {"fun": fun})
    return main, aux


def linearize(fun, *primals, has_aux=False):
    """`(fun(*primals), f_jvp)` where `f_jvp(*tangents)` is the JVP at
    `primals`.  The primal computation runs once, here; `f_jvp` runs only
    tangent arithmetic on the saved residuals (`cotan.source(f_jvp)` shows
    it).  With `has_aux`, `fun` returns `(out, aux)` and the result is
    `(out, f_jvp, aux)` (the auxiliary output is computed by a second run
    of the primal, without derivatives)."""
    if callables.takes_variadic(fun):
        fun = callables.fixed_arity(fun, len(primals), ())
    fun = _leading(fun, len(primals), "linearize")
    if has_aux:
        main, aux_fn = _aux_parts(fun)
        out, f_jvp = linearize(main, *primals)
        return out, f_jvp, _split_aux(fun, unwrap(fun)(*primals), True)[1]
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

    def eager(*tangents):
        if len(tangents) != len(primals):
            raise TypeError(f"the linearized {_fname(fun)} takes {len(primals)} tangents "
                            f"(one per argument), got {len(tangents)}")
        for i, (p, t) in enumerate(zip(primals, tangents)):
            _check_tangent(fun, i, p, t)
        return tangent_fn(*residuals, *[tangents[i] for i in active])

    names = [f"t{i}" for i in range(len(primals))]
    f_jvp = callables.Closure(f"f_jvp of {_fname(fun)}", eager, callables.closure_function(
        f"linearized {_fname(fun)}", tangent_fn, residuals, names,
        passed=[names[i] for i in active]))
    f_jvp.__cotan_source__ = lambda: _source_of(tangent_fn)
    f_jvp.__cotan_primal__ = primal_fn
    f_jvp.__cotan_tangent__ = tangent_fn
    return out, f_jvp


def _source_of(fn):
    from .source import source
    return source(fn)


# -- Jacobians ----------------------------------------------------------------------------
#
# jacfwd(f) and jacrev(f) are generated functions like every other
# transformation's result: their source calls
#   jacobian_basis     the one-hot basis of the differentiated values,
#   the vmapped generated JVP (jacfwd) or VJP (jacrev) of f over that basis,
#   jacobian_columns / jacobian_rows   the assembly into out.shape + in.shape,
# so jit, vmap, grad, jvp and the Jacobians themselves parse and transform
# them.  The basis size depends on the arguments' shapes: it is computed by
# static_jacobian_* primitives (runtime/jacobian_support.py), which every
# transformation folds, and eye/reshape/transpose, which they all know.
# The three steps are `_Step` objects: called, they run the pytree-general
# NumPy code of jacobian_support; a transformation instead inlines their
# `__cotan_wrapped__` composition, which is written for arrays (an argument
# or output that is a pytree is refused there by name).

from .runtime import jacobian_support  # noqa: E402  (registers the static_jacobian_* primitives)


def _argnums_tuple(argnums, nargs, fun, what):
    single = isinstance(argnums, int) and not isinstance(argnums, bool)
    try:
        nums = (argnums,) if single else tuple(argnums)
    except TypeError:
        nums = None
    if not nums or not all(isinstance(a, int) and not isinstance(a, bool) for a in nums):
        raise CotanError(f"argnums of {what}({_fname(fun)}) must be an int or a non-empty "
                         f"tuple of ints, got {argnums!r}")
    for a in nums:
        if not -nargs <= a < nargs:
            raise CotanError(f"argnums={argnums!r} is out of range for {what}({_fname(fun)}), "
                             f"which takes {nargs} positional argument"
                             f"{'s' if nargs != 1 else ''}")
    return tuple(a % nargs for a in nums)


class _Step:
    """A step of a generated Jacobian: called, the pytree-general eager code;
    inside transformed code, `__cotan_wrapped__`, an array composition the
    transformations inline (like `jit(f)` inside transformed code is f)."""

    def __init__(self, name, eager, composition):
        self.__name__ = self.__qualname__ = name
        self._eager = eager
        self.__cotan_wrapped__ = composition

    def __call__(self, *args):
        return self._eager(*args)


def _exec_source(src, label, namespace):
    """Run generated `src` (one function definition) registered with
    linecache under a name derived from its text; return the function."""
    import hashlib
    from .autodiff.parse import GENERATED_PREFIX, register_source
    name = src.split("(", 1)[0][len("def "):]
    filename = f"{GENERATED_PREFIX}{label} {hashlib.sha1(src.encode()).hexdigest()[:10]}>"
    register_source(filename, src)
    ns = dict(PRIMITIVES)
    ns.update(namespace)
    ns["np"] = np
    ns["__name__"] = "cotan.generated"
    exec(compile(src, filename, "exec"), ns)
    return ns[name]


_steps = {}


def _step(kind, k, single, what=(), need=None):
    key = (kind, k, single, what, need)
    got = _steps.get(key)
    if got is not None:
        return got
    helpers = {n: jacobian_support.__dict__[n] for n in dir(jacobian_support)
               if n.startswith("static_jacobian_")}
    lines = []
    if kind == "basis":
        lines.append(f"def jacobian_basis({', '.join(f'x{i}' for i in range(k))}):")
        for i in range(k):
            lines += [f"    c{i} = jacobian_array_check(x{i}, {what[i]!r})",
                      f"    d{i} = static_jacobian_dtype(x{i}.dtype, {what[i]!r}, {need!r})"]
        lines.append(f"    shapes = ({''.join(f'np.shape(x{i}), ' for i in range(k))})")
        lines.append(f"    n = static_jacobian_size(shapes, ({''.join(f'c{i}, ' for i in range(k))}))")
        for i in range(k):
            lines += [f"    k{i} = static_jacobian_block(shapes, {i})",
                      f"    b{i} = np.reshape(np.eye(n, dtype=d{i})[k{i}[0]], k{i}[1])"]
        lines.append(f"    return ({''.join(f'b{i}, ' for i in range(k))})")
        eager = functools.partial(_basis_eager, what=what, need=need)
    elif kind == "columns":
        lines.append(f"def jacobian_columns(dout, {', '.join(f'x{i}' for i in range(k))}):")
        lines.append("    c = jacobian_array_check(dout, 'the output of a jacfwd')")
        lines.append(f"    shapes = ({''.join(f'np.shape(x{i}), ' for i in range(k))})")
        for i in range(k):
            lines += [f"    p{i} = dout[static_jacobian_rows(shapes, {i}, c)]",
                      f"    q{i} = np.transpose(p{i}, static_jacobian_last(np.ndim(p{i})))",
                      f"    j{i} = np.reshape(q{i}, static_jacobian_shape(np.shape(q{i}), "
                      f"shapes[{i}]))"]
        lines.append("    return j0" if single else
                     f"    return ({''.join(f'j{i}, ' for i in range(k))})")
        eager = functools.partial(_columns_eager, single=single)
    else:
        # one argument: `cts` is its cotangents, not a 1-tuple of them (the
        # adjoint of indexing a tuple per lane is not compiled)
        lines.append(f"def jacobian_rows(cts, out, {', '.join(f'x{i}' for i in range(k))}):")
        lines.append("    so = np.shape(out)")
        for i in range(k):
            ct = "cts" if k == 1 else f"cts[{i}]"
            lines.append(f"    c{i} = (jacobian_array_check(x{i}, {what[i]!r}), "
                         f"static_jacobian_dtype(x{i}.dtype, {what[i]!r}, {need!r}))")
            lines.append(f"    j{i} = np.reshape({ct}, static_jacobian_row_shape(so, "
                         f"np.shape({ct}), c{i}))")
        lines.append("    return j0" if single else
                     f"    return ({''.join(f'j{i}, ' for i in range(k))})")
        eager = functools.partial(_rows_eager, single=single, what=what, need=need)
    composition = _exec_source("\n".join(lines) + "\n", f"jacobian {kind} of {k}", helpers)
    got = _steps[key] = _Step(f"jacobian_{kind}", eager, composition)
    return got


def _basis_eager(*xs, what, need=None):
    return jacobian_support.basis_tree(xs, what, need)


def _columns_eager(dout, *xs, single):
    return jacobian_support.columns_tree(dout, xs, single)


def _rows_eager(cts, out, *xs, single, what, need=None):
    jacobian_support.check_dtypes(xs, what, need)
    return jacobian_support.rows_tree((cts,) if len(xs) == 1 else cts, out, single)


def _plain_function(fun):
    """`fun` as a Python function generated code may call (and
    transformations inline)."""
    import types
    from .autodiff import callables
    inner = callables.as_function(unwrap(fun))
    if isinstance(inner, types.FunctionType):
        return inner
    from .source import normalize
    return normalize(inner)


def _params_of(fun):
    from .autodiff.normalize import normalize_function
    return normalize_function(fun).params


def _npos(fun):
    """How many positional parameters `fun` has (argnums counts them)."""
    from .autodiff.normalize import normalize_function
    core = normalize_function(fun)
    return len(core.signature.positional) if core.signature is not None else len(core.params)


def _presented(got, target):
    from .autodiff import callables
    from .autodiff.normalize import normalize_function
    return callables.present(got, normalize_function(target).signature)


def _check_holomorphic(fun, holomorphic, what):
    if not isinstance(holomorphic, bool):
        raise CotanError(f"holomorphic= of {what}({_fname(fun)}) must be True or False, "
                         f"got {holomorphic!r}")


def _fresh_prefix(params):
    prefix = "jac_"
    while any(p.startswith(prefix) for p in params):
        prefix += "_"
    return prefix


def _ident(text):
    return "".join(c if c.isalnum() else "_" for c in text).strip("_") or "fn"


def _what_args(fun, params, nums, kind):
    return tuple(f"argument {params[i]!r} of {kind}({_fname(fun)})" for i in nums)


_jacobians = {}

#: how many Jacobian functions were generated (tests read it to check that a
#: second call reuses the first one's)
GENERATED = {"jacfwd": 0, "jacrev": 0}


def jacfwd(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Jacobian of `fun` by forward mode: the generated JVP of `fun`,
    vmapped over the one-hot basis of the arguments in `argnums`.

    The result has `fun`'s output structure; each leaf holds, for the
    argument(s) in `argnums` (a tuple of them if `argnums` is a tuple), a
    pytree of arrays shaped `out_leaf.shape + in_leaf.shape`.  With
    `has_aux`, `fun` returns `(out, aux)` and the result is `(jacobian, aux)`.
    The returned function is generated source (`cotan.source` shows it) and
    composes with every transformation.  Complex values as in JAX: the
    inputs must be real unless `holomorphic=True` (then they are complex and
    the Jacobian is the complex derivative).
    """
    if callables.takes_variadic(fun):
        return callables.PerArity(fun, lambda f: jacfwd(f, argnums, has_aux, holomorphic),
                                  "jacfwd")
    return _jacfwd(fun, argnums, has_aux, holomorphic=holomorphic)


def _jacfwd(fun, argnums, has_aux, outputs=None, holomorphic=False):
    """jacfwd; `outputs`: the length of the tuple `fun` returns, when it is
    known (hessian's grad with a tuple argnums), so that each of its
    entries is assembled on its own (transformed code assembles arrays)."""
    target = _plain_function(fun)
    key = ("jacfwd", target, getattr(target, "__code__", None), argnums, has_aux, outputs,
           bool(holomorphic))
    got = _jacobians.get(key)
    if got is not None:
        return got
    params = _params_of(target)
    nums = _argnums_tuple(argnums, _npos(target), fun, "jacfwd")
    single = isinstance(argnums, int)
    from .vmap_api import vmap
    p = _fresh_prefix(params)
    args = ", ".join(params)
    ds = [f"{p}d{k}" for k in range(len(nums))]
    # the vmapped function returns the tangent (and aux) only: a primal
    # output left unbatched would be one more output for grad of this
    # Jacobian to seed with a zero
    result = f"{p}r[1][0], {p}r[0][1]" if has_aux else f"{p}r[1]"
    inner = _exec_source(
        f"def tangents_of_{_ident(_fname(fun))}({', '.join(list(params) + ds)}):\n"
        f"    {p}r = jvp_fn({', '.join(list(params) + ds)})\n"
        f"    return {result}\n", f"jacfwd tangents of {_fname(fun)}",
        {"jvp_fn": jvp_function(target, nums)})
    tangents = vmap(inner, in_axes=(None,) * len(params) + (0,) * len(nums),
                    out_axes=(0, None) if has_aux else 0)
    xs = "".join(f"{params[i]}, " for i in nums)
    lines = [f"def jacfwd_{_ident(_fname(fun))}({args}):",
             f"    {p}basis = jacobian_basis({xs})",
             f"    {p}dout = tangents({args}{', ' if args else ''}"
             + ", ".join(f"{p}basis[{k}]" for k in range(len(nums))) + ")"]
    if has_aux:
        lines += [f"    {p}aux = {p}dout[1]", f"    {p}dout = {p}dout[0]"]
    if outputs is None:
        lines.append(f"    {p}jac = jacobian_columns({p}dout, {xs})")
    else:
        lines.append(f"    {p}jac = (" + "".join(
            f"jacobian_columns({p}dout[{k}], {xs}), " for k in range(outputs)) + ")")
    lines.append(f"    return ({p}jac, {p}aux)" if has_aux else f"    return {p}jac")
    namespace = {"tangents": tangents,
                 "jacobian_basis": _step("basis", len(nums), single,
                                         _what_args(fun, params, nums, "jacfwd"),
                                         "complex" if holomorphic else "real"),
                 "jacobian_columns": _step("columns", len(nums), single)}
    got = _exec_source("\n".join(lines) + "\n", f"jacfwd of {_fname(fun)}", namespace)
    got.__qualname__ = f"jacfwd({_fname(fun)})"
    got = _presented(got, target)
    GENERATED["jacfwd"] += 1
    _jacobians[key] = got
    return got


def _reverse():
    try:
        from . import reverse_api
    except ImportError:
        reverse_api = None
    if reverse_api is None or not hasattr(reverse_api, "vjp"):
        raise CotanError("jacrev and hessian need reverse mode (cotan.reverse_api), "
                         "which is not available in this build")
    return reverse_api


def _held_fixed(target, fun, params, nums):
    """`target` with the arguments outside `nums` behind stop_gradient, so
    the VJP (taken with respect to every argument) spends no work on them."""
    fixed = [i for i in range(len(params)) if i not in nums]
    if not fixed:
        return target
    args = ", ".join(params)
    lines = [f"def held_{_ident(_fname(fun))}({args}):"]
    lines += [f"    {params[i]} = stop_gradient({params[i]})" for i in fixed]
    lines.append(f"    return fun({args})")
    from .runtime.adjoint_helpers import stop_gradient
    return _exec_source("\n".join(lines) + "\n", f"jacrev argument of {_fname(fun)}",
                        {"fun": target, "stop_gradient": stop_gradient})


def jacrev(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Jacobian of `fun` by reverse mode: the generated VJP of `fun`,
    vmapped over the one-hot basis of its output; shapes, `has_aux` and
    composition as for `jacfwd`.  Complex values as in JAX: the output must
    be real unless `holomorphic=True` (then inputs and output are complex)."""
    if callables.takes_variadic(fun):
        return callables.PerArity(fun, lambda f: jacrev(f, argnums, has_aux, holomorphic),
                                  "jacrev")
    target = _plain_function(fun)
    key = ("jacrev", target, getattr(target, "__code__", None), argnums, has_aux,
           bool(holomorphic))
    got = _jacobians.get(key)
    if got is not None:
        return got
    rev = _reverse()
    params = _params_of(target)
    nums = _argnums_tuple(argnums, _npos(target), fun, "jacrev")
    single = isinstance(argnums, int)
    from .vmap_api import vmap
    vjp_fn = rev._transform(_held_fixed(target, fun, params, nums), tuple(range(len(params))),
                            "vjp", has_aux)
    p = _fresh_prefix(params)
    args = ", ".join(params)
    # the vmapped function returns the cotangents of `argnums` only (see
    # jacfwd); of one argument, not a 1-tuple (see _step)
    cts = f"{p}r[1][{nums[0]}]" if len(nums) == 1 else \
        f"({''.join(f'{p}r[1][{i}], ' for i in nums)})"
    inner = _exec_source(
        f"def cotangents_of_{_ident(_fname(fun))}({args}{', ' if args else ''}{p}g):\n"
        f"    {p}r = vjp_fn({args}{', ' if args else ''}{p}g)\n"
        f"    return {cts}\n",
        f"jacrev cotangents of {_fname(fun)}", {"vjp_fn": vjp_fn})
    pullbacks = vmap(inner, in_axes=(None,) * len(params) + (0,))
    lines = [f"def jacrev_{_ident(_fname(fun))}({args}):"]
    if has_aux:
        lines += [f"    {p}pair = fun({args})", f"    {p}out = {p}pair[0]",
                  f"    {p}aux = {p}pair[1]"]
    else:
        lines.append(f"    {p}out = fun({args})")
    xs = "".join(f"{params[i]}, " for i in nums)
    lines += [f"    {p}cot = jacobian_basis({p}out)[0]",
              f"    {p}cts = pullbacks({args}{', ' if args else ''}{p}cot)",
              f"    {p}jac = jacobian_rows({p}cts, {p}out, {xs})"]
    lines.append(f"    return ({p}jac, {p}aux)" if has_aux else f"    return {p}jac")
    namespace = {"fun": target, "pullbacks": pullbacks,
                 "jacobian_basis": _step("basis", 1, True,
                                         (f"the output of jacrev({_fname(fun)})",),
                                         "complex" if holomorphic else "real"),
                 "jacobian_rows": _step("rows", len(nums), single,
                                        _what_args(fun, params, nums, "jacrev"),
                                        "complex" if holomorphic else None)}
    got = _exec_source("\n".join(lines) + "\n", f"jacrev of {_fname(fun)}", namespace)
    got.__qualname__ = f"jacrev({_fname(fun)})"
    got = _presented(got, target)
    GENERATED["jacrev"] += 1
    _jacobians[key] = got
    return got


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


def hessian(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Hessian of scalar-valued `fun`: forward over reverse,
    `jacfwd(grad(fun, argnums), argnums)` (the same as jacfwd of jacrev for
    a scalar output, with one pullback instead of a vmap of one).  Shapes
    follow JAX: `in.shape + in.shape` per pair of input leaves.  A generated
    function like jacfwd's.  With `has_aux`, `fun` returns `(value, aux)`
    and the result is `(hessian, aux)`."""
    rev = _reverse()
    _check_holomorphic(fun, holomorphic, "hessian")
    if callables.takes_variadic(fun):
        return callables.PerArity(fun, lambda f: hessian(f, argnums, has_aux, holomorphic),
                                  "hessian")
    _argnums_tuple(argnums, _npos(_plain_function(fun)), fun, "hessian")
    outputs = None if isinstance(argnums, int) else len(tuple(argnums))
    # holomorphic= is complex differentiation's (grad's and jacfwd's):
    # passed on only when asked for
    holo = {"holomorphic": True} if holomorphic else {}
    return _jacfwd(rev.grad(fun, argnums=argnums, has_aux=has_aux, **holo), argnums, has_aux,
                   outputs, **holo)


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
    (which is inlined, so it may itself be differentiated again).  Reverse
    mode transposes the custom JVP, as JAX does: the tangent output is
    linear in the tangents, so its VJP with respect to them (reverse mode
    through the JVP rule's own source) is the function's VJP.  With
    `nondiff_argnums`, those arguments come first in the rule's call,
    `f_jvp(*nondiff, primals, tangents)`, and `primals`/`tangents` hold the
    other arguments only.
    """

    def __init__(self, fun, nondiff_argnums=()):
        if isinstance(nondiff_argnums, int):
            nondiff_argnums = (nondiff_argnums,)
        self.nondiff_argnums = tuple(sorted(set(nondiff_argnums)))
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
        from .autodiff.vjp_rules import builder

        @builder
        def vjp_rule(ctx, g, z, args, kwargs):
            self._vjp_rule(ctx, g, args, kwargs)
        prim.vjp_rule = vjp_rule
        PRIMITIVES[name] = prim
        self.__cotan_primitive__ = prim
        self._transposes = {}

    def _impl(self, *args):
        return self.fun(*args)

    def defjvp(self, jvp_fn):
        """Set the JVP: `jvp_fn(primals, tangents) -> (primal_out, tangent_out)`."""
        self.jvp = jvp_fn
        return jvp_fn

    def __call__(self, *args):
        return self.fun(*args)

    def _need_rule(self):
        if self.jvp is None:
            raise CotanError(f"custom_jvp function {_fname(self.fun)} has no JVP rule; "
                             "define one with @f.defjvp")

    def _split(self, args, what):
        n = len(args)
        for i in self.nondiff_argnums:
            if not -n <= i < n:
                raise CotanError(f"custom_jvp {_fname(self.fun)}: nondiff_argnums="
                                 f"{self.nondiff_argnums} but it is called with {n} arguments")
        nd = {i % n for i in self.nondiff_argnums}
        return [i for i in range(n) if i in nd], [i for i in range(n) if i not in nd]

    def _rule(self, ctx, z, args, keywords):
        import gast
        self._need_rule()
        if keywords:
            raise CotanError(f"custom_jvp function {_fname(self.fun)} called with keyword "
                             f"arguments {sorted(keywords)}; pass its arguments positionally")
        nondiff, diff = self._split(args, "jvp")
        tangents = [ctx.tangent(args[i]) for i in diff]
        if all(ctx.is_zero(t) for t in tangents):
            return None
        fn = ctx.capture(self.jvp, getattr(self.jvp, "__name__", "custom_jvp_rule"))
        call = gast.Call(func=fn, args=[args[i] for i in nondiff] + [
            gast.Tuple(elts=[args[i] for i in diff], ctx=gast.Load()),
            gast.Tuple(elts=[ctx.materialize(t) for t in tangents], ctx=gast.Load())],
            keywords=[])
        return gast.Subscript(value=call, slice=gast.Constant(value=1, kind=None),
                              ctx=gast.Load())

    def _vjp_rule(self, ctx, g, args, kwargs):
        self._need_rule()
        if kwargs:
            raise CotanError(f"grad of custom_jvp function {_fname(self.fun)}: called with "
                             f"keyword arguments {sorted(kwargs)}; pass them positionally")
        nondiff, diff = self._split(args, "vjp")
        prim = self._transpose(len(args), tuple(nondiff))
        cts = ctx.call(prim.name, list(args) + [g])
        for k, i in enumerate(diff):
            ctx.contribute(args[i], ctx.call("getitem", [cts, gast_const(k)]))

    def _transpose(self, n, nondiff):
        """The checkpoint primitive `T(*args, g)`: the cotangents of the
        differentiable arguments, the VJP of the custom tangent map
        `t -> jvp(primals, t)[1]` (linear in `t`, so evaluated at t = 0)."""
        key = (n, nondiff)
        got = self._transposes.get(key)
        if got is not None:
            return got
        rev = _reverse()
        diff = [i for i in range(n) if i not in nondiff]
        xs = [f"x{i}" for i in range(n)]
        ts = [f"t{i}" for i in diff]
        pre = "".join(f"{xs[i]}, " for i in nondiff)
        tangent_map = _exec_source(
            f"def tangent_map_{_ident(_fname(self.fun))}({', '.join(xs + ts)}):\n"
            f"    return jvp_rule({pre}({''.join(xs[i] + ', ' for i in diff)}), "
            f"({''.join(t + ', ' for t in ts)}))[1]\n",
            f"custom_jvp tangent map of {_fname(self.fun)}", {"jvp_rule": self.jvp})
        vjp_map = rev._transform(tangent_map, tuple(range(n + len(ts))), "vjp", False)
        zeros = ", ".join(f"zeros_like({xs[i]})" for i in diff)
        picks = "".join(f"r[1][{n + k}], " for k in range(len(ts)))
        transpose = _exec_source(
            f"def transpose_{_ident(_fname(self.fun))}({', '.join(xs)}, g):\n"
            f"    r = vjp_map({', '.join(xs)}, {zeros}, g)\n"
            f"    return ({picks})\n",
            f"custom_jvp transpose of {_fname(self.fun)}",
            {"vjp_map": vjp_map, "zeros_like": np.zeros_like})
        # a checkpoint primitive (named so): its VJP, JVP and batching rules
        # come with it, and jit expands it into the transpose's code
        name = f"checkpoint_{self.__cotan_primitive__.name}_transpose_{n}" + "".join(
            f"_{i}" for i in nondiff)
        got = self._transposes[key] = rev._checkpoint_primitive(name, transpose, n + 1)
        return got


def gast_const(v):
    import gast
    return gast.Constant(value=v, kind=None)
