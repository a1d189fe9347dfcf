"""The shared program corpus (tests/programs.py) in forward mode.

Each program's JVP, with tangents on its differentiated arguments, matches
central finite differences; the generated function is core form; the
linearized (primal once, tangent-only) function agrees with the JVP.
"""

import numpy as np
import pytest

from cotan.autodiff.core_form import validate
from cotan.autodiff.forward import jvp_function
from cotan.autodiff.linearize import linearize_functions
from cotan.autodiff.materialize import generated_core

from .programs import PROGRAMS


def _tangents(args, argnums, rng):
    return [rng.normal(size=np.shape(args[i])) if np.ndim(args[i]) else float(rng.normal())
            for i in argnums]


def _shift(args, argnums, tangents, eps):
    out = list(args)
    for i, t in zip(argnums, tangents):
        if isinstance(args[i], dict):
            out[i] = {k: v + eps * t[k] for k, v in args[i].items()}
        else:
            out[i] = args[i] + eps * t
    return out


def _random_tangents(args, argnums, rng):
    ts = []
    for i in argnums:
        a = args[i]
        if isinstance(a, dict):
            ts.append({k: rng.normal(size=np.shape(v)) for k, v in a.items()})
        elif np.ndim(a):
            ts.append(rng.normal(size=np.shape(a)))
        else:
            ts.append(float(rng.normal()))
    return ts


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_jvp_matches_finite_differences(prog):
    rng = np.random.default_rng(1)
    args = prog.make_args(rng)
    g = jvp_function(prog.fn, prog.argnums)
    validate(generated_core(g).node)
    ts = _random_tangents(args, prog.argnums, rng)
    out, dout = g(*args, *ts)
    np.testing.assert_allclose(out, prog.fn(*args), rtol=1e-12)
    eps = 1e-6
    fd = (prog.fn(*_shift(args, prog.argnums, ts, eps))
          - prog.fn(*_shift(args, prog.argnums, ts, -eps))) / (2 * eps)
    np.testing.assert_allclose(dout, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_linearize_agrees_with_jvp(prog):
    rng = np.random.default_rng(2)
    args = prog.make_args(rng)
    primal, tangent, _ = linearize_functions(prog.fn, prog.argnums)
    validate(generated_core(primal).node)
    validate(generated_core(tangent).node)
    out, residuals = primal(*args)
    np.testing.assert_allclose(out, prog.fn(*args), rtol=1e-12)
    g = jvp_function(prog.fn, prog.argnums)
    for _ in range(2):  # the same residuals serve several tangents
        ts = _random_tangents(args, prog.argnums, rng)
        np.testing.assert_allclose(tangent(*residuals, *ts), g(*args, *ts)[1],
                                   rtol=1e-10, atol=1e-12)
