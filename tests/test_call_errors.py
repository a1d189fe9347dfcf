"""Call mistakes get a message naming the function, the argument and what
to do (as JAX's do), never an internal IndexError, KeyError or a silently
ignored option."""

import numpy as np
import pytest

import cotan
from cotan.errors import CotanError, NonDifferentiableError


def f2(x, y):
    return np.sum(x * y)


X = np.arange(3.0)


def test_jit_too_many_positional_arguments():
    with pytest.raises(TypeError, match=r"jit\(f2\) takes 2 positional arguments \('x', 'y'\) "
                       r"but 3 were given"):
        cotan.jit(f2)(X, X, X)


def test_jit_too_few_arguments_names_the_missing_one():
    with pytest.raises(TypeError, match=r"jit\(f2\) is missing the argument 'y'"):
        cotan.jit(f2)(X)


def test_jit_unknown_keyword():
    with pytest.raises(TypeError, match=r"jit\(f2\).*'z'"):
        cotan.jit(f2)(X, X, z=1.0)


def test_jit_checks_after_a_compiled_call_too():
    jf = cotan.jit(f2)
    assert jf(X, X) == pytest.approx(f2(X, X))
    with pytest.raises(TypeError, match="3 were given"):
        jf(X, X, X)


@pytest.mark.parametrize("nums", [5, (0, 2), -3])
def test_static_argnums_out_of_range(nums):
    with pytest.raises(CotanError, match=r"static_argnums=.* f2 takes 2 arguments"):
        cotan.jit(f2, static_argnums=nums)


def test_static_argnums_negative_counts_from_the_end():
    def f(x, n):
        return np.zeros(n) + x
    np.testing.assert_allclose(cotan.jit(f, static_argnums=-1)(1.0, 3), np.ones(3))


def test_static_argnames_unknown():
    with pytest.raises(CotanError, match="has no parameter 'z'"):
        cotan.jit(f2, static_argnames="z")


@pytest.mark.parametrize("argnums", [1.0, "x", (), (0, 1.5), True])
def test_argnums_must_be_ints(argnums):
    with pytest.raises(CotanError, match=r"argnums of grad\(f2\) must be an int"):
        cotan.grad(f2, argnums=argnums)


@pytest.mark.parametrize("driver", ["jacfwd", "jacrev", "hessian"])
def test_argnums_of_jacobians_must_be_ints(driver):
    with pytest.raises(CotanError, match="argnums"):
        getattr(cotan, driver)(f2, argnums=1.0)


def test_argnums_out_of_range_counts_positionals():
    with pytest.raises(CotanError, match="takes 2 positional arguments"):
        cotan.grad(f2, argnums=2)


def test_jit_of_grad_of_vector_valued_function():
    with pytest.raises(NonDifferentiableError, match="must return a scalar"):
        cotan.jit(cotan.grad(lambda x: x * 2))(X)


def test_traced_int_used_as_shape_says_mark_it_static():
    def make(x, n):
        return np.zeros(n) + x
    with pytest.raises(CotanError, match=r"static_argnums=1"):
        cotan.jit(make)(1.0, 3)
    np.testing.assert_allclose(cotan.jit(make, static_argnums=1)(1.0, 3), np.ones(3))


def test_too_few_primals_without_defaults():
    with pytest.raises(TypeError, match=r"f2\(x, y\) takes 2 arguments and got 1; 'y' has "
                       "no default"):
        cotan.jvp(f2, (X,), (X,))
    with pytest.raises(CotanError, match="'y' has no default"):
        cotan.vjp(f2, X)


def test_vmap_default_cannot_be_passed_with_int_in_axes():
    def g(x, alpha=0.5):
        return x * alpha
    with pytest.raises(TypeError):
        cotan.vmap(g)(np.ones((2, 3)), 2.0)


def test_argnames_and_argnums_together():
    with pytest.raises(CotanError, match="not both"):
        cotan.grad(f2, argnums=1, argnames="y")


def test_classmethod_object_is_refused_by_name():
    class C:
        @classmethod
        def m(cls, x):
            return x
    with pytest.raises(CotanError, match="classmethod"):
        cotan.grad(C.__dict__["m"])


def test_partial_binding_too_many_arguments():
    import functools
    with pytest.raises(CotanError, match="binds 3 positional arguments"):
        cotan.grad(functools.partial(f2, 1.0, 2.0, 3.0))
