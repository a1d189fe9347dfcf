"""The public reverse-mode API: `grad`, `value_and_grad`, `vjp`,
`custom_vjp`, `checkpoint` (and `stop_gradient`, re-exported).

Owns argument checking and the wrappers; the transformation itself is
`autodiff/reverse.py`.  `grad(f)` returns an ordinary generated function
(its source is what `cotan.source` shows), so it composes with every other
transformation, itself included.  Must not transform code itself.
"""

import itertools

from .autodiff.materialize import materialize
from .autodiff.normalize import normalize_function
from .autodiff.parse import unwrap
from .autodiff.reverse import reverse_function, vjp_functions
from .errors import CotanError, NonDifferentiableError
from .runtime.table import Primitive, PRIMITIVES
from .runtime.adjoint_helpers import stop_gradient  # noqa: F401
from . import tree_util

_cache = {}


def _name(fun):
    return getattr(fun, "__qualname__", None) or getattr(fun, "__name__", repr(fun))


def _check_argnums(fun, argnums):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums or not all(isinstance(i, int) for i in nums):
        raise CotanError(f"argnums of grad({_name(fun)}) must be an int or a non-empty "
                         f"tuple of ints, got {argnums!r}")
    core = normalize_function(fun)
    n = len(core.params)
    for i in nums:
        if not -n <= i < n:
            raise CotanError(f"argnums={argnums!r} but {_name(fun)} takes {n} "
                             f"positional argument{'s' if n != 1 else ''}")
    nums = tuple(i % n for i in nums)
    return core, nums[0] if isinstance(argnums, int) else nums


def _transform(fun, argnums, kind, has_aux):
    fun = unwrap(fun)
    key = (fun, getattr(fun, "__code__", None), argnums, kind, has_aux)
    got = _cache.get(key)
    if got is None:
        core, nums = _check_argnums(fun, argnums)
        rcore = reverse_function(core, nums, kind, has_aux, what=_name(fun))
        got = materialize(rcore, kind)
        _cache[key] = got
    return got


def grad(fun, argnums=0, has_aux=False):
    """The gradient of scalar-valued `fun` with respect to argument(s) `argnums`.

    Like jax.grad: `grad(f)(x)` has the structure of `x` (pytrees of arrays
    included); with a tuple `argnums` it returns a tuple; with `has_aux`
    `fun` returns `(value, aux)` and the result is `(gradient, aux)`.  The
    returned function is generated Python source (see `cotan.source`).
    """
    return _transform(fun, argnums, "grad", has_aux)


def value_and_grad(fun, argnums=0, has_aux=False):
    """Like `grad`, returning `(value, gradient)` (`((value, aux), gradient)`
    with has_aux)."""
    return _transform(fun, argnums, "value_and_grad", has_aux)


def _vjp_pair(fun, has_aux):
    key = (fun, getattr(fun, "__code__", None), "vjp split", has_aux)
    got = _cache.get(key)
    if got is None:
        core = normalize_function(fun)
        fwd, bwd = vjp_functions(core, has_aux, what=_name(fun))
        got = _cache[key] = (materialize(fwd, "vjp forward"), materialize(bwd, "vjp backward"))
    return got


def vjp(fun, *primals, has_aux=False):
    """`(out, vjp_fn)` (plus `aux` with has_aux), as jax.vjp: `vjp_fn(g)`
    returns a tuple of cotangents, one per primal, and may be called
    repeatedly.  The primal runs once, in a generated forward function that
    also returns the residuals; `vjp_fn` runs only the generated backward
    function on them (cotan.source(vjp_fn) shows it)."""
    fun = unwrap(fun)
    for i, p in enumerate(primals):
        PRIMITIVES["check_grad_input"](p, f"primal {i} of vjp({_name(fun)})")
    n = len(normalize_function(fun).params)
    if n != len(primals):
        raise CotanError(f"vjp({_name(fun)}) got {len(primals)} primals but the function "
                         f"takes {n} arguments")
    forward, backward = _vjp_pair(fun, has_aux)
    out, residuals = forward(*primals)
    if has_aux:
        out, aux = out

    def vjp_fn(g):
        return tuple(backward(*residuals, g))
    vjp_fn.__cotan_source__ = lambda: __import__("inspect").getsource(backward)
    if has_aux:
        return out, vjp_fn, aux
    return out, vjp_fn


# -- custom rules -----------------------------------------------------------------

_counter = itertools.count()


def _ident(text):
    return "".join(c if c.isalnum() else "_" for c in text)


class custom_vjp:
    """A function with a hand-written VJP (JAX semantics)::

        @cotan.custom_vjp
        def f(x): ...
        def f_fwd(x): return f(x), residuals
        def f_bwd(residuals, g): return (dx,)
        f.defvjp(f_fwd, f_bwd)

    cotan registers a primitive for `f` (the normalizer finds it through
    `__cotan_primitive__`); grad calls `f_fwd` once, in the primal sweep,
    keeps its residuals like any other primal value, and calls `f_bwd` in
    the adjoint sweep.
    """

    def __init__(self, fun):
        self.fun = fun
        self.__name__ = getattr(fun, "__name__", "custom_vjp")
        self.__qualname__ = getattr(fun, "__qualname__", self.__name__)
        self.__doc__ = getattr(fun, "__doc__", None)
        base = f"custom_{_ident(self.__name__)}_{next(_counter)}"
        self.__cotan_primitive__ = Primitive(base, self._call_fun, abstract_eval=None)
        PRIMITIVES[base] = self.__cotan_primitive__
        self.fwd = self.bwd = None

    def _call_fun(self, *args):
        return self.fun(*args)

    def defvjp(self, fwd, bwd):
        from .autodiff.vjp_rules import builder
        self.fwd, self.bwd = fwd, bwd
        prim = self.__cotan_primitive__
        fwd_name, out_name, bwd_name = prim.name + "_fwd", prim.name + "_out", prim.name + "_bwd"
        PRIMITIVES[fwd_name] = Primitive(fwd_name, lambda *a: tuple(fwd(*a)), differentiable=False)
        PRIMITIVES[bwd_name] = Primitive(bwd_name, lambda res, g: tuple(bwd(res, g)),
                                         differentiable=False)
        # grad runs `y = f(x)` as `pair = f_fwd(x); y = f_out(pair, x)`: fwd
        # is called once, in the primal sweep, and its residuals pair[1] are
        # an ordinary primal value the adjoint sweep reads (saved like any
        # other when a loop overwrites it).  f_out(pair, x) == pair[0]; its
        # VJP calls bwd.
        out = Primitive(out_name, lambda pair, *args: pair[0])
        out.cotan_custom = True     # its value may be a container
        PRIMITIVES[out_name] = out

        @builder
        def rule(ctx, g, z, args, kwargs):
            pair, operands = args[0], args[1:]
            cts = ctx.call(bwd_name, [ctx.call("getitem", [pair, _const(1)]), g])
            for i, a in enumerate(operands):
                ctx.contribute(a, ctx.call("getitem", [cts, _const(i)]))
        out.vjp_rule = rule
        prim.cotan_primal_split = (fwd_name, out_name)
        return self

    def __call__(self, *args):
        return self.fun(*args)


def _const(v):
    import gast
    return gast.Constant(value=v, kind=None)


class _Checkpointed:
    def __init__(self, fun):
        self.fun = fun
        self.__name__ = getattr(fun, "__name__", "checkpoint")
        self.__qualname__ = getattr(fun, "__qualname__", self.__name__)
        self.__doc__ = getattr(fun, "__doc__", None)
        base = f"checkpoint_{_ident(self.__name__)}_{next(_counter)}"
        prim = Primitive(base, fun)
        PRIMITIVES[base] = prim
        self.__cotan_primitive__ = prim
        bwd_name = base + "_vjp"
        n = len(normalize_function(fun).params)

        def recompute_vjp(*args_and_g):
            gen = _transform(fun, tuple(range(n)), "vjp", False)
            return gen(*args_and_g)[1]
        PRIMITIVES[bwd_name] = Primitive(bwd_name, recompute_vjp, differentiable=False)

        from .autodiff.vjp_rules import builder

        @builder
        def rule(ctx, g, z, args, kwargs):
            # the adjoint sweep reruns fun's primal (inside the vjp function)
            cts = ctx.call(bwd_name, list(args) + [g])
            for i, a in enumerate(args):
                ctx.contribute(a, ctx.call("getitem", [cts, _const(i)]))
        prim.vjp_rule = rule

    def __call__(self, *args):
        return self.fun(*args)


def checkpoint(fun):
    """`fun` whose intermediates the gradient does not store: the adjoint
    sweep recomputes `fun`'s primal from its inputs (memory for time)."""
    return _Checkpointed(fun)


__all__ = ["grad", "value_and_grad", "vjp", "custom_vjp", "checkpoint", "stop_gradient"]
_ = tree_util
