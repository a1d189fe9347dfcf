"""Views and in-place updates follow NumPy, or are refused by name.

Normalization tracks which names share memory (`autodiff/views.py`) and turns
subscript assignment into functional updates of every name involved.  Where
control flow meets (after an `if`, at a loop's head) the paths are joined: a
name that is the same kind of view of the same base on every path is still
followed; a name that is a view on one path and a separate array on another
is refused when written (and, once something it may share memory with is
written, when read), with a `TransformError` naming the function, the line,
the variable and what to write instead.  Never a different number.

The programs that cotan follows are checked against NumPy under normalize and
jit, against a Python loop under vmap and against central finite differences
under grad; the refused ones are refused by every transformation.
"""

import numpy as np
import pytest

import cotan
from cotan.autodiff.core_form import validate
from cotan.autodiff.normalize import normalize_function
from cotan.errors import TransformError, TypeInferenceError

M = np.array([[0.5, 1.5, -0.3], [2.0, -1.0, 0.7], [0.9, 0.4, -1.2]])


# ------------------------------------------------------ followed, as NumPy

def view_in_both_branches(m, c):
    if c > 0.0:
        v = m[0:2]
    else:
        v = m[0:2]
    v[0] = v[0] * 3.0
    return np.sum(m * m)


def row_view_per_branch(m, c):
    if c > 0.0:
        v = m[0]
    else:
        v = m[2]
    v[1] = v[1] * 3.0 + v[0]
    return np.sum(m * m)


def slice_view_per_branch(m, c):
    if c > 0.0:
        v = m[0:2, 1]
    else:
        v = m[1:3, 0]
    v[0] = v[1] * 2.0
    return np.sum(m * np.sin(m))


def copy_in_both_branches(m, c):
    if c > 0.0:
        v = m[0].copy()
    else:
        v = m[1] * 1.0
    v[0] = 9.0
    return np.sum(m * m) + np.sum(v * m[2])


def view_written_in_same_trip(m):
    for i in range(m.shape[0]):
        r = m[i]
        r[0] = r[0] * r[1]
    return np.sum(m * m)


def view_made_before_loop(m):
    v = m[0:2]
    for i in range(3):
        v[0] = v[0] * 1.5 + m[2]
    return np.sum(m * m)


def base_rebound(m):
    v = m[0:2]
    m = m * 2.0
    v[0] = v[0] * 3.0
    return np.sum(m * m) + np.sum(v * v)


def _write_first(a):
    a[0] = a[0] * 5.0


def callee_writes_argument(m):
    r = m[0:2]
    _write_first(m)
    return np.sum(r * r)


def _second_row(a):
    return a[1]


def helper_returns_view(m):
    r = _second_row(m)
    r[0] = r[0] * 4.0
    return np.sum(m * m)


def base_write_seen_through_view(m):
    row = m[1, :]
    m[1, 0] = m[1, 0] * 5.0
    for i in range(2):
        m[1, 2] = m[1, 2] + row[0]
    return np.sum(row * row)


def transposed_slice_read(m):      # views of views made inside expressions
    v = m[0:2].T
    m[0, 0] = m[0, 0] * 5.0
    return np.sum(v * v)


def attribute_view_read(m):
    v = m.T
    m[0, 1] = m[0, 1] * 5.0
    return np.sum(v * np.cos(v))


def row_of_slice_written(m):
    v = m[0:2][0]
    v[1] = v[1] * 5.0
    return np.sum(m * m)


def slice_of_transpose_read(m):
    v = np.transpose(m)[0:2]
    m[1, 0] = m[1, 0] * 5.0
    return np.sum(v * v)


def iterated_array_written(m):    # NumPy iterates m itself: later rows see it
    s = 0.0
    k = 0
    for r in m:
        s = s + r[0] * r[1]
        if k + 1 < m.shape[0]:
            m[k + 1, 0] = m[k + 1, 0] + s
        k = k + 1
    return s


def self_view_of_unshared(m):        # `b = b[1]`: the old b is nobody's
    b = m * 2.0
    b = b[1]
    b[0] = b[0] * 3.0
    return np.sum(m * m) + np.sum(b * b)


def self_assignment_keeps_view(m):
    b = m[::-1]
    b = b
    m[0, 1] = m[0, 1] * 3.0
    return np.sum(b * b * np.arange(3.0))


FOLLOWED = {
    "self_view_of_unshared": (self_view_of_unshared, [(M,)]),
    "self_assignment_keeps_view": (self_assignment_keeps_view, [(M,)]),
    "iterated_array_written": (iterated_array_written, [(M,)]),
    "transposed_slice_read": (transposed_slice_read, [(M,)]),
    "attribute_view_read": (attribute_view_read, [(M,)]),
    "row_of_slice_written": (row_of_slice_written, [(M,)]),
    "slice_of_transpose_read": (slice_of_transpose_read, [(M,)]),
    "base_write_seen_through_view": (base_write_seen_through_view, [(M,)]),
    "view_in_both_branches": (view_in_both_branches, [(M, 1.0), (M, -1.0)]),
    "row_view_per_branch": (row_view_per_branch, [(M, 1.0), (M, -1.0)]),
    "slice_view_per_branch": (slice_view_per_branch, [(M, 1.0), (M, -1.0)]),
    "copy_in_both_branches": (copy_in_both_branches, [(M, 1.0), (M, -1.0)]),
    "view_written_in_same_trip": (view_written_in_same_trip, [(M,)]),
    "view_made_before_loop": (view_made_before_loop, [(M,)]),
    "base_rebound": (base_rebound, [(M,)]),
    "callee_writes_argument": (callee_writes_argument, [(M,)]),
    "helper_returns_view": (helper_returns_view, [(M,)]),
}
FOLLOWED_CASES = [(n, k) for n, (_, sets) in FOLLOWED.items() for k in range(len(sets))]


def _args(name, k):
    fn, sets = FOLLOWED[name]
    return fn, [np.copy(a) if isinstance(a, np.ndarray) else a for a in sets[k]]


@pytest.mark.parametrize("name,k", FOLLOWED_CASES)
def test_followed_view_matches_numpy_normalized(name, k):
    fn, args = _args(name, k)
    validate(normalize_function(fn).node)
    expect = fn(*_args(name, k)[1])
    np.testing.assert_allclose(cotan.normalize(fn)(*args), expect, rtol=1e-12)


# jit keeps a slice's bounds in the value's structure, so a slice that
# differs between branches is refused there (by name), not computed
JIT_REFUSES = {"slice_view_per_branch": "v_index"}


@pytest.mark.parametrize("name,k", FOLLOWED_CASES)
def test_followed_view_matches_numpy_jit(name, k):
    fn, args = _args(name, k)
    expect = fn(*_args(name, k)[1])
    if name in JIT_REFUSES:
        with pytest.raises(TypeInferenceError, match=JIT_REFUSES[name]):
            cotan.jit(fn)(*args)
        return
    np.testing.assert_allclose(cotan.jit(fn)(*args), expect, rtol=1e-12)


@pytest.mark.parametrize("name,k", FOLLOWED_CASES)
def test_followed_view_vmap_matches_python_loop(name, k):
    fn, args = _args(name, k)
    batch = np.stack([args[0], args[0] * 0.5, -args[0]])
    rest = args[1:]
    got = cotan.vmap(fn, in_axes=(0,) + (None,) * len(rest))(batch, *rest)
    expect = [fn(np.copy(b), *rest) for b in batch]
    np.testing.assert_allclose(got, expect, rtol=1e-12)


@pytest.mark.parametrize("name,k", FOLLOWED_CASES)
def test_followed_view_grad_matches_finite_differences(name, k):
    fn, args = _args(name, k)
    m, rest = args[0], args[1:]
    got = cotan.grad(fn)(np.copy(m), *rest)
    h = 1e-6
    expect = np.zeros_like(m)
    for idx in np.ndindex(m.shape):
        e = np.zeros_like(m)
        e[idx] = h
        expect[idx] = (fn(m + e, *rest) - fn(m - e, *rest)) / (2 * h)
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-6)


def test_caller_arrays_are_not_mutated():
    m = np.copy(M)
    cotan.normalize(row_view_per_branch)(m, 1.0)
    cotan.jit(row_view_per_branch)(m, 1.0)
    np.testing.assert_array_equal(m, M)


# ------------------------------------------------------------ refused

def view_or_copy(m, c):            # the reproducer: NumPy gives 9.0
    if c > 0:
        v = m[0]
    else:
        v = m[0].copy()
    v[0] = 9.0
    return np.sum(m)


def view_in_one_branch_only(m, c):
    v = m[1].copy()
    if c > 0:
        v = m[0]
    v[0] = 9.0
    return np.sum(m)


def view_of_either_base(m, n, c):
    if c > 0:
        v = m[0:2]
    else:
        v = n[0:2]
    n[0] = 5.0
    return np.sum(v)


def view_from_an_earlier_trip(m):
    v = m[1].copy()
    for i in range(2):
        v[0] = 9.0 + i
        v = m[0:2]
    return np.sum(m)


def loop_may_not_run(m, n):
    v = m[0:2]
    for i in range(n):
        v = v.copy()
    v[0] = 9.0
    return np.sum(m)


def while_may_rebind(m, c):
    v = m[0:2]
    while c > 0.0:
        v = v * 1.0
        c = c - 1.0
    v[0] = 9.0
    return np.sum(m)


def siblings_after_rebind(m):
    v = m[0:2]
    w = m[1:3]
    m = m * 2.0
    v[1] = 5.0
    return np.sum(w)


def transposed_view(m):
    v = m.T
    v[0] = 1.0
    return np.sum(m)


def index_changed_since(m):
    j = 0
    v = m[j]
    j = 1
    v[0] = 5.0
    return np.sum(m)


def row_of_slice_read_after_write(m):
    v = m[0:2][0]            # a row or an element: decided by m's rank (test_view_or_copy.py)
    m[0, 0] = 5.0
    return np.sum(v)


def row_of_iterated_view_read_after_write(m):
    s = 0.0
    for r in m.T:            # r: a row of m.T (a view), decided by rank (test_view_or_copy.py)
        m[0, 1] = m[0, 1] + 1.0
        s = s + r[0]
    return s


def self_view_of_shared(m):
    v = m[0:2]
    v = v[1]                 # a view of m's row 1, through an array no name holds
    v[0] = 5.0
    return np.sum(m)


def view_of_rebound_view(m):
    v = m[0:2]
    b = v.T
    b = b[1:3][0]            # a view of v, through v.T, which no name holds
    v[0] = 5.0
    return np.sum(b)


def both_rebound_through_transpose(m):
    v = m[0:2]
    v = v.T
    m = m.T                  # m and v: views of the same old array
    v[0] = 1.0
    return np.sum(m)


def alias_in_branch_then_rebound(m, c):
    v = m[0:2]
    b = m[2]
    if c > 0.0:
        b = v
    v = v.copy()
    m[0] = m[0] * 1.5
    return np.sum(b)


def view_remade_in_loop_then_base_written(m):
    a = m.copy()
    b = m[0:2]
    for i in range(3):
        b[0] = b[0] * 1.5 + 0.25
        a = m.T              # a view of m after a trip, a copy if none ran
    b[0] = b[0] * 1.5 + 0.25
    return np.sum(a)


REFUSED = {
    "view_remade_in_loop_then_base_written": (view_remade_in_loop_then_base_written,
                                              (np.zeros((3, 3)),), "a"),
    "self_view_of_shared": (self_view_of_shared, (np.zeros((3, 2)),), "v"),
    "view_of_rebound_view": (view_of_rebound_view, (np.zeros((3, 3)),), "b"),
    "both_rebound_through_transpose": (both_rebound_through_transpose, (np.zeros((3, 2)),), "v"),
    "alias_in_branch_then_rebound": (alias_in_branch_then_rebound, (np.zeros((3, 2)), 1.0), "b"),
    "transposed_view": (transposed_view, (np.zeros((3, 2)),), "v"),
    "index_changed_since": (index_changed_since, (np.zeros((3, 2)),), "v"),
    # name: (function, arguments, the variable the message names)
    "view_or_copy": (view_or_copy, (np.zeros((2, 2)), 1.0), "v"),
    "view_in_one_branch_only": (view_in_one_branch_only, (np.zeros((2, 2)), 1.0), "v"),
    "view_of_either_base": (view_of_either_base, (np.zeros((3, 2)), np.ones((3, 2)), -1.0), "v"),
    "view_from_an_earlier_trip": (view_from_an_earlier_trip, (np.zeros((3, 2)),), "v"),
    "loop_may_not_run": (loop_may_not_run, (np.zeros((3, 2)), 0), "v"),
    "while_may_rebind": (while_may_rebind, (np.zeros((3, 2)), 0.0), "v"),
    "siblings_after_rebind": (siblings_after_rebind, (np.zeros((3, 2)),), "v"),
}


def _transformations():
    return {"normalize": cotan.normalize, "jit": cotan.jit, "vmap": cotan.vmap,
            "grad": cotan.grad, "jvp": lambda f: lambda *a: cotan.jvp(f, a, a)}


@pytest.mark.parametrize("name", sorted(REFUSED))
@pytest.mark.parametrize("how", sorted(_transformations()))
def test_undecidable_view_is_refused(name, how):
    fn, args, var = REFUSED[name]
    # each of these programs means something definite to NumPy, which cotan
    # would have to decide path by path: a refusal, never another number
    fn(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
    with pytest.raises(TransformError) as info:
        # some transformations normalize at once, others at the first call
        if how == "vmap":
            args = (np.stack([args[0]] * 2),) + tuple(args[1:])
            transformed = cotan.vmap(fn, in_axes=(0,) + (None,) * (len(args) - 1))
        else:
            transformed = _transformations()[how](fn)
        transformed(*args)
    text = str(info.value)
    assert f"'{fn.__name__}'" in text
    assert f"'{var}'" in text
    assert "test_views.py:" in text
    assert ".copy()" in text


def test_refusal_names_line_and_what_to_write():
    with pytest.raises(TransformError) as info:
        cotan.normalize(view_or_copy)(np.zeros((2, 2)), 1.0)
    text = str(info.value)
    # the line of the write, with its text, and both ways out
    assert "v[0] = 9.0" in text
    assert "a view of 'm' on some paths" in text
    assert "write into 'm' itself" in text


# ------------------------------------------- random programs of views

def _random_view_program(seed):
    """A random program of views, copies, rebindings and in-place writes over
    a 3x3 `m`, with if/else, for over range and enumerate, break and
    continue (seeded, reproducible)."""
    import random
    r = random.Random(seed)
    names = ["a", "b", "v", "m"]

    def assign():
        x = r.choice(names[:3] + (["m"] if r.random() < 0.2 else []))
        y = r.choice(names)
        rhs = r.choice([f"{y}[0:2]", f"{y}[1]", f"{y}.T", f"{y}.copy()", f"{y}",
                        f"{y} * 1.0", f"{y}[1:3][0]", f"{y}[::-1]"])
        return [f"{x} = {rhs}"]

    def write():
        x = r.choice(names)
        return [f"{x}[0] = {x}[0] * 1.5 + 0.25"]

    def block(depth, n, in_loop=False):
        out = []
        for _ in range(n):
            p = r.random()
            if depth < 2 and p < 0.15:
                body = block(depth + 1, r.randint(1, 3), in_loop)
                orelse = block(depth + 1, r.randint(0, 2), in_loop)
                out += ["if c > 0.0:"] + ["    " + s for s in body]
                if orelse:
                    out += ["else:"] + ["    " + s for s in orelse]
            elif depth < 2 and p < 0.27:
                body = block(depth + 1, r.randint(1, 4), True)
                head = r.choice([f"for i in range({r.choice(['2', 'n', '3'])}):",
                                 "for i, w in enumerate(a):"])
                out += [head] + ["    " + s for s in body]
            elif in_loop and p < 0.35:
                out += [r.choice(["if np.sum(a) > 3.0:", "if np.sum(v) < 2.0:", "if i > 0:"]),
                        "    " + r.choice(["break", "continue"])]
            elif p < 0.6:
                out += assign()
            else:
                out += write()
        return out
    body = ["a = m.copy()", "b = m * 2.0", "v = m[0:2]", "i = -1"] + block(0, r.randint(3, 7))
    body.append("return np.sum(m) + np.sum(a) * 2.0 + np.sum(b) * 3.0 + np.sum(v) * 5.0 + i * 7.0")
    return "import numpy as np\n\n\ndef f(m, c, n):\n" + "\n".join("    " + s for s in body) + "\n"


def test_random_view_programs_follow_numpy_or_are_refused(tmp_path):
    # every program either computes NumPy's number or is refused with a cotan
    # error; a different number or another exception fails
    import importlib.util
    from cotan.errors import CotanError
    followed = refused = 0
    for seed in range(150):
        path = tmp_path / f"views_{seed}.py"
        path.write_text(_random_view_program(seed))
        spec = importlib.util.spec_from_file_location(f"views_{seed}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        base = np.arange(9.0).reshape(3, 3) / 4.0 + 0.1
        for c, n in ((1.0, 2), (-1.0, 0), (-1.0, 1)):
            try:
                expect = mod.f(base.copy(), c, n)
            except (IndexError, TypeError, ValueError):
                continue  # not a valid NumPy program (a write into a scalar ...)
            try:
                got = cotan.normalize(mod.f)(base.copy(), c, n)
            except CotanError:
                refused += 1
                continue
            np.testing.assert_allclose(got, expect, rtol=1e-12,
                                       err_msg=f"seed {seed}, c={c}, n={n}:\n{path.read_text()}")
            followed += 1
    assert followed > 100 and refused > 100   # both outcomes are exercised
