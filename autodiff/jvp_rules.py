"""JVP rules: the tangent of every differentiable primitive, as templates.

Owns one rule per differentiable primitive, attached to the table's
`jvp_rule` slot by name.  A rule is a Tangent-style template: its first
parameter is the primitive's output, the others its arguments (keyword-only
parameters mirror the primitive's keywords, with the same defaults; a call
that passes one by position, as `cotan.numpy` compositions do, binds it by
the implementation's signature: `Primitive.bind_extra`), and `d[x]` stands
for "the tangent of x":

    @jvp("multiply")
    def _(z, x, y):
        d[z] = d[x] * y + x * d[y]

`autodiff/forward.py` splices the body into generated code, replacing each
`d[x]` whose tangent is known to be zero by a symbolic zero and simplifying
(`0 * y` -> gone, `a + 0` -> `a`), so `y = x * 3.0` gets the one statement
`dy = dx * 3.0`.  Names a body assigns other than `d[z]` are renamed fresh.
Rules marked `widen=True` are sums of their arguments' tangents, so when
only some arguments have tangents the result is broadcast to the output's
shape.  Where a template cannot say it (variadic containers, einsum's
product rule) a rule is a *builder* (`builder=True`): a Python function
`builder(ctx, z, args, keywords)` returning the tangent's expression.

Helper functions below (`_eigh_tangent`, ...) are plain NumPy Python that
the generated code inlines, like any user helper.  Must not hold VJP or
batching rules and must not emit code itself.
"""

import gast
import numpy as np

from ..runtime.table import PRIMITIVES
from ..runtime import forward_support  # noqa: F401  (tangent_zeros is emitted)

# `d[x]` in rule bodies; never evaluated (the body is spliced, not run)
d = None


from .rule_registry import jvp  # noqa: E402


# -- arithmetic ------------------------------------------------------------------

@jvp("add", widen=True)
def _(z, x, y):
    d[z] = d[x] + d[y]


@jvp("subtract", widen=True)
def _(z, x, y):
    d[z] = d[x] - d[y]


@jvp("multiply")
def _(z, x, y):
    d[z] = d[x] * y + x * d[y]


@jvp("divide")
def _(z, x, y):
    d[z] = (d[x] - z * d[y]) / y


@jvp("power")
def _(z, x, y):
    d[z] = d[x] * y * power(x, y - 1) + d[y] * z * log(x)


@jvp("negative")
def _(z, x):
    d[z] = -d[x]


@jvp("absolute")
def _(z, x):
    # |z| is real: for complex z the tangent is Re(conj(z / |z|) dz); for
    # real z conj and real are the identity and this is sign(x) dx
    # (unit_phase: sign, differentiable for complex z)
    d[z] = real(d[x] * conj(unit_phase(x)))


@jvp("maximum")
def _(z, x, y):
    d[z] = select(x >= y, d[x], d[y])


@jvp("minimum")
def _(z, x, y):
    d[z] = select(x <= y, d[x], d[y])


@jvp("arctan2")
def _(z, x, y):
    d[z] = (d[x] * y - x * d[y]) / (x * x + y * y)


@jvp("remainder", widen=True)
def _(z, x, y):
    d[z] = d[x] - d[y] * floor_divide(x, y)


@jvp("fmod", widen=True)
def _(z, x, y):
    d[z] = d[x] - d[y] * trunc(x / y)


# -- transcendental ----------------------------------------------------------------

@jvp("sin")
def _(z, x):
    d[z] = d[x] * cos(x)


@jvp("cos")
def _(z, x):
    d[z] = -d[x] * sin(x)


@jvp("tan")
def _(z, x):
    d[z] = d[x] * (1.0 + z * z)


@jvp("arcsin")
def _(z, x):
    d[z] = d[x] / sqrt(1.0 - x * x)


@jvp("arccos")
def _(z, x):
    d[z] = -d[x] / sqrt(1.0 - x * x)


@jvp("arctan")
def _(z, x):
    d[z] = d[x] / (1.0 + x * x)


@jvp("sinh")
def _(z, x):
    d[z] = d[x] * cosh(x)


@jvp("cosh")
def _(z, x):
    d[z] = d[x] * sinh(x)


@jvp("tanh")
def _(z, x):
    d[z] = d[x] * (1.0 - z * z)


@jvp("arcsinh")
def _(z, x):
    d[z] = d[x] / sqrt(x * x + 1.0)


@jvp("arccosh")
def _(z, x):
    d[z] = d[x] / sqrt(x * x - 1.0)


@jvp("arctanh")
def _(z, x):
    d[z] = d[x] / (1.0 - x * x)


@jvp("exp")
def _(z, x):
    d[z] = d[x] * z


@jvp("expm1")
def _(z, x):
    d[z] = d[x] * (z + 1.0)


@jvp("log")
def _(z, x):
    d[z] = d[x] / x


@jvp("log1p")
def _(z, x):
    d[z] = d[x] / (1.0 + x)


@jvp("sqrt")
def _(z, x):
    d[z] = d[x] / (2.0 * z)


# -- selection -------------------------------------------------------------------

@jvp("where")
def _(z, c, x, y):
    d[z] = select(c, d[x], d[y])


@jvp("select")
def _(z, c, x, y):
    d[z] = select(c, d[x], d[y])


# -- reductions and scans -------------------------------------------------------------

@jvp("sum")
def _(z, x, *, axis=None, keepdims=False, dtype=None):
    d[z] = sum(d[x], axis=axis, keepdims=keepdims, dtype=dtype)


@jvp("prod")
def _(z, x, *, axis=None, keepdims=False, dtype=None):
    # d(prod x) = sum(dx * prod x / x): inputs containing zeros give nan
    d[z] = sum(d[x] * expand_reduced(z, shape(x), axis, keepdims) / x,
               axis=axis, keepdims=keepdims, dtype=dtype)


@jvp("max")
def _(z, x, *, axis=None, keepdims=False):
    # ties share the derivative equally, as in JAX
    at_max = equal(x, expand_reduced(z, shape(x), axis, keepdims))
    d[z] = sum(d[x] * at_max, axis=axis, keepdims=keepdims) / sum(
        at_max, axis=axis, keepdims=keepdims)


@jvp("min")
def _(z, x, *, axis=None, keepdims=False):
    at_min = equal(x, expand_reduced(z, shape(x), axis, keepdims))
    d[z] = sum(d[x] * at_min, axis=axis, keepdims=keepdims) / sum(
        at_min, axis=axis, keepdims=keepdims)


@jvp("cumsum")
def _(z, x, *, axis=None, dtype=None):
    d[z] = cumsum(d[x], axis=axis, dtype=dtype)


@jvp("cumprod")
def _(z, x, *, axis=None, dtype=None):
    # d(cumprod x) = cumprod x * cumsum(dx / x): inputs containing zeros give nan
    d[z] = z * cumsum(reshape(d[x] / x, shape(z)), axis=axis)


# -- shape, gather and ordering ------------------------------------------------------------

@jvp("reshape")
def _(z, x, shape):
    d[z] = reshape(d[x], shape)


@jvp("transpose")
def _(z, x, *, axes=None):
    d[z] = transpose(d[x], axes=axes)


@jvp("broadcast_to")
def _(z, x, shape):
    d[z] = broadcast_to(d[x], shape)


@jvp("concatenate")
def _(z, arrays, *, axis=0, dtype=None):
    d[z] = concatenate(d[arrays], axis=axis, dtype=dtype)


@jvp("flip")
def _(z, x, *, axis=None):
    d[z] = flip(d[x], axis=axis)


@jvp("diagonal")
def _(z, x, *, offset=0, axis1=0, axis2=1):
    d[z] = diagonal(d[x], offset=offset, axis1=axis1, axis2=axis2)


@jvp("take")
def _(z, x, indices, *, axis=None):
    d[z] = take(d[x], indices, axis=axis)


@jvp("take_along_axis")
def _(z, x, indices, *, axis=-1):
    d[z] = take_along_axis(d[x], indices, axis=axis)


@jvp("sort")
def _(z, x, *, axis=-1):
    d[z] = take_along_axis(d[x], argsort(x, axis=axis), axis=axis)


# -- creation and conversion -------------------------------------------------------------

def cast_dtype(args, keywords, position):
    """The dtype a cast (`astype`, `array`) converts to, when the call
    fixes it by a constant (normalization writes dtypes as strings), else
    None.  `position` is the dtype's positional index."""
    atom = keywords.get("dtype", args[position] if len(args) > position else None)
    if isinstance(atom, gast.Constant) and isinstance(atom.value, str):
        try:
            return np.dtype(atom.value)
        except TypeError:
            return None
    return None


def carries_derivative(dt):
    """Whether a cast to `dt` (None: unknown or unchanged) has a derivative:
    to an integer or bool dtype it has none (like `floor`)."""
    return dt is None or np.issubdtype(dt, np.inexact)


def _cast_builder(prim, position):
    def build(ctx, z, args, keywords):
        if not carries_derivative(cast_dtype(args, keywords, position)):
            return None     # the output is a constant: its tangent is a float zero
        t = ctx.tangent(args[0])
        if ctx.is_zero(t):
            return None
        return ctx.call(prim, [t] + args[1:], keywords)
    build.__name__ = f"{prim}_jvp"
    return build


# to a float dtype the tangent is cast the same way; to an integer or bool
# dtype the output has no derivative
jvp("array", builder=True)(_cast_builder("array", 1))
jvp("astype", builder=True)(_cast_builder("astype", 1))


@jvp("linspace", builder=True)
def _(ctx, z, args, keywords):
    """linspace is linear in (start, stop) together: the tangent is the
    linspace of their tangents, with the same num, endpoint, retstep, axis."""
    if not carries_derivative(cast_dtype(args, keywords, 5)):
        return None
    ends = [ctx.tangent(a) for a in args[:2]]
    if all(ctx.is_zero(t) for t in ends):
        return None
    return ctx.call("linspace", [ctx.materialize(t) for t in ends] + args[2:], keywords)


@jvp("copy")
def _(z, x):
    d[z] = copy(d[x])


# -- contractions and linear algebra --------------------------------------------------------

@jvp("matmul")
def _(z, x, y):
    d[z] = matmul(d[x], y) + matmul(x, d[y])


@jvp("dot")
def _(z, x, y):
    d[z] = dot(d[x], y) + dot(x, d[y])


@jvp("einsum", builder=True)
def _(ctx, z, args, keywords):
    """Product rule: one einsum per operand with a tangent.  Every position
    is an operand candidate: in the sublist form (`einsum(a, [0, 1], b,
    [1, 2])`) the first argument is an operand, and subscripts (strings,
    label lists) never have tangents."""
    total = None
    for i, op in enumerate(args):
        t = ctx.tangent(op)
        if ctx.is_zero(t):
            continue
        term = ctx.call("einsum", args[:i] + [t] + args[i + 1:], keywords)
        total = term if total is None else gast.BinOp(left=total, op=gast.Add(), right=term)
    return total


@jvp("inv")
def _(z, a):
    d[z] = -matmul(matmul(z, d[a]), z)


@jvp("solve")
def _(z, a, b):
    d[z] = solve(a, d[b] - matmul(d[a], z))


@jvp("det")
def _(z, a):
    d[z] = z * _trace_last(solve(a, d[a]))


@jvp("slogdet")
def _(z, a):
    d[z] = (tangent_zeros(z[0]), _trace_last(solve(a, d[a])))


@jvp("cholesky")
def _(z, a):
    d[z] = _cholesky_tangent(z, d[a])


@jvp("eigh")
def _(z, a, *, UPLO="L"):
    d[z] = _eigh_tangent(z[0], z[1], d[a])


@jvp("qr")
def _(z, a, *, mode="reduced"):
    d[z] = _qr_tangent(a, z, d[a], mode)


@jvp("svd")
def _(z, a, *, full_matrices=True, compute_uv=True, hermitian=False):
    d[z] = _svd_tangent(a, z, d[a], full_matrices, compute_uv)


# -- structural: indexing and containers -------------------------------------------------

def _getitem_template(z, x, *index):
    d[z] = getitem(d[x], *index)


INDEX_TRICK_REFUSAL = (
    "np.r_[...] / np.c_[...] of values being differentiated: the index parts "
    "are not differentiated (their derivative would be silently lost). Write "
    "np.concatenate(...), np.hstack(...) or np.column_stack(...) instead.")


def is_index_trick(core, atom):
    """Whether `atom` names NumPy's np.r_ / np.c_ (captured from user code):
    `np.r_[a, b]` is `getitem(r_, a, b)`, a concatenation of the index parts."""
    if not isinstance(atom, gast.Name):
        return False
    value = getattr(core, "captured", {}).get(atom.id)
    return isinstance(value, (type(np.r_), type(np.c_)))


@jvp("getitem", builder=True)
def _(ctx, z, args, keywords):
    if is_index_trick(ctx.fwd.core, args[0]) and \
            any(isinstance(a, gast.Name) and a.id in ctx.active for a in args[1:]):
        from ..errors import TransformError
        raise TransformError(INDEX_TRICK_REFUSAL)
    t = ctx.tangent(args[0])
    if ctx.is_zero(t):
        return None
    return ctx.call("getitem", [t] + args[1:], keywords)


@jvp("setitem")
def _(z, x, value, *index):
    d[z] = setitem(d[x], d[value], *index)


@jvp("list_append")
def _(z, xs, x):
    d[z] = list_append(d[xs], d[x])


@jvp("to_float")
def _(z, x):
    d[z] = to_float(d[x])


@jvp("to_tuple")
def _(z, x):
    d[z] = to_tuple(d[x])


@jvp("to_list")
def _(z, x):
    d[z] = to_list(d[x])


def _container_builder(prim):
    def build(ctx, z, args, keywords):
        tangents = [ctx.tangent(a) for a in args]
        if all(ctx.is_zero(t) for t in tangents):
            return None
        # elements without a tangent get a materialised zero: a container's
        # tangent must have the container's structure
        return ctx.call(prim, [ctx.materialize(t) for t in tangents], keywords)
    build.__name__ = f"{prim}_jvp"
    return build


for _prim in ("make_tuple", "make_list", "make_dict"):
    jvp(_prim, builder=True)(_container_builder(_prim))


# -- helpers that rules of other transformations emit ------------------------------------------

@jvp("add_any")
def _(z, a, b):
    d[z] = add_any(d[a], d[b])


@jvp("unbroadcast")
def _(z, g, x):
    d[z] = unbroadcast(d[g], x)


@jvp("expand_reduced")
def _(z, g, shape, *, axis=None, keepdims=False):
    d[z] = expand_reduced(d[g], shape, axis=axis, keepdims=keepdims)


# -- helpers the templates above call (inlined into generated code) -----------------------------

def _mT(x):
    return np.swapaxes(x, -1, -2)


def _trace_last(m):
    return np.sum(np.diagonal(m, 0, -2, -1), axis=-1)


def _cholesky_tangent(el, da):
    # L^-1 dA L^-T, keep the lower triangle with a halved diagonal: dL = L Phi
    n = np.shape(el)[-1]
    inner = np.linalg.solve(el, _mT(np.linalg.solve(el, _mT(da))))
    phi = inner * (np.tri(n) - 0.5 * np.eye(n))
    return np.matmul(el, phi)


def _eigh_tangent(w, v, da):
    n = np.shape(w)[-1]
    proj = np.matmul(np.matmul(_mT(v), da), v)
    dw = np.diagonal(proj, 0, -2, -1)
    gaps = np.expand_dims(w, -2) - np.expand_dims(w, -1) + np.eye(n)
    f = (1.0 - np.eye(n)) / gaps
    dv = np.matmul(v, f * proj)
    return (dw, dv)


def _qr_tangent(a, z, da, mode):
    if mode == "r":
        q, r = np.linalg.qr(a)
    else:
        q, r = z
    n = np.shape(r)[-1]
    da_rinv = _mT(np.linalg.solve(_mT(r), _mT(da)))
    qt_da_rinv = np.matmul(_mT(q), da_rinv)
    lower = np.tril(qt_da_rinv, -1)
    omega = lower - _mT(lower)
    dq = np.matmul(q, omega - qt_da_rinv) + da_rinv
    dr = np.matmul(qt_da_rinv - omega, r)
    if mode == "r":
        return dr
    return (dq, dr)


def _svd_tangent(a, z, da, full_matrices, compute_uv):
    if compute_uv:
        u, s, vt = z
    else:
        u, s, vt = np.linalg.svd(a, False)
    m = np.shape(a)[-2]
    n = np.shape(a)[-1]
    k = np.shape(s)[-1]
    v = _mT(vt)
    ds_mat = np.matmul(np.matmul(_mT(u), da), v)
    ds = np.diagonal(ds_mat, 0, -2, -1)
    if not compute_uv:
        return ds
    s_row = np.expand_dims(s, -2)
    s_col = np.expand_dims(s, -1)
    f = (1.0 - np.eye(k)) / ((s_row + s_col) * (s_row - s_col) + np.eye(k))
    dss = s_row * ds_mat
    sds = s_col * ds_mat
    du = np.matmul(u, f * (dss + _mT(dss)))
    dv = np.matmul(v, f * (sds + _mT(sds)))
    if m > n:
        da_v = np.matmul(da, v)
        du = du + (da_v - np.matmul(u, np.matmul(_mT(u), da_v))) / s_row
    if n > m:
        dat_u = np.matmul(_mT(da), u)
        dv = dv + (dat_u - np.matmul(v, np.matmul(vt, dat_u))) / s_row
    return (du, ds, _mT(dv))


# -- primitives other transformations emit (reverse mode's adjoint helpers,
#    batching's lane helpers): linear in some arguments, so a builder passes
#    every other argument and keyword through unchanged ------------------------------

def _linear_in(prim, positions):
    """Builder for `prim` linear in each argument at `positions` separately
    (a sum of one term per argument with a tangent: the product rule)."""
    def build(ctx, z, args, keywords):
        total = None
        for i in positions:
            if i >= len(args):
                continue
            t = ctx.tangent(args[i])
            if ctx.is_zero(t):
                continue
            term = ctx.call(prim, args[:i] + [t] + args[i + 1:], keywords)
            total = term if total is None else gast.Call(
                func=gast.Name(id="add_any", ctx=gast.Load(), annotation=None,
                               type_comment=None), args=[total, term], keywords=[])
        return total
    build.__name__ = f"{prim}_jvp"
    return build


for _prim, _positions in {
        "getitem_adjoint": (0,), "take_adjoint": (0,), "take_along_axis_adjoint": (0,),
        "diagonal_adjoint": (0,), "split_like": (0,), "unstack_like": (0,),
        "einsum_expand": (0,), "matmul_grad_a": (0, 1), "matmul_grad_b": (0, 1),
        "dot_grad_a": (0, 1), "dot_grad_b": (0, 1),
        "batch_move_in": (0,), "batch_broadcast": (0,), "batch_move_out": (0,),
        "batch_lift": (0,), "select_lanes": (1, 2), "getitem_lanes": (0,),
        "setitem_lanes": (0, 1), "matmul_lanes": (0, 1), "batch_sum_unbatched": (0,),
        "getitem_lanes_adjoint": (0,)}.items():
    if _prim in PRIMITIVES:
        jvp(_prim, builder=True)(_linear_in(_prim, _positions))


def _pop_restore_jvp(ctx, z, args, keywords):
    """The tangent of a value restored from reverse mode's stack comes from
    the tangent stack forward mode keeps beside it (see forward.py)."""
    stack, current = args
    ds = ctx.tangent(stack)
    if ctx.is_zero(ds):
        ctx.need_tangent_stack(stack)
        return None
    return ctx.call("pop_restore", [ds, ctx.materialize(ctx.tangent(current))], keywords)


if "pop_restore" in PRIMITIVES:
    jvp("pop_restore", builder=True)(_pop_restore_jvp)


def _matmul_lanes_adjoint_jvp(ctx, z, args, keywords):
    """matmul_lanes_adjoint(g, a, b, batched, wrt) is bilinear in g and the
    operand that is *not* `wrt` (the `wrt` operand only lends its shape)."""
    g, a, b, batched, wrt = args
    if not isinstance(wrt, gast.Constant):
        return None
    other = 2 if wrt.value == 0 else 1
    return _linear_in("matmul_lanes_adjoint", (0, other))(ctx, z, args, keywords)


if "matmul_lanes_adjoint" in PRIMITIVES:
    jvp("matmul_lanes_adjoint", builder=True)(_matmul_lanes_adjoint_jvp)
