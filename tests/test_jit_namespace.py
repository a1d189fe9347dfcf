"""Every `cotan.numpy` function under `cotan.jit`, against NumPy.

The sweep reuses the input specs of tests/test_numpy_namespace.py (so a new
function cannot ship without being compiled here too): arrays and floats are
run-time arguments, everything else (ints, shapes, axes, strings) is static,
as it must be for shapes to be known.  A case either matches NumPy, or is
refused with a cotan error when its output shape depends on run-time values
(listed below with the reason), or is a known gap (listed, xfail; none
today).  A crash
of another kind, or a different number, fails.
"""

import itertools

import numpy as np
import pytest

import cotan
import cotan.numpy as cnp
from cotan.autodiff.parse import register_source
from cotan.errors import CotanError

from .test_numpy_namespace import (LINALG_SPECS, SPECS, VALUES_UNSPECIFIED, _calls, _leaves,
                                   assert_same)

#: output shapes that depend on run-time values: refused by name under jit
VALUE_DEPENDENT = {
    "nonzero": "the number of nonzero elements",
    "flatnonzero": "the number of nonzero elements",
    "argwhere": "the number of nonzero elements",
    "where": "where(cond) with one argument is nonzero",
    "arange": "a length computed from run-time endpoints",
    "linalg.norm": "`ord` given as a run-time float (it must be static)",
    "unique": "the number of distinct values",
    "linalg.eig": "a real or complex result, depending on the values",
}

#: not compiled yet (each raises a clear cotan error naming what is missing)
KNOWN_GAPS = {
}

_names = itertools.count()


def _jitted(fn, args, kwargs):
    """cotan.jit of `fn(*args, **kwargs)` with arrays and floats as run-time
    arguments; written as source so cotan can read it."""
    rt = [k for k, a in enumerate(args) if isinstance(a, (np.ndarray, float, np.floating))]
    ns = {"fn": fn}
    call = []
    for k, a in enumerate(args):
        if k in rt:
            call.append(f"a{k}")
        else:
            ns[f"c{k}"] = a
            call.append(f"c{k}")
    for key, v in kwargs.items():
        ns[f"k_{key}"] = v
        call.append(f"{key}=k_{key}")
    src = (f"def wrapper({', '.join(f'a{k}' for k in rt)}):\n"
           f"    return fn({', '.join(call)})\n")
    filename = f"<jit namespace sweep {next(_names)}>"
    register_source(filename, src)
    exec(compile(src, filename, "exec"), ns)
    jf = cotan.jit(ns["wrapper"])
    return lambda: jf(*[args[k] for k in rt])


def _sweep(name, ours, ref, specs):
    refused, gaps = [], []
    for k, (args, kwargs) in _calls(name, specs):
        with np.errstate(all="ignore"):
            want = ref(*args, **kwargs)
        try:
            with np.errstate(all="ignore"):
                got = _jitted(ours, args, kwargs)()
        except CotanError as e:
            refused.append(f"case {k}: {type(e).__name__}: {e}")
            continue
        if name in VALUES_UNSPECIFIED:      # empty: only shape and dtype are NumPy's
            assert np.shape(got) == np.shape(want) and got.dtype == want.dtype, name
            continue
        loose = any(np.result_type(v) == np.float32 for v in _leaves([args, kwargs])
                    if isinstance(v, (np.ndarray, np.generic)))
        assert_same(got, want, f"jit {name}({args!r:.80}, {kwargs!r:.60})", loose)
    return refused


def _check(name, ours, ref, specs, monkeypatch):
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")
    refused = _sweep(name, ours, ref, specs)
    if name in KNOWN_GAPS:
        if refused:
            pytest.xfail(f"{name}: {KNOWN_GAPS[name]} ({refused[0][:150]})")
        pytest.fail(f"{name} compiles every case now: remove it from KNOWN_GAPS")
    if name not in VALUE_DEPENDENT:
        assert not refused, f"{name} refused under jit:\n" + "\n".join(refused)


@pytest.mark.parametrize("name", cnp.FUNCTIONS)
def test_function_compiles_and_matches_numpy(name, monkeypatch):
    _check(name, getattr(cnp, name), getattr(np, name), SPECS.get(name, []), monkeypatch)


@pytest.mark.parametrize("name", cnp.linalg.__all__)
def test_linalg_function_compiles_and_matches_numpy(name, monkeypatch):
    _check("linalg." + name, getattr(cnp.linalg, name), getattr(np.linalg, name),
           LINALG_SPECS.get(name, []), monkeypatch)


def test_matmul_of_a_vector_and_a_stack():
    # only the first matrix of the stack was computed ((4,) @ (2, 4, 5): the
    # stack dims were taken from the output, which has dropped a's unit dim)
    a, b = np.arange(4.0), np.arange(40.0).reshape(2, 4, 5)
    f = _jitted(cnp.matmul, (a, b), {})
    for _ in range(2):
        np.testing.assert_array_equal(f(), a @ b)
