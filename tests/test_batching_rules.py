"""The batching-rule sweep: every primitive in the table has a batching
rule, and each rule agrees with a Python loop over the batch, for several
`in_axes` (0, 1, -1, and None for some arguments)."""

import hashlib

import numpy as np
import pytest

import cotan
from cotan.runtime import PRIMITIVES
from cotan.runtime.table import table_primitives
from cotan.runtime.collectives import SWEPT_ELSEWHERE
from cotan.autodiff import batching
from cotan.autodiff.core_form import validate
from cotan.autodiff.materialize import generated_core
from cotan.autodiff.parse import register_source

batching._load_rules()

B = 3
rng = np.random.default_rng(0)


def F(*shape, lo=-1.0, hi=1.0):
    return lambda r: r.uniform(lo, hi, shape)


def I(*shape, lo=0, hi=4):
    return lambda r: r.integers(lo, hi, shape)


def Bo(*shape):
    return lambda r: r.random(shape) < 0.5


POS = dict(lo=0.2, hi=0.9)
# name -> list of (array argument generators, extra source after them)
CASES = {}


def case(name, gens, extra=""):
    CASES.setdefault(name, []).append((gens, extra))


for u in ["negative", "absolute", "sin", "cos", "tan", "arctan", "sinh", "cosh", "tanh",
          "arcsinh", "exp", "expm1", "sign", "floor", "ceil", "trunc", "rint", "isnan",
          "isinf", "isfinite", "round", "astype_f32", "copy", "zeros_like", "ones_like",
          "stop_gradient", "logical_not", "positive", "real", "imag", "conj", "unit_phase"]:
    if u == "astype_f32":
        case("astype", [F(2, 3)], "'float32'")
        continue
    case(u, [F(2, 3)])
for u in ["arcsin", "arccos", "arctanh", "log", "log1p", "sqrt"]:
    case(u, [F(2, 3, **POS)])
case("arccosh", [F(4, lo=1.5, hi=3.0)])
for b in ["add", "subtract", "multiply", "maximum", "minimum", "arctan2", "equal",
          "not_equal", "less", "less_equal", "greater", "greater_equal", "fmod", "remainder",
          "logical_and", "logical_or", "logical_xor", "add_any"]:
    case(b, [F(3), F(2, 3)])
    case(b, [F(2, 3), F(3)])
case("divide", [F(3), F(2, 3, lo=0.5, hi=1.0)])
case("power", [F(2, 3, **POS), F(3)])
for b in ["floor_divide", "bitwise_and", "bitwise_or", "bitwise_xor", "left_shift",
          "right_shift"]:
    case(b, [I(3, lo=1, hi=9), I(2, 3, lo=1, hi=3)])
case("invert", [I(3)])
for s3 in ["where", "select"]:
    case(s3, [Bo(2, 3), F(3), F(2, 3)])
for red in ["sum", "prod", "max", "min", "argmax", "argmin", "any", "all"]:
    case(red, [F(2, 3)])
    case(red, [F(2, 3)], "axis=-1")
    case(red, [F(2, 3, 2)], "axis=1, keepdims=True")
case("sum", [F(2, 3)], "axis=(0, 1)")
for sc in ["cumsum", "cumprod"]:
    case(sc, [F(2, 3)], "axis=1")
    case(sc, [F(2, 3)])
for q in ["shape", "ndim", "size", "length", "dtype"]:
    case(q, [F(2, 3)])
case("getitem", [F(4, 3)], "1")
case("getitem", [F(4, 3)], "make_slice(1, None, None), 0")
case("getitem", [F(4, 3), I(2, lo=0, hi=4)])
case("getitem", [F(4, 3), I(lo=0, hi=4)])
case("getitem", [F(4, 3, 2)], "np.array([0, 2]), make_slice(None, None, None), 1")
case("setitem", [F(4, 3), F(3)], "1")
case("setitem", [F(4, 3), F()], "make_slice(1, None, None), 0")
case("setitem", [F(4, 3), F(3), I(lo=0, hi=4)])
case("make_tuple", [F(2), F(3)])
case("make_list", [F(2), F(3)])
case("make_dict", [F(2), F(3)], "keys=('a', 'b')")
case("to_float", [F()])
case("to_int", [F(lo=0, hi=5)])
case("is_", [F(2)], "None")
case("is_not", [F(2)], "None")
case("reshape", [F(2, 3)], "(3, 2)")
case("reshape", [F(2, 3)], "-1")
case("transpose", [F(2, 3, 4)])
case("transpose", [F(2, 3, 4)], "(1, 0, 2)")
case("broadcast_to", [F(3)], "(2, 3)")
case("flip", [F(2, 3)], "1")
case("flip", [F(2, 3)])
case("diagonal", [F(3, 3)])
case("diagonal", [F(2, 3, 3)], "0, 1, 2")
case("take", [F(5, 2), I(3, lo=0, hi=5)], "axis=0")
case("take", [F(5, 2)], "np.array([0, 4]), axis=0")
case("take_along_axis", [F(3, 4), I(3, 2, lo=0, hi=4)], "axis=1")
case("sort", [F(2, 5)])
case("argsort", [F(2, 5)], "axis=0")
case("searchsorted", [F(4)], "0.1")
case("concatenate", [F(2, 3), F(1, 3)], "")  # special-cased below
case("array", [F(), F()], "")                # special-cased below
case("linspace", [F(), F(lo=2, hi=3)], "num=4")
case("linspace", [F(3), F(3, lo=2, hi=3)], "4, False, False, None, 1")
case("linspace", [F(2), F(2, lo=2, hi=3)], "5, retstep=True")
case("astype", [F(2, 3, lo=-3, hi=3)], "'int64'")
case("diagonal", [F(3, 4)], "1")
case("cumsum", [F(2, 3)], "1")
case("matmul", [F(2, 3), F(3, 4)])
case("matmul", [F(3), F(3, 4)])
case("matmul", [F(2, 3), F(3)])
case("matmul", [F(2, 2, 3), F(3, 4)])
case("dot", [F(2, 3), F(3)])
case("dot", [F(3), F(3)])
case("einsum", [F(2, 3), F(3, 4)], "")       # special-cased below
for la in ["inv", "det", "slogdet", "eigh", "svd", "qr"]:
    case(la, [lambda r: r.uniform(-1, 1, (3, 3)) + 3 * np.eye(3)])
case("cholesky", [lambda r: (lambda m: m @ m.T + 3 * np.eye(3))(r.uniform(-1, 1, (3, 3)))])
case("solve", [lambda r: r.uniform(-1, 1, (3, 3)) + 3 * np.eye(3), F(3)])
case("unbroadcast", [F(2, 3), F(3)])
case("unbroadcast", [F(2, 3), F(1, 3)])
case("unbroadcast", [F(3), F(3)])
case("expand_reduced", [F(3)], "(2, 3), axis=0")
case("expand_reduced", [F()], "(2, 3)")
case("strformat", [F()], "")                 # special-cased below
case("to_tuple", [F(2, 3)])
case("to_list", [F(2, 3)])
case("list_append", [F(2)], "")              # special-cased below
case("tangent_zeros", [F(2, 3)])
case("zero_adjoint", [F(2, 3)])
case("trip_count", [I(lo=0, hi=3), I(lo=3, hi=6)], "1")
case("select_lanes", [Bo(3), F(3, 2), F(3, 2)])
case("range_active", [I(lo=0, hi=4), I(lo=0, hi=4)], "1")
case("batch_lift", [F(3, 2)], "2")
case("batch_broadcast", [F(2)], "False, 4")
case("batch_sum_unbatched", [F(4, 2)], "False")
case("matmul_grad_a", [F(2, 4), F(3, 4), F(2, 3)])
case("matmul_grad_a", [F(4), F(3, 4), F(3)])
case("matmul_grad_b", [F(4), F(3), F(3, 4)])
case("matmul_grad_a", [F(2), F(3), F(2, 3)])
case("matmul_grad_b", [F(2, 4), F(2, 3), F(3, 4)])
case("dot_grad_a", [F(4), F(3, 4), F(3)])
case("dot_grad_b", [F(4), F(3), F(3, 4)])

SPECIAL_SOURCE = {
    "concatenate": "concatenate(make_list(a0, a1), axis=0)",
    "array": "array(make_list(a0, a1))",
    "einsum": "einsum('ij,jk->ik', a0, a1)",
    "strformat": "strformat('{:.3f}', a0)",
    "list_append": "list_append(make_list(a0), a0)",
    "seq_concat": "seq_concat(make_tuple(a0, a1), make_tuple(a1))",
    "seq_repeat": "seq_repeat(make_list(a0, a1), 2)",
    "seq_repeat_adjoint": "seq_repeat_adjoint(make_tuple(a0, a1, a0, a1), make_tuple(a0, a1))",
}
case("seq_concat", [F(3), F(2, 3)])
case("seq_repeat", [F(3), F(2)])
case("seq_repeat_adjoint", [F(3), F(2)])

#: primitives checked elsewhere or refused on purpose, with the reason
NOT_SWEPT = {
    "imag_cotangent": "complex16: imag's VJP; vmapped against a Python loop in "
                      "tests/test_complex.py",
    "jacobian_array_check": "reads only whether its argument is a container; "
                            "tests/test_jacobian_drivers.py vmaps it",
    "fft": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "ifft": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "rfft": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "irfft": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "fft_transpose": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "ifft_transpose": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "rfft_transpose": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "irfft_transpose": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "erf": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "gammaln": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "polygamma": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "random_key": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "random_split": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "random_fold_in": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "random_normal": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "random_uniform": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "random_randint": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "random_bernoulli": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "random_permutation": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "unique_plan": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "eig": "issue 16: swept against a Python loop in tests/test_numpy_more.py / tests/test_random.py",
    "print": "effect: tests/test_vmap_programs.py checks per-lane printing",
    "check": "effect: tests/test_vmap_programs.py checks per-lane assertions",
    "print_lanes": "effect of batched print",
    "check_lanes": "effect of batched check",
    "make_slice": "refused: per-lane slice bounds give per-lane shapes",
    "nonzero": "refused: per-lane output shapes",
    "zeros": "creation: unbatched shape arguments only (refused when batched)",
    "ones": "creation: unbatched shape arguments only",
    "eye": "creation: unbatched shape arguments only",
    "tri": "creation: unbatched shape arguments only",
    "arange": "creation: unbatched shape arguments only",
    "new_stack": "no arguments", "push": "reverse-mode stack: covered by vmap(grad)",
    "pop": "reverse-mode stack", "pop_restore": "reverse-mode stack",
    "copy_stack": "reverse-mode stack: no array result to compare lane by lane",
    "check_svd_vjp": "a shape check (raises or returns None): no result to compare",
    "stack_unpop": "reverse-mode stack (second reverse pass): covered by vmap(grad(grad))",
    "stack_unpush": "reverse-mode stack (second reverse pass): covered by vmap(grad(grad))",
    "check_grad_input": "a check",
    "operand_guard": "a check of an operand's kind (raises or returns None): "
                     "tests/test_sequences.py", "grad_seed": "covered by vmap(grad) tests",
    "errstate_quiet": "no data", "errstate_restore": "no data",
    "batch_size": "covered by nested vmap tests", "batch_move_in": "covered by in_axes tests",
    "batch_move_out": "covered by out_axes tests", "map_lanes": "covered by nested vmap",
    "lanes_any": "covered by nested vmap of while loops",
    "axes_after_batch": "static", "lane_length": "static (a length)", "batch_shape": "static", "lane_perm": "static",
    "inverse_axes": "static",
    "getitem_lanes": "covered by nested vmap", "setitem_lanes": "covered by nested vmap",
    "matmul_lanes": "covered by nested vmap", "getitem_lanes_adjoint": "grad of vmap",
    "matmul_lanes_adjoint": "grad of vmap", "unbroadcast_lanes": "nested vmap of grad",
    "getitem_adjoint": "lane by lane", "take_adjoint": "lane by lane",
    "take_along_axis_adjoint": "lane by lane", "diagonal_adjoint": "lane by lane",
    "split_like": "lane by lane", "unstack_like": "lane by lane",
    "einsum_expand": "lane by lane", "assemble_adjoint": "lane by lane (reverse mode helper)",
    "has_key": "a dict's structure, unbatched: d.get under vmap in test_python_constructs.py",
    "dict_keys": "a dict's keys, unbatched: d.items() under vmap in test_python_constructs.py",
    "getattr_leaf": "reads a field of a pytree node: vmap over nodes in test_pytrees_user.py",
    "getattr_adjoint": "lane by lane (reverse mode helper); vmap(grad) in test_pytrees_user.py",
}


def test_every_primitive_has_a_batching_rule():
    # user-defined primitives (custom_jvp/custom_vjp/checkpoint) are not
    # swept: tests/test_vmap_api.py maps them; a declared reason
    # (Primitive.no_rule) stands in for a rule
    batching._load_rules()
    missing = [n for n, p in table_primitives().items()
               if p.rule_or_reason("batching") == (None, None)]
    assert not missing, f"primitives without a batching rule or a declared reason: {missing}"


def test_every_primitive_is_swept_or_explained():
    # static_* helpers refuse batched values
    unswept = [n for n in table_primitives() if n not in CASES and n not in NOT_SWEPT
               and n not in SWEPT_ELSEWHERE and not n.startswith("static_")]
    assert not unswept, f"add a sweep case or a reason for: {unswept}"


_counter = [0]


def make_fn(prim, nargs, extra):
    params = [f"a{i}" for i in range(nargs)]
    if prim in SPECIAL_SOURCE:
        body = SPECIAL_SOURCE[prim]
    else:
        body = f"{prim}({', '.join(params + ([extra] if extra else []))})"
    src = f"def f_{prim}({', '.join(params)}):\n    return {body}\n"
    filename = f"<cotan test sweep {hashlib.sha1(src.encode()).hexdigest()[:10]}>"
    register_source(filename, src)
    ns = dict(PRIMITIVES)
    ns["np"] = np
    exec(compile(src, filename, "exec"), ns)
    return ns[f"f_{prim}"]


def _params():
    out = []
    for name, cases in sorted(CASES.items()):
        if name not in PRIMITIVES:
            continue
        for k, (gens, extra) in enumerate(cases):
            axes_options = [0, -1]
            if all(g(rng).ndim >= 1 for g in gens):
                axes_options.append(1)
            if len(gens) >= 2:
                axes_options.append("first_none")
                axes_options.append("last_none")
            for ax in axes_options:
                out.append(pytest.param(name, k, ax, id=f"{name}-{k}-{ax}"))
    return out


def _tree_close(a, b):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _tree_close(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _tree_close(x, y)
    elif isinstance(b, np.dtype) or isinstance(a, (str, np.dtype)):
        assert a == b
    elif np.asarray(b).dtype.kind in "US":
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    else:
        np.testing.assert_allclose(np.asarray(a, dtype=np.result_type(a)), np.asarray(b),
                                   rtol=1e-9, atol=1e-9)


def _stack_tree(outs):
    first = outs[0]
    if isinstance(first, dict):
        return {k: _stack_tree([o[k] for o in outs]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_stack_tree([o[i] for o in outs]) for i in range(len(first)))
    if isinstance(first, np.dtype):
        assert all(o == first for o in outs)
        return first  # the same for every lane: not batched
    return np.stack([np.asarray(o) for o in outs])


@pytest.mark.parametrize("name,k,axes", _params())
def test_rule_matches_python_loop(name, k, axes):
    gens, extra = CASES[name][k]
    r = np.random.default_rng(hash((name, k)) % 2**32)
    lanes = [[g(r) for g in gens] for _ in range(B)]
    fn = make_fn(name, len(gens), extra)
    if axes == "first_none":
        in_axes = (None,) + (0,) * (len(gens) - 1)
    elif axes == "last_none":
        in_axes = (0,) * (len(gens) - 1) + (None,)
    else:
        in_axes = (axes,) * len(gens)
    args = []
    for i, ax in enumerate(in_axes):
        if ax is None:
            for lane in lanes:
                lane[i] = lanes[0][i]
            args.append(lanes[0][i])
        else:
            args.append(np.stack([lane[i] for lane in lanes], axis=ax))
    with np.errstate(all="ignore"):
        expected = _stack_tree([fn(*lane) for lane in lanes])
        vf = cotan.vmap(fn, in_axes=in_axes)
        got = vf(*args)
    validate(generated_core(vf).node)
    _tree_close(got, expected)


@pytest.mark.parametrize("name", ["make_slice", "nonzero", "zeros"])
def test_value_dependent_shapes_are_refused(name):
    src = {"make_slice": "def f(x, i):\n    return x[:i]\n",
           "nonzero": "def f(x, i):\n    return np.nonzero(x > i)\n",
           "zeros": "def f(x, i):\n    return np.zeros(i) + x[0]\n"}[name]
    filename = f"<cotan test refuse {name}>"
    register_source(filename, src)
    ns = {"np": np}
    exec(compile(src, filename, "exec"), ns)
    with pytest.raises(cotan.errors.CotanError):
        cotan.vmap(ns["f"])(np.ones((3, 4)), np.array([1, 2, 3]))
