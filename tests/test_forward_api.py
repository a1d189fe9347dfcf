"""The public forward-mode API: jvp, linearize, jacfwd, jacrev, hessian,
custom_jvp, and what the generated forward code looks like."""

import numpy as np
import pytest

import cotan
from cotan.autodiff.forward import jvp_function
from cotan.errors import ShapeError


def fd_jvp(f, args, tangents, eps=1e-6):
    plus = f(*[a + eps * t for a, t in zip(args, tangents)])
    minus = f(*[a - eps * t for a, t in zip(args, tangents)])
    return (np.asarray(plus) - np.asarray(minus)) / (2 * eps)


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def mlp(params, x):
    h = np.tanh(x @ params["w"] + params["b"])
    return {"loss": np.sum(h ** 2), "h": h}


def newton_sqrt(a):
    x = a
    while np.max(np.abs(x * x - a)) > 1e-12:
        x = 0.5 * (x + a / x)
    return x


def _mlp_args(rng):
    return {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}, rng.normal(size=(4, 3))


# -- jvp -------------------------------------------------------------------------------

def test_jvp_of_pytrees(rng):
    params, x = _mlp_args(rng)
    tp = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    tx = rng.normal(size=x.shape)
    out, dout = cotan.jvp(mlp, (params, x), (tp, tx))
    eps = 1e-6
    plus = mlp({k: params[k] + eps * tp[k] for k in params}, x + eps * tx)
    minus = mlp({k: params[k] - eps * tp[k] for k in params}, x - eps * tx)
    assert set(dout) == {"loss", "h"}
    for k in dout:
        np.testing.assert_allclose(dout[k], (plus[k] - minus[k]) / (2 * eps), rtol=1e-6)


def test_jvp_has_aux():
    def f(x):
        return np.sin(x), {"norm": np.sum(x * x)}
    x = np.array([0.1, 0.7])
    out, dout, aux = cotan.jvp(f, (x,), (np.ones(2),), has_aux=True)
    np.testing.assert_allclose(dout, np.cos(x))
    assert aux["norm"] == pytest.approx(0.5)


def test_integer_argument_gets_no_tangent():
    def f(x, n):
        return x ** n
    out, dout = cotan.jvp(f, (np.array([2.0]), 3), (np.array([1.0]), 0))
    np.testing.assert_allclose(dout, [12.0])


def test_while_loop_with_value_dependent_trip_count():
    a = np.array([2.0, 9.0, 0.5])
    t = np.array([1.0, -1.0, 0.5])
    out, dout = cotan.jvp(newton_sqrt, (a,), (t,))
    np.testing.assert_allclose(out, np.sqrt(a))
    np.testing.assert_allclose(dout, t / (2 * np.sqrt(a)), rtol=1e-8)


def test_tangent_shape_mismatch_is_a_clear_error():
    with pytest.raises(ShapeError, match="shape"):
        cotan.jvp(np.sin, (np.ones(3),), (np.ones(2),))


# -- generated code -----------------------------------------------------------------------

def test_generated_source_pairs_statements_with_tangents():
    def f(x):
        n = x.shape[0]
        y = x * 3.0
        return np.sum(np.sin(y)) / n
    src = cotan.source(jvp_function(f))
    assert "def jvp_f(x, dx):" in src
    assert "# jvp of: y = x * 3.0" in src
    assert "dy = multiply(dx, 3.0)" in src
    assert "dn" not in src           # shape queries carry no tangent
    assert "tangent_zeros" not in src  # zeros are symbolic, never materialized


def test_zero_tangent_materialized_only_where_control_flow_merges():
    def f(x, c):
        y = 1.0
        if c > 0:
            y = x * 2.0
        return y
    src = cotan.source(jvp_function(f, (0,)))
    assert src.count("tangent_zeros") == 1
    out, dout = jvp_function(f, (0,))(np.array(3.0), -1.0, np.array(1.0))
    assert dout == 0.0


# -- linearize ---------------------------------------------------------------------------

def test_linearize_reuses_the_primal():
    def f(x):
        return np.sin(x) * np.exp(x)
    x = np.array([0.3, -0.2, 1.1])
    out, f_jvp = cotan.linearize(f, x)
    np.testing.assert_allclose(out, f(x))
    src = "\n".join(line for line in cotan.source(f_jvp).splitlines()
                    if not line.strip().startswith("#"))
    # the tangent function only multiplies and adds saved values
    assert "sin(" not in src and "exp(" not in src and "cos(" not in src
    for _ in range(3):
        t = np.random.default_rng(0).normal(size=3)
        np.testing.assert_allclose(f_jvp(t), fd_jvp(f, (x,), (t,)), rtol=1e-6)


def test_linearize_through_a_while_loop():
    a = np.array([2.0, 9.0])
    out, f_jvp = cotan.linearize(newton_sqrt, a)
    np.testing.assert_allclose(f_jvp(np.array([1.0, 0.0])), [0.5 / np.sqrt(2.0), 0.0], rtol=1e-8)
    assert "while" in cotan.source(f_jvp)


# -- Jacobians -------------------------------------------------------------------------------

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
jax.config.update("jax_enable_x64", True)


def mlp_jax(params, x):
    h = jnp.tanh(x @ params["w"] + params["b"])
    return {"loss": jnp.sum(h ** 2), "h": h}


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jacfwd_shapes_and_values_follow_jax(rng, argnums):
    params, x = _mlp_args(rng)
    ours = cotan.jacfwd(mlp, argnums=argnums)(params, x)
    theirs = jax.jacfwd(mlp_jax, argnums=argnums)(params, x)
    flat_o, tree_o = jax.tree_util.tree_flatten(ours)
    flat_t, tree_t = jax.tree_util.tree_flatten(theirs)
    assert tree_o == tree_t
    for a, b in zip(flat_o, flat_t):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-10, atol=1e-12)


def test_jacrev_agrees_with_jacfwd(rng):
    params, x = _mlp_args(rng)
    fwd = cotan.jacfwd(mlp, argnums=(0, 1))(params, x)
    rev = cotan.jacrev(mlp, argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree_util.tree_leaves(fwd), jax.tree_util.tree_leaves(rev)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_hessian_of_rosenbrock_matches_jax(rng):
    x = rng.uniform(-1, 1, 6)

    def rosen_jax(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    np.testing.assert_allclose(cotan.hessian(rosenbrock)(x), jax.hessian(rosen_jax)(x),
                               rtol=1e-10)


# -- Hessian-vector products, both orders -------------------------------------------------

def _hvp_reference(f, x, v, eps=1e-5):
    g = cotan.grad(f)
    return (g(x + eps * v) - g(x - eps * v)) / (2 * eps)


def loopy(x):
    y = x
    for i in range(3):
        y = np.sin(y) * x + 0.1 * y
    return np.sum(y ** 2)


@pytest.mark.parametrize("f", [rosenbrock, loopy])
def test_hvp_forward_over_reverse(f, rng):
    x, v = rng.uniform(-1, 1, 5), rng.normal(size=5)
    _, hv = cotan.jvp(cotan.grad(f), (x,), (v,))
    np.testing.assert_allclose(hv, _hvp_reference(f, x, v), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("f", [rosenbrock, loopy])
def test_hvp_reverse_over_forward(f, rng):
    x, v = rng.uniform(-1, 1, 5), rng.normal(size=5)
    f_jvp = jvp_function(f)

    def directional(x):
        return f_jvp(x, v)[1]
    hv = cotan.grad(directional)(x)
    np.testing.assert_allclose(hv, _hvp_reference(f, x, v), rtol=1e-6, atol=1e-7)


# -- custom_jvp -----------------------------------------------------------------------------

@cotan.custom_jvp
def clipped_log1pexp(x):
    return np.log1p(np.exp(x))


@clipped_log1pexp.defjvp
def _clipped_log1pexp_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    # deliberately twice the true derivative, so the test sees the rule is used
    return clipped_log1pexp(x), 2.0 * dx / (1.0 + np.exp(-x))


def test_custom_jvp_rule_is_used():
    def f(x):
        return np.sum(clipped_log1pexp(x) * 3.0)
    x = np.array([0.2, -1.0])
    out, dout = cotan.jvp(f, (x,), (np.ones(2),))
    np.testing.assert_allclose(out, f(x))
    np.testing.assert_allclose(dout, np.sum(6.0 / (1.0 + np.exp(-x))))
    assert clipped_log1pexp.__cotan_primitive__.jvp_rule is not None


def test_custom_jvp_composes_forward_over_forward():
    def f(x):
        return clipped_log1pexp(x)
    g = jvp_function(f)
    x = np.array([0.3])
    # second derivative of the (doubled) rule: d/dx 2 sigmoid(x)
    _, ddx = cotan.jvp(lambda x: g(x, np.ones(1))[1], (x,), (np.ones(1),))
    s = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(ddx, 2.0 * s * (1 - s))


def test_jacrev_pulls_back_all_basis_vectors_in_one_vmapped_call():
    def f(x):
        y = np.tanh(np.outer(x, x[:3]) @ np.ones(3))
        for i in range(2):
            y = y * 0.5 + np.sin(y)
        return y
    x = np.linspace(-1.0, 1.0, 6)
    jac = cotan.jacrev(f)
    # one call of the vmapped pullback, no Python loop over output elements
    assert "pullbacks(" in cotan.source(jac) and "for " not in cotan.source(jac)
    np.testing.assert_allclose(jac(x), cotan.jacfwd(f)(x), rtol=1e-12, atol=1e-14)


def test_a_jacobian_is_generated_code_that_jit_and_vmap_transform():
    # jacfwd/jacrev were Python drivers; jit once compiled the wrapped user
    # function instead (wrong shape, no error), later refused them
    def f(a):
        return np.sum(np.sin(a) * a, axis=1)

    x = np.arange(6.0).reshape(2, 3) / 7
    for jac in (cotan.jacfwd(f), cotan.jacrev(f)):
        assert jac(x).shape == (2, 2, 3)
        assert not hasattr(jac, "__wrapped__") and not hasattr(jac, "__cotan_core__")
        np.testing.assert_allclose(cotan.jit(jac)(x), jac(x), rtol=1e-12)
        xs = np.stack([x, 2 * x])
        np.testing.assert_allclose(cotan.vmap(jac)(xs), np.stack([jac(v) for v in xs]),
                                   rtol=1e-12)
