"""Abstract values: what is known of a value without computing it.

Owns `ShapedArray` (shape + dtype) and the helpers shape/dtype rules of the
primitive table are written with.  An abstract value is either a
`ShapedArray` (value unknown) or a concrete Python/NumPy value (known at
compile time: a shape tuple, an axis, a slice, a string, a small constant).
Must not import the primitive table or any stage.
"""

import numpy as np


class ShapedArray:
    """An array of known shape and dtype and unknown contents.

    `weak_type` marks values that came from Python scalars: under NumPy's
    promotion (NEP 50) they adopt the dtype of the array they meet.
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type=False):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = bool(weak_type)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __eq__(self, other):
        return (isinstance(other, ShapedArray) and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self):
        dims = ",".join(str(d) for d in self.shape)
        return f"{_short(self.dtype)}[{dims}]" + ("~" if self.weak_type else "")

    def str_short(self):
        return repr(self)


_SHORT = {"float64": "f64", "float32": "f32", "float16": "f16", "int64": "i64",
          "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8",
          "uint16": "u16", "uint32": "u32", "uint64": "u64", "bool": "bool",
          "complex128": "c128", "complex64": "c64"}


class RuntimeText:
    """A string built at run time (an f-string of array values): compiled
    code has no strings, so it can only be printed (`print` formats it in
    Python); anything else is refused by name."""

    __slots__ = ("fmt",)

    def __init__(self, fmt):
        self.fmt = fmt

    def __repr__(self):
        return f"str[{self.fmt!r}]"


def _short(dtype):
    return _SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)


def is_abstract(x):
    return isinstance(x, ShapedArray)


def abstractify(x):
    """The abstract value of a concrete argument (arrays lose their values;
    Python scalars become weakly typed 0-d arrays)."""
    if isinstance(x, ShapedArray):
        return x
    if isinstance(x, bool):
        return ShapedArray((), np.bool_, weak_type=False)
    if isinstance(x, int):
        return ShapedArray((), np.int64, weak_type=True)
    if isinstance(x, float):
        return ShapedArray((), np.float64, weak_type=True)
    if isinstance(x, complex):
        return ShapedArray((), np.complex128, weak_type=True)
    if isinstance(x, (np.ndarray, np.generic)):
        return ShapedArray(np.shape(x), x.dtype)
    raise TypeError(f"cannot abstract a value of type {type(x).__name__}")


def shape_of(x):
    return x.shape if isinstance(x, ShapedArray) else np.shape(x)


def dtype_of(x):
    if isinstance(x, ShapedArray):
        return x.dtype
    return np.result_type(x)


def _promotion_operand(x):
    """What to hand np.result_type so NEP 50 weak scalars behave."""
    if isinstance(x, ShapedArray):
        if x.weak_type:
            return {np.dtype(np.bool_): False, np.dtype(np.int64): 0,
                    np.dtype(np.float64): 0.0}.get(x.dtype, 0j)
        return x.dtype
    if isinstance(x, (bool, int, float, complex)):
        return x
    return np.asarray(x).dtype


def result_dtype(*xs):
    """NumPy's promotion of the operands' dtypes (Python scalars weak)."""
    return np.result_type(*[_promotion_operand(x) for x in xs])


def all_weak(*xs):
    return all((isinstance(x, ShapedArray) and x.weak_type)
               or isinstance(x, (bool, int, float, complex)) for x in xs)


def broadcast_shapes(*shapes):
    return tuple(np.broadcast_shapes(*shapes))


def elementwise(*xs, dtype=None):
    """Abstract result of a broadcasting elementwise op."""
    shape = broadcast_shapes(*[shape_of(x) for x in xs])
    dt = result_dtype(*xs) if dtype is None else np.dtype(dtype)
    return ShapedArray(shape, dt, weak_type=all_weak(*xs) and dtype is None)


def is_concrete(x):
    return not isinstance(x, ShapedArray)


def dummy_value(x):
    """A stand-in concrete value with the abstract value's shape and dtype
    (zeros, without memory for the broadcast dimensions)."""
    if not isinstance(x, ShapedArray):
        return x
    if x.weak_type and x.shape == ():
        return {"b": False, "i": 0, "f": 0.0}.get(x.dtype.kind, 0j)
    return np.broadcast_to(np.zeros((), x.dtype), x.shape)


def eval_by_running(impl):
    """A shape/dtype rule that runs `impl` on zero-filled stand-ins.

    Right for every primitive whose output shape and dtype do not depend on
    its input values (the caller guarantees that).  A concrete result of an
    all-concrete call stays concrete (constant folding); otherwise the result
    is abstracted.
    """
    def rule(*args, **params):
        concrete = all(not isinstance(a, ShapedArray) for a in args) and \
            all(not isinstance(v, ShapedArray) for v in params.values())
        out = impl(*[dummy_value(a) for a in args],
                   **{k: dummy_value(v) for k, v in params.items()})
        if concrete:
            return out
        return _abstract_tree(out, args)
    rule.__name__ = f"eval_by_running({getattr(impl, '__name__', impl)})"
    return rule


def _abstract_tree(out, args):
    if isinstance(out, tuple):
        return tuple(_abstract_tree(o, args) for o in out)
    if isinstance(out, list):
        return [_abstract_tree(o, args) for o in out]
    if isinstance(out, (np.ndarray, np.generic)):
        return ShapedArray(np.shape(out), out.dtype)
    if isinstance(out, (bool, int, float, complex)):
        return abstractify(out)
    return out
