"""`break`, `continue` and loop `else` leave behind what Python leaves behind.

After a `break` the loop target (and the `enumerate`/`zip`/row targets) holds
the value of the trip that broke, names assigned in the breaking trip before
the `break` keep those values, and a loop's `else` runs only when no `break`
happened.  This is decided by normalization, so each class is checked on the
core form run eagerly and under every transformation: jit and normalize
against the plain Python function, vmap against a Python loop over the batch,
jvp, grad, jit(grad) and vmap(grad) against central finite differences.  Branch conditions stay away
from their boundaries (by at least 0.1) so the differences do not cross them.
"""

import numpy as np
import pytest

import cotan
from cotan.autodiff.core_form import validate
from cotan.autodiff.normalize import normalize_function

H = 1e-6


# ------------------------------------------------------------- the programs

def search(x):
    for i in range(4):
        if x[i] > 0.0:
            break
    else:
        i = 10
    return x[0] * i


def first_pos(x):
    s = 0.0
    for i, v in enumerate(x):
        if v > 0.0:
            break
        s = s + v
    return s + v


def runtime_range(x, a, b, step):
    acc = 0.0
    for i in range(a, b, step):
        acc = acc + x[i] * x[i]
        if acc > 2.0:
            break
    return acc * i + x[i]


def enumerate_index(x):
    s = 0.0
    for k, v in enumerate(x):
        s = s + v * v
        if s > 1.5:
            break
    return s * k + v


def zip_break(x, y):
    s = 0.0
    for a, b in zip(x, y):
        t = a * b
        if t > 1.0:
            break
        s = s + t
    return s + a - 2.0 * b + t


def row_break(m):
    s = 0.0
    for row in m:
        s = s + np.sum(row * row)
        if s > 3.0:
            break
    return s + np.sum(row) * 2.0


def while_break(x):
    i = 0
    s = 0.0
    v = 0.0
    while i < x.shape[0]:
        v = x[i] * x[i]
        if s + v > 3.0:
            break
        s = s + v
        i = i + 1
    return s + v * i


def nested_inner_break(x):
    s = 0.0
    for i in range(3):
        for j in range(4):
            if x[j] * (i + 1) > 2.5:
                break
            s = s + x[j] * i
        s = s + j * x[i]
    return s + i + j * x[0]


def deep_break(x):
    s = 0.0
    w = 1.0
    for i in range(x.shape[0]):
        if x[i] > 0.0:
            if s > 1.0:
                w = s * 3.0
                break
            else:
                s = s + x[i]
        else:
            s = s - x[i] * 0.5
            if x[i] < -2.0:
                w = s * 2.0
                break
        s = s * 1.1
    return s * w + i


def names_before_break(x):
    for i in range(x.shape[0]):
        y = x[i] * 2.0
        z = np.sin(x[i])
        if y > 1.0:
            break
        z = z + 1.0
    return y * z + i


def continue_loop(x):
    s = 0.0
    last = 0.0
    for i, v in enumerate(x):
        if v < 0.0:
            continue
        s = s + v * i
        last = v
    return s * last + i + v


def continue_and_break(x):
    s = 0.0
    for i in range(x.shape[0]):
        v = x[i]
        if v < 0.0:
            s = s - v
            continue
        if s > 2.0:
            break
        s = s + v * v
    return s * v + i


def while_continue(x):
    i = 0
    s = 0.0
    v = 0.0
    while i < x.shape[0]:
        v = x[i]
        i = i + 1
        if v < 0.0:
            continue
        s = s + v * i
    return s + v


def for_else(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i]
        if s > 2.0:
            break
    else:
        s = s * 10.0
        i = -1
    return s + i


def while_else(x):
    i = 0
    s = 0.0
    while i < x.shape[0]:
        s = s + x[i] * x[i]
        if s > 2.0:
            break
        i = i + 1
    else:
        s = -s
    return s + i


def return_in_loop(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i]
        if s > 1.0:
            return s * i
    return s - 1.0


def row_write_then_break(m):
    for row in m:
        if row[0] > 1.0:
            break
        row[1] = row[1] * 3.0      # writes m's row, as in NumPy
    return np.sum(m * m) + np.sum(row)


# ----------------------------------------------------- inputs (per program)

V1 = np.array([-1.0, -0.5, 2.0, -3.0])
V2 = np.array([-0.3, -1.2, -0.7, 0.4])
V3 = np.array([0.8, 1.3, -0.6, 0.9])
V4 = np.array([-0.4, -0.9, -1.1, -0.25])      # never positive: no break
M1 = np.array([[0.5, -0.4, 0.3], [1.1, 0.7, -0.9], [0.2, 0.6, 0.5], [1.0, 1.2, 0.3]])
M2 = np.array([[0.3, 0.2, 0.1], [0.4, -0.2, 0.3], [0.5, 0.1, 0.2], [0.6, 0.3, -0.1]])

# name -> (function, list of argument tuples; the first argument is the
# differentiated and batched one)
CASES = {
    "search": (search, [(V1,), (V3,), (V4 + 0.0,)]),
    "first_pos": (first_pos, [(V1,), (V2,), (V3,)]),
    "runtime_range": (runtime_range, [(V3, 0, 4, 1), (V3, 1, 4, 2), (V3 * 2.0, 3, -1, -1),
                                      (V2, 0, 3, 1)]),
    "enumerate_index": (enumerate_index, [(V3,), (V2,), (V1,)]),
    "zip_break": (zip_break, [(V3, np.array([0.5, 1.1, 0.2, 0.3])),
                              (V2, np.array([0.5, 1.1, 0.2, 0.3]))]),
    "row_break": (row_break, [(M1,), (M2,)]),
    "row_write_then_break": (row_write_then_break, [(M1,), (M2,)]),
    "while_break": (while_break, [(V3,), (V2,), (V1,)]),
    "nested_inner_break": (nested_inner_break, [(V3,), (V1 * 1.5,), (V2,)]),
    "deep_break": (deep_break, [(V3,), (V1,), (np.array([0.3, -0.8, 0.5, 0.6]),),
                                (np.array([0.6, 0.7, 0.2, 0.4]),)]),
    "names_before_break": (names_before_break, [(V3,), (V2,), (V1,)]),
    "continue_loop": (continue_loop, [(V3,), (V1,), (np.abs(V2),)]),
    "continue_and_break": (continue_and_break, [(V3,), (V1,), (V2,)]),
    "while_continue": (while_continue, [(V3,), (V1,), (V2,)]),
    "for_else": (for_else, [(V3,), (V2,), (V1,)]),
    "while_else": (while_else, [(V3,), (V2,), (V4 + 0.0,)]),
    "return_in_loop": (return_in_loop, [(V3,), (V2,), (V1,)]),
}

PARAMS = [(name, k) for name, (_, argsets) in CASES.items() for k in range(len(argsets))]


def _case(name, k):
    fn, argsets = CASES[name]
    return fn, [np.copy(a) if isinstance(a, np.ndarray) else a for a in argsets[k]]


def _py(fn, *args):
    """The plain Python function, on copies (some programs write into rows)."""
    return fn(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])


def _close(got, expect):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(expect, dtype=float),
                               rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- the tests

@pytest.mark.parametrize("name,k", PARAMS)
def test_normalized_core_form_runs_as_python(name, k):
    fn, args = _case(name, k)
    validate(normalize_function(fn).node)
    _close(cotan.normalize(fn)(*args), _py(fn, *args))


@pytest.mark.parametrize("name,k", PARAMS)
def test_jit_matches_python(name, k):
    fn, args = _case(name, k)
    _close(cotan.jit(fn)(*args), _py(fn, *args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_matches_python_loop(name):
    # one batch holding every input of the case: the lanes break at
    # different trips (or not at all)
    fn, argsets = CASES[name]
    by_rest = {}
    for args in argsets:
        by_rest.setdefault(args[1:].__repr__(), []).append(args)
    for group in by_rest.values():
        batch = np.stack([a[0] for a in group])
        rest = group[0][1:]
        in_axes = (0,) + (None,) * len(rest)
        got = cotan.vmap(fn, in_axes=in_axes)(batch, *rest)
        expect = np.array([_py(fn, b, *rest) for b in batch])
        _close(got, expect)


def _central_jvp(fn, args, t):
    x = args[0]
    plus = _py(fn, x + H * t, *args[1:])
    minus = _py(fn, x - H * t, *args[1:])
    return (plus - minus) / (2 * H)


@pytest.mark.parametrize("name,k", PARAMS)
def test_jvp_matches_finite_differences(name, k):
    fn, args = _case(name, k)
    x = args[0]
    t = np.linspace(0.5, 1.5, x.size).reshape(x.shape)
    # the other arguments (range bounds, a second vector) are held fixed
    tangents = (t,) + tuple(np.zeros_like(a) for a in args[1:])
    primal, tangent = cotan.jvp(fn, tuple(args), tangents)
    _close(primal, _py(fn, *args))
    np.testing.assert_allclose(tangent, _central_jvp(fn, args, t), rtol=1e-6, atol=1e-7)


def _central_grad(fn, args):
    x = args[0]
    expect = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = 1.0
        expect[idx] = _central_jvp(fn, args, e)
    return expect


@pytest.mark.parametrize("name,k", PARAMS)
def test_grad_matches_finite_differences(name, k):
    fn, args = _case(name, k)
    got = cotan.grad(fn)(*args)
    np.testing.assert_allclose(got, _central_grad(fn, args), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name,k", PARAMS)
def test_jit_grad_matches_finite_differences(name, k):
    fn, args = _case(name, k)
    got = cotan.jit(cotan.grad(fn))(*args)
    np.testing.assert_allclose(got, _central_grad(fn, args), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_grad_matches_finite_differences(name):
    fn, argsets = CASES[name]
    for args in argsets:
        rest = args[1:]
        batch = np.stack([args[0], args[0] * 1.0])
        got = cotan.vmap(cotan.grad(fn), in_axes=(0,) + (None,) * len(rest))(batch, *rest)
        expect = _central_grad(fn, args)
        np.testing.assert_allclose(got, np.stack([expect, expect]), rtol=1e-6, atol=1e-7)


def test_break_keeps_loop_target_in_core_form():
    # the loop target is bound under the trip guard: after a break the later
    # trips neither run their body nor rebind the target
    text = cotan.source(cotan.normalize(search))
    guard_at = text.index("logical_not(did_break)")
    assert text.index("i = i_1") > guard_at
