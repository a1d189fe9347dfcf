"""Every `cotan.numpy` function under `cotan.jit(..., backend="xla")`,
against NumPy, with the input specs of tests/test_numpy_namespace.py.

A case matches NumPy or is refused with a cotan error (an xfail naming the
reason: a primitive this backend declares it does not lower, an output
shape that depends on values); a crash of another kind or a different
number fails.  Needs jaxlib.
"""

import itertools

import numpy as np
import pytest

pytest.importorskip("jaxlib.xla_client", reason="the xla backend needs jaxlib (pip install "
                    "'cotan[xla]')")

import cotan  # noqa: E402
import cotan.numpy as cnp  # noqa: E402
from cotan.autodiff.parse import register_source  # noqa: E402
from cotan.errors import CotanError  # noqa: E402

from .test_numpy_namespace import (LINALG_SPECS, SPECS, VALUES_UNSPECIFIED, _calls,  # noqa: E402
                                   _leaves, assert_same)

_names = itertools.count()


def _jitted(fn, args, kwargs):
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
    filename = f"<xla namespace sweep {next(_names)}>"
    register_source(filename, src)
    exec(compile(src, filename, "exec"), ns)
    jf = cotan.jit(ns["wrapper"], backend="xla")
    return lambda: jf(*[args[k] for k in rt])


def _has_subnormals(tree):
    for v in _leaves(tree):
        if isinstance(v, (np.ndarray, np.generic)) and v.dtype.kind == "f":
            a = np.abs(np.asarray(v))
            if np.any((a > 0) & (a < np.finfo(v.dtype).tiny)):
                return True
    return False


def _check(name, ours, ref, specs, monkeypatch):
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")
    refused = []
    for k, (args, kwargs) in _calls(name, specs):
        if _has_subnormals([args, kwargs]):
            # XLA's CPU compiler flushes subnormals to zero (documented in
            # the README's backend section): NumPy's answer is not XLA's
            continue
        with np.errstate(all="ignore"):
            want = ref(*args, **kwargs)
        try:
            with np.errstate(all="ignore"):
                got = _jitted(ours, args, kwargs)()
        except CotanError as e:
            refused.append(f"case {k}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            continue
        if name in VALUES_UNSPECIFIED:
            assert np.shape(got) == np.shape(want) and got.dtype == want.dtype, name
            continue
        loose = any(np.result_type(v) == np.float32 for v in _leaves([args, kwargs])
                    if isinstance(v, (np.ndarray, np.generic)))
        assert_same(got, want, f"xla jit {name}({args!r:.80}, {kwargs!r:.60})", loose)
    if refused:
        pytest.xfail(f"{name}: {len(refused)} case(s) refused, first: {refused[0]}")


@pytest.mark.parametrize("name", cnp.FUNCTIONS)
def test_function_under_xla_matches_numpy(name, monkeypatch):
    _check(name, getattr(cnp, name), getattr(np, name), SPECS.get(name, []), monkeypatch)


@pytest.mark.parametrize("name", cnp.linalg.__all__)
def test_linalg_function_under_xla(name, monkeypatch):
    _check("linalg." + name, getattr(cnp.linalg, name), getattr(np.linalg, name),
           LINALG_SPECS.get(name, []), monkeypatch)
