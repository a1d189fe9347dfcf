"""`cotan.aot`: ahead-of-time compilation to shared objects with a C ABI.

Owns the public face: `cotan.aot.compile(fun, example_args, output=,
name=, cpu=)`, the spec class `cotan.ShapeDtype`, and `AotFunction`, the
ctypes handle that loads the library back into Python.  The work lives in
codegen/ (aot_emit: the program for a standalone library; aot_binding:
the target machine; aot_cabi: the C wrapper and header; aot_link: `cc`).
Must not touch the jit's dispatch (runtime/dispatch.py) or caches: an AOT
build never enters them.
"""

import ctypes
import os
import re

import numpy as np

from .errors import CotanError, LinAlgError, ShapeError

__all__ = ["compile", "ShapeDtype", "AotFunction"]

_SCALAR_TYPES = {bool: np.bool_, int: np.int64, float: np.float64}


class ShapeDtype:
    """The shape and dtype of an argument, standing for an example array.

    `cotan.aot.compile(f, (cotan.ShapeDtype((16, 3), np.float64),))`
    compiles `f` for float64 arrays of shape (16, 3) without making one."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype=np.float64):
        if isinstance(shape, int):
            shape = (shape,)
        self.shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in self.shape):
            raise ValueError(f"ShapeDtype: negative dimension in {self.shape}")
        self.dtype = np.dtype(dtype)

    def __repr__(self):
        return f"ShapeDtype({self.shape}, {self.dtype.name})"

    def __eq__(self, other):
        return isinstance(other, ShapeDtype) and (self.shape, self.dtype) == (other.shape,
                                                                               other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))


def _abstract(x, where):
    """The abstract value of one example argument (dicts by sorted key: the
    C ABI flattens pytrees in cotan.tree_util order)."""
    from .codegen.abstract import ShapedArray
    t = type(x)
    if isinstance(x, ShapeDtype):
        return ShapedArray(x.shape, x.dtype)
    if isinstance(x, np.ndarray):
        return ShapedArray(x.shape, x.dtype)
    if t in _SCALAR_TYPES:
        return ShapedArray((), _SCALAR_TYPES[t], weak_type=t is not bool)
    if isinstance(x, np.generic):
        return ShapedArray((), x.dtype)
    if t in (tuple, list):
        return t(_abstract(e, f"{where}[{k}]") for k, e in enumerate(x))
    if t is dict:
        return {k: _abstract(x[k], f"{where}[{k!r}]") for k in sorted(x)}
    if x is None:
        return None
    if hasattr(x, "__array__"):
        return _abstract(np.asarray(x), where)
    raise TypeError(f"aot.compile: argument {where} is a {t.__name__}; pass arrays, numbers, "
                    "cotan.ShapeDtype specs or tuples/lists/dicts of them (or name it in "
                    "static_argnums to bake its value in)")


def _c_name(name):
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not name or name[0].isdigit():
        name = "f_" + name
    return name


def compile(fun, example_args, output=None, name=None, cpu="host", *, features=None,
            static_argnums=(), threads=1):
    """Compile `fun` for the signature of `example_args` into a shared object.

    `fun` is any function cotan can compile (a user function, or a
    transformed one: `cotan.grad(f)`, `cotan.vmap(f)`, ...).  `example_args`
    is the tuple of arguments (arrays, numbers, `cotan.ShapeDtype` specs,
    pytrees of them); only their dtypes and shapes matter, except for
    arguments named in `static_argnums`, whose values are baked in.
    Writes `output` (default `lib<name>.so` in the current folder) and the C
    header `<output without .so>.h` beside it, and returns an `AotFunction`
    that calls the library from Python.

    `name` is the C entry point (default: the function's name).  `cpu`
    picks the target: `"host"` (this machine's CPU and features) or an
    LLVM CPU name such as `"x86-64-v2"` (portable: no host-only
    instructions) or `"x86-64-v3"`; `features` adds LLVM feature flags
    (`"+avx2,+fma"`).  `threads` is the number of threads large
    elementwise loops are split over (1: the library never starts one).
    The library needs only libc, libm and (AVX2 targets) libmvec.
    """
    from .autodiff.normalize import normalize_function
    from .codegen import aot_binding, aot_cabi, aot_emit, aot_link

    if not isinstance(example_args, (tuple, list)):
        raise TypeError("aot.compile: example_args must be a tuple of arguments, e.g. (x,) "
                        f"for one argument; got {type(example_args).__name__}")
    if isinstance(static_argnums, int):
        static_argnums = (static_argnums,)
    from .autodiff import callables
    if callables.takes_variadic(fun):
        fun = callables.fixed_arity(fun, len(example_args), ())
    # parameters beyond the example arguments keep their defaults (constants)
    fun = callables.with_leading(fun, len(example_args), "aot.compile")
    core = normalize_function(fun)
    label = getattr(fun, "__qualname__", None) or core.name
    name = _c_name(name or core.name)
    if len(example_args) != len(core.params):
        raise TypeError(f"aot.compile: {label} takes {len(core.params)} arguments "
                        f"({', '.join(core.params)}), {len(example_args)} example arguments "
                        "given")
    avals = [a if k in static_argnums else _abstract(a, p)
             for k, (p, a) in enumerate(zip(core.params, example_args))]
    tgt = aot_binding.target(cpu, features)
    mod, sig = aot_emit.build_module(core, avals, name, tgt, threads=threads)
    for leaf in sig.inputs + sig.outputs:
        aot_cabi.c_type(leaf.dtype)      # refuse dtypes C cannot name, before linking
    output = os.path.abspath(output or f"lib{name}.so")
    header = _header_path(output)
    origin = f"{getattr(fun, '__module__', '?')}.{label}"
    uses_mvec = any(f.name.startswith("_ZGV") for f in mod.functions if f.is_declaration)
    aot_link.link_shared(output, header, name, aot_binding.object_code(mod, tgt),
                         aot_cabi.wrapper_source(name, sig),
                         aot_cabi.header_text(name, sig, origin, tgt.describe()), uses_mvec)
    return AotFunction(output, name, sig, header)


def _header_path(output):
    base = output[:-3] if output.endswith(".so") else output
    return base + ".h"


class AotFunction:
    """A compiled shared object, loaded with ctypes and callable like `fun`.

    `.path` and `.header` are the files; `.name` the C entry point;
    `.inputs` / `.outputs` list the leaves (path, dtype, shape) in ABI order;
    `.call_raw(inputs, shapes, outputs)` calls the C function with ctypes
    arrays and returns its status."""

    def __init__(self, path, name, signature, header=None):
        self.path = path
        self.name = name
        self.header = header
        self.signature = signature
        self.inputs = signature.inputs
        self.outputs = signature.outputs
        self._lib = ctypes.CDLL(path)
        self._fn = getattr(self._lib, name)
        self._fn.restype = ctypes.c_int
        self._fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self._last_error = getattr(self._lib, f"{name}_last_error")
        self._last_error.restype = ctypes.c_char_p
        self._last_error.argtypes = []

    def last_error(self):
        return (self._last_error() or b"").decode("utf8", "replace")

    def call_raw(self, inputs, shapes, outputs):
        return self._fn(inputs, shapes, outputs)

    def __call__(self, *args):
        sig = self.signature
        if len(args) != len(sig.in_avals):
            raise TypeError(f"{self.name}: takes {len(sig.in_avals)} arguments, "
                            f"{len(args)} given")
        leaves, shapes = [], []
        for k, (a, aval) in enumerate(zip(args, sig.in_avals)):
            _flatten(a, aval, leaves, shapes, f"argument {k}", self.name)
        ins = (ctypes.c_void_p * max(1, len(leaves)))(*[x.ctypes.data for x in leaves])
        dims = (ctypes.c_int64 * max(1, len(shapes)))(*shapes)
        outs = [np.empty(leaf.shape, leaf.dtype) for leaf in sig.outputs]
        optr = (ctypes.c_void_p * max(1, len(outs)))(*[o.ctypes.data for o in outs])
        status = self._fn(ins, dims, optr)    # `leaves` and `outs` keep the memory alive
        if status:
            msg = self.last_error()
            if status == 2:
                raise IndexError(msg)
            if status == 3:
                raise AssertionError(msg)
            if status == 1:
                raise ShapeError(msg)
            if status == 5:
                raise LinAlgError(msg)
            raise CotanError(f"{msg} (status {status})")
        return _rebuild(sig.out_aval, dict(zip((leaf.path for leaf in sig.outputs), outs)),
                        "result")

    def __repr__(self):
        return f"<cotan.aot function {self.name} in {self.path}>"


def _flatten(x, aval, leaves, shapes, where, name):
    from .codegen.abstract import ShapedArray
    if isinstance(aval, ShapedArray):
        if isinstance(x, (bool, int, float)) and aval.shape == ():
            a = np.array(x, aval.dtype)
        else:
            a = np.ascontiguousarray(x)
            if a.dtype != aval.dtype:
                raise TypeError(f"{name}: {where} has dtype {a.dtype}, the library was "
                                f"compiled for {aval.dtype}")
        leaves.append(a)
        shapes.extend(a.shape if a.ndim == aval.ndim else
                      _rank_error(name, where, a, aval))
        return
    if isinstance(aval, (tuple, list)):
        if not isinstance(x, (tuple, list)) or len(x) != len(aval):
            raise TypeError(f"{name}: {where} must be a {type(aval).__name__} of "
                            f"{len(aval)} items")
        for k, (e, a) in enumerate(zip(x, aval)):
            _flatten(e, a, leaves, shapes, f"{where}[{k}]", name)
        return
    if isinstance(aval, dict):
        if not isinstance(x, dict) or sorted(x) != sorted(aval):
            raise TypeError(f"{name}: {where} must be a dict with keys {sorted(aval)}")
        for k in sorted(aval):
            _flatten(x[k], aval[k], leaves, shapes, f"{where}[{k!r}]", name)
        return
    # static (baked-in) arguments: the caller's value is not used


def _rank_error(name, where, a, aval):
    raise ShapeError(f"{name}: {where} has shape {a.shape}, the library was compiled for "
                     f"shape {aval.shape}")


def _rebuild(aval, by_path, path):
    from .codegen.abstract import ShapedArray
    if isinstance(aval, tuple):
        return tuple(_rebuild(a, by_path, f"{path}[{k}]") for k, a in enumerate(aval))
    if isinstance(aval, list):
        return [_rebuild(a, by_path, f"{path}[{k}]") for k, a in enumerate(aval)]
    if isinstance(aval, dict):
        return {k: _rebuild(a, by_path, f"{path}[{k!r}]") for k, a in aval.items()}
    if isinstance(aval, ShapedArray):
        v = by_path[path]
        if aval.shape == ():
            return v.item() if aval.weak_type else v[()]
        return v
    return aval
