"""`print` and `assert` keep working under jit, alone and composed with grad
and vmap: compiled code prints exactly what the eager call prints (it calls
back into Python with the values), in the same order; an assert that fails
raises.  Ahead-of-time libraries refuse to print, by name."""

import numpy as np
import pytest

import cotan
from cotan.errors import CotanError


def report(x, n):
    s = 0.0
    for i in range(n):
        s = s + np.sum(x * i)
        print("step", i, s, x[:2] * i, (i, x[0]), sep=" | ")
    print({"a": x[1]}, [x[0] > 0], end="!\n")
    return s


def checked(x):
    assert np.all(x > 0), "negative input"
    return x * 2.0


def _printed(capsys, fn, *args):
    capsys.readouterr()
    out = fn(*args)
    return out, capsys.readouterr().out


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch):
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")


def test_jit_prints_like_eager(capsys):
    x = np.arange(4.0)
    want_val, want = _printed(capsys, report, x, 3)
    jf = cotan.jit(report)
    for _ in range(2):      # first call (compiles) and the fast cached path
        got_val, got = _printed(capsys, jf, x, 3)
        assert got == want and got_val == want_val
    assert "step | 2 | 18.0 | [0. 2.] | (2, np.float64(0.0))" in got


def test_jit_of_grad_and_of_vmap_print_like_eager(capsys):
    x = np.arange(4.0)
    g = cotan.grad(report)
    _, want = _printed(capsys, g, x, 2)
    _, got = _printed(capsys, cotan.jit(g), x, 2)
    assert got == want and got.count("step") == 2
    v = cotan.vmap(report, in_axes=(0, None))
    xs = np.arange(6.0).reshape(2, 3)
    _, want = _printed(capsys, v, xs, 2)
    _, got = _printed(capsys, cotan.jit(v), xs, 2)
    assert got == want and got.count("step") == 4     # one line per lane


def test_failed_assert_raises_under_jit():
    jf = cotan.jit(checked)
    np.testing.assert_allclose(jf(np.ones(3)), 2.0)
    with pytest.raises(AssertionError, match="negative input"):
        jf(-np.ones(3))
    with pytest.raises(AssertionError, match="negative input"):
        cotan.jit(cotan.grad(lambda v: np.sum(checked(v))))(-np.ones(3))


def test_printing_is_not_folded_away_on_static_values(capsys):
    def f(x):
        print("shape", x.shape, 2 + 3)
        return x + 1.0

    _, got = _printed(capsys, cotan.jit(f), np.zeros(2))
    assert got == "shape (2,) 5\n"


def test_aot_refuses_print(tmp_path):
    def f(x):
        print(x)
        return x * 2.0

    with pytest.raises(CotanError, match="print"):
        cotan.aot.compile(f, (cotan.ShapeDtype((3,)),), output=str(tmp_path / "libf.so"))


def formatted(x):
    loss = np.sum(x ** 2)
    for i in range(2):
        print(f"loss {loss * i:.3f} of {x.shape}", "and", f"{x[0]!r} {i}")
    return loss


def test_f_strings_of_run_time_values_print_like_eager(capsys):
    x = np.arange(3.0)
    _, want = _printed(capsys, formatted, x)
    _, got = _printed(capsys, cotan.jit(formatted), x)
    assert got == want and "loss 5.000 of (3,) and np.float64(0.0) 1" in got
    _, got = _printed(capsys, cotan.jit(cotan.grad(formatted)), x)
    assert got == want


def test_run_time_strings_other_than_printed_are_refused():
    def returned(x):
        return f"{x[0]}"

    def measured(x):
        s = f"{x[0]}"
        return len(s)

    x = np.arange(3.0)
    with pytest.raises(CotanError, match="returns a string built from run-time values"):
        cotan.jit(returned)(x)
    with pytest.raises(CotanError, match="can only be printed"):
        cotan.jit(measured)(x)
