"""vmap regressions: parameters spelled by position, pad, and the batched
reverse-mode interplay.

* every batching-sweep case (tests/test_batching_rules.py `CASES`) whose
  parameters are keywords is run again with them spelled by position, and
  must match the same Python loop: a rule reads its parameters by keyword,
  and a call that passed them positionally (the VJP of a reduction passes
  `axis`/`keepdims` so) once fell back to running lane by lane, whose
  derivative does not exist (jacfwd(jacrev(f)) raised MissingRuleError);
* `np.pad` under vmap, for each pad_width form and mode cotan supports,
  against a Python loop;
* grad through a vmap whose outputs are one unbatched and one batched value.
"""

import ast
import inspect

import numpy as np
import pytest

import cotan
from cotan.autodiff import batching
from cotan.runtime import PRIMITIVES

from tests import test_batching_rules as S

batching._load_rules()


def _split_extra(extra):
    """(positional sources, [(keyword, source)]) of a sweep case's extra
    source, or None when it names no keyword."""
    if not extra:
        return None
    src = f"f({extra})"
    call = ast.parse(src, mode="eval").body
    if not call.keywords:
        return None
    return ([ast.get_source_segment(src, a) for a in call.args],
            [(k.arg, ast.get_source_segment(src, k.value)) for k in call.keywords])


def _positional_cases():
    out = []
    for name, cases in sorted(S.CASES.items()):
        if name not in PRIMITIVES or name in S.SPECIAL_SOURCE:
            continue
        try:
            params = list(inspect.signature(PRIMITIVES[name].impl).parameters.values())
        except (TypeError, ValueError):
            continue
        if any(q.kind == q.VAR_POSITIONAL for q in params):
            continue
        names = [q.name for q in params if q.kind == q.POSITIONAL_OR_KEYWORD]
        for k, (gens, extra) in enumerate(cases):
            split = _split_extra(extra)
            if split is None:
                continue
            positional, kws = split
            if any(key not in names for key, _ in kws):
                continue
            given = dict(kws)
            last = max(names.index(key) for key in given)
            parts = list(positional)
            for q in params[len(gens) + len(positional):last + 1]:
                if q.name in given:
                    parts.append(given[q.name])
                elif q.default is inspect.Parameter.empty:
                    break
                else:
                    parts.append(repr(q.default))
            else:
                out.append(pytest.param(name, gens, ", ".join(parts), id=f"{name}-{k}"))
    return out


POSITIONAL = _positional_cases()


def test_the_positional_sweep_is_not_empty():
    names = {p.values[0] for p in POSITIONAL}
    assert {"sum", "max", "cumsum", "expand_reduced", "take"} <= names


def _loop_check(fn, gens, seed, in_axes=0):
    r = np.random.default_rng(seed)
    lanes = [[g(r) for g in gens] for _ in range(S.B)]
    args = [np.stack([lane[i] for lane in lanes]) for i in range(len(gens))]
    with np.errstate(all="ignore"):
        expected = S._stack_tree([fn(*lane) for lane in lanes])
        got = cotan.vmap(fn, in_axes=in_axes)(*args)
    S._tree_close(got, expected)


@pytest.mark.parametrize("name,gens,extra", POSITIONAL)
def test_parameters_by_position_match_a_python_loop(name, gens, extra):
    fn = S.make_fn(name, len(gens), extra)
    _loop_check(fn, gens, hash((name, extra)) % 2**32)


@pytest.mark.parametrize("name,gens,extra", [
    ("expand_reduced", [S.F(3)], "(2, 3), 0, False"),
    ("expand_reduced", [S.F(2, 1)], "(2, 3), 1, True"),
    ("sum", [S.F(2, 3)], "1, True"),
    ("prod", [S.F(2, 3)], "0, False"),
    ("cumsum", [S.F(2, 3)], "1"),
    ("diagonal", [S.F(3, 4)], "1, 0, 1"),
    ("diagonal", [S.F(3, 4, 2)], "0, 0, 2"),
    ("transpose", [S.F(2, 3, 4)], "(2, 0, 1)"),
    ("take", [S.F(2, 5)], "np.array([0, 4]), 1"),
    ("concatenate", [S.F(2, 3), S.F(2, 3)], None),
    ("flip", [S.F(2, 3)], "1"),
    ("argsort", [S.F(2, 5)], "0"),
])
def test_named_positional_parameters(name, gens, extra):
    if extra is None:   # concatenate's arrays are one argument
        def fn(a, b):
            return np.concatenate((a, b), 1)
    else:
        fn = S.make_fn(name, len(gens), extra)
    _loop_check(fn, gens, 7)


def test_jacfwd_of_jacrev_of_a_scaled_sum():
    # sum's VJP passes axis/keepdims to expand_reduced by position
    x = np.array([0.3, -0.5, 1.2])
    got = cotan.jacfwd(cotan.jacrev(lambda x: np.sum(np.sin(x)) * 2.0))(x)
    np.testing.assert_allclose(got, np.diag(-2.0 * np.sin(x)), rtol=1e-10)


def test_jacfwd_of_jacrev_of_a_mean_over_an_axis():
    x = np.array([[0.3, -0.5, 1.2], [0.7, 0.1, -0.4]])

    def f(x):
        return np.sum(np.mean(np.sin(x), axis=1) ** 2)
    h = cotan.jacfwd(cotan.jacrev(f))(x)
    g = cotan.grad(f)
    eps = 1e-5
    fd = np.zeros(x.shape + x.shape)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        fd[(Ellipsis,) + idx] = (g(x + e) - g(x - e)) / (2 * eps)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-8)


# -- np.pad under vmap -------------------------------------------------------------------

def _pad_fn(pad_width, constant_values):
    def f(a):
        return np.pad(a, pad_width, constant_values=constant_values)
    return f


PAD_WIDTHS_1D = [2, (1, 2), ((1, 2),), [[0, 3]], 0]
PAD_WIDTHS_2D = [1, (2, 1), ((1, 0), (0, 3)), [[2, 1], [1, 1]], ((1,), (2,))]


@pytest.mark.parametrize("constant_values", [0, 1.5])
@pytest.mark.parametrize("lane_ndim,pad_width",
                         [(1, p) for p in PAD_WIDTHS_1D] + [(2, p) for p in PAD_WIDTHS_2D])
def test_pad_under_vmap_matches_a_python_loop(lane_ndim, pad_width, constant_values):
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(3, 4) if lane_ndim == 1 else (3, 2, 4))
    f = _pad_fn(pad_width, constant_values)
    want = np.stack([np.pad(x, pad_width, constant_values=constant_values) for x in xs])
    np.testing.assert_array_equal(cotan.vmap(f)(xs), want)
    np.testing.assert_array_equal(cotan.jit(cotan.vmap(f))(xs), want)
    np.testing.assert_array_equal(cotan.jit(f)(xs[0]), want[0])


def test_pad_with_a_batched_constant():
    xs = np.arange(6.0).reshape(2, 3)
    cs = np.array([-1.0, 7.0])
    got = cotan.vmap(lambda a, c: np.pad(a, (1, 2), constant_values=c))(xs, cs)
    want = np.stack([np.pad(x, (1, 2), constant_values=c) for x, c in zip(xs, cs)])
    np.testing.assert_array_equal(got, want)


def test_grad_of_pad_and_vmap_of_it_match_finite_differences():
    w = np.arange(1.0, 8.0)

    def f(a):
        return np.sum(np.pad(a, (1, 2), constant_values=0.5) ** 2 * w)
    x = np.array([0.3, -1.1, 2.0, 0.4])
    eps = 1e-6
    fd = np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(cotan.grad(f)(x), fd, rtol=1e-7)
    xs = np.stack([x, 2 * x])
    np.testing.assert_allclose(cotan.vmap(cotan.grad(f))(xs),
                               np.stack([cotan.grad(f)(v) for v in xs]), rtol=1e-12)


def test_pad_modes_other_than_constant_are_refused():
    # cotan computes the constant border only: another mode must not be
    # silently padded with zeros
    with pytest.raises(cotan.errors.TransformError, match="mode='edge'"):
        cotan.vmap(lambda a: np.pad(a, 1, mode="edge"))(np.ones((2, 3)))
    with pytest.raises(cotan.errors.TransformError, match="mode='reflect'"):
        cotan.grad(lambda a: np.sum(np.pad(a, 1, mode="reflect")))(np.ones(3))


# -- grad through a vmap with an unbatched output -----------------------------------------

def _fd_grad(f, x, eps=1e-6):
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def _times_first(y):
    return y * y[0]


def _jvp_pair(x, v):
    return cotan.jvp(_times_first, (x,), (v,))


@pytest.mark.parametrize("a,b", [(1.0, 0.0), (0.0, 1.0), (1.0, 0.5)])
def test_grad_through_vmap_with_an_unbatched_output(a, b):
    # out_axes=(None, 0): the primal is the same on every lane; its
    # cotangent has no lane axis to sum (it came out as a scalar 0)
    vj = cotan.vmap(_jvp_pair, in_axes=(None, 0), out_axes=(None, 0))
    basis = np.eye(3)

    def loss(x):
        p, t = vj(x, basis)
        return a * np.sum(np.sin(p)) + b * np.sum(t ** 2)

    def loss_ref(x):
        p = x * x[0]
        ts = np.stack([v * x[0] + x * v[0] for v in basis])
        return a * np.sum(np.sin(p)) + b * np.sum(ts ** 2)
    x = np.array([0.3, -0.5, 1.2])
    np.testing.assert_allclose(loss(x), loss_ref(x), rtol=1e-12)
    np.testing.assert_allclose(cotan.grad(loss)(x), _fd_grad(loss_ref, x), rtol=1e-6)


def test_grad_through_vmap_with_an_unbatched_dict_entry():
    def f(w, x):
        return {"w2": w * w, "y": np.sin(w * x)}
    vf = cotan.vmap(f, in_axes=(None, 0), out_axes={"w2": None, "y": 0})
    xs = np.array([0.5, -1.0, 2.0])

    def loss(w):
        out = vf(w, xs)
        return out["w2"] * 3.0 + np.sum(out["y"])
    w = 0.7
    eps = 1e-6
    fd = (loss(w + eps) - loss(w - eps)) / (2 * eps)
    np.testing.assert_allclose(cotan.grad(loss)(w), fd, rtol=1e-6)


def test_the_reproducer_of_issue_11():
    vj = cotan.vmap(_jvp_pair, in_axes=(None, 0), out_axes=(None, 0))
    got = cotan.grad(lambda x: np.sum(vj(x, np.eye(3))[1]))(np.array([0.3, -0.5, 1.2]))
    # sum over the basis of the tangents' sums: 3 x0 + sum(x)
    np.testing.assert_allclose(got, [4.0, 1.0, 1.0], rtol=1e-12)


# -- a constant tuple as the whole index ---------------------------------------------------

INDEX = (0, 1)


def _read_at_index(a):
    return a[INDEX]


def _write_at_index(a):
    b = a.copy()
    b[INDEX] = 5.0
    return b


@pytest.mark.parametrize("f", [_read_at_index, _write_at_index])
def test_a_constant_tuple_index_is_the_whole_index_under_vmap(f):
    # it was read as one fancy index part: lane results of the wrong shape
    a = np.arange(24.0).reshape(2, 3, 4)
    want = np.stack([f(x) for x in a])
    np.testing.assert_array_equal(cotan.vmap(f)(a), want)
    np.testing.assert_array_equal(cotan.jit(cotan.vmap(f))(a), want)


def _maybe_none_join(x):
    d = {"a": x}
    v = x if len(d) > 5 else None
    return np.sum(x) + (0.0 if v is None else 1.0)


def test_is_none_of_a_name_a_path_binds_to_none():
    # v is batched after the join with `x`, but None at run time: the test
    # `v is None` runs instead of being folded to False (gave 4 for 3)
    xs = np.ones((2, 3))
    np.testing.assert_allclose(cotan.vmap(_maybe_none_join)(xs),
                               [_maybe_none_join(x) for x in xs])
    # np.where's inlined `x is None` still folds (vmap of where compiles)
    np.testing.assert_allclose(cotan.vmap(lambda a: np.where(a > 0, a, -a))(xs - 2.0),
                               np.abs(xs - 2.0))
