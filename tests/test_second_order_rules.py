"""Second-order sweeps over the whole primitive table.

For every differentiable primitive, on the probe functions of the VJP sweep
(`probe(*args) = sum(prim(args) * W)`, tests/test_vjp_rules.py):

* forward over reverse: `jvp(grad(probe))` along a random tangent `t`;
* reverse over forward: `grad` of the scalar `jvp(probe)(x; t)`, i.e. the
  VJP of generated JVP code;

both equal the Hessian-vector product `H t`, which is checked against
central finite differences (float64) of the gradient along `t`.  Every case
whose call passes keywords is swept twice: with the keywords as written and
with them passed by position, as `cotan.numpy` compositions call primitives
(`diagonal(a, 2, 0, 1)`), so a rule that reads a keyword only when it is
spelled as one is found.
"""

import inspect

import numpy as np
import pytest

import cotan
from cotan.autodiff.forward import jvp_function
from cotan.runtime import PRIMITIVES

from tests.test_vjp_rules import (DIFFERENTIABLE, K, R, SPECIAL_GLOBALS, SPECIAL_SOURCE, SPECS,
                                  _compile, _probe)


def _positional(name, args, kw):
    """The same call with its keywords passed by position, or None when a
    keyword cannot be (keyword-only, or after a *args)."""
    if not kw:
        return None
    params = list(inspect.signature(PRIMITIVES[name].impl).parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    names = [p.name for p in params]
    if any(k not in names or params[names.index(k)].kind != params[0].POSITIONAL_OR_KEYWORD
           for k in kw):
        return None
    last = max(names.index(k) for k in kw)
    full = list(args)
    for p in params[len(args):last + 1]:
        if p.name in kw:
            full.append(kw[p.name])
        elif p.default is inspect.Parameter.empty:
            return None
        else:
            full.append(p.default)
    return tuple(full)


def _cases():
    out = []
    for name in DIFFERENTIABLE:
        rule, reason = PRIMITIVES[name].rule_or_reason("vjp")
        if rule is None:
            continue
        spec = SPECS.get(name)
        if spec is None:
            continue
        if spec == "special":
            out.append(pytest.param(name, "special", id=f"{name}-special"))
            continue
        for k, (args, kw) in enumerate(spec):
            out.append(pytest.param(name, (args, kw), id=f"{name}-{k}"))
            pos = _positional(name, args, kw)
            if pos is not None:
                out.append(pytest.param(name, (pos, {}), id=f"{name}-{k}-positional"))
    return out


def _setup(name, c, rng):
    if c == "special":
        text, inputs, shapes = SPECIAL_SOURCE[name]
        ns = dict(SPECIAL_GLOBALS)
        for j, s in enumerate(shapes):
            ns[f"W{j}"] = rng.normal(size=s)
        return _compile(text, ns), [r.make(rng) for r in inputs]
    args, kw = c
    return _probe(name, args, kw, rng)


def _hvp_reference(fn, values, tangents, eps=1e-5):
    """Central differences of cotan's gradient (checked against finite
    differences by the VJP sweep) along `tangents`."""
    g = cotan.grad(fn, argnums=tuple(range(len(values))))
    plus = g(*[v + eps * t for v, t in zip(values, tangents)])
    minus = g(*[v - eps * t for v, t in zip(values, tangents)])
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def _tangents(name, values, rng):
    ts = [rng.normal(size=np.shape(v)) for v in values]
    if name in ("cholesky", "eigh"):
        ts = [t + np.swapaxes(t, -1, -2) for t in ts]
    return ts


CASES = _cases()


@pytest.mark.parametrize("name,c", CASES)
def test_forward_over_reverse(name, c):
    rng = np.random.default_rng(1)
    fn, values = _setup(name, c, rng)
    if not values:
        pytest.skip("no differentiable argument")
    tangents = _tangents(name, values, rng)
    g = cotan.grad(fn, argnums=tuple(range(len(values))))
    _, hvp = cotan.jvp(g, tuple(values), tuple(tangents))
    want = _hvp_reference(fn, values, tangents)
    for got, ref in zip(hvp, want):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,c", CASES)
def test_reverse_over_forward(name, c):
    rng = np.random.default_rng(1)
    fn, values = _setup(name, c, rng)
    if not values:
        pytest.skip("no differentiable argument")
    tangents = _tangents(name, values, rng)
    n = len(values)
    jvp_fn = jvp_function(fn, tuple(range(n)))
    params = ", ".join(f"a{i}" for i in range(n))
    consts = ", ".join(f"T{i}" for i in range(n))
    text = (f"def probe({params}):\n"
            f"    r = JVP({params}, {consts})\n"
            f"    return r[1]\n")
    ns = {"JVP": jvp_fn}
    ns.update({f"T{i}": t for i, t in enumerate(tangents)})
    directional = _compile(text, ns)
    got = cotan.grad(directional, argnums=tuple(range(n)))(*values)
    want = _hvp_reference(fn, values, tangents)
    for gk, ref in zip(got, want):
        np.testing.assert_allclose(gk, ref, rtol=1e-4, atol=1e-5)
