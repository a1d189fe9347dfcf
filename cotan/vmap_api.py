"""`cotan.vmap`: the public face of batching.

Owns argument checking and the coding of `in_axes` / `out_axes` pytree
prefixes; the transformation itself is `autodiff.batching.batch_function`.
Like every transformation but `jit`, `vmap` returns an ordinary generated
Python function (its source is `cotan.source(vmap(f))`), so `vmap(vmap(f))`,
`vmap(grad(f))`, `grad(vmap(f))` and `jit(vmap(f))` compose by parsing it.
"""

from .errors import ShapeError
from .autodiff import callables
# derivatives of vmap's helper primitives, so grad/jvp of a vmapped function
# (and the rule sweeps) find them from `import cotan` on
from .autodiff import batching_derivatives  # noqa: F401
from .autodiff.transform_lock import serialized

__all__ = ["vmap"]


def _code_axes(spec, what):
    """A pytree prefix of ints/None → the constant code batched code reads."""
    if spec is None:
        return None
    if isinstance(spec, bool):
        raise ShapeError(f"vmap: {what} must be ints, None or pytrees of them, got {spec!r}")
    if isinstance(spec, int):
        return spec
    if isinstance(spec, dict):
        keys = tuple(spec)
        return ("dict", keys, tuple(_code_axes(spec[k], what) for k in keys))
    if isinstance(spec, (tuple, list)):
        kind = "tuple" if isinstance(spec, tuple) else "list"
        return (kind, tuple(_code_axes(s, what) for s in spec))
    try:
        import operator
        return operator.index(spec)
    except TypeError:
        raise ShapeError(f"vmap: {what} must be ints, None or pytrees of them, "
                         f"got {spec!r}") from None


@serialized
def vmap(fun, in_axes=0, out_axes=0, axis_name=None):
    """Vectorise `fun` over a batch axis of its arguments.

    `in_axes`: int, None, or a tuple with one entry per positional
    parameter, each an int, None or a pytree prefix of the argument (e.g. a
    dict of per-leaf axes); negative axes count from the end.  `out_axes`
    likewise for the result.  `axis_name` names the mapped axis for
    collectives: `cotan.lax.psum(x, axis_name)` inside `fun` sums over the
    batch (autodiff/collective_rules.py).

    Returns a generated Python function with the same parameters.  A
    parameter with a default that `in_axes` does not cover (an int in_axes
    covers the parameters without defaults; a tuple, its first entries)
    keeps its default and is not mapped.
    """
    from .autodiff.normalize import normalize_function
    from .autodiff.batching import batch_function
    from .autodiff.materialize import materialize
    if not callable(fun):
        raise TypeError(f"vmap: expected a function, got {type(fun).__name__}")
    if callables.takes_variadic(fun):
        return callables.PerArity(fun, lambda f: vmap(f, in_axes, out_axes, axis_name), "vmap")
    core = normalize_function(fun)
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    sig = core.signature
    if sig is not None and not sig.trivial:
        # parameters with defaults (and keyword-only ones) that in_axes does
        # not cover keep their defaults, unmapped: an int in_axes maps the
        # parameters without a default
        k = len(in_axes) if isinstance(in_axes, tuple) else sig.required
        if k < len(core.params):
            fun = callables.with_leading(fun, k, "vmap")
            core = normalize_function(fun)
    params = core.params
    if isinstance(in_axes, tuple):
        if len(in_axes) != len(params):
            raise ShapeError(
                f"vmap of {core.name!r}: in_axes has {len(in_axes)} entries but the function "
                f"takes {len(params)} positional arguments {tuple(params)}; give one entry "
                "per argument (None for arguments that are not mapped)")
        specs = [_code_axes(a, "in_axes") for a in in_axes]
    elif isinstance(in_axes, dict):
        raise ShapeError(f"vmap of {core.name!r}: a dict in_axes must be wrapped in a tuple "
                         "with one entry per argument, e.g. in_axes=({'w': None, 'b': 0},)")
    else:
        specs = [_code_axes(in_axes, "in_axes")] * len(params)
    out_spec = _code_axes(out_axes, "out_axes")
    if axis_name is not None:
        # collectives over this axis reduce over the batch axis
        from .autodiff.batching import any_batched, spec_to_state
        from .autodiff.collective_rules import bind_vmap_axis
        mapped = [p for p, s in zip(params, specs) if any_batched(spec_to_state(s))]
        if mapped:
            core = bind_vmap_axis(core, axis_name, mapped[0])
    # the same function and axes give the same generated function, made once
    key = (core, repr(specs), repr(out_spec), axis_name)
    fn = _cache.get(key)
    if fn is None:
        batched = batch_function(core, specs, out_spec)
        fn = materialize(batched, "vmap")
        fn.axis_name = axis_name
        fn = callables.present(fn, core.signature)
        _cache[key] = fn
    return fn


_cache = {}
