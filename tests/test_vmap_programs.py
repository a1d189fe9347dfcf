"""vmap of whole programs with Python control flow, against a Python loop
over the batch.  Predicates and trip counts depend on the mapped values,
so `if`s are batched into both branches plus a select and loops run until
every lane is done; every generated function is checked against the core
form grammar."""

import numpy as np
import pytest

import cotan
from cotan.autodiff.core_form import validate
from cotan.autodiff.materialize import generated_core


def p_abs(x):
    if x > 0:
        y = x
    else:
        y = -x
    return y


def p_relu_sum(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0:
            s = s + x[i]
    return s


def p_early_return(x):
    if np.sum(x) > 0:
        return x * 2
    return x - 1


def p_nested_if(x):
    if x > 0.5:
        if x > 0.8:
            y = 3.0
        else:
            y = 2.0
    elif x > 0.2:
        y = 1.0
    else:
        y = 0.0
    return y * x


def p_if_only_then(x):
    y = x
    if x < 0.3:
        y = y * 10
    return y


def p_collatz(n):
    steps = 0
    while n > 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps = steps + 1
    return steps


def p_halve(x):
    while np.sum(x) > 1.0:
        x = x / 2
    return x


def p_newton_sqrt(a):
    x = a
    while np.abs(x * x - a) > 1e-10:
        x = 0.5 * (x + a / x)
    return x


def p_for_batched_count(x, k):
    s = 0.0
    for i in range(k):
        s = s + x[i]
    return s


def p_for_batched_start(x, k):
    s = 0.0
    for i in range(k, 5):
        s = s + x[i] * i
    return s


def p_for_break(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] < 0.2:
            break
        s = s + x[i]
    return s


def p_for_continue(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] < 0.5:
            continue
        s = s + x[i] ** 2
    return s


def p_while_break(x):
    i = 0
    acc = 0.0
    while True:
        acc = acc + x[i]
        i = i + 1
        if acc > 1.0 or i >= 5:
            break
    return acc, i


def p_inplace(x):
    y = x.copy()
    y[0] = 3.0
    y[1:] += x[:-1]
    return y


def p_inplace_batched_index(x, i):
    y = np.zeros(5)
    y[i] = x[i] + 1.0
    return y


def p_inplace_in_loop(x):
    y = np.zeros(4)
    for i in range(4):
        if x[i] > 0.5:
            y[i] = x[i]
        else:
            y[i] = -1.0
    return y


def p_gather(x, i):
    return x[i] * 2 + x[0]


def p_while_gather(x, k):
    i = 0
    total = 0.0
    while i < k:
        total = total + x[i]
        i = i + 1
    return total


def p_loop_carried_becomes_batched(x):
    acc = 0.0
    for i in range(3):
        acc = acc * 0.5 + x
    return acc


def p_if_unbatched_pred(x, flag):
    if flag:
        y = np.sin(x)
    else:
        y = np.cos(x)
    return y


def p_matrix_if(w, x):
    h = w @ x
    if np.max(h) > 0:
        h = np.tanh(h)
    return np.sum(h)


def p_while_two_vars(a, b):
    while b > 0.001:
        a, b = b, a % b
    return a


def p_nested_loops(x):
    s = 0.0
    for i in range(3):
        j = 0
        while j < i + x:
            s = s + j
            j = j + 1
    return s


def p_masked_division(x):
    if x != 0:
        y = 1.0 / x
    else:
        y = 0.0
    return y


def p_masked_log(x):
    if x > 0:
        y = np.log(x)
    else:
        y = -1.0
    return y


def p_masked_index(x, i):
    if i < 5:
        y = x[i]
    else:
        y = -1.0
    return y


def p_dict_params(p, x):
    y = p["w"] * x + p["b"]
    if y > 0:
        y = y * 2
    return y


def p_tuple_out(x):
    if x[0] > 0.5:
        a, b = x, np.sum(x)
    else:
        a, b = -x, 0.0
    return a, b


def p_list_build(x):
    out = []
    for i in range(3):
        out.append(x * i)
    return np.stack(out)


def p_cumulative_until(x, thr):
    s = 0.0
    i = 0
    while s < thr and i < 5:
        s = s + x[i]
        i = i + 1
    return i


def p_branch_reduction(x):
    if np.mean(x) > 0.5:
        r = np.max(x, axis=0)
    else:
        r = np.min(x, axis=0)
    return r


def p_where_and_if(x):
    y = np.where(x > 0.5, x, 0.0)
    if np.sum(y) > 1.0:
        y = y / np.sum(y)
    return y


def p_fixed_point(c):
    x = 0.0
    for i in range(20):
        x = np.cos(x) * c
    return x


def p_bisect(c):
    lo, hi = 0.0, 2.0
    while hi - lo > 1e-8:
        mid = (lo + hi) / 2
        if mid * mid > c:
            hi = mid
        else:
            lo = mid
    return lo


R = np.random.default_rng(1)
V = R.random((6, 5))
PROGRAMS = [
    (p_abs, (R.normal(size=6),), None),
    (p_relu_sum, (R.normal(size=(6, 5)),), None),
    (p_early_return, (R.normal(size=(6, 3)),), None),
    (p_nested_if, (R.random(8),), None),
    (p_if_only_then, (R.random(6),), None),
    (p_collatz, (np.array([1, 2, 3, 6, 7, 27]),), None),
    (p_halve, (R.random((6, 3)) * 4,), None),
    (p_newton_sqrt, (R.random(6) + 0.5,), None),
    (p_for_batched_count, (V, np.array([0, 1, 2, 5, 3, 4])), None),
    (p_for_batched_start, (V, np.array([0, 1, 2, 5, 3, 4])), None),
    (p_for_break, (V,), None),
    (p_for_continue, (V,), None),
    (p_while_break, (V,), None),
    (p_inplace, (V,), None),
    (p_inplace_batched_index, (V, np.array([0, 1, 2, 4, 3, 4])), None),
    (p_inplace_in_loop, (V,), None),
    (p_gather, (V, np.array([0, 1, 2, 4, 3, 4])), None),
    (p_while_gather, (V, np.array([0, 1, 2, 5, 3, 4])), None),
    (p_loop_carried_becomes_batched, (R.random(6),), None),
    (p_if_unbatched_pred, (V, True), (0, None)),
    (p_matrix_if, (R.normal(size=(3, 4)), R.normal(size=(6, 4))), (None, 0)),
    (p_while_two_vars, (np.array([12., 9., 7., 20., 3., 1.]), np.array([8., 6., 5., 4., 2., 1.])), None),
    (p_nested_loops, (np.array([0, 1, 2, 3, 1, 0]),), None),
    (p_masked_division, (np.array([0.0, 1.0, -2.0, 0.0, 4.0, 0.5]),), None),
    (p_masked_log, (np.array([0.0, 1.0, -2.0, 0.0, 4.0, 0.5]),), None),
    (p_masked_index, (V, np.array([0, 7, 2, 9, 3, 4])), None),
    (p_dict_params, ({"w": 2.0, "b": R.normal(size=6)}, R.normal(size=6)),
     ({"w": None, "b": 0}, 0)),
    (p_tuple_out, (V,), None),
    (p_list_build, (V,), None),
    (p_cumulative_until, (V, np.array([0.5, 1.0, 2.0, 0.1, 5.0, 1.5])), None),
    (p_branch_reduction, (R.random((6, 3, 2)),), None),
    (p_where_and_if, (V,), None),
    (p_fixed_point, (R.random(6),), None),
    (p_bisect, (R.random(6) * 3,), None),
]


def _lane(x, ax, b):
    if ax is None:
        return x
    if isinstance(x, dict):
        return {k: _lane(v, ax[k] if isinstance(ax, dict) else ax, b) for k, v in x.items()}
    return np.take(x, b, axis=ax)


def _stack(outs):
    if isinstance(outs[0], tuple):
        return tuple(_stack([o[i] for o in outs]) for i in range(len(outs[0])))
    return np.stack([np.asarray(o) for o in outs])


def _close(a, b):
    if isinstance(b, tuple):
        for x, y in zip(a, b):
            _close(x, y)
        return
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=1e-9, atol=1e-9)


def test_corpus_is_large_enough():
    assert len(PROGRAMS) >= 30


@pytest.mark.parametrize("fn,args,in_axes", PROGRAMS, ids=[p[0].__name__ for p in PROGRAMS])
def test_program_matches_python_loop(fn, args, in_axes):
    axes = in_axes if in_axes is not None else (0,) * len(args)
    n = next(np.shape(a if not isinstance(a, dict) else a["b"])[0]
             for a, ax in zip(args, axes) if ax is not None)
    expected = _stack([fn(*[_lane(a, ax, b) for a, ax in zip(args, axes)]) for b in range(n)])
    vf = cotan.vmap(fn, in_axes=axes)
    validate(generated_core(vf).node)
    with np.errstate(all="raise"):  # masked lanes must not leak warnings
        got = vf(*args)
    _close(got, expected)


def test_masked_lanes_raise_no_warning_and_keep_the_taken_value():
    vf = cotan.vmap(p_masked_division)
    with np.errstate(all="raise"):
        out = vf(np.array([0.0, 2.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5])


def test_unbatched_control_flow_stays_plain():
    def f(x, n):
        for i in range(n):
            x = x * 2
        return x
    src = cotan.source(cotan.vmap(f, in_axes=(0, None)))
    assert "for i in range(" in src and "lanes_any" not in src


def test_batched_while_is_masked():
    src = cotan.source(cotan.vmap(p_collatz))
    assert "lanes_any" in src and "select_lanes" in src


def test_batched_print_prints_each_lane(capsys):
    def f(x):
        print("value", x)
        return x
    cotan.vmap(f)(np.array([1.0, 2.0]))
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["value 1.0", "value 2.0"]


def test_print_inside_batched_if_prints_taken_lanes_only(capsys):
    def f(x):
        if x > 1:
            print("big", x)
        return x
    cotan.vmap(f)(np.array([1.0, 2.0, 3.0]))
    assert capsys.readouterr().out.splitlines() == ["big 2.0", "big 3.0"]


def test_batched_assert_checks_every_lane():
    def f(x):
        assert x > 0, "x must be positive"
        return x
    vf = cotan.vmap(f)
    vf(np.array([1.0, 2.0]))
    with pytest.raises(AssertionError, match="x must be positive"):
        vf(np.array([1.0, -2.0]))


def test_assert_in_untaken_branch_is_not_checked():
    def f(x):
        if x > 0:
            assert x > 0.5, "small"
        return x
    cotan.vmap(f)(np.array([-1.0, 2.0]))


def test_nested_vmap_of_control_flow():
    vv = cotan.vmap(cotan.vmap(p_collatz))
    xs = np.array([[1, 2, 3], [6, 7, 27]])
    np.testing.assert_array_equal(vv(xs), np.vectorize(p_collatz)(xs))
    validate(generated_core(vv).node)
