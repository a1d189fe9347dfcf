"""VJP rules: one template per differentiable primitive.

Owns the reverse-mode derivative of every differentiable primitive in the
table.  A rule is a template (as in Tangent): a function whose first two
parameters are the output's cotangent `g` and the output `z`, followed by
the primitive's own parameters; its body assigns `d<param>`, the
contribution to that parameter's adjoint.  The reverse transformation
splices the body in with the program's names, so the generated gradient
reads like the math.  Variadic primitives (getitem, make_tuple, einsum, ...)
get small rule builders instead.  Rules only call differentiable primitives
that have VJP rules themselves (or non-differentiable ones), so gradients of
gradients work.  Complex values follow JAX's convention (a cotangent c pairs
with dz as Re(c dz); autodiff/complex_rules.py): a holomorphic primitive's
rule is g * f'(x) with no conjugate, the non-holomorphic ones (absolute,
real, imag, conj) say their transpose, and `unbroadcast` (like the other
adjoint kernels) keeps only the real part for a real operand.  Must not hold the transformation (autodiff/reverse.py).
"""

import gast

from ..runtime.table import PRIMITIVES
from ..runtime.structural import getitem, setitem, make_slice  # noqa: F401
from ..runtime.numeric import *  # noqa: F401,F403  (names rule bodies call)
from ..runtime.reverse_support import *  # noqa: F401,F403
from ..runtime.reverse_support import (getitem_adjoint, matmul_grad_a, matmul_grad_b,  # noqa: F401
                                       dot_grad_a, dot_grad_b, unstack_like, einsum_expand)
from ..runtime.structural import shape, ndim, dtype  # noqa: F401
from .jvp_rules import INDEX_TRICK_REFUSAL, carries_derivative, cast_dtype, is_index_trick


from .rule_registry import vjp_rule  # noqa: E402


def builder(fn):
    """Mark a rule as a builder: `fn(ctx, g, z, args, kwargs)` emitting
    statements through `ctx` instead of being spliced."""
    fn.cotan_builder = True
    return fn


# cotan.numpy compositions rule bodies use (inlined by normalization)
from ..numpy import matrix_transpose, expand_dims, tril, triu  # noqa: E402
from ..numpy import eye as np_eye  # noqa: E402


# -- arithmetic -----------------------------------------------------------------

@vjp_rule("add")
def _(g, z, x, y):
    dx = unbroadcast(g, x)
    dy = unbroadcast(g, y)


@vjp_rule("add_any")
def _(g, z, x, y):
    dx = g
    dy = g


@vjp_rule("subtract")
def _(g, z, x, y):
    dx = unbroadcast(g, x)
    dy = -unbroadcast(g, y)   # negate after reducing: the smaller array


@vjp_rule("multiply")
def _(g, z, x, y):
    dx = unbroadcast(g * y, x)
    dy = unbroadcast(g * x, y)


@vjp_rule("divide")
def _(g, z, x, y):
    # d(x/y)/dy = -z/y: reuses g/y instead of forming x/y**2 at full size
    gy = g / y
    dx = unbroadcast(gy, x)
    dy = -unbroadcast(gy * z, y)


def _power_template(g, z, x, y):
    dx = unbroadcast(g * y * x ** (y - 1), x)
    dy = unbroadcast(g * z * log(x), y)


@vjp_rule("power")
@builder
def _(ctx, g, z, args, kwargs):
    x, y = args
    c = y.value if isinstance(y, gast.Constant) else None
    if isinstance(c, (int, float)) and not isinstance(c, bool) and c in (1, 2):
        # constant exponent (x ** 2 above all): no power call, no x ** 1 copy
        expr = gast.Name(id=g, ctx=gast.Load(), annotation=None, type_comment=None) if c == 1 \
            else ctx.call("multiply", [ctx.call("multiply", [g, x]), y])
        ctx.contribute(x, ctx.call("unbroadcast", [expr, x]))
        return
    ctx.splice(_power_template, g, z, args, kwargs)


@vjp_rule("negative")
def _(g, z, x):
    dx = -g


@vjp_rule("absolute")
def _(g, z, x):
    # the transpose of dz -> Re(conj(s) dz) under the pairing Re(c dz) is
    # g * conj(s) (s = z / |z|; sign(x) for real x)
    dx = g * conj(unit_phase(x))


@vjp_rule("maximum")
def _(g, z, x, y):
    dx = unbroadcast(select(x >= y, g, 0.0), x)
    dy = unbroadcast(select(x >= y, 0.0, g), y)


@vjp_rule("minimum")
def _(g, z, x, y):
    dx = unbroadcast(select(x <= y, g, 0.0), x)
    dy = unbroadcast(select(x <= y, 0.0, g), y)


@vjp_rule("arctan2")
def _(g, z, x, y):
    dx = unbroadcast(g * y / (x * x + y * y), x)
    dy = unbroadcast(-g * x / (x * x + y * y), y)


@vjp_rule("remainder")
def _(g, z, x, y):
    dx = unbroadcast(g, x)
    dy = unbroadcast(-g * floor_divide(x, y), y)


@vjp_rule("fmod")
def _(g, z, x, y):
    dx = unbroadcast(g, x)
    dy = unbroadcast(-g * trunc(x / y), y)


# -- transcendental functions ----------------------------------------------------

@vjp_rule("sin")
def _(g, z, x):
    dx = g * cos(x)


@vjp_rule("cos")
def _(g, z, x):
    dx = -g * sin(x)


@vjp_rule("tan")
def _(g, z, x):
    dx = g / cos(x) ** 2


@vjp_rule("arcsin")
def _(g, z, x):
    dx = g / sqrt(1.0 - x * x)


@vjp_rule("arccos")
def _(g, z, x):
    dx = -g / sqrt(1.0 - x * x)


@vjp_rule("arctan")
def _(g, z, x):
    dx = g / (1.0 + x * x)


@vjp_rule("sinh")
def _(g, z, x):
    dx = g * cosh(x)


@vjp_rule("cosh")
def _(g, z, x):
    dx = g * sinh(x)


@vjp_rule("tanh")
def _(g, z, x):
    dx = g * (1.0 - z * z)


@vjp_rule("arcsinh")
def _(g, z, x):
    dx = g / sqrt(x * x + 1.0)


@vjp_rule("arccosh")
def _(g, z, x):
    dx = g / sqrt(x * x - 1.0)


@vjp_rule("arctanh")
def _(g, z, x):
    dx = g / (1.0 - x * x)


@vjp_rule("exp")
def _(g, z, x):
    dx = g * z


@vjp_rule("expm1")
def _(g, z, x):
    dx = g * (z + 1.0)


@vjp_rule("log")
def _(g, z, x):
    dx = g / x


@vjp_rule("log1p")
def _(g, z, x):
    dx = g / (1.0 + x)


@vjp_rule("sqrt")
def _(g, z, x):
    dx = g * 0.5 / z


# -- selection ---------------------------------------------------------------------

@vjp_rule("where")
def _(g, z, c, x, y):
    dx = unbroadcast(select(c, g, 0.0), x)
    dy = unbroadcast(select(c, 0.0, g), y)


@vjp_rule("select")
def _(g, z, c, x, y):
    dx = unbroadcast(select(c, g, 0.0), x)
    dy = unbroadcast(select(c, 0.0, g), y)


# -- adjoint helpers (for gradients of gradients) ------------------------------------

@vjp_rule("unbroadcast")
def _(g, z, t, x):
    dt = broadcast_to(g, shape(t))


@vjp_rule("expand_reduced")
def _(g, z, t, shape, axis=None, keepdims=False):
    dt = sum(g, axis=axis, keepdims=keepdims)


@vjp_rule("getitem_adjoint")
@builder
def _(ctx, g, z, args, kwargs):
    ctx.contribute(args[0], ctx.call("getitem", [g] + args[2:]))


@vjp_rule("take_adjoint")
def _(g, z, t, x, indices, axis=None):
    dt = take(g, indices, axis=axis)


@vjp_rule("take_along_axis_adjoint")
def _(g, z, t, x, indices, axis=-1):
    dt = take_along_axis(g, indices, axis)


@vjp_rule("diagonal_adjoint")
def _(g, z, t, x, offset=0, axis1=0, axis2=1):
    dt = diagonal(g, offset, axis1, axis2)


@vjp_rule("split_like")
def _(g, z, t, arrays, axis=0):
    dt = reshape(concatenate(g, axis=axis), shape(t))


@vjp_rule("unstack_like")
def _(g, z, t, obj):
    dt = reshape(array(g), shape(t))


@vjp_rule("einsum_expand")
@builder
def _(ctx, g, z, args, kwargs):
    # sum <-> broadcast, diagonal <-> embedding: the reversed spec is the adjoint
    src, dst = args[2].value.split("->")
    ctx.contribute(args[0], ctx.call("einsum_expand", [
        g, args[0], gast.Constant(value=f"{dst}->{src}", kind=None)]))


@vjp_rule("matmul_grad_a")
def _(g, z, t, b, a):
    dt = matmul(g, b)
    db = matmul_grad_b(t, g, b)


@vjp_rule("matmul_grad_b")
def _(g, z, t, a, b):
    dt = matmul(a, g)
    da = matmul_grad_a(t, g, a)


@vjp_rule("dot_grad_a")
def _(g, z, t, b, a):
    dt = dot(g, b)
    db = dot_grad_b(t, g, b)


@vjp_rule("dot_grad_b")
def _(g, z, t, a, b):
    dt = dot(a, g)
    da = dot_grad_a(t, g, a)


# -- contractions and linear algebra ----------------------------------------------------

@vjp_rule("matmul")
def _(g, z, a, b):
    da = matmul_grad_a(g, b, a)
    db = matmul_grad_b(g, a, b)


@vjp_rule("dot")
def _(g, z, a, b):
    da = dot_grad_a(g, b, a)
    db = dot_grad_b(g, a, b)


@vjp_rule("inv")
def _(g, z, a):
    zt = matrix_transpose(z)
    da = -(zt @ g @ zt)


@vjp_rule("solve")
def _(g, z, a, b):
    gb = solve(matrix_transpose(a), g)
    da = -matmul_grad_a(gb, z, a)
    db = gb


@vjp_rule("det")
def _(g, z, a):
    da = expand_dims(g * z, (-1, -2)) * matrix_transpose(inv(a))


@vjp_rule("slogdet")
def _(g, z, a):
    da = expand_dims(g[1], (-1, -2)) * matrix_transpose(inv(a))




@vjp_rule("cholesky")
def _(g, z, a):
    # Murray (2016): phi(L^T G) with the diagonal halved, then
    # S = L^-T phi L^-1, symmetrized
    lt = matrix_transpose(z)
    p = lt @ g
    phi = tril(p) - 0.5 * tril(triu(p))
    s = solve(lt, matrix_transpose(solve(lt, matrix_transpose(phi))))
    da = 0.5 * (s + matrix_transpose(s))




@vjp_rule("eigh")
def _(g, z, a):
    # A = V diag(w) V^T: dA = V (diag(gw) + F * (V^T gV)) V^T, F_ij = 1/(w_j - w_i)
    w = z[0]
    v = z[1]
    gw = g[0]
    gv = g[1]
    vt = matrix_transpose(v)
    diff = expand_dims(w, -2) - expand_dims(w, -1)
    f = select(diff == 0.0, 0.0, 1.0 / select(diff == 0.0, 1.0, diff))
    inner = f * (vt @ gv)
    m = v @ ((inner + expand_dims(gw, -2) * np_eye(shape(v)[-1])) @ vt)
    da = 0.5 * (m + matrix_transpose(m))




# -- reductions ------------------------------------------------------------------------

@vjp_rule("sum")
def _(g, z, x, axis=None, keepdims=False, dtype=None):
    dx = expand_reduced(g, shape(x), axis, keepdims)


@vjp_rule("prod")
def _(g, z, x, axis=None, keepdims=False, dtype=None):
    dx = expand_reduced(g * z, shape(x), axis, keepdims) / x


@vjp_rule("max")
def _(g, z, x, axis=None, keepdims=False):
    # ties share g; g / count is formed at the reduced size, then broadcast
    hit = x == expand_reduced(z, shape(x), axis, keepdims)
    share = g / sum(hit, axis=axis, keepdims=keepdims)
    dx = select(hit, expand_reduced(share, shape(x), axis, keepdims), 0.0)


@vjp_rule("min")
def _(g, z, x, axis=None, keepdims=False):
    hit = x == expand_reduced(z, shape(x), axis, keepdims)
    share = g / sum(hit, axis=axis, keepdims=keepdims)
    dx = select(hit, expand_reduced(share, shape(x), axis, keepdims), 0.0)


@vjp_rule("cumsum")
def _(g, z, x, axis=None, dtype=None):
    dx = reshape(flip(cumsum(flip(g, axis), axis), axis), shape(x))


@vjp_rule("cumprod")
def _(g, z, x, axis=None, dtype=None):
    dx = reshape(flip(cumsum(flip(g * z, axis), axis), axis), shape(x)) / x


# -- shape operations ---------------------------------------------------------------------

@vjp_rule("reshape")
def _(g, z, x, shape_):
    dx = reshape(g, shape(x))


@vjp_rule("transpose")
def _(g, z, x, axes=None):
    dx = transpose(g, inverse_axes(axes))


@vjp_rule("broadcast_to")
def _(g, z, x, shape_):
    dx = unbroadcast(g, x)


@vjp_rule("concatenate")
def _(g, z, arrays, axis=0, dtype=None):
    darrays = split_like(g, arrays, axis)


@vjp_rule("flip")
def _(g, z, x, axis=None):
    dx = flip(g, axis)


@vjp_rule("diagonal")
def _(g, z, x, offset=0, axis1=0, axis2=1):
    dx = diagonal_adjoint(g, x, offset, axis1, axis2)


@vjp_rule("take")
def _(g, z, x, indices, axis=None):
    dx = take_adjoint(g, x, indices, axis)


@vjp_rule("take_along_axis")
def _(g, z, x, indices, axis=-1):
    dx = take_along_axis_adjoint(g, x, indices, axis)


@vjp_rule("sort")
def _(g, z, x, axis=-1):
    dx = take_along_axis_adjoint(g, x, argsort(x, axis), axis)


# -- conversions ----------------------------------------------------------------------------

def _array_template(g, z, obj, dtype=None, copy=True, ndmin=0):
    dobj = unstack_like(g, obj)


def _astype_template(g, z, x, dtype_, copy=True):
    # unbroadcast (same shape) drops the imaginary part when a real x was
    # cast to complex: a real input's cotangent is real
    dx = astype(unbroadcast(g, x), dtype(x))


def _cast_vjp(template):
    @builder
    def build(ctx, g, z, args, kwargs):
        # a cast to an integer or bool dtype passes no derivative back
        if carries_derivative(cast_dtype(args, kwargs, 1)):
            ctx.splice(template, g, z, args, kwargs)
    return build


vjp_rule("array")(_cast_vjp(_array_template))
vjp_rule("astype")(_cast_vjp(_astype_template))


def _linspace_weights(g, num, endpoint, axis):
    """k / div for the k-th sample (div = num - 1 with the endpoint, num
    without), laid along `axis` of the output: sample k is
    start + (stop - start) * k / div."""
    w = linspace(0.0, 1.0, num, endpoint)
    return reshape(w, static_axis_vector_shape(ndim(g), axis, num))


def _linspace_template(g, z, start, stop, num=50, endpoint=True, retstep=False, dtype_=None,
                       axis=0):
    gw = sum(g * _linspace_weights(g, num, endpoint, axis), axis=axis)
    dstart = unbroadcast(sum(g, axis=axis) - gw, start)
    dstop = unbroadcast(gw, stop)


def _linspace_retstep_template(g, z, start, stop, num=50, endpoint=True, retstep=False,
                               dtype_=None, axis=0):
    # z = (samples, step) with step = (stop - start) / div
    gs = g[0]
    gstep = g[1] / (num - 1 if endpoint else num)
    gw = sum(gs * _linspace_weights(gs, num, endpoint, axis), axis=axis)
    dstart = unbroadcast(sum(gs, axis=axis) - gw - gstep, start)
    dstop = unbroadcast(gw + gstep, stop)


@vjp_rule("linspace")
@builder
def _(ctx, g, z, args, kwargs):
    if not carries_derivative(cast_dtype(args, kwargs, 5)):
        return
    retstep = kwargs.get("retstep", args[4] if len(args) > 4 else gast.Constant(False, None))
    if not isinstance(retstep, gast.Constant):
        ctx.unsupported("linspace with a retstep computed at run time")
    ctx.splice(_linspace_retstep_template if retstep.value else _linspace_template,
               g, z, args, kwargs)


@vjp_rule("copy")
def _(g, z, x):
    dx = g


@vjp_rule("to_float")
def _(g, z, x):
    dx = g + zero_adjoint(x)


# tuple(x) / list(x): a container's adjoint keeps its kind (sequence_rules.py)
from .sequence_rules import sequence_conversion_vjp  # noqa: E402
PRIMITIVES["to_tuple"].vjp_rule = PRIMITIVES["to_list"].vjp_rule = sequence_conversion_vjp


# -- containers and indexing (variadic: builders) ---------------------------------------------

@vjp_rule("getitem")
@builder
def _(ctx, g, z, args, kwargs):
    if is_index_trick(ctx.rev.core, args[0]) and \
            any(isinstance(a, gast.Name) and a.id in ctx.rev.active for a in args[1:]):
        from ..errors import TransformError
        raise TransformError(INDEX_TRICK_REFUSAL)
    ctx.contribute(args[0], ctx.call("getitem_adjoint", [g] + args))


@vjp_rule("setitem")
@builder
def _(ctx, g, z, args, kwargs):
    x, v, idx = args[0], args[1], args[2:]
    ctx.contribute(x, ctx.call("setitem", [g, gast.Constant(value=0.0, kind=None)] + idx))
    ctx.contribute(v, ctx.call("unbroadcast", [ctx.call("getitem", [g] + idx), v]))


@vjp_rule("make_tuple")
@builder
def _(ctx, g, z, args, kwargs):
    for i, a in enumerate(args):
        ctx.contribute(a, ctx.call("getitem", [g, gast.Constant(value=i, kind=None)]))


PRIMITIVES["make_list"].vjp_rule = PRIMITIVES["make_tuple"].vjp_rule


@vjp_rule("make_dict")
@builder
def _(ctx, g, z, args, kwargs):
    keys = kwargs["keys"].value if isinstance(kwargs["keys"], gast.Constant) else \
        tuple(e.value for e in kwargs["keys"].elts)
    for k, a in zip(keys, args):
        ctx.contribute(a, ctx.call("getitem", [g, gast.Constant(value=k, kind=None)]))


@vjp_rule("list_append")
def _(g, z, xs, x):
    dxs = g[:-1]
    dx = g[-1]


def _einsum_tokens(term):
    """The labels of an einsum term, '...' as one token."""
    if "..." not in term:
        return list(term)
    before, after = term.split("...")
    return list(before) + ["..."] + list(after)


@vjp_rule("einsum")
@builder
def _(ctx, g, z, args, kwargs):
    # operand i's adjoint: the einsum of g with the other operands, giving
    # the labels of term i that appear elsewhere (each once); einsum_expand
    # then sums '...' broadcasting, broadcasts the labels only term i has
    # and puts repeated labels ('ii') back on their diagonal
    if not (isinstance(args[0], gast.Constant) and isinstance(args[0].value, str)):
        from ..errors import TransformError
        raise TransformError(
            "reverse mode needs einsum's subscripts as a string written in the call "
            "(np.einsum('ij,jk->ik', a, b)); the sublist form (np.einsum(a, [0, 1], b, "
            "[1, 2])) and subscripts held in a variable are not supported. Write the "
            "subscripts string in the call.")
    spec = args[0].value.replace(" ", "")
    ops = args[1:]
    ins, out = spec.split("->") if "->" in spec else (spec, None)
    terms = ins.split(",")
    if out is None:   # implicit output: '...' then the labels seen once, sorted
        counts = {}
        for t in terms:
            for c in _einsum_tokens(t):
                counts[c] = counts.get(c, 0) + 1
        out = ("..." if "..." in counts else "") + "".join(
            sorted(c for c, n in counts.items() if n == 1 and c != "..."))
    for i, (term, op) in enumerate(zip(terms, ops)):
        others = [t for j, t in enumerate(terms) if j != i]
        present = set(_einsum_tokens(out)).union(*[_einsum_tokens(t) for t in others])
        kept = "".join(c for c in dict.fromkeys(_einsum_tokens(term)) if c in present)
        if "..." in present and "..." not in kept:
            kept = "..." + kept   # numpy sums '...' only through einsum_expand
        sub = ",".join([out] + others) + "->" + kept
        expr = ctx.call("einsum", [gast.Constant(value=sub, kind=None), g] +
                        [o for j, o in enumerate(ops) if j != i])
        if kept != term or "..." in term:
            expr = ctx.call("einsum_expand", [expr, op, gast.Constant(value=f"{kept}->{term}",
                                                                      kind=None)])
        else:
            # a real operand of a complex einsum keeps the real part (as
            # einsum_expand does; unbroadcast of equal shapes does only that)
            expr = ctx.call("unbroadcast", [expr, op])
        ctx.contribute(op, expr)


def _qr_r_template(g, z, a, mode="reduced"):
    # mode='r' returns R only: the rule below with gQ = 0 (Q recomputed)
    qr_full = qr(a)
    q = qr_full[0]
    m = z @ matrix_transpose(g)
    c = tril(m) + matrix_transpose(tril(m, -1))
    da = matrix_transpose(solve(z, matrix_transpose(q @ c)))


@vjp_rule("qr")
@builder
def _(ctx, g, z, args, kwargs):
    mode = kwargs.get("mode", args[1] if len(args) > 1 else gast.Constant(value="reduced", kind=None))
    if not isinstance(mode, gast.Constant) or mode.value not in ("reduced", "r"):
        ctx.unsupported("qr with a mode other than 'reduced' or 'r'")
    ctx.splice(_qr_r_template if mode.value == "r" else _qr_template, g, z, args, kwargs)


def _qr_template(g, z, a, mode="reduced"):
    # reduced QR with m >= n: M = R gR^T - gQ^T Q, copyltu(M) = tril(M) + tril(M, -1)^T,
    # dA = (gQ + Q copyltu(M)) R^-T
    q = z[0]
    r = z[1]
    gq = g[0]
    gr = g[1]
    m = r @ matrix_transpose(gr) - matrix_transpose(gq) @ q
    c = tril(m) + matrix_transpose(tril(m, -1))
    da = matrix_transpose(solve(r, matrix_transpose(gq + q @ c)))


def _svd_template(g, z, a, full_matrices=True, compute_uv=True, hermitian=False):
    # Townsend (2016), A = U diag(s) Vh with k = min(m, n):
    # dA = U [(F o (U^T gU - gU^T U)) S + diag(gs) + S (F o (V^T gV - gV^T V))] Vh
    #      + (I - U U^T) gU S^-1 Vh + U S^-1 gVh (I - V Vh),  F_ij = 1 / (s_j^2 - s_i^2)
    ok = check_svd_vjp(a, full_matrices)
    u = z[0]
    s = z[1]
    vh = z[2]
    gu = g[0]
    gs = g[1]
    gvh = g[2]
    ut = matrix_transpose(u)
    v = matrix_transpose(vh)
    s2 = s * s
    diff = expand_dims(s2, -2) - expand_dims(s2, -1)
    f = select(diff == 0.0, 0.0, 1.0 / select(diff == 0.0, 1.0, diff))
    uu = ut @ gu
    vv = vh @ matrix_transpose(gvh)
    j = f * (uu - matrix_transpose(uu))
    k = f * (vv - matrix_transpose(vv))
    inner = j * expand_dims(s, -2) + expand_dims(s, -1) * k + \
        expand_dims(gs, -2) * np_eye(shape(s)[-1])
    extra_u = ((gu - u @ uu) / expand_dims(s, -2)) @ vh
    extra_v = u @ ((gvh - (gvh @ v) @ vh) / expand_dims(s, -1))
    da = u @ inner @ vh + extra_u + extra_v


def _svd_values_template(g, z, a, full_matrices=True, compute_uv=True, hermitian=False):
    # singular values only: dA = U diag(gs) Vh
    usv = svd(a, full_matrices=False)
    da = (usv[0] * expand_dims(g, -2)) @ usv[2]


@vjp_rule("svd")
@builder
def _(ctx, g, z, args, kwargs):
    uv = kwargs.get("compute_uv", args[2] if len(args) > 2 else gast.Constant(value=True, kind=None))
    if not isinstance(uv, gast.Constant):
        ctx.unsupported("svd with a compute_uv that is not a constant")
    ctx.splice(_svd_template if uv.value else _svd_values_template, g, z, args, kwargs)


def _constant_value(node):
    import ast
    return ast.literal_eval(ast.unparse(gast.gast_to_ast(node)))


@vjp_rule("assemble_adjoint")
@builder
def _(ctx, g, z, args, kwargs):
    paths = _constant_value(args[1])
    for path, a in zip(paths, args[2:]):
        ctx.contribute(a, ctx.call("getitem", [g] + [gast.Constant(value=k, kind=None)
                                                     for k in path]))


from . import reverse_support_rules  # noqa: E402,F401  (JVP / batching of reverse's own helpers)
