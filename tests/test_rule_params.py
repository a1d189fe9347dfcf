"""Static parameters of primitives reach their rules.

A rule that reads a primitive's keyword (axis, keepdims, offset, axes,
mode, ...) must see it however the call spells it: `cotan.numpy`
compositions pass keywords by position (`diagonal(a, 2, 0, 1)` for
`trace(a, offset=2)`), and forward mode once dropped every keyword passed
that way (tangent 5.0 for a tangent eye(5) of trace(x, offset=2)).

* coverage: every keyword parameter a JVP or VJP rule reads is exercised
  with a non-default value by some case of the rule sweeps
  (tests/test_jvp_rules.py `CASES`, tests/test_vjp_rules.py `SPECS`), or is
  listed below with the reason it needs none;
* the keyword cases of the JVP sweep, spelled positionally, match central
  finite differences, and vmap of their grad matches a Python loop;
* the user-level reproducers of issue 11 (NumPy calls with static
  arguments, under jvp, grad, jvp-of-grad and grad-of-jvp) match finite
  differences.
"""

import inspect

import gast
import numpy as np
import pytest

import cotan
from cotan.autodiff.forward import jvp_function, rule_info
from cotan.autodiff.templates import template_ast
from cotan.autodiff.syntax import walk
from cotan.runtime import PRIMITIVES

from tests import test_jvp_rules as J
from tests import test_vjp_rules as V

#: primitive -> {parameter: why no sweep case needs a non-default value}
NOT_EXERCISED = {
    "sum": {"dtype": "a dtype cast of the reduction; casts are swept through astype"},
    "prod": {"dtype": "as for sum", "keepdims": "shared template with sum's, swept there"},
    "cumsum": {"dtype": "as for sum"},
    "cumprod": {"dtype": "as for sum"},
    "concatenate": {"dtype": "as for sum", "axis": "swept by the special source (axis=0 "
                    "given explicitly) and by test_second_order_rules"},
    "array": {"copy": "no effect on values", "ndmin": "reshape only; no rule reads it "
              "apart from passing it on", "dtype": "swept through astype's cast cases"},
    "astype": {"copy": "no effect on values"},
    "einsum": {"optimize": "contraction order only, same values"},
    "eigh": {"UPLO": "the probes symmetrize their input, so both triangles agree"},
    "svd": {"hermitian": "the rule treats a hermitian input like any other"},
    "linspace": {"dtype": "int dtypes swept in the VJP sweep; float dtypes are casts"},
    "take_adjoint": {"axis": "reverse mode's helper, swept through take's axis cases"},
    "diagonal_adjoint": {"offset": "reverse mode's helper, swept through diagonal's offset",
                         "axis1": "as offset", "axis2": "as offset"},
    "take_along_axis_adjoint": {"axis": "swept through take_along_axis's axis cases"},
    "split_like": {"axis": "reverse mode's helper, swept through concatenate"},
    "max": {}, "min": {},
    "matmul_lanes_adjoint": {"keep_lanes": "swept by the JVP sweep's third case"},
    "getitem_lanes": {"clip": "vmap's helper: clipping only changes out-of-range lanes"},
    "setitem_lanes": {"clip": "as getitem_lanes"},
    # np.fft: swept with n, axis and norm in tests/test_numpy_more.py (grad
    # and jvp against finite differences); out_dtype follows the input's
    "fft": {"out_dtype": "the output dtype follows the input's float width; swept through "
            "float32 cases in tests/test_numpy_more.py"},
    "ifft": {"out_dtype": "as fft", "axis": "tests/test_numpy_more.py: ifft-forward (axis=0)"},
    "rfft": {"out_dtype": "as fft", "norm": "tests/test_numpy_more.py: rfft-n-axis (ortho), "
             "rfft-forward"},
    # collectives need a bound axis: tests/test_collectives.py checks each
    # inside pmap and a named vmap against finite differences ("lanes" and
    # "inverse" are set by the batching rule and the VJP, not by users)
    "all_gather": {"axis": "tests/test_collectives.py: all_gather(x, 'i', axis=1)",
                   "lanes": "set by vmap's batching rule"},
    "psum": {"lanes": "set by vmap's batching rule"},
    "pmean": {"lanes": "set by vmap's batching rule"},
    "pmax": {"lanes": "set by vmap's batching rule"},
    "pmin": {"lanes": "set by vmap's batching rule"},
    "ppermute": {"lanes": "set by vmap's batching rule",
                 "inverse": "set by ppermute's VJP (the inverse permutation)"},
    "ppermute_lanes": {"axis": "vmap's form of ppermute; swept through ppermute in pmap and "
                       "named vmap", "inverse": "as ppermute"},
}


def _names_in(body):
    return {n.id for s in body for n in walk(s) if isinstance(n, gast.Name)}


def _defaulted(name):
    sig = inspect.signature(PRIMITIVES[name].impl)
    return {p.name: p.default for p in sig.parameters.values()
            if p.default is not inspect.Parameter.empty}


def read_parameters(name):
    """The keyword parameters (those with defaults) of primitive `name`
    that its JVP or VJP rule reads: a template's body names them; a
    builder may read any of them."""
    p = PRIMITIVES[name]
    defaulted = set(_defaulted(name))
    read = set()
    if p.jvp_rule is not None:
        if getattr(p.jvp_rule, "cotan_builder", False):
            read |= defaulted
        else:
            info = rule_info(p.jvp_rule)
            read |= set(info.kwonly) & _names_in(info.body) & defaulted
    if p.vjp_rule is not None:
        if getattr(p.vjp_rule, "cotan_builder", False):
            read |= defaulted
        else:
            params, _, _, body = template_ast(p.vjp_rule)
            used = _names_in(body)
            read |= {q.rstrip("_") for q in params[2:] if q in used} & defaulted
    return read


def _value(a):
    """A sweep argument's value, when it is a constant (None otherwise)."""
    if isinstance(a, V.K):
        return a.value
    if isinstance(a, V.R):
        return None
    if callable(a):      # the JVP sweep's makers: C(value) returns it
        try:
            return a(None)
        except Exception:
            return None
    return a


def _differs(v, default):
    try:
        return bool(np.any(v != default)) if not isinstance(v, np.ndarray) else True
    except Exception:
        return True


def exercised_parameters(name):
    """Keyword parameters some sweep case gives a non-default value, by
    keyword or by position."""
    sig = inspect.signature(PRIMITIVES[name].impl)
    params = [q for q in sig.parameters.values()
              if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
    has_var = any(q.kind == q.VAR_POSITIONAL for q in sig.parameters.values())
    defaults = _defaulted(name)
    cases = []
    for makers, kw, _ in J.CASES.get(name, []):
        cases.append((makers, kw))
    spec = V.SPECS.get(name)
    if isinstance(spec, list):
        cases.extend(spec)
    out = set()
    for args, kw in cases:
        for k, v in kw.items():
            if k in defaults and _differs(v, defaults[k]):
                out.add(k)
        if not has_var:
            for q, a in zip(params, args):
                if q.name in defaults:
                    v = _value(a)
                    if v is None and isinstance(a, V.R):
                        continue
                    if _differs(v, defaults[q.name]):
                        out.add(q.name)
    return out


SWEPT = sorted(n for n in J.differentiable()
               if (PRIMITIVES[n].jvp_rule is not None or PRIMITIVES[n].vjp_rule is not None)
               and n not in J.NO_SWEEP)


@pytest.mark.parametrize("name", SWEPT)
def test_every_parameter_a_rule_reads_is_swept(name):
    missing = read_parameters(name) - exercised_parameters(name) - set(
        NOT_EXERCISED.get(name, {}))
    assert not missing, (
        f"the rules of {name!r} read parameter(s) {sorted(missing)}, but no case of the JVP "
        "or VJP sweep gives them a non-default value: add a case to CASES "
        "(tests/test_jvp_rules.py) and SPECS (tests/test_vjp_rules.py), or say why none "
        "is needed in NOT_EXERCISED")


def test_coverage_check_sees_a_missing_parameter():
    # the check above is not vacuous: diagonal's rules read offset, and
    # without the sweep's offset cases it would be reported
    assert "offset" in read_parameters("diagonal")
    assert "offset" in exercised_parameters("diagonal")
    assert "axis" in read_parameters("cumsum") and "keepdims" in read_parameters("sum")


# -- the JVP sweep's keyword cases, spelled by position --------------------------------

def _positional_cases():
    out = []
    for name in J.differentiable():
        if name in J.NO_SWEEP or PRIMITIVES[name].no_rule.get("jvp"):
            continue
        sig = inspect.signature(PRIMITIVES[name].impl)
        params = list(sig.parameters.values())
        if any(q.kind == q.VAR_POSITIONAL for q in params):
            continue
        for k, (makers, kw, sym) in enumerate(J.CASES.get(name, [])):
            if not kw:
                continue
            names = [q.name for q in params]
            if any(key not in names or params[names.index(key)].kind
                   != params[0].POSITIONAL_OR_KEYWORD for key in kw):
                continue
            last = max(names.index(key) for key in kw)
            full = list(makers)
            ok = True
            for q in params[len(makers):last + 1]:
                if q.name in kw:
                    full.append(J.C(kw[q.name]))
                elif q.default is inspect.Parameter.empty:
                    ok = False
                else:
                    full.append(J.C(q.default))
            if ok:
                out.append(pytest.param(name, (tuple(full), {}, sym), id=f"{name}-{k}"))
    return out


POSITIONAL = _positional_cases()


@pytest.mark.parametrize("name,c", POSITIONAL)
def test_positional_keywords_jvp_matches_finite_differences(name, c, rng):
    fn, args, active, tangents = J._setup(name, c, rng)
    g = jvp_function(fn, active)
    out, dout = g(*args, *[tangents[i] for i in active])
    eps = 1e-6
    plus = fn(*[J._axpy(eps, t, a) if i in active else a
                for i, (a, t) in enumerate(zip(args, tangents))])
    minus = fn(*[J._axpy(-eps, t, a) if i in active else a
                 for i, (a, t) in enumerate(zip(args, tangents))])
    np.testing.assert_allclose(J._flat(dout), (J._flat(plus) - J._flat(minus)) / (2 * eps),
                               rtol=1e-5, atol=1e-6)


def test_positional_variants_exist_for_the_static_parameter_primitives():
    names = {p.values[0] for p in POSITIONAL}
    for n in ("sum", "diagonal", "transpose", "cumsum", "max", "flip", "take", "linspace"):
        assert n in names, n


# -- the user-level reproducers (issue 11, section 5) ---------------------------------

RNG = np.random.default_rng(3)
M34 = RNG.normal(size=(3, 4))
M44 = RNG.normal(size=(4, 4))
V4 = RNG.normal(size=4)
W34 = RNG.normal(size=(3, 4))
B43 = RNG.normal(size=(4, 3))
A234 = RNG.normal(size=(2, 3, 4))
A324 = A234.transpose(1, 0, 2)
A342 = np.moveaxis(A234, 0, 2)


def trace_offset(x):
    return np.trace(x, offset=2) ** 2 + np.trace(x, 1) * np.trace(x, -1)


def linspace_ends(x):
    return np.sum(np.linspace(x[0], x[1], 5) ** 2)


def tensordot_axes(x):
    return np.sum(np.tensordot(x, B43, axes=([1], [0])) ** 2) + \
        np.sum(np.tensordot(x, x, axes=([0, 1], [0, 1])))


def tensordot_int_axes(x):
    return np.sum(np.tensordot(x, x, axes=0) ** 2) * 0.1


def einsum_string(x):
    return np.sum(np.einsum("ij,jk->ik", x, B43) ** 2)


def flipud_fliplr(x):
    return np.sum(np.flipud(x) * x * W34) + np.sum(np.fliplr(x) ** 2 * x * W34)


def cumsum_axis(x):
    return np.sum(np.cumsum(x, axis=1) ** 2 * W34) + np.sum(np.cumsum(x, 0) * x)


def reductions_axis_keepdims(x):
    return np.sum(np.sum(x * x, axis=1, keepdims=True) * x * W34) + \
        np.sum(np.max(x * x, axis=0) ** 2) + np.sum(np.mean(x ** 3, axis=1) ** 2) + \
        np.sum(np.prod(x, axis=1, keepdims=True) * x)


def transpose_moveaxis(x):
    y = x * x[..., ::-1]
    return np.sum(np.transpose(y, (1, 0, 2)) * A324 ** 2) + \
        np.sum(np.moveaxis(y, 0, 2) ** 2 * A342) + \
        np.sum(np.swapaxes(y, 0, 2) ** 3)


def diag_k(x):
    return np.sum(np.diag(x * x, k=1) ** 2) + np.sum(np.diag(np.outer(x, x), k=-1) ** 3)


def shape_helpers(x):
    return np.inner(x, x * x) + np.sum(np.repeat(x, 2) ** 3) + np.sum(np.atleast_2d(x) ** 3) + \
        np.sum(np.hsplit(x, 2)[1] ** 3) + np.sum(np.append(x, x * x) ** 3)


def logaddexp_tie(x):
    return np.sum(np.logaddexp(x, x[::-1]) * x) + np.sum(np.logaddexp2(x, x) ** 2)


def _fd_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def _fd_hvp(f, x, t, eps=1e-5):
    g = cotan.grad(f)
    return (g(x + eps * t) - g(x - eps * t)) / (2 * eps)


PROGRAMS = [(trace_offset, M44), (linspace_ends, np.array([0.3, 1.9])),
            (tensordot_axes, M34), (tensordot_int_axes, V4), (einsum_string, M34),
            (flipud_fliplr, M34), (cumsum_axis, M34), (reductions_axis_keepdims, M34),
            (transpose_moveaxis, A234), (diag_k, V4), (shape_helpers, V4),
            (logaddexp_tie, V4)]


@pytest.mark.parametrize("f,x", PROGRAMS, ids=lambda v: getattr(v, "__name__", ""))
def test_grad_and_jvp_with_static_arguments(f, x):
    t = RNG.normal(size=x.shape)
    want = _fd_grad(f, x)
    np.testing.assert_allclose(cotan.grad(f)(x), want, rtol=1e-5, atol=1e-6)
    _, dout = cotan.jvp(f, (x,), (t,))
    np.testing.assert_allclose(dout, np.sum(want * t), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f,x", PROGRAMS, ids=lambda v: getattr(v, "__name__", ""))
def test_second_order_with_static_arguments(f, x):
    t = np.random.default_rng(5).normal(size=x.shape)
    want = _fd_hvp(f, x, t)
    _, fwd_rev = cotan.jvp(cotan.grad(f), (x,), (t,))
    np.testing.assert_allclose(fwd_rev, want, rtol=1e-4, atol=1e-5)


def test_trace_offset_tangent_is_zero_for_an_identity_tangent():
    _, dt = cotan.jvp(lambda x: np.trace(x, offset=2), (np.ones((5, 5)),), (np.eye(5),))
    assert dt == 0.0


def test_linspace_tangent():
    _, dt = cotan.jvp(lambda x, y: np.linspace(x, y, 5), (1.0, 2.0), (1.0, 0.0))
    np.testing.assert_allclose(dt, [1.0, 0.75, 0.5, 0.25, 0.0])


def test_logaddexp_at_a_tie_splits_the_derivative():
    _, dt = cotan.jvp(lambda a, b: np.logaddexp(a, b), (1.0, 1.0), (1.0, 0.0))
    assert dt == pytest.approx(0.5)
    assert cotan.grad(lambda a, b: np.logaddexp(a, b), argnums=(0, 1))(1.0, 1.0) == \
        pytest.approx((0.5, 0.5))


def einsum_sublist(a):
    return np.einsum(a, [0, 1], B43, [1, 2], [2, 0])


def test_einsum_sublist_form_forward_and_refused_in_reverse():
    _, dt = cotan.jvp(einsum_sublist, (M34,), (W34,))
    np.testing.assert_allclose(dt, (W34 @ B43).T, rtol=1e-12)
    with pytest.raises(cotan.errors.TransformError, match="sublist"):
        cotan.grad(lambda a: np.sum(einsum_sublist(a)))(M34)


def r_concat(a):
    return np.sum(np.r_[a, a * 2.0] ** 2)


def c_concat(a):
    return np.sum(np.c_[a, a * 2.0] ** 2)


@pytest.mark.parametrize("f", [r_concat, c_concat])
def test_index_trick_concatenation_is_refused_under_derivatives(f):
    assert f(V4) == pytest.approx(5.0 * np.sum(V4 ** 2))
    with pytest.raises(cotan.errors.TransformError, match="np.concatenate"):
        cotan.grad(f)(V4)
    with pytest.raises(cotan.errors.TransformError, match="np.concatenate"):
        cotan.jvp(f, (V4,), (V4,))


def tuple_concat(x, y):
    t = (x,) + (y,)
    return t[0] * t[1]


def shape_concat(x):
    return np.sum(np.reshape(x, x.shape + (1,)))


def list_repeat(x):
    zs = [x] * 3
    return zs[2]


@pytest.mark.parametrize("f,args,dargs", [
    (tuple_concat, (1.0, 2.0), (2.0, 1.0)), (shape_concat, (V4,), (np.ones(4),)),
    (list_repeat, (1.5,), (1.0,))], ids=["tuple+tuple", "shape+tuple", "list*int"])
def test_sequence_operators_concatenate_and_repeat_as_python_does(f, args, dargs):
    # they were computed elementwise (then refused); tests/test_sequences.py
    # has the full set under every transformation
    np.testing.assert_allclose(cotan.jit(f)(*args), f(*args))
    np.testing.assert_allclose(cotan.grad(f)(*args), dargs[0])
    batched = [np.stack([np.asarray(a), np.asarray(a)]) for a in args]
    np.testing.assert_allclose(cotan.vmap(f)(*batched), np.stack([f(*args), f(*args)]))


def test_array_operators_still_broadcast_lists_of_numbers():
    def f(x):
        return np.sum(x + [1.0, 2.0, 3.0, 4.0]) * 2
    np.testing.assert_allclose(cotan.grad(f)(V4), 2.0)
    np.testing.assert_allclose(cotan.jvp(f, (V4,), (V4,))[1], 2.0 * np.sum(V4))


def norm_ord(x):
    return np.linalg.norm(x * x, ord=3)


def norm_axis(x):
    return np.sum(np.linalg.norm(np.outer(x, x), axis=0))


@pytest.mark.parametrize("f", [norm_ord, norm_axis], ids=lambda f: f.__name__)
def test_norm_jvp_with_static_arguments(f):
    # jvp only: grad of the norm composition takes seconds to transform
    # (reported; the second-order rule sweeps cover its primitives)
    t = RNG.normal(size=4)
    eps = 1e-6
    fd = (f(V4 + eps * t) - f(V4 - eps * t)) / (2 * eps)
    np.testing.assert_allclose(cotan.jvp(f, (V4,), (t,))[1], fd, rtol=1e-6)


def j_inner(a):
    return np.inner(a, a)


def j_repeat(a):
    return np.repeat(a, 2)


def j_hsplit(a):
    return np.hsplit(a, 2)[1]


def j_append(a):
    return np.append(a, a * 2.0)


def j_diag(a):
    return np.diag(a, k=1)


@pytest.mark.parametrize("f", [j_inner, j_repeat, j_hsplit, j_append, j_diag],
                         ids=lambda f: f.__name__)
def test_vjp_of_generated_jvp_code(f):
    """Reverse over forward on the generated JVP itself, both of its inputs
    (primal and tangent) differentiated: residuals set inside one branch of
    the composition's `if`s were unbound."""
    j = jvp_function(f)
    x, t = V4, np.random.default_rng(7).normal(size=4)
    (out, dout), pullback = cotan.vjp(j, x, t)
    w0 = np.random.default_rng(8).normal(size=np.shape(out))
    w1 = np.random.default_rng(9).normal(size=np.shape(dout))
    gx, gt = pullback((w0, w1))

    def s(a, b):
        o, do = j(a, b)
        return np.sum(o * w0) + np.sum(do * w1)
    eps = 1e-6
    fx = np.array([(s(x + eps * e, t) - s(x - eps * e, t)) / (2 * eps) for e in np.eye(4)])
    ft = np.array([(s(x, t + eps * e) - s(x, t - eps * e)) / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(gx, fx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gt, ft, rtol=1e-5, atol=1e-6)
