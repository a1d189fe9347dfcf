"""Dispatch of functions jitted for the xla backend.

Owns `XlaJitFunction` (what `cotan.jit(f, backend="xla", device=...)`
returns): signature → compiled PJRT executable, cached per (signature,
device); a call validates each input leaf against the signature the
emitter wrote (PJRT checks byte sizes only), transfers NumPy inputs with
the client's device put (a `DeviceArray` already on the device is used as
it is), runs, raises the error status the module returns (an index out of
range: IndexError), and returns NumPy arrays, or `DeviceArray`s when
asked (`device_arrays=True`) or when an input was one.  Signatures and
pytrees follow runtime/dispatch.py, whose helpers it imports.  Must not
build IR (codegen/xla/).
"""

import functools

import numpy as np

from ..errors import ShapeError, CompileError
from ..codegen.abstract import ShapedArray
from . import dispatch
from .devices import Device, DeviceArray, default_device


def _flatten(x, leaves, key, device):
    t = type(x)
    if t is DeviceArray:
        leaves.append(x)
        key.append(("dev", x.dtype.char, x.shape))
        return ShapedArray(x.shape, x.dtype)
    if t in (tuple, list):
        key.append((t, len(x)))
        return t(_flatten(e, leaves, key, device) for e in x)
    if t is dict:
        key.append(("d", tuple(x)))
        return {k: _flatten(v, leaves, key, device) for k, v in x.items()}
    shapes = []
    return dispatch._flatten_arg(x, None, leaves, shapes, key)


class _Entry:
    def __init__(self, compiled, out_aval):
        self.c = compiled
        self.exe = compiled.exe
        self.out_aval = out_aval
        self.in_leaves = compiled.in_leaves
        self.out_leaves = compiled.out_leaves
        self.captures = compiled.capture_buffers
        self.messages = compiled.messages


class XlaJitFunction:
    """A function compiled per signature for one XLA device."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), device=None,
                 device_arrays=False):
        from ..codegen.xla import binding
        binding.require()
        if device is None:
            device = default_device("xla")
        if not isinstance(device, Device) or device.backend != "xla":
            raise ValueError(f"jit: device {device!r} is not an xla device; use one of "
                             "cotan.devices('xla')")
        self._host = dispatch.JitFunction(fun, static_argnums, static_argnames)
        self.__cotan_wrapped__ = fun
        functools.update_wrapper(self, fun)
        self._fun = fun
        self._device = device
        self._device_arrays = device_arrays
        self._cache = {}

    @property
    def device(self):
        return self._device

    @property
    def core(self):
        return self._host.core

    def _signature_of(self, args):
        leaves, key, avals = [], [], []
        for k, a in enumerate(args):
            if k in self._host._static:
                try:
                    hash(a)
                except TypeError:
                    raise TypeError(f"jit: static argument {k} must be hashable, got "
                                    f"{type(a).__name__}") from None
                key.append(("static", a))
                avals.append(a)
            else:
                avals.append(_flatten(a, leaves, key, self._device))
        return tuple(key), avals, leaves

    def lower(self, *args, **kwargs):
        from ..codegen.xla.backend import lower_xla
        args = self._host._bind(args, kwargs)
        _, avals, _ = self._signature_of(args)
        return lower_xla(self.core, avals, self._device.raw)

    def _compile(self, key, avals):
        from ..codegen.xla.backend import lower_xla
        from ..codegen.xla import binding
        if not binding.platform_has_f64(self._device.raw):
            for a in avals:
                for leaf in _aval_leaves(a):
                    if leaf.dtype in (np.float64, np.complex128):
                        raise ShapeError(f"jit: {self._device!r} has no float64; pass float32 "
                                         "arrays (cotan does not downcast silently)")
        lowered = lower_xla(self.core, avals, self._device.raw)
        entry = _Entry(lowered.compile(), lowered.out_aval)
        self._cache[key] = entry
        return entry

    def __call__(self, *args, **kwargs):
        if kwargs or len(args) != len(getattr(self._host._sig, "parameters", args)):
            args = self._host._bind(args, kwargs)
        key, avals, leaves = self._signature_of(args)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(key, avals)
        dev = self._device.raw
        from ..codegen.xla import binding
        bufs = []
        on_device = self._device_arrays
        for k, (x, want) in enumerate(zip(leaves, entry.in_leaves)):
            if x.dtype != want.dtype or tuple(x.shape) != want.shape:
                raise ShapeError(f"jit: input leaf {k} is {x.dtype}{list(x.shape)}, the "
                                 f"compiled signature wants {want.dtype}{list(want.shape)}")
            if type(x) is DeviceArray:
                on_device = True
                if x._buf is not None and x.device == self._device:
                    bufs.append(x._buf)
                    continue
                x = np.asarray(x)
            bufs.append(binding.to_device(x, dev))
        res = entry.exe.execute_sharded(bufs + entry.captures)
        outs = [r[0] for r in res.disassemble_into_single_device_arrays()]
        if entry.messages:
            # the module checks indices: its status must be read (a sync);
            # without checks a device-resident call returns at once
            status = int(binding.to_host(outs[-1]))
            if status:
                raise IndexError(entry.messages[status - 1])
        if on_device:
            vals = [DeviceArray(b, a, self._device) for b, a in zip(outs, entry.out_leaves)]
        else:
            vals = [binding.to_host(b) for b in outs[:-1]]
        return dispatch._rebuild(entry.out_aval, iter(vals)) if not on_device else \
            _rebuild_device(entry.out_aval, iter(vals))

    def __repr__(self):
        return f"<cotan.jit(backend='xla') of {getattr(self._fun, '__qualname__', self._fun)!r}>"

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)


def _rebuild_device(aval, it):
    if isinstance(aval, tuple):
        return tuple(_rebuild_device(a, it) for a in aval)
    if isinstance(aval, list):
        return [_rebuild_device(a, it) for a in aval]
    if isinstance(aval, dict):
        return {k: _rebuild_device(a, it) for k, a in aval.items()}
    if isinstance(aval, ShapedArray):
        return next(it)
    return aval


def _aval_leaves(a):
    from ..codegen.xla.emit import leaves_with_paths
    return [leaf for _, leaf in leaves_with_paths(a)]


__all__ = ["XlaJitFunction", "CompileError"]
