"""Transformations inside transformed code.

Owns the markers that let the normalizer apply a transformation while it
reads user code: `cotan.grad(f)(x)` inside a function being transformed is
applied at once (`__cotan_static__`: all its arguments are known then) and
the generated gradient is inlined; `cotan.jvp(f, (x,), (v,))` names the
generated JVP function and how the call's arguments map onto it
(`__cotan_inline__`).  This is what makes reverse-over-forward and
forward-over-reverse Hessian-vector products plain code.  Must not
transform anything itself.
"""

from .autodiff.forward import jvp_function


def _mark_static(*fns):
    for f in fns:
        if f is not None:
            f.__cotan_static__ = True


def _jvp_inline(fun, groups, has_aux=False):
    if has_aux or len(groups) != 2 or len(groups[0]) != len(groups[1]):
        from .errors import CotanError
        raise CotanError("cotan.jvp inside transformed code takes (fun, (x, ...), (v, ...)) "
                         "with one tangent per primal and no has_aux")
    primals, tangents = groups
    return jvp_function(fun), list(primals) + list(tangents)


def install(api):
    """Mark the public transformations in module `api`."""
    _mark_static(getattr(api, "grad", None), getattr(api, "value_and_grad", None),
                 getattr(api, "vmap", None), getattr(api, "jit", None),
                 getattr(api, "jacfwd", None), getattr(api, "jacrev", None),
                 getattr(api, "hessian", None))
    jvp = getattr(api, "jvp", None)
    if jvp is not None:
        jvp.__cotan_inline__ = _jvp_inline
