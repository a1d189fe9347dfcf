"""`cotan.jit`: the public face of compilation.

Owns the decorator (`@jit`, `@jit(static_argnums=...)`, `jit(f)`) and the
checking of a call against the function's signature before dispatch: too
many or too few arguments, unknown keywords and static_argnums /
static_argnames that name no parameter are errors naming the function and
the parameter, and defaults fill the parameters a call leaves out (a float
default is a traced argument unless static_argnames names it, as in JAX).
The work lives in runtime/dispatch.py (signatures, caches, calls) and
codegen/ (inference, planning, LLVM).  The returned object carries
`__cotan_wrapped__ = f` so other transformations see through it.
"""

import inspect

from .errors import CotanError, ShapeError, TypeInferenceError
from .runtime import dispatch
from .runtime.dispatch import JitFunction


def _name(fun):
    return getattr(fun, "__qualname__", None) or getattr(fun, "__name__", None) or repr(fun)


def _parameters(fun):
    """The signature's parameters (None when it has none to read, or when
    it takes *args/**kwargs, which the normalizer refuses by name)."""
    try:
        sig = inspect.signature(fun)
    except (TypeError, ValueError):
        return None, None
    kinds = {p.kind for p in sig.parameters.values()}
    if inspect.Parameter.VAR_POSITIONAL in kinds or inspect.Parameter.VAR_KEYWORD in kinds:
        return None, None
    return sig, list(sig.parameters)


def _checked_static(fun, names, static_argnums, static_argnames):
    if isinstance(static_argnums, int) and not isinstance(static_argnums, bool):
        static_argnums = (static_argnums,)
    if isinstance(static_argnames, str):
        static_argnames = (static_argnames,)
    try:
        nums = tuple(static_argnums)
    except TypeError:
        nums = None
    if nums is None or not all(isinstance(i, int) and not isinstance(i, bool) for i in nums):
        raise CotanError(f"static_argnums of jit({_name(fun)}) must be an int or a tuple of "
                         f"ints, got {static_argnums!r}")
    argnames = tuple(static_argnames)
    if names is None:
        return nums, argnames
    n = len(names)
    for i in nums:
        if not -n <= i < n:
            raise CotanError(f"static_argnums={static_argnums!r} of jit({_name(fun)}): "
                             f"{_name(fun)} takes {n} argument{'s' if n != 1 else ''} "
                             f"{tuple(names)}, so there is no argument {i}")
    for a in argnames:
        if a not in names:
            raise CotanError(f"static_argnames={static_argnames!r} of jit({_name(fun)}): "
                             f"{_name(fun)} has no parameter {a!r}; its parameters are "
                             f"{tuple(names)}")
    return tuple(i % n for i in nums), argnames


def _hint_static_ints(jf, args, error):
    """A compile that failed while Python ints were traced arguments: the
    message says which to mark static (a shape, a size or a count is known
    before the call only if it is static, as in JAX)."""
    if getattr(error, "_cotan_static_hint", False):
        return
    sig = jf._bind_sig
    names = list(sig.parameters) if sig is not None else [str(i) for i in range(len(args))]
    ints = [(i, names[i] if i < len(names) else str(i)) for i, a in enumerate(args)
            if type(a) is int and i not in jf._static]
    if not ints:
        return
    which = ", ".join(f"{n!r}" for _, n in ints)
    nums = tuple(i for i, _ in ints)
    hint = (f"\n(jit({_name(jf._fun)}) traced the Python int argument(s) {which} as run-time "
            "values; if one is a shape, size or count, mark it static: "
            f"jit({_name(jf._fun)}, static_argnums={nums[0] if len(nums) == 1 else nums})")
    error.args = ((str(error.args[0]) if error.args else "") + hint,) + tuple(error.args[1:])
    error._cotan_static_hint = True


class _CheckedJit(JitFunction):
    """JitFunction whose slow path (every call the native dispatcher does
    not take: first calls, keywords, statics) binds the call to the
    function's signature first."""

    def __init__(self, fun, static_argnums, static_argnames, backend):
        # the signature of the function cotan reads: for a NumPy function
        # (jit(np.max)) its cotan counterpart's, whose defaults are values
        # (NumPy's own are `_NoValue` sentinels no compiled call can take)
        from .autodiff import callables
        from .autodiff.parse import unwrap
        try:
            read = callables.as_function(unwrap(fun))
        except Exception:
            read = fun
        sig, names = _parameters(read if callable(read) else fun)
        static_argnums, static_argnames = _checked_static(fun, names, static_argnums,
                                                          static_argnames)
        JitFunction.__init__(self, fun, static_argnums, static_argnames, backend)
        self._bind_sig = sig

    def _bound(self, args, kwargs):
        sig = self._bind_sig
        if sig is None:
            return args, kwargs
        try:
            ba = sig.bind(*args, **kwargs)
        except TypeError as e:
            params = tuple(sig.parameters)
            npos = sum(1 for p in sig.parameters.values()
                       if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
            if len(args) > npos:
                detail = (f"takes {npos} positional argument{'s' if npos != 1 else ''} "
                          f"{params[:npos]} but {len(args)} were given")
            else:
                detail = str(e).replace("missing a required argument:",
                                        "is missing the argument")
            raise TypeError(f"jit({_name(self._fun)}) {detail}; call it as "
                            f"{_name(self._fun)}{sig}") from None
        ba.apply_defaults()
        return tuple(ba.arguments.values()), {}

    def _call_slow(self, *args, **kwargs):
        args, kwargs = self._bound(args, kwargs)
        try:
            return JitFunction._call_slow(self, *args, **kwargs)
        except (ShapeError, TypeInferenceError) as e:
            _hint_static_ints(self, args, e)
            raise


    if dispatch._FAST is None:
        __call__ = _call_slow

    def lower(self, *args, **kwargs):
        args, kwargs = self._bound(args, kwargs)
        return JitFunction.lower(self, *args, **kwargs)

    def __get__(self, obj, objtype=None):
        """`@jit` on a method: `obj.method` is the jit of the bound method,
        the object's attributes compiled in as constants (as for
        `jit(obj.method)`); a reassigned attribute compiles anew."""
        if obj is None:
            return self
        import types
        from .autodiff import callables
        fn = callables.as_function(types.MethodType(self._fun, obj))
        if not isinstance(fn, types.FunctionType):
            return JitFunction.__get__(self, obj, objtype)
        per_object = self.__dict__.setdefault("_methods", {})
        got = per_object.get(id(obj))
        if got is None or got[0] is not obj or got[1] is not fn:
            nums = tuple(i - 1 for i in self._static if i > 0)
            got = per_object[id(obj)] = (obj, fn, _CheckedJit(fn, nums, (), self._backend))
        return got[2]


def jit(fun=None, *, static_argnums=(), static_argnames=(), backend="cpu", device=None,
        device_arrays=False):
    """Compile `fun` to native code, once per call signature.

    `jit(f)(*args)` infers every value's dtype and shape for the arguments'
    signature (pytree structure, dtypes, shapes, static values), compiles
    the whole function to one native function and caches it; later calls
    with the same signature run the native code directly.  `static_argnums`
    / `static_argnames` name arguments whose values are baked in (hashable
    Python values such as sizes or flags).  `jit(f).lower(*args)` returns
    the stages: `.as_text("python" | "typed" | "llvm" | "asm")`.
    `backend="xla"` (or an xla `device=`) compiles to StableHLO and runs it
    through jaxlib's PJRT client (runtime/xla_dispatch.py).
    """
    if fun is None:
        return lambda f: jit(f, static_argnums=static_argnums, static_argnames=static_argnames,
                             backend=backend, device=device, device_arrays=device_arrays)
    # -- xla backend: its own dispatch, keyed by device --
    if backend == "xla" or getattr(device, "backend", None) == "xla":
        from .runtime.xla_dispatch import XlaJitFunction
        return XlaJitFunction(fun, static_argnums, static_argnames, device, device_arrays)
    from .autodiff import callables
    if callables.takes_variadic(fun):
        # one compiled function per number of arguments (static_argnums
        # count the call's positional arguments)
        return callables.PerArity(fun, lambda f: _CheckedJit(f, static_argnums,
                                                             static_argnames, backend), "jit")
    return _CheckedJit(fun, static_argnums, static_argnames, backend)
