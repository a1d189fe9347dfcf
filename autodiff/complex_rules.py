"""Rules of the complex-part primitives `real`, `imag`, `conj` (and of
`unit_phase`, the sign z / |z| that absolute's rules differentiate through).

Owns their JVP, VJP and batching rules (attached to the table by name, as
`autodiff/fft_rules.py` does for its primitives).  Cotangents of complex
values follow JAX's convention: a cotangent c pairs with a tangent dz as
Re(c * dz), so for a real loss L of z = x + iy the cotangent is
dL/dx - i dL/dy, a holomorphic primitive's VJP is g * f'(z) (no
conjugate), and a real input keeps only the real part of what reaches it
(`runtime/adjoint_helpers.real_for`).  Under that pairing

- real(z): the cotangent t of Re(z) gives z the cotangent t (+ 0i),
- imag(z): t gives -i t (Re(-i t dz) = t Im(dz)); a real input gets 0,
- conj(z): t gives conj(t).

`imag_cotangent` (runtime/adjoint_helpers.py) is imag's VJP, a primitive
so that compiled code (real dtypes only) lowers it to zeros.
Importing this module attaches everything (`cotan.numpy` imports it at
start-up).  Must not hold kernels (runtime/) or lowerings (codegen/).
"""

from ..runtime.table import PRIMITIVES
from ..runtime.numeric import *  # noqa: F401,F403  (names rule bodies call)
from ..runtime.adjoint_helpers import unbroadcast  # noqa: F401
from ..runtime.structural import dtype  # noqa: F401
from .jvp_rules import jvp

d = None    # `d[x]` in JVP bodies; spliced, never evaluated


from .rule_registry import vjp_rule as _vjp  # noqa: E402


@jvp("real")
def _(z, x):
    d[z] = real(d[x])


@jvp("imag")
def _(z, x):
    d[z] = imag(d[x])


@jvp("conj")
def _(z, x):
    d[z] = conj(d[x])


@_vjp("real")
def _(g, z, x):
    dx = astype(g, dtype(x))


@_vjp("imag")
def _(g, z, x):
    dx = imag_cotangent(g, x)


# imag_cotangent is linear in g: g -> -i g (complex x) or 0 (real x); its
# transpose under Re(c dz) takes c to Re(-i c) = Im(c) (0 for a real x,
# whose c is real)
@jvp("imag_cotangent")
def _(z, ct, x):
    d[z] = imag_cotangent(d[ct], x)


@_vjp("imag_cotangent")
def _(g, z, ct, x):
    dct = imag(g)


@_vjp("conj")
def _(g, z, x):
    dx = conj(g)


# unit_phase s = x / |x| (0 at 0): for complex x, ds = (dx - s Re(conj(s) dx)) / |x|;
# for real x this is zero (s * s = 1).  The transpose under Re(c dz) takes g
# to (g - Re(g s) conj(s)) / |x|.  `absolute(x) + (x == 0)` keeps 0 / 0 out.
@jvp("unit_phase")
def _(z, x):
    d[z] = select(x == 0, 0.0, (d[x] - z * real(conj(z) * d[x])) / (absolute(x) + (x == 0)))


@_vjp("unit_phase")
def _(g, z, x):
    dx = unbroadcast(select(x == 0, 0.0, (g - real(g * z) * conj(z)) / (absolute(x) + (x == 0))),
                     x)


def _elementwise_batching(c):
    """Elementwise: the batched operands broadcast against each other (the
    import waits for the first use: batching_rules reads the whole table
    when it is imported)."""
    from .batching_rules import elementwise
    return elementwise(c)


for _name in ("real", "imag", "conj", "imag_cotangent", "unit_phase"):
    PRIMITIVES[_name].batch_rule = _elementwise_batching
