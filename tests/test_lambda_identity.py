"""Which lambda is transformed: a lambda is found by its code object (its
first line, its parameters, the column ranges of its instructions, the code
objects it makes), never by "the last lambda on the line".  Lambdas that
cannot be told apart are accepted only when their text is the same (then
they compile to the same code, and free names resolve through the
function's own closure and globals); otherwise cotan refuses by name.

References: the gradient of each lambda written out by hand, and central
finite differences."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cotan

X = np.array([0.5, -1.0, 2.0])

f1 = lambda x: np.sum(x); f2 = lambda x: np.sum(2 * x)  # noqa: E702,E731
table = {"square": lambda x: np.sum(x ** 2), "sine": lambda x: np.sum(np.sin(x))}
only_constant = [lambda x: np.sum(x * 3.0), lambda x: np.sum(x * 4.0)]
spread = [lambda x: np.sum(x * 5.0),
          lambda x: np.sum(np.cos(x))]


def fd_grad(f, x, eps=1e-6):
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def test_two_lambdas_on_one_line():
    np.testing.assert_allclose(cotan.grad(f1)(X), np.ones(3))
    np.testing.assert_allclose(cotan.grad(f2)(X), 2 * np.ones(3))
    # asked the other way round, cached or not
    np.testing.assert_allclose(cotan.grad(f2)(X), 2 * np.ones(3))
    np.testing.assert_allclose(cotan.grad(f1)(X), np.ones(3))


def test_two_lambdas_on_one_indented_line():
    g1 = lambda x: np.sum(x * x); g2 = lambda x: np.sum(np.exp(x))  # noqa: E702,E731
    np.testing.assert_allclose(cotan.grad(g1)(X), 2 * X)
    np.testing.assert_allclose(cotan.grad(g2)(X), np.exp(X))


def test_a_dict_of_lambdas_on_one_line():
    np.testing.assert_allclose(cotan.grad(table["square"])(X), 2 * X)
    np.testing.assert_allclose(cotan.grad(table["sine"])(X), np.cos(X))


def test_lambdas_differing_only_in_a_constant():
    np.testing.assert_allclose(cotan.grad(only_constant[1])(X), 4.0 * np.ones(3))
    np.testing.assert_allclose(cotan.grad(only_constant[0])(X), 3.0 * np.ones(3))


def test_lambdas_in_a_statement_spanning_several_lines():
    np.testing.assert_allclose(cotan.grad(spread[0])(X), 5.0 * np.ones(3))
    np.testing.assert_allclose(cotan.grad(spread[1])(X), -np.sin(X))


def test_every_transformation_takes_the_same_lambda():
    h1 = lambda x: np.sin(x) * 2.0; h2 = lambda x: np.cos(x) + x  # noqa: E702,E731
    np.testing.assert_allclose(cotan.jit(h2)(X), h2(X))
    np.testing.assert_allclose(cotan.jit(h1)(X), h1(X))
    np.testing.assert_allclose(cotan.vmap(h2)(X), h2(X))
    np.testing.assert_allclose(cotan.jvp(h1, (X,), (np.ones(3),))[1], 2.0 * np.cos(X))
    np.testing.assert_allclose(cotan.jacfwd(h2)(X), np.diag(1.0 - np.sin(X)), atol=1e-12)
    np.testing.assert_allclose(cotan.normalize(h2)(X), h2(X))


def make_scaled(a):
    return lambda x: np.sum(a * x ** 2)


def test_one_lambda_with_different_closure_cells():
    two, five = make_scaled(2.0), make_scaled(5.0)
    np.testing.assert_allclose(cotan.grad(two)(X), 4.0 * X)
    np.testing.assert_allclose(cotan.grad(five)(X), 10.0 * X)
    np.testing.assert_allclose(cotan.jit(cotan.grad(two))(X), 4.0 * X)


A_GLOBAL = 10.0


def test_identical_text_with_a_closure_and_with_a_global():
    # same text on one line; `a` is a closure cell in one, a global in the other
    closed = (lambda a: lambda x: np.sum(a * x))(3.0); free = lambda x: np.sum(A_GLOBAL * x)  # noqa
    np.testing.assert_allclose(cotan.grad(closed)(X), 3.0 * np.ones(3))
    np.testing.assert_allclose(cotan.grad(free)(X), 10.0 * np.ones(3))


def test_nested_lambdas_on_one_line():
    outer = lambda y: lambda x: np.sum(np.sin(x)) * y  # noqa: E731
    inner = outer(3.0)
    np.testing.assert_allclose(cotan.grad(inner)(X), 3.0 * np.cos(X))
    np.testing.assert_allclose(cotan.grad(outer(1.0))(X), fd_grad(outer(1.0), X), rtol=1e-6)


def test_a_lambda_inside_a_transformed_function():
    def f(x):
        g = lambda v: np.sum(v ** 3); h = lambda v: np.sum(v)  # noqa: E702,E731
        return g(x) + 2.0 * h(x)
    np.testing.assert_allclose(cotan.grad(f)(X), 3 * X ** 2 + 2.0)


_WITHOUT_COLUMNS = textwrap.dedent("""
    import numpy as np, cotan
    from cotan.errors import TransformError
    x = np.array([0.5, -1.0, 2.0])
    f1 = lambda x: np.sum(x); f2 = lambda x: np.sum(2 * x)
    same1 = lambda x: np.sum(x * x); same2 = lambda x: np.sum(x * x)
    try:
        cotan.grad(f1)(x)
    except TransformError as e:
        print("REFUSED", e)
    print("SAME", cotan.grad(same2)(x).tolist(), cotan.grad(same1)(x).tolist())
""")


@pytest.fixture
def without_columns(tmp_path):
    """Run a script whose code objects carry no column ranges
    (`python -X no_debug_ranges`), so that lambdas on one line look alike."""
    script = tmp_path / "same_line.py"
    script.write_text(_WITHOUT_COLUMNS)
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root] + sys.path)
    done = subprocess.run([sys.executable, "-X", "no_debug_ranges", str(script)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return script, done.stdout


def test_lambdas_that_cannot_be_told_apart_are_refused_by_name(without_columns):
    script, out = without_columns
    refused = [line for line in out.split("SAME")[0].splitlines()]
    text = "\n".join(refused)
    assert text.startswith("REFUSED")
    assert "cannot tell which of the 2 lambdas" in text
    assert f"{script}:5" in text            # file:line
    assert "define the function with `def`" in text


def test_lambdas_with_the_same_text_are_the_same_function(without_columns):
    _, out = without_columns
    import json
    line = out.split("SAME", 1)[1].strip()
    got = json.loads("[" + line.replace("] [", "], [") + "]")
    np.testing.assert_allclose(got[0], 2 * X)
    np.testing.assert_allclose(got[1], 2 * X)
