"""NumPy indexing with index arrays in the LLVM backend: gathers, scatters
and scatter-adds, optionally once per vmap lane.

Owns `IndexPlan`, which lays out `x[index]` exactly as NumPy does for an
index of static ints, run-time integer scalars, slices, None, Ellipsis,
integer index arrays (static or run-time) and static boolean masks: when
an index array is present, integers count as advanced indices too, and
the broadcast dimensions of the advanced indices stand where the first of
them stands if they are adjacent, first otherwise.  With `n` lanes the
plan describes per-lane indexing (`getitem_lanes`: lane b reads
x[b][index_b]) over an extra leading lane axis, each index part batched
or not.  Out-of-range indices branch to the entry's error exit (status 2)
or, for vmap's masked lanes (`clip`), are clipped first exactly as the
eager runtime/batching_support.py clips them: by the part's position in
the index tuple.  Never reads or writes out of bounds.

`gather` (x[index]), `scatter` (x[index] = v) and `scatter_add`
(x[index] += g, repeated indices accumulating like numpy.add.at) are the
loops built from a plan; `advanced_getitem` / `advanced_setitem` are the
index-array cases of the getitem / setitem lowerings.  Must not walk
programs nor register lowerings (llvm/lowerings.py and
llvm/lane_indexing.py do).
"""

import numpy as np
from llvmlite import ir

from ...errors import MissingRuleError, ShapeError
from .kernels import load_mem, loop_nest, offset_of, store_mem
from .values import I64, Array, Lazy, Scalar, cast, const

_VALUE_DEPENDENT = ("boolean masks computed at run time give value-dependent shapes, "
                    "which cannot be compiled; use np.where (or a mask fixed before jit)")


def _is_int(p):
    return isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_))


class _Slice:
    def __init__(self, start, step, length):
        self.start, self.step, self.length = start, step, length


class _Int:
    """An integer index: a Python int, a run-time Scalar, or (batched) an
    Array (n,) holding one index per lane."""

    def __init__(self, value, batched, clip):
        self.value, self.batched, self.clip = value, batched, clip


class _Arr:
    """An integer index array (an Array; batched: lane axis first)."""

    def __init__(self, arr, batched, clip):
        self.arr, self.batched, self.clip = arr, batched, clip
        self.lane_shape = tuple(arr.shape[1:] if batched else arr.shape)


def _real(p):
    return p is not None and p is not Ellipsis


class IndexPlan:
    """`x[index]` (or per lane `x[b][index_b]` with `n` lanes) for an x whose
    shape (one lane's shape) is `shape`.  `flags[k]`: does index[k] have a
    lane axis?  `clip`: clip integer indices into range first (masked lanes).

    `shape` is the result's shape per lane, `full` with the lane axis."""

    def __init__(self, em, shape, index, flags=None, n=None, clip=False):
        self.em, self.x_shape, self.n = em, tuple(shape), n
        flags = tuple(flags) if flags is not None else (False,) * len(index)
        if any(flags) and n is None:
            raise AssertionError("a batched index part needs the lane count")
        parts = []
        for k, (p, f) in enumerate(zip(index, flags)):
            # eager vmap clips by the part's position k in the index tuple
            size = self.x_shape[k] if clip and k < len(self.x_shape) and self.x_shape[k] \
                else None
            parts += self._part(p, bool(f), size)
        self.parts = self._expand(parts)
        self._layout()

    # ------------------------------------------------------------ parts
    def _part(self, p, batched, size):
        em = self.em
        if p is None or p is Ellipsis:
            return [p]
        if isinstance(p, slice):
            if not all(v is None or _is_int(v) for v in (p.start, p.stop, p.step)):
                raise MissingRuleError("getitem", "llvm", "slice bounds computed at run "
                                       "time give value-dependent shapes")
            return [p]
        if isinstance(p, (bool, np.bool_)):
            raise MissingRuleError("getitem", "llvm", "indexing with a Python bool (a "
                                   "0-d mask) is not supported under jit")
        if _is_int(p):
            v = int(p)
            return [_Int(int(np.clip(v, -size, size - 1)) if size else v, False, None)]
        if isinstance(p, (list, tuple)):
            p = np.asarray(p)
        if isinstance(p, np.ndarray):
            return self._static_array(p, batched, size)
        if isinstance(p, (Scalar, Array, Lazy)):
            if p.dtype.kind == "b":
                raise MissingRuleError("getitem", "llvm", _VALUE_DEPENDENT)
            if p.dtype.kind not in "iu":
                raise ShapeError(f"arrays used as indices must be of integer (or boolean) "
                                 f"type, got {p.dtype}")
            if isinstance(p, Scalar):
                return [_Int(p, False, size)]
            if isinstance(p, Lazy):
                p = em.as_array(p)
            if len(p.shape) == int(batched):
                return [_Int(p if batched else em.scalar(p), batched, size)]
            return [_Arr(p, batched, size)]
        raise MissingRuleError("getitem", "llvm", f"index {p!r} of type "
                               f"{type(p).__name__} is not supported under jit")

    def _static_array(self, a, batched, size):
        em = self.em
        if a.dtype.kind == "b":
            return self._static_mask(a, batched)
        if a.dtype.kind not in "iu":
            raise ShapeError(f"arrays used as indices must be of integer (or boolean) type, "
                             f"got {a.dtype}")
        a = a.astype(np.int64)
        if size:
            a = np.clip(a, -size, size - 1)
        if a.ndim == int(batched):
            return [_Int(em.runtime(a) if batched else int(a), batched, None)]
        return [_Arr(em.runtime(np.ascontiguousarray(a)), batched, None)]

    def _static_mask(self, m, batched):
        """A mask known at compile time: its positions are static (per lane:
        they must select as many elements on every lane)."""
        em = self.em
        if m.ndim == int(batched):
            raise MissingRuleError("getitem", "llvm", "indexing with a 0-d boolean mask is "
                                   "not supported under jit")
        if not batched:
            nz = np.nonzero(m)
            return [("mask", m.shape)] + [_Arr(em.runtime(np.ascontiguousarray(a)), False, None)
                                          for a in nz]
        lanes = [np.nonzero(m[b]) for b in range(m.shape[0])]
        if len({len(z[0]) for z in lanes}) > 1:
            raise MissingRuleError("getitem_lanes", "llvm", "a per-lane boolean mask that "
                                   "selects a different number of elements on each lane has "
                                   "no fixed shape")
        out = [("mask", m.shape[1:])]
        for j in range(m.ndim - 1):
            a = np.stack([z[j] for z in lanes]) if lanes else np.zeros((0, 0), np.int64)
            out.append(_Arr(em.runtime(np.ascontiguousarray(a)), True, None))
        return out

    def _expand(self, parts):
        """Ellipsis and trailing axes as full slices; each real part gets its
        axis and each slice its static (start, step, length)."""
        nd = len(self.x_shape)
        n_real = sum(1 for p in parts if _real(p) and not isinstance(p, tuple))
        if sum(1 for p in parts if p is Ellipsis) > 1:
            raise ShapeError("an index can only have a single ellipsis ('...')")
        if n_real > nd:
            raise ShapeError(f"too many indices for an array of shape {self.x_shape}: "
                             f"{n_real} were indexed")
        out = []
        for p in parts:
            if p is Ellipsis:
                out += [slice(None)] * (nd - n_real)
            else:
                out.append(p)
        if Ellipsis not in parts:
            out += [slice(None)] * (nd - n_real)
        self.dims = []          # (part, axis) for the real parts
        final = []
        d = 0
        for p in out:
            if isinstance(p, tuple):    # a static mask: its shape must fit these axes
                shape = tuple(p[1])
                if self.x_shape[d:d + len(shape)] != shape:
                    raise ShapeError(f"boolean index of shape {shape} does not match the "
                                     f"indexed axes {self.x_shape[d:d + len(shape)]}")
                continue
            if p is None:
                final.append(None)
                continue
            if isinstance(p, slice):
                start, stop, step = p.indices(self.x_shape[d])
                p = _Slice(start, step, len(range(start, stop, step)))
            final.append(p)
            self.dims.append((p, d))
            d += 1
        return final

    def _layout(self):
        """NumPy's placement of the advanced dimensions."""
        parts = self.parts
        arrays = [p for p in parts if isinstance(p, _Arr)]
        self.advanced = bool(arrays)
        adv = [k for k, p in enumerate(parts)
               if isinstance(p, _Arr) or (arrays and isinstance(p, _Int))]
        try:
            self.adv_shape = tuple(np.broadcast_shapes(*[a.lane_shape for a in arrays])) \
                if arrays else ()
        except ValueError:
            raise ShapeError("shape mismatch: indexing arrays could not be broadcast "
                             f"together with shapes {[a.lane_shape for a in arrays]}") from None
        adjacent = adv == list(range(adv[0], adv[-1] + 1)) if adv else True
        layout = []
        if adv and not adjacent:
            layout.append("adv")
        for k, p in enumerate(parts):
            if k in adv:
                if adjacent and k == adv[0]:
                    layout.append("adv")
            elif p is None:
                layout.append(None)
            elif isinstance(p, _Slice):
                layout.append(p)
        self.layout = layout
        shape = []
        for item in layout:
            if item == "adv":
                shape += list(self.adv_shape)
            elif item is None:
                shape.append(1)
            else:
                shape.append(item.length)
        self.shape = tuple(shape)
        self.full = ((self.n,) if self.n is not None else ()) + self.shape

    # ------------------------------------------------------------ loops
    def _checked(self, i, size, d, clip):
        """i (i64) clipped when asked, wrapped if negative, checked in range."""
        b = self.em.b
        if clip:
            lo, hi = ir.Constant(I64, -clip), ir.Constant(I64, clip - 1)
            i = b.select(b.icmp_signed("<", i, lo), lo, i)
            i = b.select(b.icmp_signed(">", i, hi), hi, i)
        n = ir.Constant(I64, size)
        i = b.select(b.icmp_signed("<", i, ir.Constant(I64, 0)), b.add(i, n), i)
        where = " (in a vmap lane)" if self.n is not None else ""
        self.em.fail_if(b.icmp_unsigned(">=", i, n), 2,
                        f"index out of bounds for axis {d} with size {size}{where}")
        return i

    def loop(self, x, body):
        """For every element of the result: body(idx, src), idx the result's
        indices (lane first when per lane), src the element offset into x
        (an Array of x's shape, with the lane axis first when per lane; a
        zero lane stride reads, or accumulates, one x for every lane)."""
        b = self.em.b
        lanes = self.n is not None
        strides = x.strides[1:] if lanes else x.strides
        # loop-invariant integers: checked once, before the loop
        base = ir.Constant(I64, 0)
        for p, d in self.dims:
            if isinstance(p, _Int) and not p.batched:
                size = self.x_shape[d]
                if isinstance(p.value, int):
                    if not -size <= p.value < size:
                        raise ShapeError(f"index {p.value} is out of bounds for axis {d} "
                                         f"with size {size}")
                    i = ir.Constant(I64, p.value % size)
                else:
                    i = self._checked(cast(b, p.value.value, p.value.dtype, np.int64),
                                      size, d, p.clip)
                base = b.add(base, b.mul(i, ir.Constant(I64, strides[d])))
        with loop_nest(b, self.full, name="gx") as idx:
            lane = idx[0] if lanes else None
            rest = list(idx[1:] if lanes else idx)
            pos, at, adv_idx = 0, {}, []
            for item in self.layout:
                if item == "adv":
                    adv_idx = rest[pos:pos + len(self.adv_shape)]
                    pos += len(self.adv_shape)
                else:
                    if item is not None:
                        at[id(item)] = rest[pos]
                    pos += 1
            src = base
            if lanes and x.strides[0]:
                src = b.add(src, b.mul(lane, ir.Constant(I64, x.strides[0])))
            for p, d in self.dims:
                st = ir.Constant(I64, strides[d])
                if isinstance(p, _Slice):
                    i = b.add(ir.Constant(I64, p.start),
                              b.mul(at[id(p)], ir.Constant(I64, p.step)))
                    src = b.add(src, b.mul(i, st))
                elif isinstance(p, _Int) and p.batched:
                    v = p.value
                    raw = load_mem(b, v, b.mul(lane, ir.Constant(I64, v.strides[0])))
                    i = self._checked(cast(b, raw, v.dtype, np.int64), self.x_shape[d], d,
                                      p.clip)
                    src = b.add(src, b.mul(i, st))
                elif isinstance(p, _Arr):
                    a = p.arr
                    view = Array(a.ptr, a.dtype, p.lane_shape,
                                 a.strides[1:] if p.batched else a.strides)
                    off = offset_of(b, view, adv_idx, self.adv_shape)
                    if p.batched:
                        off = b.add(off, b.mul(lane, ir.Constant(I64, a.strides[0])))
                    i = self._checked(cast(b, load_mem(b, a, off), a.dtype, np.int64),
                                      self.x_shape[d], d, p.clip)
                    src = b.add(src, b.mul(i, st))
            body(idx, src)


def _value_view(v, plan, batched):
    """`v` arranged to broadcast (right-aligned per lane) against plan.full."""
    if isinstance(v, Scalar):
        return v
    lane_shape = tuple(v.shape[1:]) if batched else tuple(v.shape)
    target = plan.shape if plan.n is not None else plan.full
    k = len(target) - len(lane_shape)
    if k < 0 or any(a not in (1, t) for a, t in zip(lane_shape, target[k:])):
        raise ShapeError(f"could not broadcast a value of shape {lane_shape} to the "
                         f"indexed shape {target}")
    if batched:
        return Array(v.ptr, v.dtype, v.shape[:1] + (1,) * k + lane_shape,
                     v.strides[:1] + (0,) * k + tuple(v.strides[1:]), owner=v.owner)
    return v


def _load_at(b, v, idx, full, dtype):
    if isinstance(v, Scalar):
        return cast(b, v.value, v.dtype, dtype)
    return cast(b, load_mem(b, v, offset_of(b, v, idx, full)), v.dtype, dtype)


def gather(em, plan, x, dest):
    """dest (shape plan.full) = x[index] (per lane: x[b][index_b])."""
    b = em.b

    def body(idx, src):
        v = cast(b, load_mem(b, x, src), x.dtype, dest.dtype)
        store_mem(b, dest, offset_of(b, dest, idx, plan.full), v)
    plan.loop(x, body)
    return dest


def scatter(em, plan, dest, value, batched=False):
    """dest[index] = value, in place (a repeated index keeps the last value,
    as NumPy does); `batched`: value has the lane axis."""
    b = em.b
    v = _value_view(value, plan, batched)

    def body(idx, src):
        store_mem(b, dest, src, _load_at(b, v, idx, plan.full, dest.dtype))
    plan.loop(dest, body)
    return dest


def scatter_add(em, plan, dest, g, batched=False):
    """dest[index] += g, in place, repeated indices accumulating (numpy.add.at);
    a zero lane stride in dest sums the lanes."""
    b = em.b
    v = _value_view(g, plan, batched)
    fp = dest.dtype.kind == "f"

    def body(idx, src):
        gv = _load_at(b, v, idx, plan.full, dest.dtype)
        old = load_mem(b, dest, src)
        store_mem(b, dest, src, b.fadd(old, gv) if fp else b.add(old, gv))
    plan.loop(dest, body)
    return dest


def advanced_getitem(em, s, x, index):
    """getitem(x, *index) with index arrays: a gather into s's result."""
    plan = IndexPlan(em, x.shape, index)
    if plan.full != tuple(s.out.shape):
        raise MissingRuleError("getitem", "llvm", f"the index lays out a result of shape "
                               f"{plan.full}, but shape inference expected {s.out.shape}")
    dest = gather(em, plan, x, em.result_buffer(s, s.out))
    return em.scalar(dest) if s.out.shape == () else dest


def advanced_setitem(em, dest, index, v):
    """dest[index] = v with index arrays, in place (a repeated index keeps
    the last value, as NumPy does)."""
    if isinstance(v, (bool, int, float)):
        v = Scalar(const(dest.dtype, v), dest.dtype)
    elif isinstance(v, Lazy):
        v = em.as_array(v)
    return scatter(em, IndexPlan(em, dest.shape, index), dest, v)
