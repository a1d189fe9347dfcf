"""What a name in user code means: NumPy, `math` and builtins mapped onto
`cotan.numpy`, array methods and attributes mapped onto primitives.

Owns the translation tables.  Must not emit code (normalize.py does).
"""

import builtins
import math
import types

import numpy

from ..runtime.table import Primitive, PRIMITIVES

#: array method name -> cotan.numpy function name (array passed first)
ARRAY_METHODS = {
    "sum": "sum", "mean": "mean", "prod": "prod", "max": "max", "min": "min",
    "std": "std", "var": "var", "any": "any", "all": "all",
    "argmax": "argmax", "argmin": "argmin", "cumsum": "cumsum", "cumprod": "cumprod",
    "reshape": "reshape", "transpose": "transpose", "ravel": "ravel",
    "flatten": "ravel", "squeeze": "squeeze", "swapaxes": "swapaxes",
    "astype": "astype", "copy": "copy", "dot": "dot", "clip": "clip",
    "round": "round", "conj": "conj", "conjugate": "conj", "trace": "trace",
    "diagonal": "diagonal", "repeat": "repeat", "take": "take", "sort": "sort",
    "argsort": "argsort", "nonzero": "nonzero", "ptp": "ptp", "item": "to_float",
}

#: methods whose positional arguments NumPy also accepts unpacked:
#: x.reshape(2, 3) == x.reshape((2, 3))
VARIADIC_SHAPE_METHODS = {"reshape", "transpose"}

#: array attribute -> primitive / cotan.numpy name
ARRAY_ATTRIBUTES = {
    "T": "transpose", "shape": "shape", "ndim": "ndim", "size": "size",
    "dtype": "dtype", "real": "real", "imag": "imag",
}

#: methods that are views of the array (NumPy returns a view, so an in-place
#: update of the result writes through to the array)
VIEW_FUNCTIONS = {"transpose", "reshape", "ravel", "squeeze", "swapaxes",
                  "moveaxis", "expand_dims", "broadcast_to", "diagonal", "flip",
                  "real", "imag", "atleast_1d", "atleast_2d", "atleast_3d"}

_BUILTIN_MAP = {
    "abs": "absolute", "len": "length", "float": "to_float", "int": "to_int",
    "print": "print", "round": "round", "pow": "power",
}

_np_map = None
_np_map_scipy = False


def _cnp():
    from cotan import numpy as cnp
    return cnp


def _numpy_map():
    """id(numpy / math object) -> cotan.numpy object of the same name."""
    global _np_map, _np_map_scipy
    import sys
    scipy_now = "scipy.special" in sys.modules
    if _np_map is None or scipy_now != _np_map_scipy:
        _np_map_scipy = scipy_now
        cnp = _cnp()
        m = {}
        for name in getattr(cnp, "__all__", ()):
            ours = getattr(cnp, name, None)
            if not callable(ours):
                continue
            for mod in (numpy, math):
                theirs = getattr(mod, name, None)
                if theirs is not None and callable(theirs) and not isinstance(theirs, type):
                    m.setdefault(id(theirs), ours)
        lin = getattr(cnp, "linalg", None)
        if lin is not None:
            for name in getattr(lin, "__all__", ()):
                theirs = getattr(numpy.linalg, name, None)
                if theirs is not None:
                    m[id(theirs)] = getattr(lin, name)
        # cotan's other mirrors of NumPy/SciPy namespaces: same names.  SciPy
        # is optional and slow to import: it is mapped once the user's code
        # has imported it (the map is rebuilt then, see below)
        import sys
        import importlib
        for ours_name, theirs_name in (("cotan.numpy.fft", "numpy.fft"),
                                       ("cotan.scipy.special", "scipy.special")):
            theirs_mod = sys.modules.get(theirs_name)
            if theirs_mod is None and theirs_name.startswith("numpy."):
                theirs_mod = importlib.import_module(theirs_name)
            if theirs_mod is None:
                continue
            ours_mod = importlib.import_module(ours_name)
            for name in getattr(ours_mod, "__all__", ()):
                theirs = getattr(theirs_mod, name, None)
                if theirs is not None:
                    m[id(theirs)] = getattr(ours_mod, name)
        for alias, name in (("fabs", "absolute"), ("amax", "max"), ("amin", "min")):
            if hasattr(cnp, name):
                for mod in (numpy, math):
                    if hasattr(mod, alias):
                        m.setdefault(id(getattr(mod, alias)), getattr(cnp, name))
        _np_map = m
    return _np_map


def translate_callable(value):
    """The cotan object a resolved callee stands for: a Primitive, a Python
    function to inline, or None if cotan does not know it.

    Objects may declare their primitive through `__cotan_primitive__`
    (custom_vjp / custom_jvp wrappers do).
    """
    if isinstance(value, Primitive):
        return value
    p = getattr(value, "__cotan_primitive__", None)
    if isinstance(p, Primitive):
        return p
    mapped = _numpy_map().get(id(value))
    if mapped is not None:
        return mapped
    if isinstance(value, types.BuiltinFunctionType) and getattr(builtins, value.__name__, None) is value:
        name = _BUILTIN_MAP.get(value.__name__)
        if name is not None:
            if name in PRIMITIVES:
                return PRIMITIVES[name]
            return getattr(_cnp(), name, None)
        return None
    if value is float or value is int:
        return PRIMITIVES["to_float" if value is float else "to_int"]
    inner = getattr(value, "__cotan_wrapped__", None)
    if inner is not None:
        # jit(f) inside transformed code is f: the enclosing
        # transformation (and its compilation, if any) covers it
        return translate_callable(inner)
    if isinstance(value, types.FunctionType):
        return value
    return None


def cotan_function(name):
    """cotan.numpy's (or the table's) object called `name`."""
    cnp = _cnp()
    obj = getattr(cnp, name, None)
    if obj is None:
        obj = PRIMITIVES.get(name)
    return obj


def dtype_constant(value):
    """A NumPy dtype or scalar type as the string generated code writes."""
    if isinstance(value, numpy.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, numpy.generic):
        return numpy.dtype(value).name
    if value is float:
        return "float64"
    if value is int:
        return "int64"
    if value is bool:
        return "bool"
    if value is complex:
        return "complex128"
    return None
