"""FFT primitives: NumPy's pocketfft transforms and their transposes.

Owns the kernels of `fft`, `ifft`, `rfft`, `irfft` (one axis each; the 2-D
and n-D functions of `cotan.numpy.fft` are compositions of these) and of
the four linear maps their reverse-mode rules need, `fft_transpose`,
`ifft_transpose`, `rfft_transpose` and `irfft_transpose`.  Each transform
is linear, so its VJP is its transpose and the transpose's VJP is the
transform again: the eight primitives close under differentiation.

`out_dtype` (a real dtype: keep the real part) exists for the transposes'
VJPs: the transpose of a map into a real input is the transform followed
by taking the real part.  Cotangents of complex values follow JAX's
convention (see autodiff/complex_rules.py): a cotangent c pairs with a
tangent dz as Re(c dz), so a real loss L gives z the cotangent
dL/dRe(z) - i dL/dIm(z) and each `*_transpose` is the plain transpose
(A^T, not the adjoint A^H = conj(A^T)); a transpose that maps back to a
real input keeps only the real part (`dtype` says the input's dtype).
Nothing here is compiled: under `jit` each primitive is refused by name
(see `autodiff/fft_rules.py`).  Must not hold derivative, batching or
lowering rules.
"""

import numpy as np

from .numeric_rules import by_running
from .table import primitive

#: the norm whose transform is the adjoint (conjugate transpose) of `norm`'s;
#: the transpose is then conj(adjoint(conj(g))) (`_transposed`)
_DUAL_NORM = {None: "forward", "backward": "forward", "forward": "backward", "ortho": "ortho"}


def _check_norm(what, norm):
    if norm not in _DUAL_NORM:
        raise ValueError(f"numpy.fft.{what}: norm must be None, 'backward', 'ortho' or "
                         f"'forward', got {norm!r}")


def _fft(a, n=None, axis=-1, norm=None, out_dtype=None):
    """fft(a, n, axis, norm, out_dtype) == numpy.fft.fft(a, n, axis, norm), its real part when out_dtype is a real dtype."""
    out = np.fft.fft(a, n, axis, norm)
    return out if out_dtype is None else _real_if(out, out_dtype)


def _ifft(a, n=None, axis=-1, norm=None, out_dtype=None):
    """ifft(a, n, axis, norm, out_dtype) == numpy.fft.ifft(a, n, axis, norm), its real part when out_dtype is a real dtype."""
    out = np.fft.ifft(a, n, axis, norm)
    return out if out_dtype is None else _real_if(out, out_dtype)


def _rfft(a, n=None, axis=-1, norm=None, out_dtype=None):
    """rfft(a, n, axis, norm, out_dtype) == numpy.fft.rfft(a, n, axis, norm), its real part when out_dtype is a real dtype."""
    out = np.fft.rfft(a, n, axis, norm)
    return out if out_dtype is None else _real_if(out, out_dtype)


def _irfft(a, n=None, axis=-1, norm=None):
    """irfft(a, n, axis, norm) == numpy.fft.irfft(a, n, axis, norm)."""
    return np.fft.irfft(a, n, axis, norm)


def _resize(u, m, axis):
    """u cut or zero-padded to length m along axis (the transpose of the
    pad-or-cut that `n` asks of a transform's input)."""
    have = u.shape[axis]
    if have >= m:
        return np.take(u, np.arange(m), axis=axis)
    pad = [(0, 0)] * u.ndim
    pad[axis] = (0, m - have)
    return np.pad(u, pad)


def _along(weights, ndim, axis):
    shape = [1] * ndim
    shape[axis] = len(weights)
    return np.reshape(weights, shape)


def _real_if(u, dtype):
    if np.dtype(dtype).kind != "c":
        return np.ascontiguousarray(u.real)
    return u


def _transposed(adjoint):
    """The transpose A^T of a map whose adjoint A^H `adjoint` computes:
    A^T g = conj(A^H conj(g)) (the conjugations vanish on real values)."""
    def transpose(g, *args, **kwargs):
        out = adjoint(np.conj(g), *args, **kwargs)
        return np.conj(out) if np.iscomplexobj(out) else out
    transpose.__name__ = transpose.__qualname__ = adjoint.__name__
    transpose.__doc__ = adjoint.__doc__.replace("the adjoint of", "the transpose of")
    return transpose


def _fft_transpose(g, m, dtype, n=None, axis=-1, norm=None):
    """fft_transpose(g, m, dtype, n, axis, norm): the adjoint of fft(., n, axis, norm) on inputs of length m and dtype `dtype`."""
    _check_norm("fft", norm)
    return _real_if(_resize(np.fft.ifft(g, None, axis, _DUAL_NORM[norm]), m, axis), dtype)


def _ifft_transpose(g, m, dtype, n=None, axis=-1, norm=None):
    """ifft_transpose(g, m, dtype, n, axis, norm): the adjoint of ifft(., n, axis, norm) on inputs of length m and dtype `dtype`."""
    _check_norm("ifft", norm)
    return _real_if(_resize(np.fft.fft(g, None, axis, _DUAL_NORM[norm]), m, axis), dtype)


def _rfft_transpose(g, m, n=None, axis=-1, norm=None):
    """rfft_transpose(g, m, n, axis, norm): the adjoint of rfft(., n, axis, norm) on real inputs of length m."""
    _check_norm("rfft", norm)
    size = m if n is None else n
    h = g.shape[axis]
    # Re(sum_k g_k w^kt) over the half spectrum is irfft of g with its
    # inner bins halved (irfft counts each of them twice, 0 and n/2 once)
    w = np.full(h, 0.5)
    w[0] = 1.0
    if size % 2 == 0:
        w[-1] = 1.0
    # weights in g's precision: float64 ones would promote a complex64 cotangent
    w = w.astype(np.asarray(g).real.dtype if np.asarray(g).dtype.kind in "fc" else np.float64)
    u = np.fft.irfft(g * _along(w, g.ndim, axis), size, axis, _DUAL_NORM[norm])
    return _resize(u, m, axis)


def _irfft_transpose(g, m, dtype, n=None, axis=-1, norm=None):
    """irfft_transpose(g, m, dtype, n, axis, norm): the adjoint of irfft(., n, axis, norm) on half spectra of length m and dtype `dtype`."""
    _check_norm("irfft", norm)
    size = g.shape[axis]
    u = np.fft.rfft(g, None, axis, _DUAL_NORM[norm])
    # irfft counts the inner bins twice (as k and n - k), 0 and n/2 once
    c = np.full(u.shape[axis], 2.0)
    c[0] = 1.0
    if size % 2 == 0:
        c[-1] = 1.0
    c = c.astype(u.real.dtype)
    return _real_if(_resize(u * _along(c, u.ndim, axis), m, axis), dtype)


_fft_transpose, _ifft_transpose = _transposed(_fft_transpose), _transposed(_ifft_transpose)
_rfft_transpose, _irfft_transpose = _transposed(_rfft_transpose), _transposed(_irfft_transpose)

fft = primitive("fft", abstract_eval=by_running(_fft))(_fft)
ifft = primitive("ifft", abstract_eval=by_running(_ifft))(_ifft)
rfft = primitive("rfft", abstract_eval=by_running(_rfft))(_rfft)
irfft = primitive("irfft", abstract_eval=by_running(_irfft))(_irfft)
fft_transpose = primitive("fft_transpose", abstract_eval=by_running(_fft_transpose))(
    _fft_transpose)
ifft_transpose = primitive("ifft_transpose", abstract_eval=by_running(_ifft_transpose))(
    _ifft_transpose)
rfft_transpose = primitive("rfft_transpose", abstract_eval=by_running(_rfft_transpose))(
    _rfft_transpose)
irfft_transpose = primitive("irfft_transpose", abstract_eval=by_running(_irfft_transpose))(
    _irfft_transpose)

def _static_fftshift_plan(shape, axes, direction):
    """static_fftshift_plan(shape, axes, direction) == (shifts, axes) of the roll that is numpy.fft.fftshift (direction 1) or ifftshift (-1)."""
    if axes is None:
        axes = tuple(range(len(shape)))
    elif isinstance(axes, (int, np.integer)):
        axes = (int(axes),)
    axes = tuple(int(a) for a in axes)
    if direction == 1:
        shifts = tuple(int(shape[a]) // 2 for a in axes)
    else:
        shifts = tuple(-(int(shape[a]) // 2) for a in axes)
    return shifts, axes


static_fftshift_plan = primitive("static_fftshift_plan", abstract_eval=_static_fftshift_plan,
                                 differentiable=False)(_static_fftshift_plan)

#: every primitive of this module (what autodiff/fft_rules.py covers)
FFT_PRIMITIVES = ("fft", "ifft", "rfft", "irfft", "fft_transpose", "ifft_transpose",
                  "rfft_transpose", "irfft_transpose")
