"""Every differentiable primitive has a VJP rule, and each rule agrees
with central finite differences (float64) on random inputs, broadcasting
cases included.

The sweep walks `PRIMITIVES`, so a primitive added later without a rule or
without an input spec below makes this test fail.  Each case builds a tiny
probe function `out = prim(args); return sum(out * W)` as source (the
generated-source path every transformation uses), takes `cotan.grad` of it
and compares with finite differences.
"""

import hashlib

import numpy as np
import pytest

from cotan.runtime.collectives import SWEPT_ELSEWHERE

import cotan
from cotan.autodiff.core_form import validate
from cotan.autodiff.materialize import generated_core
from cotan.autodiff.parse import register_source
from cotan.runtime import PRIMITIVES
from cotan.runtime.table import table_primitives
from cotan.tree_util import tree_flatten

from tests.test_grad_programs import numerical_grad


class R:
    """A random float64 input of `shape`; `kind` picks the value range."""

    def __init__(self, *shape, kind="normal", diff=True):
        self.shape, self.kind, self.diff = shape, kind, diff

    def make(self, rng):
        s = self.shape
        if self.kind == "normal":
            return rng.normal(size=s)
        if self.kind == "pos":
            return rng.uniform(0.5, 2.0, s)
        if self.kind == "unit":
            return rng.uniform(-0.8, 0.8, s)
        if self.kind == "gt1":
            return rng.uniform(1.5, 3.0, s)
        if self.kind == "distinct":
            return rng.permutation(np.prod(s, dtype=int)).reshape(s) * 0.37 + \
                rng.uniform(0, 0.1, s)
        if self.kind == "wellcond":
            return rng.normal(size=s) * 0.3 + 3.0 * np.eye(s[-1])
        if self.kind == "spd":
            a = rng.normal(size=s)
            return a @ np.swapaxes(a, -1, -2) + s[-1] * np.eye(s[-1])
        if self.kind == "sym":
            a = rng.normal(size=s)
            return a + np.swapaxes(a, -1, -2) + np.diag(np.arange(s[-1]) * 3.0)
        raise ValueError(self.kind)


class K:
    """A constant (non-differentiated) argument."""

    def __init__(self, value):
        self.value = value


def case(*args, **kw):
    return (args, kw)


U = R(3, 4)
BIN = [case(R(3, 4), R(3, 4)), case(R(3, 1), R(4)), case(R(3), 2.0), case(1.5, R(2, 3))]
BIN_POS = [case(R(3, 4, kind="pos"), R(3, 4, kind="pos")), case(R(3, 1, kind="pos"), R(4, kind="pos"))]
BIN_DISTINCT = [case(R(3, 4, kind="distinct"), R(3, 4, kind="distinct")),
                case(R(3, 1, kind="distinct"), R(4, kind="distinct"))]
REDUCE = [case(R(3, 4)), case(R(3, 4), axis=0), case(R(2, 3, 4), axis=(0, 2), keepdims=True)]
REDUCE_DISTINCT = [case(R(3, 4, kind="distinct")), case(R(3, 4, kind="distinct"), axis=1),
                   case(R(2, 3, 4, kind="distinct"), axis=(0, 2), keepdims=True)]


def unary(kind="normal"):
    return [case(R(3, 4, kind=kind)), case(R(5, kind=kind))]


SPECS = {
    # issue 16 (runtime/fft_ops.py, runtime/more_ops.py); complex outputs through |.|^2
    "fft": "special", "ifft": "special", "rfft": "special",
    "irfft": [case(R(5), n=9), case(R(4, 3), axis=0, norm="ortho")],
    "fft_transpose": [case(R(8), K(5), K(np.dtype("float64")), n=8)],
    "ifft_transpose": [case(R(6), K(6), K(np.dtype("float64")))],
    "rfft_transpose": [case(R(4), K(6), n=6)],
    "irfft_transpose": [case(R(8), K(5), K(np.dtype("float64")), n=8)],
    # complex16: on real inputs (complex ones: tests/test_complex.py)
    "real": unary(), "imag": unary(), "conj": unary(), "unit_phase": unary(),
    "imag_cotangent": [case(R(3, 4), K(np.ones((3, 4))))],
    "erf": unary(), "gammaln": unary("pos"), "polygamma": [case(K(1), R(3, 4, kind="pos"))],
    "add": BIN, "subtract": BIN, "multiply": BIN, "add_any": [case(R(3, 4), R(3, 4))],
    "divide": [case(R(3, 4), R(3, 4, kind="pos")), case(R(3, 1), R(4, kind="pos"))],
    "power": [case(R(3, 4, kind="pos"), R(3, 4)), case(R(3, kind="pos"), 3.0)],
    "maximum": BIN_DISTINCT, "minimum": BIN_DISTINCT,
    "arctan2": BIN_POS,
    "remainder": [case(R(3, 4, kind="pos"), K(np.full((3, 4), 0.3)))],
    "fmod": [case(R(3, 4, kind="pos"), K(np.full((3, 4), 0.3)))],
    "negative": unary(), "absolute": unary("pos"),
    "sin": unary(), "cos": unary(), "tan": unary("unit"), "arcsin": unary("unit"),
    "arccos": unary("unit"), "arctan": unary(), "sinh": unary(), "cosh": unary(),
    "tanh": unary(), "arcsinh": unary(), "arccosh": unary("gt1"), "arctanh": unary("unit"),
    "exp": unary(), "expm1": unary(), "log": unary("pos"), "log1p": unary("pos"),
    "sqrt": unary("pos"),
    "where": [case(K(np.array([True, False, True, False])), R(3, 4), R(4)),
              case(K(np.array([[True], [False], [True]])), R(3, 4), 2.0)],
    "select": [case(K(np.array([True, False, True, False])), R(3, 4), R(4))],
    "matmul": [case(R(3, 4), R(4, 2)), case(R(4), R(4, 2)), case(R(3, 4), R(4)),
               case(R(4), R(4)), case(R(2, 3, 4), R(4, 5)), case(R(3, 4), R(2, 4, 5))],
    "dot": [case(R(3, 4), R(4, 2)), case(R(4), R(4)), case(R(3, 4), R(4)), case(R(3), 2.0)],
    "einsum": [case("ij,jk->ik", R(3, 4), R(4, 2)), case("i,j->", R(3), R(4)),
               case("ij,j", R(3, 4), R(4)), case("ii->", R(3, 3)), case("ii->i", R(3, 3)),
               case("iij,j->ij", R(2, 2, 3), R(3)), case("...ij,...jk->...ik", R(2, 3, 4), R(4, 2)),
               case("...ij,...jk", R(2, 1, 3, 4), R(5, 4, 2)), case("i...->...", R(3, 2, 4)),
               case("ij...,j->...i", R(3, 4, 2), R(4))],
    "inv": [case(R(3, 3, kind="wellcond"))],
    "solve": [case(R(3, 3, kind="wellcond"), R(3)), case(R(3, 3, kind="wellcond"), R(3, 2))],
    "det": [case(R(3, 3, kind="wellcond"))],
    "slogdet": [case(R(3, 3, kind="wellcond"))],
    "cholesky": "special", "eigh": "special",
    "getattr_leaf": "special", "getattr_adjoint": "special",
    "qr": [case(R(4, 3))],
    "svd": [case(R(4, 3), full_matrices=False), case(R(3, 4), full_matrices=False),
            case(R(3, 3, kind="wellcond")), case(R(4, 3), full_matrices=False, compute_uv=False)],
    "sum": REDUCE, "prod": [case(R(3, 4, kind="pos")), case(R(3, 4, kind="pos"), axis=0)],
    "max": REDUCE_DISTINCT, "min": REDUCE_DISTINCT,
    "cumsum": [case(R(3, 4)), case(R(3, 4), axis=1)],
    "cumprod": [case(R(3, 4, kind="pos")), case(R(3, 4, kind="pos"), axis=0)],
    "reshape": [case(R(3, 4), (2, 6)), case(R(3, 4), (-1,))],
    "transpose": [case(R(3, 4)), case(R(2, 3, 4), axes=(1, 2, 0))],
    "broadcast_to": [case(R(3, 1), (2, 3, 4)), case(R(4), (3, 4))],
    "concatenate": "special", "array": "special", "make_list": "special",
    "flip": [case(R(3, 4)), case(R(3, 4), axis=1)],
    "diagonal": [case(R(3, 4)), case(R(3, 4), offset=1), case(R(2, 3, 3), 0, 1, 2)],
    "take": [case(R(5), K(np.array([0, 2, 2, 4]))), case(R(3, 4), K(np.array([1, 1])), axis=1)],
    "take_along_axis": [case(R(3, 4), K(np.array([[0, 3], [1, 1], [2, 0]])), axis=1)],
    "sort": [case(R(3, 4, kind="distinct")), case(R(3, 4, kind="distinct"), axis=0)],
    "astype": [case(R(3, 4), "float64"), case(R(3, 4), "int64"), case(R(3, 4), "bool")],
    "copy": unary(),
    "linspace": [case(R(), R(), 5), case(R(3), R(3), 4, endpoint=False, axis=1),
                 case(R(2), 1.0, 5, retstep=True), case(R(2, 1), R(3), 6, True, False, None, -1),
                 case(R(3), R(3), 4, dtype="int64")],
    "to_float": [case(R())],
    "to_tuple": [case(R(3, 2))], "to_list": [case(R(3, 2))],
    "getitem": [case(R(5), 2), case(R(3, 4), K(slice(1, 3)), K(slice(None, None, 2))),
                case(R(6), K(np.array([0, 2, 2, 5])))],
    "setitem": [case(R(5), R(2), K(slice(1, 3))), case(R(3, 4), 2.0, 1),
                case(R(3, 4), R(4), 0)],
    "make_tuple": [case(R(3), R(2, 2))], "make_dict": [case(R(3), R(2), keys=("a", "b"))],
    "list_append": "special",
    "seq_concat": "special", "seq_repeat": "special", "seq_repeat_adjoint": "special",
    "unbroadcast": [case(R(3, 4), K(np.zeros(4))), case(R(2, 3, 4), K(np.zeros((3, 1))))],
    "expand_reduced": [case(R(3), (3, 4), 1, False), case(R(1, 4), (3, 4), 0, True)],
    "getitem_adjoint": [case(R(2), K(np.zeros(5)), K(slice(1, 3))),
                        case(R(4), K(np.zeros(6)), K(np.array([0, 2, 2, 5])))],
    "take_adjoint": [case(R(4), K(np.zeros(5)), K(np.array([0, 2, 2, 4])))],
    "assemble_adjoint": [case(K({"a": np.zeros(3), "b": np.zeros(2)}), (("a",),), R(3)),
                         case(K([np.zeros(3), np.zeros(2)]), ((0,), (1,), (-1,)), R(3), R(2), R(2)),
                         case(K(np.zeros((3, 4))), ((0,), (2,), (-1,)), R(4), R(4), R(4))],
    "take_along_axis_adjoint": [case(R(3, 2), K(np.zeros((3, 4))),
                                     K(np.array([[0, 3], [1, 1], [2, 0]])), 1)],
    "diagonal_adjoint": [case(R(3), K(np.zeros((3, 4))))],
    "split_like": "special",
    "unstack_like": [case(R(2, 3), K([np.zeros(3), np.zeros(3)]))],
    "einsum_expand": [case(R(3), K(np.zeros((3, 4))), "i->ij"), case(R(3), K(np.zeros((3, 3))), "i->ii"),
                      case(R(2, 3, 4), K(np.zeros((1, 4))), "...j->...j"),
                      case(R(3, 4), K(np.zeros(3)), "ij->i")],
    "matmul_grad_a": [case(R(3, 2), R(4, 2), K(np.zeros((3, 4)))), case(R(2), R(4, 2), K(np.zeros(4)))],
    "matmul_grad_b": [case(R(3, 2), R(3, 4), K(np.zeros((4, 2)))), case(R(3), R(3, 4), K(np.zeros(4)))],
    "dot_grad_a": [case(R(3, 2), R(4, 2), K(np.zeros((3, 4))))],
    "dot_grad_b": [case(R(3, 2), R(3, 4), K(np.zeros((4, 2))))],
    # the batching stage's helpers (runtime/batching_support.py): grad of vmap
    "batch_move_in": [case(R(3, 4), 1), case(R(3, 4), 0)],
    "batch_move_out": [case(R(3, 4), 1, True, 3), case(R(4), 0, False, 3)],
    "batch_broadcast": [case(R(4), False, 3), case(R(3, 4), True, 3)],
    "batch_lift": [case(R(3, 4), 3), case(R(3, 4), 1)],
    "batch_sum_unbatched": [case(R(3, 4), False), case(R(3, 4), True)],
    "select_lanes": [case(K(np.array([True, False, True])), R(3, 4), R(3, 4))],
    "getitem_lanes": [case(R(3, 4), (True, False), (1,)),
                      case(R(3, 4), (True, True), K((np.array([0, 3, 1]),))),
                      case(R(4), (False, True), K((np.array([0, 3, 3]),)))],
    "matmul_lanes": [case(R(3, 2, 4), R(4, 5), (True, False)), case(R(3, 4), R(3, 4, 2), (True, True)),
                     case(R(2, 4), R(3, 4), (False, True))],
    "unbroadcast_lanes": [case(R(3, 2, 4), K(np.zeros((3, 1, 4))), True),
                          case(R(3, 2, 4), K(np.zeros(4)), False)],
}

# primitives whose operands are containers: probe source written by hand
SPECIAL_SOURCE = {
    "fft": ("def probe(a):\n    return sum(absolute(fft(a, n=8)) ** 2 * W0)\n", [R(5)], [(8,)]),
    "ifft": ("def probe(a):\n    return sum(absolute(ifft(a, axis=0)) ** 2 * W0)\n", [R(4, 3)],
             [(4, 3)]),
    "rfft": ("def probe(a):\n    return sum(absolute(rfft(a, n=6)) ** 2 * W0)\n", [R(7)], [(4,)]),
    "concatenate": ("def probe(a, b):\n    return sum(concatenate(make_list(a, b), axis=0) * W0)\n",
                    [R(2, 3), R(3, 3)], [(5, 3)]),
    "array": ("def probe(a, b):\n    return sum(array(make_list(a, b)) * W0)\n",
              [R(3), R(3)], [(2, 3)]),
    "make_list": ("def probe(a, b):\n    t = make_list(a, b)\n    return sum(t[0] * W0) + sum(t[1] * W1)\n",
                  [R(3), R(2)], [(3,), (2,)]),
    "list_append": ("def probe(a, b):\n    t = list_append(make_list(a), b)\n"
                    "    return sum(t[0] * W0) + sum(t[1] * W1)\n", [R(3), R(2)], [(3,), (2,)]),
    "seq_concat": ("def probe(a, b):\n    t = seq_concat(make_tuple(a), make_tuple(b, a))\n"
                   "    return sum(t[0] * W0) + sum(t[1] * W1) + sum(t[2] * W2)\n",
                   [R(3), R(2)], [(3,), (2,), (3,)]),
    "seq_repeat": ("def probe(a, b):\n    t = seq_repeat(make_list(a, b), 2)\n"
                   "    return sum(t[0] * W0) + sum(t[1] * W1) + sum(t[3] * W2)\n",
                   [R(3), R(2)], [(3,), (2,), (2,)]),
    "seq_repeat_adjoint": ("def probe(a, b):\n"
                           "    t = seq_repeat_adjoint(make_tuple(a, b, b, a), make_tuple(Z0, Z0))\n"
                           "    return sum(t[0] * W0) + sum(t[1] * W1)\n",
                           [R(2), R(2)], [(2,), (2,)]),
    "split_like": ("def probe(a):\n    t = split_like(a, make_list(Z0, Z1), 0)\n"
                   "    return sum(t[0] * W0) + sum(t[1] * W1)\n", [R(5)], [(2,), (3,)]),
}
SPECIAL_SOURCE.update({
    # cholesky and eigh read one triangle: probe them on symmetrized input
    "cholesky": ("def probe(a):\n    s = (a + transpose(a)) * 0.5\n"
                 "    return sum(cholesky(s) * W0)\n", [R(3, 3, kind="spd")], [(3, 3)]),
    "eigh": ("def probe(a):\n    s = (a + transpose(a)) * 0.5\n    t = eigh(s)\n"
             "    return sum(t[0] * W0) + sum(t[1] * W1)\n", [R(3, 3, kind="sym")], [(3,), (3, 3)]),
})
SPECIAL_SOURCE.update({
    # a field read and its adjoint: a node built by getattr_adjoint, read back
    "getattr_leaf": ("def probe(a):\n    t = getattr_adjoint(a, Z2, 'b')\n"
                     "    return sum(getattr_leaf(t, 'b') * W0) + sum(getattr_leaf(t, 'w') * W1)\n",
                     [R(2)], [(2,), (3, 2)]),
    "getattr_adjoint": ("def probe(a):\n    t = getattr_adjoint(a, Z2, 'w')\n"
                        "    return sum(t[0] * W0) + sum(t[1] * W1)\n", [R(3, 2)], [(3, 2), (2,)]),
})
from tests.test_pytrees_user import Params as _Params  # noqa: E402
SPECIAL_GLOBALS = {"Z0": np.zeros(2), "Z1": np.zeros(3),
                   "Z2": _Params(np.zeros((3, 2)), np.zeros(2))}

def _paths(value, prefix="out"):
    if isinstance(value, (tuple, list)):
        return [p for i, v in enumerate(value) for p in _paths(v, f"{prefix}[{i}]")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths(v, f"{prefix}[{k!r}]")]
    return [(prefix, np.shape(value))]


_counter = [0]


def _compile(text, namespace):
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    _counter[0] += 1
    filename = f"<cotan test probe {_counter[0]} {digest}>"
    register_source(filename, text)
    ns = dict(PRIMITIVES)
    ns.update(namespace)
    exec(compile(text, filename, "exec"), ns)
    return ns["probe"]


def _probe(name, args, kw, rng):
    """Source of `probe(*diff_args)` calling primitive `name`, its
    arguments and the differentiated positions."""
    params, call_args, values, namespace = [], [], [], {}
    for i, a in enumerate(args):
        if isinstance(a, R):
            params.append(f"a{i}")
            call_args.append(f"a{i}")
            values.append(a.make(rng))
        elif isinstance(a, K):
            namespace[f"k{i}"] = a.value
            call_args.append(f"k{i}")
        else:
            call_args.append(repr(a))
    call_args += [f"{k}={v!r}" for k, v in kw.items()]
    prim = PRIMITIVES[name]
    full = []
    it = iter(values)
    for a in args:
        full.append(next(it) if isinstance(a, R) else a.value if isinstance(a, K) else a)
    out = prim(*full, **kw)
    terms = []
    for j, (path, shape) in enumerate(_paths(out)):
        namespace[f"W{j}"] = rng.normal(size=shape)
        terms.append(f"sum({path} * W{j})")
    text = (f"def probe({', '.join(params)}):\n"
            f"    out = {name}({', '.join(call_args)})\n"
            f"    return {' + '.join(terms)}\n")
    return _compile(text, namespace), values


def _check(fn, values):
    g = cotan.grad(fn, argnums=tuple(range(len(values))))
    validate(generated_core(g).node)
    got = g(*values)
    for k, gk in enumerate(got):
        want = numerical_grad(fn, values, k)
        np.testing.assert_allclose(gk, want, rtol=1e-5, atol=1e-6)


DIFFERENTIABLE = sorted(n for n, p in table_primitives().items() if p.differentiable)


def _rule_or_reason(name):
    return PRIMITIVES[name].rule_or_reason("vjp")


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_every_differentiable_primitive_has_a_vjp_rule(name):
    rule, reason = _rule_or_reason(name)
    assert rule is not None or reason, \
        f"differentiable primitive {name!r} has no VJP rule and no declared no-rule reason"


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_vjp_rule_matches_finite_differences(name):
    rule, reason = _rule_or_reason(name)
    if rule is None and reason:
        pytest.skip(f"{name} has no VJP rule on purpose: {reason}")
    if name in SWEPT_ELSEWHERE:
        pytest.skip(f"{name}: {SWEPT_ELSEWHERE[name]}")
    spec = SPECS.get(name)
    assert spec is not None, f"no input spec for primitive {name!r}: add one to SPECS"
    rng = np.random.default_rng(0)
    if spec == "special":
        text, inputs, shapes = SPECIAL_SOURCE[name]
        ns = dict(SPECIAL_GLOBALS)
        for j, s in enumerate(shapes):
            ns[f"W{j}"] = rng.normal(size=s)
        _check(_compile(text, ns), [r.make(rng) for r in inputs])
        return
    for args, kw in spec:
        fn, values = _probe(name, args, kw, rng)
        _check(fn, values)


def test_non_differentiable_primitives_get_no_adjoint():
    def f(x):
        return np.sum(np.floor(x) * x)
    x = np.array([1.3, 2.7])
    np.testing.assert_allclose(cotan.grad(f)(x), np.floor(x))
    assert "floor(" in cotan.source(cotan.grad(f))
    assert "dt = " not in cotan.source(cotan.grad(f)).split("grad of")[1].split("floor")[0]
