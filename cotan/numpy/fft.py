"""cotan.numpy.fft: the NumPy-compatible `numpy.fft` namespace.

Owns the names of `numpy.fft` that cotan supports.  The one-axis
transforms `fft`, `ifft`, `rfft`, `irfft` call primitives by keyword (their kernels in
`runtime/fft_ops.py`, their rules in `autodiff/fft_rules.py`); the 2-D
transforms are those applied axis by axis, and `fftfreq`, `rfftfreq`,
`fftshift`, `ifftshift` are compositions of creation and `roll`, all in the
subset cotan's source transformer inlines (see `cotan.numpy._math`).

Transformations: JVP, VJP and vmap work on every transform, on real and
complex inputs.  Cotangents of complex values follow JAX's convention
(dL/dRe - i dL/dIm; see autodiff/complex_rules.py), so the VJPs are plain
transposes and compose with every other rule (`abs(rfft(x)) ** 2`,
`irfft(rfft(x) * h)` with complex h).  Under `cotan.jit` the transforms are
refused by name (no compiled FFT yet).  Must not call NumPy directly or define primitives.
"""

from ..runtime.creation import arange
from ..runtime.elementwise import divide, greater_equal, multiply, subtract
from ..runtime import fft_ops as _ops
from ..runtime.fft_ops import static_fftshift_plan
from ..runtime.structural import shape
from ._arrays import roll
from ..autodiff import fft_rules  # noqa: F401  (attaches the rules of the FFT primitives)
from ..autodiff import complex_rules  # noqa: F401  (rules of real, imag, conj)

__all__ = ["fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]


def fft(a, n=None, axis=-1, norm=None):
    """numpy.fft.fft(a, n, axis, norm): the discrete Fourier transform along one axis."""
    return _ops.fft(a, n=n, axis=axis, norm=norm)


def ifft(a, n=None, axis=-1, norm=None):
    """numpy.fft.ifft(a, n, axis, norm): the inverse discrete Fourier transform along one axis."""
    return _ops.ifft(a, n=n, axis=axis, norm=norm)


def rfft(a, n=None, axis=-1, norm=None):
    """numpy.fft.rfft(a, n, axis, norm): the transform of a real sequence (the non-negative frequencies)."""
    return _ops.rfft(a, n=n, axis=axis, norm=norm)


def irfft(a, n=None, axis=-1, norm=None):
    """numpy.fft.irfft(a, n, axis, norm): the real sequence of a half spectrum."""
    return _ops.irfft(a, n=n, axis=axis, norm=norm)


def _pair(s, k):
    if s is None:
        return None
    return s[k]


def fft2(a, s=None, axes=(-2, -1), norm=None):
    """numpy.fft.fft2(a, s, axes, norm): fft along axes[1], then along axes[0]."""
    return fft(fft(a, _pair(s, 1), axes[1], norm), _pair(s, 0), axes[0], norm)


def ifft2(a, s=None, axes=(-2, -1), norm=None):
    """numpy.fft.ifft2(a, s, axes, norm): ifft along axes[1], then along axes[0]."""
    return ifft(ifft(a, _pair(s, 1), axes[1], norm), _pair(s, 0), axes[0], norm)


def rfft2(a, s=None, axes=(-2, -1), norm=None):
    """numpy.fft.rfft2(a, s, axes, norm): rfft along axes[1], then fft along axes[0]."""
    return fft(rfft(a, _pair(s, 1), axes[1], norm), _pair(s, 0), axes[0], norm)


def irfft2(a, s=None, axes=(-2, -1), norm=None):
    """numpy.fft.irfft2(a, s, axes, norm): ifft along axes[0], then irfft along axes[1]."""
    return irfft(ifft(a, _pair(s, 0), axes[0], norm), _pair(s, 1), axes[1], norm)


def fftfreq(n, d=1.0):
    """numpy.fft.fftfreq(n, d): the sample frequencies of an n-point fft."""
    k = arange(n)
    # bins from (n - 1) // 2 + 1 on are the negative frequencies
    wrapped = multiply(greater_equal(k, (n - 1) // 2 + 1), n)
    return divide(subtract(k, wrapped), multiply(n, d))


def rfftfreq(n, d=1.0):
    """numpy.fft.rfftfreq(n, d): the sample frequencies of an n-point rfft."""
    return divide(arange(n // 2 + 1), multiply(n, d))


def fftshift(x, axes=None):
    """numpy.fft.fftshift(x, axes): the zero frequency moved to the middle."""
    plan = static_fftshift_plan(shape(x), axes, 1)
    return roll(x, plan[0], plan[1])


def ifftshift(x, axes=None):
    """numpy.fft.ifftshift(x, axes): the inverse of fftshift."""
    plan = static_fftshift_plan(shape(x), axes, -1)
    return roll(x, plan[0], plan[1])
