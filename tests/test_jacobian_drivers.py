"""jacfwd, jacrev and hessian are generated functions: they compose with jit,
vmap, grad, jvp and with each other, give JAX's shapes for scalars, vectors,
matrices, several argnums and pytrees, and are generated once per function.

References are independent: central finite differences in float64 and
Python loops over the batch."""

import numpy as np
import pytest

import cotan
from cotan import forward_api
from cotan.errors import CotanError, MissingRuleError, NonDifferentiableError, TransformError

EPS = 1e-6


def fd_jacobian(f, args, argnum):
    """Central differences of array-valued f with respect to args[argnum]:
    shape out.shape + in.shape."""
    x = np.asarray(args[argnum], dtype=float)
    cols = []
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = EPS
        plus = list(args)
        minus = list(args)
        plus[argnum], minus[argnum] = x + e, x - e
        cols.append((np.asarray(f(*plus)) - np.asarray(f(*minus))) / (2 * EPS))
    out_shape = np.shape(f(*args))
    return np.moveaxis(np.array(cols), 0, -1).reshape(out_shape + x.shape)


def vec_fn(x):
    return np.sin(x) * np.sum(x ** 2)


def scalar_fn(x):
    return np.sum(np.sin(x) * x ** 2) + np.prod(np.cos(x))


def mat_fn(m):
    return np.tanh(m @ m.T)[0]


def loop_fn(x):
    y = x
    for i in range(3):
        y = np.sin(y) * 0.5 + y * x
    return y


def two_args(x, a):
    return np.tanh(a @ x) * x[0]


def of_scalar(t):
    return np.sin(t) * t ** 3


X = np.array([0.3, -0.5, 1.2])
M = np.array([[0.2, -0.4, 0.9], [0.7, 0.1, -0.3]])
A = np.array([[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [-0.1, 0.2, 0.3]])

CASES = [(vec_fn, (X,)), (mat_fn, (M,)), (loop_fn, (X,)), (of_scalar, (0.7,)),
         (two_args, (X, A))]
CASE_IDS = ["vector", "matrix", "loop", "scalar", "two_args"]
JACOBIANS = [cotan.jacfwd, cotan.jacrev]


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacfwd", "jacrev"])
@pytest.mark.parametrize("f,args", CASES, ids=CASE_IDS)
def test_jacobian_matches_finite_differences(jac, f, args):
    got = jac(f)(*args)
    np.testing.assert_allclose(got, fd_jacobian(f, args, 0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacfwd", "jacrev"])
@pytest.mark.parametrize("f,args", CASES, ids=CASE_IDS)
def test_jit_of_a_jacobian_is_the_jacobian(jac, f, args):
    j = jac(f)
    got = cotan.jit(j)(*args)
    assert np.shape(got) == np.shape(j(*args))
    np.testing.assert_allclose(got, j(*args), rtol=1e-10, atol=1e-12)


def test_jit_of_hessian_is_the_hessian_not_the_gradient():
    # the driver object once carried its inner grad's core, and jit compiled that
    h = cotan.hessian(scalar_fn)
    got = cotan.jit(h)(X)
    assert got.shape == (3, 3)
    g = cotan.grad(scalar_fn)
    np.testing.assert_allclose(got, fd_jacobian(g, (X,), 0), rtol=1e-6, atol=1e-8)
    assert not hasattr(h, "__cotan_core__")


def test_hessian_of_a_matrix_and_of_a_scalar():
    def f(m):
        return np.sum(np.sin(m) * m[0])
    g = cotan.grad(f)
    np.testing.assert_allclose(cotan.hessian(f)(M), fd_jacobian(g, (M,), 0),
                               rtol=1e-6, atol=1e-8)
    assert cotan.hessian(f)(M).shape == M.shape + M.shape
    want = fd_jacobian(cotan.grad(of_scalar), (0.7,), 0)
    np.testing.assert_allclose(cotan.hessian(of_scalar)(0.7), want, rtol=1e-6)
    np.testing.assert_allclose(cotan.jit(cotan.hessian(of_scalar))(0.7), want, rtol=1e-6)


@pytest.mark.parametrize("jac", JACOBIANS + [cotan.hessian],
                         ids=["jacfwd", "jacrev", "hessian"])
def test_vmap_of_a_jacobian_is_a_loop_of_jacobians(jac):
    f = scalar_fn if jac is cotan.hessian else loop_fn
    xs = np.array([[0.3, -0.5, 1.2], [0.1, 0.9, -0.4], [1.5, 0.2, 0.3]])
    j = jac(f)
    want = np.stack([j(x) for x in xs])
    np.testing.assert_allclose(cotan.vmap(j)(xs), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cotan.jit(cotan.vmap(j))(xs), want, rtol=1e-10, atol=1e-12)


def test_vmap_of_a_jacobian_over_one_argument_only():
    j = cotan.jacrev(two_args)
    xs = np.array([[0.3, -0.5, 1.2], [0.1, 0.9, -0.4]])
    want = np.stack([j(x, A) for x in xs])
    np.testing.assert_allclose(cotan.vmap(j, in_axes=(0, None))(xs, A), want, rtol=1e-10)


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacfwd", "jacrev"])
def test_jacobians_of_jacobians_are_hessians(jac):
    def f(x):
        return np.sum(np.sin(x) * x ** 2)
    want = fd_jacobian(cotan.grad(f), (X,), 0)
    for inner in JACOBIANS:
        np.testing.assert_allclose(jac(inner(f))(X), want, rtol=1e-6, atol=1e-8)
        if (jac, inner) != (cotan.jacrev, cotan.jacrev):
            np.testing.assert_allclose(cotan.jit(jac(inner(f)))(X), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cotan.hessian(f)(X), want, rtol=1e-6, atol=1e-8)


@pytest.mark.xfail(strict=True, raises=MissingRuleError, reason=(
    "the VJP's result is a tuple, so jacrev of jacrev indexes a tuple per lane in its "
    "adjoint: getitem_lanes_adjoint of a tuple has no llvm lowering yet"))
def test_jit_of_jacrev_of_jacrev():
    def f(x):
        return np.sum(np.sin(x) * x ** 2)
    want = fd_jacobian(cotan.grad(f), (X,), 0)
    np.testing.assert_allclose(cotan.jit(cotan.jacrev(cotan.jacrev(f)))(X), want, rtol=1e-6)


def test_jacobian_of_jacrev_through_a_scaled_sum():
    def f(x):
        return np.sum(np.sin(x)) * 2.0
    np.testing.assert_allclose(cotan.jacfwd(cotan.jacrev(f))(X), np.diag(-2.0 * np.sin(X)),
                               rtol=1e-10)


def test_grad_of_a_forward_jacobian_matches_finite_differences():
    def loss(x):
        return np.sum(cotan.jacfwd(two_args)(x, A) ** 2)
    want = fd_jacobian(loss, (X,), 0)
    np.testing.assert_allclose(cotan.grad(loss)(X), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cotan.jit(cotan.grad(loss))(X), want, rtol=1e-6, atol=1e-8)


def quartic(v):
    return np.sum(v ** 4)


def test_grad_of_the_trace_of_a_hessian():
    def lap(x):
        return np.trace(cotan.hessian(quartic)(x))
    np.testing.assert_allclose(cotan.grad(lap)(X), fd_jacobian(lap, (X,), 0), rtol=1e-6)


@pytest.mark.parametrize("jac", JACOBIANS + [cotan.hessian],
                         ids=["jacfwd", "jacrev", "hessian"])
def test_jvp_of_a_jacobian_matches_finite_differences(jac):
    f = scalar_fn if jac is cotan.hessian else loop_fn
    j = jac(f)
    v = np.array([1.0, -0.5, 0.25])
    out, tangent = cotan.jvp(j, (X,), (v,))
    np.testing.assert_allclose(out, j(X), rtol=1e-12)
    want = (j(X + EPS * v) - j(X - EPS * v)) / (2 * EPS)
    np.testing.assert_allclose(tangent, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacfwd", "jacrev"])
def test_several_argnums_give_a_tuple_per_output(jac):
    got = jac(two_args, argnums=(0, 1))(X, A)
    assert isinstance(got, tuple) and len(got) == 2
    for k in range(2):
        np.testing.assert_allclose(got[k], fd_jacobian(two_args, (X, A), k),
                                   rtol=1e-6, atol=1e-8)
    jitted = cotan.jit(jac(two_args, argnums=(0, 1)))(X, A)
    for a, b in zip(jitted, got):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    only_a = jac(two_args, argnums=1)(X, A)
    np.testing.assert_allclose(only_a, got[1], rtol=1e-12)
    np.testing.assert_allclose(jac(two_args, argnums=-1)(X, A), got[1], rtol=1e-12)


def test_hessian_with_several_argnums_is_blocks_of_blocks():
    def f(x, y):
        return np.sum(np.sin(x) * y ** 2)
    y = np.array([0.4, 1.1, -0.3])
    h = cotan.hessian(f, argnums=(0, 1))(X, y)
    gx = cotan.grad(f, argnums=(0, 1))
    for i in range(2):
        for j in range(2):
            want = fd_jacobian(lambda a, b: gx(a, b)[i], (X, y), j)
            np.testing.assert_allclose(h[i][j], want, rtol=1e-6, atol=1e-8)
    jitted = cotan.jit(cotan.hessian(f, argnums=(0, 1)))(X, y)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(jitted[i][j], h[i][j], rtol=1e-10, atol=1e-12)


def mlp(params, x):
    h = np.tanh(x @ params["w"] + params["b"])
    return {"loss": np.sum(h ** 2), "h": h}


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacfwd", "jacrev"])
@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_pytree_arguments_and_outputs(jac, argnums):
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    x = rng.normal(size=3)
    got = jac(mlp, argnums=argnums)(params, x)
    assert set(got) == {"loss", "h"}

    def leaf_fn(out_key, arg, in_key):
        def f(v):
            args = [dict(params), x]
            if in_key is None:
                args[arg] = v
            else:
                args[0][in_key] = v
            return mlp(*args)[out_key]
        return f
    for out_key in ("loss", "h"):
        block = got[out_key]
        for pos, arg in enumerate((argnums,) if isinstance(argnums, int) else argnums):
            b = block if isinstance(argnums, int) else block[pos]
            if arg == 0:
                for in_key in ("w", "b"):
                    want = fd_jacobian(leaf_fn(out_key, 0, in_key), (params[in_key],), 0)
                    np.testing.assert_allclose(b[in_key], want, rtol=1e-6, atol=1e-8)
            else:
                want = fd_jacobian(leaf_fn(out_key, 1, None), (x,), 0)
                np.testing.assert_allclose(b, want, rtol=1e-6, atol=1e-8)


def test_a_pytree_inside_a_transformed_jacobian_is_refused_by_name():
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    x = rng.normal(size=3)
    for jac in JACOBIANS:
        with pytest.raises(TransformError, match=r"of jac(fwd|rev)\(mlp\) is a dict \(a pytree\)"):
            cotan.jit(jac(mlp))(params, x)
        with pytest.raises(TransformError, match="pytree"):
            cotan.vmap(jac(mlp, argnums=1), in_axes=(None, 0))(params, np.stack([x, x]))


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacfwd", "jacrev"])
def test_has_aux(jac):
    def f(x):
        return np.sin(x) * x, {"norm": np.sum(x ** 2)}
    j, aux = jac(f, has_aux=True)(X)
    np.testing.assert_allclose(j, fd_jacobian(lambda v: f(v)[0], (X,), 0), rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(aux["norm"], np.sum(X ** 2))
    jj, jaux = cotan.jit(jac(f, has_aux=True))(X)
    np.testing.assert_allclose(jj, j, rtol=1e-10)
    np.testing.assert_allclose(jaux["norm"], aux["norm"])


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacfwd", "jacrev"])
def test_integer_values_are_refused_by_name(jac):
    with pytest.raises(NonDifferentiableError, match=r"argument 'x' of jac.*two_args.*int64"):
        jac(two_args)(np.arange(3), A)
    with pytest.raises(CotanError, match=r"int64"):
        cotan.jit(jac(two_args))(np.arange(3), A)


def test_argnums_out_of_range_is_refused_by_name():
    with pytest.raises(CotanError, match=r"argnums=2 is out of range for jacfwd\(two_args\)"):
        cotan.jacfwd(two_args, argnums=2)


def test_a_jacobian_is_generated_once_per_function_and_argnums(monkeypatch):
    from cotan.autodiff import normalize as normalize_mod
    calls = []
    real = normalize_mod._normalize_parsed

    def counting(parsed):
        calls.append(parsed.qualname)
        return real(parsed)
    monkeypatch.setattr(normalize_mod, "_normalize_parsed", counting)

    def g(x, a):
        return np.tanh(a @ x) + x
    before = dict(forward_api.GENERATED)
    for jac in (cotan.jacrev, cotan.jacfwd):
        first = jac(g, argnums=0)(X, A)
        made = len(calls)
        assert made > 0
        for _ in range(3):
            np.testing.assert_allclose(jac(g, argnums=0)(X, A), first, rtol=0)
        # neither making the Jacobian again nor calling it transforms anything
        assert len(calls) == made
    assert forward_api.GENERATED["jacrev"] == before["jacrev"] + 1
    assert forward_api.GENERATED["jacfwd"] == before["jacfwd"] + 1
    assert cotan.jacrev(g, argnums=0) is cotan.jacrev(g, argnums=0)
    assert cotan.jacrev(g, argnums=1) is not cotan.jacrev(g, argnums=0)


def test_the_generated_source_is_readable():
    src = cotan.source(cotan.jacfwd(vec_fn))
    assert src.startswith("def jacfwd_vec_fn(x):")
    assert "jacobian_basis(" in src and "tangents(" in src and "jacobian_columns(" in src
    src = cotan.source(cotan.jacrev(vec_fn))
    assert "pullbacks(" in src and "jacobian_rows(" in src
