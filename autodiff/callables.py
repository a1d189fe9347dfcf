"""Callables and signatures at the boundary of every transformation.

Owns two things:

- `as_function(obj)`: whatever the user hands a transformation, as the
  Python function the normalizer reads.  A `functools.partial`, a bound
  method (`model.loss`, a classmethod through its class), a callable object
  (its `__call__`), a `staticmethod` object, a custom_vjp / custom_jvp /
  checkpoint object, or a primitive becomes a generated function with the
  remaining signature that calls the object (so it runs as the object
  does); for partials and bound methods it carries `__cotan_bound__`,
  which tells parse.py to read the underlying function's own source with the
  bound parameters taken as constants (JAX's semantics: bound values are not
  differentiated).
- `CallSignature`, the user-facing signature of a transformed function
  (positional parameters with their defaults, then keyword-only ones), and
  `present(generated, core)`, which gives a generated function (grad(f),
  vmap(f), ...) that signature back: core form has positional parameters
  only, so `def g(x, alpha=0.5)` and `def h(x, *, s=2.0)` would otherwise
  lose their defaults and keywords across a transformation.

`*args` and `**kwargs` in the transformed function itself are refused by
name: a source transformation needs the number of arguments before the
call (JAX specialises on it when tracing).  Must not normalize or
transform: it only writes small wrapper functions.
"""

import functools
import hashlib
import inspect
import keyword
import types

from ..errors import CotanError, SourceUnavailableError
from .parse import GENERATED_PREFIX, register_source, unwrap

_EMPTY = inspect.Parameter.empty


class CallArgumentError(CotanError, TypeError):
    """A transformation was given fewer values than the function's
    parameters without defaults."""
_POS_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class CallSignature:
    """Positional parameters (name, default or _EMPTY), then keyword-only
    ones; `flat` is their order in core form."""

    def __init__(self, positional, kwonly):
        self.positional = tuple(positional)
        self.kwonly = tuple(kwonly)

    @property
    def flat(self):
        return [n for n, _ in self.positional + self.kwonly]

    @property
    def trivial(self):
        """Plain positional parameters without defaults: nothing to restore."""
        return not self.kwonly and all(d is _EMPTY for _, d in self.positional)

    @property
    def required(self):
        """How many leading positional parameters have no default."""
        k = 0
        for _, d in self.positional:
            if d is not _EMPTY:
                break
            k += 1
        return k

    def describe(self):
        parts = [n if d is _EMPTY else f"{n}={d!r}" for n, d in self.positional]
        if self.kwonly:
            parts.append("*")
            parts += [n if d is _EMPTY else f"{n}={d!r}" for n, d in self.kwonly]
        return "(" + ", ".join(parts) + ")"


def _name(obj):
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)


def signature_of(fn, what=None):
    """The CallSignature of `fn`, refusing `*args` / `**kwargs` by name."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    positional, kwonly = [], []
    for p in sig.parameters.values():
        if p.kind in _POS_KINDS:
            positional.append((p.name, p.default))
        elif p.kind is p.KEYWORD_ONLY:
            kwonly.append((p.name, p.default))
        else:
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise CotanError(
                f"{what or 'a transformation'} of {_name(fn)}: its parameter {star}{p.name} "
                "takes a number of arguments known only at the call, and cotan transforms "
                "a function of fixed parameters. Wrap it with the parameters you pass, e.g. "
                f"`lambda x, y: {getattr(fn, '__name__', 'f')}(x, y)`, or pass a tuple/dict "
                "argument instead")
    return CallSignature(positional, kwonly)


# -- callables as functions -----------------------------------------------------------------

_wrappers = {}


def as_function(obj):
    """`obj` as a Python function whose source the normalizer can read (see
    the module docstring).  Objects cotan cannot read are returned as they
    are: parse_function says why."""
    obj = unwrap(obj)
    if isinstance(obj, types.FunctionType):
        return obj
    if isinstance(obj, staticmethod):
        return as_function(obj.__func__)
    if isinstance(obj, classmethod):
        raise CotanError(f"{_name(obj.__func__)} is a classmethod object taken from the "
                         "class body: transform it through its class (C.method), which binds "
                         "the class")
    if isinstance(obj, functools.partial):
        return _bound_wrapper(obj, *_partial_parts(obj))
    if isinstance(obj, types.MethodType):
        func = unwrap(obj.__func__)
        if not isinstance(func, types.FunctionType):
            return as_function(func)  # e.g. a jit(f) method: its own wrapped function
        first = _first_positional(func, obj)
        return _bound_wrapper(obj, func, {first: obj.__self__}, {},
                              _attribute_values(obj.__self__))
    if hasattr(obj, "__cotan_primitive__"):
        return _calling_wrapper(obj, getattr(obj, "fun", None) or obj)
    from . import resolve
    from ..runtime.table import Primitive
    target = resolve.translate_callable(obj)
    # a primitive itself (vmap(imag_cotangent)) translates to itself and
    # needs its wrapper as much as a NumPy function mapped onto one does
    if target is not None and (target is not obj or isinstance(target, Primitive)):
        if isinstance(target, types.FunctionType):
            return target
        return _primitive_wrapper(target)
    if type(obj).__module__.split(".")[0] == "cotan":
        return obj      # cotan's own objects say through __cotan_wrapped__ what they are
    call = getattr(type(obj), "__call__", None)
    if isinstance(call, types.FunctionType) and not isinstance(obj, type):
        return as_function(types.MethodType(call, obj))
    return obj


def callee_function(obj, nargs, kwnames):
    """The function to inline for a call of `obj` inside transformed code
    (a bound method, partial, callable object, or a transformation of a
    function with *args, specialised to the call), or None."""
    if isinstance(obj, PerArity):
        return unwrap(obj.specialize(nargs, tuple(sorted(kwnames))))
    if isinstance(obj, (type, types.BuiltinFunctionType)):
        return None
    fn = as_function(obj)
    return fn if isinstance(fn, types.FunctionType) else None


def _first_positional(func, obj):
    params = [p for p in inspect.signature(func).parameters.values() if p.kind in _POS_KINDS]
    if not params:
        raise CotanError(f"{_name(obj)} is a bound method, but {_name(func)} has no "
                         "positional parameter to bind its object to")
    return params[0].name


def _partial_parts(p):
    """(underlying function, {bound positional parameter: value}, keywords)."""
    func, args, kws = p.func, list(p.args), dict(p.keywords)
    bound = {}
    while isinstance(func, functools.partial):     # partial(partial(f, a), b)
        args = list(func.args) + args
        kws = {**func.keywords, **kws}
        func = func.func
    if isinstance(func, types.MethodType):
        args = [func.__self__] + args
        func = func.__func__
    func = unwrap(func)
    if not isinstance(func, types.FunctionType):
        func = as_function(func)
    if not isinstance(func, types.FunctionType):
        raise SourceUnavailableError(p, f"it is a partial of {_name(func)}, which cotan "
                                     "cannot read")
    names = [q.name for q in inspect.signature(func).parameters.values() if q.kind in _POS_KINDS]
    if len(args) > len(names):
        raise CotanError(f"{_name(p)}: the partial binds {len(args)} positional arguments but "
                         f"{_name(func)} takes {len(names)}")
    for n, v in zip(names, args):
        bound[n] = v
    return func, bound, kws


def _default_names(sig):
    return {n: f"_cotan_default_{k}" for k, (n, d) in
            enumerate(sig.positional + sig.kwonly) if d is not _EMPTY}


def _param_text(sig, names):
    parts = [n if d is _EMPTY else f"{n}={names[n]}" for n, d in sig.positional]
    if sig.kwonly:
        parts.append("*")
        parts += [n if d is _EMPTY else f"{n}={names[n]}" for n, d in sig.kwonly]
    return ", ".join(parts)


def _exec_wrapper(text, label, namespace, fname):
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    filename = f"{GENERATED_PREFIX}{label} {digest}>"
    register_source(filename, text)
    ns = dict(namespace)
    ns["__name__"] = "cotan.generated"
    exec(compile(text, filename, "exec"), ns)
    return ns[fname]


def _ident(text):
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in text).strip("_") or "fn"
    if out[0].isdigit() or keyword.iskeyword(out):
        out = "fn_" + out
    return out


def _call_text(sig):
    return ", ".join([n for n, _ in sig.positional] + [f"{n}={n}" for n, _ in sig.kwonly])


def _wrapper_for(obj, sig, label, extra=None):
    """`def name(<sig>): return _cotan_target(<args>)`, the defaults read
    from the namespace (they may be arrays)."""
    dnames = _default_names(sig)
    fname = _ident(getattr(obj, "__name__", None) or type(obj).__name__)
    text = (f"def {fname}({_param_text(sig, dnames)}):\n"
            f"    return _cotan_target({_call_text(sig)})\n")
    ns = {"_cotan_target": obj}
    for n, d in sig.positional + sig.kwonly:
        if d is not _EMPTY:
            ns[dnames[n]] = d
    fn = _exec_wrapper(text, f"{label} of {_name(obj)}", ns, fname)
    fn.__qualname__ = _name(obj)
    if extra:
        for k, v in extra.items():
            setattr(fn, k, v)
    return fn


def _cached(key, refs, make):
    got = _wrappers.get(key)
    # the key holds ids; the entry keeps the objects alive, so an id is not
    # reused while its entry exists, and `refs` checks it is the same object
    if got is not None and all(a is b for a, b in zip(got[0], refs)):
        return got[1]
    fn = make()
    _wrappers[key] = (refs, fn)
    return fn


def _attribute_values(obj):
    """The object's own attributes, (name, value) pairs: a bound method's
    body reads them as constants when it is transformed, so one that was
    reassigned since needs a new transformation (a shallow check: arrays
    changed in place are read live, attributes of attributes are not
    looked at)."""
    try:
        return tuple(sorted(vars(obj).items(), key=lambda kv: kv[0]))
    except TypeError:
        return ()


def _bound_wrapper(obj, func, bound, keywords, attributes=()):
    """A function with `obj`'s remaining signature; it runs `obj`, and reads
    (for the normalizer) as `func` with `bound` parameters as constants."""
    values = list(bound.values()) + list(keywords.values()) + [v for _, v in attributes]
    key = ("bound", func, func.__code__, tuple(bound), tuple(keywords),
           tuple(k for k, _ in attributes), tuple(id(v) for v in values))

    def make():
        sig = signature_of(obj, "a transformation")
        return _wrapper_for(obj, sig, "bound call", {"__cotan_bound__": (func, dict(bound))})
    return _cached(key, [func] + values, make)


def _calling_wrapper(obj, sig_source):
    """A plain function calling `obj` (a custom_vjp/custom_jvp/checkpoint
    object: the normalizer sees the call and resolves its primitive)."""
    key = ("call", id(obj))

    def make():
        sig = signature_of(sig_source, "a transformation")
        if sig is None:
            raise SourceUnavailableError(obj, "its parameters cannot be read")
        return _wrapper_for(obj, sig, "call")
    return _cached(key, [obj], make)


def _primitive_wrapper(target):
    """A generated `def f_fn(a, b): return f(a, b)` for a primitive (or a
    NumPy function with a cotan counterpart)."""
    key = ("primitive", target.name)

    def make():
        params = [p.name for p in inspect.signature(target.impl).parameters.values()
                  if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty]
        args = ", ".join(params)
        text = f"def {target.name}_fn({args}):\n    return {target.name}({args})\n"
        filename = f"{GENERATED_PREFIX}primitive {target.name}>"
        register_source(filename, text)
        ns = {target.name: target, "__name__": "cotan.generated"}
        exec(compile(text, filename, "exec"), ns)
        return ns[f"{target.name}_fn"]
    return _cached(key, [target], make)


# -- signatures of generated functions ------------------------------------------------------

def present(generated, sig, params=None):
    """`generated` (a transformation's function of the flat parameters
    `params`, default its own) with the user-facing signature `sig`: the
    defaults set on it when the names line up and nothing is keyword-only,
    else a generated wrapper with `sig` calling it."""
    if sig is None or sig.trivial:
        return generated
    try:
        own = [p.name for p in inspect.signature(generated).parameters.values()]
    except (TypeError, ValueError):
        return generated
    if own != sig.flat:
        if len(own) != len(sig.flat):
            return generated
    elif not sig.kwonly:
        defaults = [d for _, d in sig.positional if d is not _EMPTY]
        generated.__defaults__ = tuple(defaults)
        return generated
    key = ("present", id(generated), sig.describe())

    def make():
        dnames = _default_names(sig)
        fname = _ident(getattr(generated, "__name__", "fn"))
        text = (f"def {fname}({_param_text(sig, dnames)}):\n"
                f"    return _cotan_target({', '.join(sig.flat)})\n")
        ns = {"_cotan_target": generated}
        for n, d in sig.positional + sig.kwonly:
            if d is not _EMPTY:
                ns[dnames[n]] = d
        fn = _exec_wrapper(text, f"signature of {_name(generated)}", ns, fname)
        fn.__qualname__ = _name(generated)
        for attr in ("__cotan_source__",):
            if hasattr(generated, attr):
                setattr(fn, attr, getattr(generated, attr))
        return fn
    return _cached(key, [generated], make)


def with_leading(fun, k, what):
    """`fun` as a function of its first `k` positional parameters, the
    others at their defaults (jvp, vjp, linearize and aot take one value per
    parameter they are given; the rest keep their defaults, as in Python)."""
    fun = as_function(fun)
    sig = signature_of(fun, what)
    if sig is None:
        return fun
    pos = sig.positional
    if k >= len(pos) and not sig.kwonly:
        return fun
    if k > len(pos):
        return fun      # the caller reports the count
    missing = [n for n, d in pos[k:] + sig.kwonly if d is _EMPTY]
    if missing:
        n = len(pos) + len(sig.kwonly)
        raise CallArgumentError(
            f"{what} of {_name(fun)}: {_name(fun)}{sig.describe()} takes {n} argument"
            f"{'s' if n != 1 else ''} and got {k}; {', '.join(repr(m) for m in missing)} "
            + ("has" if len(missing) == 1 else "have") + " no default, so pass one value per "
            "parameter")
    key = ("leading", fun, getattr(fun, "__code__", None), k)

    def make():
        names = [n for n, _ in pos[:k]]
        fname = _ident(getattr(fun, "__name__", "fn"))
        text = (f"def {fname}({', '.join(names)}):\n"
                f"    return _cotan_target({', '.join(names)})\n")
        fn = _exec_wrapper(text, f"{k} leading arguments of {_name(fun)}",
                           {"_cotan_target": fun}, fname)
        fn.__qualname__ = _name(fun)
        return fn
    return _cached(key, [fun], make)


# -- closures cotan returns ----------------------------------------------------------------

class Closure:
    """A function cotan returns that closes over values it computed (a vjp
    pullback over its residuals, a linearized JVP): called, `eager` runs
    (with its argument checks); transformations read `__cotan_wrapped__`,
    a generated function with those values as constants, so
    `vmap(vjp_fn)` or `jit(f_jvp)` work like on any other function."""

    def __init__(self, name, eager, generated):
        self.__name__ = self.__qualname__ = name
        self._eager = eager
        self.__cotan_wrapped__ = generated

    def __call__(self, *args, **kwargs):
        return self._eager(*args, **kwargs)

    def __cotan_source__(self):
        return inspect.getsource(self.__cotan_wrapped__)

    def __repr__(self):
        return f"<cotan {self.__name__}>"


def closure_function(name, target, constants, params, passed=None, result=None):
    """A generated `def name(*params): return target(*constants, *passed)`
    (`passed` defaults to the params), the constants in its namespace;
    `result` formats the return expression around the call."""
    cnames = [f"_cotan_c{i}" for i in range(len(constants))]
    fname = _ident(name)
    passed = list(params) if passed is None else list(passed)
    call = f"_cotan_target({', '.join(cnames + passed)})"
    text = (f"def {fname}({', '.join(params)}):\n"
            f"    return {result.format(call) if result else call}\n")
    ns = {"_cotan_target": target}
    ns.update(zip(cnames, constants))
    return _exec_wrapper(text, name, ns, fname)


# -- *args and **kwargs: one function per call's arity ----------------------------------------

def takes_variadic(fun):
    """Whether `fun` takes *args or **kwargs (or is a transformation of such
    a function), so that its parameters are known only at a call."""
    if isinstance(fun, PerArity):
        return True
    try:
        f = as_function(unwrap(fun))
    except CotanError:
        return False
    code = getattr(f, "__code__", None)
    return code is not None and bool(code.co_flags & (inspect.CO_VARARGS |
                                                       inspect.CO_VARKEYWORDS))


def fixed_arity(fun, nargs, kwnames):
    """`fun` (with *args / **kwargs) as a generated function of `nargs`
    positional parameters and the keyword-only parameters `kwnames`: the
    `*args` elements are positional parameters (JAX's argnums counts them)."""
    if isinstance(fun, PerArity):
        return fun.specialize(nargs, kwnames)
    f = as_function(unwrap(fun))
    key = ("arity", f, f.__code__, nargs, kwnames)

    def make():
        sig = inspect.signature(f)
        names, star = [], None
        for p in sig.parameters.values():
            if p.kind in _POS_KINDS:
                names.append(p.name)
            elif p.kind is p.VAR_POSITIONAL:
                star = p.name
        if nargs < len(names):
            params = names[:nargs]
        else:
            if nargs > len(names) and star is None:
                raise TypeError(f"{_name(f)} takes {len(names)} positional arguments but "
                                f"{nargs} were given")
            params = names + [f"{star}_{k}" for k in range(nargs - len(names))]
        taken = set(params)
        kws = [k for k in kwnames]
        for k in kws:
            if k in taken:
                raise TypeError(f"{_name(f)} got multiple values for argument {k!r}")
        fname = _ident(getattr(f, "__name__", "fn"))
        head = ", ".join(params + (["*"] + kws if kws else []))
        call = ", ".join(params + [f"{k}={k}" for k in kws])
        text = f"def {fname}({head}):\n    return _cotan_target({call})\n"
        fn = _exec_wrapper(text, f"{nargs} arguments of {_name(f)}", {"_cotan_target": f}, fname)
        fn.__qualname__ = _name(f)
        return fn
    return _cached(key, [f], make)


class PerArity:
    """What a transformation returns for a function with *args/**kwargs:
    called, it specialises the function to the call's number of positional
    arguments and keyword names (`fixed_arity`), applies the transformation
    to that (once per arity) and calls the result.  Transforming it again
    composes per arity the same way."""

    def __init__(self, fun, transform, label):
        self._fun, self._transform, self.label = fun, transform, label
        self.__name__ = self.__qualname__ = f"{label}({_name(fun)})"
        self._made = {}

    def specialize(self, nargs, kwnames=()):
        key = (nargs, tuple(kwnames))
        got = self._made.get(key)
        if got is None:
            got = self._made[key] = self._transform(fixed_arity(self._fun, nargs, key[1]))
        return got

    def __call__(self, *args, **kwargs):
        return self.specialize(len(args), tuple(sorted(kwargs)))(*args, **kwargs)

    def __repr__(self):
        return f"<cotan {self.__name__}, specialised per number of arguments>"
