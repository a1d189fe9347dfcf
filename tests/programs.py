"""A shared corpus of differentiable test programs.

Owns `PROGRAMS`, a list of `Program(name, fn, make_args, argnums)`:

* `fn`: a plain Python + NumPy function returning a float64 scalar (so
  `grad` applies; forward mode and batching may use it too),
* `make_args(rng) -> tuple`: fresh float64 arguments from a
  `numpy.random.Generator` (the same seed gives the same arguments),
* `argnums`: the indices of the arguments to differentiate (others are
  static-ish data: integers, masks, constants).

The programs mix control flow on array values, loops with value-dependent
trip counts, break/continue, early returns, helper calls, closures and
globals, in-place updates, indexing and NumPy calls.  Every function is
smooth at the generated arguments (branches are not near their switching
points), so finite differences are a valid reference.  Used by the reverse,
forward and jit engineers' tests; add programs at the end, never reorder.
"""

from collections import namedtuple

import numpy as np

Program = namedtuple("Program", "name fn make_args argnums")

PROGRAMS = []


def program(make_args, argnums=(0,)):
    """Register the decorated function as a Program."""
    def register(fn):
        PROGRAMS.append(Program(fn.__name__, fn, make_args, tuple(argnums)))
        return fn
    return register


def vec(n, lo=-1.0, hi=1.0):
    return lambda rng: (rng.uniform(lo, hi, n),)


def vecs(*shapes, lo=-1.0, hi=1.0):
    return lambda rng: tuple(rng.uniform(lo, hi, s) for s in shapes)


SCALE = 0.5                      # a global constant (not differentiated)
OFFSET = np.linspace(-1.0, 1.0, 5)  # a global array (a constant)


def square_helper(a):
    return a * a


def softplus(a):
    return np.log1p(np.exp(a))


def nested_helper(a, b):
    return square_helper(a) + np.sin(b) * a


def early_return_helper(a):
    if np.sum(a) > 0:
        return a * 2.0
    return a * a


# -- straight-line arithmetic and NumPy calls ---------------------------------

@program(vec(5))
def poly(x):
    return np.sum(3.0 * x ** 3 - 2.0 * x ** 2 + x - 1.0)


@program(vec(4, 0.5, 2.0))
def transcendental(x):
    return np.sum(np.sin(x) * np.exp(-x) + np.log(x) / np.sqrt(x) + np.tanh(x) ** 2)


@program(vecs(3, 3), argnums=(0, 1))
def two_args(x, y):
    return np.dot(x, y) + np.sum(x / (1.0 + y * y))


@program(vecs((3, 4), (4,)), argnums=(0, 1))
def broadcast_add(a, b):
    return np.sum(np.cos(a + b) * b)


@program(vecs((3, 1), (1, 4)), argnums=(0, 1))
def outer_broadcast(a, b):
    return np.sum((a * b) ** 2)


@program(vecs((4, 3), (3, 2)), argnums=(0, 1))
def matmul_loss(a, b):
    return np.sum(np.tanh(a @ b))


@program(vecs((3, 4)))
def reductions(x):
    return np.sum(np.max(x, axis=1)) + np.mean(x) + np.sum(np.prod(x, axis=0))


@program(vecs((3, 4)))
def mean_var(x):
    return np.var(x) + np.std(x, axis=0).sum()


@program(vecs((2, 6)))
def reshape_transpose(x):
    y = x.reshape(3, 4).T
    return np.sum(y * np.arange(12.0).reshape(4, 3))


@program(vec(6))
def logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


@program(vecs((4, 3)))
def softmax_entropy(x):
    z = x - np.max(x, axis=1, keepdims=True)
    p = np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)
    return -np.sum(p * np.log(p))


@program(vec(5))
def where_relu(x):
    return np.sum(np.where(x > 0, x, 0.1 * x) ** 2)


@program(vecs(5, 5), argnums=(0, 1))
def maximum_minimum(x, y):
    return np.sum(np.maximum(x, y) * 2.0 + np.minimum(x, y) ** 2)


@program(vec(4, 0.2, 0.8))
def inverse_trig(x):
    return np.sum(np.arcsin(x) + np.arccos(x) * x + np.arctan(x) ** 2)


@program(vec(4, 0.5, 1.5))
def power_general(x):
    return np.sum(x ** x + 2.0 ** x)


@program(vec(4))
def abs_value(x):
    return np.sum(np.abs(x - 0.05) * x)


@program(vecs((3, 3)))
def concat_stack(x):
    y = np.concatenate([x, x * 2.0], axis=0)
    z = np.stack([x[0], x[1] ** 2])
    return np.sum(y ** 2) + np.sum(z * 3.0)


@program(vec(5))
def cumulative(x):
    return np.sum(np.cumsum(x) ** 2)


@program(vecs((3, 3)))
def linalg_inv_det(a):
    m = a + 3.0 * np.eye(3)
    return np.sum(np.linalg.inv(m)) + np.linalg.det(m)


@program(vecs((3, 3), 3), argnums=(0, 1))
def linalg_solve(a, b):
    m = a + 3.0 * np.eye(3)
    return np.sum(np.linalg.solve(m, b) ** 2)


@program(vecs(4, 4), argnums=(0, 1))
def einsum_contract(x, y):
    return np.einsum("i,j->", x, y) + np.einsum("i,i->", x, x)


@program(vec(6))
def sort_values(x):
    return np.sum(np.sort(x) * np.arange(6.0))


# -- globals, closures, helpers ------------------------------------------------

@program(vec(5))
def uses_globals(x):
    return np.sum((x + OFFSET) ** 2) * SCALE


def _make_closure():
    w = np.array([1.0, -2.0, 0.5])

    def closure_weights(x):
        return np.sum(w * np.sin(x))
    return closure_weights


PROGRAMS.append(Program("closure_weights", _make_closure(), vec(3), (0,)))


@program(vec(4))
def calls_helper(x):
    return np.sum(square_helper(x) + softplus(x))


@program(vecs(3, 3), argnums=(0, 1))
def calls_nested_helper(x, y):
    return np.sum(nested_helper(x, y))


@program(vec(4, 0.1, 1.0))
def helper_with_early_return(x):
    return np.sum(early_return_helper(x))


@program(vec(3))
def lambda_inside(x):
    f = lambda a: a * np.cos(a)  # noqa: E731
    return np.sum(f(x) + f(2.0 * x))


# -- branches -------------------------------------------------------------------

@program(vec(4, 0.1, 1.0))
def if_positive(x):
    if np.sum(x) > 0:
        y = x * 2.0
    else:
        y = -x
    return np.sum(y ** 2)


@program(vec(4, -1.0, -0.1))
def if_negative(x):
    if np.sum(x) > 0:
        y = x * 2.0
    else:
        y = np.sin(x)
    return np.sum(y ** 2)


@program(vec(3, 0.1, 1.0))
def if_elif_else(x):
    s = np.sum(x)
    if s > 10.0:
        r = x ** 3
    elif s > 0.5:
        r = np.exp(x)
    else:
        r = x
    return np.sum(r)


@program(vec(3, 0.1, 1.0))
def if_without_else(x):
    y = x
    if np.max(x) > 0.05:
        y = y * np.cos(x)
    return np.sum(y)


@program(vec(4, 0.1, 1.0))
def early_return(x):
    if np.sum(x) > 0:
        return np.sum(x ** 2)
    return np.sum(x)


@program(vec(4, -1.0, -0.1))
def early_return_late(x):
    if np.sum(x) > 0:
        return np.sum(x ** 2)
    y = x * 3.0
    return np.sum(np.sin(y))


@program(vecs(3, 3), argnums=(0, 1))
def branch_on_other(x, y):
    if np.sum(y) > 100.0:
        return np.sum(x)
    z = x * y
    if np.min(y) < 2.0:
        z = z + y ** 2
    return np.sum(z)


@program(vec(3))
def scalar_branches(x):
    a = x[0]
    b = x[1]
    if a > b:
        c = a * b
    else:
        c = a - b
    return c * x[2]


# -- loops ------------------------------------------------------------------------

@program(vec(4))
def for_accumulate(x):
    s = 0.0
    for i in range(5):
        s = s + np.sum(x * i)
    return s


@program(vec(3, 0.1, 0.5))
def for_overwrite(x):
    for i in range(4):
        x = np.sin(x) * 1.5
    return np.sum(x)


@program(vec(4, 0.1, 0.5))
def for_over_shape(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i] * x[i]
    return s


@program(vec(3))
def for_product(x):
    p = 1.0
    for i in range(3):
        p = p * (x[i] + 2.0)
    return p


@program(vec(5))
def for_with_branch(x):
    s = 0.0
    for i in range(5):
        if x[i] > 0:
            s = s + x[i] ** 2
        else:
            s = s - x[i]
    return s


@program(vec(6, 0.1, 1.0))
def for_break(x):
    s = 0.0
    for i in range(6):
        s = s + x[i]
        if s > 1.2:
            break
    return s * s


@program(vec(6, -1.0, 1.0))
def for_continue(x):
    s = 0.0
    for i in range(6):
        if i % 2 == 1:
            continue
        s = s + np.sin(x[i])
    return s


@program(vec(3, 0.1, 0.3))
def while_value_dependent(x):
    s = np.sum(x)
    n = 0
    while s < 10.0:
        s = s * 1.5 + 0.1
        n += 1
    return s / (n + 1)


@program(vec(3, 0.2, 0.4))
def while_with_break(x):
    y = x
    k = 0
    while True:
        y = y * 1.3
        k += 1
        if np.sum(y) > 5.0 or k > 20:
            break
    return np.sum(y ** 2)


@program(vec(3))
def nested_loops(x):
    s = 0.0
    for i in range(3):
        for j in range(3):
            s = s + x[i] * x[j] * (i + 1)
    return s


@program(vec(4, 0.1, 0.5))
def nested_while_for(x):
    s = 0.0
    k = 0
    while k < 3:
        for i in range(4):
            s = s + np.exp(x[i] * k)
        k = k + 1
    return s


@program(vec(4, 0.1, 0.9))
def loop_trip_from_value(x):
    n = int(np.sum(x) * 2) + 1
    s = 0.0
    for i in range(n):
        s = s + np.sum(x ** (i + 1))
    return s


@program(vec(3, 0.1, 0.5))
def loop_early_return(x):
    for i in range(10):
        x = x * 1.5
        if np.sum(x) > 3.0:
            return np.sum(x ** 2)
    return np.sum(x)


@program(vec(3))
def recurrence_scalar(x):
    h = 0.0
    for t in range(3):
        h = np.tanh(h * 0.5 + x[t])
    return h


@program(vecs((4, 4), (4,)), argnums=(0, 1))
def rnn_loop(w, h0):
    h = h0
    for t in range(5):
        h = np.tanh(w @ h + 0.1)
    return np.sum(h ** 2)


@program(vec(4))
def loop_over_list(x):
    parts = []
    for i in range(3):
        parts.append(x * (i + 1.0))
    return np.sum(parts[0] * parts[2]) + np.sum(parts[1])


# -- in-place updates and indexing --------------------------------------------------

@program(vec(5))
def index_scalar(x):
    return x[0] * x[3] + x[-1] ** 2


@program(vecs((4, 5)))
def slice_rows(x):
    return np.sum(x[1:3] ** 2) + np.sum(x[:, ::2] * 3.0) + np.sum(x[0, 1:4])


@program(vec(6))
def fancy_index(x):
    idx = np.array([0, 2, 2, 5])
    return np.sum(x[idx] ** 2)


@program(vec(5))
def boolean_mask(x):
    mask = np.array([True, False, True, True, False])
    return np.sum(np.exp(x[mask]))


@program(vec(5))
def inplace_setitem(x):
    y = np.zeros(5)
    y[1:4] = x[0:3] * 2.0
    y[0] = x[4] ** 2
    return np.sum(y * x)


@program(vec(4))
def inplace_augmented(x):
    y = x.copy()
    y += 1.0
    y *= x
    y[2] -= x[0]
    return np.sum(y ** 2)


@program(vec(4))
def inplace_in_loop(x):
    y = np.zeros(4)
    for i in range(4):
        y[i] = x[i] * (i + 1.0) + np.sum(y)
    return np.sum(y ** 2)


@program(vecs((3, 3)))
def inplace_overwrite_input_copy(x):
    z = x.copy()
    z[0, :] = np.sin(z[0, :])
    z[:, 1] = z[:, 1] * z[:, 2]
    return np.sum(z)


# -- pytrees (dict parameters) and tuples --------------------------------------------

def _mlp_args(rng):
    params = {"W": rng.normal(size=(3, 4)) * 0.5, "b": rng.normal(size=4) * 0.1}
    x = rng.normal(size=(5, 3))
    return params, x


@program(_mlp_args)
def mlp_dict_params(params, x):
    h = np.tanh(x @ params["W"] + params["b"])
    return np.mean(h ** 2)


@program(vecs(3, 3), argnums=(0, 1))
def tuple_unpack(x, y):
    a, b = x * y, x + y
    return np.sum(a * b)


@program(vec(4))
def returns_from_tuple(x):
    pair = (np.sin(x), np.cos(x))
    return np.sum(pair[0] * pair[1])


# -- mixed ---------------------------------------------------------------------------

@program(vec(4, 0.1, 1.0))
def newton_sqrt(x):
    y = x
    for i in range(6):
        y = 0.5 * (y + x / y)
    return np.sum(y)


@program(vecs((6,), (2,)), argnums=(0, 1))
def gaussian_loglik(x, theta):
    mu = theta[0]
    s = np.exp(theta[1])
    return np.sum(-0.5 * ((x - mu) / s) ** 2 - np.log(s))


@program(vec(5))
def clip_and_square(x):
    return np.sum(np.clip(x, -0.5, 0.5) ** 2 + x)


@program(vecs((3, 3)))
def trace_diag(x):
    return np.trace(x @ x) + np.sum(np.diag(x) ** 3)


@program(vec(5))
def float_conversion(x):
    a = float(x[0])
    return a * np.sum(x)


# -- triangular loops: inner bounds that read an outer index -------------------
# (reverse mode must record each inner trip count per outer trip)

@program(vec(4))
def tri_pairwise(x):
    s = 0.0
    for i in range(x.shape[0]):
        for j in range(i, x.shape[0]):
            s = s + x[i] * x[j]
    return s


@program(vec(4))
def tri_strict_upper(x):
    s = 0.0
    n = x.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            s = s + np.sin(x[i] - x[j]) * x[j]
    return s


@program(vec(3, 0.5, 1.5))
def tri_powers(x):
    s = 0.0
    for i in range(3):
        for j in range(i + 1):
            s = s + np.sum(x ** (i + 1)) * (j + 1)
    return s


@program(lambda rng: (rng.uniform(-1.0, 1.0, (4, 4)) + 4.0 * np.eye(4), rng.uniform(-1.0, 1.0, 4)),
         argnums=(0, 1))
def tri_forward_substitution(a, b):
    n = b.shape[0]
    y = np.zeros(n)
    for i in range(n):
        acc = b[i]
        for j in range(i):
            acc = acc - a[i, j] * y[j]
        y[i] = acc / a[i, i]
    return np.sum(y * y)


@program(lambda rng: (rng.uniform(-0.5, 0.5, (4, 4)) + 3.0 * np.eye(4),))
def tri_cholesky(a):
    m = a @ a.T
    n = m.shape[0]
    low = np.zeros((n, n))
    for j in range(n):
        d = m[j, j]
        for k in range(j):
            d = d - low[j, k] * low[j, k]
        low[j, j] = np.sqrt(d)
        for i in range(j + 1, n):
            t = m[i, j]
            for k in range(j):
                t = t - low[i, k] * low[j, k]
            low[i, j] = t / low[j, j]
    return np.sum(low * np.arange(1.0, n * n + 1.0).reshape(n, n))


@program(vec(5))
def tri_depth3(x):
    s = 0.0
    for i in range(3):
        for j in range(i, 4):
            for k in range(j - i, j + 1):
                s = s + x[k] * x[i] * (j + 1)
    return s


@program(vec(5))
def tri_while_inner(x):
    s = 0.0
    for i in range(x.shape[0]):
        j = 0
        while j < i:
            s = s + x[i] * np.cos(x[j])
            j = j + 1
    return s


@program(vec(6))
def tri_runtime_step(x):
    s = 0.0
    for i in range(1, 4):
        for j in range(i - 1, x.shape[0], i):
            s = s + x[j] * x[i] * i
    return s


@program(vec(5))
def tri_break_continue(x):
    s = 0.0
    for i in range(x.shape[0]):
        for j in range(i, x.shape[0]):
            if j == i + 2:
                break
            if j == i:
                continue
            s = s + x[i] * x[j]
    return s


@program(vec(5))
def tri_reversed_inner(x):
    s = 0.0
    for i in range(x.shape[0]):
        for j in range(i, -1, -1):
            s = s * 0.5 + x[j] * x[i]
    return s
