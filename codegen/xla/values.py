"""Run-time values of the XLA emitter and the element types they carry.

Owns `SV` (an SSA name plus its abstract value), `DynamicSlice` (a slice
with run-time bounds), the StableHLO spelling of NumPy dtypes
(`elem_type`, `tensor_type`) and the pytree walks over abstract values
(`leaves_with_paths`, `get_path`, `rebuild`) that the emitter, the stacks
and the lowerings share.  Must not emit text.
"""

import numpy as np

from ...errors import MissingRuleError
from ..abstract import ShapedArray
from ..infer import Undefined


_TYPES = {"float64": "f64", "float32": "f32", "float16": "f16", "int64": "i64",
          "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "ui8", "uint16": "ui16",
          "uint32": "ui32", "uint64": "ui64", "bool": "i1", "complex128": "complex<f64>",
          "complex64": "complex<f32>"}


def elem_type(dtype):
    dt = np.dtype(dtype)
    try:
        return _TYPES[dt.name]
    except KeyError:
        raise MissingRuleError(f"dtype {dt.name}", "xla", "StableHLO has no such element "
                               "type") from None


def tensor_type(shape, dtype):
    dims = "".join(f"{int(d)}x" for d in shape)
    return f"tensor<{dims}{elem_type(dtype)}>"


class SV:
    """A run-time value of the emitted function: its SSA name and type."""
    __slots__ = ("name", "aval")

    def __init__(self, name, aval):
        self.name = name
        self.aval = aval

    @property
    def shape(self):
        return self.aval.shape

    @property
    def dtype(self):
        return self.aval.dtype

    @property
    def type(self):
        return tensor_type(self.aval.shape, self.aval.dtype)

    def __repr__(self):
        return f"{self.name}: {self.type}"


class DynamicSlice:
    """`make_slice` with run-time parts (its typed value drops them)."""

    def __init__(self, parts):
        self.parts = parts


def leaves_with_paths(aval, path=()):
    """[(path, ShapedArray)] of the run-time leaves of an abstract value."""
    if isinstance(aval, (tuple, list)):
        out = []
        for k, e in enumerate(aval):
            out += leaves_with_paths(e, path + (k,))
        return out
    if isinstance(aval, dict):
        out = []
        for k, e in aval.items():
            out += leaves_with_paths(e, path + (k,))
        return out
    if isinstance(aval, ShapedArray):
        return [(path, aval)]
    return []


def get_path(v, path):
    for p in path:
        if v is None or isinstance(v, Undefined):
            return None
        v = v[p]
    return v


def rebuild(aval, leaves, path=()):
    """`aval`'s structure with its run-time leaves taken from {path: value}."""
    if isinstance(aval, (tuple, list)):
        return type(aval)(rebuild(e, leaves, path + (k,)) for k, e in enumerate(aval))
    if isinstance(aval, dict):
        return {k: rebuild(e, leaves, path + (k,)) for k, e in aval.items()}
    if isinstance(aval, ShapedArray):
        return leaves[path]
    return aval
