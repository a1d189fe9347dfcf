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
from .autodiff import callables
from .autodiff.reverse import reverse_function, vjp_functions
from .errors import CotanError, NonDifferentiableError
from .runtime.table import Primitive, PRIMITIVES
from .runtime.adjoint_helpers import stop_gradient  # noqa: F401
from . import tree_util
from .autodiff.transform_lock import serialized

_cache = {}


def _name(fun):
    return getattr(fun, "__qualname__", None) or getattr(fun, "__name__", repr(fun))


def _check_argnums(fun, argnums, what="grad"):
    single = isinstance(argnums, int) and not isinstance(argnums, bool)
    try:
        nums = (argnums,) if single else tuple(argnums)
    except TypeError:
        nums = None
    if not nums or not all(isinstance(i, int) and not isinstance(i, bool) for i in nums):
        raise CotanError(f"argnums of {what}({_name(fun)}) must be an int or a non-empty "
                         f"tuple of ints (positions of positional parameters), got "
                         f"{argnums!r}")
    core = normalize_function(fun)
    n = len(core.params)
    sig = core.signature
    npos = len(sig.positional) if sig is not None else n
    for i in nums:
        if not -npos <= i < npos:
            raise CotanError(f"argnums={argnums!r} but {_name(fun)} takes {npos} "
                             f"positional argument{'s' if npos != 1 else ''}"
                             + (f" {tuple(core.params[:npos])}" if npos else "")
                             + "; argnums counts positional parameters from 0")
    nums = tuple(i % npos for i in nums)
    return core, nums[0] if single else nums


def argnames_to_argnums(fun, argnames, what):
    """JAX's `argnames=`: the positions of the named parameters (a str
    gives an int, as for argnums)."""
    core = normalize_function(fun)
    sig = core.signature
    names = sig.flat if sig is not None else list(core.params)
    npos = len(sig.positional) if sig is not None else len(names)
    single = isinstance(argnames, str)
    given = (argnames,) if single else tuple(argnames)
    out = []
    for a in given:
        if not isinstance(a, str) or a not in names[:npos]:
            raise CotanError(f"argnames={argnames!r} of {what}({_name(fun)}): {a!r} is not a "
                             f"positional parameter of {_name(fun)} {tuple(names[:npos])}")
        out.append(names.index(a))
    return out[0] if single else tuple(out)


def _resolve_argnums(fun, argnums, argnames, what):
    if argnames is None:
        return argnums
    if argnums not in (0, None):
        raise CotanError(f"{what}({_name(fun)}): pass argnums or argnames, not both")
    return argnames_to_argnums(fun, argnames, what)


@serialized
def _transform(fun, argnums, kind, has_aux, holomorphic=False):
    # keyed on the function cotan reads: a bound method's wrapper changes
    # when its object's attributes were reassigned (callables.as_function)
    fun = callables.as_function(unwrap(fun))
    key = (fun, getattr(fun, "__code__", None), argnums, kind, has_aux, bool(holomorphic))
    got = _cache.get(key)
    if got is None:
        core, nums = _check_argnums(fun, argnums, kind)
        rcore = reverse_function(core, nums, kind, has_aux, what=_name(fun),
                                 holomorphic=bool(holomorphic))
        got = materialize(rcore, kind)
        if kind != "vjp":
            got = callables.present(got, core.signature)
        _cache[key] = got
    return got


def grad(fun, argnums=0, has_aux=False, holomorphic=False, argnames=None):
    """The gradient of scalar-valued `fun` with respect to argument(s) `argnums`.

    Like jax.grad: `grad(f)(x)` has the structure of `x` (pytrees of arrays
    included); with a tuple `argnums` it returns a tuple; with `has_aux`
    `fun` returns `(value, aux)` and the result is `(gradient, aux)`.  The
    returned function is generated Python source (see `cotan.source`).

    Complex numbers follow JAX: for a real-valued `fun` of a complex z = x + iy
    the gradient is df/dx - i df/dy; a complex output is refused unless
    `holomorphic=True` (then inputs and output must be complex and the
    result is the complex derivative f'(z)).  `argnames` names the
    parameters instead of `argnums` (a str or a tuple of them, as in JAX).
    Defaults and keyword-only parameters of `fun` carry over to the gradient.
    """
    if callables.takes_variadic(fun):
        return callables.PerArity(fun, lambda f: grad(f, argnums, has_aux, holomorphic,
                                                      argnames), "grad")
    argnums = _resolve_argnums(fun, argnums, argnames, "grad")
    return _transform(fun, argnums, "grad", has_aux, holomorphic)


def value_and_grad(fun, argnums=0, has_aux=False, holomorphic=False, argnames=None):
    """Like `grad`, returning `(value, gradient)` (`((value, aux), gradient)`
    with has_aux)."""
    if callables.takes_variadic(fun):
        return callables.PerArity(fun, lambda f: value_and_grad(f, argnums, has_aux, holomorphic,
                                                                argnames), "value_and_grad")
    argnums = _resolve_argnums(fun, argnums, argnames, "value_and_grad")
    return _transform(fun, argnums, "value_and_grad", has_aux, holomorphic)


@serialized
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
    if callables.takes_variadic(fun):
        fun = callables.fixed_arity(fun, len(primals), ())
    fun = callables.with_leading(unwrap(fun), len(primals), "vjp")
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

    def eager(g):
        return tuple(backward(*residuals, g))
    vjp_fn = callables.Closure(f"vjp_fn of {_name(fun)}", eager, callables.closure_function(
        f"pullback of {_name(fun)}", backward, residuals, ["g"]))
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
    the adjoint sweep.  With `nondiff_argnums` (JAX's meaning), `f_fwd`
    takes every argument, `f_bwd(*nondiff, residuals, g)` gets those
    arguments first and returns cotangents of the others only.
    """

    def __init__(self, fun, nondiff_argnums=()):
        if isinstance(nondiff_argnums, int):
            nondiff_argnums = (nondiff_argnums,)
        self.nondiff_argnums = tuple(sorted(set(nondiff_argnums)))
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
        PRIMITIVES[bwd_name] = Primitive(bwd_name, lambda *a: tuple(bwd(*a)),
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
            n = len(operands)
            for i in self.nondiff_argnums:
                if not -n <= i < n:
                    raise CotanError(f"custom_vjp {self.__qualname__}: nondiff_argnums="
                                     f"{self.nondiff_argnums} but it is called with {n} "
                                     "arguments")
            nd = {i % n for i in self.nondiff_argnums}
            fixed = [a for i, a in enumerate(operands) if i in nd]
            cts = ctx.call(bwd_name, fixed + [ctx.call("getitem", [pair, _const(1)]), g])
            for k, a in enumerate(a for i, a in enumerate(operands) if i not in nd):
                ctx.contribute(a, ctx.call("getitem", [cts, _const(k)]))
        out.vjp_rule = rule
        prim.cotan_primal_split = (fwd_name, out_name)
        return self

    def __call__(self, *args):
        return self.fun(*args)


def _const(v):
    import gast
    return gast.Constant(value=v, kind=None)


class _Cotangents:
    """The cotangent function of a checkpointed function F of n arguments:
    `(*args, g) -> (dargs...)`, reverse mode's generated VJP of F without
    its output, made on first use.  `__cotan_wrapped__` is that generated
    function, so the transformations (and jit's checkpoint expansion) see
    through this object like through any generated function; that is what
    makes the VJP of a checkpoint itself differentiable."""

    def __init__(self, fun, n):
        self.fun, self.n = fun, n
        self.__name__ = "cotangents_" + _ident(getattr(fun, "__name__", "checkpointed"))
        self.__qualname__ = self.__name__
        self._generated = None

    @property
    def __cotan_wrapped__(self):
        if self._generated is None:
            self._generated = _cotangent_function(self.fun, self.n, self.__name__)
        return self._generated

    def __call__(self, *args):
        return self.__cotan_wrapped__(*args)


def _cotangent_function(fun, n, name):
    import gast
    from .autodiff.templates import build_function
    vjp_fn = _transform(fun, tuple(range(n)), "vjp", False)
    params = normalize_function(vjp_fn).params
    call = gast.Call(func=gast.Name(id="vjp_fn", ctx=gast.Load(), annotation=None,
                                    type_comment=None),
                     args=[gast.Name(id=p, ctx=gast.Load(), annotation=None, type_comment=None)
                           for p in params], keywords=[])
    body = [gast.Return(value=gast.Subscript(value=call, slice=_const(1), ctx=gast.Load()))]
    fdef = gast.FunctionDef(
        name=name, args=gast.arguments(
            args=[gast.Name(id=p, ctx=gast.Param(), annotation=None, type_comment=None)
                  for p in params],
            posonlyargs=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
        body=body, decorator_list=[], returns=None, type_comment=None, type_params=[])
    namespace = dict(PRIMITIVES)
    namespace["vjp_fn"] = vjp_fn
    core = build_function(fdef, namespace, "checkpoint cotangents", _name(fun))
    return materialize(core, "checkpoint cotangents")


def _checkpoint_primitive(name, fun, n, with_vjp=True):
    """Register `name` as a checkpoint primitive for `fun` (n positional
    arguments), with its rules:

    - vjp: the adjoint sweep calls `<name>_vjp(*args, g)`, itself a checkpoint
      primitive (of `_Cotangents(fun)`), so the gradient of a gradient
      differentiates the recomputation instead of taking it as a constant;
      it is registered when first needed (eagerly with `with_vjp`: jit's
      expansion, codegen/expand_checkpoints.py, recognises a checkpoint
      primitive by its `_vjp` partner);
    - jvp: forward mode stores nothing, so the tangent is the generated JVP
      of `fun`, inlined;
    - batching: another checkpoint primitive, of `vmap(fun)` with the
      arguments' batching as in_axes.
    """
    got = PRIMITIVES.get(name)
    if got is not None:
        return got
    prim = Primitive(name, fun)
    PRIMITIVES[name] = prim
    vjp_name = name + "_vjp"
    from .autodiff.vjp_rules import builder

    @builder
    def vjp_rule(ctx, g, z, args, kwargs):
        _positional_only(name, kwargs, "grad")
        _checkpoint_primitive(vjp_name, _Cotangents(fun, n), n + 1, with_vjp=False)
        # the adjoint sweep reruns fun's primal (inside the vjp function)
        cts = ctx.call(vjp_name, list(args) + [g])
        for i, a in enumerate(args):
            ctx.contribute(a, ctx.call("getitem", [cts, _const(i)]))
    prim.vjp_rule = vjp_rule

    def jvp_rule(ctx, z, args, keywords):
        import gast
        from .autodiff.forward import jvp_function
        _positional_only(name, keywords, "jvp")
        tangents = [ctx.tangent(a) for a in args]
        active = tuple(i for i, t in enumerate(tangents) if not ctx.is_zero(t))
        if not active:
            return None
        fn = ctx.capture(jvp_function(fun, active), "jvp_" + _ident(_name(fun)))
        call = gast.Call(func=fn, args=list(args) + [ctx.materialize(tangents[i])
                                                     for i in active], keywords=[])
        return gast.Subscript(value=call, slice=_const(1), ctx=gast.Load())
    jvp_rule.cotan_builder = True
    jvp_rule.cotan_widen = False
    prim.jvp_rule = jvp_rule

    def batch_rule(c):
        from .autodiff.batching import Call, is_tree_state
        from .vmap_api import vmap
        _positional_only(name, c.kwargs, "vmap")
        flags = [c.batched(i) for i in range(len(c.args))]
        args = [c.promoted(i) if is_tree_state(c.states[i]) else a
                for i, a in enumerate(c.args)]
        batched_name = name + "_vmap_" + "".join("b" if f else "u" for f in flags)
        batched = vmap(fun, in_axes=tuple(0 if f else None for f in flags))
        _checkpoint_primitive(batched_name, batched, n)
        c.assign(Call(batched_name, args))
        return True
    prim.batch_rule = batch_rule
    if with_vjp:
        _checkpoint_primitive(vjp_name, _Cotangents(fun, n), n + 1, with_vjp=False)
    return prim


def _positional_only(name, kwargs, what):
    if kwargs:
        raise CotanError(f"{what} of checkpointed function {name!r}: called with keyword "
                         f"argument(s) {sorted(kwargs)}; pass its arguments positionally")


class _Checkpointed:
    def __init__(self, fun):
        self.fun = fun
        self.__name__ = getattr(fun, "__name__", "checkpoint")
        self.__qualname__ = getattr(fun, "__qualname__", self.__name__)
        self.__doc__ = getattr(fun, "__doc__", None)
        base = f"checkpoint_{_ident(self.__name__)}_{next(_counter)}"
        n = len(normalize_function(fun).params)
        self.__cotan_primitive__ = _checkpoint_primitive(base, fun, n)

    def __call__(self, *args):
        return self.fun(*args)


def checkpoint(fun):
    """`fun` whose intermediates the gradient does not store: the adjoint
    sweep recomputes `fun`'s primal from its inputs (memory for time)."""
    return _Checkpointed(fun)


__all__ = ["grad", "value_and_grad", "vjp", "custom_vjp", "checkpoint", "stop_gradient"]
_ = tree_util
