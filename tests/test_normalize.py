"""Normalization to core form: every supported construct computes what the
original computes, and the result is valid core form."""

import inspect
import math

import numpy as np
import pytest

import cotan
from cotan.autodiff.core_form import validate
from cotan.autodiff.normalize import normalize_function
from cotan.errors import SourceUnavailableError, TransformError
from tests.helpers_mod.other import scaled_tanh

GLOBAL_W = np.array([1.0, -2.0, 0.5])
OFFSET = 0.25


def check(fn, *args):
    """Run the normalized function and the original on copies of args."""
    g = cotan.normalize(fn)
    validate(normalize_function(fn).node)
    validate(normalize_function(g).node)  # core form is a fixed point
    expect = fn(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
    got = g(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
    _assert_same(got, expect)
    return g


def _assert_same(got, expect):
    if isinstance(expect, (tuple, list)):
        assert type(got) is type(expect) and len(got) == len(expect)
        for a, b in zip(got, expect):
            _assert_same(a, b)
    elif isinstance(expect, dict):
        assert got.keys() == expect.keys()
        for k in expect:
            _assert_same(got[k], expect[k])
    elif expect is None:
        assert got is None
    else:
        np.testing.assert_allclose(got, expect, rtol=1e-12, atol=0)
        assert np.shape(got) == np.shape(expect)


X = np.array([0.5, -1.5, 2.0, 3.0])
M = np.arange(12.0).reshape(3, 4) / 7.0


# ------------------------------------------------------------ operators

def test_arithmetic_operators():
    def f(x, y):
        return (x + y) * (x - y) / (y ** 2 + 1) - x // 2 + x % 3 - (-x) + (+y)
    check(f, X, 2.0)


def test_matmul_operator():
    def f(a, b):
        return a @ b @ a
    check(f, M, M.T)


def test_comparisons_and_chained():
    def f(x, lo, hi):
        inside = (lo < x) & (x <= hi)
        ordered = lo < x[0] <= hi < 10.0
        return np.where(inside, x, 0.0), x == 2.0, x != 2.0, x >= 1, ordered
    check(f, X, 0.0, 2.5)
    check(f, X, 1.0, 2.5)


def test_boolean_operators_on_scalars():
    def f(a, b):
        c = a > 0 and b > 0
        d = a > 0 or b > 0
        e = not (a > b)
        return c, d, e, (a and b), (a or b)
    for a, b in [(1.0, 2.0), (-1.0, 2.0), (0.0, 0.0), (3.0, -1.0)]:
        check(f, a, b)


def test_conditional_expression():
    def f(x):
        y = x * 2 if x.sum() > 0 else -x
        return y
    check(f, X)
    check(f, -X)


def test_unary_invert_on_bool():
    def f(x):
        return np.where(~(x > 1), x, 0.0)
    check(f, X)


# ---------------------------------------------------------------- calls

def test_numpy_math_and_cotan_numpy_calls_with_keywords():
    import cotan.numpy as cnp

    def f(x, m):
        a = np.sum(m, axis=0, keepdims=True)
        b = cnp.mean(m, axis=1)
        c = math.sqrt(2.0) * np.exp(-x) + math.pi
        return a, b, c, np.clip(x, a_min=-1.0, a_max=1.0)
    check(f, X, M)


def test_array_methods_and_attributes():
    def f(m):
        a = m.sum(axis=0)
        b = m.reshape(4, 3)
        c = m.reshape((2, 6)).T
        d = m.copy()
        e = m.max() + m.min(axis=1).sum()
        n = m.shape[0] * m.ndim + m.size
        return a, b, c, d, e, n, m.astype(np.float32).dtype == np.float32
    check(f, M)


def test_builtins():
    def f(x):
        n = len(x)
        return abs(x), float(x[0]) + int(n), max(x[0], x[1], 1.0), min(x[2], 0.0), sum(x)
    check(f, X)


def test_helper_function_inlined_with_defaults_and_keywords():
    def helper(a, scale=2.0, shift=0.0):
        return a * scale + shift

    def f(x):
        return helper(x) + helper(x, shift=1.0) + helper(x, 3.0)
    g = check(f, X)
    code = [ln for ln in cotan.source(g).splitlines() if not ln.strip().startswith("#")]
    assert not any("helper" in ln for ln in code)


def test_helper_in_other_module_and_its_globals():
    def f(x):
        return scaled_tanh(x, k=0.5) + scaled_tanh(x)
    check(f, X)


def test_globals_and_closures_are_constants():
    bias = np.array([1.0, 2.0, 3.0])

    def f(x):
        return x * GLOBAL_W + bias + OFFSET
    g = check(f, np.ones(3))
    assert "GLOBAL_W" in cotan.source(g)


def test_nested_function_and_lambda():
    def f(x):
        def sq(v):
            return v * v
        cube = lambda v: sq(v) * v  # noqa: E731
        return sq(x) + cube(x)
    check(f, X)


def test_lambda_as_transformed_function():
    f = lambda x: np.sin(x) * 2.0  # noqa: E731
    check(f, X)


def test_print_and_assert(capsys):
    def f(x):
        print("value", x[0], sep=":")
        assert x.shape[0] == 4, "need four"
        print(f"sum={x.sum():.2f}")
        return x
    check(f, X)
    out = capsys.readouterr().out
    assert out.count("value:0.5") == 2 and out.count("sum=4.00") == 2


def test_assert_failure_raises():
    def f(x):
        assert x[0] > 100, "too small"
        return x
    with pytest.raises(AssertionError, match="too small"):
        cotan.normalize(f)(X)


# ------------------------------------------------------------ subscripts

def test_subscripts_ints_slices_none_ellipsis():
    def f(m, i):
        return m[1], m[1, 2], m[:, 1:3], m[::-1], m[None, 0], m[..., -1], m[i, :i + 1]
    check(f, M, 2)


def test_integer_and_boolean_array_indexing():
    def f(x, idx):
        return x[idx], x[x > 0], x[[0, 2]]
    check(f, X, np.array([3, 0, 1]))


def test_subscript_assignment_and_augmented():
    def f(x):
        y = x.copy()
        y[0] = 10.0
        y[1:3] += 1.0
        y[-1] *= 2.0
        return y
    check(f, X)


def test_nested_subscript_assignment():
    def f(m):
        m = m.copy()
        m[1][2] = -1.0
        return m
    check(f, M)


def test_augmented_assignment_on_names():
    def f(x):
        s = 0.0
        s += x[0]
        s -= x[1]
        s *= 3.0
        s /= 2.0
        s **= 2
        return s
    check(f, X)


def test_aliasing_name_copy_writes_through():
    def f(x):
        x = x.copy()
        y = x
        y[0] = 0.0
        return x, y
    check(f, X)


def test_aliasing_slice_view_writes_through():
    def f(m):
        m = m.copy()
        row = m[1, :]
        row[0] = 100.0
        m[1, 1] = -5.0
        return m, row
    check(f, M)


def test_aliasing_row_in_loop_writes_through():
    def f(m):
        m = m.copy()
        for i in range(3):
            r = m[i]
            r[0] = i
        return m
    check(f, M)


def test_ambiguous_view_update_is_refused():
    def f(m, idx):
        v = m.reshape(4, 3)
        v[0, 0] = 1.0
        return m
    with pytest.raises(TransformError, match="view"):
        normalize_function(f)


def test_augmented_assignment_to_alias_is_refused():
    def f(x):
        y = x
        y += 1.0
        return x
    with pytest.raises(TransformError, match="shares memory"):
        normalize_function(f)


def test_helper_updating_argument_updates_caller():
    def fill(a):
        a[0] = 7.0
        return 0

    def f(x):
        x = x.copy()
        fill(x)
        return x
    check(f, X)


# ------------------------------------------------------ containers

def test_tuple_unpacking_and_swap():
    def f(x):
        a, b = x[0], x[1]
        a, b = b, a
        (c, d), e = (a * 2, b), x[2]
        return a, b, c, d, e
    check(f, X)


def test_list_tuple_dict_literals_and_append():
    def f(x):
        out = []
        for v in x:
            out.append(v * 2)
        d = {"a": x, "b": (x[0], [x[1], 3.0])}
        return np.stack(out), d
    check(f, X)


def test_dict_argument():
    def f(params, x):
        return np.tanh(x @ params["w"] + params["b"])
    p = {"w": np.ones((4, 2)), "b": np.array([0.5, -0.5])}
    check(f, p, X)


def test_list_comprehension():
    def f(x):
        ys = [v * v for v in x if v > 0]
        return np.array(ys)
    check(f, X)


# ------------------------------------------------------ control flow

def test_if_elif_else_on_array_values():
    def f(x):
        if x.sum() > 10:
            y = x * 2
        elif x[0] < 0:
            y = -x
        else:
            y = x + 1
        return y
    for v in (X, -X, X * 10):
        check(f, v)


def test_for_over_range_list_tuple_rows_enumerate_zip():
    def f(m, x):
        s = 0.0
        for i in range(1, 3):
            s = s + m[i, 0]
        for row in m:
            s = s + row.sum()
        for k, v in enumerate(x):
            s = s + k * v
        for a, b in zip(x, x[::-1]):
            s = s + a * b
        for c in (1.0, 2.0):
            s = s * c
        for c in [x[0], x[1]]:
            s = s - c
        return s
    check(f, M, X)


def test_while_with_value_dependent_trip_count():
    def f(x):
        n = 0
        while x.sum() < 100.0:
            x = x * 1.5 + 1.0
            n += 1
        return x, n
    check(f, X)


def test_break_and_continue():
    def f(x):
        s = 0.0
        for i in range(10):
            if i % 2 == 1:
                continue
            if s > 5.0:
                break
            s = s + x[i % 4]
        k = 0
        while True:
            k += 1
            if k >= 7:
                break
        return s, k
    check(f, X)


def test_for_else_and_while_else():
    def f(x, stop):
        for v in x:
            if v > stop:
                found = v
                break
        else:
            found = -1.0
        return found
    check(f, X, 1.0)
    check(f, X, 100.0)


def test_several_returns():
    def f(x):
        if x[0] > 0:
            return x * 2
        for i in range(4):
            if x[i] > 1:
                return x + i
        return -x
    for v in (X, np.array([-1.0, 0.5, 3.0, 0.0]), np.array([-1.0, 0.5, 0.3, 0.0])):
        check(f, v)


def test_loop_variable_reassigned_in_body():
    def f(x):
        s = 0.0
        for i in range(3):
            i = i * 2
            s = s + x[i % 4] * i
        return s
    check(f, X)


# ------------------------------------------------------ errors

def _error_for(fn):
    with pytest.raises(TransformError) as info:
        normalize_function(fn)
    return info.value


@pytest.mark.parametrize("what, src_line", [
    ("try/except", "try:"),
    ("yield", "yield x"),
    ("global", "global OFFSET"),
])
def test_unsupported_constructs_point_at_the_line(what, src_line):
    namespace = {}
    body = {
        "try/except": "    try:\n        y = x\n    except ValueError:\n        y = x\n    return y\n",
        "yield": "    yield x\n",
        "global": "    global OFFSET\n    return x\n",
    }[what]
    import linecache
    fname = f"/virtual/unsupported_{what.replace('/', '_')}.py"
    text = "def f(x):\n" + body
    linecache.cache[fname] = (len(text), None, text.splitlines(True), fname)
    exec(compile(text, fname, "exec"), namespace)
    err = _error_for(namespace["f"])
    msg = str(err)
    assert what in msg and fname in msg and src_line in msg and "^" in msg
    assert err.lineno is not None and err.filename == fname


def test_class_definition_is_refused():
    def f(x):
        class A:
            pass
        return x
    err = _error_for(f)
    assert "class" in str(err) and "test_normalize.py" in str(err)


def test_recursion_is_refused():
    def f(x):
        if x > 0:
            return f(x - 1)
        return x
    err = _error_for(f)
    assert "recursive" in str(err)


def test_unknown_callable_is_refused_with_name():
    import fractions

    def f(x):
        return fractions.Fraction(1, 2) * x
    err = _error_for(f)
    assert "Fraction" in str(err)


def test_generator_expression_is_refused():
    def f(x):
        return sum(v for v in x)
    assert "generator" in str(_error_for(f))


def test_builtin_has_no_source():
    with pytest.raises(SourceUnavailableError, match="source"):
        normalize_function(sorted)


def test_exec_defined_function_has_no_source():
    ns = {}
    exec("def h(x):\n    return x\n", ns)
    with pytest.raises(SourceUnavailableError):
        normalize_function(ns["h"])


# ------------------------------------------------------ plumbing

def test_generated_source_is_registered_and_deterministic():
    def f(x):
        y = np.sin(x) * x
        return y.sum()
    g = cotan.normalize(f)
    src = cotan.source(g)
    assert inspect.getsource(g) == src
    assert "sin(x)" in src and "# y = np.sin(x) * x" in src
    # transforming the generated function again gives the same text
    from cotan.autodiff.materialize import materialize
    again = materialize(normalize_function(g), "core form")
    assert cotan.source(again) == src


def test_traceback_points_into_generated_source():
    def f(x):
        y = x[10]
        return y
    g = cotan.normalize(f)
    with pytest.raises(IndexError) as info:
        g(X)
    frames = [fr for fr in info.traceback if fr.path and str(fr.path).startswith("<cotan")]
    assert frames, "no frame in the generated source"


def test_normalization_is_cached():
    def f(x):
        return x + 1
    assert normalize_function(f) is normalize_function(f)
    assert cotan.normalize(f) is cotan.normalize(f)
