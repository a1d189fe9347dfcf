"""Complex numbers in eager transformations, with JAX's conventions.

A cotangent c of a complex value pairs with a tangent dz as Re(c dz): for a
real-valued L of z = x + iy, `grad(L)(z)` is dL/dx - i dL/dy (JAX's
documented convention: grad of f(z) = |z|^2 at 3 + 4j is 6 - 8j), and
`grad(f, holomorphic=True)(z)` of a holomorphic f is f'(z).  Every reference
below is computed independently: central finite differences in float64
along the real and the imaginary direction of each element, the analytic
derivative, or a Python loop for vmap.
"""

import numpy as np
import pytest

import cotan
from cotan.errors import CotanError, MissingRuleError, NonDifferentiableError
from cotan.autodiff.parse import register_source

EPS = 1e-6
RNG = np.random.default_rng(16)
# away from the branch cuts of log, sqrt, arcsin, arccos, arctanh, arccosh
Z = np.array([0.3 + 0.4j, -0.45 + 0.25j, 0.2 - 0.5j])
Z_GT1 = np.array([1.6 + 0.4j, 2.1 - 0.3j, 1.4 + 0.2j])
W = np.array([0.7 - 0.2j, -0.3 + 0.6j, 0.5 + 0.45j])
C = np.array([0.9 + 1.3j, -0.4 + 0.2j, 1.1 - 0.7j])    # a complex weight


def _fd_grad(f, args, i):
    """dL/dx - i dL/dy of real-valued f in argument i, element by element
    (real arguments: dL/dx only)."""
    x = np.asarray(args[i])
    out = np.zeros(x.shape, dtype=x.dtype)
    dirs = (1.0, 1j) if x.dtype.kind == "c" else (1.0,)
    for j in range(x.size):
        for d in dirs:
            e = np.zeros(x.shape, dtype=x.dtype)
            e.flat[j] = EPS * d
            plus, minus = list(args), list(args)
            plus[i], minus[i] = x + e, x - e
            deriv = (float(f(*plus)) - float(f(*minus))) / (2 * EPS)
            out.flat[j] += deriv if d == 1.0 else -1j * deriv
    return out


def _fd_jvp(f, z, t):
    return (f(z + EPS * t) - f(z - EPS * t)) / (2 * EPS)


def _compile(src, ns):
    filename = f"<test_complex {abs(hash(src))}>"
    register_source(filename, src)
    exec(compile(src, filename, "exec"), ns)
    return ns[src.split("(")[0].split()[-1]]


# every elementwise function NumPy defines for complex values, with inputs
# in its domain of holomorphy (real, imag, conj, abs, angle are not
# holomorphic: they get the real-linear treatment)
UNARY = {
    "negative": Z, "sin": Z, "cos": Z, "tan": Z, "arcsin": Z, "arccos": Z, "arctan": Z,
    "sinh": Z, "cosh": Z, "tanh": Z, "arcsinh": Z, "arccosh": Z_GT1, "arctanh": Z,
    "exp": Z, "expm1": Z, "log": Z, "log1p": Z, "sqrt": Z, "square": Z, "reciprocal": Z,
    "exp2": Z, "log2": Z, "log10": Z, "positive": Z,
    "real": Z, "imag": Z, "conj": Z, "conjugate": Z, "absolute": Z, "abs": Z, "angle": Z,
}
BINARY = ["add", "subtract", "multiply", "divide", "power"]


def _unary(name):
    return _compile(f"def u_{name}(z):\n    return np.{name}(z)\n", {"np": np})


def _binary(name):
    return _compile(f"def b_{name}(z, w):\n    return np.{name}(z, w)\n", {"np": np})


def _losses(f, nargs):
    """Two real losses of f's output: |f|^2 (what a user writes) and
    Re(sum(c f)) (linear: sensitive to a missing or extra conjugate)."""
    params = ", ".join(f"a{k}" for k in range(nargs))
    sq = _compile(f"def sq_loss({params}):\n    return np.sum(np.abs(f({params})) ** 2)\n",
                  {"np": np, "f": f})
    lin = _compile(f"def lin_loss({params}):\n    return np.sum(np.real(f({params}) * c))\n",
                   {"np": np, "f": f, "c": C})
    return sq, lin


def test_jax_documented_convention():
    def f(z):
        return np.real(z) ** 2 + np.imag(z) ** 2
    assert cotan.grad(f)(3.0 + 4.0j) == pytest.approx(6.0 - 8.0j)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_grad_matches_finite_differences(name):
    z = UNARY[name]
    for loss in _losses(_unary(name), 1):
        g = cotan.grad(loss)(z)
        assert g.dtype == np.complex128
        np.testing.assert_allclose(g, _fd_grad(loss, [z], 0), rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name}: {loss.__name__}")


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_jvp_matches_finite_differences(name):
    z = UNARY[name]
    f = _unary(name)
    for t in (np.ones(3, complex), 1j * np.ones(3), RNG.standard_normal(3) + 1j * RNG.standard_normal(3)):
        out, dout = cotan.jvp(f, (z,), (t,))
        np.testing.assert_allclose(out, f(z), rtol=1e-12)
        np.testing.assert_allclose(dout, _fd_jvp(f, z, t), rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", ["real", "imag", "absolute", "angle"])
def test_real_valued_functions_of_complex_have_real_tangents(name):
    _, dout = cotan.jvp(_unary(name), (Z,), (1j * np.ones(3),))
    assert np.isrealobj(dout), name


@pytest.mark.parametrize("name", BINARY)
def test_binary_grad_matches_finite_differences(name):
    f = _binary(name)
    for loss in _losses(f, 2):
        g = cotan.grad(loss, argnums=(0, 1))(Z, W)
        for i in (0, 1):
            np.testing.assert_allclose(g[i], _fd_grad(loss, [Z, W], i), rtol=1e-6, atol=1e-7,
                                       err_msg=f"{name}: {loss.__name__} d/d arg {i}")


@pytest.mark.parametrize("name", BINARY)
def test_binary_jvp_matches_finite_differences(name):
    f = _binary(name)
    tz, tw = 1j * np.ones(3), np.ones(3) + 0.5j
    out, dout = cotan.jvp(f, (Z, W), (tz, tw))
    fd = (f(Z + EPS * tz, W + EPS * tw) - f(Z - EPS * tz, W - EPS * tw)) / (2 * EPS)
    np.testing.assert_allclose(dout, fd, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", BINARY)
def test_a_real_operand_gets_a_real_cotangent(name):
    x = np.array([0.6, 1.3, 0.8])
    f = _binary(name)
    for loss in _losses(f, 2):
        gx, gw = cotan.grad(loss, argnums=(0, 1))(x, W)
        assert gx.dtype == np.float64, f"{name}: {loss.__name__}"
        np.testing.assert_allclose(gx, _fd_grad(loss, [x, W], 0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(gw, _fd_grad(loss, [x, W], 1), rtol=1e-6, atol=1e-7)


REAL_INTO_COMPLEX = {
    "broadcast product": "np.real(np.sum(x[:, None] * c[None, :]))",
    "matmul": "np.sum(np.abs(m @ x) ** 2)",
    "matmul right": "np.sum(np.real(x @ m))",
    "dot": "np.real(np.dot(x, c))",
    "einsum": "np.real(np.einsum('i,i->', x, c))",
    "astype": "np.sum(np.abs(x.astype(complex) * c) ** 2)",
    "concatenate": "np.sum(np.abs(np.concatenate([x, c])) ** 2 * np.arange(6.0))",
    "where": "np.sum(np.real(np.where(x > 0.7, x, c) * c))",
    "complex constant": "np.sum(np.abs(np.exp(1j * x)) + np.real(np.exp(1j * x)))",
    "power": "np.real(np.sum(c ** x))",
}


@pytest.mark.parametrize("what", sorted(REAL_INTO_COMPLEX))
def test_a_real_input_gets_a_real_gradient(what):
    f = _compile(f"def f(x):\n    return {REAL_INTO_COMPLEX[what]}\n",
                 {"np": np, "c": C, "m": np.outer(C, np.arange(1.0, 4.0))})
    x = np.array([0.6, 1.3, 0.8])
    g = cotan.grad(f)(x)
    assert g.dtype == np.float64, what
    np.testing.assert_allclose(g, _fd_grad(f, [x], 0), rtol=1e-6, atol=1e-7, err_msg=what)


def test_complex_matmul_and_einsum_gradients():
    a = RNG.standard_normal((3, 3)) + 1j * RNG.standard_normal((3, 3))

    def f(a, z):
        return np.sum(np.abs(a @ z) ** 2) + np.real(np.einsum("ij,j->", a, z * C))
    g = cotan.grad(f, argnums=(0, 1))(a, Z)
    for i in (0, 1):
        np.testing.assert_allclose(g[i], _fd_grad(f, [a, Z], i), rtol=1e-6, atol=1e-7)


def test_attribute_and_method_spellings():
    def f(z):
        return np.sum(z.real * z.imag + np.real(z.conj() * C) + np.imag(z.conjugate() * z * C))
    np.testing.assert_allclose(cotan.grad(f)(Z), _fd_grad(f, [Z], 0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(f(Z), np.sum(Z.real * Z.imag + np.real(Z.conj() * C)
                                            + np.imag(Z.conjugate() * Z * C)))


def test_angle_in_degrees():
    def f(z):
        return np.sum(np.angle(z, deg=True))
    np.testing.assert_allclose(f(Z), np.sum(np.angle(Z, deg=True)))
    np.testing.assert_allclose(cotan.grad(f)(Z), _fd_grad(f, [Z], 0), rtol=1e-6, atol=1e-6)


def test_reductions_of_complex():
    def f(z):
        return np.abs(np.sum(z * C)) + np.real(np.prod(z)) + np.imag(np.mean(np.cumsum(z) ** 2))
    np.testing.assert_allclose(cotan.grad(f)(Z), _fd_grad(f, [Z], 0), rtol=1e-6, atol=1e-7)


def test_fft_of_a_complex_input():
    z = RNG.standard_normal(6) + 1j * RNG.standard_normal(6)
    c = RNG.standard_normal(6) + 1j * RNG.standard_normal(6)

    def f(z):
        return np.sum(np.abs(np.fft.fft(z)) ** 2 * np.arange(6.0)) + \
            np.real(np.sum(np.fft.ifft(z * c) * c))
    np.testing.assert_allclose(cotan.grad(f)(z), _fd_grad(f, [z], 0), rtol=1e-6, atol=1e-6)
    t = 1j * np.ones(6)
    g = _compile("def g(z):\n    return np.fft.fft(z) * c\n", {"np": np, "c": c})
    np.testing.assert_allclose(cotan.jvp(g, (z,), (t,))[1], _fd_jvp(g, z, t), rtol=1e-6,
                               atol=1e-6)


# -- holomorphic=True -------------------------------------------------------------------

def _holo(z):
    return np.sin(z) * z ** 2 + np.exp(z) / (1.0 + z)


def _holo_prime(z):
    return (np.cos(z) * z ** 2 + 2 * z * np.sin(z) + np.exp(z) / (1 + z)
            - np.exp(z) / (1 + z) ** 2)


def test_holomorphic_grad_is_the_complex_derivative():
    for z in (0.7 + 0.4j, -0.3 - 1.1j):
        np.testing.assert_allclose(cotan.grad(_holo, holomorphic=True)(z), _holo_prime(z),
                                   rtol=1e-12)
        value, g = cotan.value_and_grad(_holo, holomorphic=True)(z)
        np.testing.assert_allclose((value, g), (_holo(z), _holo_prime(z)), rtol=1e-12)


def test_holomorphic_grad_of_a_sum_over_an_array():
    def f(z):
        return np.sum(np.log(z) * z)
    np.testing.assert_allclose(cotan.grad(f, holomorphic=True)(Z), np.log(Z) + 1, rtol=1e-12)


def test_holomorphic_jacobians():
    def f(z):
        return np.tanh(z) * z
    jac = np.diag(np.tanh(Z) + Z * (1 - np.tanh(Z) ** 2))
    np.testing.assert_allclose(cotan.jacfwd(f, holomorphic=True)(Z), jac, rtol=1e-12)
    np.testing.assert_allclose(cotan.jacrev(f, holomorphic=True)(Z), jac, rtol=1e-12)


def test_jacrev_of_a_real_function_of_complex_inputs():
    def f(z):
        return np.abs(z) ** 2 + np.real(z * C)
    np.testing.assert_allclose(cotan.jacrev(f)(Z), np.diag(2 * Z.conj() + C), rtol=1e-12)


# -- vmap ---------------------------------------------------------------------------------

def test_vmap_of_complex_matches_a_loop():
    zs = RNG.standard_normal((4, 3)) + 1j * RNG.standard_normal((4, 3))

    def f(z):
        return np.abs(z) ** 2 + np.angle(z) + np.real(np.conj(z) * C) + np.imag(np.exp(z))
    np.testing.assert_allclose(cotan.vmap(f)(zs), np.stack([f(z) for z in zs]), rtol=1e-12)

    def loss(z):
        return np.sum(f(z))
    g = cotan.grad(loss)
    np.testing.assert_allclose(cotan.vmap(g)(zs), np.stack([g(z) for z in zs]), rtol=1e-12)


def test_vmap_of_imag_cotangent_matches_a_loop():
    from cotan.runtime.adjoint_helpers import imag_cotangent
    gs = RNG.standard_normal((4, 3))
    zs = RNG.standard_normal((4, 3)) + 1j * RNG.standard_normal((4, 3))
    for xs in (zs, zs.real):
        np.testing.assert_allclose(cotan.vmap(imag_cotangent)(gs, xs),
                                   np.stack([imag_cotangent(g, x) for g, x in zip(gs, xs)]))


# -- refusals -----------------------------------------------------------------------------

def test_grad_of_a_complex_output_is_refused_by_name():
    def lift(z):
        return np.sin(z) * 2.0
    with pytest.raises(NonDifferentiableError, match=r"lift returned .*complex.*holomorphic=True"):
        cotan.grad(lift)(0.5 + 0.1j)


def test_holomorphic_needs_complex_inputs_and_outputs():
    def square(z):
        return z * z
    with pytest.raises(NonDifferentiableError, match="holomorphic=True.*complex inputs"):
        cotan.grad(square, holomorphic=True)(0.5)

    def modulus(z):
        return np.abs(z)
    with pytest.raises(NonDifferentiableError, match="modulus returned .*needs a complex output"):
        cotan.grad(modulus, holomorphic=True)(0.5 + 1j)
    with pytest.raises(NonDifferentiableError, match="holomorphic=True needs complex"):
        cotan.jacfwd(square, holomorphic=True)(np.ones(2))


def test_jacobians_of_complex_values_need_holomorphic():
    def f(z):
        return z * z
    with pytest.raises(NonDifferentiableError, match="argument 'z' of jacfwd.*holomorphic=True"):
        cotan.jacfwd(f)(Z)
    with pytest.raises(NonDifferentiableError, match="output of jacrev.*holomorphic=True"):
        cotan.jacrev(f)(Z)


def test_jit_refuses_complex_values_by_name():
    def f(z):
        return np.sum(z * z)
    # refused at the boundary (the input's dtype), before anything compiles
    with pytest.raises(CotanError, match="complex128"):
        cotan.jit(f)(Z)

    def g(x):
        return np.sum(np.real(np.exp(1j * x)))
    with pytest.raises(CotanError, match="complex"):
        cotan.jit(g)(np.ones(3))


def test_jit_of_the_complex_aware_rules_on_real_values():
    x = np.array([1.0, -2.0, 3.0])

    def f(x):
        return np.sum(np.abs(x) ** 3 + np.real(x) * np.imag(x) + np.conj(x) * x + np.angle(x))
    np.testing.assert_allclose(cotan.jit(f)(x), f(x), rtol=1e-12)
    np.testing.assert_allclose(cotan.jit(cotan.grad(f))(x), cotan.grad(f)(x), rtol=1e-12)
    np.testing.assert_allclose(cotan.grad(f)(x), _fd_grad(f, [x], 0), rtol=1e-6)


@pytest.mark.parametrize("name", ["var", "std", "vdot", "vecdot", "nanvar"])
def test_compositions_that_conjugate_as_numpy_does(name):
    a = RNG.standard_normal((2, 3)) + 1j * RNG.standard_normal((2, 3))
    if name in ("vdot", "vecdot"):
        f = _compile(f"def f(a, b):\n    return np.{name}(a, b)\n", {"np": np})
        b = a[::-1] * (1 - 0.5j)
        np.testing.assert_allclose(f(a, b), getattr(np, name)(a, b), rtol=1e-12)
        loss = _compile("def loss(a, b):\n    return np.sum(np.real(f(a, b) * c))\n",
                        {"np": np, "f": f, "c": 0.3 + 0.8j})
        g = cotan.grad(loss, argnums=(0, 1))(a, b)
        for i in (0, 1):
            np.testing.assert_allclose(g[i], _fd_grad(loss, [a, b], i), rtol=1e-6, atol=1e-7)
        return
    f = _compile(f"def f(a):\n    return np.{name}(a, axis=1)\n", {"np": np})
    out = f(a)
    np.testing.assert_allclose(out, getattr(np, name)(a, axis=1), rtol=1e-12)
    assert np.isrealobj(out)
    loss = _compile("def loss(a):\n    return np.sum(f(a) * w)\n",
                    {"np": np, "f": f, "w": np.array([1.0, 2.0])})
    np.testing.assert_allclose(cotan.grad(loss)(a), _fd_grad(loss, [a], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["real", "imag", "conj", "conjugate", "angle", "absolute"])
def test_eager_complex_parts_match_numpy(name):
    import cotan.numpy as cnp
    z = np.array([[1.5 - 0.5j, -0.3 + 2.0j, 0.0 + 0.0j], [-1.0 - 1.0j, 2.0 + 0.1j, -0.7j]])
    for v in (z, z.astype(np.complex64), 1.5 + 2j, np.arange(3)):
        got, want = getattr(cnp, name)(v), getattr(np, name)(v)
        assert np.result_type(got) == np.result_type(want), (name, v)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(cnp.angle(z, deg=True), np.angle(z, deg=True))


# -- second order -------------------------------------------------------------------------

SECOND = {
    "holomorphic": "np.sum(np.real(np.sin(z) * c))",
    "abs squared": "np.sum(np.abs(z) ** 2)",
    "abs cubed": "np.sum(np.abs(z) ** 3)",
    "parts": "np.sum(np.real(z) ** 2 * np.imag(z))",
    "conj": "np.sum(np.real(np.conj(z) * z * z))",
    "angle": "np.sum(np.angle(z) * np.abs(z))",
}


@pytest.mark.parametrize("what", sorted(SECOND))
def test_grad_of_grad_of_a_complex_input(what):
    c = C[:2]
    loss = _compile(f"def loss(z):\n    return {SECOND[what]}\n", {"np": np, "c": c})
    inner = cotan.grad(loss)
    outer = _compile("def outer(z):\n    return np.sum(np.real(inner(z) * c))\n",
                     {"np": np, "inner": inner, "c": c})
    z = Z[:2]
    np.testing.assert_allclose(cotan.grad(outer)(z), _fd_grad(outer, [z], 0), rtol=1e-5,
                               atol=1e-6, err_msg=what)


@pytest.mark.parametrize("what", sorted(REAL_INTO_COMPLEX))
def test_hessian_and_vmapped_gradient_of_real_inputs_through_complex(what):
    f = _compile(f"def f(x):\n    return {REAL_INTO_COMPLEX[what]}\n",
                 {"np": np, "c": C, "m": np.outer(C, np.arange(1.0, 4.0))})
    x = np.array([0.6, 1.3, 0.8])
    g = cotan.grad(f)
    h = cotan.hessian(f)(x)
    assert h.dtype == np.float64, what
    fd = np.stack([(g(x + EPS * e) - g(x - EPS * e)) / (2 * EPS) for e in np.eye(3)])
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-6, err_msg=what)
    xs = x + 0.1 * np.arange(4.0)[:, None]
    got = cotan.vmap(g)(xs)
    assert got.dtype == np.float64, what
    np.testing.assert_allclose(got, np.stack([g(v) for v in xs]), rtol=1e-12, err_msg=what)
