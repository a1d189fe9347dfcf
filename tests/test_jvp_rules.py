"""The JVP rule of every differentiable primitive, swept over the table.

For each primitive: its JVP (forward mode on a one-call function) matches
central finite differences in float64 on random inputs (broadcasting
included), and, where reverse mode exists, the transpose identity
`<v, J u> == <J^T v, u>` holds against the primitive's VJP.  The forward and
reverse rule sets must be the same set.  A primitive that deliberately has
no rule for a transformation says why in its registration
(`Primitive.no_rule`); the sweeps accept that reason in place of the rule
and skip the numeric checks with it.  User-defined primitives
(custom_jvp/custom_vjp/checkpoint) are not swept (`table_primitives()`).
"""

import numpy as np
import pytest

from cotan import tree_util
from cotan.autodiff.core_form import validate
from cotan.autodiff.forward import jvp_function
from cotan.autodiff.materialize import generated_core
from cotan.autodiff.parse import GENERATED_PREFIX, register_source
from cotan.runtime import PRIMITIVES
from cotan.runtime.table import table_primitives
from cotan.runtime.collectives import SWEPT_ELSEWHERE


def U(*shape, lo=-1.0, hi=1.0):
    return lambda rng: rng.uniform(lo, hi, shape)


def SPD(n):
    def make(rng):
        a = rng.normal(size=(n, n))
        return a @ a.T + n * np.eye(n)
    return make


def SYM(n):
    def make(rng):
        a = rng.normal(size=(n, n))
        return a + a.T
    return make


def C(value):
    return lambda rng: value


def case(*args, symmetric=(), **kw):
    """A sample call: argument makers, keyword constants, and which
    arguments' tangents must be symmetric (eigh, cholesky)."""
    return (args, kw, symmetric)


B = [U(3, 4), U(4)]  # broadcasting pair
CASES = {
    "add": [case(*B), case(U(3), C(2.0))],
    "subtract": [case(*B), case(U(1, 4), U(3, 1))],
    "multiply": [case(*B), case(U(3), C(3.0))],
    "divide": [case(U(3, 4), U(4, lo=0.5, hi=2.0)), case(C(1.0), U(3, lo=0.5, hi=2.0))],
    "power": [case(U(3, 4, lo=0.5, hi=2.0), U(4)), case(U(3, lo=0.5, hi=2.0), C(3))],
    "maximum": [case(*B)], "minimum": [case(*B)],
    "arctan2": [case(*B)],
    "remainder": [case(U(3, lo=2.1, hi=2.9), U(3, lo=0.9, hi=1.0))],
    "fmod": [case(U(3, lo=2.1, hi=2.9), U(3, lo=0.9, hi=1.0))],
    "absolute": [case(U(3, lo=0.2, hi=1.0))],
    "arccosh": [case(U(3, lo=1.5, hi=3.0))],
    "log": [case(U(3, lo=0.5, hi=2.0))], "sqrt": [case(U(3, lo=0.5, hi=2.0))],
    "log1p": [case(U(3, lo=0.0, hi=2.0))],
    "arcsin": [case(U(3, lo=-0.8, hi=0.8))], "arccos": [case(U(3, lo=-0.8, hi=0.8))],
    "arctanh": [case(U(3, lo=-0.8, hi=0.8))],
    "where": [case(lambda rng: rng.uniform(size=(3, 4)) > 0.5, *B)],
    "select": [case(lambda rng: rng.uniform(size=(3, 4)) > 0.5, *B)],
    "sum": [case(U(3, 4)), case(U(3, 4), axis=1), case(U(2, 3, 4), axis=(0, 2), keepdims=True)],
    "prod": [case(U(3, 4, lo=0.5, hi=1.5), axis=0), case(U(4, lo=0.5, hi=1.5))],
    "max": [case(U(3, 4), axis=1), case(U(5))], "min": [case(U(3, 4), axis=0, keepdims=True)],
    "cumsum": [case(U(3, 4), axis=1), case(U(3, 4))],
    "cumprod": [case(U(3, 4, lo=0.5, hi=1.5), axis=0), case(U(5, lo=0.5, hi=1.5))],
    "reshape": [case(U(3, 4), C((2, 6)))],
    "transpose": [case(U(2, 3, 4), axes=(1, 2, 0)), case(U(3, 4))],
    "broadcast_to": [case(U(4), C((3, 4)))],
    "concatenate": [case(lambda rng: [rng.uniform(size=(2, 3)), rng.uniform(size=(1, 3))])],
    "flip": [case(U(3, 4), axis=1)],
    "diagonal": [case(U(3, 4), offset=1)],
    "take": [case(U(5), C(np.array([0, 3, 3]))), case(U(3, 4), C(np.array([1, 0])), axis=1)],
    "take_along_axis": [case(U(3, 4), C(np.array([[0], [3], [1]])), axis=1)],
    "sort": [case(U(3, 5), axis=1)],
    "array": [case(lambda rng: [rng.uniform(size=3), rng.uniform(size=3)])],
    "astype": [case(U(3), C("float64")), case(U(3), C("int64"))],
    "linspace": [case(U(), U(), C(5)), case(U(3), U(3), C(4), endpoint=False, axis=1),
                 case(U(2), C(1.0), C(5), retstep=True)],
    "matmul": [case(U(3, 4), U(4, 2)), case(U(2, 3, 4), U(4))],
    "dot": [case(U(3, 4), U(4, 2)), case(U(4), U(4))],
    "einsum": [case(C("ij,jk->ik"), U(3, 4), U(4, 2)), case(C("ii->"), U(3, 3))],
    "inv": [case(SPD(3))], "det": [case(SPD(3))], "slogdet": [case(SPD(3))],
    "solve": [case(SPD(3), U(3)), case(SPD(3), U(3, 2))],
    "cholesky": [case(SPD(3), symmetric=(0,))],
    "eigh": [case(SYM(3), symmetric=(0,))],
    "qr": [case(U(4, 3)), case(U(3, 3), mode="r")],
    "svd": [case(U(4, 3), full_matrices=False), case(U(3, 4), full_matrices=False),
            case(U(3, 3), compute_uv=False)],
    "getitem": [case(U(3, 4), C(1)), case(U(3, 4), C(slice(0, 2, None)), C(np.array([0, 3]))),
                case(lambda rng: (rng.uniform(size=2), rng.uniform(size=3)), C(1))],
    "setitem": [case(U(3, 4), U(4), C(1)), case(U(5), U(2), C(slice(1, 3, None)))],
    "make_tuple": [case(U(3), U(2))], "make_list": [case(U(3), U(2))],
    "make_dict": [case(U(3), U(2), keys=("a", "b"))],
    "list_append": [case(lambda rng: [rng.uniform(size=2)], U(3))],
    # tuple/list + and * (tests/test_sequences.py has them under every transformation)
    "seq_concat": [case(lambda rng: (rng.uniform(size=2),), lambda rng: (rng.uniform(size=3),
                                                                         rng.uniform(size=1)))],
    "seq_repeat": [case(lambda rng: [rng.uniform(size=2), rng.uniform(size=3)], C(2))],
    "seq_repeat_adjoint": [case(lambda rng: (rng.uniform(size=2), rng.uniform(size=2)),
                                C((np.zeros(2),)))],
    "to_float": [case(U())], "to_tuple": [case(U(3, 2))], "to_list": [case(U(3, 2))],
    "add_any": [case(lambda rng: (rng.uniform(size=2), None), lambda rng: (rng.uniform(size=2),
                                                                            rng.uniform(size=3)))],
    "unbroadcast": [case(U(3, 4), C(np.ones(4)))],
    "assemble_adjoint": [case(C({"a": np.zeros(3), "b": np.zeros(2)}), C((("a",),)), U(3)),
                         case(C([np.zeros(3), np.zeros(2)]), C(((0,), (1,), (-1,))),
                              U(3), U(2), U(2)),
                         case(C(np.zeros((3, 4))), C(((0,), (2,), (-1,))), U(4), U(4), U(4))],
    "expand_reduced": [case(U(3), C((3, 4)), axis=1)],
    "copy": [case(U(3))],
    # reverse mode's adjoint helpers (what forward-over-reverse differentiates)
    "getitem_adjoint": [case(U(4), C(np.zeros((3, 4))), C(1))],
    "take_adjoint": [case(U(3), C(np.zeros(5)), C(np.array([0, 3, 3])))],
    "take_along_axis_adjoint": [case(U(3, 1), C(np.zeros((3, 4))),
                                     C(np.array([[0], [3], [1]])), axis=1)],
    "diagonal_adjoint": [case(U(3), C(np.zeros((3, 4))), offset=1)],
    "split_like": [case(U(3, 3), C([np.zeros((2, 3)), np.zeros((1, 3))]))],
    "unstack_like": [case(U(2, 3), C([np.zeros(3), np.zeros(3)]))],
    "einsum_expand": [case(U(3), C(np.zeros((3, 4))), C("a->ab"))],
    "matmul_grad_a": [case(U(3, 2), U(4, 2), C(np.zeros((3, 4))))],
    "matmul_grad_b": [case(U(3, 2), U(3, 4), C(np.zeros((4, 2))))],
    "dot_grad_a": [case(U(3, 2), U(4, 2), C(np.zeros((3, 4))))],
    "dot_grad_b": [case(U(3, 2), U(3, 4), C(np.zeros((4, 2))))],
    # vmap's helpers (what jvp-of-vmap differentiates): batch axis first,
    # state codes and `batched` flags as constants
    "batch_move_in": [case(U(3, 4), C(1)),
                      case(lambda rng: {"a": rng.uniform(size=(2, 4)), "b": rng.uniform(size=3)},
                           C(("dict", ("a", "b"), (1, None))))],
    "batch_move_out": [case(U(4, 3), C(1), C(True), C(4)), case(U(3), C(0), C(False), C(4))],
    "batch_broadcast": [case(U(3), C(False), C(4)),
                        case(lambda rng: (rng.uniform(size=(4, 3)), rng.uniform(size=2)),
                             C(("tuple", (True, False))), C(4))],
    "batch_lift": [case(U(4, 3), C(1), C(3))],
    "batch_sum_unbatched": [case(U(4, 3), C(False)),
                            case(lambda rng: (rng.uniform(size=(4, 3)), rng.uniform(size=(4, 2))),
                                 C(("tuple", (True, False))))],
    "select_lanes": [case(C(np.array([True, False, True])), U(3, 2), U(3, 2))],
    "getitem_lanes": [case(U(4, 3), C((True, True)), C((np.array([0, 2, 1, 1]),))),
                      case(U(4, 3, 5), C((True, False)), C((1,)))],
    "setitem_lanes": [case(U(4, 3), U(4), C((True, True, False)), C((1,))),
                      case(U(5), C(2.0), C((False, False, True)), C((np.array([0, 4, 2]),)))],
    "matmul_lanes": [case(U(4, 2, 3), U(3, 5), C((True, False))),
                     case(U(2, 3), U(4, 3), C((False, True)))],
    "unbroadcast_lanes": [case(U(4, 3, 5), C(np.ones((4, 1, 5))), C(True)),
                          case(U(4, 3, 5), C(np.ones(5)), C(False))],
    "getitem_lanes_adjoint": [case(U(4), C(np.zeros((4, 3))), C((True, True)),
                                   C((np.array([0, 2, 1, 1]),))),
                              case(U(3), C(np.zeros(5)), C((False, True)),
                                   C((np.array([0, 4, 4]),)))],
    "matmul_lanes_adjoint": [case(U(4, 2, 5), U(4, 2, 3), U(3, 5), C((True, False)), C(0)),
                             case(U(4, 2, 5), U(4, 2, 3), U(3, 5), C((True, False)), C(1)),
                             case(U(4, 2, 5), U(4, 2, 3), U(3, 5), C((True, False)), C(1),
                                  keep_lanes=True)],
    # issue 16 (runtime/fft_ops.py, runtime/more_ops.py)
    "fft": [case(U(5), n=8), case(U(3, 4), axis=0, norm="ortho")],
    "ifft": [case(U(6)), case(U(2, 5), n=4, norm="forward")],
    "rfft": [case(U(7), n=6), case(U(3, 4), axis=0)],
    "irfft": [case(U(5), n=9), case(U(4, 3), axis=0, norm="ortho")],
    "fft_transpose": [case(U(8), C(5), C(np.dtype("float64")), n=8)],
    "ifft_transpose": [case(U(6), C(6), C(np.dtype("complex128")))],
    "rfft_transpose": [case(U(4), C(6), n=6)],
    "irfft_transpose": [case(U(8), C(5), C(np.dtype("float64")), n=8)],
    "gammaln": [case(U(3, 4, lo=0.5, hi=2.0))],
    "polygamma": [case(C(1), U(3, 4, lo=0.5, hi=2.0))],
    # complex16: a real x (complex ones: tests/test_complex.py)
    "imag_cotangent": [case(U(3, 4), C(np.ones((3, 4))))],
}
#: primitives the finite-difference sweep cannot call on its own, and why
NO_SWEEP = {
    "getattr_leaf": "reads a field of a pytree node (no array input to perturb); "
                    "checked against finite differences in test_pytrees_user.py",
    "getattr_adjoint": "builds a pytree node; checked through grad of node fields "
                       "in test_pytrees_user.py",
    "pop_restore": "stateful (pops reverse mode's stack); covered by the "
                   "forward-over-reverse tests in test_forward_api.py",
    "stack_unpush": "stateful (pops the adjoint stack of a second reverse pass); "
                    "covered by the second-order gradient tests",
}
DEFAULT = [case(U(3, 4, lo=0.2, hi=0.8))]  # unary elementwise


def differentiable():
    return sorted(n for n, p in table_primitives().items() if p.differentiable)


def covered(name, transformation):
    """Whether primitive `name` has a `transformation` rule or says why not."""
    rule, reason = PRIMITIVES[name].rule_or_reason(transformation)
    return rule is not None or reason is not None


def one_call(name, nargs, kw):
    """A Python function (with registered source) calling primitive `name`."""
    params = ", ".join(f"a{i}" for i in range(nargs))
    kws = "".join(f", {k}={v!r}" for k, v in kw.items())
    src = f"def call_{name}({params}):\n    return {name}({params}{kws})\n"
    filename = f"{GENERATED_PREFIX}test of {name} {abs(hash(src))}>"
    register_source(filename, src)
    ns = dict(PRIMITIVES)
    exec(compile(src, filename, "exec"), ns)
    return ns[f"call_{name}"]


def _is_float_leaf(x):
    return isinstance(x, (float, np.ndarray, np.generic)) and \
        np.issubdtype(np.result_type(x), np.floating)


def _is_active(x):
    return any(_is_float_leaf(v) for v in tree_util.tree_leaves(x))


def _random_like(x, rng, symmetric):
    def leaf(v):
        if not _is_float_leaf(v):
            return np.zeros(np.shape(v)) if isinstance(v, np.ndarray) else 0.0
        t = rng.normal(size=np.shape(v))
        if symmetric:
            t = t + np.swapaxes(t, -1, -2)
        return t if np.ndim(v) else float(t)
    return tree_util.tree_map(leaf, x)


def _axpy(a, t, x):
    return tree_util.tree_map(lambda tv, xv: xv + a * tv if _is_float_leaf(xv) else xv, t, x)


def _flat(x):
    leaves = [np.ravel(np.asarray(v, dtype=float)) for v in tree_util.tree_leaves(x)
              if v is not None]
    return np.concatenate(leaves) if leaves else np.zeros(0)


def _inner(a, b):
    """<a, b> over two pytrees of one structure, pairing leaves by position;
    a None on either side (no value, no tangent: add_any's None leaves)
    contributes nothing."""
    if a is None or b is None:
        return 0.0
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (a, b)
        return sum(_inner(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), (a, b)
        return sum(_inner(x, y) for x, y in zip(a, b))
    return float(np.ravel(np.asarray(a, dtype=float)) @ np.ravel(np.asarray(b, dtype=float)))


def _sweep_cases():
    out = []
    for name in differentiable():
        reason = NO_SWEEP.get(name) or SWEPT_ELSEWHERE.get(name) or \
            PRIMITIVES[name].no_rule.get("jvp")
        if reason:
            out.append(pytest.param(name, None, id=f"{name}",
                                    marks=pytest.mark.skip(reason=reason)))
            continue
        for k, c in enumerate(CASES.get(name, DEFAULT)):
            out.append(pytest.param(name, c, id=f"{name}-{k}"))
    return out


def _setup(name, c, rng):
    makers, kw, symmetric = c
    args = [m(rng) for m in makers]
    active = tuple(i for i, a in enumerate(args) if _is_active(a))
    fn = one_call(name, len(args), kw)
    tangents = [_random_like(a, rng, i in symmetric) for i, a in enumerate(args)]
    return fn, args, active, tangents


def test_every_differentiable_primitive_has_a_jvp_rule():
    missing = [n for n in differentiable() if not covered(n, "jvp")]
    assert not missing, ("differentiable primitives without a JVP rule or a declared "
                         f"reason (Primitive.no_rule): {missing}")


def test_forward_and_reverse_rule_sets_are_the_same():
    try:
        from cotan.autodiff import vjp_rules  # noqa: F401
    except ImportError:
        pytest.skip("reverse mode (autodiff/vjp_rules.py) is not in this build yet")
    # a rule one mode lacks on purpose (declared with a reason) is not a gap
    names = differentiable()
    jvp_only = [n for n in names if PRIMITIVES[n].jvp_rule and not covered(n, "vjp")]
    vjp_only = [n for n in names if PRIMITIVES[n].vjp_rule and not covered(n, "jvp")]
    assert not jvp_only and not vjp_only, \
        f"JVP rule but no VJP rule: {jvp_only}; VJP rule but no JVP rule: {vjp_only}"


@pytest.mark.parametrize("name,c", _sweep_cases())
def test_jvp_matches_finite_differences(name, c, rng):
    fn, args, active, tangents = _setup(name, c, rng)
    g = jvp_function(fn, active)
    validate(generated_core(g).node)
    out, dout = g(*args, *[tangents[i] for i in active])
    eps = 1e-6
    plus = fn(*[_axpy(eps, t, a) if i in active else a for i, (a, t) in
                enumerate(zip(args, tangents))])
    minus = fn(*[_axpy(-eps, t, a) if i in active else a for i, (a, t) in
                 enumerate(zip(args, tangents))])
    fd = (_flat(plus) - _flat(minus)) / (2 * eps)
    np.testing.assert_allclose(_flat(out), _flat(fn(*args)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_flat(dout), fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,c", _sweep_cases())
def test_jvp_is_the_transpose_of_the_vjp(name, c, rng):
    try:
        from cotan import reverse_api
    except ImportError:
        pytest.skip("reverse mode (cotan/reverse_api.py) is not in this build yet")
    no_vjp = PRIMITIVES[name].no_rule.get("vjp")
    if no_vjp:
        pytest.skip(f"{name} has no VJP rule on purpose: {no_vjp}")
    fn, args, active, tangents = _setup(name, c, rng)
    if not active:
        pytest.skip("no differentiable argument")
    g = jvp_function(fn, active)
    out, dout = g(*args, *[tangents[i] for i in active])

    from cotan.forward_api import _partial_args
    restricted = _partial_args(fn, args, active)  # fn of the active arguments only
    out2, pullback = reverse_api.vjp(restricted, *[args[i] for i in active])
    v = _random_like(out, rng, False)
    cts = pullback(v)
    lhs = _inner(v, dout)
    rhs = sum(_inner(ct, tangents[i]) for i, ct in zip(active, cts))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-8, atol=1e-10)
